"""Checkers of part 4: they accept differently written correct answers and reject the real mistakes with the hint
that names them."""
from __future__ import annotations

import pytest
import torch

from lecturekit.course.checking import CheckFailed
from lecturekit.checks import check_conjugate_gradient, check_kl_categorical, check_trpo_line_search
from lecturekit.course.checks.trpo import _line_search_variant


def rejects(check, fn, *fragments):
    with pytest.raises(CheckFailed) as e:
        check(fn)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"expected {f!r} in the message:\n{msg}"
    return msg


def not_implemented(*args, **kwargs):
    raise NotImplementedError("not implemented yet: replace this line with your code")


@pytest.mark.parametrize("check", [check_kl_categorical, check_conjugate_gradient, check_trpo_line_search])
def test_stub_says_not_implemented(check):
    rejects(check, not_implemented, "not implemented yet")


@pytest.mark.parametrize("check", [check_kl_categorical, check_conjugate_gradient, check_trpo_line_search])
def test_not_a_function_and_returning_none(check):
    with pytest.raises(CheckFailed, match="expected your function"):
        check(None)
    rejects(check, lambda *a, **k: None, "returned None")


# --- kl_categorical -------------------------------------------------------------------------------------------------
def kl_logsumexp(logits_p, logits_q):
    # written differently: log p = l - logsumexp(l); KL = E_p[log p] - E_p[log q]
    logp = logits_p - torch.logsumexp(logits_p, -1, keepdim=True)
    logq = logits_q - torch.logsumexp(logits_q, -1, keepdim=True)
    p = torch.exp(logp)
    return (p * logp).sum(-1) - (p * logq).sum(-1)


def kl_distributions_clamped(logits_p, logits_q):
    d = torch.distributions
    p, q = d.Categorical(logits=logits_p), d.Categorical(logits=logits_q)
    return (p.probs * (p.logits - q.logits)).sum(-1)


def test_kl_accepts_correct_answers():
    check_kl_categorical(kl_logsumexp)
    check_kl_categorical(kl_distributions_clamped)


def test_kl_rejects_naive_softmax_that_overflows():
    def naive(lp, lq):
        p, q = torch.exp(lp) / torch.exp(lp).sum(-1, keepdim=True), torch.exp(lq) / torch.exp(lq).sum(-1, keepdim=True)
        return (p * torch.log(p / q)).sum(-1)

    rejects(check_kl_categorical, naive, "logits around 1000", "NaN or inf", "log_softmax")


def test_kl_rejects_log_of_softmax_for_extreme_logits():
    def log_of_softmax(lp, lq):
        p = torch.softmax(lp, -1)
        return (p * (torch.log(p) - torch.log(torch.softmax(lq, -1)))).sum(-1)

    rejects(check_kl_categorical, log_of_softmax, "nearly deterministic", "NaN or inf")


def test_kl_rejects_named_mistakes():
    rejects(check_kl_categorical, lambda lp, lq: kl_logsumexp(lq, lp), "KL(q || p)")
    rejects(check_kl_categorical, lambda lp, lq: -kl_logsumexp(lp, lq), "sign is flipped")
    rejects(check_kl_categorical, lambda lp, lq: (torch.softmax(lp, -1) * (lp - lq)).sum(-1), "not log-probabilities")
    rejects(check_kl_categorical, lambda lp, lq: kl_logsumexp(lp, lq) / lp.shape[-1], "averaged over the actions")
    rejects(check_kl_categorical,
            lambda lp, lq: (torch.softmax(lp, 0) * (torch.log_softmax(lp, 0) - torch.log_softmax(lq, 0))).sum(-1),
            "last dimension")
    rejects(check_kl_categorical,
            lambda lp, lq: torch.softmax(lp, -1) * (torch.log_softmax(lp, -1) - torch.log_softmax(lq, -1)),
            "shape")


def test_kl_rejects_in_place_modification_and_exceptions():
    def in_place(lp, lq):
        lp -= torch.logsumexp(lp, -1, keepdim=True)
        lq -= torch.logsumexp(lq, -1, keepdim=True)
        return (lp.exp() * (lp - lq)).sum(-1)

    rejects(check_kl_categorical, in_place, "modified its input")
    rejects(check_kl_categorical, lambda lp, lq: torch.log_softmax(lp, dim=1).sum(-1), "raised an exception",
            "IndexError")


# --- conjugate_gradient ---------------------------------------------------------------------------------------------
def cg_top_check(Avp, b, iters=10, tol=1e-10):
    # written differently: residual test at the top of the loop, explicit r = b - A x with x = 0 (no product needed)
    x = b.new_zeros(b.shape)
    r = b - 0 * b
    p = r.clone()
    for _ in range(iters):
        rr = r.dot(r)
        if rr < tol:
            break
        Ap = Avp(p)
        alpha = rr / p.dot(Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        p = r + (r.dot(r) / rr) * p
    return x


def cg_with_initial_product(Avp, b, iters=10, tol=1e-10):
    # also correct: r = b - A x0 computed with a product (x0 = 0), stopping test after the update
    x = torch.zeros_like(b)
    r = b - Avp(x)
    p = r.clone()
    rr = r @ r
    if rr < tol:
        return x
    for _ in range(iters):
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + rr_new / rr * p
        rr = rr_new
    return x


def test_cg_accepts_correct_answers():
    check_conjugate_gradient(cg_top_check)
    check_conjugate_gradient(cg_with_initial_product)


def cg_mistake(kind):
    def cg(Avp, b, iters=10, tol=1e-10):
        x = torch.zeros_like(b)
        r = b if kind == "in_place" else b.clone()
        p = r.clone()
        rr = r @ r
        n_iter = iters + (1 if kind == "one_more" else -1 if kind == "one_less" else 0)
        for _ in range(n_iter):
            if kind != "no_stop" and rr < tol:
                break
            Ap = Avp(p)
            alpha = rr / (p @ Ap)
            x = x + alpha * p
            if kind == "in_place":
                r -= alpha * Ap
            else:
                r = r - alpha * Ap
            rr_new = r @ r
            beta = {"inverted_beta": rr / rr_new, "steepest": 0.0}.get(kind, rr_new / rr)
            p = r + beta * p
            rr = rr_new
        return x
    return cg


def cg_direct_solve(Avp, b, iters=10, tol=1e-10):
    A = torch.stack([Avp(e) for e in torch.eye(len(b), dtype=b.dtype)], 1)
    return torch.linalg.solve(A, b)


@pytest.mark.parametrize("kind, fragments", [
    ("no_stop", ["residual is exactly 0", "NaN or inf", "0/0"]),
    ("one_more", ["off by one"]),
    ("one_less", ["off by one", "run 5"]),
    ("inverted_beta", ["new over old"]),
    ("steepest", ["steepest descent"]),
    ("in_place", ["modified its input `b`"]),
])
def test_cg_rejects_mistakes(kind, fragments):
    rejects(check_conjugate_gradient, cg_mistake(kind), *fragments)


def test_cg_rejects_forming_and_solving_the_matrix():
    rejects(check_conjugate_gradient, cg_direct_solve, "exact solution")


def test_cg_rejects_nan_on_zero_b_and_wrong_dtype():
    def textbook_check_after_update(Avp, b, iters=10, tol=1e-10):
        x, r, p = torch.zeros_like(b), b.clone(), b.clone()
        rr = r @ r
        for _ in range(iters):
            Ap = Avp(p)
            alpha = rr / (p @ Ap)
            x, r = x + alpha * p, r - alpha * Ap
            rr_new = r @ r
            if rr_new < tol:
                break
            p, rr = r + rr_new / rr * p, rr_new
        return x

    rejects(check_conjugate_gradient, textbook_check_after_update, "b = 0", "before the first step")
    rejects(check_conjugate_gradient, lambda Avp, b, iters=10, tol=1e-10: cg_top_check(Avp, b, iters, tol).float(),
            "dtype")


# --- trpo_line_search -----------------------------------------------------------------------------------------------
def ls_while_loop(theta, full_step, surrogate, kl, max_kl, backtrack=0.5, max_steps=10):
    # written differently: a while loop with a running step fraction
    base, frac, tried = surrogate(theta), 1.0, 0
    while tried < max_steps:
        cand = theta + frac * full_step
        if surrogate(cand) > base and kl(cand) <= max_kl:
            return cand
        frac *= backtrack
        tried += 1
    return theta.clone()


def test_line_search_accepts_correct_answers():
    check_trpo_line_search(ls_while_loop)
    check_trpo_line_search(lambda *a, **k: _line_search_variant(*a, **k))


@pytest.mark.parametrize("variant, fragment", [
    (dict(first_j=1), "j = 0"),
    (dict(extra=1), "max_steps - 1"),
    (dict(strict_kl=True), "use <="),
    (dict(weak_improve=True), "strictly"),
    (dict(last_if_none=True), "return theta unchanged"),
    (dict(no_improve_check=True), "does not improve"),
    (dict(no_kl_check=True), "outside the trust region"),
])
def test_line_search_rejects_mistakes(variant, fragment):
    rejects(check_trpo_line_search, lambda *a, **k: _line_search_variant(*a, **k, **variant), fragment)


def test_line_search_rejects_in_place_update_and_list_result():
    def in_place(theta, full_step, surrogate, kl, max_kl, backtrack=0.5, max_steps=10):
        base = surrogate(theta)
        start = theta.clone()
        for j in range(max_steps):
            theta.copy_(start + backtrack**j * full_step)
            if surrogate(theta) > base and kl(theta) <= max_kl:
                return theta
        theta.copy_(start)
        return theta

    rejects(check_trpo_line_search, in_place, "modified its input `theta`")
    rejects(check_trpo_line_search, lambda *a, **k: ls_while_loop(*a, **k).tolist(), "return a torch tensor")
