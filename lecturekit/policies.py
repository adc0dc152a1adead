"""Policies as small pure pieces.  Lecture: "Policy Parametrizations", "Why Must Policies Be Stochastic?".

NumPy pieces (for plots, exercises and gradient-free search):
    softmax(logits), softmax_score(logits, a)           pi = softmax(h),  grad_h log pi(a) = e_a - pi
    gaussian_score(x, mu, log_std)                      grad of log N(x; mu, sigma^2) w.r.t. mu and log sigma
    LinearPolicy                                        a flat parameter vector -> actions, for a whole population
    LinearAgent(policy, theta)                          one fixed theta as an act_fn: obs (B, obs_dim) -> actions
Torch pieces (for gradient-based methods; `generator` arguments take a run's own torch.Generator, None means the
global one, for notebooks):
    SoftmaxPolicy(obs_dim, n_actions, hidden=())        linear (hidden=()) or MLP logits h_theta(s, .)
    GaussianPolicy(obs_dim, act_dim, hidden=())         mean mu_theta(s), state-independent log sigma
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.distributions import (
    categorical_entropy,
    categorical_log_prob,
    categorical_sample,
    gaussian_entropy,
    gaussian_log_prob,
)
from lecturekit.nets import mlp, space_dims


# ---------------------------------------------------------------------------------------------------- NumPy pieces
def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """pi_a = exp(h_a) / sum_b exp(h_b), computed after subtracting max(h) so that large logits do not overflow."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def softmax_score(logits: np.ndarray, action: int) -> np.ndarray:
    """grad_h log softmax(h)_a = e_a - softmax(h).  Shape: like logits (1-D).  Finite for any finite logits."""
    score = -softmax(logits)
    score[action] += 1.0
    return score


def gaussian_score(x, mu, log_std) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of log N(x; mu, sigma^2), sigma = exp(log_std), elementwise:
    d/d mu = (x - mu) / sigma^2,   d/d log_std = (x - mu)^2 / sigma^2 - 1."""
    x, mu, log_std = (np.asarray(v, dtype=np.float64) for v in (x, mu, log_std))
    var = np.exp(2 * log_std)
    return (x - mu) / var, (x - mu) ** 2 / var - 1.0


@dataclass(frozen=True)
class LinearPolicy:
    """Deterministic linear policy with a flat parameter vector, evaluated for a whole population at once.

    Discrete actions: a = argmax_a (W s + b)_a.  Box actions: a = clip(W s + b, low, high).
    Parameters theta (D,) = [W.ravel(), b] with W (n_out, obs_dim), D = n_out * (obs_dim + 1).
    """

    obs_dim: int
    n_out: int  # number of actions (Discrete) or action dimension (Box)
    discrete: bool = True
    low: float = -np.inf  # action bounds (Box only)
    high: float = np.inf

    @classmethod
    def for_env(cls, env: gym.Env | gym.vector.VectorEnv) -> "LinearPolicy":
        obs_space = getattr(env, "single_observation_space", env.observation_space)
        act_space = getattr(env, "single_action_space", env.action_space)
        obs_dim, n_out, discrete = space_dims(obs_space, act_space)
        if discrete:
            return cls(obs_dim, n_out, True)
        return cls(obs_dim, n_out, False, float(np.min(act_space.low)), float(np.max(act_space.high)))

    @property
    def n_params(self) -> int:
        return self.n_out * (self.obs_dim + 1)

    def outputs(self, params: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """W_i s_i + b_i for every member i.  params (P, D) or (D,), obs (P, obs_dim) -> (P, n_out)."""
        params = np.asarray(params, dtype=np.float64)
        P = params.reshape(-1, self.n_params)
        W = P[:, : self.n_out * self.obs_dim].reshape(-1, self.n_out, self.obs_dim)
        b = P[:, self.n_out * self.obs_dim:]
        return np.einsum("pod,pd->po", W, np.asarray(obs, dtype=np.float64)) + b

    def act(self, params: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Actions (P,) (Discrete) or (P, n_out) (Box) for parameters params (P, D) (or one (D,) shared by all)."""
        out = self.outputs(params, obs)
        if self.discrete:
            return out.argmax(-1)
        return np.clip(out, self.low, self.high).astype(np.float32)


@dataclass
class LinearAgent:
    """A LinearPolicy with fixed parameters theta (D,): call it on a batch of observations to get actions."""

    policy: LinearPolicy
    theta: np.ndarray

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(self.theta, obs)


# ---------------------------------------------------------------------------------------------------- torch pieces
class SoftmaxPolicy(nn.Module):
    """pi_theta(a|s) = softmax(h_theta(s))_a with h a linear map (hidden=()) or an MLP.  obs (B, obs_dim)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden=(), out_gain: float = 0.01, generator=None):
        super().__init__()
        self.logits_net = mlp([obs_dim, *hidden, n_actions], out_gain=out_gain, generator=generator)

    def logits(self, obs: Tensor) -> Tensor:
        """h_theta(s).  Shape (B, A)."""
        return self.logits_net(obs)

    def log_prob(self, obs: Tensor, act: Tensor) -> Tensor:
        """log pi(a|s).  act (B,) integer -> (B,)."""
        return categorical_log_prob(self.logits(obs), act)

    def entropy(self, obs: Tensor) -> Tensor:
        return categorical_entropy(self.logits(obs))

    def sample(self, obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return categorical_sample(self.logits(obs), generator)

    def deterministic(self, obs: Tensor) -> Tensor:
        """The most likely action argmax_a pi(a|s)."""
        return self.logits(obs).argmax(-1)


class GaussianPolicy(nn.Module):
    """pi_theta(a|s) = N(a; mu_theta(s), diag(sigma^2)) with mu linear (hidden=()) or an MLP and a learned,
    state-independent log sigma.  obs (B, obs_dim), actions (B, act_dim)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(), log_std_init: float = 0.0, out_gain: float = 0.01,
                 generator=None):
        super().__init__()
        self.mu_net = mlp([obs_dim, *hidden, act_dim], out_gain=out_gain, generator=generator)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def mean(self, obs: Tensor) -> Tensor:
        return self.mu_net(obs)

    def log_prob(self, obs: Tensor, act: Tensor) -> Tensor:
        """log pi(a|s), summed over action dimensions.  Shape (B,)."""
        return gaussian_log_prob(act, self.mean(obs), self.log_std)

    def entropy(self, obs: Tensor) -> Tensor:
        return gaussian_entropy(self.log_std).expand(obs.shape[0])

    def sample(self, obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mu = self.mean(obs)
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        return mu + self.log_std.exp() * noise

    def deterministic(self, obs: Tensor) -> Tensor:
        return self.mean(obs)
