"""The environments that expose lecture phenomena (lecturekit/envs/phenomena.py, used by bench/hard.py)."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lecturekit.envs  # noqa: F401  (registers the environments)
from lecturekit.envs.phenomena import OverestimationTrapEnv

IDS = ["lecturekit/OverestimationTrap-v0", "lecturekit/CartPoleDistractors-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_passes_gymnasium_check_env(env_id):
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


def test_trap_rewards_depend_only_on_the_first_action():
    # no risk (a = 1): every reward is exactly 0; the episode has horizon + 1 = 4 steps
    env = OverestimationTrapEnv(horizon=3, trap_mean=0.5, trap_std=1.0)
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1.0, 0.0, 1.0]
    rewards, done = [], False
    for a in [1.0, -1.0, -1.0, -1.0]:
        obs, r, done, trunc, info = env.step(np.array([a]))
        rewards.append(r)
    assert done and not trunc and rewards == [0.0] * 4 and info["risk"] == 0.0
    assert env.expected_return(1.0) == 0.0


def test_trap_full_risk_costs_mean_times_horizon():
    # full risk (a = -1, x = 1): per step N(-0.5, 1); the mean over many episodes of the return is -0.5 * 3 = -1.5
    env = OverestimationTrapEnv(horizon=3, trap_mean=0.5, trap_std=1.0)
    env.reset(seed=1)
    returns = []
    for _ in range(4000):
        env.reset()
        obs, total = env.step(np.array([-1.0]))[0], 0.0
        assert obs.tolist() == [0.0, 1.0, 1.0]
        for _ in range(3):
            obs, r, done, _, _ = env.step(np.array([0.3]))
            total += r
        assert done
        returns.append(total)
    # std of the mean: sqrt(3) / sqrt(4000) = 0.027
    assert abs(np.mean(returns) - (-1.5)) < 0.1
    assert env.expected_return(-1.0) == pytest.approx(-1.5)
    assert env.expected_return(0.0) == pytest.approx(-0.75)  # half risk


def test_distractors_append_noise_and_keep_cartpole():
    env = gym.make("lecturekit/CartPoleDistractors-v0", n_distractors=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (9,) and env.spec.max_episode_steps == 500
    plain = gym.make("CartPole-v1").unwrapped
    ref, _ = plain.reset(seed=0)
    assert np.allclose(obs[:4], ref)
    noise = np.array([env.step(env.action_space.sample())[0][4:] for _ in range(8)])
    assert noise.std() > 0.3  # N(0, 1) draws, not constants

