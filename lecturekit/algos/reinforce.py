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

    hist = train("CartPole-v1", Config(baseline="mean"), steps=100_000, seed=0, target=475)
    hist.model                      # the trained ActorCritic; Policy(hist.model, action_space).greedy(obs) acts
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from lecturekit.algos import Algo
from lecturekit.envs import make_vec
from lecturekit.distributions import gaussian_entropy, gaussian_log_prob
from lecturekit.evaluation import History, Monitor, Run
from lecturekit.nets import ActorCritic, mlp
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
    normalize: bool = True         # divide G_t - b by its batch std (rescales the step, keeps its direction)
    hidden: tuple = (64, 64)       # hidden layer sizes of the policy (and value) MLP
    log_std_init: float = -0.5     # initial log std of the Gaussian policy (Box actions only, [-1, 1] units)
    min_log_std: float = -3.0      # the log std is kept >= this (stops the Gaussian collapsing)
    state_std: bool = False        # Box only: the network also outputs log sigma(s) (state-dependent std)
    ent_coef: float = 0.0          # weight of an entropy bonus: loss -= ent_coef * mean H(pi(.|s_t)) (0: plain)
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
    adv = ret.detach() if baseline is None else ret.detach() - torch.as_tensor(baseline).detach()
    return -(logp * adv).mean()


def value_loss(v: Tensor, ret: Tensor) -> Tensor:
    """Regression of the baseline on the returns: mean (V_w(s_t) - G_t)^2.  Shapes: v, ret (B,) -> scalar."""
    return (v - ret.detach()).pow(2).mean()


class StateStdActorCritic(ActorCritic):
    """ActorCritic whose Gaussian head outputs both the mean and the log std: pi(a|s) = N(mu(s), sigma(s)^2).

    The last layer has 2 * act_dim outputs (mean, log std); the log std starts at `log_std_init` everywhere and is
    clamped below at `min_log_std`.  Lecture: "Policy Parametrizations", the Gaussian policy with sigma_theta(s).
    """

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, hidden=(64, 64), log_std_init: float = 0.0,
                 min_log_std: float = -3.0):
        super().__init__(obs_space, act_space, hidden, log_std_init)
        if self.discrete:
            raise ValueError("a state-dependent std needs a Box action space")
        del self.log_std
        obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
        self.pi = mlp([obs_dim, *hidden, 2 * act_dim], out_gain=0.01)
        with torch.no_grad():
            self.pi[-1].bias[act_dim:] = log_std_init
        self.min_log_std = min_log_std

    def dist_params(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_std = self.pi(obs).chunk(2, dim=-1)
        return mu, log_std.clamp(min=self.min_log_std)

    def log_prob(self, obs: Tensor, act: Tensor) -> Tensor:
        return gaussian_log_prob(act, *self.dist_params(obs))

    def entropy(self, obs: Tensor) -> Tensor:
        return gaussian_entropy(self.dist_params(obs)[1])

    def act(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        mu, log_std = self.dist_params(obs)
        a = mu if deterministic else mu + torch.randn_like(mu) * log_std.exp()
        return a, gaussian_log_prob(a, mu, log_std), self.value(obs)


def make_model(obs_space: gym.Space, act_space: gym.Space, cfg: Config) -> ActorCritic:
    """The policy (and value) network that `cfg` asks for."""
    if cfg.state_std and not isinstance(act_space, gym.spaces.Discrete):
        return StateStdActorCritic(obs_space, act_space, cfg.hidden, cfg.log_std_init, cfg.min_log_std)
    return ActorCritic(obs_space, act_space, cfg.hidden, cfg.log_std_init)


class Policy:
    """Wraps an ActorCritic for sampling: numpy observations in, environment actions out.

    For a bounded Box, the network's Gaussian acts in [-1, 1] units u; the environment receives
    low + (u + 1) (high - low) / 2, clipped to the bounds (log-probs are those of the unclipped u).
    """

    def __init__(self, model: ActorCritic, act_space: gym.Space):
        self.model = model
        self.discrete = isinstance(act_space, gym.spaces.Discrete)
        self.scaled = not self.discrete and bool(np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high)))
        if not self.discrete:
            self.low, self.high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)

    def to_env(self, u: np.ndarray) -> np.ndarray:
        """Network action -> environment action."""
        if self.discrete:
            return u
        a = self.low + (u + 1.0) * 0.5 * (self.high - self.low) if self.scaled else u
        return np.clip(a, self.low, self.high)

    @torch.no_grad()
    def sample(self, obs: np.ndarray) -> np.ndarray:
        """Network actions sampled from pi(.|s) for a batch of observations (N, obs_dim)."""
        return self.model.act(torch.as_tensor(obs, dtype=torch.float32))[0].numpy()

    @torch.no_grad()
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic environment actions (arg max or Gaussian mean) for evaluation."""
        return self.to_env(self.model.act(torch.as_tensor(np.asarray(obs, dtype=np.float32)), deterministic=True)[0].numpy())


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
    scale = (ret - b).std() + 1e-8 if cfg.normalize and ret.numel() > 1 else 1.0
    logp = model.log_prob(obs, act)
    entropy = model.entropy(obs).mean()
    loss = reinforce_loss(logp, ret / scale, b / scale) - cfg.ent_coef * entropy
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


def train(env_id: str, cfg: Config | None = None, *, steps: int, seed: int = 0, target: float | None = None,
          eval_every: int | None = None, eval_episodes: int | None = None, callback=None) -> History:
    """Train REINFORCE on `env_id` for at most `steps` environment steps (or until the evaluation reaches `target`).

    The returned History's `model` is the trained ActorCritic (its value network is used only as the baseline).
    """
    cfg = cfg or Config()
    torch.manual_seed(seed)
    np.random.seed(seed)
    envs = make_vec(env_id, cfg.n_episodes, seed)
    t_max = envs.spec.max_episode_steps if envs.spec is not None and envs.spec.max_episode_steps else cfg.max_episode_steps
    model = make_model(envs.single_observation_space, envs.single_action_space, cfg)
    policy = Policy(model, envs.single_action_space)
    pi_params = list(model.pi.parameters()) + ([model.log_std] if hasattr(model, "log_std") else [])
    opt = torch.optim.Adam(pi_params, lr=cfg.lr)
    vf_opt = torch.optim.Adam(model.v.parameters(), lr=cfg.vf_lr) if cfg.baseline == "value" else None
    bufs = episode_buffers(envs, t_max)
    mon = Monitor("reinforce", env_id, Run(steps, seed, target, eval_every, eval_episodes or 20, callback), config=asdict(cfg))
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


ALGOS = [Algo(name="reinforce", train=train, config=Config, bench_env="CartPole-v1", bench_target=475.0,
              bench_steps=200_000, summary="REINFORCE: Monte Carlo policy gradient with a baseline option")]
