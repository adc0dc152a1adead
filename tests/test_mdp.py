"""Tests of lecturekit.tabular.mdp against independent computations: enumeration of every trajectory, finite differences,
value iteration vs enumeration of deterministic policies, and Monte Carlo sampling."""
import itertools

import numpy as np
import pytest
import torch

from lecturekit.tabular.mdp import TabularMDP, discounted_return, random_mdp, small_mdp


def tiny_mdp() -> TabularMDP:
    """3 live states + terminal 3, 2 actions, an acyclic graph 0 -> {1, 2} -> ... -> 3: every episode has <= 3 steps."""
    P = np.zeros((4, 2, 4))
    P[0, 0] = [0, 0.7, 0.3, 0]
    P[0, 1] = [0, 0.2, 0.8, 0]
    P[1, 0] = [0, 0, 0.5, 0.5]
    P[1, 1] = [0, 0, 0.0, 1.0]
    P[2, :, 3] = 1.0
    P[3, :, 3] = 1.0
    R = np.array([[1.0, 0.0], [-1.0, 2.0], [3.0, -2.0], [0.0, 0.0]])
    return TabularMDP(P=P, R=R, gamma=0.8, mu0=[1.0, 0, 0, 0], terminal=[False, False, False, True])


def enumerate_trajectories(mdp: TabularMDP, pi: np.ndarray):
    """Yield (probability, discounted return, sum_t grad log pi(a_t|s_t)) for every trajectory of an acyclic MDP."""

    def rec(s, prob, ret, disc, score):
        if mdp.terminal[s]:
            yield prob, ret, score
            return
        for a in range(mdp.n_actions):
            # grad of log softmax(theta[s])_a w.r.t. theta is e_a - pi(.|s), only in row s
            g = score.copy()
            g[s] += np.eye(mdp.n_actions)[a] - pi[s]
            for s2 in range(mdp.n_states):
                p = pi[s, a] * mdp.P[s, a, s2]
                if p > 0:
                    yield from rec(s2, prob * p, ret + disc * mdp.R[s, a], disc * mdp.gamma, g)

    for s0 in range(mdp.n_states):
        if mdp.mu0[s0] > 0:
            yield from rec(s0, mdp.mu0[s0], 0.0, 1.0, np.zeros_like(pi))


def test_J_and_gradient_match_enumeration_of_all_trajectories():
    mdp = tiny_mdp()
    theta = torch.tensor([[0.3, -0.2], [1.0, 0.1], [-0.5, 0.4], [0.0, 0.0]], dtype=torch.float64)
    pi = torch.softmax(theta, -1).numpy()
    trajs = list(enumerate_trajectories(mdp, pi))
    assert np.isclose(sum(p for p, _, _ in trajs), 1.0)
    J_brute = sum(p * ret for p, ret, _ in trajs)
    grad_brute = sum(p * ret * score for p, ret, score in trajs)  # sum_tau P(tau) grad log P(tau) R(tau)
    assert np.isclose(mdp.J(theta).item(), J_brute, atol=1e-12)
    np.testing.assert_allclose(mdp.exact_gradient(theta).numpy(), grad_brute, atol=1e-12)


def test_hand_worked_values_on_tiny_mdp():
    # uniform policy: V(2) = (3 - 2)/2 = 0.5;  V(1) = 0.5*(-1 + 0.8*(0.5*0.5)) + 0.5*2 = 0.5*(-0.8) + 1 = 0.6
    # V(0) = 0.5*(1 + 0.8*(0.7*0.6 + 0.3*0.5)) + 0.5*(0 + 0.8*(0.2*0.6 + 0.8*0.5)) = 0.5*1.456 + 0.5*0.416 = 0.936
    mdp = tiny_mdp()
    V = mdp.value(torch.zeros(4, 2)).numpy()
    np.testing.assert_allclose(V, [0.936, 0.6, 0.5, 0.0], atol=1e-12)


def test_exact_gradient_matches_central_finite_differences():
    mdp = small_mdp()
    theta = torch.as_tensor(np.random.default_rng(1).normal(size=(5, 3)))
    eps = 1e-6
    fd = np.zeros((5, 3))
    for i, j in itertools.product(range(5), range(3)):
        d = torch.zeros(5, 3, dtype=torch.float64)
        d[i, j] = eps
        fd[i, j] = (mdp.J(theta + d).item() - mdp.J(theta - d).item()) / (2 * eps)
    np.testing.assert_allclose(mdp.exact_gradient(theta).numpy(), fd, atol=1e-8)


def test_policy_gradient_theorem_form_matches_autograd():
    # grad J = sum_s d(s) sum_a pi(a|s) (e_a - pi(s)) Q(s, a) = d(s) pi(a|s) A(s, a) for the softmax
    mdp = small_mdp()
    theta = torch.as_tensor(np.random.default_rng(2).normal(size=(5, 3)))
    d = mdp.discounted_state_visitation(theta)
    pg = d[:, None] * mdp.policy(theta) * mdp.advantages(theta)
    torch.testing.assert_close(pg, mdp.exact_gradient(theta))


def test_visitation_counts_match_simulation_and_advantages_average_to_zero():
    mdp = small_mdp()
    theta = torch.as_tensor(np.random.default_rng(3).normal(size=(5, 3)))
    pi = mdp.policy(theta)
    torch.testing.assert_close((pi * mdp.advantages(theta)).sum(-1), torch.zeros(5, dtype=torch.float64))
    # sum_s d(s) r_pi(s) = J, and d normalised sums to 1
    d = mdp.discounted_state_visitation(theta)
    assert torch.isclose(d @ (pi * torch.as_tensor(mdp.R)).sum(-1), mdp.J(theta))
    assert torch.isclose(mdp.discounted_state_visitation(theta, normalize=True).sum(), torch.tensor(1.0, dtype=torch.float64))
    # Monte Carlo estimate of d from sampled episodes: sum over visits of gamma^t
    eps = mdp.sample_episodes(theta, 20_000, np.random.default_rng(0))
    d_mc = np.zeros(5)
    for s, _, _ in eps:
        np.add.at(d_mc, s, mdp.gamma ** np.arange(len(s)))
    np.testing.assert_allclose(d_mc / len(eps), d.numpy(), atol=0.05)


def test_optimal_J_equals_best_deterministic_policy():
    mdp = random_mdp(3, 2, gamma=0.9, seed=4)
    best = -np.inf
    for actions in itertools.product(range(2), repeat=mdp.n_states):
        theta = torch.full((mdp.n_states, 2), -50.0, dtype=torch.float64)
        theta[range(mdp.n_states), actions] = 50.0
        best = max(best, mdp.J(theta).item())
    assert np.isclose(mdp.optimal_J(), best, atol=1e-9)
    assert mdp.optimal_J() > mdp.J(torch.zeros(mdp.n_states, 2)).item()


def test_optimal_q_values_greedy_policy_reaches_optimal_J():
    mdp = small_mdp()
    q = mdp.optimal_q_values()
    greedy = torch.as_tensor(np.eye(mdp.n_actions)[q.argmax(1)] * 50.0)  # a nearly deterministic greedy softmax
    assert mdp.J(greedy).item() == pytest.approx(mdp.optimal_J(), abs=1e-6)


def soft_policy_evaluation(mdp, pi: np.ndarray, alpha: float) -> np.ndarray:
    """Q of the soft values of a fixed policy by a linear solve (no iteration): V = (I - gamma P_pi)^-1 (r_pi + alpha H)."""
    live = ~mdp.terminal
    P, R = mdp.P * live[:, None, None], mdp.R * live[:, None]
    P_pi = np.einsum("sa,sat->st", pi, P)
    H = -(pi * np.log(pi)).sum(-1) * live
    V = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, (pi * R).sum(-1) + alpha * H)
    return R + mdp.gamma * P @ V


@pytest.mark.parametrize("alpha", [0.05, 0.3, 2.0])
def test_soft_value_iteration_is_the_fixed_point_of_soft_policy_evaluation(alpha):
    # softmax(Q*/alpha) evaluated exactly (linear solve) must give back Q* itself, and no other policy may beat it on
    # the regularised objective J_alpha
    mdp = small_mdp()
    Q = mdp.soft_q_values(alpha)
    pi = torch.softmax(torch.as_tensor(Q / alpha), -1).numpy()
    np.testing.assert_allclose(soft_policy_evaluation(mdp, pi, alpha), Q, atol=1e-9)
    best = mdp.soft_J(torch.as_tensor(Q / alpha), alpha).item()
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert mdp.soft_J(torch.randn(Q.shape, generator=g, dtype=torch.float64), alpha).item() <= best + 1e-12
    # soft_J of a policy = mu0 . V_soft, the same linear solve written out
    assert best == pytest.approx(float(mdp.mu0 @ (pi * (Q - alpha * np.log(pi))).sum(-1)), abs=1e-9)


def test_soft_values_approach_the_optimum_as_alpha_shrinks():
    mdp = small_mdp()
    np.testing.assert_allclose(mdp.soft_q_values(1e-4), mdp.optimal_q_values(), atol=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        mdp.soft_q_values(0.0)


def test_sampled_returns_are_unbiased_samples_of_J():
    mdp = small_mdp()
    theta = torch.as_tensor(np.random.default_rng(5).normal(size=(5, 3)))
    eps = mdp.sample_episodes(theta, 20_000, np.random.default_rng(1))
    G = np.array([discounted_return(r, mdp.gamma) for _, _, r in eps])
    assert abs(G.mean() - mdp.J(theta).item()) < 4 * G.std() / np.sqrt(len(G))
    s, a, r = eps[0]
    assert s.dtype.kind == "i" and a.dtype.kind == "i" and len(s) == len(a) == len(r) >= 1
    assert not mdp.terminal[np.concatenate([e[0] for e in eps])].any()


def test_sampling_is_seeded_and_tiny_mdp_episode_frequencies_match_enumeration():
    mdp = tiny_mdp()
    theta = torch.zeros(4, 2)
    e1 = mdp.sample_episodes(theta, 5, np.random.default_rng(7))
    e2 = mdp.sample_episodes(theta, 5, np.random.default_rng(7))
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(e1, e2))
    eps = mdp.sample_episodes(theta, 40_000, np.random.default_rng(0))
    lengths = np.bincount([len(s) for s, _, _ in eps], minlength=4) / len(eps)
    # P(length 2) = P(0 -> 2) + P(0 -> 1, a=1) = 0.5*0.3 + 0.5*0.8 + 0.5*(0.5*0.7 + 0.5*0.2)*... computed below
    p1 = 0.5 * 0.7 + 0.5 * 0.2  # reach state 1
    p_len3 = p1 * 0.5 * 0.5  # from 1: action 0 (1/2) then to state 2 (1/2)
    np.testing.assert_allclose(lengths[1:], [0.0, 1 - p_len3, p_len3], atol=0.01)


def test_validation_messages():
    with pytest.raises(ValueError, match="sum to 1"):
        TabularMDP(P=np.ones((2, 1, 2)), R=np.zeros((2, 1)), gamma=0.9, mu0=[1, 0])
    with pytest.raises(ValueError, match="theta must have shape"):
        small_mdp().J(torch.zeros(3, 3))


# ---------------------------------------------------------------------------------------------------- estimators
from lecturekit.tabular.estimators import (per_episode_gradients, score_function_gradient, surrogate_gradient,  # noqa: E402
                                   tabular_softmax_score)


def test_log_prob_terms_sum_to_enumerated_trajectory_probability():
    mdp = tiny_mdp()
    theta = torch.tensor([[0.3, -0.2], [1.0, 0.1], [-0.5, 0.4], [0.0, 0.0]], dtype=torch.float64)
    # trajectory 0 -a0-> 1 -a0-> 2 -a1-> end: prob = pi(0|0) 0.7 pi(0|1) 0.5 pi(1|2) 1
    pi = torch.softmax(theta, -1).numpy()
    terms = mdp.log_prob_terms(theta, [0, 1, 2], [0, 0, 1])
    total = terms["initial"] + terms["policy"].item() + terms["dynamics"]
    assert np.isclose(total, np.log(pi[0, 0] * 0.7 * pi[1, 0] * 0.5 * pi[2, 1] * 1.0))
    assert np.isclose(terms["dynamics"], np.log(0.7 * 0.5))
    other = mdp.log_prob_terms(theta + 1.7 * torch.eye(4, 2, dtype=torch.float64), [0, 1, 2], [0, 0, 1])
    assert other["dynamics"] == terms["dynamics"] and other["initial"] == terms["initial"]
    assert not np.isclose(other["policy"].item(), terms["policy"].item())


def test_tabular_score_matches_autograd():
    theta = torch.as_tensor(np.random.default_rng(0).normal(size=(5, 3)))
    s, a = np.array([0, 3, 3, 1]), np.array([2, 0, 1, 1])
    score = tabular_softmax_score(theta, s, a)
    for t in range(4):
        th = theta.clone().requires_grad_(True)
        torch.log_softmax(th, -1)[s[t], a[t]].backward()
        np.testing.assert_allclose(score[t], th.grad.numpy(), atol=1e-12)


def test_score_function_estimate_is_unbiased_on_the_tiny_mdp_by_enumeration():
    # the expectation of the per-episode gradient over all trajectories equals the exact gradient,
    # for both the whole-return and the reward-to-go weights
    mdp = tiny_mdp()
    theta = torch.tensor([[0.3, -0.2], [1.0, 0.1], [-0.5, 0.4], [0.0, 0.0]], dtype=torch.float64)
    pi = torch.softmax(theta, -1).numpy()
    exact = mdp.exact_gradient(theta).numpy()

    def rec(s, prob, states, actions, rewards):
        if mdp.terminal[s]:
            yield prob, (np.array(states), np.array(actions), np.array(rewards))
            return
        for a in range(2):
            for s2 in range(4):
                p = pi[s, a] * mdp.P[s, a, s2]
                if p > 0:
                    yield from rec(s2, prob * p, states + [s], actions + [a], rewards + [mdp.R[s, a]])

    trajs = list(rec(0, 1.0, [], [], []))
    probs = np.array([p for p, _ in trajs])
    for rtg in (False, True):
        g = per_episode_gradients(theta, [e for _, e in trajs], mdp.gamma, reward_to_go=rtg)
        np.testing.assert_allclose(np.tensordot(probs, g, axes=1), exact, atol=1e-12)


def test_monte_carlo_estimate_agrees_with_exact_gradient_and_autograd_surrogate():
    mdp = small_mdp()
    theta = torch.as_tensor(np.random.default_rng(1).normal(size=(5, 3)))
    eps = mdp.sample_episodes(theta, 20_000, np.random.default_rng(2))
    g = per_episode_gradients(theta, eps, mdp.gamma)
    est, se = g.mean(0), g.std(0) / np.sqrt(len(eps))
    assert np.all(np.abs(est - mdp.exact_gradient(theta).numpy()) < 5 * se + 1e-12)
    th = theta.clone().requires_grad_(True)
    (auto,) = surrogate_gradient(lambda s, a: torch.log_softmax(th, -1)[s, a], [th], eps[:50], mdp.gamma)
    np.testing.assert_allclose(auto.numpy(), score_function_gradient(theta, eps[:50], mdp.gamma), atol=1e-10)
