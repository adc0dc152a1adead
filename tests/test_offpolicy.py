"""Shared off-policy pieces (targets, Polyak, networks, chain-rule actor gradient, the loop) and DDPG/TD3 updates."""
import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import lecturekit.offpolicy as op
from lecturekit.algos import ddpg, td3
from lecturekit.buffers import Batch, ReplayBuffer


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
    y = op.clipped_double_q_target(torch.tensor([1.0, 0.0, 4.0]), torch.tensor([0.0, 0.0, 1.0]), q1, q2, 0.5)
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
    actor = op.DeterministicActor(3, 2, low=[-1.0, 0.0], high=[3.0, 0.5], hidden=(8,))
    assert actor.center.tolist() == [1.0, 0.25] and actor.half_range.tolist() == [2.0, 0.25]
    a = actor(torch.randn(1000, 3) * 1000)
    assert torch.all(a[:, 0] >= -1) and torch.all(a[:, 0] <= 3)
    assert torch.all(a[:, 1] >= 0) and torch.all(a[:, 1] <= 0.5)


def test_critics_shapes_and_independent_twins():
    twin = op.TwinQ(3, 1, (16, 16))
    q1, q2 = twin(torch.randn(5, 3), torch.randn(5, 1))
    assert q1.shape == (5,) and q2.shape == (5,) and not torch.allclose(q1, q2)


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
    op.dpg_actor_loss(q, actor, s).backward()  # the loss is -J
    dq_da = -2 * (0.5 * s + 0.3 - 2 * s)
    assert actor.weight.grad.item() == pytest.approx(-(dq_da * s).mean().item())
    assert actor.bias.grad.item() == pytest.approx(-dq_da.mean().item())


def test_gaussian_explore_clips_and_has_the_right_spread():
    rng = np.random.default_rng(0)
    low, high = np.array([-2.0], np.float32), np.array([2.0], np.float32)
    a = op.gaussian_explore(np.zeros((20_000, 1), np.float32), 0.1, low, high, rng)
    assert a.dtype == np.float32 and a.std() == pytest.approx(0.2, rel=0.03)  # 0.1 half-ranges of 2
    edge = op.gaussian_explore(np.full((1000, 1), 2.0, np.float32), 0.5, low, high, rng)
    assert edge.max() <= 2.0 and edge.min() < 2.0


def test_smoothed_target_action_noise_is_clipped():
    actor = op.DeterministicActor(3, 1, [-2.0], [2.0], (8,))
    obs = torch.randn(5000, 3)
    mu = actor(obs).detach()
    a = td3.smoothed_target_action(actor, obs, sigma=10.0, clip=0.5)  # huge sigma: almost every eps is clipped
    assert torch.all((a - mu).abs() <= 0.5 * 2 + 1e-6) and a.min() >= -2 and a.max() <= 2
    assert torch.equal(td3.smoothed_target_action(actor, obs, sigma=0.0, clip=0.5), mu)


# ---------------------------------------------------------------------------------------- DDPG / TD3 updates
PEND = gym.make("Pendulum-v1")


def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, generator=g), torch.rand(n, 1, generator=g) * 4 - 2,
                 torch.randn(n, generator=g), torch.randn(n, 3, generator=g), torch.zeros(n), torch.zeros(n))


def _flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()]).clone()


def test_td3_delays_actor_and_target_updates():
    torch.manual_seed(0)
    agent = td3.TD3(PEND.observation_space, PEND.action_space, td3.Config(policy_delay=2), seed=0)
    actor0, targ0, critic0 = _flat(agent.actor), _flat(agent.critic_targ), _flat(agent.critic)
    agent.update(_batch(), step=1)  # odd step: critic only
    assert torch.equal(_flat(agent.actor), actor0) and torch.equal(_flat(agent.critic_targ), targ0)
    assert not torch.equal(_flat(agent.critic), critic0)
    agent.update(_batch(seed=1), step=2)  # even step: actor and targets move too
    assert not torch.equal(_flat(agent.actor), actor0) and not torch.equal(_flat(agent.critic_targ), targ0)


def test_td3_without_twin_leaves_the_second_critic_alone():
    torch.manual_seed(0)
    agent = td3.TD3(PEND.observation_space, PEND.action_space, td3.Config(twin=False), seed=0)
    q2 = _flat(agent.critic.q2)
    for i in range(3):
        agent.update(_batch(seed=i), step=i)
    assert torch.equal(_flat(agent.critic.q2), q2)


def test_ddpg_critic_step_moves_q_towards_the_target():
    # one critic step with a small learning rate must lower the TD error on the batch it used
    torch.manual_seed(0)
    agent = ddpg.DDPG(PEND.observation_space, PEND.action_space, ddpg.Config(critic_lr=1e-3), seed=0)
    b = _batch(256)
    with torch.no_grad():
        y = b.reward + 0.99 * agent.critic_targ(b.next_obs, agent.actor_targ(b.next_obs))
        before = ((agent.critic(b.obs, b.action) - y) ** 2).mean()
    logs = agent.update(b, 0)
    assert logs["critic_loss"].item() == pytest.approx(before.item(), rel=1e-5)  # the loss is the TD error
    with torch.no_grad():
        after = ((agent.critic(b.obs, b.action) - y) ** 2).mean()
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

    def __init__(self, obs_space, act_space, cfg, seed):
        self.model, self.batches, self.probed = nn.Linear(1, 1), 0, []

    def act(self, obs):
        return np.zeros((len(obs), 1), np.float32)

    explore = act

    def update(self, batch, step):
        assert step == self.batches
        self.batches += 1
        return {"loss": 0.0}


def test_loop_stores_real_transitions_only(monkeypatch):
    buffers = []

    class Kept(ReplayBuffer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            buffers.append(self)

    monkeypatch.setattr(op, "ReplayBuffer", Kept)
    agents = []
    cfg = op.OffPolicyConfig(n_envs=2, warmup=10, batch_size=4, log_every=10)
    make = lambda *a: agents.append(Recorder(*a)) or agents[-1]
    hist = op.train_off_policy("rec", "lecturekit_test/Counter-v0", cfg, make, steps=60, seed=0, eval_every=20,
                               eval_episodes=2, probe=lambda ag, n: ag.probed.append(n))
    buf = buffers[0]
    obs, nxt = buf.obs[:len(buf)], buf.next_obs[:len(buf)]
    # 60 steps in 2 envs = 30 vector steps; every episode is 3 or 4 steps and is followed by one reset-only step
    assert 0 < len(buf) < 60
    assert np.all(nxt[:, 0] == obs[:, 0] + 1)  # no (final obs -> reset obs) transition was stored
    assert np.all(buf.reward[:len(buf)] == nxt[:, 0])
    even, odd = nxt[:, 1] == 0, nxt[:, 1] == 1
    assert np.array_equal(buf.terminated[:len(buf)] == 1, even & (nxt[:, 0] == 3))
    assert np.array_equal(buf.truncated[:len(buf)] == 1, odd & (nxt[:, 0] == 4))
    assert not np.any((buf.terminated[:len(buf)] == 1) & odd)  # truncation never counts as termination
    # updates start once the warm-up's 10 env steps are done: 2 per vector step (2 envs) for the vector steps
    # that end at env steps 10, 12, ..., 60, i.e. 26 * 2 = 52
    assert agents[0].batches == 52 and hist.env_steps == 60
    assert agents[0].probed == [20, 40, 60] and hist.logs["loss"]


def test_td3_and_ddpg_runs_are_reproducible():
    cfg = dict(warmup=200, batch_size=32, hidden=(16, 16))
    for m in (ddpg, td3):
        h1 = m.train("Pendulum-v1", m.Config(**cfg), steps=400, seed=3, eval_every=400, eval_episodes=2)
        h2 = m.train("Pendulum-v1", m.Config(**cfg), steps=400, seed=3, eval_every=400, eval_episodes=2)
        assert h1.evals[-1][2] == h2.evals[-1][2] and h1.logs["critic_loss"] == h2.logs["critic_loss"]
        assert set(h1.model.keys()) == {"actor", "critic"}


def test_critic_bias_against_hand_worked_returns():
    # Counter: the first episode of each copy terminates at t = 3 with rewards 1, 2, 3.
    # gamma = 0.5: G = 1 + 0.5 * 2 + 0.25 * 3 = 2.75; cut at horizon 2: G = 1 + 0.5 * 2 = 2
    actor = lambda obs: torch.zeros(len(obs), 1)
    q = lambda obs, act: torch.full((len(obs),), 7.0)
    q0, g = op.critic_bias(actor, q, "lecturekit_test/Counter-v0", episodes=3, seed=0, gamma=0.5)
    assert q0.tolist() == [7.0] * 3 and g.tolist() == pytest.approx([2.75] * 3)
    _, g2 = op.critic_bias(actor, q, "lecturekit_test/Counter-v0", episodes=2, seed=0, gamma=0.5, horizon=2)
    assert g2.tolist() == pytest.approx([2.0, 2.0])
