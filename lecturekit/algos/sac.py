"""Soft Actor-Critic (SAC).  Lecture: "Soft Actor-Critic (SAC): Overview" to "SAC: Implementation Tricks".

SAC learns a stochastic policy that maximises return plus alpha times its entropy, off-policy from a replay buffer:

    critic      L_Q  = E_D[(Q_i(s, a) - y)^2],  y = r + gamma (1 - term) (min_j Qbar_j(s', a') - alpha log pi(a'|s'))
    actor       L_pi = E_{s~D, eps}[alpha log pi(a|s) - min_j Q_j(s, a)],  a = tanh(mu(s) + sigma(s) eps)
    temperature L_a  = E[alpha (-log pi(a|s) - H_target)],  H_target = -dim(A),  alpha = exp(log_alpha)

The actor's sample is reparameterized (the "pathwise" gradient goes through Q's slope in a), and squashed by tanh
into the action box (`nets.SquashedGaussianActor`; the change-of-variables correction is
`distributions.squashed_gaussian_log_prob`).  The replay buffer, the twin Q-critics (`nets.TwinQ`), Polyak averaging
and the training loop are the ones of part 6 (`lecturekit.offpolicy`).  The loop draws every standard normal eps the
update needs (`draw_noise`) from the run's generator.

Shapes: B = batch size; obs (B, obs_dim); actions (B, act_dim) in the environment's box; rewards, flags, Q-values
and log-probs (B,).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from lecturekit.algos import Algo
from lecturekit.buffers import Batch
from lecturekit.evaluation import History, Run
from lecturekit.nets import SquashedGaussianActor, TwinQ
from lecturekit.offpolicy import OffPolicyConfig, critic_loss, frozen_copy, polyak_update, td_target, train_off_policy


@dataclass
class Config(OffPolicyConfig):
    """SAC's fields; gamma, tau, hidden, actor_lr, critic_lr, batch_size, warmup, ... come from OffPolicyConfig."""

    name: ClassVar[str] = "sac"      # what History.algo says
    alpha_lr: float = 2e-3           # Adam step size of log_alpha
    alpha_init: float = 0.2          # initial temperature alpha (1.0 solved too with the old defaults)
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


# --- the update -------------------------------------------------------------------------------------------------
class Agent:
    """What `update` works on: the squashed Gaussian actor, twin critics and their target copy, log_alpha, three
    Adam optimizers (alpha_opt is None without autotune), the target entropy and the config."""

    def __init__(self, obs_dim: int, act_dim: int, low: Tensor, high: Tensor, cfg: Config, gen: torch.Generator):
        self.cfg = cfg
        self.actor = SquashedGaussianActor(obs_dim, act_dim, low, high, cfg.hidden, generator=gen)
        self.critic = TwinQ(obs_dim, act_dim, cfg.hidden, generator=gen)
        self.critic_targ = frozen_copy(self.critic)
        self.log_alpha = torch.tensor(math.log(cfg.alpha_init), requires_grad=cfg.autotune)
        self.target_entropy = -float(act_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr) if cfg.autotune else None
        self.model = nn.ModuleDict({"actor": self.actor, "critic": self.critic})

    def act(self, obs: Tensor) -> Tensor:
        """Evaluation: the deterministic mode of the policy.  (N, obs_dim) -> (N, act_dim)."""
        return self.actor.action(obs)

    def explore(self, obs: Tensor, eps: Tensor) -> Tensor:
        """Behaviour: a sample of the stochastic policy itself (no added noise: the entropy term explores)."""
        return self.actor.action(obs, eps)


def update(agent: Agent, b: Batch, step: int, noise: tuple[Tensor, Tensor]) -> dict:
    """One SAC update: critics on the soft target, actor on the reparameterized loss, temperature, Polyak.

    noise = (eps_next, eps_now), standard normal (B, act_dim) each: eps_next makes a' ~ pi(.|s') for the target,
    eps_now the reparameterized action a at s.  Returns critic_loss, actor_loss, q1, alpha, entropy (-mean log pi).
    """
    cfg, alpha = agent.cfg, agent.log_alpha.exp().item()
    eps_next, eps_now = noise
    with torch.no_grad():  # soft target from a fresh sample a' ~ pi(.|s') of the current policy
        a2, logp2 = agent.actor(b.next_obs, eps_next)
        y = sac_critic_target(b.reward, b.terminated, *agent.critic_targ(b.next_obs, a2), logp2, alpha, cfg.gamma)
    q1, q2 = agent.critic(b.obs, b.action)
    loss_q = critic_loss(y, q1, q2)  # both critics regress on the same soft target
    agent.critic_opt.zero_grad()
    loss_q.backward()
    agent.critic_opt.step()

    a, logp = agent.actor(b.obs, eps_now)  # reparameterized: the gradient flows through a into the critics' slope
    loss_pi = sac_actor_loss(*agent.critic(b.obs, a), logp, alpha)
    agent.actor_opt.zero_grad()
    loss_pi.backward(inputs=list(agent.actor.parameters()))  # the critics get no gradient from the actor loss
    agent.actor_opt.step()

    if agent.alpha_opt is not None:
        loss_alpha = temperature_loss(agent.log_alpha, logp, agent.target_entropy)
        agent.alpha_opt.zero_grad()
        loss_alpha.backward()
        agent.alpha_opt.step()
    polyak_update(agent.critic_targ, agent.critic, cfg.tau)
    return {"critic_loss": loss_q.item(), "actor_loss": loss_pi.item(), "q1": q1.mean().item(), "alpha": alpha,
            "entropy": -logp.mean().item()}


def draw_noise(batch_size: int, act_dim: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """The noise one `update` needs: (eps_next, eps_now), standard normal (batch_size, act_dim) each."""
    eps = torch.randn(2, batch_size, act_dim, generator=gen)
    return eps[0], eps[1]


# --- train ------------------------------------------------------------------------------------------------------
def train(env_id: str, cfg: Config | None = None, run: Run | None = None, *, update=update) -> History:
    """Train SAC on `env_id` (bounded 1-D Box actions); returns a `History` whose model holds 'actor' and 'critic'.

    Logs (History.logs): critic_loss, actor_loss, q1 (mean Q_1 on the batch), alpha, entropy (-mean log pi).
    `update(agent, batch, step, noise) -> dict` is the seam (see `lecturekit.algos`).
    """
    cfg = cfg or Config()
    return train_off_policy(cfg.name, env_id, cfg, run or Run(), Agent, update, draw_noise)


ALGOS = [Algo(name="sac", train=train, config=Config, bench_env="Pendulum-v1", bench_target=-200.0,
              bench_steps=20_000, summary="soft actor-critic: entropy-regularised, reparameterized, twin critics",
              eval_every=500, eval_episodes=10)]
