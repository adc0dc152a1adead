"""Cliff Walking's registered environments pass Gymnasium's own environment checker, render check included: they
advertise only the render modes that work without pygame (which the course does not install)."""
from __future__ import annotations

import importlib.util
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from lecturekit.envs import cliff

IDS = ["lecturekit/CliffWalkingOneHot-v0", "lecturekit/CliffWalkingExploringStarts-v0"]
HAS_PYGAME = importlib.util.find_spec("pygame") is not None


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_with_the_render_check(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        # check_env prefers an unwrapped env; ours is a wrapper by design (one-hot observations, time limit)
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        check_env(env, skip_render_check=False)
    assert env.metadata["render_modes"] == cliff.RENDER_MODES
    assert "ansi" in cliff.RENDER_MODES and ("rgb_array" in cliff.RENDER_MODES) == HAS_PYGAME


def test_ansi_render_shows_the_walker_on_the_grid():
    env = gym.make(IDS[0], render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    # 4 rows of 12 cells: the walker 'x' at the start (bottom left), the cliff 'C', the goal 'T'
    rows = text.strip().splitlines()
    assert len(rows) == 4 and rows[3].split()[0] == "x" and "C" in rows[3] and rows[3].split()[-1] == "T"


@pytest.mark.skipif(HAS_PYGAME, reason="pygame is installed: the picture modes work")
@pytest.mark.parametrize("mode", ["rgb_array", "human"])
def test_picture_modes_without_pygame_say_what_to_install(mode):
    with pytest.warns(UserWarning, match="not in the possible render_modes"):  # gym.make's own warning first
        with pytest.raises(ValueError, match=r"gymnasium\[toy-text\]"):
            gym.make(IDS[0], render_mode=mode)
