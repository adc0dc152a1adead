"""REINFORCE (vanilla policy gradient) with an optional baseline.  Lecture: "Vanilla policy gradient (REINFORCE)",
"Variance Reduction By Baseline", "Policy Parametrizations".

Each update samples N complete episodes in parallel (one per copy of a vectorized environment), computes the
returns-to-go G_t, subtracts a baseline b(s_t) and takes one gradient step on

    L(theta) = -mean_t [ log pi_theta(a_t|s_t) (G_t - b(s_t)) ]        (its gradient is minus the REINFORCE estimate)

Storage is (T, N, ...): T time steps (up to the longest episode of the batch) of N parallel episodes; `valid[t, i]`
is False once episode i has ended (those steps belong to no episode of the batch and are masked out).
Works for Discrete actions (softmax policy) and 1-D Box actions (Gaussian policy; log std state-independent, or
sigma(s) with `state_std=True`); for a Box with finite bounds the Gaussian lives in [-1, 1] units that are mapped
affinely onto [low, high].  An episode cut by a time limit counts as ended: REINFORCE uses Monte Carlo returns and
does not bootstrap.

Usage::

    hist = train("CartPole-v1", Config(baseline="mean"), Run(steps=100_000, seed=0, target=475))
    hist.model                      # the trained ActorCritic; Policy(hist.model, action_space).greedy(obs) acts

The seam (see `lecturekit.algos`): `train(..., collect=my_collect, update=my_update)` with
`collect(envs, policy, bufs, t_max) -> Batch` and `update(model, opt, vf_opt, batch, cfg) -> dict`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from lecturekit.algos import Algo
from lecturekit.distributions import gaussian_entropy
from lecturekit.envs import bounded_box, from_unit, make_vec
from lecturekit.evaluation import History, Monitor, Run, generators
from lecturekit.losses import normalize_advantages, policy_gradient_loss, value_loss
from lecturekit.nets import ActorCritic, greedy_act_fn, mlp
from lecturekit.returns import bootstrapped_returns

BASELINES = ("none", "mean", "value")


@dataclass
class Config:
    gamma: float = 0.99            # discount factor of the returns-to-go G_t
    n_episodes: int = 16           # complete episodes per update, sampled in parallel (N)
    lr: float = 1e-2               # Adam step size of the policy
    baseline: str = "value"        # b(s_t): 'none' (b = 0), 'mean' (batch mean of G_t) or 'value' (learned V_w(s_t))
    vf_lr: float = 1e-2            # Adam step size of the value network (baseline='value' only)
    vf_iters: int = 2              # value-regression steps per update (baseline='value' only)
    normalize_adv: bool = True     # divide G_t - b by its batch std (rescales the step, keeps its direction)
    hidden: tuple = (64, 64)       # hidden layer sizes of the policy (and value) MLP
    log_std_init: float = -0.5     # initial log std of the Gaussian policy (Box actions only, [-1, 1] units)
    min_log_std: float = -3.0      # the log std is kept >= this (stops the Gaussian collapsing)
    state_std: bool = False        # Box only: the network also outputs log sigma(s) (state-dependent std)
    entropy_coef: float = 0.0      # weight of an entropy bonus: loss -= entropy_coef * mean H(pi(.|s_t)) (0: plain)
    max_episode_steps: int = 1000  # cut episodes here when the environment has no time limit of its own

    def __post_init__(self):
        if self.baseline not in BASELINES:
            raise ValueError(f"Unknown baseline '{self.baseline}'. Available: {', '.join(BASELINES)}.")
        self.hidden = tuple(self.hidden)


def reinforce_loss(logp: Tensor, ret: Tensor, baseline: Tensor | float | None = None) -> Tensor:
    """L = -mean(log pi(a_t|s_t) (G_t - b_t));  grad L = -(REINFORCE policy-gradient estimate).

    Lecture: "REINFORCE Algorithm", step 3, with the baseline of "Variance Reduction By Baseline".
    Shapes: logp, ret, baseline: the same shape (or a scalar baseline).  G_t and b_t are constants: no gradient flows
    into them.  Returns a scalar.
    """
    adv = ret if baseline is None else ret - torch.as_tensor(baseline)
    return policy_gradient_loss(logp, adv)


class StateStdActorCritic(ActorCritic):
    """ActorCritic whose Gaussian head outputs both the mean and the log std: pi(a|s) = N(mu(s), sigma(s)^2).

    The last layer has 2 * act_dim outputs (mean, log std); the log std starts at `log_std_init` everywhere and is
    clamped below at `min_log_std`.  Lecture: "Policy Parametrizations", the Gaussian policy with sigma_theta(s).
    Sampling and log-probabilities are ActorCritic's, which read (mean, log std) from `dist_params`.
    """

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, hidden=(64, 64), log_std_init: float = 0.0,
                 min_log_std: float = -3.0, generator: torch.Generator | None = None):
        super().__init__(obs_space, act_space, hidden, log_std_init, generator)
        if self.discrete:
            raise ValueError("a state-dependent std needs a Box action space")
        del self.log_std
        obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
        self.pi = mlp([obs_dim, *hidden, 2 * act_dim], out_gain=0.01, generator=generator)
        with torch.no_grad():
            self.pi[-1].bias[act_dim:] = log_std_init
        self.min_log_std = min_log_std

    def dist_params(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_std = self.pi(obs).chunk(2, dim=-1)
        return mu, log_std.clamp(min=self.min_log_std)

    def entropy(self, obs: Tensor) -> Tensor:
        return gaussian_entropy(self.dist_params(obs)[1])


def make_model(obs_space: gym.Space, act_space: gym.Space, cfg: Config,
               generator: torch.Generator | None = None) -> ActorCritic:
    """The policy (and value) network that `cfg` asks for, initialised from `generator`."""
    if cfg.state_std and not isinstance(act_space, gym.spaces.Discrete):
        return StateStdActorCritic(obs_space, act_space, cfg.hidden, cfg.log_std_init, cfg.min_log_std, generator)
    return ActorCritic(obs_space, act_space, cfg.hidden, cfg.log_std_init, generator)


class Policy:
    """Wraps an ActorCritic for sampling: numpy observations in, environment actions out; samples from `generator`.

    For a bounded Box, the network's Gaussian acts in [-1, 1] units u; the environment receives
    low + (u + 1) (high - low) / 2, clipped to the bounds (`envs.from_unit`; log-probs are those of the unclipped u).
    """

    def __init__(self, model: ActorCritic, act_space: gym.Space, generator: torch.Generator | None = None):
        self.model, self.generator = model, generator
        self.greedy = greedy_act_fn(model, act_space)  # deterministic environment actions, for evaluation
        self.discrete = isinstance(act_space, gym.spaces.Discrete)
        self.scaled = bounded_box(act_space)
        if not self.discrete:
            self.low, self.high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)

    def to_env(self, u: np.ndarray) -> np.ndarray:
        """Network action -> environment action."""
        if self.discrete:
            return u
        return from_unit(u, self.low, self.high) if self.scaled else np.clip(u, self.low, self.high)

    @torch.no_grad()
    def sample(self, obs: np.ndarray) -> np.ndarray:
        """Network actions sampled from pi(.|s) for a batch of observations (N, obs_dim)."""
        return self.model.act(torch.as_tensor(obs, dtype=torch.float32), generator=self.generator)[0].numpy()


@dataclass
class Batch:
    """N complete episodes stored (T, N, ...); T = length of the longest one."""

    obs: np.ndarray        # (T, N, obs_dim) float32
    actions: np.ndarray    # (T, N) int64 or (T, N, act_dim) float32 (network units)
    rewards: np.ndarray    # (T, N) float32, zero on invalid steps
    valid: np.ndarray      # (T, N) bool: step t belongs to episode i
    ends: np.ndarray       # (T, N) bool: last step of episode i

    @property
    def env_steps(self) -> int:
        return int(self.valid.sum())

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode, (N,)."""
        return self.rewards.sum(0)


def episode_buffers(envs: gym.vector.VectorEnv, t_max: int) -> dict:
    """Preallocated (t_max, N, ...) arrays for `collect_episodes`, reused by every batch."""
    n, obs_dim = envs.num_envs, envs.single_observation_space.shape[0]
    discrete = isinstance(envs.single_action_space, gym.spaces.Discrete)
    act_shape, act_dtype = ((), np.int64) if discrete else (envs.single_action_space.shape, np.float32)
    return {"obs": np.zeros((t_max, n, obs_dim), np.float32), "actions": np.zeros((t_max, n, *act_shape), act_dtype),
            "rewards": np.zeros((t_max, n), np.float32), "valid": np.zeros((t_max, n), bool),
            "ends": np.zeros((t_max, n), bool)}


def collect_episodes(envs: gym.vector.VectorEnv, policy: Policy, bufs: dict, t_max: int) -> Batch:
    """Run the N copies of `envs` from a reset until each has finished one episode (or t_max steps).

    Sampling runs under no_grad into the preallocated arrays `bufs`; a copy that has finished keeps being stepped
    (the vector env steps all copies at once) but its later steps are marked invalid.
    """
    obs_b, act_b, rew_b, val_b, end_b = bufs["obs"], bufs["actions"], bufs["rewards"], bufs["valid"], bufs["ends"]
    n = obs_b.shape[1]
    obs, _ = envs.reset()
    alive = np.ones(n, dtype=bool)
    end_b[:] = False
    t = 0
    while t < t_max and alive.any():
        obs_b[t] = obs
        u = policy.sample(obs_b[t])
        act_b[t] = u
        obs, r, term, trunc, _ = envs.step(policy.to_env(u))
        val_b[t] = alive
        rew_b[t] = np.where(alive, r, 0.0)
        done = alive & (term | trunc | (t == t_max - 1))
        end_b[t] = done
        alive &= ~done
        t += 1
    return Batch(obs_b[:t], act_b[:t], rew_b[:t], val_b[:t], end_b[:t])


# --- update (the seam: `train(..., update=my_update)`) ---------------------------------------------------------------
def update(model: ActorCritic, opt: torch.optim.Optimizer, vf_opt: torch.optim.Optimizer | None, batch: Batch,
           cfg: Config) -> dict:
    """One REINFORCE step on a batch of complete episodes (and the value regression).  Returns diagnostics."""
    ret_np = bootstrapped_returns(batch.rewards, batch.ends, np.zeros(batch.rewards.shape[1]), cfg.gamma)
    m = torch.as_tensor(batch.valid)
    obs = torch.as_tensor(batch.obs)[m]
    act = torch.as_tensor(batch.actions)[m]
    ret = torch.as_tensor(ret_np, dtype=torch.float32)[m]
    if cfg.baseline == "value":
        with torch.no_grad():
            b = model.value(obs)
    elif cfg.baseline == "mean":
        b = ret.mean()
    else:
        b = torch.zeros(())
    adv = normalize_advantages(ret - b, center=False) if cfg.normalize_adv else ret - b
    logp, entropy = model.log_prob_and_entropy(obs, act)  # one forward pass of the actor
    entropy = entropy.mean()
    loss = policy_gradient_loss(logp, adv) - cfg.entropy_coef * entropy
    opt.zero_grad()
    loss.backward()
    opt.step()
    if not model.discrete and hasattr(model, "log_std"):
        with torch.no_grad():
            model.log_std.clamp_(min=cfg.min_log_std)
    stats = {"loss": float(loss.detach()), "entropy": float(entropy.detach()),
             "episode_return": float(batch.episode_returns().mean())}
    if vf_opt is not None:
        for _ in range(cfg.vf_iters):
            vl = value_loss(model.value(obs), ret)
            vf_opt.zero_grad()
            vl.backward()
            vf_opt.step()
        stats["value_loss"] = float(vl.detach())
    return stats


# --- training loop ------------------------------------------------------------------------------------------------
def train(env_id: str, cfg: Config | None = None, run: Run | None = None, *, collect=collect_episodes,
          update=update, evaluate: Callable | None = None) -> History:
    """Train REINFORCE on `env_id` as `run` says (steps, seed, target, evaluation): `collect(envs, policy, bufs,
    t_max)` samples each batch of episodes and `update(model, opt, vf_opt, batch, cfg)` takes each step (see
    `lecturekit.algos` for the protocol).  `evaluate(act_fn) -> (mean, std)` replaces the default evaluation
    (`run.eval_episodes` episodes of `env_id`), e.g. to train and evaluate on different start distributions.

    The returned History's `model` is the trained ActorCritic (its value network is used only as the baseline).
    """
    cfg, run = cfg or Config(), run or Run()
    gen, _ = generators(run.seed)
    envs = make_vec(env_id, cfg.n_episodes, run.seed)
    t_max = (envs.spec.max_episode_steps if envs.spec is not None and envs.spec.max_episode_steps
             else cfg.max_episode_steps)
    model = make_model(envs.single_observation_space, envs.single_action_space, cfg, gen)
    policy = Policy(model, envs.single_action_space, gen)
    pi_params = list(model.pi.parameters()) + ([model.log_std] if hasattr(model, "log_std") else [])
    opt = torch.optim.Adam(pi_params, lr=cfg.lr)
    vf_opt = torch.optim.Adam(model.v.parameters(), lr=cfg.vf_lr) if cfg.baseline == "value" else None
    bufs = episode_buffers(envs, t_max)
    mon = Monitor("reinforce", env_id, run, config=cfg, evaluate=evaluate)
    env_steps = 0
    try:
        while True:
            batch = collect(envs, policy, bufs, t_max)
            env_steps += batch.env_steps
            mon.log(env_steps, **update(model, opt, vf_opt, batch, cfg))
            if mon.should_stop(env_steps, policy.greedy):
                break
    finally:
        envs.close()
    return mon.finish(model)


ALGOS = [Algo(name="reinforce", train=train, config=Config, bench_env="CartPole-v1", bench_target=475.0,
              bench_steps=200_000, summary="REINFORCE: Monte Carlo policy gradient with a baseline option")]
