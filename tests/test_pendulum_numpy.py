"""The NumPy Pendulum (lecturekit.envs.pendulum) against gymnasium's Pendulum-v1, step for step.

Equal up to the last bits of float64: NumPy's vectorised sin/cos may round differently from the scalar ones gymnasium
calls (one ulp), so rewards and returns are compared with rtol 1e-9, observations (float32) exactly.
"""
import numpy as np

from lecturekit.envs import make_vec
from lecturekit.envs.pendulum import EPISODE_STEPS, PendulumBatch
from lecturekit.evaluation import evaluate, gym_evaluator


def test_steps_equal_gymnasium_step_for_step():
    n, seed, rng = 4, 123, np.random.default_rng(0)
    ours, theirs = PendulumBatch(n), make_vec("Pendulum-v1", n)
    (obs_ours, _), (obs_theirs, _) = ours.reset(seed=seed), theirs.reset(seed=seed)
    np.testing.assert_array_equal(obs_ours, obs_theirs)
    for t in range(EPISODE_STEPS):
        action = rng.uniform(-2.5, 2.5, (n, 1)).astype(np.float32)  # beyond the box too: both clip to [-2, 2]
        obs_ours, r_ours, term_ours, trunc_ours, _ = ours.step(action)
        obs_theirs, r_theirs, term, trunc, _ = theirs.step(action)
        np.testing.assert_array_equal(obs_ours, obs_theirs)
        np.testing.assert_allclose(r_ours, r_theirs, rtol=1e-9)
        assert not term.any() and trunc.all() == (t == EPISODE_STEPS - 1)  # gymnasium's episode is 200 steps too
        np.testing.assert_array_equal(term_ours, term)
        np.testing.assert_array_equal(trunc_ours, trunc)
    theirs.close()


def test_evaluator_equals_gymnasium_evaluation():
    # a fixed nonlinear policy: a = 2 tanh(w . obs)
    w = np.array([[1.5], [-0.7], [0.3]], dtype=np.float32)

    def act_fn(obs):
        return (2 * np.tanh(obs @ w)).astype(np.float32)

    # the Monitor's default evaluator plays Pendulum-v1 with the NumPy copy
    for seed in (0, 1_000_000, 7):
        np.testing.assert_allclose(gym_evaluator("Pendulum-v1", 10, seed)(act_fn),
                                   evaluate(act_fn, "Pendulum-v1", 10, seed), rtol=1e-9)
    evaluator = gym_evaluator("Pendulum-v1", 10, 0)
    assert any(isinstance(c.cell_contents, PendulumBatch) for c in evaluator.__closure__)
