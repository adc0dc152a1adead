"""Replay buffer for off-policy learning (DDPG, TD3, SAC).  Lecture: "Deep Deterministic Policy Gradient (DDPG)".

A replay buffer is a ring of the last `capacity` transitions (s, a, r, s', terminated). Off-policy learners draw
uniform minibatches from it, so every transition is reused many times and consecutive (correlated) steps are mixed.

Terminated vs truncated. The TD target is y = r + gamma * (1 - terminated) * Q'(s', a'):
- `terminated` (the MDP ended: no future reward) stops the bootstrap;
- `truncated` (a time limit cut the episode, e.g. Pendulum's 200 steps) does NOT: the state s' still has a future,
  so the target bootstraps from Q'(s', .) where s' is the real final observation.
The buffer therefore stores `terminated` as the done flag; `truncated` is stored too, only for inspection.

Storage is preallocated NumPy arrays (no per-step Python objects; one add costs a few microseconds, about ten times
less than writing into torch tensors); `sample(batch_size, generator)` draws the indices from the torch generator
it is handed (the training run's), so sampling never touches a global generator, and returns float32 tensors.

Shapes (B = batch size):
    obs, next_obs: (B, obs_dim)   action: (B, act_dim)   reward, terminated, truncated: (B,)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class Batch(NamedTuple):
    """A minibatch of transitions as float32 tensors; `terminated` and `truncated` are 0.0/1.0."""

    obs: Tensor  # (B, obs_dim)
    action: Tensor  # (B, act_dim)
    reward: Tensor  # (B,)
    next_obs: Tensor  # (B, obs_dim)
    terminated: Tensor  # (B,)  1.0 where s' is terminal: the target does not bootstrap
    truncated: Tensor  # (B,)  1.0 where a time limit ended the episode: the target still bootstraps


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions with uniform sampling.

    >>> buf = ReplayBuffer(obs_dim=3, act_dim=1, capacity=1000)
    >>> buf.add(obs, action, reward, next_obs, terminated, truncated)   # one transition or a batch of N
    >>> batch = buf.sample(256, generator)                                # Batch of (256, ...) float32 tensors

    When full, the oldest transitions are overwritten first.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.action = np.zeros((capacity, act_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.truncated = np.zeros(capacity, dtype=np.float32)
        self.ptr = 0  # index where the next transition goes
        self.size = 0  # number of stored transitions (<= capacity)

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, truncated=None) -> None:
        """Store one transition (obs of shape (obs_dim,)) or a batch of N (obs of shape (N, obs_dim)).

        `next_obs` must be the real next observation, also at the end of an episode (not the reset observation).
        """
        obs = np.asarray(obs, dtype=np.float32).reshape(-1, self.obs.shape[1])
        n = obs.shape[0]
        action = np.asarray(action, dtype=np.float32).reshape(n, self.action.shape[1])
        next_obs = np.asarray(next_obs, dtype=np.float32).reshape(n, self.obs.shape[1])
        reward = np.asarray(reward, dtype=np.float32).reshape(n)
        terminated = np.asarray(terminated, dtype=np.float32).reshape(n)
        truncated = np.zeros(n, np.float32) if truncated is None else np.asarray(truncated, np.float32).reshape(n)
        if n > self.capacity:  # only the newest `capacity` transitions survive
            obs, action, reward, next_obs, terminated, truncated = (
                x[-self.capacity:] for x in (obs, action, reward, next_obs, terminated, truncated))
            n = self.capacity
        idx = (self.ptr + np.arange(n)) % self.capacity  # wraps around: the oldest entries are overwritten
        self.obs[idx] = obs
        self.action[idx] = action
        self.reward[idx] = reward
        self.next_obs[idx] = next_obs
        self.terminated[idx] = terminated
        self.truncated[idx] = truncated
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Draw `batch_size` stored transitions uniformly at random (with replacement), indices from `generator`."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer: add transitions first")
        idx = torch.randint(self.size, (batch_size,), generator=generator).numpy()
        return Batch(*(torch.from_numpy(a[idx]) for a in
                       (self.obs, self.action, self.reward, self.next_obs, self.terminated, self.truncated)))
