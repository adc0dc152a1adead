"""Checkers of lecture part 5 (PPO): `gae`, `ppo_clip_loss`, `clipping_case`.  Exercise notebook: solutions/ex05_ppo."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lecturekit.algos.ppo import clipping_case, ppo_clip_loss
from lecturekit.course.checking import Check, checker, describe
from lecturekit.returns import gae


# --- gae ----------------------------------------------------------------------------------------------------------
def _gae_variant(r, v, d, lv, gamma, lam, *, done_in_delta=True, done_in_rec=True, next_v=True, use_last=True,
                 use_lam=True, shift_done=False, use_gamma_rec=True) -> np.ndarray:
    """GAE with one piece of the recursion changed: what a common mistake computes."""
    r, v, d = (np.asarray(x, dtype=np.float64) for x in (r, v, d))
    lv = np.asarray(lv, dtype=np.float64) if use_last else np.zeros(r.shape[1])
    T = r.shape[0]
    nv = np.concatenate([v[1:], lv[None]], 0) if next_v else v
    d_rec = np.concatenate([d[1:], np.zeros((1, r.shape[1]))], 0) if shift_done else d
    delta = r + gamma * (1 - d if done_in_delta else 1) * nv - v
    adv, run = np.zeros_like(r), np.zeros(r.shape[1])
    for t in range(T - 1, -1, -1):
        run = delta[t] + (gamma if use_gamma_rec else 1.0) * (lam if use_lam else 1.0) * \
            (1 - d_rec[t] if done_in_rec else 1) * run
        adv[t] = run
    return adv


def _gae_mistakes(r, v, d, lv, gamma, lam) -> dict:
    right = gae(r, v, d, lv, gamma, lam)
    return {
        "returns": (right + np.asarray(v, dtype=np.float64),
                    "you returned A_t + V_t (the value targets); the exercise asks for the advantages A_t."),
        "delta_only": (_gae_variant(r, v, d, lv, gamma, 0.0),
                       "this is the one-step TD error delta_t only: add gamma * lam * (1 - terminated_t) * A_{t+1}, "
                       "computed backwards from t = T - 1."),
        "no_lambda": (_gae_variant(r, v, d, lv, gamma, lam, use_lam=False),
                      "lambda is missing: the recursion is "
                      "A_t = delta_t + gamma * lam * (1 - terminated_t) * A_{t+1}."),
        "lam_not_gamma_lam": (_gae_variant(r, v, d, lv, gamma, lam, use_gamma_rec=False),
                              "the recursion multiplies A_{t+1} by lam alone: it is gamma * lam, "
                              "A_t = delta_t + gamma * lam * (1 - terminated_t) * A_{t+1} (GAE sums "
                              "(gamma * lam)^l delta_{t+l}; gamma discounts, lam mixes the n-step estimates)."),
        "no_done": (_gae_variant(r, v, d, lv, gamma, lam, done_in_delta=False, done_in_rec=False),
                    "a terminated step must not bootstrap nor pass on A_{t+1}: multiply both V_{t+1} in delta_t and "
                    "A_{t+1} in the recursion by (1 - terminated_t)."),
        "no_done_delta": (_gae_variant(r, v, d, lv, gamma, lam, done_in_delta=False),
                          "a terminated step must not bootstrap: delta_t = r_t + gamma * (1 - terminated_t) * V_{t+1} "
                          "- V_t (V_{t+1} then belongs to the next episode)."),
        "no_done_rec": (_gae_variant(r, v, d, lv, gamma, lam, done_in_rec=False),
                        "the advantage leaks across episode boundaries: multiply A_{t+1} by (1 - terminated_t) in "
                        "the recursion too, not only V_{t+1} in delta_t."),
        "shift_done": (_gae_variant(r, v, d, lv, gamma, lam, shift_done=True),
                       "off by one at episode ends: step t's own flag terminated_t cuts A_{t+1}, "
                       "not terminated_{t+1}."),
        "no_last": (_gae_variant(r, v, d, lv, gamma, lam, use_last=False),
                    "the last step must bootstrap from last_value: V_T = last_value (not 0) in delta_{T-1}."),
        "v_t": (_gae_variant(r, v, d, lv, gamma, lam, next_v=False),
                "delta_t uses the value of the NEXT state: r_t + gamma * V_{t+1} - V_t (V_{t+1} = values[t + 1], "
                "and last_value for the last step)."),
        "forward": (_gae_forward(r, v, d, lv, gamma, lam),
                    "the recursion runs backwards in time: start at t = T - 1 with A_T = 0 and go down to t = 0."),
    }


def _gae_forward(r, v, d, lv, gamma, lam) -> np.ndarray:
    r, v, d = (np.asarray(x, dtype=np.float64) for x in (r, v, d))
    nv = np.concatenate([v[1:], np.asarray(lv, dtype=np.float64)[None]], 0)
    delta = r + gamma * (1 - d) * nv - v
    adv, run = np.zeros_like(r), np.zeros(r.shape[1])
    for t in range(r.shape[0]):
        run = delta[t] + gamma * lam * (1 - d[t]) * run
        adv[t] = run
    return adv


def _gae_cases() -> list:
    rng = np.random.default_rng(5)
    f = np.array
    cases = [
        # (rewards, values, terminated, last_value, gamma, lam)
        (f([[1.0]]), f([[0.5]]), f([[False]]), f([2.0]), 0.9, 0.95),
        (f([[1.0]]), f([[0.5]]), f([[True]]), f([2.0]), 0.9, 0.95),
        (f([[1.0], [0.0], [2.0]]), f([[0.5], [1.0], [-1.0]]), f([[False], [False], [False]]), f([3.0]), 0.9, 0.0),
        (f([[1.0], [0.0], [2.0]]), f([[0.5], [1.0], [-1.0]]), f([[False], [False], [False]]), f([3.0]), 0.9, 1.0),
        (f([[1.0], [0.0], [2.0]]), f([[0.5], [1.0], [-1.0]]), f([[False], [False], [False]]), f([3.0]), 0.9, 0.5),
        (f([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 2.0]]), f([[2.0, 0.5], [1.5, 0.2], [3.0, 1.0], [0.5, -0.5]]),
         f([[False, False], [True, False], [False, True], [False, False]]), f([4.0, 1.0]), 0.9, 0.8),
    ]
    T, N = 32, 4
    cases.append((rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.random((T, N)) < 0.1, rng.normal(size=N),
                  0.99, 0.95))
    cases.append((np.ones((128, 8)), rng.normal(10, 1, size=(128, 8)), (rng.random((128, 8)) < 0.02).astype(np.float32),
                  rng.normal(10, 1, size=8), 0.99, 0.95))  # terminated as 0/1 floats
    return cases


@checker("gae")
def check_gae(fn) -> None:
    """Check `fn(rewards, values, terminated, last_value, gamma, lam)` against the GAE recursion, small cases first."""
    c = Check("gae")
    cases = _gae_cases()
    for r, v, d, lv, gamma, lam in cases:
        T, N = r.shape
        case = (f"rewards={r.tolist()}, values={v.tolist()}, terminated={d.tolist()}, last_value={lv.tolist()}, "
                f"gamma={gamma}, lam={lam}") if T * N <= 8 else \
            f"a rollout of T={T} steps x N={N} envs with episode ends (terminated as {d.dtype}), " \
            f"gamma={gamma}, lam={lam}"
        got = c.call(fn, r, v, d, lv, gamma, lam, case=case)
        c.expect_close(got, gae(r, v, d, lv, gamma, lam), case=case, rtol=1e-5, atol=1e-6,
                       mistakes=_gae_mistakes(r, v, d, lv, gamma, lam))
    c.passed(f"{len(cases)} rollouts from 1x1 to 128x8 steps, lambda 0, 0.5, 0.8, 0.95 and 1, with episode ends")


# --- ppo_clip_loss ------------------------------------------------------------------------------------------------
def _clip_mistakes(logp, logp_old, adv, eps) -> dict:
    """name -> (wrong loss as a function of logp, hint)."""
    lo, a = logp_old, adv

    def ratio(lp):
        return torch.exp(lp - lo)

    def rclip(lp):
        return torch.clamp(ratio(lp), 1 - eps, 1 + eps)

    def inv(lp):
        return torch.exp(lo - lp)

    return {
        "sign": (lambda lp: torch.min(ratio(lp) * a, rclip(lp) * a).mean(),
                 "the sign is flipped: return the LOSS, minus the clipped objective (an optimizer minimises it)."),
        "max": (lambda lp: -torch.max(ratio(lp) * a, rclip(lp) * a).mean(),
                "use the min of the two terms (the pessimistic one), not the max."),
        "no_clip": (lambda lp: -(ratio(lp) * a).mean(),
                    "the clipped term is missing: min(r * adv, clip(r, 1 - eps, 1 + eps) * adv)."),
        "clip_only": (lambda lp: -(rclip(lp) * a).mean(),
                      "take the min of the clipped AND the unclipped term; clip(r) * adv alone also stops gradients "
                      "that should pass (moves that make things worse)."),
        "inverted": (lambda lp: -torch.min(inv(lp) * a, torch.clamp(inv(lp), 1 - eps, 1 + eps) * a).mean(),
                     "the ratio is upside down: r = pi_new / pi_old = exp(logp - logp_old)."),
        "no_exp": (lambda lp: -torch.min((lp - lo) * a, torch.clamp(lp - lo, 1 - eps, 1 + eps) * a).mean(),
                   "logp - logp_old is the log of the ratio: r = exp(logp - logp_old)."),
        "divide": (lambda lp: -torch.min(lp / lo * a, torch.clamp(lp / lo, 1 - eps, 1 + eps) * a).mean(),
                   "logp / logp_old is not the probability ratio: with log-probabilities, r = exp(logp - logp_old)."),
        "sum": (lambda lp: -torch.min(ratio(lp) * a, rclip(lp) * a).sum(),
                "average over the batch with .mean(), not .sum()."),
        "clip_product": (lambda lp: -torch.min(ratio(lp) * a, torch.clamp(ratio(lp) * a, 1 - eps, 1 + eps)).mean(),
                         "clip the ratio r, not the product r * adv: clip(r, 1 - eps, 1 + eps) * adv."),
    }


def _value_and_grad(loss_fn, logp) -> tuple[Tensor, Tensor]:
    lp = logp.detach().clone().requires_grad_(True)
    value = loss_fn(lp)
    (grad,) = torch.autograd.grad(value, lp)
    return value.detach(), grad


def _clip_cases() -> list:
    g = torch.Generator().manual_seed(5)
    t = torch.tensor
    cases = [
        # (logp, logp_old, adv, clip_eps)
        (t([-0.5]), t([-0.5]), t([1.0]), 0.2),                                     # r = 1
        (t([-0.4, -1.2, -0.7]), t([-0.5, -1.1, -0.7]), t([1.0, -2.0, 0.5]), 0.2),  # r inside [0.8, 1.2]
        (t([-0.1, -2.0, -0.1, -2.0]), t([-0.7, -0.7, -0.7, -0.7]), t([2.0, 1.0, -1.5, -0.5]), 0.2),  # r far outside
        (t([-0.2, -1.5, -0.3, -1.4, -0.9, -0.6]), t([-0.8, -0.6, -0.9, -0.7, -1.0, -0.5]),
         t([2.0, 1.0, -1.0, -0.5, 0.3, -3.0]), 0.1),
    ]
    B = 256
    logp_old = -torch.rand(B, generator=g) * 3 - 0.05
    logp = logp_old + torch.randn(B, generator=g) * 0.4
    cases.append((logp, logp_old, torch.randn(B, generator=g), 0.2))
    cases.append((logp.double(), logp_old.double(), torch.randn(B, generator=g).double(), 0.3))
    return cases


@checker("ppo_clip_loss")
def check_ppo_clip_loss(fn) -> None:
    """Check the value of `fn(logp, logp_old, adv, clip_eps)`, its gradient with respect to logp, and that no gradient
    reaches logp_old or adv."""
    c = Check("ppo_clip_loss")
    cases = _clip_cases()
    for logp, logp_old, adv, eps in cases:
        B = len(logp)
        case = (f"logp={describe(logp)}, logp_old={describe(logp_old)}, adv={describe(adv)}, clip_eps={eps}"
                if B <= 6 else f"a batch of B={B} ({logp.dtype}), ratios spread around 1, clip_eps={eps}")
        lp, lo, ad = (x.clone().requires_grad_(True) for x in (logp, logp_old, adv))
        got = c.call(fn, lp, lo, ad, eps, case=case)
        expected, ref_grad = _value_and_grad(lambda x: ppo_clip_loss(x, logp_old, adv, eps), logp)
        wrong = {k: (*_value_and_grad(f, logp), hint)
                 for k, (f, hint) in _clip_mistakes(logp, logp_old, adv, eps).items()}
        c.expect_tensor(got, expected, case=case, mistakes={k: (v, h) for k, (v, _, h) in wrong.items()})
        if not got.requires_grad:
            c.fail(case, "a loss that carries a gradient to logp", "a tensor with no gradient",
                   hint="the loss is detached from logp: keep the computation in torch (no .item(), .numpy(), "
                        "torch.tensor(...) or .detach() on logp).")
        got.backward()
        for name, x in (("logp_old", lo), ("adv", ad)):
            if x.grad is not None and x.grad.abs().max() > 0:
                c.fail(case, f"no gradient in {name}", f"{name}.grad = {describe(x.grad)}",
                       hint=f"{name} is data of the old policy / a fixed weight: use {name}.detach() so the "
                            "optimiser only moves the new policy through logp.")
        # a mistake can give the right value on this case and still the wrong gradient (e.g. r = 1 exactly)
        same_value = {k: (g, h) for k, (v, g, h) in wrong.items() if torch.allclose(v.double(), expected.double())}
        c.expect_tensor(lp.grad, ref_grad, case=case + " (gradient with respect to logp)", mistakes=same_value,
                        hint="the value is right but its gradient is not: is part of the formula detached?")
    c.passed(f"{len(cases)} batches from B=1 to B=256: value, gradient into logp, none into logp_old and adv")


# --- clipping_case ------------------------------------------------------------------------------------------------
def _case_mistakes(ratio, adv, eps) -> tuple[dict, dict]:
    """Wrong answers for `value` and for `gradient`."""
    rc = min(max(ratio, 1 - eps), 1 + eps)
    outside = ratio < 1 - eps or ratio > 1 + eps
    values = {
        "clip_only": (rc * adv, "`value` is the min of BOTH terms; clip(r) * A alone is only one of them."),
        "max": (max(ratio * adv, rc * adv),
                "`value` is the min of r * A and clip(r, 1 - eps, 1 + eps) * A, not the max."),
    }
    grads = {
        "loss_sign": (-clipping_case(ratio, adv, eps)["gradient"],
                      "the gradient is of the objective (the min), not of the loss -min(...): flip the sign."),
        "always_a": (adv, "the min does not always pick r * A: where it picks the clipped term (a constant in r), "
                          "the gradient is 0."),
        "outside_zero": (0.0 if outside else adv,
                         "the gradient is not zero whenever r is outside [1 - eps, 1 + eps]: only where the min picks "
                         "the clipped term. Compute min(...) and differentiate it (e.g. with torch autograd)."),
    }
    return values, grads


def _as_bool(x):
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, torch.Tensor) and x.dtype == torch.bool and x.numel() == 1:
        return bool(x.item())
    return None


@checker("clipping_case")
def check_clipping_case(fn) -> None:
    """Check `fn(ratio, adv, clip_eps) -> {'value', 'clipped', 'gradient'}` on every cell of the six-case table."""
    c = Check("clipping_case")
    cases = [(1.0, 1.0, 0.2), (1.0, -1.0, 0.2), (1.1, 2.0, 0.2), (0.9, -0.5, 0.2),     # inside
             (1.5, 1.0, 0.2), (0.5, -1.0, 0.2), (0.5, 1.0, 0.2), (1.5, -1.0, 0.2),     # the four outside cells
             (0.85, 3.0, 0.1), (0.85, -3.0, 0.1), (1.25, 0.5, 0.1), (1.25, -0.5, 0.1), (2.0, 0.0, 0.2)]
    for ratio, adv, eps in cases:
        case = f"ratio={ratio}, adv={adv}, clip_eps={eps}"
        got = c.call(fn, ratio, adv, eps, case=case)
        exp = clipping_case(ratio, adv, eps)
        if not isinstance(got, dict) or set(got) < {"value", "clipped", "gradient"}:
            c.fail(case, {k: exp[k] for k in ("value", "clipped", "gradient")}, got,
                   hint="return a dict with the keys 'value', 'clipped' and 'gradient'.")
        vm, gm = _case_mistakes(ratio, adv, eps)
        c.expect_close(got["value"], exp["value"], case=case + " ('value')", mistakes=vm)
        flag = _as_bool(got["clipped"])
        if flag is None:
            c.fail(case + " ('clipped')", exp["clipped"], got["clipped"], hint="'clipped' must be True or False.")
        if flag != exp["clipped"]:
            rc = min(max(ratio, 1 - eps), 1 + eps)
            c.fail(case + " ('clipped')", exp["clipped"], flag,
                   hint=f"r * A = {ratio * adv:.4g} and clip(r) * A = {rc * adv:.4g}: 'clipped' is True only when "
                        "the min picks the clipped term and it is smaller than r * A. Being outside [1 - eps, 1 + eps] "
                        "is not enough: it depends on the sign of A.")
        c.expect_close(got["gradient"], exp["gradient"], case=case + " ('gradient')", mistakes=gm)
    c.passed(f"{len(cases)} cases: every cell of the table, two epsilons, and A = 0")


# --- n_step_advantage (GAE's telescoping sum) ------------------------------------------------------------------------
def _n_step_variant(r, v, lv, gamma, n, *, truncate=True, discount_boot=True, minus_v=True, boot=True) -> np.ndarray:
    r, v = np.asarray(r, dtype=np.float64), np.asarray(v, dtype=np.float64)
    T = len(r)
    vv = np.append(v, float(lv))  # V_0 .. V_T, V_T = last_value
    out = np.zeros(T)
    for t in range(T):
        m = min(n, T - t) if truncate else n
        m_eff = min(m, T - t)
        ret = sum(gamma ** l * r[t + l] for l in range(m_eff))
        if boot:
            ret += (gamma ** m if discount_boot else 1.0) * vv[t + m_eff]
        out[t] = ret - (v[t] if minus_v else 0.0)
    return out


def _n_step_ref(r, v, lv, gamma, n) -> np.ndarray:
    """sum_{l < m} gamma^l delta_{t+l}, m = min(n, T - t): the TD errors added up (independent of the closed form)."""
    r, v = np.asarray(r, dtype=np.float64), np.asarray(v, dtype=np.float64)
    vv = np.append(v, float(lv))
    delta = r + gamma * vv[1:] - vv[:-1]
    T = len(r)
    return np.array([sum(gamma ** l * delta[t + l] for l in range(min(n, T - t))) for t in range(T)])


@checker("n_step_advantage")
def check_n_step_advantage(fn) -> None:
    """Check `fn(rewards, values, last_value, gamma, n)` against the sum of n discounted TD errors (which telescopes
    to the closed form the exercise asks for)."""
    c = Check("n_step_advantage")
    rng = np.random.default_rng(8)
    f = np.array
    cases = [
        (f([1.0]), f([0.5]), 2.0, 0.9, 1),
        (f([1.0, 0.0, 2.0]), f([0.5, 1.0, -1.0]), 3.0, 0.9, 1),
        (f([1.0, 0.0, 2.0]), f([0.5, 1.0, -1.0]), 3.0, 0.9, 2),
        (f([1.0, 0.0, 2.0]), f([0.5, 1.0, -1.0]), 3.0, 0.5, 3),
        (f([1.0, 0.0, 2.0]), f([0.5, 1.0, -1.0]), 3.0, 0.9, 10),   # n beyond the rollout: stop at the end
        (rng.normal(size=20), rng.normal(size=20), 1.3, 0.99, 5),
    ]
    for r, v, lv, gamma, n in cases:
        case = (f"rewards={r.tolist()}, values={v.tolist()}, last_value={lv}, gamma={gamma}, n={n}" if len(r) <= 3
                else f"a rollout of T={len(r)} steps, gamma={gamma}, n={n}")
        got = c.call(fn, r, v, lv, gamma, n, case=case)
        mistakes = {
            "not_truncated": (_n_step_variant(r, v, lv, gamma, n, truncate=False),
                              "near the end fewer than n steps are left: use m = min(n, T - t) steps and bootstrap "
                              "from V_{t+m} with gamma^m (V_T = last_value)."),
            "boot_undiscounted": (_n_step_variant(r, v, lv, gamma, n, discount_boot=False),
                                  "the bootstrap value is discounted too: + gamma^m V_{t+m}."),
            "no_minus_v": (_n_step_variant(r, v, lv, gamma, n, minus_v=False),
                           "that is the n-step return; the advantage subtracts V_t: A_t^(n) = (n-step return) - V_t. "
                           "(The telescoping sum of TD errors leaves exactly -V_t at the start.)"),
            "no_bootstrap": (_n_step_variant(r, v, lv, gamma, n, boot=False),
                             "the bootstrap term is missing: the TD errors telescope to + gamma^m V_{t+m} at the end."),
            "lambda_gae": (gae(r[:, None], v[:, None], np.zeros((len(r), 1)), np.array([lv]), gamma, 0.95)[:, 0],
                           "this is GAE: the exercise asks for one n-step advantage, the sum of the first m TD errors."),
        }
        c.expect_close(got, _n_step_ref(r, v, lv, gamma, n), case=case, mistakes=mistakes,
                       hint="A_t^(n) = sum_{l < m} gamma^l r_{t+l} + gamma^m V_{t+m} - V_t, m = min(n, T - t), "
                            "V_T = last_value.")
    c.passed(f"{len(cases)} rollouts, n from 1 to beyond the rollout, compared with the sum of TD errors")


# --- ppo_update (build-it): the whole PPO update ---------------------------------------------------------------------
PPO_UPDATE_KEYS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")
PPO_BUDGET, PPO_SEEDS = 50_000, (0, 1)  # layer 3: CartPole-v1 475 within this many env steps on one of these seeds


def _ppo_variant(model, opt, ro, cfg, gen, bug: str | None = None) -> dict:
    """The PPO update written out step by step (independently of `lecturekit.algos.ppo`), with one bug if asked."""
    import math

    adv_tn, ret_tn = ro.advantages(cfg.gamma, cfg.gae_lambda)
    if bug in ("trunc_as_term", "autoreset_as_step"):  # GAE with the episode ends read wrongly
        v = ro.values.double().numpy()
        if bug == "trunc_as_term":
            r, d = np.where(ro.valid, ro.rewards, v), np.where(ro.valid, ro.terminated | ro.truncated, True)
        else:
            r, d = ro.rewards, ro.terminated
        a = gae(r, v, d, ro.last_value, cfg.gamma, cfg.gae_lambda)
        adv_tn, ret_tn = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(a + v, dtype=torch.float32)
    if bug == "ret_is_adv":
        ret_tn = adv_tn
    m = torch.ones(ro.valid.shape, dtype=torch.bool) if bug == "no_mask" else torch.as_tensor(ro.valid)
    if bug == "env_major":  # the valid steps flattened environment by environment instead of time step by time step
        pick = lambda x: x.transpose(0, 1)[m.T]  # noqa: E731
    else:
        pick = lambda x: x[m]  # noqa: E731
    obs, act, logp_old, adv, ret = (pick(x) for x in (ro.obs, ro.actions, ro.logp, adv_tn, ret_tn))
    if bug == "logp_old_current":
        with torch.no_grad():
            logp_old = model.log_prob(obs, act)
    if bug == "normalize_batch":
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    n = len(obs)
    size = n // cfg.minibatches if bug == "floor_size" else math.ceil(n / cfg.minibatches)
    fixed = torch.randperm(n, generator=gen) if bug == "one_perm" else None
    for _ in range(1 if bug == "one_epoch" else cfg.epochs):
        perm = fixed if fixed is not None else torch.randperm(n) if bug == "global_rng" else \
            torch.randperm(n, generator=gen)
        stats = []
        for idx in perm.split(size):
            a = adv[idx]
            if cfg.normalize_adv and bug not in ("no_normalize", "normalize_batch"):
                a = (a - a.mean()) / (a.std(unbiased=bug != "population_std") + 1e-8)
            logp, ent = model.log_prob(obs[idx], act[idx]), model.entropy(obs[idx]).mean()
            v = model.value(obs[idx])
            old = model.log_prob(obs[idx], act[idx]) if bug == "logp_old_grad" else logp_old[idx]
            log_ratio = logp - old
            ratio = torch.exp(-log_ratio if bug == "ratio_inverted" else log_ratio)
            clipped = torch.clamp(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * a
            surr = clipped if bug == "no_min" else torch.max(ratio * a, clipped) if bug == "max" else \
                torch.min(ratio * a, clipped)
            pi_l = -surr.mean()
            target = adv_tn[m][idx] + model.value(obs[idx]) if bug == "ret_with_grad" else ret[idx]
            v_l = (0.5 if bug == "half_value_loss" else 1.0) * (v - target).pow(2).mean()
            c_h = -cfg.entropy_coef if bug == "ent_sign" else cfg.entropy_coef
            loss = pi_l + (1.0 if bug == "no_value_coef" else cfg.value_coef) * v_l - c_h * ent
            if bug != "no_zero_grad":
                opt.zero_grad()
            loss.backward()
            if (cfg.max_grad_norm or bug == "clip_at_zero") and bug != "no_clip":
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            with torch.no_grad():
                lr_ = log_ratio.detach()
                kl = (-lr_).mean() if bug == "kl_k1" else ((lr_.exp() - 1) - lr_).mean()
                cf = ((lr_.exp() - 1).abs() > cfg.clip_eps).float().mean()
            stats.append((pi_l.item(), v_l.item(), ent.item(), kl.item(), cf.item()))
    return dict(zip(PPO_UPDATE_KEYS, (float(np.mean(col)) for col in zip(*stats))))


PPO_MISTAKES = {
    "no_zero_grad": "the gradients of the previous minibatch were still in .grad: call opt.zero_grad() before every "
                    "loss.backward() (backward adds to .grad).",
    "global_rng": "draw the minibatch order from the generator you are given: torch.randperm(n, generator=gen) (the "
                  "global generator makes runs unrepeatable and the check cannot follow your minibatches).",
    "one_perm": "reshuffle every epoch: draw a new torch.randperm(n, generator=gen) at the start of each epoch, not "
                "one permutation for all of them.",
    "floor_size": "the minibatch size is ceil(n / cfg.minibatches) (math.ceil), so that an epoch has exactly "
                  "cfg.minibatches minibatches; n // minibatches leaves a small extra minibatch.",
    "one_epoch": "do cfg.epochs passes over the rollout, each split into minibatches.",
    "env_major": "flatten the valid steps in the order of ro.obs[ro.valid] (time step by time step), so that the "
                 "permutation picks the same steps as the reference's.",
    "no_mask": "the autoreset steps (valid == False) are in your minibatches: keep only ro.valid steps.",
    "normalize_batch": "normalise the advantages per minibatch (mean and std of the minibatch's advantages), not once "
                       "over the whole rollout.",
    "no_normalize": "cfg.normalize_adv is True: standardise each minibatch's advantages, (A - mean) / (std + 1e-8).",
    "logp_old_grad": "the old log-probabilities carry gradient: you recomputed them with the current network, so the "
                     "ratio is always 1 and its gradient 0. Use the rollout's ro.logp (the policy that collected the "
                     "data, a constant).",
    "logp_old_current": "the old log-probabilities must be those of the policy that collected the data (ro.logp), not "
                        "the current network's at the start of the update.",
    "ratio_inverted": "the ratio is pi_theta / pi_old = exp(logp - logp_old), not exp(logp_old - logp).",
    "no_min": "the clipped surrogate is min(r A, clip(r, 1 - eps, 1 + eps) A): the min with the unclipped term is "
              "missing (clipping alone also removes the penalty for moving the wrong way).",
    "max": "take the min of the two terms, not the max: PPO's objective is a pessimistic (lower) bound.",
    "trunc_as_term": "a truncated episode (time limit) was treated as terminated in GAE: its last TD error must "
                     "bootstrap from V(final observation), the value stored on the autoreset step after it; only "
                     "`terminated` cuts the sums.",
    "autoreset_as_step": "an autoreset step (valid == False) was treated as an ordinary step in GAE, so the next "
                         "episode leaked into the one before it: give that step the 'reward' V(final observation) "
                         "(its stored value) and mark it terminal, as exercise 03 does.",
    "ret_is_adv": "the value target is A_t + V(s_t) (the second tensor ro.advantages returns), not the advantage.",
    "ret_with_grad": "the value target carries gradient: it must be the constant A + V_old with the values stored "
                     "in the rollout (ro.advantages' second tensor); with the current critic inside the target, "
                     "(V - (A + V))^2 = A^2 does not train the critic at all.",
    "no_value_coef": "the critic's term is weighted by cfg.value_coef: loss = policy_loss + value_coef * value_loss "
                     "- entropy_coef * entropy.",
    "half_value_loss": "the value loss is mean((V(s) - R)^2), without the factor 1/2 some codebases put in front "
                       "(they use a larger value_coef): here cfg.value_coef is its only weight. Because the gradient "
                       "is clipped to a global norm over all parameters, a factor in the critic's loss changes the "
                       "actor's clipped gradient too.",
    "ent_sign": "the entropy bonus has the wrong sign: subtract entropy_coef * mean(H) from the loss.",
    "no_clip": "the gradient was not clipped: torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm) "
               "between backward() and step().",
    "clip_at_zero": "cfg.max_grad_norm = 0 means no clipping: clip_grad_norm_(..., 0) sets every gradient to zero "
                    "and the step does nothing. Clip only when cfg.max_grad_norm > 0.",
    "kl_k1": "approx_kl is mean((r - 1) - log r), which is never negative; mean(logp_old - logp) is an unbiased but "
             "noisy estimate that can be negative.",
}

PPO_GROUP_HINTS = {
    "critic": "The critic's gradient comes from value_coef * mean((V(s) - R)^2) on each minibatch, R = A + V_old "
              "from ro.advantages: check the value target and the value loss.",
    "actor": "The actor's gradient comes from the clipped surrogate -mean(min(r A, clip(r) A)) - entropy_coef * "
             "mean(H): check the ratio r = exp(logp - ro.logp), the advantages (standardised per minibatch), the "
             "clipping and the entropy term.",
    "steps": "PPO takes cfg.epochs x cfg.minibatches optimizer steps per rollout (one per minibatch).",
    "scale": "look for a factor: value_coef, a mean vs a sum, or the gradient clipping (the global norm of all "
             "parameters, to cfg.max_grad_norm).",
}

PPO_STAT_HINTS = {
    "approx_kl": "approx_kl is mean((r - 1) - log r) over each minibatch (r from the log-probs of its forward pass, "
                 "before the step), averaged over the last epoch's minibatches.",
    "clip_frac": "clip_frac is the fraction of steps with |r - 1| > clip_eps in each minibatch, averaged over the "
                 "last epoch's minibatches.",
    "policy_loss": "policy_loss is -mean(min(r A, clip(r) A)) per minibatch, averaged over the last epoch.",
    "value_loss": "value_loss is mean((V(s) - R)^2) per minibatch (without value_coef), averaged over the last epoch.",
    "entropy": "entropy is the minibatch's mean entropy, averaged over the last epoch's minibatches.",
}


def _ppo_trial(cfg, seed: int):
    from lecturekit.course.updatecheck import Trial, cartpole_spaces, synthetic_rollout, warm_up
    from lecturekit.nets import ActorCritic

    def make():
        model = ActorCritic(*cartpole_spaces(), hidden=(32, 32), generator=torch.Generator().manual_seed(seed))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        warm_up([opt], seed)
        ro = synthetic_rollout(model, cfg.n_steps, cfg.n_envs, seed, logp_noise=0.3)
        gen = torch.Generator().manual_seed(100 + seed)
        return Trial(args=(model, opt, ro, cfg, gen), groups={"actor": model.pi, "critic": model.v},
                     optimizers={"opt": opt}, inputs={"ro": ro})

    return make


def _ppo_config(**kw):
    from lecturekit.algos import ppo

    return ppo.Config(**kw)


@checker("ppo_update")
def check_ppo_update(fn, train: bool = True) -> None:
    """Check `fn(model, opt, ro, cfg, gen) -> dict`, the whole PPO update, in three layers: one update (epochs of
    minibatches) on fixed rollouts matches the reference (`lecturekit.algos.ppo.update`) within a relative 1e-4 on
    every gradient, parameter change and Adam state; the known silent bugs are named; and with `train=True` it trains
    CartPole-v1 to 475 through `ppo.train(..., update=fn)` within PPO_BUDGET steps on one of PPO_SEEDS."""
    from functools import partial

    from lecturekit.algos import ppo
    from lecturekit.course.updatecheck import Mistake, check_training, check_update, train_with, trained
    from lecturekit.evaluation import Run

    c = Check("ppo_update")
    mistakes = [Mistake(k, partial(_ppo_variant, bug=k), h) for k, h in PPO_MISTAKES.items()]
    accepted = [partial(_ppo_variant, bug="population_std")]  # std without Bessel's correction: as good
    trials = [
        ("one update (3 epochs x 4 minibatches) on a rollout of T=16 steps in N=4 CartPole copies, stored log-probs "
         "of an older policy", _ppo_config(n_envs=4, n_steps=16, epochs=3, minibatches=4, lr=5e-3, entropy_coef=0.01,
                                                   max_grad_norm=0.5),
         1),
        ("one update with normalize_adv=False, max_grad_norm=0 (no clipping), clip_eps=0.1, 2 epochs x 3 minibatches",
         _ppo_config(n_envs=5, n_steps=8, epochs=2, minibatches=3, lr=3e-3, entropy_coef=0.0, clip_eps=0.1,
                     normalize_adv=False, max_grad_norm=0.0), 2),
    ]
    for case, cfg, seed in trials:
        check_update(c, fn, ppo.update, _ppo_trial(cfg, seed), case=case, mistakes=mistakes, accepted=accepted,
                     stats_keys=PPO_UPDATE_KEYS, group_hints=PPO_GROUP_HINTS, stat_hints=PPO_STAT_HINTS)
    summary = f"{len(trials)} one-update checks, {len(mistakes)} known mistakes ruled out"
    if train:
        run = lambda s: Run(steps=PPO_BUDGET, seed=s, target=475.0, eval_every=2048)  # noqa: E731
        result = check_training(c, lambda s: train_with(ppo, "CartPole-v1", ppo.Config(), run(s), fn),
                                seeds=PPO_SEEDS, budget=PPO_BUDGET, target=475.0, task="CartPole-v1")
        summary += "; " + trained(result)
    c.passed(summary)
