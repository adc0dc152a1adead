"""Cliff Walking with one-hot observations, for a small neural softmax policy (lecture: "Cliff Walking Policy").

Gymnasium's CliffWalking-v1 numbers the 48 cells of a 4 x 12 grid; a network takes the one-hot vector of the
cell instead. Registered as ``lecturekit/CliffWalkingOneHot-v0`` with a time limit, so that a policy that never
finds the goal still ends its episodes, and as ``lecturekit/CliffWalkingExploringStarts-v0``, the same with each
episode starting in a random cell (for training; the learned policy is then judged from the usual start).

Render modes: "ansi" (text) always; "rgb_array" (and "human" through Gymnasium's HumanRendering) only when pygame
is installed (`pip install "gymnasium[toy-text]"`), which the course does not need: `draw_cliff` draws with
matplotlib.
"""
from __future__ import annotations

import importlib.util
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

N_ROWS, N_COLS = 4, 12
START, GOAL = 36, 47
ARROWS = {0: "^", 1: ">", 2: "v", 3: "<"}   # CliffWalking's actions: up, right, down, left
# advertise only the modes that work here: CliffWalking's pictures are drawn with pygame
RENDER_MODES = ["ansi", "rgb_array"] if importlib.util.find_spec("pygame") else ["ansi"]


class OneHotObservation(gym.ObservationWrapper):
    """Discrete(n) observation s -> float32 one-hot vector e_s of length n."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Discrete):
            raise ValueError(f"OneHotObservation needs a Discrete observation space, got {env.observation_space}")
        self.n = int(env.observation_space.n)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.n,), dtype=np.float32)

    def observation(self, obs) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.float32)
        out[int(obs)] = 1.0
        return out


class ExploringStarts(gym.Wrapper):
    """Start each episode in a cell drawn uniformly from the 37 cells a walker can stand on (not the cliff, not the
    goal) instead of always at S. Everything else is unchanged: same moves, rewards, cliff and goal.

    Exploring starts (Sutton and Barto, section 5.3) let a policy learn from episodes that begin near the goal,
    which a walker starting at S rarely reaches while it still moves at random.
    """

    CELLS = np.array([s for s in range(N_ROWS * N_COLS) if s < (N_ROWS - 1) * N_COLS or s == START])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        cell = int(self.np_random.choice(self.CELLS))
        self.env.unwrapped.s = cell
        return cell, info


def make_cliff_onehot(exploring_starts: bool = False, **kwargs) -> gym.Env:
    """CliffWalking-v1 (reward -1 per step, -100 and back to the start for a step into the cliff; the episode ends
    at the goal) with one-hot observations of shape (48,); optionally with exploring starts."""
    mode = kwargs.get("render_mode")
    if mode is not None and mode not in RENDER_MODES:
        raise ValueError(f"render_mode={mode!r} is not available here: the modes are {RENDER_MODES} "
                         '("rgb_array" and "human" need pygame: pip install "gymnasium[toy-text]")')
    env = gym.make("CliffWalking-v1", **kwargs)
    if exploring_starts:
        env = ExploringStarts(env)
    env = OneHotObservation(env)
    env.metadata = {**env.metadata, "render_modes": list(RENDER_MODES)}
    return env


# read by gym.make before it calls the function (it then offers "human" through HumanRendering if rgb_array works)
make_cliff_onehot.metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}


def greedy_path(act_fn: Callable[[np.ndarray], np.ndarray], max_steps: int = 100) -> tuple[list[int], float, bool]:
    """Follow the deterministic policy from the start: (cells visited, return, reached the goal)."""
    env = make_cliff_onehot()
    obs, _ = env.reset(seed=0)
    cells, total = [START], 0.0
    for _ in range(max_steps):
        a = int(np.asarray(act_fn(obs[None])).reshape(-1)[0])
        obs, r, term, trunc, _ = env.step(a)
        total += float(r)
        cells.append(int(obs.argmax()))
        if term:
            env.close()
            return cells, total, True
    env.close()
    return cells, total, False


def greedy_actions(act_fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The action the policy takes in every cell: (4, 12) int array (the cliff and goal cells included)."""
    obs = np.eye(N_ROWS * N_COLS, dtype=np.float32)
    return np.asarray(act_fn(obs)).reshape(N_ROWS, N_COLS)


def draw_cliff(ax, cells: list[int] | None = None, actions: np.ndarray | None = None, title: str = "") -> None:
    """Draw the grid: cliff in dark, start S, goal G, the policy's arrow in each cell and a path as a line."""
    import matplotlib.patches as patches

    ax.set_xlim(-0.5, N_COLS - 0.5)
    ax.set_ylim(N_ROWS - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(-0.5, N_COLS, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, N_ROWS, 1), minor=True)
    ax.grid(which="minor", color="0.8")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    for c in range(1, N_COLS - 1):
        ax.add_patch(patches.Rectangle((c - 0.5, N_ROWS - 1.5), 1, 1, color="0.25"))
    ax.text(0, N_ROWS - 1, "S", ha="center", va="center", fontsize=12, weight="bold")
    ax.text(N_COLS - 1, N_ROWS - 1, "G", ha="center", va="center", fontsize=12, weight="bold")
    if actions is not None:
        for r in range(N_ROWS):
            for c in range(N_COLS):
                if r < N_ROWS - 1 or c == 0:
                    ax.text(c, r, ARROWS[int(actions[r, c])], ha="center", va="center", color="0.5", fontsize=9)
    if cells:
        rc = np.array([divmod(s, N_COLS) for s in cells])
        ax.plot(rc[:, 1], rc[:, 0], "-o", color="tab:red", lw=2, ms=4)
    ax.set_title(title)
