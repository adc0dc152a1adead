"""REINFORCE on Cliff Walking with a small neural softmax policy (lecture: "Cliff Walking Policy").

Plain REINFORCE (`lecturekit.algos.reinforce`) gets stuck on this problem, and the way it gets stuck is
instructive (notebook 08 shows it): falling off the cliff costs -100 and is by far the loudest signal early on, so
the network learns "move away from the cliff" with its *shared* weights, in every cell at once; all its probability
drifts onto one safe move (up or left), the walker ends up pinned in a corner, no episode reaches the goal any more,
and there is nothing left to learn from.

This module is a REINFORCE preset, not a second loop: `lecturekit.algos.reinforce.train` with a Config, a
training environment and an evaluation function.  It changes two things:

- **exploring starts** for training: each episode starts in a random cell (``CliffWalkingExploringStarts-v0``),
  so episodes that begin near the goal teach the policy how to finish; evaluation starts at S as usual (one
  greedy walk: it is deterministic);
- an **entropy bonus** ``-beta * H(pi(.|s))`` in the loss (REINFORCE's ``entropy_coef``), which keeps the softmax
  from collapsing onto one move before the goal has been found (the lecture returns to entropy regularisation
  with SAC).

    loss = -mean_t[ log pi(a_t|s_t) (G_t - V(s_t)) / std ] - beta * mean_t H(pi(.|s_t))
"""
from __future__ import annotations

import dataclasses

import gymnasium as gym

from lecturekit.algos import reinforce
from lecturekit.evaluation import EVAL_SEED_OFFSET, History, Run, gym_evaluator

TRAIN_ENV = "lecturekit/CliffWalkingExploringStarts-v0"
EVAL_ENV = "lecturekit/CliffWalkingOneHot-v0"
TARGET = -17.0  # greedy return from S of a path at most two rows above the cliff (along the edge: 13 moves, -13)

# REINFORCE settings for Cliff Walking (measured: seeds 0, 1, 2 reach the target after 90k-100k steps)
CONFIG = reinforce.Config(gamma=0.99, n_episodes=16, lr=1e-2, baseline="value", vf_lr=1e-2, vf_iters=5,
                          normalize_adv=True, hidden=(32,), entropy_coef=0.1)


def config(**overrides) -> reinforce.Config:
    """`CONFIG` changed by `overrides` (e.g. entropy_coef=0.0)."""
    return dataclasses.replace(CONFIG, **overrides)


def train(cfg: reinforce.Config | None = None, run: Run | None = None, *, exploring_starts: bool = True) -> History:
    """REINFORCE on Cliff Walking: trained from random cells (`exploring_starts`) or from S, always evaluated by the
    greedy walk from S (one episode).  `run` as for every algorithm (default: stop at `TARGET`)."""
    run = run or Run(target=TARGET)
    evaluate = gym_evaluator(EVAL_ENV, 1, run.seed + EVAL_SEED_OFFSET)
    return reinforce.train(TRAIN_ENV if exploring_starts else EVAL_ENV, cfg or config(), run, evaluate=evaluate)


def greedy_policy(history: History):
    """The trained network as a NumPy act_fn (arg-max move) for `lecturekit.envs.cliff.greedy_path`."""
    return reinforce.Policy(history.model, gym.spaces.Discrete(4)).greedy
