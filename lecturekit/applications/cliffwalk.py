"""REINFORCE on Cliff Walking with a small neural softmax policy (lecture: "Cliff Walking Policy").

Plain REINFORCE (`lecturekit.algos.reinforce`) gets stuck on this problem, and the way it gets stuck is
instructive (notebook 08 shows it): falling off the cliff costs -100 and is by far the loudest signal early on, so
the network learns "move away from the cliff" with its *shared* weights, in every cell at once; all its probability
drifts onto one safe move (up or left), the walker ends up pinned in a corner, no episode reaches the goal any more,
and there is nothing left to learn from.

This module runs REINFORCE exactly as `lecturekit.algos.reinforce` does (its episode collection and its `update`:
returns-to-go, `reinforce_loss`, the learned value baseline) and changes two things:

- **exploring starts** for training: each episode starts in a random cell (``CliffWalkingExploringStarts-v0``),
  so episodes that begin near the goal teach the policy how to finish; evaluation starts at S as usual;
- an **entropy bonus** ``-beta * H(pi(.|s))`` in the loss (REINFORCE's ``ent_coef``), which keeps the softmax from
  collapsing onto one move before the goal has been found (the lecture returns to entropy regularisation with SAC).

    loss = -mean_t[ log pi(a_t|s_t) (G_t - V(s_t)) / std ] - beta * mean_t H(pi(.|s_t))
"""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import torch

from lecturekit.algos import reinforce
from lecturekit.envs import make_vec
from lecturekit.evaluation import History, Monitor, Run

TRAIN_ENV = "lecturekit/CliffWalkingExploringStarts-v0"
EVAL_ENV = "lecturekit/CliffWalkingOneHot-v0"

# REINFORCE settings for Cliff Walking (measured: seeds 0, 1, 2 reach the target after 90k-100k steps)
DEFAULTS = dict(gamma=0.99, n_episodes=16, lr=1e-2, baseline="value", vf_lr=1e-2, vf_iters=5, normalize=True,
                hidden=(32,), ent_coef=0.1)


def config(**overrides) -> reinforce.Config:
    """REINFORCE's Config with the Cliff Walking defaults above, changed by `overrides` (e.g. ent_coef=0.0)."""
    return reinforce.Config(**{**DEFAULTS, **overrides})


def train(cfg: reinforce.Config | None = None, *, exploring_starts: bool = True, steps: int, seed: int = 0,
          target: float | None = -17.0, eval_every: int | None = None, callback=None) -> History:
    """REINFORCE on Cliff Walking: trained from random cells (`exploring_starts`) or from S, always evaluated by the
    greedy walk from S (one episode: the walk is deterministic). Stops at `target` (greedy return)."""
    cfg = cfg or config()
    torch.manual_seed(seed)
    envs = make_vec(TRAIN_ENV if exploring_starts else EVAL_ENV, cfg.n_episodes, seed)
    t_max = envs.spec.max_episode_steps
    model = reinforce.make_model(envs.single_observation_space, envs.single_action_space, cfg)
    policy = reinforce.Policy(model, envs.single_action_space)
    opt = torch.optim.Adam(model.pi.parameters(), lr=cfg.lr)
    vf_opt = torch.optim.Adam(model.v.parameters(), lr=cfg.vf_lr) if cfg.baseline == "value" else None
    bufs = reinforce.episode_buffers(envs, t_max)
    run_config = {**dataclasses.asdict(cfg), "exploring_starts": exploring_starts}
    mon = Monitor("reinforce-cliff", EVAL_ENV, Run(steps, seed, target, eval_every, 1, callback), config=run_config)
    env_steps = 0
    try:
        while True:
            batch = reinforce.collect_episodes(envs, policy, bufs, t_max)
            env_steps += batch.env_steps
            mon.log(env_steps, **reinforce.update(model, opt, vf_opt, batch, cfg))
            if mon.should_stop(env_steps, policy.greedy):
                break
    finally:
        envs.close()
    return mon.finish(model)


def greedy_policy(history: History):
    """The trained network as a NumPy act_fn (arg-max move) for `lecturekit.envs.cliff.greedy_path`."""
    return reinforce.Policy(history.model, gym.spaces.Discrete(4)).greedy
