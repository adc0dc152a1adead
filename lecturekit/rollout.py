"""On-policy rollout storage (T, N, ...): what A2C, TRPO and PPO collect before each update.

Lecture: "Actor-Critic" (n-step bootstrapping) and "PPO" (GAE).

The vector environments autoreset on the NEXT step (see `lecturekit.envs.make_vec`): when copy i ends an episode
at step t, the observation stored at t + 1 is that episode's real final observation, and step t + 1 only resets
(its action is ignored, its reward is 0).  Such steps have `valid[t + 1] = False` and must be masked out of every
loss.  They are also what makes truncation easy: V(obs[t + 1]) is the value of the final observation, which a
truncated episode bootstraps from (a terminated one does not).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import Tensor

from lecturekit.envs import make_unit_vec
from lecturekit.evaluation import generators
from lecturekit.nets import ActorCritic, greedy_act_fn
from lecturekit.returns import bootstrapped_returns, gae

if TYPE_CHECKING:
    from lecturekit.evaluation import History, Monitor


@dataclass
class EnvState:
    """Where the N environments are between two rollouts."""

    obs: np.ndarray                  # (N, obs_dim) current observations
    prev_done: np.ndarray            # (N,) True if the previous step ended an episode (next step only resets)
    ep_return: np.ndarray            # (N,) undiscounted return of the running episodes
    finished: list = field(default_factory=list)  # returns of episodes finished since the last `pop_finished`

    def pop_finished(self) -> list:
        out, self.finished = self.finished, []
        return out


def start(envs, seed: int) -> EnvState:
    """Reset the vector env with seeds seed, seed + 1, ... and return the initial state."""
    obs, _ = envs.reset(seed=seed)
    envs.action_space.seed(seed)
    n = envs.num_envs
    return EnvState(np.asarray(obs, dtype=np.float32), np.zeros(n, dtype=bool), np.zeros(n))


@dataclass
class Rollout:
    """T steps of N environments.  Shapes: obs (T, N, obs_dim); actions (T, N) or (T, N, act_dim); logp, values
    (T, N) tensors; rewards (T, N) float64, terminated / truncated / valid (T, N) bool NumPy arrays; last_value (N,)
    = V(observation after the last step)."""

    obs: Tensor
    actions: Tensor
    logp: Tensor
    values: Tensor
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    last_value: np.ndarray

    def rewards_and_dones(self) -> tuple[np.ndarray, np.ndarray]:
        """(rewards, terminated), both (T, N) float64 / bool, ready for `returns.bootstrapped_returns` and `gae`.

        An autoreset step holds the final observation of the episode before it: it gets reward V(final obs) and
        counts as terminal, so its "return" is exactly V(final obs).  Then the step before it gets
        r + gamma * V(final obs) if it was truncated (the future is not zero), and r alone if it was terminated.
        """
        v = self.values.numpy().astype(np.float64)
        return np.where(self.valid, self.rewards, v), np.where(self.valid, self.terminated, True)

    def returns(self, gamma: float) -> Tensor:
        """n-step bootstrapped returns R_t (T, N) (see `returns.bootstrapped_returns`), truncation handled."""
        r, d = self.rewards_and_dones()
        return torch.as_tensor(bootstrapped_returns(r, d, self.last_value, gamma), dtype=torch.float32)

    def advantages(self, gamma: float, gae_lambda: float) -> tuple[Tensor, Tensor]:
        """(GAE advantages A_t, value targets A_t + V_t), both (T, N), truncation handled.  Zero on invalid steps.
        gae_lambda = 1 gives the n-step bootstrapped return minus V (A2C's advantage)."""
        r, d = self.rewards_and_dones()
        v = self.values.numpy().astype(np.float64)
        adv = gae(r, v, d, self.last_value, gamma, gae_lambda)
        return torch.as_tensor(adv, dtype=torch.float32), torch.as_tensor(adv + v, dtype=torch.float32)

    def steps(self, gamma: float, gae_lambda: float) -> "Steps":
        """The valid steps (autoreset steps left out) flattened to (B,) with their advantages and value targets."""
        adv, ret = self.advantages(gamma, gae_lambda)
        m = torch.as_tensor(self.valid)
        return Steps(self.obs[m], self.actions[m], self.logp[m], self.values[m], adv[m], ret[m])

    def scaled(self, reward_scale: float) -> "Rollout":
        """This rollout with its rewards multiplied by `reward_scale` (a copy; itself if the scale is 1)."""
        return self if reward_scale == 1.0 else dataclasses.replace(self, rewards=self.rewards * reward_scale)

    @property
    def mask(self) -> Tensor:
        """(T, N) float mask: 1 on steps that belong to an episode, 0 on autoreset steps."""
        return torch.as_tensor(self.valid, dtype=torch.float32)


@dataclass
class Steps:
    """The valid steps of a rollout as one flat batch of B steps: what an update computes its losses on."""

    obs: Tensor      # (B, obs_dim)
    actions: Tensor  # (B,) int64 (Discrete) or (B, act_dim) (Box, in the policy's [-1, 1] units)
    logp: Tensor     # (B,) log pi_k(a|s) of the policy that collected the rollout
    values: Tensor   # (B,) V(s) when collected
    adv: Tensor      # (B,) advantages A_t (GAE, or n-step return minus V when gae_lambda = 1)
    ret: Tensor      # (B,) value targets A_t + V(s_t)

    def __len__(self) -> int:
        return len(self.obs)

    def __getitem__(self, idx: Tensor) -> "Steps":
        """The minibatch of the steps at `idx` (an index tensor, e.g. a slice of a permutation)."""
        return Steps(self.obs[idx], self.actions[idx], self.logp[idx], self.values[idx], self.adv[idx], self.ret[idx])


def collect(envs, agent, state: EnvState, T: int, generator: torch.Generator | None = None) -> Rollout:
    """Run `agent.act` (see `nets.ActorCritic`) for T steps in the N environments, under no_grad, sampling the
    actions from `generator`.

    Box actions are clipped to the action bounds when sent to the environment; the unclipped sample is stored (its
    log-probability is the one the policy assigned).  `state` is advanced in place.
    """
    n = envs.num_envs
    obs_dim = state.obs.shape[1]
    space = envs.single_action_space
    discrete = not hasattr(space, "low")
    obs_buf = torch.zeros((T, n, obs_dim))
    act_buf = torch.zeros((T, n), dtype=torch.long) if discrete else torch.zeros((T, n, space.shape[0]))
    logp_buf, val_buf = torch.zeros((T, n)), torch.zeros((T, n))
    rew, term, trunc = np.zeros((T, n)), np.zeros((T, n), dtype=bool), np.zeros((T, n), dtype=bool)
    valid = np.zeros((T, n), dtype=bool)
    low, high = (None, None) if discrete else (space.low, space.high)
    with torch.no_grad():
        for t in range(T):
            obs_t = torch.as_tensor(state.obs)
            a, logp, v = agent.act(obs_t, generator=generator)
            obs_buf[t], act_buf[t], logp_buf[t], val_buf[t] = obs_t, a, logp, v
            a_env = a.numpy() if discrete else np.clip(a.numpy(), low, high)
            next_obs, r, te, tr, _ = envs.step(a_env)
            valid[t] = ~state.prev_done
            rew[t] = np.where(valid[t], r, 0.0)
            term[t], trunc[t] = te & valid[t], tr & valid[t]
            done = term[t] | trunc[t]
            state.ep_return += rew[t]
            state.finished.extend(state.ep_return[done].tolist())
            state.ep_return[done] = 0.0
            state.prev_done = done
            state.obs = np.asarray(next_obs, dtype=np.float32)
        last_value = agent.value(torch.as_tensor(state.obs)).numpy().astype(np.float64)
    return Rollout(obs_buf, act_buf, logp_buf, val_buf, rew, term, trunc, valid, last_value)


def actor_critic_setup(env_id: str, cfg, seed: int):
    """What A2C, TRPO and PPO start from: (envs, model, act_fn, gen).  `gen` is the run's torch generator
    (`evaluation.generators(seed)`, the only one the run draws from); envs: cfg.n_envs copies of `env_id` with a
    bounded Box rescaled to [-1, 1] (`envs.make_unit_vec`); model: an `ActorCritic` (cfg.hidden, cfg.log_std_init)
    initialised from `gen`; act_fn: its greedy actions in the environment's own units, for evaluation."""
    gen, _ = generators(seed)
    envs = make_unit_vec(env_id, cfg.n_envs)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space, cfg.hidden, cfg.log_std_init, gen)
    return envs, model, greedy_act_fn(model, envs.unwrapped.single_action_space), gen


def loop(envs, model, mon: "Monitor", n_steps: int, seed: int, generator: torch.Generator,
         update: Callable[[Rollout, int], dict], act_fn: Callable, reward_scale: float = 1.0) -> "History":
    """The loop every on-policy method of the course shares (A2C, TRPO, PPO): collect T = n_steps steps from the N
    environments (reset with seeds seed, seed + 1, ...; actions sampled from `generator`),
    `update(rollout, env_steps_before) -> diagnostics`, log them, evaluate, stop when the Monitor says so.
    Only `update` differs between the algorithms.  The update sees the rewards multiplied by `reward_scale` (the
    critic learns returns in those units); evaluations and episode returns are in the environment's own units.
    Closes `envs`; returns the Monitor's History."""
    state, env_steps = start(envs, seed), 0
    try:
        while True:
            ro = collect(envs, model, state, n_steps, generator)
            stats = update(ro.scaled(reward_scale), env_steps)
            env_steps += envs.num_envs * n_steps
            mon.log(env_steps, **stats)
            if mon.should_stop(env_steps, act_fn):
                break
    finally:
        envs.close()
    return mon.finish(model)
