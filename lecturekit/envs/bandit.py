"""The precision bandit of notebook 06 (lecture: "Policy Parametrizations", Gaussian policy with sigma_theta(s)).

One-step episodes: observe s ~ U[-1, 1], act a in [-1, 1], reward -w(s) (a - s/2)^2 with w(s) = 25^((s + 1) / 2).
The best action is s/2; precision is cheap on the left (w = 1) and expensive on the right (w = 25), so with an
entropy bonus alpha H(pi(.|s)) the best Gaussian spread depends on the state:

    sigma*(s) = sqrt(alpha / (2 w(s)))    (one per state),    sigma*_shared = sqrt(alpha / (2 E_s[w(s)]))

(the expected reward of state s is -w(s) ((mu - s/2)^2 + sigma^2) and H = log sigma + const).  Registered as
``lecturekit/PrecisionBandit-v0``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np


def weight(s) -> np.ndarray:
    """w(s) = 25^((s + 1) / 2): 1 at s = -1, 5 at s = 0, 25 at s = 1."""
    return 25.0 ** ((np.asarray(s, dtype=np.float64) + 1) / 2)


class PrecisionBandit(gym.Env):
    """One-step episodes: observe s ~ U[-1, 1], act a in [-1, 1], reward -w(s) (a - s/2)^2."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.s = float(self.np_random.uniform(-1.0, 1.0))
        return np.array([self.s], np.float32), {}

    def step(self, action):
        r = -float(weight(self.s)) * (float(np.asarray(action).reshape(-1)[0]) - self.s / 2) ** 2
        return np.array([self.s], np.float32), r, True, False, {}
