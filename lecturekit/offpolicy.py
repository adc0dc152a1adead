"""The replay loop that the off-policy actor-critics (DDPG, TD3, SAC) share.  Lecture: "Deep Deterministic Policy
Gradient (DDPG)", "TD3", "SAC: Implementation Tricks and Stability Mechanisms".

Pieces every off-policy algorithm uses: `OffPolicyConfig` (the shared fields), `box_bounds`, the TD target
`td_target`, the critic regression `critic_loss`, `polyak_update` for target networks, and ONE training loop,
`train_off_policy`: reset once, warm up with uniformly random actions, act, store in the replay buffer, sample
minibatches, call the algorithm's `update`, log, evaluate, stop.  The networks are in `lecturekit.nets`; each
algorithm's losses, agent and update are in its own file (`algos/td3.py` for TD3 and DDPG, `algos/sac.py`).

How an algorithm plugs in (TD3, DDPG and SAC all do it this way; see `lecturekit.algos` for the seam)::

    agent = make_agent(obs_dim, act_dim, low, high, cfg, gen)   # actor, critics, targets, optimizers, cfg
    agent.explore(obs, eps) -> action     # behaviour policy; obs (N, obs_dim), eps standard normal (N, act_dim)
    agent.act(obs) -> action              # evaluation policy (deterministic); agent.model is what History keeps
    noise = draw_noise(batch_size, act_dim, gen)          # the standard normals one update needs
    logs = update(agent, batch, step, noise)              # one gradient update; dict of float diagnostics

Seeding: `train_off_policy` makes the run's torch generator (`evaluation.generators(run.seed)`) once; network
initialisation, warm-up actions, exploration noise, replay sampling and update noise are all drawn from it, in the
loop's fixed order, so the same seed gives the same History and no global generator is read.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from lecturekit.buffers import ReplayBuffer
from lecturekit.envs import make_vec
from lecturekit.evaluation import History, Monitor, Run, generators, torch_act_fn
from lecturekit.nets import space_dims


@dataclass
class OffPolicyConfig:
    """Fields every off-policy algorithm uses; algorithms subclass it and add their own."""

    gamma: float = 0.99          # discount factor
    tau: float = 0.02            # Polyak step: target <- tau * online + (1 - tau) * target (usual: 0.005)
    hidden: tuple = (64, 64)     # hidden layer sizes of actor and critics (small nets: updates are overhead-bound)
    actor_lr: float = 2e-3       # Adam step size of the actor (with tau 0.02: about half the updates of 1e-3, 0.005)
    critic_lr: float = 2e-3      # Adam step size of the critic(s)
    batch_size: int = 256        # transitions per minibatch
    buffer_size: int = 100_000   # replay capacity (transitions)
    warmup: int = 1000           # first env steps use uniformly random actions and do no updates
    updates_per_step: float = 1  # gradient updates per environment step (a fraction: one update every 1/x steps)
    n_envs: int = 1              # parallel environments
    log_every: int = 200         # env steps between logged training diagnostics


def box_bounds(act_space: gym.Space) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of a bounded 1-D Box action space, with a clear error otherwise."""
    if not isinstance(act_space, gym.spaces.Box) or len(act_space.shape) != 1:
        raise ValueError(f"off-policy actor-critics here need a 1-D Box action space, got {act_space}")
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise ValueError(f"the action box must be bounded, got low={act_space.low}, high={act_space.high}")
    return act_space.low.astype(np.float32), act_space.high.astype(np.float32)


# ------------------------------------------------------------------------------------------ targets and losses
def td_target(reward: Tensor, terminated: Tensor, next_value: Tensor, gamma: float) -> Tensor:
    """y = r + gamma * (1 - terminated) * next_value, with no gradient.  Lecture: DDPG, "Critic: minimize TD error".

    next_value is Q'(s', mu'(s')) for DDPG, min(Q1', Q2') for TD3, min(Q1', Q2') - alpha log pi(a'|s') for SAC.
    Truncated transitions have terminated = 0: they bootstrap from the real final observation s'.
    Shapes: all (B,) -> (B,).
    """
    return (reward + gamma * (1.0 - terminated) * next_value).detach()


def critic_loss(y: Tensor, *qs: Tensor) -> Tensor:
    """L(phi) = sum_i E[(Q_i(s, a) - y)^2]: every critic regresses on the same (gradient-free) target y.

    Shapes: y and each q: (B,).  Returns a scalar.
    """
    return sum((q - y).pow(2).mean() for q in qs)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- tau * source + (1 - tau) * target, parameter by parameter, in place.  Lecture: "Target networks:
    soft updates through Polyak averaging".  `source` is not changed; nothing is tracked by autograd.
    """
    for p_targ, p in zip(target.parameters(), source.parameters()):
        p_targ.lerp_(p, tau)  # p_targ + tau * (p - p_targ)


def frozen_copy(net: nn.Module) -> nn.Module:
    """A target network: a copy of `net` that autograd never updates (only `polyak_update` moves it)."""
    targ = copy.deepcopy(net)
    targ.requires_grad_(False)
    return targ


# ------------------------------------------------------------------------------------------------ the loop
Update = Callable[..., dict]  # update(agent, batch, step, noise) -> dict of float diagnostics


def train_off_policy(name: str, env_id: str, cfg: OffPolicyConfig, run: Run, make_agent: Callable,
                     update: Update, draw_noise: Callable[[int, int, torch.Generator], object]) -> History:
    """The off-policy loop: warm-up, act, store, sample, update, monitor.  Returns the run's `History`.

    With NEXT_STEP autoreset, the step after an episode ends only resets that environment: that "transition"
    (final obs -> first obs of the next episode) is not stored.  A truncated step is stored with terminated = 0 and
    its real final observation, so its target still bootstraps.
    """
    gen, _ = generators(run.seed)
    envs = make_vec(env_id, cfg.n_envs)
    obs_dim, act_dim, _ = space_dims(envs.single_observation_space, envs.single_action_space)
    low, high = (torch.as_tensor(b) for b in box_bounds(envs.single_action_space))
    agent = make_agent(obs_dim, act_dim, low, high, cfg, gen)
    buf = ReplayBuffer(obs_dim, act_dim, cfg.buffer_size)
    mon = Monitor(name, env_id, run, config=cfg)
    act_fn = torch_act_fn(agent.act)
    obs = np.asarray(envs.reset(seed=run.seed)[0], dtype=np.float32)
    valid = np.ones(cfg.n_envs, dtype=bool)  # False for an env whose next step is an autoreset
    env_steps, n_updates, next_log, logs = 0, 0, cfg.log_every, {}
    owed = 0.0  # updates due but not yet made (updates_per_step may be a fraction: 0.5 is one update every 2 steps)
    try:
        while True:
            if env_steps < cfg.warmup:
                action = low + (high - low) * torch.rand(cfg.n_envs, act_dim, generator=gen)
            else:
                with torch.no_grad():
                    action = agent.explore(torch.as_tensor(obs), torch.randn(cfg.n_envs, act_dim, generator=gen))
            action = action.numpy()
            next_obs, reward, term, trunc, _ = envs.step(action)
            next_obs = np.asarray(next_obs, dtype=np.float32)
            if valid.all():
                buf.add(obs, action, reward, next_obs, term, trunc)
            else:  # the reset-only steps are no transitions
                buf.add(obs[valid], action[valid], reward[valid], next_obs[valid], term[valid], trunc[valid])
            valid = ~(term | trunc)
            obs = next_obs
            env_steps += cfg.n_envs
            if env_steps >= cfg.warmup and len(buf) >= cfg.batch_size:
                owed += cfg.updates_per_step * cfg.n_envs
                while owed >= 1:
                    batch = buf.sample(cfg.batch_size, gen)
                    logs |= update(agent, batch, n_updates, draw_noise(cfg.batch_size, act_dim, gen))
                    n_updates += 1
                    owed -= 1
            if env_steps >= next_log and logs:
                next_log = env_steps - env_steps % cfg.log_every + cfg.log_every
                mon.log(env_steps, **logs)
            if mon.should_stop(env_steps, act_fn):
                break
    finally:
        envs.close()
    return mon.finish(agent.model)
