"""TD3: Twin Delayed Deep Deterministic policy gradient.  Lecture: "TD3: Twin Delayed Deep Deterministic Policy
Gradient".

DDPG (see `ddpg.py`) with three fixes against the critic's overestimation and the resulting instability:

1. clipped double Q-learning: two critics, and the target uses the smaller of their two estimates,
       y = r + gamma (1 - terminated) min_i Q'_i(s', a');
2. target policy smoothing: the target action is the target actor's action plus clipped Gaussian noise,
       a' = clip(mu'(s') + clip(eps, -c, c), low, high),  eps ~ N(0, sigma^2),
   so the critic cannot exploit a narrow peak of its own estimate;
3. delayed actor updates: the actor and all target networks move once every `policy_delay` critic updates.

Each fix can be switched off in `Config` (the ablation in notebook 12); with all three off this is DDPG with TD3's
hyperparameters.  Shapes: a replay batch has obs, next_obs (B, obs_dim), action (B, act_dim), reward and
terminated (B,).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.algos import Algo
from lecturekit.buffers import Batch
from lecturekit.offpolicy import (
    DeterministicActor,
    OffPolicyConfig,
    TwinQ,
    box_bounds,
    clipped_double_q_target,
    dpg_actor_loss,
    gaussian_explore,
    polyak_update,
    td_target,
    train_off_policy,
)


@dataclass
class Config(OffPolicyConfig):
    expl_noise: float = 0.1      # std of the Gaussian exploration noise, in units of the action half-range
    target_noise: float = 0.2    # sigma of the target smoothing noise (half-range units); 0 switches fix 2 off
    noise_clip: float = 0.5      # c: the smoothing noise is clipped to [-c, c] (half-range units)
    policy_delay: int = 2        # critic updates per actor / target update; 1 switches fix 3 off
    twin: bool = True            # clipped double Q-learning (fix 1); False: one critic, DDPG's target


def smoothed_target_action(actor_targ: nn.Module, next_obs: Tensor, sigma: float, clip: float) -> Tensor:
    """a' = clip(mu'(s') + clip(eps, -c, c), low, high), eps ~ N(0, sigma^2) (sigma and c in half-range units).

    Lecture: TD3, "Target smoothing".  Shapes: next_obs (B, obs_dim) -> (B, act_dim).
    """
    a = actor_targ(next_obs)
    if sigma <= 0:
        return a
    half = actor_targ.half_range
    eps = (torch.randn_like(a) * sigma).clamp(-clip, clip) * half
    return torch.max(torch.min(a + eps, actor_targ.center + half), actor_targ.center - half)


def critic_loss(q1: Tensor, q2: Tensor | None, y: Tensor) -> Tensor:
    """L(phi) = E[(Q_1(s, a) - y)^2] + E[(Q_2(s, a) - y)^2]: both critics regress on the same target y.

    Shapes: q1, q2, y: (B,).  Returns a scalar.
    """
    loss = (q1 - y).pow(2).mean()
    return loss if q2 is None else loss + (q2 - y).pow(2).mean()


class TD3:
    """Actor, twin critics, their target copies and optimizers; `update` is one TD3 step on a replay batch."""

    def __init__(self, obs_space, act_space, cfg: Config, seed: int = 0):
        obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
        self.cfg = cfg
        self.low, self.high = box_bounds(act_space)
        self.actor = DeterministicActor(obs_dim, act_dim, self.low, self.high, cfg.hidden)
        self.critic = TwinQ(obs_dim, act_dim, cfg.hidden)  # with twin=False, q2 is never used (gets no gradient)
        self.actor_targ, self.critic_targ = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        for p in [*self.actor_targ.parameters(), *self.critic_targ.parameters()]:
            p.requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.actor_params = list(self.actor.parameters())
        self.model = nn.ModuleDict({"actor": self.actor, "critic": self.critic})
        self.rng = np.random.default_rng(seed + 1)
        self.last_actor_loss = torch.zeros(())

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.actor(torch.as_tensor(obs)).numpy()

    def explore(self, obs: np.ndarray) -> np.ndarray:
        return gaussian_explore(self.act(obs), self.cfg.expl_noise, self.low, self.high, self.rng)

    def update(self, b: Batch, step: int) -> dict:
        cfg = self.cfg
        with torch.no_grad():
            a2 = smoothed_target_action(self.actor_targ, b.next_obs, cfg.target_noise, cfg.noise_clip)
            q1_next = self.critic_targ.q1(b.next_obs, a2)
            if cfg.twin:
                y = clipped_double_q_target(b.reward, b.terminated, q1_next, self.critic_targ.q2(b.next_obs, a2),
                                            cfg.gamma)
            else:
                y = td_target(b.reward, b.terminated, q1_next, cfg.gamma)
        q1 = self.critic.q1(b.obs, b.action)
        q2 = self.critic.q2(b.obs, b.action) if cfg.twin else None
        loss_q = critic_loss(q1, q2, y)
        self.critic_opt.zero_grad()
        loss_q.backward()
        self.critic_opt.step()
        if step % cfg.policy_delay == 0:
            loss_pi = dpg_actor_loss(self.critic.q1, self.actor, b.obs)
            self.actor_opt.zero_grad()
            loss_pi.backward(inputs=self.actor_params)  # the critic's weights get no gradient
            self.actor_opt.step()
            polyak_update(self.actor_targ, self.actor, cfg.tau)
            polyak_update(self.critic_targ, self.critic, cfg.tau)
            self.last_actor_loss = loss_pi.detach()
        return {"critic_loss": loss_q.detach(), "actor_loss": self.last_actor_loss, "q1": q1.detach().mean()}


def train(env_id: str, cfg: Config | None = None, *, steps: int, seed: int = 0, target: float | None = None,
          eval_every: int | None = None, eval_episodes: int | None = None, callback=None):
    """Train TD3 on `env_id` (1-D Box actions); returns a `History` whose model holds 'actor' and 'critic'."""
    return train_off_policy("td3", env_id, cfg or Config(), TD3, steps=steps, seed=seed, target=target,
                            eval_every=eval_every, eval_episodes=eval_episodes, callback=callback)


ALGOS = [Algo(name="td3", train=train, config=Config, bench_env="Pendulum-v1", bench_target=-200.0,
              bench_steps=30_000, summary="TD3: twin critics, target smoothing, delayed actor (continuous actions)",
              eval_every=500, eval_episodes=10)]
