"""Small environments built to expose a phenomenon of the lecture that CartPole and Pendulum do not show.

- `OverestimationTrapEnv` (``lecturekit/OverestimationTrap-v0``): one decision, the risk x in [0, 1], then K steps
  paying N(-mu x, (sigma x)^2) each: risk only costs.  A critic fitted to the noisy rewards has random bumps along
  the action axis; the deterministic actor climbs them, so Q(s, mu(s)) overestimates, more the noisier the state,
  and bootstrapping carries the excess back to the first decision (lecture: "TD3", overestimation bias).  A single
  critic (DDPG) comes to believe that risk pays; the minimum of two (TD3) does not.
- `DistractorObservation` (``lecturekit/CartPoleDistractors-v0``): CartPole with D extra observation features of
  pure noise. The task is as easy as CartPole, but a linear policy has (4 + D + 1) x 2 parameters, so a search in
  parameter space has D-dimensional directions to waste its samples on (lecture: "Gradient-free methods",
  curse of dimensionality).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control import CartPoleEnv


class OverestimationTrapEnv(gym.Env):
    """One decision at t = 0, then `horizon` steps whose rewards depend only on that decision.

    The first action a in [-1, 1] sets the risk x = (1 - a) / 2 in [0, 1] (a = 1: no risk, a = -1: full risk).
    Each of the next `horizon` steps pays N(-trap_mean * x, (trap_std * x)^2), whatever the action.  The best
    policy takes no risk (return exactly 0); full risk costs trap_mean * horizon in expectation and pays noise.
    Observation (3,) float32: [at the start, x, steps left / horizon].  Action (1,) in [-1, 1].
    The episode terminates after horizon + 1 steps; `info["risk"]` is x.
    """

    metadata = {"render_modes": []}

    def __init__(self, horizon: int = 10, trap_mean: float = 0.05, trap_std: float = 2.0):
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        self.horizon, self.trap_mean, self.trap_std = int(horizon), float(trap_mean), float(trap_std)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.t, self.risk = 0, 0.0

    def _obs(self) -> np.ndarray:
        left = 1.0 if self.t == 0 else (self.horizon + 1 - self.t) / self.horizon
        return np.array([self.t == 0, self.risk, left], dtype=np.float32)

    def expected_return(self, first_action: float) -> float:
        """The undiscounted expected return of an episode that starts with `first_action`."""
        return -self.trap_mean * self.horizon * (1.0 - float(np.clip(first_action, -1.0, 1.0))) / 2.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t, self.risk = 0, 0.0
        return self._obs(), {"risk": self.risk}

    def step(self, action):
        a = float(np.clip(np.asarray(action, dtype=np.float32).reshape(-1)[0], -1.0, 1.0))
        if self.t == 0:
            self.risk, reward = (1.0 - a) / 2.0, 0.0
        else:
            reward = float(self.risk * self.np_random.normal(-self.trap_mean, self.trap_std))
        self.t += 1
        return self._obs(), reward, self.t > self.horizon, False, {"risk": self.risk}


class DistractorObservation(gym.ObservationWrapper):
    """Append `n` features drawn i.i.d. N(0, 1) at every step (from the wrapper's own seeded generator)."""

    def __init__(self, env: gym.Env, n: int):
        super().__init__(env)
        if n < 0:
            raise ValueError(f"the number of distractor features must be >= 0, got {n}")
        self.n = int(n)
        low, high = env.observation_space.low, env.observation_space.high
        inf = np.full(self.n, np.inf, dtype=np.float32)
        self.observation_space = spaces.Box(np.concatenate([low, -inf]).astype(np.float32),
                                            np.concatenate([high, inf]).astype(np.float32), dtype=np.float32)

    def observation(self, obs) -> np.ndarray:
        noise = self.np_random.standard_normal(self.n).astype(np.float32)
        return np.concatenate([np.asarray(obs, dtype=np.float32), noise])


def make_cartpole_distractors(n_distractors: int = 64, **kwargs) -> gym.Env:
    """CartPole (registered with CartPole-v1's 500-step limit) with `n_distractors` noise features: obs (4 + D,)."""
    return DistractorObservation(CartPoleEnv(**kwargs), n_distractors)

