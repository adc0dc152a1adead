"""Replay buffer for off-policy learning (DDPG, TD3, SAC).  Lecture: "Deep Deterministic Policy Gradient (DDPG)".

A replay buffer is a ring of the last `capacity` transitions (s, a, r, s', terminated). Off-policy learners draw
uniform minibatches from it, so every transition is reused many times and consecutive (correlated) steps are mixed.

Terminated vs truncated. The TD target is y = r + gamma * (1 - terminated) * Q'(s', a'):
- `terminated` (the MDP ended: no future reward) stops the bootstrap;
- `truncated` (a time limit cut the episode, e.g. Pendulum's 200 steps) does NOT: the state s' still has a future,
  so the target bootstraps from Q'(s', .) where s' is the real final observation.
The buffer therefore stores `terminated` as the done flag; `truncated` is stored too, only for inspection.

Storage is preallocated float32 torch tensors (no per-step Python objects); `sample(batch_size, generator)` draws
the indices from the generator it is handed (the training run's), so sampling never touches a global generator.

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

    `add` takes NumPy arrays, tensors or numbers.  When full, the oldest transitions are overwritten first.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs = torch.zeros(capacity, obs_dim)
        self.action = torch.zeros(capacity, act_dim)
        self.reward = torch.zeros(capacity)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.terminated = torch.zeros(capacity)
        self.truncated = torch.zeros(capacity)
        self.ptr = 0  # index where the next transition goes
        self.size = 0  # number of stored transitions (<= capacity)

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, truncated=None) -> None:
        """Store one transition (obs of shape (obs_dim,)) or a batch of N (obs of shape (N, obs_dim)).

        `next_obs` must be the real next observation, also at the end of an episode (not the reset observation).
        """
        obs = _f32(obs).reshape(-1, self.obs.shape[1])
        n = obs.shape[0]
        if n == 0:
            return
        if truncated is None:
            truncated = torch.zeros(n)
        rows = (obs, _f32(action).reshape(n, self.action.shape[1]), _f32(reward).reshape(n),
                _f32(next_obs).reshape(n, self.obs.shape[1]), _f32(terminated).reshape(n), _f32(truncated).reshape(n))
        if n > self.capacity:  # only the newest `capacity` transitions survive
            rows, n = tuple(x[-self.capacity:] for x in rows), self.capacity
        idx = (self.ptr + torch.arange(n)) % self.capacity  # wraps around: the oldest entries are overwritten
        for store, x in zip(self._stores(), rows):
            store[idx] = x
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Draw `batch_size` stored transitions uniformly at random (with replacement) using `generator`."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer: add transitions first")
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return Batch(*(store[idx] for store in self._stores()))

    def _stores(self) -> tuple[Tensor, ...]:
        return self.obs, self.action, self.reward, self.next_obs, self.terminated, self.truncated


def _f32(x) -> Tensor:
    """NumPy array, tensor, bool or number -> float32 tensor (no copy when it already is one)."""
    return torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, Tensor) else x, dtype=torch.float32)
