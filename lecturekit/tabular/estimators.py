"""The score-function (likelihood-ratio, REINFORCE) gradient estimator.  Lecture: "Apply the Log-Derivative
Identity", "Only the Policy Depends on theta", "From Objective to Sample-Based Learning".

    grad J(theta) = E_tau[ grad log P(tau; theta) R(tau) ] = E_tau[ (sum_t grad log pi_theta(a_t|s_t)) R(tau) ]

estimated by the average over n sampled episodes. It uses the states, actions and rewards of the episodes and the
policy, never the transition probabilities. With discounting, R(tau) = sum_t gamma^t r_t (the quantity whose
expectation is J); the reward-to-go form weights grad log pi(a_t|s_t) by sum_{k >= t} gamma^k r_k only (dropping
the past rewards, which have zero mean against later scores: still unbiased, less variance).

Baselines (lecture: "Variance Reduction By Baseline"): in the reward-to-go form, any b(s_t) that does not depend on
a_t may be subtracted,

    grad J = E[ sum_t gamma^t grad log pi(a_t|s_t) (G_t - b(s_t)) ],

because E_{a ~ pi(.|s)}[grad log pi(a|s)] = sum_a grad pi(a|s) = grad 1 = 0: the baseline changes the variance of the
estimate, not its mean.  Here b is a constant or a table b[s] (e.g. the exact V_pi, or `monte_carlo_values`).

Episodes are (states (T,), actions (T,), rewards (T,)) tuples (`mdp.Episode`) as returned by
`TabularMDP.sample_episodes`; the policy is the tabular softmax pi(a|s) = softmax(theta[s]).  Shapes: theta (S, A);
per-episode gradients (n, S, A).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from lecturekit.returns import discounted_returns
from lecturekit.tabular.mdp import Episode


def _np(theta) -> np.ndarray:
    return theta.detach().double().numpy() if isinstance(theta, Tensor) else np.asarray(theta, dtype=np.float64)


def _softmax(theta: np.ndarray) -> np.ndarray:
    pi = np.exp(theta - theta.max(-1, keepdims=True))
    return pi / pi.sum(-1, keepdims=True)


def _weights(rewards: np.ndarray, gamma: float, reward_to_go: bool) -> np.ndarray:
    """Per-step weights: R(tau) for every t, or sum_{k >= t} gamma^k r_k with reward_to_go.  Shape (T,)."""
    disc = np.asarray(rewards, dtype=np.float64) * gamma ** np.arange(len(rewards))
    if reward_to_go:
        return np.cumsum(disc[::-1])[::-1]
    return np.full(len(rewards), disc.sum())


def tabular_softmax_score(theta, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """grad_theta log pi_theta(a_t|s_t) for a tabular softmax policy: e_{a_t} - pi(.|s_t) in row s_t, 0 elsewhere.

    Shapes: theta (S, A), states, actions (T,) -> (T, S, A).
    """
    theta = _np(theta)
    pi = _softmax(theta)
    states, actions = np.asarray(states), np.asarray(actions)
    score = np.zeros((len(states), *theta.shape))
    t = np.arange(len(states))
    score[t, states] = -pi[states]
    score[t, states, actions] += 1.0
    return score


def per_episode_gradients(theta, episodes: Sequence[Episode], gamma: float, reward_to_go: bool = False,
                          baseline=0.0) -> np.ndarray:
    """One score-function gradient sample per episode, g_i = sum_t grad log pi(a_t|s_t) w_t, for a tabular softmax.

    w_t = R(tau), or with reward_to_go sum_{k >= t} gamma^k r_k - gamma^t b(s_t) = gamma^t (G_t - b(s_t)); the
    baseline (a number, or an array (S,) with b[s]) needs reward_to_go.  grad log pi(a|s) is e_a - pi(.|s) in row s
    (zero elsewhere).  Their mean is the estimate; their spread gives its standard error.  Shape (n, S, A).
    """
    theta = _np(theta)
    S = theta.shape[0]
    b = np.broadcast_to(np.asarray(baseline, dtype=np.float64), (S,))
    if b.any() and not reward_to_go:
        raise ValueError("a baseline b(s_t) needs reward_to_go=True (it is subtracted from the returns-to-go)")
    out = np.zeros((len(episodes), *theta.shape))
    if not episodes:
        return out
    # all steps of all episodes at once: scatter w_t (e_a - pi(s)) into episode i's (S, A) slot
    lengths = np.array([len(s) for s, _, _ in episodes])
    ep = np.repeat(np.arange(len(episodes)), lengths)
    s = np.concatenate([e[0] for e in episodes]).astype(int)
    a = np.concatenate([e[1] for e in episodes]).astype(int)
    t = np.concatenate([np.arange(n) for n in lengths])
    w = np.concatenate([_weights(e[2], gamma, reward_to_go) for e in episodes]) - gamma ** t * b[s]
    pi = _softmax(theta)
    np.add.at(out, (ep, s), -w[:, None] * pi[s])
    np.add.at(out, (ep, s, a), w)
    return out


def score_function_gradient(theta, episodes: Sequence[Episode], gamma: float, reward_to_go: bool = False) -> np.ndarray:
    """The Monte Carlo estimate (1/n) sum_i (sum_t grad log pi(a_t^i|s_t^i)) R(tau_i) for a tabular softmax policy.

    Shape (S, A), like theta.
    """
    if len(episodes) == 0:
        raise ValueError("need at least one episode")
    return per_episode_gradients(theta, episodes, gamma, reward_to_go).mean(0)


def surrogate_gradient(log_prob: Callable[[Tensor, Tensor], Tensor], params: Sequence[Tensor],
                       episodes: Sequence[Episode], gamma: float, reward_to_go: bool = False) -> list[Tensor]:
    """The same estimator for any differentiable policy, by autograd on the surrogate
    L = (1/n) sum_i sum_t log pi(a_t|s_t) w_t  (weights are constants): grad L is the estimate.

    log_prob(states, actions) -> (T,) log pi(a_t|s_t) must depend on `params`. Returns one gradient per parameter.
    """
    total = 0.0
    for states, actions, rewards in episodes:
        w = torch.as_tensor(_weights(rewards, gamma, reward_to_go))
        logp = log_prob(torch.as_tensor(states), torch.as_tensor(actions))
        total = total + (logp.double() * w).sum()
    return list(torch.autograd.grad(total / len(episodes), list(params)))


# --- baselines and how good an estimate is ---------------------------------------------------------------------
def monte_carlo_values(episodes: Sequence[Episode], gamma: float, n_states: int, default: float = 0.0) -> np.ndarray:
    """A learned state-value baseline: the average return-to-go G_t observed from each state (every visit).

    This is the least-squares fit of b[s] to the sampled G_t with one-hot state features.  States never visited
    get `default`.  Returns (S,).
    """
    total, count = np.zeros(n_states), np.zeros(n_states)
    for states, _, rewards in episodes:
        np.add.at(total, np.asarray(states, dtype=int), discounted_returns(rewards, gamma))
        np.add.at(count, np.asarray(states, dtype=int), 1.0)
    return np.where(count > 0, total / np.maximum(count, 1.0), default)


def mean_return_to_go(episodes: Sequence[Episode], gamma: float) -> float:
    """A constant baseline: the average G_t over every step of the given episodes."""
    return float(np.mean(np.concatenate([discounted_returns(r, gamma) for _, _, r in episodes])))


def estimator_stats(samples: np.ndarray, exact) -> dict:
    """How good the estimate (mean of `samples`) is, with per-episode samples (n, ...) and the exact gradient.

    Returns {'variance': total variance of one episode's sample (sum over entries), 'bias_z': the largest
    |mean - exact| / standard error over entries (about N(0, 1) per entry when unbiased),
    'error': ||mean - exact||, 'rel_error': ||mean - exact|| / ||exact||}.
    """
    exact = _np(exact)
    n = samples.shape[0]
    mean = samples.mean(0)
    sd = samples.std(0, ddof=1)
    live = sd > 0
    diff = mean - exact
    return {"variance": float(samples.var(0, ddof=1).sum()),
            "bias_z": float(np.max(np.abs(diff[live]) / (sd[live] / np.sqrt(n)))) if live.any() else 0.0,
            "error": float(np.linalg.norm(diff)),
            "rel_error": float(np.linalg.norm(diff) / np.linalg.norm(exact))}
