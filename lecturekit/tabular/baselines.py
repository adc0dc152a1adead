"""Baselines for the score-function estimator, measured on a tabular MDP.  Lecture: "Variance Reduction By Baseline".

    grad J = E[ sum_t gamma^t grad log pi(a_t|s_t) (G_t - b(s_t)) ]      for any b that does not depend on a_t

because E_{a ~ pi(.|s)}[grad log pi(a|s)] = sum_a grad pi(a|s) = grad 1 = 0.  The baseline changes the variance of
the estimate, not its mean.  Here b is either a constant or a table b[s] (e.g. the exact V_pi, or a learned one).

Episodes are (states (T,), actions (T,), rewards (T,)) tuples as returned by `TabularMDP.sample_episodes`; the policy
is the tabular softmax pi(a|s) = softmax(theta[s]).  Shapes: theta (S, A); per-episode gradients (n, S, A).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

from lecturekit.returns import discounted_returns

Episode = tuple[np.ndarray, np.ndarray, np.ndarray]


def _np(theta) -> np.ndarray:
    return theta.detach().double().numpy() if isinstance(theta, Tensor) else np.asarray(theta, dtype=np.float64)


def per_episode_gradients(theta, episodes: Sequence[Episode], gamma: float, baseline=0.0) -> np.ndarray:
    """g_i = sum_t gamma^t (G_t - b(s_t)) grad log pi(a_t|s_t), one sample per episode, for a tabular softmax.

    baseline: a number (the same b for every state) or an array (S,) with b[s].  grad log pi(a|s) is e_a - pi(.|s) in
    row s (zero elsewhere).  The mean over episodes is the REINFORCE estimate.  Returns (n, S, A).
    """
    th = _np(theta)
    S, A = th.shape
    b = np.broadcast_to(np.asarray(baseline, dtype=np.float64), (S,))
    out = np.zeros((len(episodes), S, A))
    if not episodes:
        return out
    pi = np.exp(th - th.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    lengths = np.array([len(s) for s, _, _ in episodes])
    ep = np.repeat(np.arange(len(episodes)), lengths)
    s = np.concatenate([e[0] for e in episodes]).astype(int)
    a = np.concatenate([e[1] for e in episodes]).astype(int)
    t = np.concatenate([np.arange(n) for n in lengths])
    G = np.concatenate([discounted_returns(r, gamma) for _, _, r in episodes])
    w = gamma ** t * (G - b[s])
    np.add.at(out, (ep, s), -w[:, None] * pi[s])  # the -pi(.|s) part of the score, in row s
    np.add.at(out, (ep, s, a), w)                 # the e_a part
    return out


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
