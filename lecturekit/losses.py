"""What the policy-gradient algorithms share: the policy-gradient and value losses, advantage normalisation,
explained variance, gradient clipping.  Lecture: "REINFORCE Algorithm", "Advantage Actor-Critic (A2C)".

Every function is pure (tensors in, tensors or floats out) except `clip_grads`, which rescales `.grad` in place.
Shapes: (B,) = one flat batch of steps.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


def policy_gradient_loss(logp: Tensor, adv: Tensor) -> Tensor:
    """L(theta) = -mean(log pi_theta(a_t|s_t) A_t): its gradient is minus the policy-gradient estimate.

    Lecture: "REINFORCE Algorithm" (A_t = G_t - b) and "Actor-Critic Methods" (A_t from the critic).
    Shapes: logp, adv (B,) -> scalar.  adv is a constant: no gradient flows into it.
    """
    return -(logp * adv.detach()).mean()


def value_loss(v: Tensor, ret: Tensor) -> Tensor:
    """Critic / baseline regression L(w) = mean((V_w(s_t) - R_t)^2) on targets held constant.

    Lecture: "Advantage Actor-Critic (A2C)", critic update.  Shapes: v, ret (B,) -> scalar.
    """
    return (v - ret.detach()).pow(2).mean()


def normalize_advantages(adv: Tensor, center: bool = True, eps: float = 1e-8) -> Tensor:
    """(A - mean(A)) / (std(A) + eps): rescales the step, keeps its direction within the batch.  With
    center=False only the division (REINFORCE: the baseline alone decides what counts as better than usual).

    A batch of one step is returned unchanged (its std is undefined).  Shapes: (B,) -> (B,).
    """
    if adv.numel() < 2:
        return adv
    return ((adv - adv.mean()) if center else adv) / (adv.std() + eps)


def explained_variance(v: Tensor, ret: Tensor) -> float:
    """1 - Var(R - V) / Var(R): 1 for a perfect critic, 0 for a constant one, negative for a harmful one.
    Shapes: v, ret (B,).  0 when Var(R) = 0 or B < 2."""
    var = ret.var().item() if ret.numel() > 1 else 0.0
    return 0.0 if var == 0.0 else 1.0 - (ret - v).var().item() / var


def clip_grads(params: Iterable[Tensor], max_norm: float) -> float:
    """Rescale the gradients so that their global norm is at most max_norm (0 = no clipping); returns the norm
    before clipping."""
    return float(torch.nn.utils.clip_grad_norm_(list(params), max_norm or float("inf")))


def actor_critic_loss(model, steps, cfg) -> tuple[Tensor, dict]:
    """The A2C loss on a flat batch of steps (`rollout.Steps`), shared by A2C and A3C:

        L = -mean(log pi(a_t|s_t) A_t) + value_coef mean((R_t - V(s_t))^2) - entropy_coef mean(H_t)

    with A_t standardised if cfg.normalize_adv.  `model` is a `nets.ActorCritic`; cfg has value_coef, entropy_coef,
    normalize_adv.  Returns (loss, diagnostics: policy_loss, value_loss, entropy, explained_var).
    """
    (logp, ent), v = model.log_prob_and_entropy(steps.obs, steps.actions), model.value(steps.obs)
    ent = ent.mean()
    adv = normalize_advantages(steps.adv) if cfg.normalize_adv else steps.adv
    pi_l, v_l = policy_gradient_loss(logp, adv), value_loss(v, steps.ret)
    loss = pi_l + cfg.value_coef * v_l - cfg.entropy_coef * ent
    return loss, {"policy_loss": pi_l.item(), "value_loss": v_l.item(), "entropy": ent.item(),
                  "explained_var": explained_variance(v.detach(), steps.ret)}
