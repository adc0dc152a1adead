"""PPO: proximal policy optimisation with the clipped surrogate.  Lecture: "Proximal Policy Optimization (PPO)",
"Clipped Surrogate Objective", "Why the min operator in PPO?", "PPO Clipping Per Case", "Stable Advantage
Estimation for PPO (GAE)", "Mini-batching and Optimization in PPO".

Every update:

1. collect T steps of N environments with the current policy pi_k (`lecturekit.rollout.collect`, (T, N, ...));
2. GAE advantages A_t and value targets A_t + V(s_t) (`Rollout.advantages`: truncation and autoreset handled);
3. `epochs` passes over the valid steps, each split into `minibatches` shuffled minibatches; on each one Adam step on

       L = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)) + c_v L_V - c_H mean(H),   r = pi_theta(a|s) / pi_k(a|s).

The ratio r is what lets PPO reuse one batch for several gradient steps: it re-weights data of pi_k for the policy
being optimised (importance sampling, as in TRPO); the clip + min takes away the reward for pushing r past
1 +- eps, which keeps pi_theta close to pi_k with first-order steps only.

Discrete actions use a softmax head; bounded Box actions a Gaussian head in [-1, 1] units (the same environment
helpers as A2C and TRPO: `rollout.actor_critic_setup`).  `clip_eps=inf` removes the clipping (the plain
importance-sampled surrogate), which the notebook uses as an ablation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lecturekit.algos import Algo
from lecturekit.evaluation import History, Monitor, Run
from lecturekit.losses import clip_grads, explained_variance, normalize_advantages, value_loss
from lecturekit.nets import ActorCritic
from lecturekit.rollout import Rollout, Steps, actor_critic_setup, loop


# The defaults solve CartPole-v1 and keep it solved (seeds 0-9, 20 greedy episodes >= 475 at the first hit and at the
# 3 evaluations after it; median 10,240 steps) with 20 Adam steps per batch of 1,024: 5 epochs x 4 minibatches, and
# no gradient-norm clipping.  With the clipping at 0.5 the same held only with 8 epochs (bench/profile/onpolicy.md).
@dataclass
class Config:
    gamma: float = 0.999         # discount factor (CartPole: a long horizon teaches the cart to stay centred)
    gae_lambda: float = 0.95     # GAE lambda: 0 = one-step TD advantage, 1 = Monte Carlo return minus V
    n_envs: int = 16             # parallel environments (N)
    n_steps: int = 64            # rollout length per update (T); a batch holds N * T steps
    epochs: int = 5              # passes over each batch (K)
    minibatches: int = 4         # minibatches per pass (minibatch size = N * T / minibatches)
    lr: float = 5e-3             # Adam step size (actor and critic share one optimizer)
    anneal_lr: bool = False      # decay the step size linearly to 0 over the step budget
    clip_eps: float = 0.2        # epsilon of clip(r, 1 - eps, 1 + eps); inf = no clipping
    clip_vloss: bool = False     # also clip the value update to +-clip_eps around the old values (CleanRL option)
    value_coef: float = 0.5      # c_v: weight of the critic's squared error
    entropy_coef: float = 0.0    # c_H: weight of the entropy bonus
    normalize_adv: bool = True   # standardise the advantages of each minibatch
    max_grad_norm: float = 0.0   # clip the global gradient norm (0 = no clipping: CartPole needs none, notebook 11)
    target_kl: float = 0.0       # stop the epochs of an update early once approx KL exceeds it (0 = never)
    reward_scale: float = 0.1    # the training loop multiplies rewards by it before each update (keeps V small)
    hidden: tuple = (64, 64)     # hidden sizes of the actor and of the critic MLP
    log_std_init: float = -0.5   # initial log std of the Gaussian policy in [-1, 1] action units (Box only)

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        if self.n_envs < 1 or self.n_steps < 1 or self.epochs < 1 or self.minibatches < 1:
            raise ValueError("n_envs, n_steps, epochs and minibatches must all be >= 1")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if not self.clip_eps > 0:
            raise ValueError(f"clip_eps must be > 0 (inf disables clipping), got {self.clip_eps}")


# Pendulum-v1 (continuous torque, 200-step episodes, reward -16..0): the CartPole defaults do not learn there
# (notebook 11).  This preset reaches a mean eval return of -300 in 16k-25k steps (5 of 5 seeds).  Its essential
# change is many small Adam steps per batch (10 epochs x 32 minibatches of 64): with 4 x 4 it fails, while putting
# any other single field back to the CartPole defaults of the time (gamma 0.99, no reward scaling, lr 5e-3, T = 64,
# log std -0.5) still learns (2 of 2 seeds each, within 50k steps; notebook 11 has the table).  It was measured with
# the gradient norm clipped at 0.5 (the CartPole default of the time), and keeps that.
PENDULUM = Config(gamma=0.9, gae_lambda=0.95, n_envs=8, n_steps=256, epochs=10, minibatches=32, lr=1e-3,
                  reward_scale=0.1, log_std_init=0.0, max_grad_norm=0.5)
PRESETS = {"cartpole": Config(), "pendulum": PENDULUM}


# --- losses -----------------------------------------------------------------------------------------------------
def ppo_clip_loss(logp: Tensor, logp_old: Tensor, adv: Tensor, clip_eps: float) -> Tensor:
    """L^CLIP = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)),  r = exp(logp - logp_old).
    Lecture: "Clipped Surrogate Objective".

    Shapes: logp, logp_old, adv (B,) -> scalar.  logp_old and adv are constants (no gradient flows into them).
    """
    ratio = torch.exp(logp - logp_old.detach())
    adv = adv.detach()
    return -torch.min(ratio * adv, torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv).mean()


def clipped_value_loss(v: Tensor, v_old: Tensor, ret: Tensor, clip_eps: float | None = None) -> Tensor:
    """L_V = mean((V(s) - R)^2) (`losses.value_loss`); with clip_eps,
    mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)) (the value clipping of PPO implementations;
    not in the lecture).  Shapes: v, v_old, ret (B,) -> scalar."""
    if clip_eps is None or math.isinf(clip_eps):
        return value_loss(v, ret)
    v_clip = v_old.detach() + torch.clamp(v - v_old.detach(), -clip_eps, clip_eps)
    return torch.max((v - ret.detach()).pow(2), (v_clip - ret.detach()).pow(2)).mean()


def clipping_case(ratio: float, adv: float, clip_eps: float) -> dict:
    """One row of the lecture's table "PPO Clipping Per Case", computed (not looked up).

    value    = min(r A, clip(r, 1 - eps, 1 + eps) A)
    clipped  = the clipped term is the one the min picks and it differs from r A
    gradient = d value / d r by autograd (0 where the min picked the constant clipped term)
    """
    r = torch.tensor(float(ratio), dtype=torch.float64, requires_grad=True)
    a = torch.tensor(float(adv), dtype=torch.float64)
    unclipped, clipped = r * a, torch.clamp(r, 1.0 - clip_eps, 1.0 + clip_eps) * a
    value = torch.min(unclipped, clipped)
    (grad,) = torch.autograd.grad(value, r)
    return {"value": float(value.detach()), "clipped": bool(clipped < unclipped), "gradient": float(grad)}


def clipping_table(clip_eps: float = 0.2, adv: float = 1.0, margin: float = 0.1) -> list[dict]:
    """The six cases (r inside / below / above [1 - eps, 1 + eps]) x (A > 0, A < 0), in the lecture's row order,
    each evaluated by `clipping_case` at a representative ratio (1, 1 - eps - margin, 1 + eps + margin)."""
    rows = []
    for region, r in [("inside", 1.0), ("below", 1.0 - clip_eps - margin), ("above", 1.0 + clip_eps + margin)]:
        for sign, a in [("+", abs(adv)), ("-", -abs(adv))]:
            out = clipping_case(r, a, clip_eps)
            term = "(1-eps)A" if out["clipped"] and region == "below" else "(1+eps)A" if out["clipped"] else "rA"
            rows.append({"ratio": region, "A": sign, "value_of_min": term, "clipped": out["clipped"],
                         "sign": "+" if out["value"] > 0 else "-", "gradient": out["gradient"] != 0.0,
                         "r": r, "value": out["value"], "d_value_d_r": out["gradient"]})
    return rows


# --- one update ---------------------------------------------------------------------------------------------------
def minibatch_step(model: ActorCritic, opt: torch.optim.Optimizer, mb: Steps, cfg: Config,
                   diagnostics: bool = True) -> dict | None:
    """One Adam step on the PPO loss of one minibatch of B steps (`rollout.Steps`).  Returns its diagnostics, or
    None with diagnostics=False (they cost about a seventh of a step at B = 256: `update` asks only where it uses
    them)."""
    adv = normalize_advantages(mb.adv) if cfg.normalize_adv else mb.adv
    if cfg.entropy_coef or diagnostics:
        logp, ent = model.log_prob_and_entropy(mb.obs, mb.actions)
        ent = ent.mean()
    else:  # the entropy is neither in the loss nor asked for: not computed (about a tenth of a step)
        logp, ent = model.log_prob(mb.obs, mb.actions), torch.zeros(())
    v = model.value(mb.obs)
    pi_l = ppo_clip_loss(logp, mb.logp, adv, cfg.clip_eps)
    v_l = clipped_value_loss(v, mb.values, mb.ret, cfg.clip_eps if cfg.clip_vloss else None)
    loss = pi_l + cfg.value_coef * v_l - cfg.entropy_coef * ent
    opt.zero_grad()
    loss.backward()
    if cfg.max_grad_norm:  # (torch's clip_grad_norm_ costs about a sixth of a step: not called when 0)
        clip_grads(model.parameters(), cfg.max_grad_norm)
    opt.step()
    if not diagnostics:
        return None
    with torch.no_grad():
        log_ratio = logp - mb.logp
        # (r - 1) - log r >= 0 estimates KL(pi_k || pi_theta) without bias (the estimator CleanRL logs)
        approx_kl = ((log_ratio.exp() - 1.0) - log_ratio).mean()
        clip_frac = ((log_ratio.exp() - 1.0).abs() > cfg.clip_eps).float().mean()
    return {"policy_loss": pi_l.item(), "value_loss": v_l.item(), "entropy": ent.item(),
            "approx_kl": approx_kl.item(), "clip_frac": clip_frac.item()}


# --- update (the seam: `train(..., update=my_update)`) ---------------------------------------------------------------
def update(model: ActorCritic, opt: torch.optim.Optimizer, ro: Rollout, cfg: Config, gen: torch.Generator) -> dict:
    """`epochs` passes over the valid steps of one rollout; each pass draws one `torch.randperm(n, generator=gen)`
    and splits it into minibatches of ceil(n / minibatches) steps.  Returns diagnostics: the means over the last
    epoch, explained variance of the old values, and the number of epochs run."""
    data = ro.steps(cfg.gamma, cfg.gae_lambda)
    n = len(data)
    size = max(1, math.ceil(n / cfg.minibatches))
    for epoch in range(cfg.epochs):
        need = bool(cfg.target_kl) or epoch == cfg.epochs - 1  # diagnostics: of the last epoch, or to check the KL
        batches = torch.randperm(n, generator=gen).split(size)
        stats = [minibatch_step(model, opt, data[idx], cfg, need) for idx in batches]
        if cfg.target_kl and np.mean([s["approx_kl"] for s in stats]) > cfg.target_kl:
            break
    out = {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}
    out["explained_var"] = explained_variance(data.values, data.ret)
    out["epochs_run"] = epoch + 1
    return out


# --- training loop ------------------------------------------------------------------------------------------------
def train(env_id: str, cfg: Config | None = None, run: Run | None = None, *, update=update) -> History:
    """Train PPO on `env_id` as `run` says (steps, seed, target, evaluation); `update(model, opt, ro, cfg, gen)`
    does the epochs of minibatch steps on each rollout (see `lecturekit.algos` for the protocol).

    History.logs has, per update: policy_loss, value_loss, entropy, approx_kl, clip_frac (means over the last
    epoch's minibatches), explained_var (of the rollout's values), epochs_run, lr.  History.model is the ActorCritic.
    """
    cfg, run = cfg or Config(), run or Run()
    envs, model, act_fn, gen = actor_critic_setup(env_id, cfg, run.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)  # fused: one kernel for all parameters
    mon = Monitor("ppo", env_id, run, config=cfg)

    def ppo_update(ro: Rollout, env_steps: int) -> dict:
        if cfg.anneal_lr:
            opt.param_groups[0]["lr"] = cfg.lr * max(0.0, 1.0 - env_steps / run.steps)
        return {**update(model, opt, ro, cfg, gen), "lr": opt.param_groups[0]["lr"]}

    return loop(envs, model, mon, cfg.n_steps, run.seed, gen, ppo_update, act_fn, cfg.reward_scale)


ALGOS = [Algo(name="ppo", train=train, config=Config, bench_env="CartPole-v1", bench_target=475.0,
              bench_steps=100_000, summary="PPO: clipped surrogate, GAE, epochs of shuffled minibatches",
              eval_every=2048)]
