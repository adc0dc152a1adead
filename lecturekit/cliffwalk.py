"""REINFORCE on Cliff Walking with a small neural softmax policy (lecture: "Cliff Walking Policy").

Plain REINFORCE (`lecturekit.algos.reinforce`) gets stuck on this problem, and the way it gets stuck is
instructive (notebook 08 shows it): falling off the cliff costs -100 and is by far the loudest signal early on, so
the network learns "move away from the cliff" with its *shared* weights, in every cell at once; all its probability
drifts onto one safe move (up or left), the walker ends up pinned in a corner, no episode reaches the goal any more,
and there is nothing left to learn from.

This module keeps REINFORCE's pieces (episode collection, returns-to-go, `reinforce_loss`, the learned value
baseline) and changes two things, each a single line:

- **exploring starts** for training: each episode starts in a random cell (``CliffWalkingExploringStarts-v0``),
  so episodes that begin near the goal teach the policy how to finish; evaluation starts at S as usual;
- an **entropy bonus** ``-beta * H(pi(.|s))`` in the loss, which keeps the softmax from collapsing onto one move
  before the goal has been found (the lecture returns to entropy regularisation with SAC).

    loss = -mean_t[ log pi(a_t|s_t) (G_t - V(s_t)) / std ] - beta * mean_t H(pi(.|s_t))
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
import torch

from lecturekit.algos.reinforce import Policy, collect_episodes, reinforce_loss, value_loss
from lecturekit.envs import make_vec
from lecturekit.monitor import History, Monitor
from lecturekit.nets import ActorCritic
from lecturekit.returns import bootstrapped_returns

TRAIN_ENV = "lecturekit/CliffWalkingExploringStarts-v0"
EVAL_ENV = "lecturekit/CliffWalkingOneHot-v0"


@dataclass
class CliffConfig:
    gamma: float = 0.99          # discount factor of the returns-to-go
    n_episodes: int = 16         # episodes per update, sampled in parallel
    lr: float = 1e-2             # Adam step size of the policy
    vf_lr: float = 1e-2          # Adam step size of the value baseline
    vf_iters: int = 5            # value-regression steps per update
    ent_coef: float = 0.05       # entropy bonus beta (0: plain REINFORCE with a value baseline)
    hidden: tuple = (32,)        # hidden layer sizes of the policy (and value) network
    exploring_starts: bool = True  # train from random cells (True) or always from S (False)

    def __post_init__(self):
        self.hidden = tuple(self.hidden)


def update(model: ActorCritic, opt, vf_opt, batch, cfg: CliffConfig) -> dict:
    """One policy step on REINFORCE's loss with a value baseline and the entropy bonus, then the value regression."""
    ret_np = bootstrapped_returns(batch.rewards, batch.ends, np.zeros(batch.rewards.shape[1]), cfg.gamma)
    m = torch.as_tensor(batch.valid)
    obs, act = torch.as_tensor(batch.obs)[m], torch.as_tensor(batch.actions)[m]
    ret = torch.as_tensor(ret_np, dtype=torch.float32)[m]
    with torch.no_grad():
        b = model.value(obs)
    scale = (ret - b).std() + 1e-8
    entropy = model.entropy(obs).mean()
    loss = reinforce_loss(model.log_prob(obs, act), ret / scale, b / scale) - cfg.ent_coef * entropy
    opt.zero_grad()
    loss.backward()
    opt.step()
    for _ in range(cfg.vf_iters):
        vl = value_loss(model.value(obs), ret)
        vf_opt.zero_grad()
        vl.backward()
        vf_opt.step()
    return {"loss": float(loss.detach()), "entropy": float(entropy.detach()), "value_loss": float(vl.detach()),
            "episode_return": float(batch.episode_returns().mean())}


def train(cfg: CliffConfig | None = None, *, steps: int, seed: int = 0, target: float | None = -17.0,
          eval_every: int | None = None, callback=None) -> History:
    """Train the softmax policy; evaluation is the greedy walk from S (one episode: the walk is deterministic)."""
    cfg = cfg or CliffConfig()
    torch.manual_seed(seed)
    envs = make_vec(TRAIN_ENV if cfg.exploring_starts else EVAL_ENV, cfg.n_episodes, seed)
    t_max = envs.spec.max_episode_steps
    model = ActorCritic(envs.single_observation_space, envs.single_action_space, cfg.hidden)
    policy = Policy(model, envs.single_action_space)
    opt = torch.optim.Adam(model.pi.parameters(), lr=cfg.lr)
    vf_opt = torch.optim.Adam(model.v.parameters(), lr=cfg.vf_lr)
    n, d = cfg.n_episodes, envs.single_observation_space.shape[0]
    bufs = {"obs": np.zeros((t_max, n, d), np.float32), "actions": np.zeros((t_max, n), np.int64),
            "rewards": np.zeros((t_max, n), np.float32), "valid": np.zeros((t_max, n), bool),
            "ends": np.zeros((t_max, n), bool)}
    mon = Monitor("reinforce-cliff", EVAL_ENV, seed, steps, target, eval_every, 1, callback, asdict(cfg))
    env_steps = 0
    try:
        while True:
            batch = collect_episodes(envs, policy, bufs, t_max)
            env_steps += batch.env_steps
            mon.log(env_steps, **update(model, opt, vf_opt, batch, cfg))
            if mon.should_stop(env_steps, policy.greedy):
                break
    finally:
        envs.close()
    return mon.finish(model)


def greedy_policy(history: History):
    """The trained network as a NumPy act_fn (arg-max move) for `lecturekit.envs.cliff.greedy_path`."""
    return Policy(history.model, gym.spaces.Discrete(4)).greedy
