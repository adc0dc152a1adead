"""Gymnasium's CartPole, N copies stepped as NumPy arrays: the on-policy benchmarks' cheap evaluation.

An evaluation of the CartPole benchmarks plays 20 greedy episodes of up to 500 steps every 2,048 training steps.
Gymnasium's native vector CartPole (`CartPoleVectorEnv`) already steps all copies as arrays, but it also checks
every action against its action space, resets finished copies and builds float32 observations of its own: about
40 us per step.  Here one step is the same array operations as `CartPoleVectorEnv.step`, in the same order and
float64 precision, from the same start states (`reset(seed)` draws them from gymnasium's `seeding.np_random(seed)`
as `CartPoleVectorEnv.reset(seed=seed)` does), so observations, terminations and returns equal gymnasium's step for
step (tests/test_cartpole_numpy.py checks it).  Only what an evaluation needs: the vector env's `reset(seed=)` /
`step` / `close` for `evaluation.evaluate`, which counts each copy's first episode; a finished copy is not reset.

    force  = +-10 N;  temp = (force + m_p l theta_dot^2 sin theta) / (m_c + m_p)
    theta_acc = (g sin theta - cos theta temp) / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
    x_acc = temp - m_p l theta_acc cos theta / (m_c + m_p);  explicit Euler with dt = 0.02
    reward 1 per step; terminated when |x| > 2.4 or |theta| > 12 degrees; truncated after max_episode_steps
"""
from __future__ import annotations

import math
import numpy as np
from gymnasium.utils import seeding

GRAVITY, MASSCART, MASSPOLE, LENGTH, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS = MASSPOLE + MASSCART
POLEMASS_LENGTH = MASSPOLE * LENGTH
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4


class CartPoleBatch:
    """N CartPole copies without autoreset; state (4, N) float64 = (x, x_dot, theta, theta_dot), as in gymnasium."""

    def __init__(self, n: int, max_episode_steps: int = 500):
        self.n, self.max_episode_steps = n, max_episode_steps
        self.state = np.zeros((4, n))
        self.steps = 0

    def reset(self, seed: int) -> tuple[np.ndarray, dict]:
        """The start states of gymnasium's `CartPoleVectorEnv(n).reset(seed=seed)`: U(-0.05, 0.05) each."""
        rng, _ = seeding.np_random(seed)
        self.state = rng.uniform(low=-0.05, high=0.05, size=(4, self.n))
        self.steps = 0
        return self.state.T.astype(np.float32), {}

    def step(self, action: np.ndarray):
        """action (N,) in {0, 1} -> (obs (N, 4) float32, reward (N,) of 1, terminated (N,), truncated (N,), {})."""
        x, x_dot, theta, theta_dot = self.state
        force = np.sign(np.asarray(action) - 0.5) * FORCE_MAG
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + POLEMASS_LENGTH * np.square(theta_dot) * sintheta) / TOTAL_MASS
        thetaacc = (GRAVITY * sintheta - costheta * temp) / (
            LENGTH * (4.0 / 3.0 - MASSPOLE * np.square(costheta) / TOTAL_MASS))
        xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
        x, x_dot = x + TAU * x_dot, x_dot + TAU * xacc
        theta, theta_dot = theta + TAU * theta_dot, theta_dot + TAU * thetaacc
        self.state = np.stack((x, x_dot, theta, theta_dot))
        self.steps += 1
        terminated = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)
        truncated = np.full(self.n, self.steps >= self.max_episode_steps)
        return self.state.T.astype(np.float32), np.ones(self.n), terminated, truncated, {}

    def close(self) -> None:
        pass

