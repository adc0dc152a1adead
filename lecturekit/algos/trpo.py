"""TRPO: trust region policy optimisation.  Lecture: "Policy Optimization with Trust Region Constraints"
(TRPO: the trust-region problem, conjugate gradient, the importance-sampled surrogate, the line search).

Each update collects a rollout of T steps in N environments with the current policy pi_k and solves, approximately,

    max_theta  L(theta) = E[ pi_theta(a|s) / pi_k(a|s) * A_k(s, a) ]
    s.t.       E_s[ KL(pi_k(.|s) || pi_theta(.|s)) ] <= delta

1. g = grad L at theta_k (the policy gradient), x ~= F^{-1} g by conjugate gradient with Fisher-vector products,
2. the largest step along x whose quadratic KL model equals delta: beta = sqrt(2 delta / x^T F x),
3. a backtracking line search on theta_k + alpha^j beta x (j = 0, 1, ...) that accepts the first candidate that
   improves L and whose exact mean KL is at most delta.
The critic V_w is fitted to the value targets with Adam, on the same loss as A2C (`losses.value_loss`); advantages
are GAE from the shared rollout code (truncation and autoreset steps handled there).
Works for Discrete actions (softmax policy) and 1-D Box actions (Gaussian policy, state-independent log std, in the
[-1, 1] units of `envs.make_unit_vec`; see `rollout.actor_critic_setup`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lecturekit import optim
from lecturekit.algos import Algo
from lecturekit.evaluation import History, Monitor, Run
from lecturekit.losses import normalize_advantages, value_loss
from lecturekit.nets import ActorCritic
from lecturekit.rollout import Rollout, actor_critic_setup, loop


@dataclass
class Config:
    gamma: float = 0.99         # discount factor
    gae_lambda: float = 0.97    # GAE lambda of the advantages
    n_envs: int = 8             # parallel environments (N)
    n_steps: int = 128          # rollout length per update (T)
    max_kl: float = 0.02        # trust-region radius delta on the mean KL(pi_k || pi_theta)
    cg_iters: int = 10          # conjugate-gradient iterations (Fisher-vector products) per update
    damping: float = 0.1        # F + damping * I in conjugate gradient (F is nearly singular on small batches)
    backtrack: float = 0.5      # line-search factor alpha in alpha^j
    max_backtracks: int = 10    # candidates tried per update (j = 0 .. max_backtracks - 1)
    vf_lr: float = 3e-3         # Adam step size of the critic
    vf_iters: int = 20          # critic minibatch steps per update
    vf_minibatches: int = 4     # the critic cycles through this many fixed minibatches (every k-th step) of the rollout
    normalize_adv: bool = True  # standardise advantages in each batch (rescales L; the step size is set by delta)
    vanilla_lr: float = 0.0     # > 0: replace the TRPO step by the plain step theta += vanilla_lr * g (comparison)
    hidden: tuple = (64, 64)    # hidden layer sizes of actor and critic
    log_std_init: float = -0.5  # initial log std of the Gaussian policy (Box actions only)

    def __post_init__(self):
        self.hidden = tuple(self.hidden)


# --- the two quantities of the trust-region problem -----------------------------------------------------------------
def surrogate_objective(logp: Tensor, logp_old: Tensor, adv: Tensor) -> Tensor:
    """L(theta) = mean[ exp(logp - logp_old) * A ]  (importance-sampled advantage).  Lecture: "TRPO Line Search:
    Surrogate Objective & Importance Sampling".  Equals mean(A) at theta = theta_k, and its gradient there is the
    policy gradient.  Shapes: logp, logp_old, adv (B,) -> scalar; logp_old and adv are constants."""
    return (torch.exp(logp - logp_old.detach()) * adv.detach()).mean()


def mean_kl(model: ActorCritic, obs: Tensor, old_params) -> Tensor:
    """E_s[ KL(pi_k(.|s) || pi_theta(.|s)) ] over the batch; `old_params` = model.dist_params(obs) of pi_k, detached.
    Shapes: obs (B, obs_dim) -> scalar."""
    new = model.dist_params(obs)
    if model.discrete:
        return optim.kl_categorical(old_params, new).mean()
    return optim.kl_gaussian(old_params[0], old_params[1], new[0], new[1]).mean()


def policy_params(model: ActorCritic) -> list[Tensor]:
    """theta: the actor's parameters (the critic is not part of the trust region)."""
    return list(model.pi.parameters()) + ([] if model.discrete else [model.log_std])


def frozen_dist_params(model: ActorCritic, obs: Tensor):
    """pi_k's distribution parameters on the batch (logits, or (mean, log_std)) as constants, for the KL."""
    with torch.no_grad():
        old = model.dist_params(obs)
        return old.clone() if model.discrete else (old[0].clone(), old[1].clone())


def policy_gradient_at_theta_k(model: ActorCritic, obs: Tensor, act: Tensor, logp_old: Tensor, adv: Tensor):
    """(theta, pi_k's distribution parameters, L(theta_k), g = grad L(theta_k) flat): what both steps start from."""
    params = policy_params(model)
    surr = surrogate_objective(model.log_prob(obs, act), logp_old, adv)
    return params, frozen_dist_params(model, obs), surr, optim.flat_grad(surr, params)


# --- one update -----------------------------------------------------------------------------------------------------
def trpo_step(model: ActorCritic, obs: Tensor, act: Tensor, logp_old: Tensor, adv: Tensor, cfg: Config) -> dict:
    """Natural-gradient direction by conjugate gradient, scaled to the KL radius, then the line search.
    Shapes: obs (B, obs_dim), act (B,) or (B, act_dim), logp_old, adv (B,).  Changes the actor in place."""
    params, old, surr, g = policy_gradient_at_theta_k(model, obs, act, logp_old, adv)
    fvp = optim.fisher_vector_product(mean_kl(model, obs, old), params, cfg.damping)
    x = optim.conjugate_gradient(fvp, g, cfg.cg_iters)
    full_step = optim.max_step_scale(x, fvp(x), cfg.max_kl) * x
    theta_k = optim.get_flat_params(params)

    def evaluate_at(theta: Tensor) -> tuple[float, float]:
        optim.set_flat_params(params, theta)
        with torch.no_grad():
            return (float(surrogate_objective(model.log_prob(obs, act), logp_old, adv)),
                    float(mean_kl(model, obs, old)))

    res = optim.line_search(theta_k, full_step, lambda th: evaluate_at(th)[0], lambda th: evaluate_at(th)[1],
                            cfg.max_kl, cfg.backtrack, cfg.max_backtracks)
    optim.set_flat_params(params, res.theta)
    return {"accepted_j": -1 if res.accepted_j is None else res.accepted_j, "kl": res.kl,
            "surrogate_gain": res.improvement, "grad_norm": float(g.norm())}


def vanilla_step(model: ActorCritic, obs: Tensor, act: Tensor, logp_old: Tensor, adv: Tensor, cfg: Config) -> dict:
    """The step TRPO replaces: theta_{k+1} = theta_k + alpha g, with no look at how far the policy moves.
    Lecture: "Why Vanilla Gradients May Fail".  Same data, same g, same logs as `trpo_step` (accepted_j is 0)."""
    params, old, surr, g = policy_gradient_at_theta_k(model, obs, act, logp_old, adv)
    optim.set_flat_params(params, optim.get_flat_params(params) + cfg.vanilla_lr * g)
    with torch.no_grad():
        gain = float(surrogate_objective(model.log_prob(obs, act), logp_old, adv) - surr)
        kl = float(mean_kl(model, obs, old))
    return {"accepted_j": 0, "kl": kl, "surrogate_gain": gain, "grad_norm": float(g.norm())}


def fit_critic(model: ActorCritic, opt: torch.optim.Optimizer, obs: Tensor, ret: Tensor, cfg: Config) -> float:
    """`vf_iters` Adam steps on the critic loss mean (V_w(s) - R)^2, cycling through the minibatches
    obs[k::vf_minibatches] (each spans the whole rollout; no randomness needed).  Returns the last loss."""
    k = max(1, min(cfg.vf_minibatches, obs.shape[0]))
    for i in range(cfg.vf_iters):
        idx = slice(i % k, None, k)
        loss = value_loss(model.value(obs[idx]), ret[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


# --- update (the seam: `train(..., update=my_update)`) ---------------------------------------------------------------
def update(model: ActorCritic, vf_opt: torch.optim.Optimizer, ro: Rollout, cfg: Config) -> dict:
    """One TRPO update from a rollout (`lecturekit.rollout.Rollout`); autoreset steps are left out."""
    b = ro.steps(cfg.gamma, cfg.gae_lambda)
    adv = normalize_advantages(b.adv) if cfg.normalize_adv else b.adv
    stats = (vanilla_step if cfg.vanilla_lr > 0 else trpo_step)(model, b.obs, b.actions, b.logp, adv, cfg)
    stats["value_loss"] = fit_critic(model, vf_opt, b.obs, b.ret, cfg)
    with torch.no_grad():
        stats["entropy"] = float(model.entropy(b.obs).mean())
    return stats


def train(env_id: str, cfg: Config | None = None, run: Run | None = None, *, update=update) -> History:
    """Train TRPO on `env_id` as `run` says (steps, seed, target, evaluation); `update(model, vf_opt, ro, cfg)`
    takes each trust-region step and fits the critic (see `lecturekit.algos` for the protocol).

    History.logs has, per update: accepted_j (-1: every candidate rejected, the policy is unchanged), kl (exact mean
    KL of the accepted step), surrogate_gain, grad_norm, value_loss, entropy.  History.model is the ActorCritic.
    """
    cfg, run = cfg or Config(), run or Run()
    envs, model, act_fn, gen = actor_critic_setup(env_id, cfg, run.seed)
    vf_opt = torch.optim.Adam(model.v.parameters(), lr=cfg.vf_lr)
    mon = Monitor("trpo", env_id, run, config=cfg)
    return loop(envs, model, mon, cfg.n_steps, run.seed, gen, lambda ro, _: update(model, vf_opt, ro, cfg), act_fn)


ALGOS = [Algo(name="trpo", train=train, config=Config, bench_env="CartPole-v1", bench_target=475.0,
              bench_steps=200_000, summary="TRPO: natural gradient by conjugate gradient, KL-constrained line search",
              eval_every=4096)]
