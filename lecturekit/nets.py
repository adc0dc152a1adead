"""Small networks.  Lecture: "Deep policy gradient methods" (actor networks) and "Actor-Critic Architectures".

A softmax head for discrete actions, a Gaussian head (state-independent log std) for continuous ones, and a
separate value network V_w(s) as the critic.  The off-policy actor-critics' networks (a deterministic actor, a
tanh-squashed Gaussian actor, twin Q-critics) are in the last block.

Every constructor takes an optional `generator`: a training run initialises its networks from its own generator.
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
    squashed_gaussian_log_prob,
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

    def log_prob_and_entropy(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """(log pi_theta(a|s), H(pi_theta(.|s))), both (...), from one forward pass of the actor."""
        if self.discrete:
            logits = self.pi(obs)
            return categorical_log_prob(logits, act), categorical_entropy(logits)
        mu, log_std = self.dist_params(obs)
        return gaussian_log_prob(act, mu, log_std), gaussian_entropy(log_std)

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
        # the actor alone (arg max of the logits, or the Gaussian mean), without autograd's bookkeeping
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            if model.discrete:  # logits = pi(obs), its layers called one by one: at an evaluation's batch of 20
                for layer in model.pi:  # the forward is per-call overhead, not arithmetic (about 35 us, not 45)
                    x = layer.forward(x)
                a = x.argmax(-1).numpy()
            else:
                a = model.dist_params(x)[0].numpy()
        return from_unit(a, act_space.low, act_space.high) if rescale else a

    return act


# ------------------------------------------------------------------------ off-policy actor-critics (DDPG, TD3, SAC)
class SquashToBox(nn.Module):
    """a = center + half_range * tanh(u): maps any pre-activation u (..., act_dim) into the box [low, high]."""

    def __init__(self, low, high):
        super().__init__()
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def forward(self, u: Tensor) -> Tensor:
        return self.center + self.half_range * torch.tanh(u)


class DeterministicActor(nn.Module):
    """mu_theta(s) = center + half_range * tanh(net(s)): a deterministic action inside the box [low, high].

    Lecture: "Deep Deterministic Policy Gradient (DDPG)", actor.  Shapes: obs (..., obs_dim) -> action (..., act_dim).
    """

    def __init__(self, obs_dim: int, act_dim: int, low, high, hidden=(64, 64), generator=None):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim], activation=nn.ReLU, generator=generator)
        self.squash = SquashToBox(low, high)

    def forward(self, obs: Tensor) -> Tensor:
        return self.squash(self.net(obs))


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # keeps sigma in [0.007, 7.4]: no exploding log-probs, no vanishing noise


class SquashedGaussianActor(nn.Module):
    """pi_theta(a|s): a = center + half_range * tanh(u),  u = mu_theta(s) + sigma_theta(s) eps,  eps ~ N(0, I).

    Lecture: "SAC: Implementation Tricks" (state-dependent diagonal Gaussian, squashed by tanh).
    `forward(obs, eps)` returns the reparameterized sample and its log-density, both differentiable in theta:
    action (B, act_dim) in the environment's box, logp (B,) the log-density of tanh(u) in [-1, 1] units (the affine
    map to the box only shifts it by the constant -sum log half_range, and SAC's target entropy -dim(A) is meant in
    these units).  `eps` is standard normal (B, act_dim), drawn by the caller; eps=None gives the mode
    center + half_range * tanh(mu) (and log pi at u = mu).
    """

    def __init__(self, obs_dim: int, act_dim: int, low, high, hidden=(64, 64), generator=None):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 2 * act_dim], activation=nn.ReLU, generator=generator)
        self.squash = SquashToBox(low, high)

    def dist_params(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, log_std) of the pre-tanh Gaussian, each (..., act_dim); log_std clamped to [-5, 2]."""
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, obs: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, log_std = self.dist_params(obs)
        u = mu if eps is None else mu + log_std.exp() * eps  # reparameterization: the noise comes from outside
        return self.squash(u), squashed_gaussian_log_prob(u, mu, log_std)

    def action(self, obs: Tensor, eps: Tensor | None = None) -> Tensor:
        """`forward(obs, eps)[0]` without the log-density: what acting in the environment needs (half the cost)."""
        mu, log_std = self.dist_params(obs)
        return self.squash(mu if eps is None else mu + log_std.exp() * eps)


class TwinQ(nn.Module):
    """Two critics Q_phi1(s, a), Q_phi2(s, a) (clipped double Q-learning), evaluated as ONE batched network.

    Layer k holds both critics' weights stacked, W_k (2, in, out) and b_k (2, 1, out), so one batched matrix
    product per layer (`torch.baddbmm`) evaluates both; the critics share no parameter and are initialised
    independently (like `mlp`: orthogonal, ReLU between layers).  Lecture: "TD3", clipped double Q-learning.

    Shapes: obs (B, obs_dim), act (B, act_dim) -> (2, B): row 0 is Q_1, row 1 is Q_2, so
    `q1, q2 = critic(obs, act)` unpacks them.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden=(64, 64), generator=None):
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = torch.empty(2, a, b)
            for k in range(2):
                nn.init.orthogonal_(w[k], gain=1.0 if i == len(sizes) - 2 else np.sqrt(2), generator=generator)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(2, 1, b)))

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        return self._critics(torch.cat([obs, act], dim=-1), slice(0, 2))

    def q1(self, obs: Tensor, act: Tensor) -> Tensor:
        """Q_1(s, a) alone, (B,): what the deterministic actor climbs (Q_2 is not computed)."""
        return self._critics(torch.cat([obs, act], dim=-1), slice(0, 1))[0]

    def _critics(self, x: Tensor, which: slice) -> Tensor:
        x = x.expand(which.stop - which.start, -1, -1)  # (k, B, in): the same input for each critic
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b[which], x, w[which])  # b + x @ w, critic by critic
            if i < len(self.weights) - 1:
                x = torch.relu(x)
        return x.squeeze(-1)
