"""Checkers of part 4 (natural gradient and TRPO): KL between softmax policies, conjugate gradient, the TRPO line
search.  References: `lecturekit.optim`."""
from __future__ import annotations

import math

import torch

from lecturekit.course.checking import Check, CheckFailed, checker
from lecturekit.optim import conjugate_gradient, kl_categorical, trpo_line_search


# --- kl_categorical -------------------------------------------------------------------------------------------------
def _kl_mistakes(lp: torch.Tensor, lq: torch.Tensor) -> dict:
    """What the common wrong answers give, each with the hint that explains it (computed in float64)."""
    lp, lq = lp.double(), lq.double()
    p = torch.softmax(lp, -1)
    right = kl_categorical(lp, lq)
    mistakes = {
        "reversed": (kl_categorical(lq, lp), "you computed KL(q || p): the expectation is under p, the first argument "
                                             "(sum_a p(a) (log p(a) - log q(a)))."),
        "sign": (-right, "the sign is flipped: KL(p || q) = sum_a p(a) log(p(a) / q(a)) >= 0."),
        "raw_logits": ((p * (lp - lq)).sum(-1), "logits are not log-probabilities: normalise them first with "
                                                "torch.log_softmax(logits, dim=-1) (a softmax followed by log)."),
        "mean": (right / lp.shape[-1], "you averaged over the actions: KL sums over them (.sum(-1), not .mean(-1))."),
    }
    if lp.dim() >= 2:
        p0, lsp0, lsq0 = torch.softmax(lp, 0), torch.log_softmax(lp, 0), torch.log_softmax(lq, 0)
        mistakes["dim0"] = ((p0 * (lsp0 - lsq0)).sum(-1), "normalise over the last dimension (the actions, dim=-1): "
                                                          "the leading dimensions index states.")
    return mistakes


@checker("kl_categorical")
def check_kl_categorical(fn) -> None:
    """Check `fn(logits_p, logits_q)` = KL(softmax(logits_p) || softmax(logits_q)) per row, shape (...)."""
    c = Check("kl_categorical")
    g = torch.Generator().manual_seed(4)
    cases = [
        ("two actions, p uniform, q = (1/4, 3/4)", torch.tensor([0.0, 0.0]), torch.tensor([0.0, math.log(3.0)])),
        ("identical logits (KL = 0)", torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.5, -1.0, 2.0])),
        ("a batch of 3 states, 4 actions", torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)),
        ("a batch of shape (2, 3) with 5 actions", 2 * torch.randn(2, 3, 5, generator=g),
         2 * torch.randn(2, 3, 5, generator=g)),
        ("logits around 1000 (the same distributions as logits around 0)",
         torch.tensor([[1000.0, 999.0, 997.0], [1000.0, 1000.0, 990.0]]),
         torch.tensor([[998.0, 1000.0, 999.5], [995.0, 1000.0, 1000.0]])),
        ("nearly deterministic p = softmax([1000, 0]) against q = softmax([0, 1000])",
         torch.tensor([1000.0, 0.0]), torch.tensor([0.0, 1000.0])),
        ("logits of very different sizes", torch.tensor([[-1000.0, 0.0, 1000.0]]), torch.tensor([[0.0, 10.0, 20.0]])),
    ]
    for case, lp, lq in cases:
        got = c.call(fn, lp, lq, case=f"{case}: logits_p={lp.tolist()}, logits_q={lq.tolist()}"
                     if lp.numel() <= 6 else f"{case} (logits_p shape {tuple(lp.shape)})")
        expected = kl_categorical(lp.double(), lq.double()).float()
        c.expect_tensor(got, expected, case=case, rtol=1e-4, atol=1e-5, mistakes=_kl_mistakes(lp, lq),
                        hint="KL(p || q) = sum_a p(a) (log p(a) - log q(a)) over the last dimension; compute the "
                             "log-probabilities with torch.log_softmax (stable for large logits), never log(softmax).")
    c.passed(f"{len(cases)} cases: single rows, batches, logits up to 1000")


# --- conjugate_gradient ---------------------------------------------------------------------------------------------
def _spd(n: int, cond: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return Q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ Q.T


def _cg_variant(A: torch.Tensor, b: torch.Tensor, iters: int, tol: float, beta_mode: str = "right") -> torch.Tensor:
    """CG, optionally with a wrong direction update (for the mistakes' values)."""
    x, r, p = torch.zeros_like(b), b.clone(), b.clone()
    for _ in range(iters):
        rr = r @ r
        if rr < tol:
            break
        Ap = A @ p
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * (A @ p)
        beta = {"right": (r @ r) / rr, "inverted": rr / (r @ r), "steepest": 0.0}[beta_mode]
        p = r + beta * p
    return x


class _CountingAvp:
    """v -> A v that counts its calls and refuses anything that is not a 1-D tensor of the right size."""

    def __init__(self, A: torch.Tensor):
        self.A, self.calls = A, 0

    def __call__(self, v):
        self.calls += 1
        if not isinstance(v, torch.Tensor) or v.shape != (self.A.shape[0],):
            raise TypeError(f"Avp expects a 1-D tensor of length {self.A.shape[0]}, got "
                            f"{type(v).__name__} {tuple(getattr(v, 'shape', ()))}")
        return self.A.to(v.dtype) @ v


@checker("conjugate_gradient")
def check_conjugate_gradient(fn) -> None:
    """Check `fn(Avp, b, iters, tol)` against the reference conjugate gradient (and a direct solve)."""
    c = Check("conjugate_gradient")
    A2 = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    cases = [
        ("A = 2 I (2 x 2), b = [1, -2]: one iteration solves it, then the residual is exactly 0",
         2.0 * torch.eye(2, dtype=torch.float64), torch.tensor([1.0, -2.0], dtype=torch.float64), 10, 1e-10),
        ("A = [[4, 1], [1, 3]], b = [1, 2]", A2, torch.tensor([1.0, 2.0], dtype=torch.float64), 10, 1e-10),
        ("b = 0 (x = 0 is already exact)", A2, torch.zeros(2, dtype=torch.float64), 10, 1e-10),
        ("A = 2 I (6 x 6) with iters=50: must stop once the residual is below tol",
         2.0 * torch.eye(6, dtype=torch.float64), torch.arange(1.0, 7.0, dtype=torch.float64), 50, 1e-10),
        ("a 5 x 5 SPD matrix, iters=5 (CG's n steps solve an n x n system)", _spd(5, 10.0, 0),
         torch.linspace(-1, 1, 5, dtype=torch.float64), 5, 1e-12),
        ("a 10 x 10 SPD matrix with condition number 100, only iters=3", _spd(10, 100.0, 1),
         torch.ones(10, dtype=torch.float64), 3, 1e-10),
        ("a 50 x 50 SPD matrix in float32, iters=10", _spd(50, 30.0, 2).float(),
         torch.linspace(0.5, -1.5, 50), 10, 1e-10),
    ]
    for case, A, b, iters, tol in cases:
        avp = _CountingAvp(A)
        label = f"{case} (iters={iters}, tol={tol:g})"
        got = c.call(fn, avp, b, iters, tol, case=label)
        expected = conjugate_gradient(lambda v: A @ v, b, iters, tol)
        A64, b64 = A.double(), b.double()
        mistakes = {
            "exact": (torch.linalg.solve(A64, b64), "that is the exact solution A^-1 b, but only `iters` CG "
                      "iterations (one Avp each) may be used: never form A or solve it directly."),
            "one_less": (_cg_variant(A64, b64, iters - 1, tol), f"off by one: that is CG after {iters - 1} "
                         f"iterations; run {iters}."),
            "one_more": (_cg_variant(A64, b64, iters + 1, tol), f"off by one: that is CG after {iters + 1} "
                         f"iterations; run {iters}."),
            "inverted_beta": (_cg_variant(A64, b64, iters, tol, "inverted"),
                              "the direction update uses beta = r_new.r_new / r_old.r_old (new over old)."),
            "steepest": (_cg_variant(A64, b64, iters, tol, "steepest"),
                         "that is steepest descent: the next direction is p = r + beta p, not just r."),
        }
        c.expect_tensor(got, expected, case=label, rtol=1e-4 if b.dtype == torch.float32 else 1e-6,
                        atol=1e-5 if b.dtype == torch.float32 else 1e-9, mistakes=mistakes,
                        hint="start from x = 0, r = p = b; each iteration: alpha = r.r / p.Ap, x += alpha p, "
                             "r -= alpha Ap, stop if r.r < tol, p = r + (r_new.r_new / r_old.r_old) p. A NaN means a "
                             "division 0/0: stop as soon as the squared residual is below tol (also before the first "
                             "step, when b = 0).")
        if avp.calls > iters + 1:
            c.fail(label, expected=f"at most {iters} calls of Avp (one per iteration)", got=f"{avp.calls} calls",
                   hint="conjugate gradient needs one product A p per iteration; stop after `iters` iterations.")
        if got.dtype != b.dtype:
            c.fail(label, expected=f"dtype {b.dtype}", got=f"dtype {got.dtype}",
                   hint="build x with torch.zeros_like(b) so it has b's dtype.")
    c.passed(f"{len(cases)} systems from 2 x 2 to 50 x 50, early stop, b = 0, truncated runs")


# --- trpo_line_search -----------------------------------------------------------------------------------------------
def _quadratic_case(theta, full_step, peak, max_kl, **kw):
    """surrogate(t) = -|t - peak|^2, kl(t) = |t - theta|^2 / 2."""
    theta, full_step, peak = (torch.tensor(v, dtype=torch.float64) for v in (theta, full_step, peak))
    th0 = theta.clone()
    surrogate = lambda t: -float(((t - peak) ** 2).sum())  # noqa: E731
    kl = lambda t: 0.5 * float(((t - th0) ** 2).sum())  # noqa: E731
    return theta, full_step, surrogate, kl, max_kl, kw


def _line_search_variant(theta, full_step, surrogate, kl, max_kl, backtrack=0.5, max_steps=10, *, first_j=0,
                         extra=0, strict_kl=False, weak_improve=False, last_if_none=False, no_improve_check=False,
                         no_kl_check=False):
    """The reference line search with one deliberate mistake switched on (for the mistakes' values)."""
    base = surrogate(theta)
    cand = theta
    for j in range(first_j, max_steps + extra):
        cand = theta + backtrack**j * full_step
        d, s = kl(cand), surrogate(cand)
        kl_ok = no_kl_check or (d < max_kl if strict_kl else d <= max_kl)
        imp_ok = no_improve_check or (s >= base if weak_improve else s > base)
        if kl_ok and imp_ok:
            return cand
    return cand if last_if_none else theta


_LS_MISTAKES = {
    "first_j": (dict(first_j=1), "the first candidate is the full step itself (j = 0: alpha^0 = 1)."),
    "extra": (dict(extra=1), "off by one: try j = 0 .. max_steps - 1 (max_steps candidates), no more."),
    "strict_kl": (dict(strict_kl=True), "a candidate whose KL equals max_kl is inside the trust region: use <=."),
    "weak_improve": (dict(weak_improve=True), "the surrogate must improve strictly (>): a step that changes nothing "
                                              "is not an improvement."),
    "last_if_none": (dict(last_if_none=True), "when no candidate qualifies, return theta unchanged, not the last "
                                              "(smallest) candidate."),
    "no_improve": (dict(no_improve_check=True), "you accepted a candidate that does not improve the surrogate: check "
                                                "surrogate(candidate) > surrogate(theta)."),
    "no_kl": (dict(no_kl_check=True), "you accepted a candidate outside the trust region: check kl(candidate) <= "
                                      "max_kl."),
}


@checker("trpo_line_search")
def check_trpo_line_search(fn) -> None:
    """Check `fn(theta, full_step, surrogate, kl, max_kl, backtrack, max_steps)` on hand-made landscapes."""
    c = Check("trpo_line_search")
    flat = lambda t: 1.0  # noqa: E731
    cases = [
        ("the full step is good (peak beyond it, generous max_kl)", _quadratic_case([1.0, 2.0], [0.5, -0.5],
                                                                                    [2.0, 1.0], 1.0)),
        ("theta = 0, full step 4, peak at 1, max_kl = 0.5: j = 2 lands exactly on the KL bound",
         _quadratic_case([0.0], [4.0], [1.0], 0.5)),
        ("the full step overshoots the peak: only a shorter step improves", _quadratic_case([0.0], [2.0], [0.3], 10.0)),
        ("a step in the wrong direction: nothing improves", _quadratic_case([0.0, 0.0], [1.0, 1.0], [-1.0, -1.0],
                                                                            10.0)),
        ("a flat surrogate: nothing improves strictly", (torch.tensor([0.5, -0.5], dtype=torch.float64),
                                                         torch.tensor([1.0, 2.0], dtype=torch.float64), flat,
                                                         lambda t: 0.0, 0.1, {})),
        ("max_kl so small that no candidate of the 10 fits", _quadratic_case([0.0], [1.0], [1.0], 1e-9)),
        ("only j = 3 fits the KL bound but max_steps = 3", _quadratic_case([0.0], [8.0], [1.0], 0.5, max_steps=3)),
        ("backtrack = 0.8, max_steps = 5", _quadratic_case([0.0, 1.0], [3.0, -3.0], [0.5, 0.5], 1.0, backtrack=0.8,
                                                           max_steps=5)),
    ]
    for case, (theta, full_step, surrogate, kl, max_kl, kw) in cases:
        label = f"{case}: theta={theta.tolist()}, full_step={full_step.tolist()}, max_kl={max_kl:g}" + (
            "".join(f", {k}={v}" for k, v in kw.items()))
        got = c.call(fn, theta, full_step, surrogate, kl, max_kl, case=label, **kw)
        expected = trpo_line_search(theta, full_step, surrogate, kl, max_kl, **kw)
        mistakes = {name: (_line_search_variant(theta, full_step, surrogate, kl, max_kl, **kw, **variant), hint)
                    for name, (variant, hint) in _LS_MISTAKES.items()}
        c.expect_tensor(got, expected, case=label, rtol=1e-9, atol=1e-12, mistakes=mistakes,
                        hint="try theta + backtrack**j * full_step for j = 0, 1, ..., max_steps - 1 and return the "
                             "first one with surrogate(candidate) > surrogate(theta) and kl(candidate) <= max_kl; "
                             "return theta if none qualifies.")
    c.passed(f"{len(cases)} landscapes: accepted at j = 0, on the KL bound, after overshooting, and rejected")


__all__ = ["check_kl_categorical", "check_conjugate_gradient", "check_trpo_line_search", "CheckFailed"]


# --- tabular_fisher and natural_gradient_step (the natural gradient on the small MDP) ---------------------------------
def _fisher_ref(pi: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """F = block_diag_s d(s) (diag(pi_s) - pi_s pi_s^T), the (S*A, S*A) Fisher matrix of a tabular softmax policy."""
    return torch.block_diag(*[d[s] * (torch.diag(pi[s]) - torch.outer(pi[s], pi[s])) for s in range(pi.shape[0])])


def _fisher_mistakes(pi, d) -> dict:
    S = pi.shape[0]
    flat, drep = pi.reshape(-1), d.repeat_interleave(pi.shape[1])
    return {
        "no_d": (_fisher_ref(pi, torch.ones_like(d)), "each state's block is weighted by its visitation d(s), as "
                                                      "given (not 1, not normalised to sum 1): "
                                                      "F = sum_s d(s) (diag(pi_s) - pi_s pi_s^T)."),
        "normalized_d": (_fisher_ref(pi, d / d.sum()), "use d(s) as given (the discounted visitation, not normalised "
                                                       "to sum to 1)."),
        "diag_only": (torch.diag(flat * drep), "the outer product -pi_s pi_s^T is missing: the score e_a - pi_s has "
                                               "covariance diag(pi_s) - pi_s pi_s^T."),
        "outer_only": (_fisher_ref(pi, d) - torch.diag(flat * drep), "diag(pi_s) is missing: the covariance of the "
                                                                     "score is diag(pi_s) - pi_s pi_s^T."),
        "full_outer": (torch.diag(flat * drep) - torch.outer(flat * drep.sqrt(), flat * drep.sqrt()) if S > 1 else None,
                       "the blocks of different states must be zero: a state's score has no entries in another "
                       "state's logits (F is block-diagonal)."),
        "squared_d": (_fisher_ref(pi, d * d), "d(s) multiplies each block once, not squared."),
    }


def _fisher_cases():
    from lecturekit.tabular.mdp import small_mdp

    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    mdp = small_mdp()
    theta = torch.as_tensor(torch.randn(mdp.n_states, mdp.n_actions, generator=torch.Generator().manual_seed(0),
                                        dtype=torch.float64))
    return [
        ("one state, two actions, pi = [0.5, 0.5], d = [1]", t([[0.5, 0.5]]), t([1.0])),
        ("one state, three actions, d = [2]", t([[0.2, 0.3, 0.5]]), t([2.0])),
        ("two states, d = [1.5, 0.5]", t([[0.9, 0.1], [0.4, 0.6]]), t([1.5, 0.5])),
        ("the small MDP at random logits (5 states, 3 actions)", mdp.policy(theta),
         mdp.discounted_state_visitation(theta)),
    ]


@checker("tabular_fisher")
def check_tabular_fisher(fn) -> None:
    """Check `fn(pi, d)` -> (S*A, S*A) against the block-diagonal Fisher matrix of a tabular softmax policy."""
    c = Check("tabular_fisher")
    cases = _fisher_cases()
    for case, pi, d in cases:
        got = c.call(fn, pi.clone(), d.clone(), case=case)
        c.expect_tensor(got, _fisher_ref(pi, d), case=case, rtol=1e-6, atol=1e-9, mistakes=_fisher_mistakes(pi, d),
                        hint="F = block_diag_s d(s) (diag(pi_s) - pi_s pi_s^T) over the flattened (S*A) logits, "
                             "state-major (index s * A + a).")
    c.passed(f"{len(cases)} cases from 1 state to the small MDP")


def _natural_ref(g: torch.Tensor, F: torch.Tensor, max_kl: float) -> torch.Tensor:
    x = torch.linalg.pinv(F) @ g
    return torch.sqrt(2 * max_kl / (x @ F @ x)) * x


def _natural_mistakes(g, F, max_kl) -> dict:
    x = torch.linalg.pinv(F) @ g
    beta = lambda v: torch.sqrt(2 * max_kl / (v @ F @ v))  # noqa: E731
    return {
        "vanilla": (beta(g) * g, "this is the vanilla gradient scaled to the KL radius: the natural direction is "
                                 "x = F^+ g (solve F x = g), not g."),
        "F_times_g": (beta(F @ g) * (F @ g), "multiply by the INVERSE of F: x solves F x = g (F^+ g), it is not F g."),
        "unscaled": (x, "the direction is right but not scaled: step = sqrt(2 max_kl / (x^T F x)) x so that the "
                        "quadratic KL 0.5 step^T F step equals max_kl."),
        "no_two": (torch.sqrt(max_kl / (x @ F @ x)) * x, "the factor 2 is missing: 0.5 step^T F step = max_kl gives "
                                                         "beta = sqrt(2 max_kl / (x^T F x))."),
        "sqrt_missing": ((2 * max_kl / (x @ F @ x)) * x, "take the square root: beta = sqrt(2 max_kl / (x^T F x))."),
        "x_dot_g": (torch.sqrt(2 * max_kl / (x @ g)) * x if (x @ g) > 0 else None, None),
    }


def _natural_cases():
    from lecturekit.tabular.mdp import small_mdp

    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    mdp = small_mdp()
    cases = [("F = diag(1, 4) (invertible), g = [1, 1], max_kl = 0.5", t([1.0, 1.0]), torch.diag(t([1.0, 4.0])), 0.5),
             ("one state, three actions: F is singular (adding a constant to the logits changes nothing)",
              t([0.2, -0.5, 0.3]), _fisher_ref(t([[0.2, 0.3, 0.5]]), t([1.0])), 0.01)]
    for seed in (0, 1):
        theta = torch.randn(mdp.n_states, mdp.n_actions, generator=torch.Generator().manual_seed(seed),
                            dtype=torch.float64) * (1 + 2 * seed)
        F = _fisher_ref(mdp.policy(theta), mdp.discounted_state_visitation(theta))
        cases.append((f"the small MDP at random logits (seed {seed}, 15 x 15 singular F)",
                      mdp.exact_gradient(theta).reshape(-1), F, 0.01))
    return cases


@checker("natural_gradient_step")
def check_natural_gradient_step(fn) -> None:
    """Check `fn(grad, F, max_kl)`: the natural step F^+ g scaled to 0.5 step^T F step = max_kl.

    Steps are compared after projecting out the null space of F (directions that add a constant to one state's logits
    and leave the policy unchanged), so a pseudo-inverse, lstsq or a tiny damping are all accepted.
    """
    c = Check("natural_gradient_step")
    cases = _natural_cases()
    for case, g, F, max_kl in cases:
        try:
            got = c.call(fn, g.clone(), F.clone(), max_kl, case=case)
        except CheckFailed as e:
            if "singular" not in str(e).lower():
                raise
            c.fail(case, got=str(e).split("got:", 1)[-1].split("\n")[0].strip(),
                   hint="F is singular here (adding a constant to one state's logits changes nothing), so it has no "
                        "inverse: use torch.linalg.pinv(F) @ g or torch.linalg.lstsq.")
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(g.shape) and got.dtype.is_floating_point:
            proj = torch.linalg.pinv(F) @ F  # onto the directions that change the policy
            got = proj @ got.detach().double()
        c.expect_tensor(got, _natural_ref(g, F, max_kl), case=case + " (the step, up to policy-neutral directions)",
                        rtol=1e-4, atol=1e-7,
                        mistakes={k: (v, h) for k, (v, h) in _natural_mistakes(g, F, max_kl).items() if v is not None
                                  and h},
                        hint="x = F^+ g (torch.linalg.pinv or lstsq: F is singular), then step = sqrt(2 max_kl / "
                             "(x^T F x)) x.")
    c.passed(f"{len(cases)} cases: invertible and singular F, the small MDP")


# --- fisher_vector_product (build-it, part 1) -----------------------------------------------------------------------
def _fvp_variant(model, obs, damping, bug: str | None = None):
    """v -> (F + damping I) v for the actor of a softmax ActorCritic, F = Hessian of the mean KL(pi_k || pi_theta)
    at theta_k, by double backpropagation; with one bug if asked."""
    params = list(model.pi.parameters())
    old = model.pi(obs)
    if bug != "old_not_detached":
        old = old.detach()
    kl = kl_categorical(old, model.pi(obs))
    kl = kl.sum() if bug == "sum_kl" else kl.mean()
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(kl, params, create_graph=True)])

    def fvp(v):
        hv = torch.autograd.grad(g @ v, params, retain_graph=True, allow_unused=True)
        hv = torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(hv, params)])
        return hv if bug == "no_damping" else hv + damping * v

    return fvp


def _fvp_model(seed: int):
    from lecturekit.course.updatecheck import cartpole_spaces
    from lecturekit.nets import ActorCritic

    model = ActorCritic(*cartpole_spaces(), hidden=(8, 8), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():  # logits of a policy that has learned something (not the near-uniform initial one)
        model.pi[-1].weight.mul_(100.0)
    return model


@checker("fisher_vector_product")
def check_fisher_vector_product(fn) -> None:
    """Check `fn(model, obs, damping) -> fvp` with fvp(v) = (F + damping I) v, F the Fisher matrix of the actor's
    parameters `list(model.pi.parameters())` (flattened in that order) on the states `obs`, against the explicit
    matrix mean_s sum_a pi(a|s) grad log pi grad log pi^T (`optim.fisher_matrix_categorical`)."""
    from lecturekit.optim import fisher_matrix_categorical

    c = Check("fisher_vector_product")
    for seed, B, damping in [(0, 6, 0.0), (1, 32, 0.1), (2, 64, 0.01)]:
        model = _fvp_model(seed)
        obs = torch.randn(B, 4, generator=torch.Generator().manual_seed(seed))
        P = sum(p.numel() for p in model.pi.parameters())
        F = fisher_matrix_categorical(model.pi, obs) + damping * torch.eye(P)
        case = f"an actor 4-8-8-2 ({P} parameters), {B} states, damping={damping}"
        fvp = c.call(fn, model, obs, damping, case=case)
        if not callable(fvp):
            c.fail(case, expected="a function v -> (F + damping I) v", got=fvp,
                   hint="return the function (e.g. `def fvp(v): ...` then `return fvp`), not its value.")
        mistakes = {}
        for bug, hint in FVP_MISTAKES.items():
            try:
                mistakes[bug] = _fvp_variant(model, obs, damping, bug)
            except Exception:  # pragma: no cover
                pass
        gen = torch.Generator().manual_seed(10 + seed)
        for k in range(3):  # the same fvp is called several times (conjugate gradient does): keep the graph
            v = torch.randn(P, generator=gen)
            vcase = f"{case}: product number {k + 1} with a random v"
            got = c.call(fvp, v.clone(), case=vcase)
            if k == 0:
                c.expect_tensor(got, F @ v, case=vcase, rtol=1e-4, atol=1e-6,
                                mistakes={b: (f(v), FVP_MISTAKES[b]) for b, f in mistakes.items()},
                                hint="fvp(v) = d/dtheta (grad KL . v) + damping v, with KL = mean over the states "
                                     "of KL(pi_k(.|s) || pi_theta(.|s)) and pi_k's logits detached.")
            else:
                c.expect_tensor(got, F @ v, case=vcase, rtol=1e-4, atol=1e-6,
                                hint="the first product was right but a later one is not: build the gradient of the "
                                     "KL once (create_graph=True) and use retain_graph=True in each product.")
    c.passed("3 actors and batches, 9 products compared with the explicit Fisher matrix")


FVP_MISTAKES = {
    "no_damping": "add damping * v to the product: conjugate gradient solves (F + damping I) x = g.",
    "sum_kl": "average the KL over the states (.mean()), do not sum it: F is an expectation over states.",
    "old_not_detached": "pi_k's logits must be constants (.detach() or torch.no_grad()): with both sides depending "
                        "on theta, KL(pi_theta || pi_theta) is 0 for every theta and its Hessian is 0.",
}


# --- trpo_update (build-it, part 2): the assembly of the TRPO step and the critic update ----------------------------
TRPO_UPDATE_KEYS = ("kl", "surrogate_gain", "value_loss")
TRPO_BUDGET, TRPO_SEEDS = 60_000, (0, 1)  # layer 3: CartPole-v1 475 within this many env steps on one of these seeds


def _trpo_variant(model, vf_opt, ro, cfg, bug: str | None = None, fvp_fn=None) -> dict:
    """The TRPO update written out step by step (independently of `lecturekit.algos.trpo`), with one bug if asked."""
    import math

    from lecturekit.optim import conjugate_gradient as cg

    adv, ret = ro.advantages(cfg.gamma, cfg.gae_lambda)
    m = torch.ones(ro.valid.shape, dtype=torch.bool) if bug == "no_mask" else torch.as_tensor(ro.valid)
    obs, act, logp_old, adv, ret = ro.obs[m], ro.actions[m], ro.logp[m], adv[m], ret[m]
    if cfg.normalize_adv and bug != "no_normalize":
        adv = (adv - adv.mean()) / (adv.std(unbiased=bug != "population_std") + 1e-8)
    params = list(model.pi.parameters())
    old_logits = model.pi(obs).detach()

    def surrogate():
        return (torch.exp(model.log_prob(obs, act) - logp_old) * adv).mean()

    def mean_kl():
        new = model.pi(obs)
        return (kl_categorical(new, old_logits) if bug == "kl_reversed" else kl_categorical(old_logits, new)).mean()

    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(surrogate(), params)])
    fvp = (fvp_fn or _fvp_variant)(model, obs, cfg.damping, "no_damping" if bug == "no_damping" else None)
    x = g if bug == "vanilla" else cg(fvp, g, cfg.cg_iters)
    d = g if bug == "beta_from_g" else x
    beta = math.sqrt((1.0 if bug == "no_two" else 2.0) * cfg.max_kl / float(d @ fvp(d)))
    step = -beta * x if bug == "minus" else beta * x
    theta = torch.cat([p.detach().reshape(-1) for p in params])

    def put(th):
        i = 0
        with torch.no_grad():
            for p in params:
                p.copy_(th[i:i + p.numel()].view_as(p))
                i += p.numel()

    with torch.no_grad():
        base = float(surrogate())
        new_theta, kl_v, gain = theta, 0.0, 0.0
        for j in range(1 if bug == "no_line_search" else cfg.max_backtracks):
            cand = theta + cfg.backtrack ** j * step
            put(cand)
            k, s = float(mean_kl()), float(surrogate())
            if bug == "no_line_search" or ((k <= cfg.max_kl or bug == "ls_no_kl") and
                                           (s > base or bug == "ls_no_improve")):
                new_theta, kl_v, gain = cand, k, s - base
                break
        put(new_theta)
        if new_theta is theta:
            kl_v, gain = 0.0, 0.0
    n = len(obs)
    kk = max(1, min(cfg.vf_minibatches, n))
    for i in range(cfg.vf_iters):
        idx = slice(None) if bug == "vf_full_batch" else slice(i % kk, None, kk)
        v_l = (model.value(obs[idx]) - ret[idx]).pow(2).mean()
        if bug != "vf_no_zero_grad":
            vf_opt.zero_grad()
        v_l.backward()
        vf_opt.step()
    return {"kl": kl_v, "surrogate_gain": gain, "value_loss": float(v_l.detach())}


TRPO_MISTAKES = {
    "vanilla": "the step goes along the plain gradient g: TRPO's direction is x = F^{-1} g, from conjugate gradient "
               "with your Fisher-vector product.",
    "no_two": "the step size is beta = sqrt(2 delta / (x^T F x)): the quadratic model of the KL is 1/2 s^T F s, "
              "so the 2 belongs there.",
    "beta_from_g": "the step size uses the direction you step along: beta = sqrt(2 delta / (x^T F x)) with "
                   "x = F^{-1} g, not g^T F g.",
    "minus": "step uphill: theta + beta x (the surrogate is maximised), not theta - beta x.",
    "no_line_search": "the full step is not always safe: try theta + backtrack^j * beta x for j = 0, 1, ... and take "
                      "the first candidate that improves the surrogate and whose exact mean KL is at most max_kl.",
    "ls_no_kl": "the line search must also check the exact mean KL of each candidate (<= cfg.max_kl), not only the "
                "surrogate's improvement.",
    "ls_no_improve": "the line search must also require an improvement of the surrogate (strictly larger than at "
                     "theta_k), not only a KL within the radius.",
    "no_damping": "conjugate gradient solves (F + cfg.damping I) x = g: pass the damping to the Fisher-vector "
                  "product.",
    "no_normalize": "cfg.normalize_adv is True: standardise the advantages, (A - mean) / (std + 1e-8), before the "
                    "surrogate.",
    "no_mask": "the autoreset steps (valid == False) are in your batch: keep only ro.valid steps.",
    "kl_reversed": "the line search's KL is KL(pi_k || pi_theta), the old policy first (kl_categorical(old_logits, "
                   "new_logits)).",
    "vf_no_zero_grad": "the critic's gradients accumulated: call vf_opt.zero_grad() before each backward().",
    "vf_full_batch": "the critic takes cfg.vf_iters steps on the minibatches obs[i % k::k] (k = cfg.vf_minibatches), "
                     "cycling through them, not on the whole batch.",
}

TRPO_GROUP_HINTS = {
    "actor": "The actor's change is the accepted line-search candidate theta_k + backtrack^j beta x: check the "
             "advantages, the gradient g of the surrogate, x = CG(F, g), beta = sqrt(2 delta / x^T F x) and the "
             "acceptance test (surrogate improves and exact KL <= max_kl).",
    "critic": "The critic takes cfg.vf_iters Adam steps on mean((V(s) - R)^2), R = A + V_old from ro.advantages, on "
              "the minibatches obs[i % k::k]: check the targets and the loop.",
    "steps": "the critic takes cfg.vf_iters steps of vf_opt per update.",
}

TRPO_STAT_HINTS = {
    "kl": "kl is the exact mean KL(pi_k || pi_new) of the accepted step (0.0 if every candidate was rejected).",
    "surrogate_gain": "surrogate_gain is L(theta_new) - L(theta_k) of the accepted step (0.0 if none).",
    "value_loss": "value_loss is the critic's loss on its last minibatch.",
}


def _trpo_trial(cfg, seed: int, confident: bool = False):
    from lecturekit.course.updatecheck import Trial, cartpole_spaces, synthetic_rollout, warm_up
    from lecturekit.nets import ActorCritic

    def make():
        model = ActorCritic(*cartpole_spaces(), hidden=(32, 32), generator=torch.Generator().manual_seed(seed))
        if confident:  # a policy far from uniform: the KL is far from its quadratic model and the search backtracks
            with torch.no_grad():
                model.pi[-1].weight.mul_(100.0)
        vf_opt = torch.optim.Adam(model.v.parameters(), lr=cfg.vf_lr)
        warm_up([vf_opt], seed)
        ro = synthetic_rollout(model, cfg.n_steps, cfg.n_envs, seed, logp_noise=0.2)
        return Trial(args=(model, vf_opt, ro, cfg), groups={"actor": model.pi, "critic": model.v},
                     optimizers={"vf_opt": vf_opt}, inputs={"ro": ro})

    return make


@checker("trpo_update")
def check_trpo_update(fn, train: bool = True) -> None:
    """Check `fn(model, vf_opt, ro, cfg) -> dict`, one TRPO update (natural-gradient step with line search, then the
    critic), in three layers: one update on fixed rollouts matches the reference (`lecturekit.algos.trpo.update`)
    within a relative 1e-3 (conjugate gradient amplifies rounding); the known silent bugs are named; and with
    `train=True` it trains CartPole-v1 to 475 through `trpo.train(..., update=fn)` within TRPO_BUDGET steps on one
    of TRPO_SEEDS."""
    from functools import partial

    from lecturekit.algos import trpo
    from lecturekit.course.updatecheck import Mistake, check_training, check_update, train_with, trained
    from lecturekit.evaluation import Run

    c = Check("trpo_update")
    mistakes = [Mistake(k, partial(_trpo_variant, bug=k), h) for k, h in TRPO_MISTAKES.items()]
    accepted = [partial(_trpo_variant, bug="population_std")]  # std without Bessel's correction: as good
    trials = [
        ("one update on a rollout of T=16 steps in N=8 CartPole copies, max_kl=0.01",
         trpo.Config(n_envs=8, n_steps=16, max_kl=0.01, vf_iters=5, vf_minibatches=2), 1),
        ("one update of a confident policy with a large trust region (max_kl=0.2, damping=0.001): the full step "
         "improves the surrogate but leaves the trust region, T=12, N=6",
         trpo.Config(n_envs=6, n_steps=12, max_kl=0.2, vf_iters=3, vf_minibatches=3, damping=0.001), 2),
        ("one update of another confident policy (max_kl=0.2, damping=0.001): the second candidate is inside the "
         "trust region but makes the surrogate worse, T=12, N=6",
         trpo.Config(n_envs=6, n_steps=12, max_kl=0.2, vf_iters=3, vf_minibatches=3, damping=0.001), 3),
    ]
    for case, cfg, seed in trials:
        check_update(c, fn, trpo.update, _trpo_trial(cfg, seed, confident="confident" in case), case=case,
                     mistakes=mistakes, accepted=accepted, rtol=1e-3, stat_rtol=1e-2, stats_keys=TRPO_UPDATE_KEYS,
                     group_hints=TRPO_GROUP_HINTS, stat_hints=TRPO_STAT_HINTS)
    summary = f"{len(trials)} one-update checks, {len(mistakes)} known mistakes ruled out"
    if train:
        run = lambda s: Run(steps=TRPO_BUDGET, seed=s, target=475.0, eval_every=2048)  # noqa: E731
        result = check_training(c, lambda s: train_with(trpo, "CartPole-v1", trpo.Config(), run(s), fn),
                                seeds=TRPO_SEEDS, budget=TRPO_BUDGET, target=475.0, task="CartPole-v1")
        summary += "; " + trained(result)
    c.passed(summary)
