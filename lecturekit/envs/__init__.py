"""Environments: vectorized construction helpers and the course's own Gymnasium environments.

Importing `lecturekit.envs` registers the course environments (`lecturekit/...-v0`).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np


def check_env_id(env_id: str) -> None:
    """Raise ValueError with a readable message if `env_id` is not a registered Gymnasium environment."""
    try:
        gym.spec(env_id)
    except Exception:
        known = ", ".join(k for k in sorted(gym.registry) if k.startswith("lecturekit/"))
        raise ValueError(
            f"Unknown environment '{env_id}'. Examples: CartPole-v1, Acrobot-v1, Pendulum-v1"
            + (f", {known}" if known else "")
        ) from None


def make_vec(env_id: str, n: int, seed: int | None = None, **kwargs) -> gym.vector.VectorEnv:
    """n copies of `env_id` stepped together.  Native vectorized implementation where Gymnasium has one
    (CartPole: about 1.6x faster than SyncVectorEnv), otherwise SyncVectorEnv.

    Autoreset is NEXT_STEP: after an episode ends, the next call to step() only resets that copy (its reward is 0
    and its action ignored: mask that step out of losses); the observation returned at a terminal or truncated
    step is the real final observation.  If `seed` is given, copy i is reset with seed + i.
    """
    check_env_id(env_id)
    if n < 1:
        raise ValueError(f"need at least one environment, got n={n}")
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode=mode, **kwargs)
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs


def bounded_box(space: gym.Space) -> bool:
    """True for a Box action space whose bounds are all finite (its actions can be rescaled to [-1, 1])."""
    return isinstance(space, gym.spaces.Box) and bool(np.all(np.isfinite(space.low)) & np.all(np.isfinite(space.high)))


def from_unit(u: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map actions u in [-1, 1] units affinely onto [low, high] (u = -1 -> low, u = 1 -> high), clipped to the box."""
    return np.clip(low + (np.asarray(u) + 1.0) * 0.5 * (high - low), low, high)


def make_unit_vec(env_id: str, n: int) -> gym.vector.VectorEnv:
    """`make_vec(env_id, n)`; a bounded Box action space is rescaled to [-1, 1], so that one Gaussian policy (mean
    near 0, std near 1) fits any bounded Box.  Evaluate the policy with `from_unit` on the unwrapped action space."""
    envs = make_vec(env_id, n)
    if bounded_box(envs.single_action_space):
        envs = gym.wrappers.vector.RescaleAction(envs, np.float32(-1.0), np.float32(1.0))
    return envs


def obs_to_float(obs) -> np.ndarray:
    """Observations as float32 (what the networks take)."""
    return np.asarray(obs, dtype=np.float32)


# The course's own environments (lecture part 2, applications). Importing lecturekit.envs registers them.
def _register_course_envs() -> None:
    for env_id, entry in [("lecturekit/DynamicPricing-v0", "lecturekit.envs.pricing:DynamicPricingEnv"),
                          ("lecturekit/InventoryControl-v0", "lecturekit.envs.inventory:InventoryControlEnv"),
                          ("lecturekit/PrecisionBandit-v0", "lecturekit.envs.bandit:PrecisionBandit")]:
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)
    if "lecturekit/CliffWalkingOneHot-v0" not in gym.registry:
        gym.register(id="lecturekit/CliffWalkingOneHot-v0", entry_point="lecturekit.envs.cliff:make_cliff_onehot",
                     max_episode_steps=100)
    if "lecturekit/CliffWalkingExploringStarts-v0" not in gym.registry:
        gym.register(id="lecturekit/CliffWalkingExploringStarts-v0", entry_point="lecturekit.envs.cliff:make_cliff_onehot",
                     kwargs={"exploring_starts": True}, max_episode_steps=100)


_register_course_envs()
