"""What the off-policy actor-critics (DDPG, TD3, SAC) share.  Lecture: "Deep Deterministic Policy Gradient (DDPG)",
"TD3", "SAC: Implementation Tricks and Stability Mechanisms".

Pieces:
- networks: `DeterministicActor` mu_theta(s) (tanh-squashed into the action box), `QCritic` Q_phi(s, a), `TwinQ`
  (two independent critics, for clipped double Q-learning), all built on `nets.mlp`;
- targets and losses: `td_target` y = r + gamma (1 - terminated) * next_value, `clipped_double_q_target`
  (next_value = min(Q1', Q2')), `critic_loss` (squared error of one or more critics against y), `dpg_actor_loss`
  = -Q(s, mu(s)) (the chain-rule actor gradient); `polyak_update` for target networks;
- DDPG and TD3 only: `DeterministicConfig` (adds the exploration noise) and `DeterministicAgent` (actor, critic,
  targets, optimizers, `act`/`explore` with `gaussian_explore`); each algorithm adds its `update`;
- ONE training loop, `train_off_policy`: warm-up with uniformly random actions, act, store in the replay buffer,
  sample minibatches, call the algorithm's update, log (every `log_every` env steps), evaluate, stop; an optional
  `probe(agent, env_steps)` runs after each evaluation (notebook 12 measures the critic's bias with `critic_bias`).

How an algorithm plugs in (DDPG, TD3 and SAC all do it this way)::

    @dataclass
    class MyConfig(OffPolicyConfig):        # shared fields (gamma, tau, lr, batch size, warm-up, ...) + your own
        my_knob: float = 0.1                 # comment per field

    class MyAgent:                           # anything with these four members:
        model: nn.Module                     #   what History.model keeps (e.g. an nn.ModuleDict of actor and critics)
        def explore(self, obs): ...          #   (N, obs_dim) float32 array -> (N, act_dim) array: behaviour actions
        def act(self, obs): ...              #   (N, obs_dim) float32 array -> (N, act_dim) array: evaluation actions
        def update(self, batch, step): ...   #   one gradient update on a replay `Batch`; `step` counts updates from 0;
                                             #   returns a dict of scalar diagnostics (floats or 0-d tensors)

    def train(env_id, cfg=None, *, steps, seed=0, target=None, eval_every=None, eval_episodes=None, callback=None):
        return train_off_policy("myalgo", env_id, cfg or MyConfig(), MyAgent, steps=steps, seed=seed, target=target,
                                eval_every=eval_every, eval_episodes=eval_episodes, callback=callback)

`MyAgent(obs_space, act_space, cfg, seed)` is constructed by the loop after all generators are seeded.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

import lecturekit
from lecturekit.buffers import Batch, ReplayBuffer
from lecturekit.envs import make_vec
from lecturekit.evaluation import History, Monitor, Run
from lecturekit.nets import mlp, space_dims


@dataclass
class OffPolicyConfig:
    """Fields every off-policy algorithm uses; algorithms subclass it and add their own."""

    gamma: float = 0.99          # discount factor
    tau: float = 0.005           # Polyak step: target <- tau * online + (1 - tau) * target
    hidden: tuple = (64, 64)     # hidden layer sizes of actor and critics (small nets: updates are overhead-bound)
    actor_lr: float = 1e-3       # Adam step size of the actor
    critic_lr: float = 1e-3      # Adam step size of the critic(s)
    batch_size: int = 256        # transitions per minibatch
    buffer_size: int = 100_000   # replay capacity (transitions)
    warmup: int = 1000           # first env steps use uniformly random actions and do no updates
    updates_per_step: int = 1    # gradient updates per environment step
    n_envs: int = 1              # parallel environments
    log_every: int = 200         # env steps between logged training diagnostics


@dataclass
class DeterministicConfig(OffPolicyConfig):
    """Shared by DDPG and TD3 (deterministic actor, exploration by added noise)."""

    expl_noise: float = 0.1      # std of the Gaussian exploration noise, in units of the action half-range


# ----------------------------------------------------------------------------------------------------- networks
class DeterministicActor(nn.Module):
    """mu_theta(s) = center + half_range * tanh(net(s)): a deterministic action inside the box [low, high].

    Shapes: obs (..., obs_dim) -> action (..., act_dim).
    """

    def __init__(self, obs_dim: int, act_dim: int, low, high, hidden=(64, 64)):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim], activation=nn.ReLU)
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def forward(self, obs: Tensor) -> Tensor:
        return self.center + self.half_range * torch.tanh(self.net(obs))


class QCritic(nn.Module):
    """Q_phi(s, a): an MLP on the concatenation [s, a].  Shapes: obs (..., obs_dim), act (..., act_dim) -> (...)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(64, 64)):
        super().__init__()
        self.net = mlp([obs_dim + act_dim, *hidden, 1], activation=nn.ReLU)

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


class TwinQ(nn.Module):
    """Two independently initialised critics Q_phi1, Q_phi2 (clipped double Q-learning).

    forward(obs, act) -> (q1, q2), each of shape (...); `q1` alone is what the deterministic actor climbs.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden=(64, 64)):
        super().__init__()
        self.q1 = QCritic(obs_dim, act_dim, hidden)
        self.q2 = QCritic(obs_dim, act_dim, hidden)

    def forward(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        return self.q1(obs, act), self.q2(obs, act)


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


def clipped_double_q_target(reward: Tensor, terminated: Tensor, next_q1: Tensor, next_q2: Tensor,
                            gamma: float) -> Tensor:
    """y = r + gamma * (1 - terminated) * min(Q1'(s', a'), Q2'(s', a')), no gradient.  Lecture: TD3, "Clipped
    Double Q-learning".  Shapes: all (B,) -> (B,).  (The course exercise `td3_target` has this signature.)
    """
    return td_target(reward, terminated, torch.minimum(next_q1, next_q2), gamma)


def critic_loss(y: Tensor, *qs: Tensor) -> Tensor:
    """L(phi) = sum_i E[(Q_i(s, a) - y)^2]: every critic regresses on the same (gradient-free) target y.

    Shapes: y and each q: (B,).  Returns a scalar.
    """
    return sum((q - y).pow(2).mean() for q in qs)


def dpg_actor_loss(q: Callable[[Tensor, Tensor], Tensor], actor: nn.Module, obs: Tensor) -> Tensor:
    """L(theta) = -E_s[Q(s, mu_theta(s))].  Its gradient is the deterministic policy gradient
    -E_s[grad_a Q(s, a)|_{a = mu(s)} grad_theta mu_theta(s)] (the chain rule).  Lecture: DDPG, "Actor".

    Shapes: obs (B, obs_dim); q(obs, act) -> (B,).  Returns a scalar.
    """
    return -q(obs, actor(obs)).mean()


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- tau * source + (1 - tau) * target, parameter by parameter, in place.  Lecture: "Target networks:
    soft updates through Polyak averaging".  `source` is not changed; nothing is tracked by autograd.
    """
    for p_targ, p in zip(target.parameters(), source.parameters()):
        p_targ.lerp_(p, tau)  # p_targ + tau * (p - p_targ)


def gaussian_explore(action: np.ndarray, std: float, low: np.ndarray, high: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Behaviour action mu(s) + N(0, (std * half_range)^2), clipped to the box.  Shapes: (N, act_dim)."""
    noise = rng.normal(0.0, 1.0, size=action.shape) * std * (high - low) / 2
    return np.clip(action + noise, low, high).astype(np.float32)


class DeterministicAgent:
    """What DDPG and TD3 share: actor mu_theta and critic(s), their target copies, two Adam optimizers, and the
    behaviour / evaluation policies.  Subclasses add `update(batch, step)`; `critic` is a `QCritic` or a `TwinQ`.
    """

    def __init__(self, obs_space, act_space, cfg, seed: int, critic: nn.Module):
        self.cfg = cfg
        self.low, self.high = box_bounds(act_space)
        self.actor = DeterministicActor(obs_space.shape[0], act_space.shape[0], self.low, self.high, cfg.hidden)
        self.critic = critic
        self.actor_targ, self.critic_targ = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        for p in [*self.actor_targ.parameters(), *self.critic_targ.parameters()]:
            p.requires_grad_(False)
        self.actor_params = list(self.actor.parameters())
        # fused Adam: one kernel for all parameters (about 15 % faster per update at this size on CPU)
        self.actor_opt = torch.optim.Adam(self.actor_params, lr=cfg.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, fused=True)
        self.model = nn.ModuleDict({"actor": self.actor, "critic": self.critic})
        self.rng = np.random.default_rng(seed + 1)  # exploration noise

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Evaluation policy: mu(s).  (N, obs_dim) -> (N, act_dim)."""
        with torch.no_grad():
            return self.actor(torch.as_tensor(obs)).numpy()

    def explore(self, obs: np.ndarray) -> np.ndarray:
        """Behaviour policy: mu(s) + Gaussian noise of std `cfg.expl_noise` half-ranges, clipped to the box."""
        return gaussian_explore(self.act(obs), self.cfg.expl_noise, self.low, self.high, self.rng)

    def critic_step(self, loss: Tensor) -> None:
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()

    def actor_step(self, loss: Tensor) -> None:
        self.actor_opt.zero_grad()
        loss.backward(inputs=self.actor_params)  # the critic's weights get no gradient from the actor loss
        self.actor_opt.step()

    def update_targets(self) -> None:
        polyak_update(self.actor_targ, self.actor, self.cfg.tau)
        polyak_update(self.critic_targ, self.critic, self.cfg.tau)


def critic_bias(actor: nn.Module, q: Callable[[Tensor, Tensor], Tensor], env_id: str, episodes: int, seed: int,
                gamma: float, horizon: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The critic's estimate Q(s0, mu(s0)) and the discounted return the deterministic policy really collects from
    s0 (Monte Carlo, `horizon` steps: gamma**horizon is negligible), for `episodes` start states reset(seed + i).

    Returns (q_estimates, mc_returns), both of shape (episodes,); their difference is the critic's bias.
    """
    envs = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="sync", max_episode_steps=horizon)
    obs, _ = envs.reset(seed=seed)
    obs = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    with torch.no_grad():
        q0 = q(obs, actor(obs)).numpy().astype(np.float64)
        ret, disc = np.zeros(episodes), 1.0
        running = np.ones(episodes, dtype=bool)
        while running.any():
            obs, r, term, trunc, _ = envs.step(actor(obs).numpy())
            obs = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            ret += np.where(running, disc * r, 0.0)
            disc *= gamma
            running &= ~(np.asarray(term) | np.asarray(trunc))
    envs.close()
    return q0, ret


# ------------------------------------------------------------------------------------------------ the loop
DEFAULT_EVAL_EVERY = 500  # env steps between evaluations when the caller does not say (Pendulum: 200-step episodes)

class OffPolicyAgent(Protocol):
    model: nn.Module

    def explore(self, obs: np.ndarray) -> np.ndarray: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...

    def update(self, batch: Batch, step: int) -> dict: ...


def train_off_policy(algo: str, env_id: str, cfg: OffPolicyConfig,
                     make_agent: Callable[[gym.Space, gym.Space, OffPolicyConfig, int], OffPolicyAgent], *,
                     steps: int, seed: int = 0, target: float | None = None, eval_every: int | None = None,
                     eval_episodes: int | None = None, callback=None,
                     probe: Callable[[OffPolicyAgent, int], None] | None = None) -> History:
    """The off-policy loop: warm-up, act, store, sample, update, monitor.  Returns the run's `History`.

    `probe(agent, env_steps)`, if given, is called after every evaluation (e.g. to measure the critic's bias).

    With NEXT_STEP autoreset, the step after an episode ends only resets that environment: that "transition"
    (final obs -> first obs of the next episode) is not stored.  A truncated step is stored with terminated = 0 and
    its real final observation, so its target still bootstraps.
    """
    lecturekit.seed_everything(seed)
    eval_every = eval_every or DEFAULT_EVAL_EVERY
    envs = make_vec(env_id, cfg.n_envs, seed)
    obs_dim, act_dim, _ = space_dims(envs.single_observation_space, envs.single_action_space)
    low, high = box_bounds(envs.single_action_space)
    agent = make_agent(envs.single_observation_space, envs.single_action_space, cfg, seed)
    buf = ReplayBuffer(obs_dim, act_dim, cfg.buffer_size, seed=seed)
    rng = np.random.default_rng(seed)
    mon = Monitor(algo, env_id, Run(steps, seed, target, eval_every, eval_episodes or 20, callback), config=cfg)
    obs, _ = envs.reset(seed=seed)
    obs = np.asarray(obs, dtype=np.float32)
    valid = np.ones(cfg.n_envs, dtype=bool)  # False for an env whose next step is an autoreset
    env_steps, n_updates, next_log, logs = 0, 0, cfg.log_every, {}
    while True:
        if env_steps < cfg.warmup:
            action = rng.uniform(low, high, size=(cfg.n_envs, act_dim)).astype(np.float32)
        else:
            action = agent.explore(obs)
        next_obs, reward, term, trunc, _ = envs.step(action)
        next_obs = np.asarray(next_obs, dtype=np.float32)
        if valid.all():
            buf.add(obs, action, reward, next_obs, term, trunc)
        else:
            buf.add(obs[valid], action[valid], reward[valid], next_obs[valid], term[valid], trunc[valid])
        valid = ~(np.asarray(term) | np.asarray(trunc))
        obs = next_obs
        env_steps += cfg.n_envs
        if env_steps >= cfg.warmup and len(buf) >= cfg.batch_size:
            for _ in range(cfg.updates_per_step * cfg.n_envs):
                logs = agent.update(buf.sample(cfg.batch_size), n_updates)
                n_updates += 1
        if env_steps >= next_log and logs:
            next_log += cfg.log_every
            mon.log(env_steps, **{k: float(v) for k, v in logs.items()})
        n_evals = len(mon.history.evals)
        stop = mon.should_stop(env_steps, agent.act)
        if probe is not None and len(mon.history.evals) > n_evals:
            probe(agent, env_steps)
        if stop:
            break
    envs.close()
    return mon.finish(agent.model)
