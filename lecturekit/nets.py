"""Small networks.  Lecture: "Deep policy gradient methods" (actor networks) and "Actor-Critic Architectures".

A softmax head for discrete actions, a Gaussian head (state-independent log std) for continuous ones, and a
separate value network V_w(s) as the critic.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.envs import bounded_box, from_unit
from lecturekit.distributions import (
    categorical_entropy,
    categorical_log_prob,
    categorical_sample,
    gaussian_entropy,
    gaussian_log_prob,
)


def mlp(sizes, activation=nn.Tanh, out_gain: float = 1.0, generator: torch.Generator | None = None) -> nn.Sequential:
    """Fully connected network sizes[0] -> ... -> sizes[-1] with `activation` between layers (none after the last).

    Orthogonal initialisation (gain sqrt(2) for hidden layers, `out_gain` for the last) drawn from `generator`
    (the global torch generator if None), zero biases.  With a generator, nothing is drawn from the global one.
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least input and output sizes, got {sizes}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.utils.skip_init(nn.Linear, a, b)  # no default init: it would draw from the global generator
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, gain=out_gain if last else np.sqrt(2), generator=generator)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


def space_dims(obs_space: gym.Space, act_space: gym.Space) -> tuple[int, int, bool]:
    """(observation size, number of actions or action dimension, is_discrete) with a clear error otherwise."""
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"expected a flat Box observation space, got {obs_space}")
    if isinstance(act_space, gym.spaces.Discrete):
        return obs_space.shape[0], int(act_space.n), True
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return obs_space.shape[0], act_space.shape[0], False
    raise ValueError(f"unsupported action space {act_space}: use Discrete or a 1-D Box")


class ActorCritic(nn.Module):
    """Actor pi_theta(a|s) and critic V_w(s) as two separate MLPs.

    Discrete actions: the actor outputs logits (softmax policy).  Box actions: the actor outputs the mean of a
    diagonal Gaussian whose log std is a learned, state-independent parameter.  Shapes: obs (..., obs_dim);
    actions (...) for Discrete, (..., act_dim) for Box; log-probs, entropies and values (...).
    The initial weights and the sampled actions come from the `generator`s passed in (a run's, see
    `evaluation.generators`), never from the global torch generator when one is given.
    """

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, hidden=(64, 64), log_std_init: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        obs_dim, act_dim, self.discrete = space_dims(obs_space, act_space)
        self.pi = mlp([obs_dim, *hidden, act_dim], out_gain=0.01, generator=generator)
        self.v = mlp([obs_dim, *hidden, 1], out_gain=1.0, generator=generator)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def dist_params(self, obs: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (..., A) for discrete actions; (mean, log_std) for Gaussian ones."""
        out = self.pi(obs)
        return out if self.discrete else (out, self.log_std.expand_as(out))

    def log_prob(self, obs: Tensor, act: Tensor) -> Tensor:
        """log pi_theta(a|s), shape (...)."""
        if self.discrete:
            return categorical_log_prob(self.pi(obs), act)
        mu, log_std = self.dist_params(obs)
        return gaussian_log_prob(act, mu, log_std)

    def entropy(self, obs: Tensor) -> Tensor:
        """H(pi_theta(.|s)), shape (...)."""
        if self.discrete:
            return categorical_entropy(self.pi(obs))
        return gaussian_entropy(self.log_std).expand(obs.shape[:-1])

    def value(self, obs: Tensor) -> Tensor:
        """V_w(s), shape (...)."""
        return self.v(obs).squeeze(-1)

    def act(self, obs: Tensor, deterministic: bool = False,
            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Sample from `generator` (or, if deterministic, take the greedy / mean) action: returns
        (action, log pi(a|s), V(s))."""
        if self.discrete:
            logits = self.pi(obs)
            a = logits.argmax(-1) if deterministic else categorical_sample(logits, generator)
            logp = categorical_log_prob(logits, a)
        else:
            mu, log_std = self.dist_params(obs)
            a = mu if deterministic else mu + torch.randn(mu.shape, generator=generator) * log_std.exp()
            logp = gaussian_log_prob(a, mu, log_std)
        return a, logp, self.value(obs)


def greedy_act_fn(model: ActorCritic, act_space: gym.Space):
    """NumPy act_fn for evaluation: arg max of the logits, or the Gaussian mean mapped from [-1, 1] units onto the
    bounds of `act_space` (the environment's own space: see `envs.make_unit_vec`)."""
    rescale = bounded_box(act_space)

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():  # the actor alone: arg max of the logits, or the Gaussian mean
            out = model.dist_params(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
            a = out.argmax(-1).numpy() if model.discrete else out[0].numpy()
        return from_unit(a, act_space.low, act_space.high) if rescale else a

    return act
