"""Soft Actor-Critic (SAC).  Lecture: "Soft Actor-Critic (SAC): Overview" to "SAC: Implementation Tricks".

SAC learns a stochastic policy that maximises return plus alpha times its entropy, off-policy from a replay buffer:

    critic      L_Q  = E_D[(Q_i(s, a) - y)^2],  y = r + gamma (1 - term) (min_j Qbar_j(s', a') - alpha log pi(a'|s'))
    actor       L_pi = E_{s~D, eps}[alpha log pi(a|s) - min_j Q_j(s, a)],  a = tanh(mu(s) + sigma(s) eps)
    temperature L_a  = E[alpha (-log pi(a|s) - H_target)],  H_target = -dim(A),  alpha = exp(log_alpha)

The actor's sample is reparameterized (the "pathwise" gradient goes through Q's slope in a), and squashed by tanh
into the action box (the change-of-variables correction is `distributions.squashed_gaussian_log_prob`).  The replay
buffer, the twin Q-critics, Polyak averaging and the training loop are the ones of part 6 (`lecturekit.offpolicy`).

Shapes: B = batch size; obs (B, obs_dim); actions (B, act_dim) in [-1, 1] units (the loop maps them onto the
environment's bounds); rewards, flags, Q-values and log-probs (B,).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.algos import Algo
from lecturekit.buffers import Batch
from lecturekit.distributions import squashed_gaussian_log_prob
from lecturekit.nets import mlp
from lecturekit.offpolicy import (
    OffPolicyConfig,
    TwinQ,
    box_bounds,
    critic_loss,
    polyak_update,
    td_target,
    train_off_policy,
)

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # keeps sigma in [0.007, 7.4]: no exploding log-probs, no vanishing noise


@dataclass
class Config(OffPolicyConfig):
    """SAC's fields; gamma, tau, hidden, actor_lr, critic_lr, batch_size, warmup, ... come from OffPolicyConfig."""

    alpha_lr: float = 1e-3           # Adam step size of log_alpha
    alpha_init: float = 0.2          # initial temperature alpha (1.0 also solves Pendulum, with a worse worst seed)
    autotune: bool = True            # learn alpha from the temperature loss; False keeps alpha = alpha_init
    target_entropy: float | None = None  # H_target of the temperature loss; None means -dim(A)


# --- losses -----------------------------------------------------------------------------------------------------
def sac_critic_target(reward: Tensor, terminated: Tensor, next_q1: Tensor, next_q2: Tensor, next_logp: Tensor,
                      alpha: float, gamma: float) -> Tensor:
    """y = r + gamma (1 - terminated) (min(Qbar_1(s', a'), Qbar_2(s', a')) - alpha log pi(a'|s')),  a' ~ pi(.|s').

    Lecture: "SAC: Critic Loss".  The soft target: the next state's value includes the entropy bonus -alpha log pi.
    Shapes: all (B,); alpha, gamma floats.  Returns (B,), detached (a regression target carries no gradient).
    """
    with torch.no_grad():
        return td_target(reward, terminated, torch.min(next_q1, next_q2) - alpha * next_logp, gamma)


def sac_actor_loss(q1: Tensor, q2: Tensor, logp: Tensor, alpha: float | Tensor) -> Tensor:
    """L_pi = mean(alpha log pi(a|s) - min(Q_1(s, a), Q_2(s, a))),  a = f_theta(s, eps) reparameterized.

    Lecture: "SAC: Policy Loss (Actor)".  Minimising it raises Q and the entropy -log pi together.
    Shapes: q1, q2, logp (B,); alpha a float or 0-d tensor (treated as a constant).  Returns a scalar.
    """
    alpha = alpha.detach() if isinstance(alpha, Tensor) else alpha
    return (alpha * logp - torch.min(q1, q2)).mean()


def temperature_loss(log_alpha: Tensor, logp: Tensor, target_entropy: float) -> Tensor:
    """L_alpha = mean(exp(log_alpha) (-log pi(a|s) - H_target)),  log pi treated as a constant.

    Lecture: "SAC: Entropy Temperature Loss".  Its gradient in log_alpha is alpha (H_estimate - H_target): descent
    lowers alpha while the policy's entropy is above the target and raises it while below.
    Shapes: log_alpha 0-d (requires grad), logp (B,).  Returns a scalar.
    """
    return (log_alpha.exp() * (-logp.detach() - target_entropy)).mean()


# --- the actor --------------------------------------------------------------------------------------------------
class SquashedGaussianActor(nn.Module):
    """pi_theta(a|s): a = center + half_range * tanh(u),  u ~ N(mu_theta(s), sigma_theta(s)^2), diagonal and
    state-dependent.

    `forward(obs)` draws a reparameterized sample and returns (action, logp), both differentiable in theta: action
    (..., act_dim) in the environment's box, logp (...) the log-density of the squashed action tanh(u) in [-1, 1]
    units (the affine map to the box only shifts it by the constant -sum log half_range, and the target entropy
    -dim(A) is meant in these units).  `deterministic=True` gives the mode center + half_range * tanh(mu).
    """

    def __init__(self, obs_dim: int, act_dim: int, low, high, hidden=(64, 64)):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 2 * act_dim], activation=nn.ReLU)
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def dist_params(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, log_std) of the pre-tanh Gaussian, each (..., act_dim); log_std clamped to [-5, 2]."""
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        return mu, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        mu, log_std = self.dist_params(obs)
        u = mu if deterministic else mu + log_std.exp() * torch.randn_like(mu)  # reparameterization
        return self.center + self.half_range * torch.tanh(u), squashed_gaussian_log_prob(u, mu, log_std)


# --- the update -------------------------------------------------------------------------------------------------
class SAC:
    """Actor, twin critics and their target copy, log_alpha, optimizers; `update` is one SAC step on a batch."""

    def __init__(self, obs_space, act_space, cfg: Config, seed: int = 0):
        obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
        self.cfg = cfg
        low, high = box_bounds(act_space)
        self.actor = SquashedGaussianActor(obs_dim, act_dim, low, high, cfg.hidden)
        self.critic = TwinQ(obs_dim, act_dim, cfg.hidden)
        self.critic_targ = copy.deepcopy(self.critic)
        self.critic_targ.requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.alpha_init), requires_grad=cfg.autotune)
        self.target_entropy = -float(act_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr) if cfg.autotune else None
        self.actor_params = list(self.actor.parameters())
        self.model = nn.ModuleDict({"actor": self.actor, "critic": self.critic})

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Evaluation: the deterministic mode of the policy."""
        with torch.no_grad():
            return self.actor(torch.as_tensor(obs), deterministic=True)[0].numpy()

    def explore(self, obs: np.ndarray) -> np.ndarray:
        """Behaviour: a sample of the stochastic policy itself (no added noise: the entropy term explores)."""
        with torch.no_grad():
            return self.actor(torch.as_tensor(obs))[0].numpy()

    def update(self, b: Batch, step: int) -> dict:
        cfg, alpha = self.cfg, self.log_alpha.exp().item()
        with torch.no_grad():  # soft target from a fresh sample a' ~ pi(.|s') of the current policy
            a2, logp2 = self.actor(b.next_obs)
            y = sac_critic_target(b.reward, b.terminated, *self.critic_targ(b.next_obs, a2), logp2, alpha, cfg.gamma)
        q1, q2 = self.critic(b.obs, b.action)
        loss_q = critic_loss(y, q1, q2)  # both critics regress on the same soft target
        self.critic_opt.zero_grad()
        loss_q.backward()
        self.critic_opt.step()

        a, logp = self.actor(b.obs)  # reparameterized: the gradient flows through a into the critics' slope
        loss_pi = sac_actor_loss(*self.critic(b.obs, a), logp, alpha)
        self.actor_opt.zero_grad()
        loss_pi.backward(inputs=self.actor_params)  # the critics' weights get no gradient from the actor loss
        self.actor_opt.step()

        if self.alpha_opt is not None:
            loss_alpha = temperature_loss(self.log_alpha, logp, self.target_entropy)
            self.alpha_opt.zero_grad()
            loss_alpha.backward()
            self.alpha_opt.step()
        polyak_update(self.critic_targ, self.critic, cfg.tau)
        return {"critic_loss": loss_q.detach(), "actor_loss": loss_pi.detach(), "q1": q1.detach().mean(),
                "alpha": alpha, "entropy": -logp.detach().mean()}


def train(env_id: str, cfg: Config | None = None, *, steps: int, seed: int = 0, target: float | None = None,
          eval_every: int | None = None, eval_episodes: int | None = None, callback=None):
    """Train SAC on `env_id` (bounded 1-D Box actions); returns a `History` whose model holds 'actor' and 'critic'.

    Logs (History.logs): critic_loss, actor_loss, q1 (mean Q_1 on the batch), alpha, entropy (-mean log pi).
    """
    return train_off_policy("sac", env_id, cfg or Config(), SAC, steps=steps, seed=seed, target=target,
                            eval_every=eval_every, eval_episodes=eval_episodes, callback=callback)


ALGOS = [Algo(name="sac", train=train, config=Config, bench_env="Pendulum-v1", bench_target=-200.0,
              bench_steps=20_000, summary="soft actor-critic: entropy-regularised, reparameterized, twin critics",
              eval_every=500, eval_episodes=10)]
