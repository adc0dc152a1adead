"""REINFORCE (lecturekit/algos/reinforce.py): the loss against hand-worked and autograd-free numbers, the episode
collection against independent bookkeeping, and short training runs on discrete and Box action spaces."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from lecturekit.algos import registry
from lecturekit.algos import reinforce as R
from lecturekit.envs import make_vec
from lecturekit.evaluation import Run
from lecturekit.nets import ActorCritic
from lecturekit.returns import bootstrapped_returns, discounted_returns

torch.set_num_threads(1)


# ---------------------------------------------------------------- the loss
def test_reinforce_loss_hand_worked():
    # logp = [-1, -2], G = [3, 1], b = [1, 1]: L = -((-1)(2) + (-2)(0)) / 2 = 1
    logp = torch.tensor([-1.0, -2.0])
    assert R.reinforce_loss(logp, torch.tensor([3.0, 1.0]), torch.tensor([1.0, 1.0])).item() == pytest.approx(1.0)
    # no baseline: L = -((-1)(3) + (-2)(1)) / 2 = 2.5
    assert R.reinforce_loss(logp, torch.tensor([3.0, 1.0])).item() == pytest.approx(2.5)


def test_reinforce_loss_gradient_is_the_score_function_estimate():
    # softmax policy over 3 actions with logits theta: grad log pi(a) = onehot(a) - pi (no autograd needed)
    theta = torch.tensor([0.2, -0.5, 1.0], requires_grad=True)
    actions = torch.tensor([0, 2, 2, 1])
    G = torch.tensor([1.0, 3.0, -2.0, 0.5])
    b = 0.7
    logp = torch.log_softmax(theta, -1)[actions]
    R.reinforce_loss(logp, G, torch.full_like(G, b)).backward()
    pi = torch.softmax(theta.detach(), -1)
    score = torch.nn.functional.one_hot(actions, 3).double() - pi.double()
    expected = -(score * (G.double() - b)[:, None]).mean(0)
    assert torch.allclose(theta.grad.double(), expected, atol=1e-6)


def test_reinforce_loss_sends_no_gradient_into_returns_or_baseline():
    logp = torch.tensor([-0.3, -1.2], requires_grad=True)
    G = torch.tensor([2.0, 1.0], requires_grad=True)
    b = torch.tensor([0.5, 0.5], requires_grad=True)
    R.reinforce_loss(logp, G, b).backward()
    assert G.grad is None and b.grad is None
    assert torch.allclose(logp.grad, -(G - b).detach() / 2)


def test_config_rejects_unknown_baseline():
    with pytest.raises(ValueError, match="Unknown baseline 'avg'. Available: none, mean, value"):
        R.Config(baseline="avg")


# ---------------------------------------------------------------- collecting complete episodes
def test_collect_episodes_masks_after_each_episode_and_replays_exactly():
    torch.manual_seed(0)
    n = 6
    envs = make_vec("CartPole-v1", n, seed=3)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space)
    batch = R.collect_episodes(envs, R.Policy(model, envs.single_action_space), R.episode_buffers(envs, 500), 500)
    lengths = batch.valid.sum(0)
    # valid is a prefix per column, the episode ends on its last valid step, and CartPole pays 1 per step
    for i in range(n):
        assert batch.valid[: lengths[i], i].all() and not batch.valid[lengths[i]:, i].any()
        assert np.flatnonzero(batch.ends[:, i]).tolist() == [lengths[i] - 1]
    assert np.array_equal(batch.episode_returns(), lengths)
    assert batch.env_steps == lengths.sum() and batch.obs.shape[0] == lengths.max()
    # replay each episode's actions in a fresh single CartPole started from the same state (deterministic
    # dynamics): the recorded observations follow, and the episode ends exactly at the last valid step
    envs.close()
    for i in range(n):
        env = gym.make("CartPole-v1")
        env.reset(seed=0)
        env.unwrapped.state = batch.obs[0, i].astype(np.float64)
        for t in range(lengths[i]):
            assert np.allclose(env.unwrapped.state, batch.obs[t, i], atol=1e-5)
            _, _, term, trunc, _ = env.step(int(batch.actions[t, i]))
            assert (term or trunc) == (t == lengths[i] - 1)
        env.close()


def test_returns_to_go_of_a_batch_equal_per_episode_discounted_returns():
    rng = np.random.default_rng(0)
    T, n, gamma = 7, 3, 0.9
    lengths = [7, 2, 5]
    rewards = rng.normal(size=(T, n))
    valid = np.arange(T)[:, None] < np.array(lengths)[None]
    ends = np.arange(T)[:, None] == np.array(lengths)[None] - 1
    ret = bootstrapped_returns(rewards * valid, ends, np.zeros(n), gamma)  # what update() computes
    for i, L in enumerate(lengths):
        assert np.allclose(ret[:L, i], discounted_returns(rewards[:L, i], gamma))


# ---------------------------------------------------------------- training
@pytest.mark.parametrize("baseline", ["none", "mean", "value"])
def test_short_run_logs_and_is_deterministic(baseline):
    cfg = R.Config(baseline=baseline, n_episodes=4)
    h1 = R.train("CartPole-v1", cfg, Run(steps=1500, seed=1, eval_every=700, eval_episodes=3))
    h2 = R.train("CartPole-v1", cfg, Run(steps=1500, seed=1, eval_every=700, eval_episodes=3))
    assert [e[2] for e in h1.evals] == [e[2] for e in h2.evals] and h1.logs["loss"] == h2.logs["loss"]
    assert h1.stopped == "budget" and h1.env_steps >= 1500 and len(h1.evals) >= 2
    assert ("value_loss" in h1.logs) == (baseline == "value")
    assert h1.config["baseline"] == baseline


def test_solves_cartpole_with_default_config():
    h = R.train("CartPole-v1", None, Run(steps=100_000, seed=0, target=475, eval_every=4000))
    assert h.solved and h.stopped == "target", h.summary()
    assert h.solved_at_steps < 60_000


class _TargetBandit(gym.Env):
    """One-step episodes: observe 0, choose a in [2, 6], reward -(a - 5)^2.  Best action 5."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(2.0, 6.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        assert 2.0 <= action[0] <= 6.0, "actions reach the env clipped to the Box"
        return np.zeros(1, np.float32), -float((action[0] - 5.0) ** 2), True, False, {}


gym.register("lecturekit-test/TargetBandit-v0", entry_point=_TargetBandit)


def test_gaussian_policy_learns_a_continuous_action():
    cfg = R.Config(n_episodes=32, lr=3e-2)
    h = R.train("lecturekit-test/TargetBandit-v0", cfg, Run(steps=6000, seed=0, eval_every=2000, eval_episodes=4))
    mean_action = R.Policy(h.model, _TargetBandit.action_space).greedy(np.zeros((1, 1), np.float32))[0, 0]
    assert abs(mean_action - 5.0) < 0.3, mean_action
    assert h.evals[-1][2] > -0.1


@pytest.mark.parametrize("env_id", ["lecturekit/DynamicPricing-v0", "lecturekit/InventoryControl-v0"])
def test_runs_on_the_course_environments(env_id):
    import lecturekit.envs  # noqa: F401  (registers the course environments)

    if env_id not in gym.registry:
        pytest.skip(f"{env_id} is not registered yet")
    h = R.train(env_id, R.Config(n_episodes=4), Run(steps=400, seed=0, eval_every=200, eval_episodes=2))
    assert h.env_steps >= 400 and all(np.isfinite(e[2]) for e in h.evals)


def test_registered_for_the_command_line():
    algo = registry()["reinforce"]
    assert algo.train is R.train and algo.config is R.Config and algo.bench_env == "CartPole-v1"


# ---------------------------------------------------------------- Gaussian with a state-dependent std, entropy bonus
def test_state_std_model_log_prob_and_entropy_match_torch_normal():
    torch.manual_seed(0)
    obs_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    m = R.StateStdActorCritic(obs_space, act_space, hidden=(8,), log_std_init=-0.7)
    with torch.no_grad():
        m.pi[-1].weight.normal_()  # make the std really depend on the state
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    mu, log_std = m.dist_params(obs)
    assert mu.shape == log_std.shape == (5, 2) and log_std.std() > 0
    normal = torch.distributions.Normal(mu, log_std.exp())
    assert torch.allclose(m.log_prob(obs, act), normal.log_prob(act).sum(-1), atol=1e-5)
    assert torch.allclose(m.entropy(obs), normal.entropy().sum(-1), atol=1e-5)
    a, logp, v = m.act(obs)
    assert a.shape == (5, 2) and torch.allclose(logp, normal.log_prob(a).sum(-1), atol=1e-5) and v.shape == (5,)
    fresh = R.StateStdActorCritic(obs_space, act_space, hidden=(8,), log_std_init=-0.7)
    assert torch.allclose(fresh.dist_params(obs)[1], torch.full((5, 2), -0.7), atol=0.05)  # starts at log_std_init
    with pytest.raises(ValueError, match="Box"):
        R.StateStdActorCritic(obs_space, gym.spaces.Discrete(3))


def test_entropy_bonus_keeps_the_optimal_spread_of_a_bandit():
    # reward -(a - 5)^2 in env units = -4 (u - 0.5)^2 in [-1, 1] units (scale 2); with bonus alpha * log sigma and
    # no normalisation, the objective -4 sigma_u^2 + alpha log sigma_u is largest at sigma_u = sqrt(alpha / 8) = 0.1
    cfg = R.Config(n_episodes=64, lr=3e-2, entropy_coef=0.08, normalize_adv=False, log_std_init=-1.0, min_log_std=-6.0)
    h = R.train("lecturekit-test/TargetBandit-v0", cfg, Run(steps=12_000, seed=0, eval_every=6000, eval_episodes=4))
    sigma = float(h.model.log_std.detach().exp())
    assert 0.085 < sigma < 0.12, sigma  # from 0.37 at the start
    assert "entropy" in h.logs and np.isfinite(h.logs["entropy"]).all()
