"""lecturekit.tabular.estimators with baselines: per-episode gradients with a baseline against a hand-worked episode and part 1's estimator,
and the claim itself (unbiased for any state baseline) against the exact gradient of the small MDP."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lecturekit.tabular import estimators
from lecturekit.tabular.mdp import small_mdp


def test_hand_worked_episode():
    # 2 states, 2 actions, theta = 0: pi = (1/2, 1/2) everywhere, score of action a in state s: row s = e_a - 1/2.
    # episode: (s=0, a=1, r=1), (s=1, a=0, r=2), gamma = 0.5 -> G = [1 + 0.5 * 2, 2] = [2, 2]
    # baseline b = [1, 3]: weights gamma^t (G_t - b(s_t)) = [1 * (2 - 1), 0.5 * (2 - 3)] = [1, -0.5]
    # g = 1 * row0 (-1/2, 1/2) + (-0.5) * row1 (1/2, -1/2)
    ep = (np.array([0, 1]), np.array([1, 0]), np.array([1.0, 2.0]))
    g = estimators.per_episode_gradients(np.zeros((2, 2)), [ep], 0.5, reward_to_go=True, baseline=np.array([1.0, 3.0]))
    assert np.allclose(g[0], [[-0.5, 0.5], [-0.25, 0.25]])


def test_zero_baseline_is_part_one_reward_to_go_estimator():
    mdp = small_mdp()
    theta = torch.tensor(np.random.default_rng(3).normal(size=(mdp.n_states, mdp.n_actions)))
    eps = mdp.sample_episodes(theta, 200, np.random.default_rng(0))
    assert np.allclose(estimators.per_episode_gradients(theta, eps, mdp.gamma, reward_to_go=True, baseline=0.0),
                       estimators.per_episode_gradients(theta, eps, mdp.gamma, reward_to_go=True))


def test_constant_and_state_baselines_keep_the_mean_and_v_reduces_variance():
    mdp = small_mdp()
    theta = torch.tensor(np.random.default_rng(1).normal(size=(mdp.n_states, mdp.n_actions)))
    eps = mdp.sample_episodes(theta, 8000, np.random.default_rng(0))
    exact = mdp.exact_gradient(theta)
    stats = {name: estimators.estimator_stats(estimators.per_episode_gradients(theta, eps, mdp.gamma, True, b), exact)
             for name, b in [("none", 0.0), ("const", 5.0), ("V", mdp.value(theta).numpy())]}
    for s in stats.values():
        assert s["bias_z"] < 4.5  # within sampling error of the exact gradient, entry by entry
    # a large constant adds variance (it is far from the returns); the exact V removes some
    assert stats["const"]["variance"] > stats["none"]["variance"] > stats["V"]["variance"]


def test_monte_carlo_values_converge_to_v():
    mdp = small_mdp()
    theta = torch.zeros(mdp.n_states, mdp.n_actions, dtype=torch.float64)
    eps = mdp.sample_episodes(theta, 4000, np.random.default_rng(0))
    v_hat = estimators.monte_carlo_values(eps, mdp.gamma, mdp.n_states)
    assert np.allclose(v_hat[~mdp.terminal], mdp.value(theta).numpy()[~mdp.terminal], atol=0.05)
    assert v_hat[mdp.terminal][0] == 0.0  # never visited: the default


def test_mean_return_to_go_hand_worked():
    eps = [(np.array([0, 0]), np.array([0, 0]), np.array([1.0, 1.0])), (np.array([0]), np.array([0]), np.array([4.0]))]
    # G = [1 + 0.5, 1] and [4]: mean (1.5 + 1 + 4) / 3
    assert np.isclose(estimators.mean_return_to_go(eps, 0.5), 6.5 / 3)


def test_estimator_stats_on_known_samples():
    samples = np.array([[1.0, 0.0], [3.0, 0.0]])  # mean (2, 0), variance of entry 0 (ddof 1) = 2
    s = estimators.estimator_stats(samples, np.array([2.0, 1.0]))
    assert np.isclose(s["variance"], 2.0) and np.isclose(s["error"], 1.0) and s["bias_z"] == 0.0


def test_baseline_needs_reward_to_go():
    ep = (np.array([0]), np.array([1]), np.array([1.0]))
    with pytest.raises(ValueError, match="reward_to_go"):
        estimators.per_episode_gradients(np.zeros((2, 2)), [ep], 0.5, baseline=1.0)
