"""Advantage actor-critic, synchronous (A2C).  Lecture: "Actor-Critic Architectures", "Advantage Actor-Critic (A2C)".

N copies of the environment run side by side (a Gymnasium vector env).  Every update:

1. collect T steps of all N copies with the current policy (`lecturekit.rollout.collect`, storage (T, N, ...));
2. compute n-step bootstrapped returns R_t = r_t + gamma (1 - terminated_t) R_{t+1}, R_T = V_w(s_T)
   (a truncated episode bootstraps from V_w of its real final observation; autoreset steps are masked out);
3. take one gradient step on  L = -mean(log pi_theta(a_t|s_t) A_t) + c_v mean((R_t - V_w(s_t))^2) - c_H mean(H_t),
   with the advantage A_t = R_t - V_w(s_t) held constant in the policy term.

`gae_lambda < 1` replaces the n-step advantage by GAE (lecture part 5); the default 1.0 is plain A2C.
Discrete actions use a softmax head; 1-D Box actions a Gaussian head acting in [-1, 1] units that a
`RescaleAction` wrapper maps onto the environment's bounds (so one set of defaults fits any bounded Box).
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from lecturekit import seed_everything
from lecturekit.algos import Algo
from lecturekit.envs import make_vec
from lecturekit.evaluation import History, Monitor, Run
from lecturekit.nets import ActorCritic
from lecturekit.rollout import Rollout, run


@dataclass
class A2CConfig:
    gamma: float = 0.99          # discount factor
    gae_lambda: float = 1.0      # 1.0: n-step returns minus V (A2C); < 1: GAE(lambda) advantages
    n_envs: int = 16             # parallel environments (N)
    n_steps: int = 16            # rollout length per update (T); n-step returns look at most T steps ahead
    lr: float = 2e-3             # Adam step size (actor and critic share one optimizer, one step per rollout)
    value_coef: float = 0.5      # c_v: weight of the critic's squared error in the loss
    entropy_coef: float = 0.0    # c_H: weight of the entropy bonus (0 = off)
    normalize_adv: bool = True   # standardise advantages within each batch (rescales the step, keeps its sign)
    max_grad_norm: float = 0.5   # clip the global gradient norm (0 = no clipping)
    hidden: tuple = (64, 64)     # hidden sizes of the actor and of the critic MLP
    log_std_init: float = -0.5   # initial log std of the Gaussian policy in [-1, 1] action units (Box only)

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if self.n_envs < 1 or self.n_steps < 1:
            raise ValueError(f"n_envs and n_steps must be >= 1, got {self.n_envs} and {self.n_steps}")


Config = A2CConfig


# --- losses -----------------------------------------------------------------------------------------------------
def policy_loss(logp: Tensor, adv: Tensor) -> Tensor:
    """Actor loss -mean(log pi_theta(a_t|s_t) A_t); its gradient is minus the actor-critic policy gradient.

    Lecture: "Actor-Critic Methods", policy update.  Shapes: logp, adv (B,).  adv is treated as a constant.
    """
    return -(logp * adv.detach()).mean()


def value_loss(values: Tensor, returns: Tensor) -> Tensor:
    """Critic loss L(w) = mean((V_w(s_t) - R_t)^2): regression on the bootstrapped returns (held constant).

    Lecture: "Advantage Actor-Critic (A2C)", critic update.  Shapes: values, returns (B,).
    """
    return (values - returns.detach()).pow(2).mean()


def a2c_loss(log_probs: Tensor, values: Tensor, returns: Tensor, entropy: Tensor, value_coef: float,
             entropy_coef: float) -> Tensor:
    """L = -mean(log pi(a_t|s_t) A_t) + value_coef mean((R_t - V(s_t))^2) - entropy_coef mean(H_t),
    with A_t = R_t - V(s_t) treated as a constant in the first term.  Lecture: "Advantage Actor-Critic (A2C)".

    Shapes: log_probs, values, returns, entropy (B,).  Returns a scalar.  (This is the loss of `update` with
    `normalize_adv=False`; with normalisation the advantages are standardised first.)
    """
    adv = (returns - values).detach()
    return policy_loss(log_probs, adv) + value_coef * value_loss(values, returns) - entropy_coef * entropy.mean()


# --- update -------------------------------------------------------------------------------------------------------
def targets(ro: Rollout, cfg: A2CConfig) -> tuple[Tensor, Tensor]:
    """(advantages, returns), both (T, N): n-step returns R_t and A_t = R_t - V(s_t), or GAE if gae_lambda < 1."""
    if cfg.gae_lambda == 1.0:
        ret = ro.returns(cfg.gamma)
        return ret - ro.values, ret
    return ro.advantages(cfg.gamma, cfg.gae_lambda)


def loss_and_stats(model: ActorCritic, ro: Rollout, cfg: A2CConfig) -> tuple[Tensor, dict]:
    """The A2C loss over the valid steps of a rollout (advantages standardised if cfg.normalize_adv), and
    diagnostics.  Shared by `update` and by the A3C workers."""
    adv, ret = targets(ro, cfg)
    m = torch.as_tensor(ro.valid)
    obs, act, adv, ret = ro.obs[m], ro.actions[m], adv[m], ret[m]
    logp, v, ent = model.log_prob(obs, act), model.value(obs), model.entropy(obs)
    if cfg.normalize_adv and len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pi_l, v_l = policy_loss(logp, adv), value_loss(v, ret)
    loss = pi_l + cfg.value_coef * v_l - cfg.entropy_coef * ent.mean()
    return loss, {"policy_loss": pi_l.item(), "value_loss": v_l.item(), "entropy": ent.mean().item(),
                  "explained_var": explained_variance(v.detach(), ret)}


def nstep_returns(rewards, values, terminated, last_value, gamma: float, n: int) -> np.ndarray:
    """n-step targets G_t^(n) = sum_{k<m} gamma^k r_{t+k} + gamma^m V_{t+m} with m = min(n, T - t), cut (no
    bootstrap) where an episode terminates.  Lecture: "Actor-Critic Learning", TD and n-step bootstrapping.

    n = 1 is the TD target r_t + gamma (1 - d_t) V_{t+1}; n >= T gives `returns.bootstrapped_returns` (the A2C
    target, which looks up to the end of the rollout).  Shapes: rewards, values, terminated (T, N);
    last_value (N,) = V after the last step.  Returns (T, N) float64.
    """
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(terminated, dtype=np.float64)
    v = np.vstack([np.asarray(values, dtype=np.float64), np.asarray(last_value, dtype=np.float64)[None]])
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    T = r.shape[0]
    out = np.empty_like(r)
    for t in range(T):
        g, disc, alive = np.zeros(r.shape[1]), 1.0, np.ones(r.shape[1])
        m = min(n, T - t)
        for k in range(m):
            g += alive * disc * r[t + k]
            disc *= gamma
            alive = alive * (1.0 - d[t + k])
        out[t] = g + alive * disc * v[t + m]
    return out


def update(model: ActorCritic, opt: torch.optim.Optimizer, ro: Rollout, cfg: A2CConfig) -> dict:
    """One gradient step on the A2C loss over the valid steps of a rollout.  Returns diagnostics."""
    loss, stats = loss_and_stats(model, ro, cfg)
    opt.zero_grad()
    loss.backward()
    stats["grad_norm"] = clip_grads(model, cfg.max_grad_norm)
    opt.step()
    return stats


def clip_grads(model: torch.nn.Module, max_norm: float) -> float:
    """Rescale the gradients so that their global norm is at most max_norm (0 = no clipping); returns the norm."""
    return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm or float("inf")).item()


def explained_variance(v: Tensor, ret: Tensor) -> float:
    """1 - Var(R - V) / Var(R): 1 for a perfect critic, 0 for a constant one, negative for a harmful one."""
    var = ret.var().item() if len(ret) > 1 else 0.0
    return 0.0 if var == 0.0 else 1.0 - (ret - v).var().item() / var


# --- environments and acting --------------------------------------------------------------------------------------
def make_envs(env_id: str, n: int) -> gym.vector.VectorEnv:
    """`make_vec(env_id, n)`; a bounded Box action space is rescaled to [-1, 1] so the Gaussian starts centred."""
    envs = make_vec(env_id, n)
    if bounded_box(envs.single_action_space):
        envs = gym.wrappers.vector.RescaleAction(envs, np.float32(-1.0), np.float32(1.0))
    return envs


def bounded_box(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and bool(np.all(np.isfinite(space.low)) & np.all(np.isfinite(space.high)))


def greedy_act_fn(model: ActorCritic, act_space: gym.Space):
    """NumPy act_fn for evaluation: arg max / Gaussian mean, mapped from [-1, 1] units to the environment's bounds."""
    rescale = bounded_box(act_space)
    if rescale:
        low, high = act_space.low, act_space.high

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():  # the actor alone: arg max of the logits, or the Gaussian mean
            out = model.pi(torch.as_tensor(obs, dtype=torch.float32))
            a = out.argmax(-1).numpy() if model.discrete else out.numpy()
        if rescale:
            a = np.clip(low + (a + 1.0) * 0.5 * (high - low), low, high)
        return a

    return act


# --- training loop ------------------------------------------------------------------------------------------------
def train(env_id: str, cfg: A2CConfig | None = None, *, steps: int = 200_000, seed: int = 0,
          target: float | None = None, eval_every: int | None = None, eval_episodes: int | None = None,
          callback=None) -> History:
    """Train A2C on `env_id` for up to `steps` environment steps (N x T per update); stop early at `target`."""
    cfg = cfg or A2CConfig()
    seed_everything(seed)
    envs = make_envs(env_id, cfg.n_envs)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space, cfg.hidden, cfg.log_std_init)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    act_fn = greedy_act_fn(model, envs.unwrapped.single_action_space)  # evaluation envs are not rescaled
    mon = Monitor("a2c", env_id, Run(steps, seed, target, eval_every, eval_episodes or 20, callback), config=cfg)
    return run(envs, model, mon, cfg.n_steps, seed, lambda ro, _: update(model, opt, ro, cfg), act_fn)


ALGOS = [Algo(name="a2c", train=train, config=A2CConfig, bench_env="CartPole-v1", bench_target=475.0,
              bench_steps=200_000, summary="advantage actor-critic (synchronous, n-step returns)",
              eval_every=2048)]
