"""Advantage actor-critic, synchronous (A2C).  Lecture: "Actor-Critic Architectures", "Advantage Actor-Critic (A2C)".

N copies of the environment run side by side (a Gymnasium vector env).  Every update:

1. collect T steps of all N copies with the current policy (`lecturekit.rollout.collect`, storage (T, N, ...));
2. compute n-step bootstrapped returns R_t = r_t + gamma (1 - terminated_t) R_{t+1}, R_T = V_w(s_T)
   (a truncated episode bootstraps from V_w of its real final observation; autoreset steps are masked out);
3. take one gradient step on  L = -mean(log pi_theta(a_t|s_t) A_t) + c_v mean((R_t - V_w(s_t))^2) - c_H mean(H_t),
   with the advantage A_t = R_t - V_w(s_t) held constant in the policy term.

`gae_lambda < 1` replaces the n-step advantage by GAE (lecture part 5); the default 1.0 is plain A2C.
Discrete actions use a softmax head; 1-D Box actions a Gaussian head acting in [-1, 1] units that a
`RescaleAction` wrapper maps onto the environment's bounds (so one set of defaults fits any bounded Box:
`envs.make_unit_vec`).  The losses, advantage normalisation and gradient clipping come from `lecturekit.losses`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lecturekit.algos import Algo
from lecturekit.evaluation import History, Monitor, Run
from lecturekit.losses import actor_critic_loss, clip_grads, policy_gradient_loss, value_loss
from lecturekit.nets import ActorCritic
from lecturekit.rollout import Rollout, actor_critic_setup, loop


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
    reward_scale: float = 1.0    # the training loop multiplies rewards by it before each update
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
def a2c_loss(log_probs: Tensor, values: Tensor, returns: Tensor, entropy: Tensor, value_coef: float,
             entropy_coef: float) -> Tensor:
    """L = -mean(log pi(a_t|s_t) A_t) + value_coef mean((R_t - V(s_t))^2) - entropy_coef mean(H_t),
    with A_t = R_t - V(s_t) treated as a constant in the first term.  Lecture: "Advantage Actor-Critic (A2C)".

    Shapes: log_probs, values, returns, entropy (B,).  Returns a scalar.  (This is the loss of `update` with
    `normalize_adv=False`; with normalisation the advantages are standardised first: `losses.actor_critic_loss`.)
    """
    adv = (returns - values).detach()
    return (policy_gradient_loss(log_probs, adv) + value_coef * value_loss(values, returns)
            - entropy_coef * entropy.mean())


# --- update (the seam: `train(..., update=my_update)`) ---------------------------------------------------------------
def update(model: ActorCritic, opt: torch.optim.Optimizer, ro: Rollout, cfg: A2CConfig) -> dict:
    """One gradient step on the A2C loss over the valid steps of a rollout (T, N).  Returns diagnostics."""
    loss, stats = actor_critic_loss(model, ro.steps(cfg.gamma, cfg.gae_lambda), cfg)
    opt.zero_grad()
    loss.backward()
    stats["grad_norm"] = clip_grads(model.parameters(), cfg.max_grad_norm)
    opt.step()
    return stats


# --- training loop ------------------------------------------------------------------------------------------------
def train(env_id: str, cfg: A2CConfig | None = None, run: Run | None = None, *, update=update) -> History:
    """Train A2C on `env_id` as `run` says (steps, seed, target, evaluation); `update(model, opt, ro, cfg)` takes
    each gradient step (see `lecturekit.algos` for the protocol).  History.model is the ActorCritic."""
    cfg, run = cfg or A2CConfig(), run or Run()
    envs, model, act_fn, gen = actor_critic_setup(env_id, cfg, run.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)  # fused: one kernel for all parameters
    mon = Monitor("a2c", env_id, run, config=cfg)
    return loop(envs, model, mon, cfg.n_steps, run.seed, gen, lambda ro, _: update(model, opt, ro, cfg), act_fn,
                cfg.reward_scale)


ALGOS = [Algo(name="a2c", train=train, config=A2CConfig, bench_env="CartPole-v1", bench_target=475.0,
              bench_steps=200_000, summary="advantage actor-critic (synchronous, n-step returns)",
              eval_every=2048)]
