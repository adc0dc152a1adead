"""Tests of lecturekit.algos.gradient_free: the pure pieces against hand-worked numbers, and short training runs."""
import numpy as np
import pytest

from lecturekit.algos import gradient_free as gf
from lecturekit.algos import registry
from lecturekit.envs import make_vec
from lecturekit.evaluation import Run
from lecturekit.policies import LinearPolicy


def test_cem_update_hand_worked():
    # top 2 of 4 by score are rows 3 and 1: mean ((1, 1) + (3, 5)) / 2 = (2, 3), std |3 - 1| / 2 = 1 and 2
    samples = np.array([[0.0, 0.0], [1.0, 1.0], [9.0, 9.0], [3.0, 5.0]])
    scores = np.array([1.0, 5.0, -2.0, 7.0])
    mean, std = gf.cem_update(samples, scores, elite_frac=0.5)
    np.testing.assert_allclose(mean, [2.0, 3.0])
    np.testing.assert_allclose(std, [1.0, 2.0])
    mean, std = gf.cem_update(samples, scores, elite_frac=0.1)  # at least one elite
    np.testing.assert_allclose(mean, [3.0, 5.0])
    np.testing.assert_allclose(std, [0.0, 0.0])


def test_finite_difference_gradient_of_a_quadratic_is_exact():
    # f = x0^2 + 3 x0 x1: grad = (2 x0 + 3 x1, 3 x0) = (2 + 6, 3) at (1, 2); central differences are exact for quadratics
    theta = np.array([1.0, 2.0])
    g = gf.finite_difference_gradient(lambda t: t[0] ** 2 + 3 * t[0] * t[1], theta, 1e-3)
    np.testing.assert_allclose(g, [8.0, 3.0], atol=1e-8)
    assert theta.tolist() == [1.0, 2.0]


def test_centered_ranks():
    np.testing.assert_allclose(gf.centered_ranks(np.array([10.0, -3.0, 7.0])), [0.5, -0.5, 0.0])


def test_population_returns_counts_each_candidates_episode():
    envs = make_vec("CartPole-v1", 3)
    pol = LinearPolicy.for_env(envs)
    # always push left (action 0) vs always right: both fall within a few dozen steps
    params = np.zeros((3, pol.n_params))
    params[1, -1] = 1.0  # bias of action 1
    ret, steps = gf.population_returns(envs, pol, params, seed=0)
    assert ret.shape == (3,) and np.all((ret >= 8) & (ret < 60)) and steps == int(ret.sum())
    envs.close()


def test_all_five_are_registered_for_cartpole():
    algos = registry()
    for name in ["hill_climbing", "random_search", "es", "cem", "finite_difference"]:
        assert algos[name].bench_env == "CartPole-v1" and algos[name].bench_target == 475.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cem_default_config_solves_cartpole(seed):
    h = gf.train_cem("CartPole-v1", run=Run(steps=100_000, seed=seed, target=475.0, eval_every=2000))
    assert h.solved and h.final_return >= 475 and h.stopped == "target"
    assert h.model(np.zeros((2, 4), dtype=np.float32)).shape == (2,)


@pytest.mark.parametrize("name", ["hill_climbing", "random_search", "es", "finite_difference"])
def test_other_methods_run_and_improve(name):
    h = gf.search(name, "CartPole-v1", run=Run(steps=8_000, seed=0, eval_every=2000))
    assert len(h.evals) >= 1 and h.env_steps >= 8_000
    assert max(h.logs["pop_best"]) > 30  # some candidate balanced the pole for longer than a random policy


def test_same_seed_same_history_whatever_the_global_generators_do():
    a = gf.train_es("CartPole-v1", run=Run(steps=3000, seed=3, eval_every=1000))
    np.random.seed(123)  # another global state, and global draws between evaluations
    b = gf.train_es("CartPole-v1", run=Run(steps=3000, seed=3, eval_every=1000, callback=lambda ev: np.random.rand(9)))
    assert [e[2] for e in a.evals] == [e[2] for e in b.evals] and a.logs == b.logs
    np.testing.assert_array_equal(a.model.theta, b.model.theta)


def test_unknown_method_is_a_readable_error():
    with pytest.raises(ValueError, match="Available: hill_climbing"):
        gf.search("cmaes", "CartPole-v1", run=Run(steps=100))
