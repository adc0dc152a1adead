"""TD3 and DDPG: deterministic policy gradients.  Lecture: "Deep Deterministic Policy Gradient (DDPG)", "Stochastic
PG vs Deterministic PG", "TD3: Twin Delayed Deep Deterministic Policy Gradient".

DDPG, an off-policy actor-critic for continuous actions:
- actor: a deterministic policy mu_theta(s) that outputs the action itself;
- critic: Q_phi(s, a), trained on replayed transitions towards the TD target built with slowly moving copies
  (target networks, Polyak averaging) of both networks:  y = r + gamma (1 - terminated) Q_phi'(s', mu_theta'(s'));
- actor update: gradient ascent on Q_phi(s, mu_theta(s)), whose gradient is the chain rule
      grad_theta J = E_s[ grad_a Q_phi(s, a)|_{a = mu_theta(s)} grad_theta mu_theta(s) ];
- exploration: Gaussian noise added to mu_theta(s) in the environment (the actor itself is deterministic).

Its known weakness (lecture: "Prone to overestimation, instability"): the actor climbs the critic's errors and the
target feeds them back.  TD3 adds three fixes:
1. clipped double Q-learning: two critics, and the target uses the smaller of their two estimates,
       y = r + gamma (1 - terminated) min_i Q'_i(s', a');
2. target policy smoothing: the target action is the target actor's action plus clipped Gaussian noise,
       a' = clip(mu'(s') + clip(sigma eps, -c, c), low, high),  eps ~ N(0, 1),
   so the critic cannot exploit a narrow peak of its own estimate;
3. delayed actor updates: the actor and all target networks move once every `policy_delay` critic updates.

Each fix is a `Config` field; with all three off (twin=False, target_noise=0, policy_delay=1) TD3 IS DDPG, and this
module registers both: `DDPGConfig` is that special case with DDPG's own defaults.

Shapes: B = batch size; obs, next_obs (B, obs_dim); action (B, act_dim) in the environment's box; reward,
terminated, Q-values (B,).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.algos import Algo
from lecturekit.buffers import Batch
from lecturekit.evaluation import History, Run
from lecturekit.nets import DeterministicActor, TwinQ
from lecturekit.offpolicy import (
    OffPolicyConfig,
    critic_loss,
    frozen_copy,
    polyak_update,
    td_target,
    train_off_policy,
)


@dataclass
class Config(OffPolicyConfig):
    """TD3's fields; gamma, tau, hidden, actor_lr, critic_lr, batch_size, warmup, ... come from OffPolicyConfig."""

    name: ClassVar[str] = "td3"  # what History.algo says
    actor_lr: float = 1e-3       # Adam step sizes (with SAC's 2e-3, 4 of 5 seeds fell below -200 again within the
    critic_lr: float = 1e-3      # 3 evaluations after their first one at the target)
    warmup: int = 500            # random warm-up steps before the first update
    expl_noise: float = 0.2      # exploration noise std (half-range units; with 0.1, 1 of 5 seeds missed -200 in 15k)
    target_noise: float = 0.2    # sigma of the target smoothing noise (half-range units); 0 switches fix 2 off
    noise_clip: float = 0.5      # c: the smoothing noise is clipped to [-c, c] (half-range units)
    policy_delay: int = 2        # critic updates per actor / target update; 1 switches fix 3 off
    twin: bool = True            # clipped double Q-learning (fix 1); False: one critic, DDPG's target


@dataclass
class DDPGConfig(Config):
    """DDPG: TD3 with its three fixes switched off."""

    name: ClassVar[str] = "ddpg"
    actor_lr: float = 2e-3       # Adam step sizes (DDPG's single critic stays stable with larger steps than TD3's)
    critic_lr: float = 2e-3
    batch_size: int = 512        # fewer updates to the target than with 256, at little more cost per update
    warmup: int = 1000           # random warm-up steps before the first update
    expl_noise: float = 0.1      # std of the Gaussian exploration noise, in units of the action half-range
    target_noise: float = 0.0    # no target smoothing
    policy_delay: int = 1        # the actor moves at every critic update
    twin: bool = False           # one critic (Q_1 of the TwinQ; Q_2 is never trained nor read)


# ------------------------------------------------------------------------------------------------------- losses
def clipped_double_q_target(reward: Tensor, terminated: Tensor, next_q1: Tensor, next_q2: Tensor,
                            gamma: float) -> Tensor:
    """y = r + gamma * (1 - terminated) * min(Q1'(s', a'), Q2'(s', a')), no gradient.  Lecture: TD3, "Clipped
    Double Q-learning".  Shapes: all (B,) -> (B,).  (The course exercise `td3_target` has this signature.)
    """
    return td_target(reward, terminated, torch.minimum(next_q1, next_q2), gamma)


def dpg_actor_loss(q, actor: nn.Module, obs: Tensor) -> Tensor:
    """L(theta) = -E_s[Q(s, mu_theta(s))].  Its gradient is the deterministic policy gradient
    -E_s[grad_a Q(s, a)|_{a = mu(s)} grad_theta mu_theta(s)] (the chain rule).  Lecture: DDPG, "Actor".

    Shapes: obs (B, obs_dim); q(obs, act) -> (B,).  Returns a scalar.
    """
    return -q(obs, actor(obs)).mean()


def smoothed_target_action(actor_targ: DeterministicActor, next_obs: Tensor, eps: Tensor, sigma: float,
                           clip: float) -> Tensor:
    """a' = clip(mu'(s') + clip(sigma eps, -c, c), low, high), eps standard normal (sigma and c in half-range units).

    Lecture: TD3, "Target smoothing".  Shapes: next_obs (B, obs_dim), eps (B, act_dim) -> (B, act_dim).
    """
    a = actor_targ(next_obs)
    if sigma <= 0:
        return a
    center, half = actor_targ.squash.center, actor_targ.squash.half_range
    return torch.clamp(a + (sigma * eps).clamp(-clip, clip) * half, center - half, center + half)


# ------------------------------------------------------------------------------------------------------- update
class Agent:
    """What `update` works on: actor mu_theta, critics (a `TwinQ`; DDPG uses Q_1 only), their target copies, two
    Adam optimizers and the config.  `act` and `explore` are the evaluation and behaviour policies."""

    def __init__(self, obs_dim: int, act_dim: int, low: Tensor, high: Tensor, cfg: Config, gen: torch.Generator):
        self.cfg, self.low, self.high = cfg, low, high
        self.actor = DeterministicActor(obs_dim, act_dim, low, high, cfg.hidden, generator=gen)
        self.critic = TwinQ(obs_dim, act_dim, cfg.hidden, generator=gen)
        self.actor_targ, self.critic_targ = frozen_copy(self.actor), frozen_copy(self.critic)
        # fused Adam: one kernel for all parameters (about 15 % faster per update at this size on CPU)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, fused=True)
        self.model = nn.ModuleDict({"actor": self.actor, "critic": self.critic})

    def act(self, obs: Tensor) -> Tensor:
        """Evaluation policy mu(s).  (N, obs_dim) -> (N, act_dim)."""
        return self.actor(obs)

    def explore(self, obs: Tensor, eps: Tensor) -> Tensor:
        """Behaviour policy: mu(s) + expl_noise * half_range * eps clipped to the box; eps ~ N(0, I), (N, act_dim)."""
        noise = self.cfg.expl_noise * self.actor.squash.half_range * eps
        return torch.clamp(self.actor(obs) + noise, self.low, self.high)


def update(agent: Agent, b: Batch, step: int, noise: Tensor) -> dict:
    """One TD3 (or DDPG) update: the critic step; every `policy_delay`-th step also the actor step and the targets.

    noise: standard normal (B, act_dim) for the target smoothing.  `step` counts updates from 0.
    Returns critic_loss, q1 (mean Q_1 on the batch) and, on actor steps, actor_loss.
    """
    cfg = agent.cfg
    with torch.no_grad():
        a2 = smoothed_target_action(agent.actor_targ, b.next_obs, noise, cfg.target_noise, cfg.noise_clip)
    if cfg.twin:  # clipped double Q: both critics regress on the smaller target estimate
        y = clipped_double_q_target(b.reward, b.terminated, *agent.critic_targ(b.next_obs, a2), cfg.gamma)
        q1, q2 = agent.critic(b.obs, b.action)
        loss_q = critic_loss(y, q1, q2)
    else:  # DDPG: one critic, Q_1
        y = td_target(b.reward, b.terminated, agent.critic_targ.q1(b.next_obs, a2), cfg.gamma)
        q1 = agent.critic.q1(b.obs, b.action)
        loss_q = critic_loss(y, q1)
    agent.critic_opt.zero_grad()
    loss_q.backward()
    agent.critic_opt.step()
    logs = {"critic_loss": loss_q.item(), "q1": q1.mean().item()}
    if step % cfg.policy_delay == 0:
        loss_pi = dpg_actor_loss(agent.critic.q1, agent.actor, b.obs)
        agent.actor_opt.zero_grad()
        loss_pi.backward(inputs=list(agent.actor.parameters()))  # the critic gets no gradient from the actor loss
        agent.actor_opt.step()
        polyak_update(agent.actor_targ, agent.actor, cfg.tau)
        polyak_update(agent.critic_targ, agent.critic, cfg.tau)
        logs["actor_loss"] = loss_pi.item()
    return logs


def draw_noise(batch_size: int, act_dim: int, gen: torch.Generator) -> Tensor:
    """The noise one `update` needs: standard normal (batch_size, act_dim) for the target smoothing."""
    return torch.randn(batch_size, act_dim, generator=gen)


# ------------------------------------------------------------------------------------------------------- train
def train(env_id: str, cfg: Config | None = None, run: Run | None = None, *, update=update) -> History:
    """Train TD3 (or DDPG, given a `DDPGConfig`) on `env_id` (bounded 1-D Box actions).

    Returns a `History` whose model holds 'actor' and 'critic'; logs critic_loss, q1 and actor_loss.
    `update(agent, batch, step, noise) -> dict` is the seam (see `lecturekit.algos`).
    """
    cfg = cfg or Config()
    return train_off_policy(cfg.name, env_id, cfg, run or Run(), Agent, update, draw_noise)


ALGOS = [
    Algo(name="ddpg", train=train, config=DDPGConfig, bench_env="Pendulum-v1", bench_target=-200.0,
         bench_steps=30_000, summary="DDPG: deterministic actor, Q critic, replay and target networks",
         eval_every=500, eval_episodes=10),
    Algo(name="td3", train=train, config=Config, bench_env="Pendulum-v1", bench_target=-200.0, bench_steps=30_000,
         summary="TD3: twin critics, target smoothing, delayed actor (continuous actions)",
         eval_every=500, eval_episodes=10),
]


# --- ablation: remove one fix at a time (notebook 12 reads the recorded results) ------------------------------------
ABLATIONS = {
    "TD3 (all three fixes)": {},
    "no clipped double Q": {"twin": False},
    "no target smoothing": {"target_noise": 0.0},
    "no delayed actor": {"policy_delay": 1},
    "none of the three": {"twin": False, "target_noise": 0.0, "policy_delay": 1},
}


def _ablation_run(args) -> dict:
    variant, seed, steps, target, eval_every, eval_episodes, env_id = args
    torch.set_num_threads(1)
    h = train(env_id, Config(**ABLATIONS[variant]), Run(steps, seed, eval_every=eval_every,
                                                        eval_episodes=eval_episodes))
    reached = [int(s) for s, m in zip(h.eval_steps, h.eval_means) if m >= target]
    return {"variant": variant, "seed": seed, "steps_to_target": reached[0] if reached else None,
            "final_return": float(np.mean(h.eval_means[-3:])), "evals": [[int(e[0]), float(e[2])] for e in h.evals],
            "wall_s": h.wall_s}


def ablation(seeds=range(5), steps: int = 15_000, target: float = -200.0, eval_every: int = 500,
             eval_episodes: int = 10, env_id: str = "Pendulum-v1", variants=None, workers: int = 1) -> list[dict]:
    """Train every variant of `ABLATIONS` for the full `steps` (no early stop) with each seed.

    One row per run: variant, seed, steps_to_target (first evaluation >= target, None if never), final_return
    (mean of the last 3 evaluations), the evaluation curve and the wall time.  `workers` > 1 runs in processes.
    """
    jobs = [(v, s, steps, target, eval_every, eval_episodes, env_id) for v in (variants or ABLATIONS) for s in seeds]
    if workers <= 1:
        return [_ablation_run(j) for j in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_ablation_run, jobs))


if __name__ == "__main__":  # python -m lecturekit.algos.td3 OUT.json [SEEDS] [STEPS] [WORKERS]: record the ablation
    import json
    import sys

    out, n_seeds, n_steps, n_workers = sys.argv[1], *(int(a) for a in (sys.argv[2:] + ["5", "15000", "2"])[:3])
    rows = ablation(seeds=range(n_seeds), steps=n_steps, workers=n_workers)
    with open(out, "w") as f:
        json.dump({"config": Config().__dict__, "steps": n_steps, "seeds": n_seeds, "runs": rows}, f, indent=1)
