"""Shared off-policy pieces (targets, Polyak, networks, the loop, its seeding) and the TD3/DDPG update."""
import random
import threading

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import lecturekit.offpolicy as op
from lecturekit.algos import registry, td3
from lecturekit.buffers import Batch, ReplayBuffer
from lecturekit.evaluation import Run, critic_bias
from lecturekit.nets import DeterministicActor, TwinQ


# ------------------------------------------------------------------------------------------------------- targets
def test_td_target_hand_worked():
    # y0 = 1 + 0.9 * 2 = 2.8 ; y1 = 0.5 (terminal: no bootstrap) ; y2 = -1 + 0.9 * (-4) = -4.6
    y = op.td_target(torch.tensor([1.0, 0.5, -1.0]), torch.tensor([0.0, 1.0, 0.0]),
                     torch.tensor([2.0, 3.0, -4.0]), 0.9)
    assert y.tolist() == pytest.approx([2.8, 0.5, -4.6])


def test_clipped_double_q_target_hand_worked_and_detached():
    # min(2, 5) = 2 -> 1 + 0.5 * 2 = 2 ; min(-1, -3) = -3 -> 0 + 0.5 * (-3) = -1.5 ; terminal -> 4
    q1 = torch.tensor([2.0, -1.0, 7.0], requires_grad=True)
    q2 = torch.tensor([5.0, -3.0, 1.0], requires_grad=True)
    y = td3.clipped_double_q_target(torch.tensor([1.0, 0.0, 4.0]), torch.tensor([0.0, 0.0, 1.0]), q1, q2, 0.5)
    assert y.tolist() == pytest.approx([2.0, -1.5, 4.0])
    assert not y.requires_grad


def test_critic_loss_hand_worked():
    # (1-0)^2, (3-1)^2 -> mean 2.5 ; second critic (0-0)^2, (1-1)^2 -> 0
    y = torch.tensor([0.0, 1.0])
    assert op.critic_loss(y, torch.tensor([1.0, 3.0])).item() == pytest.approx(2.5)
    assert op.critic_loss(y, torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(2.5)


# ------------------------------------------------------------------------------------------------------- Polyak
def _linear(w, b):
    m = nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.fill_(w)
        m.bias.fill_(b)
    return m


def test_polyak_update_hand_worked():
    target, source = _linear(0.0, 10.0), _linear(1.0, 0.0)
    op.polyak_update(target, source, 0.1)   # 0.1 * 1 + 0.9 * 0 = 0.1 ; 0.1 * 0 + 0.9 * 10 = 9
    assert target.weight.flatten().tolist() == pytest.approx([0.1, 0.1]) and target.bias.item() == pytest.approx(9.0)
    op.polyak_update(target, source, 0.1)   # 0.1 + 0.9 * 0.1 = 0.19 ; 0.9 * 9 = 8.1
    assert target.weight.flatten().tolist() == pytest.approx([0.19, 0.19]) and target.bias.item() == pytest.approx(8.1)
    assert source.weight.tolist() == [[1.0, 1.0]] and source.bias.item() == 0.0
    assert target.weight.grad is None and source.weight.grad is None


def test_polyak_extremes_and_no_graph():
    target, source = _linear(3.0, 3.0), _linear(-1.0, 2.0)
    op.polyak_update(target, source, 0.0)
    assert target.weight.tolist() == [[3.0, 3.0]]
    op.polyak_update(target, source, 1.0)
    assert target.weight.tolist() == [[-1.0, -1.0]] and target.bias.item() == 2.0
    assert target.weight.grad_fn is None and target.weight.is_leaf


# ------------------------------------------------------------------------------------------------------ networks
def test_actor_stays_in_an_asymmetric_box():
    actor = DeterministicActor(3, 2, low=[-1.0, 0.0], high=[3.0, 0.5], hidden=(8,))
    assert actor.squash.center.tolist() == [1.0, 0.25] and actor.squash.half_range.tolist() == [2.0, 0.25]
    a = actor(torch.randn(1000, 3) * 1000)
    assert torch.all(a[:, 0] >= -1) and torch.all(a[:, 0] <= 3)
    assert torch.all(a[:, 1] >= 0) and torch.all(a[:, 1] <= 0.5)


def test_twin_q_is_two_independent_mlps():
    # recompute each critic by hand from its own slice of the stacked weights: relu(relu(x W1 + b1) W2 + b2) W3 + b3
    twin = TwinQ(3, 1, (16, 16), generator=torch.Generator().manual_seed(0))
    obs, act = torch.randn(5, 3), torch.randn(5, 1)
    q = twin(obs, act)
    assert q.shape == (2, 5) and not torch.allclose(q[0], q[1])
    x = torch.cat([obs, act], -1)
    for k in range(2):
        h = x
        for i, (w, b) in enumerate(zip(twin.weights, twin.biases)):
            h = h @ w[k] + b[k]
            h = torch.relu(h) if i < 2 else h
        assert torch.allclose(q[k], h.squeeze(-1), atol=1e-6)
    assert torch.equal(twin.q1(obs, act), q[0])
    # a loss on Q_1 alone gives Q_2's weights a zero gradient
    twin.q1(obs, act).sum().backward()
    assert all(w.grad[1].abs().sum() == 0 and w.grad[0].abs().sum() > 0 for w in twin.weights)


def test_networks_are_initialised_from_the_given_generator_only():
    state = torch.random.get_rng_state()
    nets = [(TwinQ(3, 1, generator=torch.Generator().manual_seed(s)),
             DeterministicActor(3, 1, [-2.0], [2.0], generator=torch.Generator().manual_seed(s))) for s in (1, 1, 2)]
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator was not touched
    flat = [torch.cat([p.flatten() for m in pair for p in m.parameters()]) for pair in nets]
    assert torch.equal(flat[0], flat[1]) and not torch.equal(flat[0], flat[2])


def test_box_bounds_rejects_unbounded_and_discrete():
    with pytest.raises(ValueError, match="Box"):
        op.box_bounds(gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match="bounded"):
        op.box_bounds(gym.spaces.Box(-np.inf, np.inf, (2,)))


def test_dpg_actor_gradient_is_the_chain_rule():
    # Q(s, a) = -(a - 2 s)^2 (known critic), mu(s) = w s + b (linear actor, unbounded):
    # dJ/dw = mean_s [ dQ/da * da/dw ] = mean_s [ -2 (mu(s) - 2 s) * s ],  dJ/db = mean_s [ -2 (mu(s) - 2 s) ]
    s = torch.tensor([[1.0], [-2.0], [0.5]])
    actor = nn.Linear(1, 1)
    with torch.no_grad():
        actor.weight.fill_(0.5)
        actor.bias.fill_(0.3)
    q = lambda obs, act: -((act - 2 * obs) ** 2).sum(-1)
    td3.dpg_actor_loss(q, actor, s).backward()  # the loss is -J
    dq_da = -2 * (0.5 * s + 0.3 - 2 * s)
    assert actor.weight.grad.item() == pytest.approx(-(dq_da * s).mean().item())
    assert actor.bias.grad.item() == pytest.approx(-dq_da.mean().item())


PEND_BOX = (3, 1, torch.tensor([-2.0]), torch.tensor([2.0]))


def _agent(cfg, seed=0):
    return td3.Agent(*PEND_BOX, cfg, torch.Generator().manual_seed(seed))


def test_explore_adds_scaled_noise_and_clips():
    agent = _agent(td3.Config(expl_noise=0.1))
    obs = torch.zeros(4, 3)
    mu = agent.act(obs).detach()
    eps = torch.tensor([[0.0], [1.0], [-2.0], [1000.0]])
    a = agent.explore(obs, eps).detach()
    # std 0.1 half-ranges of 2 = 0.2 per unit of eps; the last one is clipped to the bound 2
    assert torch.allclose(a[:3], mu[:3] + 0.2 * eps[:3], atol=1e-6) and a[3].item() == 2.0


def test_smoothed_target_action_noise_is_clipped():
    actor = DeterministicActor(3, 1, [-2.0], [2.0], (8,))
    obs = torch.randn(5000, 3)
    mu = actor(obs).detach()
    eps = torch.randn(5000, 1)
    a = td3.smoothed_target_action(actor, obs, eps, sigma=10.0, clip=0.5)  # huge sigma: almost every eps is clipped
    assert torch.all((a - mu).abs() <= 0.5 * 2 + 1e-6) and a.min() >= -2 and a.max() <= 2
    assert torch.equal(td3.smoothed_target_action(actor, obs, eps, sigma=0.0, clip=0.5), mu)
    small = td3.smoothed_target_action(actor, obs[:1] * 0, torch.tensor([[0.5]]), sigma=0.2, clip=0.5)
    assert torch.allclose(small, actor(obs[:1] * 0).detach() + 0.2 * 0.5 * 2)  # inside the clip: mu + sigma eps half


# ---------------------------------------------------------------------------------------- DDPG / TD3 updates
def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, generator=g), torch.rand(n, 1, generator=g) * 4 - 2,
                 torch.randn(n, generator=g), torch.randn(n, 3, generator=g), torch.zeros(n), torch.zeros(n))


def _noise(n=64, seed=0):
    return td3.draw_noise(n, 1, torch.Generator().manual_seed(seed + 100))


def _flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()]).clone()


def test_td3_delays_actor_and_target_updates():
    agent = _agent(td3.Config(policy_delay=2))
    actor0, targ0, critic0 = _flat(agent.actor), _flat(agent.critic_targ), _flat(agent.critic)
    logs = td3.update(agent, _batch(), 1, _noise())  # odd step: critic only
    assert torch.equal(_flat(agent.actor), actor0) and torch.equal(_flat(agent.critic_targ), targ0)
    assert not torch.equal(_flat(agent.critic), critic0) and set(logs) == {"critic_loss", "q1"}
    logs = td3.update(agent, _batch(seed=1), 2, _noise(seed=1))  # even step: actor and targets move too
    assert not torch.equal(_flat(agent.actor), actor0) and not torch.equal(_flat(agent.critic_targ), targ0)
    assert all(isinstance(v, float) for v in logs.values()) and "actor_loss" in logs


def test_without_twin_the_second_critic_is_never_trained():
    agent = _agent(td3.Config(twin=False))
    q2 = [w[1].clone() for w in agent.critic.weights]
    for i in range(3):
        td3.update(agent, _batch(seed=i), i, _noise(seed=i))
    assert all(torch.equal(w[1], w0) for w, w0 in zip(agent.critic.weights, q2))


def test_ddpg_is_td3_without_the_three_fixes():
    cfg = td3.DDPGConfig()
    assert (cfg.twin, cfg.target_noise, cfg.policy_delay) == (False, 0.0, 1)
    algos = registry()
    assert algos["ddpg"].train is algos["td3"].train and algos["ddpg"].config is td3.DDPGConfig


def test_ddpg_critic_step_moves_q_towards_the_target():
    # one critic step with a small learning rate must lower the TD error on the batch it used
    agent = _agent(td3.DDPGConfig(critic_lr=1e-3))
    b = _batch(256)
    with torch.no_grad():
        y = b.reward + 0.99 * agent.critic_targ.q1(b.next_obs, agent.actor_targ(b.next_obs))
        before = ((agent.critic.q1(b.obs, b.action) - y) ** 2).mean()
    logs = td3.update(agent, b, 0, _noise(256))
    assert logs["critic_loss"] == pytest.approx(before.item(), rel=1e-5)  # the loss is the TD error
    with torch.no_grad():
        after = ((agent.critic.q1(b.obs, b.action) - y) ** 2).mean()
    assert after < before


# ------------------------------------------------------------------------------------------------------ the loop
class Counter(gym.Env):
    """obs = (t, parity of the episode): even episodes terminate at t = 3, odd ones are truncated at t = 4."""

    observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.k = getattr(self, "k", -1) + 1
        self.t = 0
        return np.array([0, self.k % 2], np.float32), {}

    def step(self, action):
        self.t += 1
        term = self.k % 2 == 0 and self.t == 3
        return np.array([self.t, self.k % 2], np.float32), float(self.t), term, False, {}


gym.register("lecturekit_test/Counter-v0", entry_point=Counter, max_episode_steps=4)


class Recorder:
    """A do-nothing agent that records what the loop hands it."""

    def __init__(self, obs_dim, act_dim, low, high, cfg, gen):
        self.model, self.batches, self.noises = nn.Linear(1, 1), 0, []

    def act(self, obs):
        return torch.zeros(len(obs), 1)

    def explore(self, obs, eps):
        return self.act(obs)


def record_update(agent, batch, step, noise):
    assert step == agent.batches and batch.obs.shape == (4, 2)
    agent.batches += 1
    agent.noises.append(noise)
    return {"loss": 0.0}


def test_loop_stores_real_transitions_only(monkeypatch):
    buffers, agents, evals = [], [], []

    class Kept(ReplayBuffer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            buffers.append(self)

    monkeypatch.setattr(op, "ReplayBuffer", Kept)
    cfg = op.OffPolicyConfig(n_envs=2, warmup=10, batch_size=4, log_every=10)
    make = lambda *a: agents.append(Recorder(*a)) or agents[-1]
    noise = lambda b, act_dim, gen: torch.randn(b, act_dim, generator=gen)
    run = Run(steps=60, seed=0, eval_every=20, eval_episodes=2, callback=lambda ev: evals.append(ev["env_steps"]))
    hist = op.train_off_policy("rec", "lecturekit_test/Counter-v0", cfg, run, make, record_update, noise)
    buf = buffers[0]
    n = len(buf)
    obs, nxt = buf.obs[:n], buf.next_obs[:n]
    # 60 steps in 2 envs = 30 vector steps; every episode is 3 or 4 steps and is followed by one reset-only step
    assert 0 < n < 60
    assert np.all(nxt[:, 0] == obs[:, 0] + 1)  # no (final obs -> reset obs) transition was stored
    assert np.all(buf.reward[:n] == nxt[:, 0])
    even, odd = nxt[:, 1] == 0, nxt[:, 1] == 1
    assert np.array_equal(buf.terminated[:n] == 1, even & (nxt[:, 0] == 3))
    assert np.array_equal(buf.truncated[:n] == 1, odd & (nxt[:, 0] == 4))
    assert not np.any((buf.terminated[:n] == 1) & odd)  # truncation never counts as termination
    # updates start once the warm-up's 10 env steps are done: 2 per vector step (2 envs) for the vector steps
    # that end at env steps 10, 12, ..., 60, i.e. 26 * 2 = 52; each gets fresh noise of shape (B, act_dim)
    assert agents[0].batches == 52 and hist.env_steps == 60 and hist.algo == "rec"
    assert agents[0].noises[0].shape == (4, 1) and not torch.equal(agents[0].noises[0], agents[0].noises[1])
    assert evals == [20, 40, 60] and hist.logs["loss"]


def _short(module, cfg, seed=3, callback=None):
    return module.train("Pendulum-v1", cfg, Run(steps=400, seed=seed, eval_every=200, eval_episodes=2,
                                                callback=callback))


def _draw_from_global_generators(event):
    torch.rand(100)
    np.random.rand(100)
    random.random()


def test_same_seed_same_history_whatever_the_global_generators_do():
    small = dict(warmup=200, batch_size=32, hidden=(16, 16), log_every=50)
    for cfg in (td3.Config(**small), td3.DDPGConfig(**small)):
        torch.manual_seed(0)
        h1 = _short(td3, cfg)
        torch.manual_seed(123)  # a different global state, and global draws between evaluations
        h2 = _short(td3, cfg, callback=_draw_from_global_generators)
        assert h1.evals and [e[2:] for e in h1.evals] == [e[2:] for e in h2.evals]
        assert h1.logs == h2.logs and h1.logs["env_steps"] == [200, 250, 300, 350, 400]
        assert all(torch.equal(p, q) for p, q in zip(h1.model.parameters(), h2.model.parameters()))
        assert set(h1.model.keys()) == {"actor", "critic"} and h1.algo == cfg.name
    h3 = _short(td3, td3.Config(**small), seed=4)
    assert h3.logs["critic_loss"] != h1.logs["critic_loss"]


def test_a_run_in_a_background_thread_ignores_the_main_threads_draws():
    # a live demo trains in a thread while the notebook goes on drawing random numbers
    cfg = td3.Config(warmup=200, batch_size=32, hidden=(16, 16), log_every=50)
    alone = _short(td3, cfg)
    out = {}
    thread = threading.Thread(target=lambda: out.update(h=_short(td3, cfg)))
    thread.start()
    while thread.is_alive():
        torch.randn(100)
        np.random.rand(100)
    thread.join()
    assert out["h"].logs == alone.logs and [e[2:] for e in out["h"].evals] == [e[2:] for e in alone.evals]


def test_the_update_is_replaceable():
    calls = []

    def my_update(agent, batch, step, noise):
        calls.append(step)
        return td3.update(agent, batch, step, noise)

    cfg = td3.Config(warmup=300, batch_size=32, hidden=(16, 16), log_every=50)
    h = td3.train("Pendulum-v1", cfg, Run(steps=400, seed=0, eval_every=400, eval_episodes=1), update=my_update)
    assert calls == list(range(101)) and h.logs["critic_loss"]  # one update after each env step 300, ..., 400


def test_critic_bias_against_hand_worked_returns():
    # Counter: the first episode of each copy terminates at t = 3 with rewards 1, 2, 3.
    # gamma = 0.5: G = 1 + 0.5 * 2 + 0.25 * 3 = 2.75; cut at horizon 2: G = 1 + 0.5 * 2 = 2
    actor = lambda obs: torch.zeros(len(obs), 1)
    q = lambda obs, act: torch.full((len(obs),), 7.0)
    q0, g = critic_bias(actor, q, "lecturekit_test/Counter-v0", episodes=3, seed=0, gamma=0.5)
    assert q0.tolist() == [7.0] * 3 and g.tolist() == pytest.approx([2.75] * 3)
    _, g2 = critic_bias(actor, q, "lecturekit_test/Counter-v0", episodes=2, seed=0, gamma=0.5, horizon=2)
    assert g2.tolist() == pytest.approx([2.0, 2.0])


def test_loop_makes_one_update_every_1_over_x_steps():
    # updates_per_step 0.5 with 2 envs: one update per vector step, i.e. one per 2 env steps; after the warm-up's 10
    # env steps, the vector steps ending at 10, 12, ..., 60 make 26 updates (half of the 52 at updates_per_step 1)
    agents = []
    for x, expected in [(0.5, 26), (0.25, 13)]:  # 0.25: one update every second vector step
        cfg = op.OffPolicyConfig(n_envs=2, warmup=10, batch_size=4, log_every=10, updates_per_step=x)
        make = lambda *a: agents.append(Recorder(*a)) or agents[-1]
        noise = lambda b, act_dim, gen: torch.randn(b, act_dim, generator=gen)
        op.train_off_policy("rec", "lecturekit_test/Counter-v0", cfg, Run(steps=60, seed=0, eval_every=20,
                                                                           eval_episodes=2), make, record_update, noise)
        assert agents[-1].batches == expected
