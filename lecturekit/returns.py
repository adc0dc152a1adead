"""Returns and advantages.  Lecture: "REINFORCE" (returns-to-go), "Actor-Critic" (bootstrapping), "PPO" (GAE).

Rollout arrays are (T, N): T time steps of N parallel environments.
"""
from __future__ import annotations

import numpy as np


def discounted_returns(rewards, gamma: float) -> np.ndarray:
    """G_t = sum_{k >= t} gamma^(k - t) r_k for one episode.  Lecture: returns-to-go in REINFORCE.

    rewards: list or 1-D array of length T (ints allowed).  Returns a new float64 array of shape (T,);
    the input is not modified.  Computed backwards: G_t = r_t + gamma * G_{t+1}, G_T = 0.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-D (one episode), got shape {r.shape}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    g = np.zeros_like(r)
    running = 0.0
    for t in range(len(r) - 1, -1, -1):
        running = r[t] + gamma * running
        g[t] = running
    return g


def _check_tn(name: str, x: np.ndarray, shape: tuple | None = None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (T, N), got shape {x.shape}")
    if shape is not None and x.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {x.shape}")
    return x


def bootstrapped_returns(rewards, terminated, last_value, gamma: float) -> np.ndarray:
    """n-step bootstrapped returns: R_t = r_t + gamma (1 - terminated_t) R_{t+1},  R_T = V(s_T) = last_value.

    Lecture: "Actor-Critic" / A2C targets.  rewards, terminated: (T, N); last_value: (N,).  Returns (T, N) float64.
    A terminated step cuts the sum: nothing after it belongs to the same episode.
    """
    r = _check_tn("rewards", rewards).astype(np.float64)
    d = _check_tn("terminated", terminated, r.shape).astype(np.float64)
    v = np.asarray(last_value, dtype=np.float64)
    if v.shape != (r.shape[1],):
        raise ValueError(f"last_value must have shape ({r.shape[1]},), got {v.shape}")
    out = np.empty_like(r)
    running = v.copy()
    for t in range(r.shape[0] - 1, -1, -1):
        running = r[t] + gamma * (1.0 - d[t]) * running
        out[t] = running
    return out


def gae(rewards, values, terminated, last_value, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimation.  Lecture: "PPO", GAE.

    delta_t = r_t + gamma (1 - terminated_t) V_{t+1} - V_t   (V_T = last_value)
    A_t     = delta_t + gamma lam (1 - terminated_t) A_{t+1}  (A_T = 0)
    lam = 0 gives the one-step TD error; lam = 1 gives the bootstrapped return minus V.
    rewards, values, terminated: (T, N); last_value: (N,).  Returns (T, N) float64.
    """
    r = _check_tn("rewards", rewards).astype(np.float64)
    v = _check_tn("values", values, r.shape).astype(np.float64)
    d = _check_tn("terminated", terminated, r.shape).astype(np.float64)
    lv = np.asarray(last_value, dtype=np.float64)
    if lv.shape != (r.shape[1],):
        raise ValueError(f"last_value must have shape ({r.shape[1]},), got {lv.shape}")
    next_v = np.concatenate([v[1:], lv[None]], axis=0)
    delta = r + gamma * (1.0 - d) * next_v - v
    adv = np.empty_like(r)
    running = np.zeros(r.shape[1])
    for t in range(r.shape[0] - 1, -1, -1):
        running = delta[t] + gamma * lam * (1.0 - d[t]) * running
        adv[t] = running
    return adv


def nstep_returns(rewards, values, terminated, last_value, gamma: float, n: int) -> np.ndarray:
    """n-step targets G_t^(n) = sum_{k<m} gamma^k r_{t+k} + gamma^m V_{t+m} with m = min(n, T - t), cut (no
    bootstrap) where an episode terminates.  Lecture: "Actor-Critic Learning", TD and n-step bootstrapping.

    n = 1 is the TD target r_t + gamma (1 - d_t) V_{t+1}; n >= T gives `bootstrapped_returns` (the A2C
    target, which looks up to the end of the rollout).  Shapes: rewards, values, terminated (T, N);
    last_value (N,) = V after the last step.  Returns (T, N) float64.
    """
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(terminated, dtype=np.float64)
    v = np.vstack([np.asarray(values, dtype=np.float64), np.asarray(last_value, dtype=np.float64)[None]])
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    T = r.shape[0]
    out = np.empty_like(r)
    for t in range(T):
        g, disc, alive = np.zeros(r.shape[1]), 1.0, np.ones(r.shape[1])
        m = min(n, T - t)
        for k in range(m):
            g += alive * disc * r[t + k]
            disc *= gamma
            alive = alive * (1.0 - d[t + k])
        out[t] = g + alive * disc * v[t + m]
    return out
