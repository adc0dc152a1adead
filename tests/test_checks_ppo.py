"""Part 5 checkers (gae, ppo_clip_loss, clipping_case) reject the real mistakes and accept correct answers written
differently from the reference."""
import numpy as np
import pytest
import torch

from lecturekit.checks import CheckFailed, check_clipping_case, check_gae, check_ppo_clip_loss


def rejected(check, fn, *fragments):
    with pytest.raises(CheckFailed) as e:
        check(fn)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in message:\n{msg}"
    return msg


# --- gae: right answers ---------------------------------------------------------------------------------------------
def gae_loop(rewards, values, terminated, last_value, gamma, lam):
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    d = np.asarray(terminated, float)
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):  # one environment at a time, scalar code
        a = 0.0
        for t in reversed(range(T)):
            nv = last_value[n] if t == T - 1 else v[t + 1, n]
            delta = r[t, n] + gamma * (1 - d[t, n]) * nv - v[t, n]
            a = delta + gamma * lam * (1 - d[t, n]) * a
            adv[t, n] = a
    return adv


def gae_by_sum(rewards, values, terminated, last_value, gamma, lam):
    # A_t = sum_l (gamma lam)^l delta_{t+l}, the sum stopping after the first terminated step
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    d = np.asarray(terminated, bool)
    T, N = r.shape
    nv = np.vstack([v[1:], np.asarray(last_value, float)[None]])
    delta = r + gamma * np.where(d, 0.0, nv) - v
    adv = np.zeros((T, N))
    for t in range(T):
        for n in range(N):
            w = 1.0
            for k in range(t, T):
                adv[t, n] += w * delta[k, n]
                if d[k, n]:
                    break
                w *= gamma * lam
    return adv


def gae_torch_float32(rewards, values, terminated, last_value, gamma, lam):
    r = torch.as_tensor(np.asarray(rewards), dtype=torch.float32)
    v = torch.as_tensor(np.asarray(values), dtype=torch.float32)
    nd = 1.0 - torch.as_tensor(np.asarray(terminated), dtype=torch.float32)
    nv = torch.cat([v[1:], torch.as_tensor(np.asarray(last_value), dtype=torch.float32)[None]])
    delta = r + gamma * nd * nv - v
    out, run = torch.zeros_like(r), torch.zeros(r.shape[1])
    for t in range(r.shape[0] - 1, -1, -1):
        run = delta[t] + gamma * lam * nd[t] * run
        out[t] = run
    return out.numpy()


@pytest.mark.parametrize("fn", [gae_loop, gae_by_sum, gae_torch_float32])
def test_gae_accepts_correct_answers(fn, capsys):
    check_gae(fn)
    assert "all checks passed" in capsys.readouterr().out


# --- gae: wrong answers -----------------------------------------------------------------------------------------------
def _variant(**kw):
    from lecturekit.course.checks.ppo import _gae_variant

    return lambda r, v, d, lv, gamma, lam: _gae_variant(r, v, d, lv, gamma, lam, **kw)


def gae_in_place(rewards, values, terminated, last_value, gamma, lam):
    rewards[-1] += gamma * (1 - terminated[-1]) * last_value  # reuses the rewards array as scratch space
    return gae_loop(rewards, values, terminated, np.zeros_like(last_value), gamma, lam)


@pytest.mark.parametrize("fn, fragment", [
    (_variant(done_in_delta=False), "must not bootstrap"),
    (_variant(done_in_rec=False), "leaks across episode boundaries"),
    (_variant(done_in_delta=False, done_in_rec=False), "nor pass on A_{t+1}"),
    (_variant(shift_done=True), "off by one at episode ends"),
    (_variant(use_last=False), "last_value"),
    (_variant(next_v=False), "NEXT state"),
    (_variant(use_lam=False), "lambda is missing"),
    (lambda r, v, d, lv, g, lam: gae_loop(r, v, d, lv, g, 0.0), "one-step TD error"),
    (lambda r, v, d, lv, g, lam: gae_loop(r, v, d, lv, g, lam) + v, "value targets"),
    (lambda r, v, d, lv, g, lam: gae_loop(r, v, d, lv, g, lam).astype(int), "float array"),
    (lambda r, v, d, lv, g, lam: torch.as_tensor(gae_loop(r, v, d, lv, g, lam)), "not a torch tensor"),
    (lambda r, v, d, lv, g, lam: gae_loop(r, v, d, lv, g, lam)[:, 0], "shape"),
    (lambda r, v, d, lv, g, lam: None, "return"),
    (gae_in_place, "modified its input `rewards`"),
])
def test_gae_rejects_mistakes(fn, fragment):
    rejected(check_gae, fn, "gae: wrong answer", fragment)


def test_gae_forward_loop_named():
    from lecturekit.course.checks.ppo import _gae_forward

    # T = 1 cases cannot tell the direction apart; the first T = 3 case does
    rejected(check_gae, _gae_forward, "backwards in time", "rewards=[[1.0], [0.0], [2.0]]")


def test_gae_not_implemented():
    def stub(*args):
        raise NotImplementedError("write gae")

    rejected(check_gae, stub, "not implemented yet")


def test_gae_smallest_case_named():
    msg = rejected(check_gae, _variant(use_last=False))
    assert "rewards=[[1.0]]" in msg and "expected" in msg and "got" in msg


# --- ppo_clip_loss ------------------------------------------------------------------------------------------------
def clip_by_where(logp, logp_old, adv, clip_eps):
    r = (logp - logp_old.detach()).exp()
    a = adv.detach()
    surr1, surr2 = r * a, r.clamp(1 - clip_eps, 1 + clip_eps) * a
    return -torch.where(surr1 < surr2, surr1, surr2).mean()


def clip_by_cases(logp, logp_old, adv, clip_eps):
    # for A >= 0 the min is min(r, 1 + eps) A; for A < 0 it is max(r, 1 - eps) A
    r = torch.exp(logp - logp_old.detach())
    a = adv.detach()
    pos = torch.minimum(r, torch.tensor(1 + clip_eps, dtype=r.dtype)) * a
    neg = torch.maximum(r, torch.tensor(1 - clip_eps, dtype=r.dtype)) * a
    return -torch.where(a >= 0, pos, neg).sum() / len(a)


def clip_with_no_grad(logp, logp_old, adv, clip_eps):
    with torch.no_grad():
        lo, a = logp_old.clone(), adv.clone()
    ratio = torch.exp(logp - lo)
    return -torch.min(ratio * a, torch.clip(ratio, 1 - clip_eps, 1 + clip_eps) * a).mean()


@pytest.mark.parametrize("fn", [clip_by_where, clip_by_cases, clip_with_no_grad])
def test_clip_loss_accepts_correct_answers(fn, capsys):
    check_ppo_clip_loss(fn)
    assert "all checks passed" in capsys.readouterr().out


def _clip(ratio_fn=None, combine=torch.min, sign=-1.0, reduce="mean", detach_old=True, detach_adv=True,
          clip_what="ratio"):
    def fn(logp, logp_old, adv, clip_eps):
        lo = logp_old.detach() if detach_old else logp_old
        a = adv.detach() if detach_adv else adv
        r = ratio_fn(logp, lo) if ratio_fn else torch.exp(logp - lo)
        clipped = torch.clamp(r, 1 - clip_eps, 1 + clip_eps) * a if clip_what == "ratio" else \
            torch.clamp(r * a, 1 - clip_eps, 1 + clip_eps)
        obj = combine(r * a, clipped)
        return sign * (obj.mean() if reduce == "mean" else obj.sum())
    return fn


@pytest.mark.parametrize("fn, fragment", [
    (_clip(sign=1.0), "sign is flipped"),
    (_clip(combine=torch.max), "not the max"),
    (_clip(combine=lambda u, c: u), "clipped term is missing"),
    (_clip(combine=lambda u, c: c), "clipped AND the unclipped"),
    (_clip(ratio_fn=lambda lp, lo: torch.exp(lo - lp)), "upside down"),
    (_clip(ratio_fn=lambda lp, lo: lp - lo), "log of the ratio"),
    (_clip(ratio_fn=lambda lp, lo: lp / lo), "not the probability ratio"),
    (_clip(reduce="sum"), ".sum()"),
    (_clip(clip_what="product"), "clip the ratio r, not the product"),
    (_clip(detach_old=False), "logp_old.detach()"),
    (_clip(detach_adv=False), "adv.detach()"),
    (lambda lp, lo, a, e: _clip()(lp, lo, a, e).item(), "torch tensor"),
    (lambda lp, lo, a, e: _clip()(lp.detach(), lo, a, e), "detached from logp"),
    (lambda lp, lo, a, e: -torch.min(torch.exp(lp - lo) * a, torch.clamp(torch.exp(lp - lo), 1 - e, 1 + e) * a),
     "forget .mean()"),
    (lambda lp, lo, a, e: _clip()(lp, lo, a, e) + 0.0 * lo.sum(), None),  # harmless: zero gradient into logp_old
])
def test_clip_loss_rejects_mistakes(fn, fragment):
    if fragment is None:
        check_ppo_clip_loss(fn)  # a zero gradient into logp_old is no gradient at all
        return
    rejected(check_ppo_clip_loss, fn, "ppo_clip_loss", fragment)


def test_clip_loss_wrong_gradient_only():
    # right value, but the gradient passes through the clamp everywhere (straight-through clip)
    def straight_through(logp, logp_old, adv, clip_eps):
        r = torch.exp(logp - logp_old.detach())
        rc = r + (torch.clamp(r, 1 - clip_eps, 1 + clip_eps) - r).detach()
        return -torch.min(r * adv.detach(), rc * adv.detach()).mean()

    rejected(check_ppo_clip_loss, straight_through, "gradient with respect to logp")


# --- clipping_case ------------------------------------------------------------------------------------------------
def case_by_hand(ratio, adv, clip_eps):
    lo, hi = 1 - clip_eps, 1 + clip_eps
    unclipped, clipped = ratio * adv, min(max(ratio, lo), hi) * adv
    if clipped < unclipped:
        return {"value": clipped, "clipped": True, "gradient": 0.0}
    return {"value": unclipped, "clipped": False, "gradient": adv}


def case_by_autograd(ratio, adv, clip_eps):
    r = torch.tensor(ratio, requires_grad=True)
    u, c = r * adv, torch.clamp(r, 1 - clip_eps, 1 + clip_eps) * adv
    v = torch.minimum(u, c)
    v.backward()
    return {"value": v.item(), "clipped": bool(c < u), "gradient": r.grad.item(), "extra": "ignored"}


def case_finite_difference(ratio, adv, clip_eps):
    f = lambda r: min(r * adv, float(np.clip(r, 1 - clip_eps, 1 + clip_eps)) * adv)  # noqa: E731
    h = 1e-6
    return {"value": np.float64(f(ratio)), "clipped": np.bool_(f(ratio) < ratio * adv),
            "gradient": (f(ratio + h) - f(ratio - h)) / (2 * h)}


@pytest.mark.parametrize("fn", [case_by_hand, case_by_autograd, case_finite_difference])
def test_clipping_case_accepts_correct_answers(fn, capsys):
    check_clipping_case(fn)
    assert "all checks passed" in capsys.readouterr().out


def lecture_bullets(ratio, adv, clip_eps):
    # what the lecture's bullet list says: clipped (zero gradient) whenever r is outside the interval against A's sign
    out = case_by_hand(ratio, adv, clip_eps)
    if (adv < 0 and ratio > 1 + clip_eps) or (adv > 0 and ratio < 1 - clip_eps):
        out = {"value": out["value"], "clipped": True, "gradient": 0.0}
    return out


@pytest.mark.parametrize("fn, fragment", [
    (lecture_bullets, "depends on the sign of A"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "clipped": not (1 - e <= r <= 1 + e)}, "depends on the sign of A"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "value": max(r * a, min(max(r, 1 - e), 1 + e) * a)}, "not the max"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "value": min(max(r, 1 - e), 1 + e) * a}, "BOTH terms"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "gradient": -case_by_hand(r, a, e)["gradient"]}, "flip the sign"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "gradient": a}, "gradient is 0"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "gradient": a if 1 - e <= r <= 1 + e else 0.0},
     "not zero whenever r is outside"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "clipped": int(case_by_hand(r, a, e)["clipped"])}, "True or False"),
    (lambda r, a, e: (1.0, False, a), "keys"),
    (lambda r, a, e: {"value": r * a}, "keys"),
    (lambda r, a, e: {**case_by_hand(r, a, e), "value": [r * a]}, "return a number"),
])
def test_clipping_case_rejects_mistakes(fn, fragment):
    rejected(check_clipping_case, fn, "clipping_case", fragment)


def test_clipping_case_not_implemented():
    def stub(ratio, adv, clip_eps):
        raise NotImplementedError

    rejected(check_clipping_case, stub, "not implemented yet")
