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

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.algos import Algo
from lecturekit.buffers import Batch
from lecturekit.offpolicy import (
    DeterministicAgent,
    DeterministicConfig,
    TwinQ,
    clipped_double_q_target,
    critic_loss,
    dpg_actor_loss,
    td_target,
    train_off_policy,
)


@dataclass
class Config(DeterministicConfig):
    expl_noise: float = 0.2      # exploration noise std (half-range units; with 0.1, 1 of 5 seeds missed -200 in 15k)
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


class TD3(DeterministicAgent):
    """Actor, twin critics, their target copies and optimizers (see `DeterministicAgent`); `update` is one TD3 step."""

    def __init__(self, obs_space, act_space, cfg: Config, seed: int = 0):
        # with twin=False, q2 is never used (it gets no gradient)
        super().__init__(obs_space, act_space, cfg, seed, TwinQ(obs_space.shape[0], act_space.shape[0], cfg.hidden))
        self.last_actor_loss = torch.zeros(())

    def update(self, b: Batch, step: int) -> dict:
        """Critic step on the clipped double-Q target; every `policy_delay`-th call also actor step and targets."""
        cfg, critic, targ = self.cfg, self.critic, self.critic_targ
        with torch.no_grad():
            a2 = smoothed_target_action(self.actor_targ, b.next_obs, cfg.target_noise, cfg.noise_clip)
            if cfg.twin:
                y = clipped_double_q_target(b.reward, b.terminated, targ.q1(b.next_obs, a2), targ.q2(b.next_obs, a2),
                                            cfg.gamma)
            else:
                y = td_target(b.reward, b.terminated, targ.q1(b.next_obs, a2), cfg.gamma)
        q1 = critic.q1(b.obs, b.action)
        loss_q = critic_loss(y, q1, critic.q2(b.obs, b.action)) if cfg.twin else critic_loss(y, q1)
        self.critic_step(loss_q)
        if step % cfg.policy_delay == 0:
            loss_pi = dpg_actor_loss(critic.q1, self.actor, b.obs)
            self.actor_step(loss_pi)
            self.update_targets()
            self.last_actor_loss = loss_pi.detach()
        return {"critic_loss": loss_q.detach(), "actor_loss": self.last_actor_loss, "q1": q1.detach().mean()}


def train(env_id: str, cfg: Config | None = None, *, steps: int, seed: int = 0, target: float | None = None,
          eval_every: int | None = None, eval_episodes: int | None = None, callback=None, probe=None):
    """Train TD3 on `env_id` (1-D Box actions); returns a `History` whose model holds 'actor' and 'critic'.

    `probe(agent, env_steps)` is called after every evaluation (see `offpolicy.train_off_policy`).
    """
    return train_off_policy("td3", env_id, cfg or Config(), TD3, steps=steps, seed=seed, target=target,
                            eval_every=eval_every, eval_episodes=eval_episodes, callback=callback, probe=probe)


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
    h = train(env_id, Config(**ABLATIONS[variant]), steps=steps, seed=seed, eval_every=eval_every,
              eval_episodes=eval_episodes)
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


ALGOS = [Algo(name="td3", train=train, config=Config, bench_env="Pendulum-v1", bench_target=-200.0,
              bench_steps=30_000, summary="TD3: twin critics, target smoothing, delayed actor (continuous actions)",
              eval_every=500, eval_episodes=10)]


if __name__ == "__main__":  # python -m lecturekit.algos.td3 OUT.json [SEEDS] [STEPS] [WORKERS]: record the ablation
    import json
    import sys

    out, n_seeds, n_steps, n_workers = sys.argv[1], *(int(a) for a in (sys.argv[2:] + ["5", "15000", "2"])[:3])
    rows = ablation(seeds=range(n_seeds), steps=n_steps, workers=n_workers)
    with open(out, "w") as f:
        json.dump({"config": Config().__dict__, "steps": n_steps, "seeds": n_seeds, "runs": rows}, f, indent=1)
