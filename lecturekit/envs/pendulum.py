"""Gymnasium's Pendulum-v1, N copies stepped as NumPy arrays: the off-policy benchmarks' cheap evaluation.

An evaluation of the Pendulum benchmarks plays 10 episodes of 200 steps.  Gymnasium steps the 10 copies of its
vector env one by one in Python; here one step of all N copies is a handful of array operations, the same ones
`gymnasium.envs.classic_control.PendulumEnv.step` does for one copy, in the same order and precision, so returns and
observations equal gymnasium's step for step (tests/test_pendulum_numpy.py checks it).  Only what an evaluation
needs: the vector env's `reset(seed=)` (copy i with seed + i) / `step` / `close` for `evaluation.evaluate`; every
episode is 200 steps long (Pendulum never terminates, it is truncated).

    theta_dot' = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt, -8, 8),  theta' = theta + theta_dot' dt
    reward     = -(normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2),  u = clip(action, -2, 2)
    obs        = (cos theta, sin theta, theta_dot) as float32
"""
from __future__ import annotations

import numpy as np

G, M, L, DT, MAX_SPEED, MAX_TORQUE, EPISODE_STEPS = 10.0, 1.0, 1.0, 0.05, 8.0, 2.0, 200


class PendulumBatch:
    """N Pendulum-v1 copies; state theta, theta_dot: (N,) float64 each, as in gymnasium."""

    def __init__(self, n: int):
        self.n = n
        self.theta = np.zeros(n)
        self.theta_dot = np.zeros(n)
        self.steps = 0

    def reset(self, seed: int) -> tuple[np.ndarray, dict]:
        """Copy i starts from gymnasium's reset(seed=seed + i): theta ~ U(-pi, pi), theta_dot ~ U(-1, 1)."""
        high = np.array([np.pi, 1.0])
        start = np.array([np.random.default_rng(seed + i).uniform(low=-high, high=high) for i in range(self.n)])
        self.theta, self.theta_dot = start[:, 0], start[:, 1]
        self.steps = 0
        return self.obs(), {}

    def obs(self) -> np.ndarray:
        return np.stack([np.cos(self.theta), np.sin(self.theta), self.theta_dot], axis=1).astype(np.float32)

    def step(self, action: np.ndarray):
        """action (N, 1) -> (obs (N, 3) float32, reward (N,) float64, terminated (N,), truncated (N,), {})."""
        u = np.clip(action, -MAX_TORQUE, MAX_TORQUE)[:, 0]
        th, thdot = self.theta, self.theta_dot
        costs = ((th + np.pi) % (2 * np.pi) - np.pi) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
        new_thdot = np.clip(thdot + (3 * G / (2 * L) * np.sin(th) + 3.0 / (M * L**2) * u) * DT, -MAX_SPEED, MAX_SPEED)
        self.theta, self.theta_dot = th + new_thdot * DT, new_thdot
        self.steps += 1
        return self.obs(), -costs, np.zeros(self.n, bool), np.full(self.n, self.steps >= EPISODE_STEPS), {}

    def close(self) -> None:
        pass

