"""DDPG: Deep Deterministic Policy Gradient.  Lecture: "Deep Deterministic Policy Gradient (DDPG)",
"Stochastic PG vs Deterministic PG".

An off-policy actor-critic for continuous actions:
- actor: a deterministic policy mu_theta(s) that outputs the action itself;
- critic: Q_phi(s, a), trained on replayed transitions towards the TD target built with slowly moving copies
  (target networks, Polyak averaging) of both networks:
      y = r + gamma (1 - terminated) Q_phi'(s', mu_theta'(s'));
- actor update: gradient ascent on Q_phi(s, mu_theta(s)), whose gradient is the chain rule
      grad_theta J = E_s[ grad_a Q_phi(s, a)|_{a = mu_theta(s)} grad_theta mu_theta(s) ];
- exploration: Gaussian noise added to mu_theta(s) in the environment (the actor itself is deterministic).

Known weakness (lecture: "Prone to overestimation, instability"): the actor climbs the critic's errors and the target
feeds them back; TD3 (`td3.py`) adds three fixes.  Shapes: a replay batch has obs, next_obs (B, obs_dim),
action (B, act_dim), reward and terminated (B,).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lecturekit.algos import Algo
from lecturekit.buffers import Batch
from lecturekit.offpolicy import (
    DeterministicAgent,
    DeterministicConfig,
    QCritic,
    critic_loss,
    dpg_actor_loss,
    td_target,
    train_off_policy,
)


@dataclass
class Config(DeterministicConfig):
    """DDPG's hyperparameters: the shared off-policy ones (see `DeterministicConfig` and `OffPolicyConfig`)."""


class DDPG(DeterministicAgent):
    """Actor, one critic, their target copies and optimizers (see `DeterministicAgent`); `update` is one DDPG step."""

    def __init__(self, obs_space, act_space, cfg: Config, seed: int = 0):
        super().__init__(obs_space, act_space, cfg, seed, QCritic(obs_space.shape[0], act_space.shape[0], cfg.hidden))

    def update(self, b: Batch, step: int) -> dict:
        """One critic step towards y = r + gamma (1 - d) Q'(s', mu'(s')), one actor step, Polyak targets."""
        with torch.no_grad():
            y = td_target(b.reward, b.terminated, self.critic_targ(b.next_obs, self.actor_targ(b.next_obs)),
                          self.cfg.gamma)
        q = self.critic(b.obs, b.action)
        loss_q = critic_loss(y, q)
        self.critic_step(loss_q)
        loss_pi = dpg_actor_loss(self.critic, self.actor, b.obs)
        self.actor_step(loss_pi)
        self.update_targets()
        return {"critic_loss": loss_q.detach(), "actor_loss": loss_pi.detach(), "q1": q.detach().mean()}


def train(env_id: str, cfg: Config | None = None, *, steps: int, seed: int = 0, target: float | None = None,
          eval_every: int | None = None, eval_episodes: int | None = None, callback=None, probe=None):
    """Train DDPG on `env_id` (1-D Box actions); returns a `History` whose model holds 'actor' and 'critic'.

    `probe(agent, env_steps)` is called after every evaluation (see `offpolicy.train_off_policy`).
    """
    return train_off_policy("ddpg", env_id, cfg or Config(), DDPG, steps=steps, seed=seed, target=target,
                            eval_every=eval_every, eval_episodes=eval_episodes, callback=callback, probe=probe)


ALGOS = [Algo(name="ddpg", train=train, config=Config, bench_env="Pendulum-v1", bench_target=-200.0,
              bench_steps=30_000, summary="DDPG: deterministic actor, Q critic, replay and target networks",
              eval_every=500, eval_episodes=10)]
