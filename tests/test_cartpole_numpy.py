"""The NumPy CartPole of the evaluations (lecturekit/envs/cartpole.py) equals gymnasium's vector CartPole step for
step, and the Monitor's evaluator with it gives the returns `evaluation.evaluate` gives with gymnasium's environment."""
import numpy as np
import pytest

from lecturekit.envs import make_vec
from lecturekit.envs.cartpole import CartPoleBatch
from lecturekit.evaluation import evaluate, gym_evaluator


def balancing(obs):
    """A linear controller that keeps the pole up for 500 steps from most starts (tests truncation)."""
    return (obs[:, 2] + 0.5 * obs[:, 3] + 0.05 * obs[:, 1] > 0).astype(np.int64)


@pytest.mark.parametrize("seed, n, policy", [(0, 20, "random"), (7, 5, "random"), (1_000_000, 20, "balancing"),
                                             (3, 1, "balancing")])
def test_step_for_step_equal_to_gymnasium(seed, n, policy):
    gym_env, ours = make_vec("CartPole-v1", n), CartPoleBatch(n)
    obs_g, _ = gym_env.reset(seed=seed)
    obs, _ = ours.reset(seed=seed)
    np.testing.assert_array_equal(obs, obs_g)
    rng = np.random.default_rng(seed)
    running = np.ones(n, dtype=bool)
    while running.any():  # up to and including each copy's first terminal or truncated step
        act = rng.integers(0, 2, n) if policy == "random" else balancing(obs)
        obs_g, r, te_g, tr_g, _ = gym_env.step(act)
        obs, r_ours, te, tr, _ = ours.step(act)
        np.testing.assert_array_equal(obs[running], obs_g[running])
        np.testing.assert_array_equal(te[running], te_g[running])
        np.testing.assert_array_equal(tr[running], tr_g[running])
        assert np.all(r[running] == 1.0) and np.all(r_ours == 1.0)
        running &= ~(te | tr)
    gym_env.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # CartPole-v0 is out of date
@pytest.mark.parametrize("env_id, max_steps", [("CartPole-v1", 500), ("CartPole-v0", 200)])
def test_evaluator_equals_gymnasium_evaluation(env_id, max_steps):
    rng = np.random.default_rng(0)
    for act_fn in [balancing, lambda obs: rng.integers(0, 2, len(obs)), lambda obs: np.zeros(len(obs), np.int64)]:
        for seed in [0, 1_000_003]:
            state = rng.bit_generator.state
            expected = evaluate(act_fn, env_id, 20, seed)
            rng.bit_generator.state = state  # the random policy draws the same actions again
            assert gym_evaluator(env_id, 20, seed)(act_fn) == expected
    assert gym_evaluator(env_id, 20, 0)(balancing)[0] == evaluate(balancing, env_id, 20, 0)[0] <= max_steps


def test_gym_evaluator_uses_it_for_cartpole_only():
    cartpole = gym_evaluator("CartPole-v1", 20, 5)
    assert any(isinstance(c.cell_contents, CartPoleBatch) for c in cartpole.__closure__)  # the NumPy copy plays
    assert cartpole(balancing) == evaluate(balancing, "CartPole-v1", 20, 5)
    assert evaluate(balancing, "CartPole-v1", 20, 5)[0] == 500.0
    acrobot = gym_evaluator("Acrobot-v1", 2, 0)
    assert hasattr(acrobot, "close")
    acrobot.close()
