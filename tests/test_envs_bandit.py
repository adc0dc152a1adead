"""The precision bandit of notebook 06: a valid Gymnasium environment with the documented reward."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lecturekit.envs  # noqa: F401  (registers the course environments)
from lecturekit.envs.bandit import weight


def test_passes_gymnasium_check_env():
    check_env(gym.make("lecturekit/PrecisionBandit-v0").unwrapped)


def test_one_step_reward_hand_worked():
    env = gym.make("lecturekit/PrecisionBandit-v0")
    obs, _ = env.reset(seed=3)
    s = float(obs[0])
    assert -1.0 <= s <= 1.0
    # at the best action s/2 the reward is 0; 0.2 away it is -w(s) * 0.04, and the episode ends after one step
    _, r, term, trunc, _ = env.step(np.array([s / 2], np.float32))
    assert r == pytest.approx(0.0, abs=1e-6) and term and not trunc
    env.reset(seed=3)
    _, r, *_ = env.step(np.array([s / 2 + 0.2], np.float32))
    assert r == pytest.approx(-weight(s) * 0.04, rel=1e-4)
    assert weight(-1.0) == 1.0 and weight(0.0) == pytest.approx(5.0) and weight(1.0) == pytest.approx(25.0)
