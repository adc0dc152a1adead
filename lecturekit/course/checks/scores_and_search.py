"""Checkers of part 1's exercises: softmax score, Gaussian log-density, finite-difference gradient, CEM update,
and the log-derivative trick of the policy gradient theorem.

Expected values come from independent computations (autograd, torch.distributions, the lecturekit references), and
each known wrong answer is computed so that its hint can say what went wrong.
"""
from __future__ import annotations

import numpy as np
import torch

from lecturekit.algos.gradient_free import cem_update, finite_difference_gradient
from lecturekit.course.checking import Check, checker, describe

_LOG_2PI = float(np.log(2 * np.pi))


# ---------------------------------------------------------------------------------------------------- softmax_score
def _softmax(h: np.ndarray) -> np.ndarray:
    z = np.exp(h - h.max())
    return z / z.sum()


def _autograd_score(logits, action) -> np.ndarray:
    h = torch.tensor(np.asarray(logits, dtype=np.float64), requires_grad=True)
    torch.log_softmax(h, -1)[action].backward()
    return h.grad.numpy()


@checker("softmax_score")
def check_softmax_score(fn) -> None:
    """Check `fn(logits, action)` = grad_h log softmax(h)[action] = e_action - softmax(h)."""
    c = Check("softmax_score")
    rng = np.random.default_rng(1)
    cases = [
        (np.array([0.0, 0.0]), 0),
        (np.array([1.0, 2.0, 3.0]), 2),
        (np.array([0.5, -1.0, 2.0, 0.0]), 1),
        (np.array([1, 2, 3]), 0),                      # integer logits: the score is still a float array
        (np.array([1000.0, 0.0, -1000.0]), 1),         # large logits: exp(1000) overflows
        (np.array([1000.0, 1000.0]), 0),
        (rng.normal(size=10) * 3, 7),
    ]
    for logits, action in cases:
        case = f"logits={describe(logits)}, action={action}"
        got = c.call(fn, logits, action, case=case)
        h = logits.astype(np.float64)
        pi, onehot = _softmax(h), np.eye(len(h))[action]
        c.expect_close(got, _autograd_score(logits, action), case=case, atol=1e-8, mistakes={
            "sign": (pi - onehot, "the sign is flipped: the score is e_a - softmax(h), not softmax(h) - e_a."),
            "no_softmax": (onehot, "you returned only the one-hot e_a: the derivative of log sum_b exp(h_b) adds "
                                   "-softmax(h) to every entry."),
            "no_onehot": (-pi, "the +1 at the taken action is missing: d h_a / d h = e_a."),
            "softmax": (pi, "you returned softmax(h) itself; the score is the gradient of its log at the action."),
            "grad_pi": (pi[action] * (onehot - pi), "that is the gradient of pi(a), not of log pi(a): divide by "
                                                    "pi(a) (score = grad pi / pi)."),
            "log_softmax": (h - np.log(np.exp(h - h.max()).sum()) - h.max(),
                            "you returned log softmax(h), the values; the exercise asks for its gradient."),
        }, hint="score = e_action - softmax(logits); compute softmax after subtracting max(logits) so that large "
                "logits do not overflow.")
    c.passed(f"{len(cases)} cases, 2 to 10 actions, integer logits and logits of +-1000")


# ---------------------------------------------------------------------------------------------------- gaussian_log_prob
def _reference_gaussian(x, mu, log_std) -> torch.Tensor:
    return torch.distributions.Normal(mu.double(), log_std.double().exp()).log_prob(x.double()).sum(-1)


def _gaussian_mistakes(x, mu, log_std) -> dict:
    x, mu, log_std = x.double(), mu.double(), log_std.double()
    std = log_std.exp()
    z2 = ((x - mu) / std) ** 2
    per_dim = -0.5 * z2 - log_std - 0.5 * _LOG_2PI
    return {
        "no_log_std": ((-0.5 * z2 - 0.5 * _LOG_2PI).sum(-1), "the normaliser -log sigma is missing from each dimension."),
        "no_2pi": ((-0.5 * z2 - log_std).sum(-1), "the constant -log(2 pi)/2 per dimension is missing."),
        "full_2pi": ((-0.5 * z2 - log_std - _LOG_2PI).sum(-1), "the constant is -log(2 pi)/2 per dimension, not -log(2 pi)."),
        "var_as_std": ((-0.5 * (x - mu) ** 2 / std - log_std - 0.5 * _LOG_2PI).sum(-1),
                       "divide the squared distance by sigma^2 = exp(2 log_std), not by sigma."),
        "log_std_as_std": ((-0.5 * ((x - mu) / log_std) ** 2 - log_std - 0.5 * _LOG_2PI).sum(-1),
                           "log_std is the log of sigma: use sigma = exp(log_std)."),
        "no_half": ((-z2 - log_std - 0.5 * _LOG_2PI).sum(-1), "the quadratic term is -(x - mu)^2 / (2 sigma^2): the 1/2 "
                                                              "is missing."),
        "mean": (per_dim.mean(-1), "average over dimensions instead of sum: a diagonal Gaussian's log-density is the "
                                   "sum of the per-dimension log-densities."),
    }


@checker("gaussian_log_prob")
def check_gaussian_log_prob(fn) -> None:
    """Check `fn(x, mu, log_std)` = sum_d log N(x_d; mu_d, exp(log_std_d)^2) over the last dimension, in torch."""
    c = Check("gaussian_log_prob")
    g = torch.Generator().manual_seed(0)

    def t(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    cases = [
        ("x=[0.], mu=[0.], log_std=[0.] (standard normal at its mean)", torch.zeros(1), torch.zeros(1), torch.zeros(1)),
        ("x=[1., -1.], mu=[0.5, 0.], log_std=[0., 0.]", torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.0]),
         torch.zeros(2)),
        ("x=[2.], mu=[1.], log_std=[-1.]", torch.tensor([2.0]), torch.tensor([1.0]), torch.tensor([-1.0])),
        ("D=3 with log_std=[0.5, -0.3, 1.2]", t(3), t(3), torch.tensor([0.5, -0.3, 1.2], dtype=torch.float64)),
        ("a batch x, mu of shape (4, 2), log_std of shape (2,) (state-independent)", t(4, 2), t(4, 2), t(2, scale=0.5)),
        ("x, mu, log_std of shape (2, 3, 5)", t(2, 3, 5), t(2, 3, 5), t(2, 3, 5, scale=0.5)),
        ("float32 tensors of shape (8, 6)", t(8, 6).float(), t(8, 6).float(), t(6, scale=0.3).float()),
    ]
    for case, x, mu, log_std in cases:
        got = c.call(fn, x, mu, log_std, case=case)
        c.expect_tensor(got, _reference_gaussian(x, mu, log_std), case=case, mistakes=_gaussian_mistakes(x, mu, log_std),
                        hint="log N(x; mu, sigma^2) per dimension is -(x - mu)^2 / (2 sigma^2) - log sigma - log(2 pi)/2 "
                             "with sigma = exp(log_std); sum it over the last dimension.")
    # gradients must flow to mu and log_std (no .numpy(), .item() or .detach() inside)
    case = "x of shape (3, 2) with mu and log_std requiring gradients"
    x, mu, log_std = t(3, 2), t(3, 2).requires_grad_(True), t(2, scale=0.5).requires_grad_(True)
    got = c.call(fn, x, mu, log_std, case=case)
    if not isinstance(got, torch.Tensor) or not got.requires_grad:
        c.fail(case, expected="a tensor that requires grad (it depends on mu and log_std)", got=got,
               hint="keep the computation in torch and do not detach: the policy gradient flows through this value.")
    try:
        got_grads = torch.autograd.grad(got.sum(), [mu, log_std])
    except Exception as e:  # e.g. a tensor rebuilt from numpy values
        c.fail(case, got=f"{type(e).__name__}: {e}", hint="the result is not connected to mu and log_std in the graph.")
    mu2, ls2 = mu.detach().clone().requires_grad_(True), log_std.detach().clone().requires_grad_(True)
    ref_grads = torch.autograd.grad(_reference_gaussian(x, mu2, ls2).sum(), [mu2, ls2])
    for name, gg, rg in zip(("mu", "log_std"), got_grads, ref_grads):
        c.expect_tensor(gg, rg, case=f"{case}: the gradient with respect to {name}",
                        hint="the value is right but its gradient is not: is part of the formula detached or computed "
                             "outside torch?")
    c.passed(f"{len(cases)} cases from D=1 to batches of shape (2, 3, 5), broadcast log_std, float32, gradients")


# ---------------------------------------------------------------------------------------------------- finite differences
def _fd_mistakes(f, theta, eps) -> dict:
    th = np.asarray(theta, dtype=np.float64)
    fwd, bwd = np.zeros_like(th), np.zeros_like(th)
    f0 = f(th.copy())
    for k in range(th.size):
        e = np.zeros_like(th)
        e[k] = eps
        fwd[k] = (f(th + e) - f0) / eps
        bwd[k] = (f0 - f(th - e)) / eps
    central = finite_difference_gradient(f, th, eps)
    rounded = finite_difference_gradient(lambda v: f(np.trunc(v)), th, eps)
    return {
        "forward": (fwd, "that is the forward difference (f(theta + eps e_k) - f(theta)) / eps; use the central one "
                         "(f(theta + eps e_k) - f(theta - eps e_k)) / (2 eps)."),
        "backward": (bwd, "that is the backward difference; use the central one (both sides, divided by 2 eps)."),
        "no_half": (2 * central, "divide by 2 eps: the two evaluations are 2 eps apart."),
        "sign": (-central, "the sign is flipped: (f(theta + eps e_k) - f(theta - eps e_k)), plus side first."),
        "int_copy": (rounded, "theta has an integer dtype here, so theta.copy() + eps rounds the perturbation away: "
                              "make a float copy (np.array(theta, dtype=float))."),
    }


@checker("finite_difference_gradient")
def check_finite_difference_gradient(fn) -> None:
    """Check `fn(f, theta, eps)` = central differences (f(theta + eps e_k) - f(theta - eps e_k)) / (2 eps)."""
    c = Check("finite_difference_gradient")
    funcs = {
        "f(theta) = 3 theta_0": lambda v: 3.0 * v[0],
        "f(theta) = sum(theta**2)": lambda v: float(np.sum(v ** 2)),
        "f(theta) = sum(theta**3)": lambda v: float(np.sum(v ** 3)),
        "f(theta) = sin(theta_0) * theta_1 + theta_2**3": lambda v: float(np.sin(v[0]) * v[1] + v[2] ** 3),
        "f(theta) = -sum((theta - 1)**4) (10 parameters)": lambda v: float(-np.sum((v - 1.0) ** 4)),
    }
    cases = [
        ("f(theta) = 3 theta_0", np.array([2.0]), 1e-3),
        ("f(theta) = sum(theta**2)", np.array([1.0, -2.0]), 1e-4),
        ("f(theta) = sum(theta**3)", np.array([1.0, 2.0, -0.5]), 0.1),       # large eps: central != forward
        ("f(theta) = sum(theta**3)", np.array([1, 2]), 0.1),                 # integer theta
        ("f(theta) = sin(theta_0) * theta_1 + theta_2**3", np.array([0.3, -1.2, 0.7]), 0.05),
        ("f(theta) = -sum((theta - 1)**4) (10 parameters)", np.linspace(-1, 2, 10), 0.2),
    ]
    for name, theta, eps in cases:
        f = funcs[name]
        case = f"{name}, theta={describe(theta)}, eps={eps}"
        got = c.call(fn, f, theta, eps, case=case)
        c.expect_close(got, finite_difference_gradient(f, theta, eps), case=case, rtol=1e-6, atol=1e-8,
                       mistakes=_fd_mistakes(f, theta, eps),
                       hint="g_k = (f(theta + eps e_k) - f(theta - eps e_k)) / (2 eps) for every k, on float copies.")
    c.passed(f"{len(cases)} functions and parameter vectors (1 to 10 parameters, integer theta, large eps)")


# ---------------------------------------------------------------------------------------------------- cem_update
def _cem_mistakes(samples, scores, elite_frac) -> dict:
    N = len(scores)
    k = max(1, int(elite_frac * N))
    order = np.argsort(-scores, kind="stable")
    top = samples[order[:k]]
    worst = samples[np.argsort(scores, kind="stable")[:k]]
    m = {
        "ascending": ((worst.mean(0), worst.std(0)), "you kept the lowest scores: the elite are the samples with the "
                                                     "largest scores (sort descending, or take the end of argsort)."),
        "ddof1": ((top.mean(0), top.std(0, ddof=1) if k > 1 else np.full(samples.shape[1], np.nan)),
                  "use the population std (ddof=0, np.std's default), not the sample std (ddof=1)."),
        "variance": ((top.mean(0), top.var(0)), "you returned the variance: the second output is the std."),
        "all": ((samples.mean(0), samples.std(0)), "you used every sample: keep only the elite (top fraction)."),
    }
    for label, kk in (("ceil", int(np.ceil(elite_frac * N))), ("plus_one", k + 1), ("round", int(round(elite_frac * N)))):
        kk = max(1, min(N, kk))
        if kk != k:
            e = samples[order[:kk]]
            m[label] = ((e.mean(0), e.std(0)), f"{kk} elite samples used, but the number of elite is "
                                               f"max(1, int(elite_frac * N)) = {k} (int() rounds down).")
    return m


@checker("cem_update")
def check_cem_update(fn) -> None:
    """Check `fn(samples, scores, elite_frac)` = (mean, std with ddof=0) of the top max(1, int(elite_frac N)) samples."""
    c = Check("cem_update")
    rng = np.random.default_rng(2)
    cases = [
        ("4 samples of D=1, elite_frac=0.5", np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([1.0, 4.0, 2.0, 3.0]),
         0.5),
        ("4 samples of D=2, elite_frac=0.5", np.array([[0.0, 0.0], [1.0, 1.0], [9.0, 9.0], [3.0, 5.0]]),
         np.array([1.0, 5.0, -2.0, 7.0]), 0.5),
        ("10 samples, elite_frac=0.25 (int(2.5) = 2 elite)", rng.normal(size=(10, 3)), rng.permutation(10) * 1.0, 0.25),
        ("5 samples, elite_frac=0.1 (at least one elite)", rng.normal(size=(5, 2)), rng.normal(size=5), 0.1),
        ("7 samples with negative scores, elite_frac=0.3", rng.normal(size=(7, 4)), -rng.random(7) * 100, 0.3),
        ("64 samples of D=10, elite_frac=0.2 (12 elite, as in CartPole)", rng.normal(size=(64, 10)),
         rng.permutation(64) * 7.5 + 9.0, 0.2),
    ]
    for case, samples, scores, frac in cases:
        got = c.call(fn, samples, scores, frac, case=case)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            c.fail(case, expected="a pair (mean, std)", got=got,
                   hint="return two arrays: `return mean, std`.")
        mean, std = cem_update(samples, scores, frac)
        mistakes = _cem_mistakes(samples, scores, frac)
        hint = "sort by score (largest first), keep the first max(1, int(elite_frac * N)) rows, and take their mean and " \
               "std over axis 0."
        c.expect_close(got[0], mean, case=case + ": the mean", hint=hint,
                       mistakes={k: (v[0][0], v[1]) for k, v in mistakes.items()})
        c.expect_close(got[1], std, case=case + ": the std", hint=hint,
                       mistakes={k: (v[0][1], v[1]) for k, v in mistakes.items()})
    c.passed(f"{len(cases)} cases, 4 to 64 samples, elite counts rounded down, at least one elite")


# ----------------------------------------------------------------------------------------- log_derivative_gradient
def _log_derivative_mistakes(logits, rewards) -> dict:
    pi, r = _softmax(np.asarray(logits, dtype=np.float64)), np.asarray(rewards, dtype=np.float64)
    A = len(pi)
    scores = np.eye(A) - pi  # row a: grad log pi(a) = e_a - pi
    return {
        "sign": (-(pi * r) @ scores, "the sign is flipped: the gradient of E[r] is +sum_a pi(a) r(a) grad log pi(a)."),
        "no_pi": (r @ scores, "each action's term must be weighted by its probability: the log-derivative trick "
                              "writes grad sum_a pi(a) r(a) = sum_a pi(a) r(a) grad log pi(a), an expectation under pi."),
        "grad_pi": ((pi * pi * r) @ scores, "you weighted by pi(a) twice: pi(a) (e_a - pi) is grad pi(a) itself; the "
                                            "trick replaces grad pi(a) by pi(a) grad log pi(a), with grad log pi(a) = "
                                            "e_a - pi."),
        "e_a_only": (pi * r, "grad log pi(a) = e_a - pi, not e_a: the normaliser of the softmax depends on every logit."),
        "minus_e_a": ((pi * r) @ (pi - np.eye(A)) if A else None, "the score is e_a - pi, not pi - e_a."),
    }


@checker("log_derivative_gradient")
def check_log_derivative_gradient(fn) -> None:
    """Check `fn(logits, rewards)` = sum_a pi(a) r(a) (e_a - pi), compared with autograd of E_pi[r] = softmax(h) . r."""
    c = Check("log_derivative_gradient")
    rng = np.random.default_rng(3)
    cases = [
        (np.array([0.0]), np.array([2.0])),                        # one action: nothing to choose, gradient 0
        (np.array([0.0, 0.0]), np.array([1.0, 0.0])),
        (np.array([1.0, -1.0, 0.5]), np.array([1.0, 2.0, -1.0])),
        (np.array([0, 2, 1]), np.array([3, 0, 1])),                # ints: the answer must be floats
        (np.array([1000.0, 999.0, 0.0]), np.array([1.0, 0.0, 5.0])),  # large logits: subtract the max
        (rng.normal(size=10), rng.normal(size=10)),
    ]
    for logits, rewards in cases:
        case = f"logits={logits.tolist()}, rewards={rewards.tolist()}" if len(logits) <= 3 else \
            f"{len(logits)} actions with random logits and rewards"
        got = c.call(fn, logits, rewards, case=case)
        h = torch.tensor(np.asarray(logits, dtype=np.float64), requires_grad=True)
        (expected,) = torch.autograd.grad(torch.softmax(h, -1) @ torch.as_tensor(rewards, dtype=torch.float64), h)
        c.expect_close(got, expected.numpy(), case=case, rtol=1e-6, atol=1e-9,
                       mistakes=_log_derivative_mistakes(logits, rewards))
    c.passed(f"{len(cases)} cases from 1 to 10 actions, int inputs, logits up to 1000, compared with autograd")
