"""Checkers of part 7 (SAC): squashed_gaussian_log_prob, sac_critic_target, sac_actor_loss, temperature_loss, and
the build-it sac_update.

Each checker runs the student's function on cases from small to large, compares values with the reference
(`lecturekit.distributions`, `lecturekit.algos.sac`), and then compares gradients, because the silent SAC bugs are
about where gradients flow: a target that is not detached, an alpha that the actor loss trains, a log-prob that the
temperature loss pushes on.
"""
from __future__ import annotations

import math

import torch

from lecturekit.algos import sac as _sac
from lecturekit.algos.sac import sac_actor_loss as _actor_ref
from lecturekit.algos.sac import sac_critic_target as _target_ref
from lecturekit.algos.sac import temperature_loss as _temp_ref
from lecturekit.buffers import Batch
from lecturekit.course.checking import Check, checker
from lecturekit.course.checks.td3 import (
    _box,
    _close,
    _critic_modules,
    _fixture_batch,
    _fixture_noise,
    _grads_in,
    _make_agent,
    _randomize,
    _Recorder,
    _train_layer,
    _update_trial,
    _with_variant,
)
from lecturekit.course.updatecheck import Mistake, check_update
from lecturekit.distributions import LOG_2PI, gaussian_log_prob, squashed_gaussian_log_prob as _sq_ref
from lecturekit.offpolicy import polyak_update as _polyak_update


def _leaf(x, requires_grad: bool = True) -> torch.Tensor:
    return x.detach().clone().requires_grad_(requires_grad)


def _grads(out: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """d sum(out) / d input for each input (None where the output does not depend on it)."""
    if not out.requires_grad:
        return [None] * len(inputs)
    return list(torch.autograd.grad(out.sum(), inputs, allow_unused=True, retain_graph=True))


def _expect_grads(c: Check, got_out, ref_out, got_inputs, ref_inputs, names, case: str, hints: dict) -> None:
    """Compare the gradients of the student's output with the reference's, input by input.

    hints[name] = (hint when the gradient is missing, hint when it is there but should not be / is wrong).
    """
    got_g = _grads(got_out, got_inputs)
    ref_g = _grads(ref_out, ref_inputs)
    for name, g, r in zip(names, got_g, ref_g):
        missing, wrong = hints.get(name, ("", ""))
        g_zero = g is None or not torch.any(g != 0)
        r_zero = r is None or not torch.any(r != 0)
        if r_zero and not g_zero:
            c.fail(f"{case} (gradient with respect to `{name}`)", expected="no gradient (None or zeros)", got=g,
                   hint=wrong)
        if not r_zero and g_zero:
            c.fail(f"{case} (gradient with respect to `{name}`)", expected=r, got="no gradient", hint=missing)
        if not r_zero:
            c.expect_tensor(g, r, case=f"{case} (gradient with respect to `{name}`)", rtol=1e-4, atol=1e-5,
                            hint=wrong)


# ------------------------------------------------------------------------------------- squashed_gaussian_log_prob
def _squashed_cases():
    g = torch.Generator().manual_seed(7)
    cases = [
        ("one action dimension, u = 0, mu = 0, log_std = 0 (shape (1,))",
         torch.zeros(1), torch.zeros(1), torch.zeros(1)),
        ("a batch of 3 one-dimensional actions (shape (3, 1))",
         torch.tensor([[0.5], [-1.0], [2.0]]), torch.tensor([[0.0], [0.3], [1.0]]),
         torch.tensor([[0.0], [-0.5], [0.2]])),
    ]
    mu, ls = torch.randn(5, 2, generator=g), 0.5 * torch.randn(5, 2, generator=g)
    cases.append(("a batch of 5 two-dimensional actions (shape (5, 2))",
                  mu + ls.exp() * torch.randn(5, 2, generator=g), mu, ls))
    mu, ls = torch.randn(4, 3, 3, generator=g), 0.3 * torch.randn(4, 3, 3, generator=g)
    cases.append(("extra batch dimensions (shape (4, 3, 3))",
                  mu + ls.exp() * torch.randn(4, 3, 3, generator=g), mu, ls))
    cases.append(("u near the action bounds, |u| up to 20 (float32)",
                  torch.tensor([[9.5, -3.0], [12.0, 20.0], [-20.0, 0.1]]), torch.tensor([[8.0, -2.0], [10.0, 15.0],
                                                                                          [-15.0, 0.0]]),
                  torch.tensor([[0.0, 0.0], [0.5, 1.0], [1.0, -1.0]])))
    return cases


def _squashed_mistakes(u, mu, log_std) -> dict:
    naive_gauss = gaussian_log_prob(u, mu, log_std)
    corr = _sq_ref(u, mu, log_std) - naive_gauss  # = -sum log(1 - tanh^2)
    return {
        "no_correction": (naive_gauss, "this is the Gaussian log-density of u alone: subtract the change-of-variables "
                                       "correction sum_d log(1 - tanh(u_d)^2)."),
        "plus_correction": (naive_gauss - corr, "the correction has the wrong sign: log pi(tanh(u)) = log N(u) "
                                                "MINUS sum_d log(1 - tanh(u_d)^2) (squashing raises the density)."),
        "gauss_of_a": (gaussian_log_prob(torch.tanh(u), mu, log_std) + corr,
                       "the Gaussian density is that of the pre-tanh sample u, not of a = tanh(u)."),
        "variance": (gaussian_log_prob(u, mu, 2 * log_std) + corr,
                     "the Gaussian seems to use exp(log_std) as the variance: sigma = exp(log_std), the variance is "
                     "sigma^2."),
        "no_constant": (naive_gauss + 0.5 * LOG_2PI * u.shape[-1] + corr,
                        "the constant -log(2 pi) / 2 per dimension is missing from the Gaussian log-density."),
    }


@checker("squashed_gaussian_log_prob")
def check_squashed_gaussian_log_prob(fn) -> None:
    """Check fn(u, mu, log_std) = log N(u; mu, sigma^2) - sum_d log(1 - tanh(u_d)^2): values, shape, stability near
    the bounds, and gradients."""
    c = Check("squashed_gaussian_log_prob")
    cases = _squashed_cases()
    results = []
    for case, u, mu, log_std in cases:  # values first: a wrong formula is the likelier and clearer message
        ins = [_leaf(u), _leaf(mu), _leaf(log_std)]
        got = c.call(fn, *ins, case=case)
        ref_ins = [_leaf(u), _leaf(mu), _leaf(log_std)]
        ref = _sq_ref(*ref_ins)
        stable_hint = ("compute log(1 - tanh(u)^2) stably as 2 * (log(2) - u - softplus(-2 u)): tanh(u) rounds to "
                       "1 for |u| > 9 in float32, and log(0) = -inf." if u.abs().max() > 9 else "")
        c.expect_tensor(got, ref.detach(), case=case, rtol=1e-4, atol=1e-4,
                        mistakes=_squashed_mistakes(u, mu, log_std),
                        hint=stable_hint or "sum the per-dimension terms over the last dimension D.")
        results.append((case, got, ref, ins, ref_ins))
    for case, got, ref, ins, ref_ins in results:
        _expect_grads(c, got, ref, ins, ref_ins, ["u", "mu", "log_std"], case, {
            name: ("no gradient reaches this input: keep the whole computation in torch (no .detach(), .item(), "
                   "NumPy or torch.no_grad()), since SAC's actor learns through this log-probability.",
                   "the gradient is wrong although the value is right: look for a detached or non-torch part "
                   "(or an unstable formula whose gradient is NaN near the bounds).")
            for name in ("u", "mu", "log_std")})
    c.passed(f"{len(cases)} cases: shapes (1,) to (4, 3, 3), |u| up to 20, values and gradients")


# ------------------------------------------------------------------------------------------- sac_critic_target
def _target_mistakes(r, d, q1, q2, lp, alpha, gamma) -> dict:
    m, mx = torch.min(q1, q2), torch.max(q1, q2)
    return {
        "max": (r + gamma * (1 - d) * (mx - alpha * lp), "use the MINIMUM of the two target critics (clipped double "
                                                          "Q): the max overestimates."),
        "plus_logp": (r + gamma * (1 - d) * (m + alpha * lp), "the entropy bonus is -alpha * log pi(a'|s'): subtract "
                                                               "alpha * next_logp, do not add it."),
        "no_entropy": (r + gamma * (1 - d) * m, "the soft target includes the entropy bonus: min(Q1', Q2') - alpha * "
                                                 "next_logp."),
        "no_done": (r + gamma * (m - alpha * lp), "terminal transitions must not bootstrap: multiply the future part "
                                                   "by (1 - terminated)."),
        "done_flipped": (r + gamma * d * (m - alpha * lp), "use (1 - terminated), not terminated: the future counts "
                                                            "only while the episode goes on."),
        "entropy_outside": (r + gamma * (1 - d) * m - alpha * lp,
                            "the entropy term belongs to the next state's soft value, inside gamma * (1 - terminated) "
                            "* (...)."),
        "mean_q": (r + gamma * (1 - d) * ((q1 + q2) / 2 - alpha * lp), "take min(next_q1, next_q2), not their mean."),
        "q1_only": (r + gamma * (1 - d) * (q1 - alpha * lp), "use both target critics: min(next_q1, next_q2)."),
    }


@checker("sac_critic_target")
def check_sac_critic_target(fn) -> None:
    """Check fn(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma): values, shape, and no gradient."""
    c = Check("sac_critic_target")
    g = torch.Generator().manual_seed(3)
    cases = [
        ("one transition, not terminal", torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([3.0]),
         torch.tensor([2.0]), torch.tensor([-1.0]), 0.1, 0.5),
        ("two transitions, the second terminal", torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0]),
         torch.tensor([3.0, 5.0]), torch.tensor([2.0, 7.0]), torch.tensor([-1.0, 0.5]), 0.2, 0.9),
        ("a batch of 64 with random terminals, alpha = 0 (no entropy term)", torch.randn(64, generator=g),
         (torch.rand(64, generator=g) < 0.2).float(), torch.randn(64, generator=g), torch.randn(64, generator=g),
         torch.randn(64, generator=g), 0.0, 0.99),
        ("a batch of 256 with random terminals", torch.randn(256, generator=g),
         (torch.rand(256, generator=g) < 0.1).float(), 10 * torch.randn(256, generator=g),
         10 * torch.randn(256, generator=g), torch.randn(256, generator=g), 0.3, 0.99),
    ]
    for case, r, d, q1, q2, lp, alpha, gamma in cases:
        ins = [r.clone(), d.clone(), _leaf(q1), _leaf(q2), _leaf(lp)]
        got = c.call(fn, *ins, alpha, gamma, case=f"{case}, alpha={alpha}, gamma={gamma}")
        expected = _target_ref(r, d, q1, q2, lp, alpha, gamma)
        c.expect_tensor(got, expected, case=case, mistakes=_target_mistakes(r, d, q1, q2, lp, alpha, gamma))
        if getattr(got, "requires_grad", False):
            c.fail(case + " (next_q1, next_q2, next_logp require grad)", expected="a target that requires no grad",
                   got=got, hint="a regression target must carry no gradient: compute it under torch.no_grad() or "
                                 "return y.detach(); otherwise the critic loss also moves the targets.")
    c.passed(f"{len(cases)} cases: batches of 1 to 256, terminals, alpha = 0, detached")


# ---------------------------------------------------------------------------------------------- sac_actor_loss
def _actor_mistakes(q1, q2, lp, alpha) -> dict:
    a = float(alpha)
    m = torch.min(q1, q2)
    return {
        "sign": ((m - a * lp).mean(), "the sign is flipped: the loss to MINIMISE is mean(alpha * logp - min(q1, q2))."),
        "entropy_sign": ((-a * lp - m).mean(), "the entropy term has the wrong sign: +alpha * logp in the loss "
                                                "(minimising it raises the entropy -logp)."),
        "max": ((a * lp - torch.max(q1, q2)).mean(), "use min(q1, q2), not the max, as in the critic target."),
        "q1_only": ((a * lp - q1).mean(), "use both critics: min(q1, q2)."),
        "mean_q": ((a * lp - (q1 + q2) / 2).mean(), "use min(q1, q2), not the mean of the two critics."),
        "sum": ((a * lp - m).sum(), "average over the batch (.mean()), do not sum."),
        "no_alpha": ((lp - m).mean(), "multiply logp by alpha."),
    }


@checker("sac_actor_loss")
def check_sac_actor_loss(fn) -> None:
    """Check fn(q1, q2, logp, alpha): value, scalar shape, gradients into q1/q2/logp, and none into alpha."""
    c = Check("sac_actor_loss")
    g = torch.Generator().manual_seed(5)
    cases = [
        ("one state, alpha a float", torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([-0.5]), 0.2),
        ("two states, alpha a 0-d tensor that requires grad", torch.tensor([1.0, 4.0]), torch.tensor([2.0, 3.5]),
         torch.tensor([-1.0, 2.0]), torch.tensor(0.5)),
        ("a batch of 256, alpha a 0-d tensor", 5 * torch.randn(256, generator=g), 5 * torch.randn(256, generator=g),
         torch.randn(256, generator=g), torch.tensor(0.05)),
    ]
    for case, q1, q2, lp, alpha in cases:
        alpha_in = _leaf(alpha) if isinstance(alpha, torch.Tensor) else alpha
        ins = [_leaf(q1), _leaf(q2), _leaf(lp)]
        got = c.call(fn, *ins, alpha_in, case=case)
        ref_ins = [_leaf(q1), _leaf(q2), _leaf(lp)]
        alpha_ref = _leaf(alpha) if isinstance(alpha, torch.Tensor) else alpha
        ref = _actor_ref(*ref_ins, alpha_ref)
        c.expect_tensor(got, ref.detach(), case=case, mistakes=_actor_mistakes(q1, q2, lp, alpha))
        names, got_in, ref_in = ["q1", "q2", "logp"], list(ins), list(ref_ins)
        if isinstance(alpha, torch.Tensor):
            names.append("alpha")
            got_in.append(alpha_in)
            ref_in.append(alpha_ref)
        _expect_grads(c, got, ref, got_in, ref_in, names, case, {
            "alpha": ("", "the actor loss must not train the temperature: use alpha.detach() (alpha has its own "
                          "loss, temperature_loss)."),
            "logp": ("no gradient reaches logp: do not detach it; the actor learns its entropy through it.", ""),
            "q1": ("no gradient reaches the critics' values: do not detach q1/q2; the pathwise gradient flows "
                   "through them into the action.", ""),
            "q2": ("no gradient reaches the critics' values: do not detach q1/q2; the pathwise gradient flows "
                   "through them into the action.", ""),
        })
    c.passed(f"{len(cases)} cases: float and tensor alpha, values and gradients")


# --------------------------------------------------------------------------------------------- temperature_loss
def _temp_mistakes(log_alpha, lp, target) -> dict:
    a = math.exp(float(log_alpha))
    return {
        "sign": ((a * (lp + target)).mean(), "the sign is flipped: L = mean(alpha * (-logp - target_entropy)); with "
                                             "the wrong sign alpha grows when the entropy is already too high."),
        "log_alpha": ((float(log_alpha) * (-lp - target)).mean(),
                      "use alpha = exp(log_alpha) in the loss, not log_alpha itself."),
        "plus_target": ((a * (-lp + target)).mean(), "subtract the target entropy: (-logp - target_entropy)."),
        "logp_sign": ((a * (lp - target)).mean(), "-logp (not +logp) is the entropy estimate: the loss is "
                                                  "mean(alpha * (-logp - target_entropy))."),
        "sum": ((a * (-lp - target)).sum(), "average over the batch (.mean()), do not sum."),
    }


def _expect_temperature_direction(c: Check, got, ref, log_alpha, ref_log_alpha, lp, target, case: str) -> None:
    """A flipped sign shows in the gradient first: gradient descent must shrink alpha when the entropy estimate
    -mean(logp) is above the target and grow it when below, whatever else the formula does."""
    if not (isinstance(got, torch.Tensor) and got.requires_grad and got.numel() == 1):
        return  # the value and gradient checks that follow say what is wrong
    (g,) = torch.autograd.grad(got.sum(), [log_alpha], retain_graph=True, allow_unused=True)
    (r,) = torch.autograd.grad(ref.sum(), [ref_log_alpha], retain_graph=True)
    if g is None or float(g) == 0.0 or float(r) == 0.0 or (float(g) > 0) == (float(r) > 0):
        return
    entropy = -float(lp.mean())
    above = entropy > target
    c.fail(f"{case} (gradient with respect to `log_alpha`)", expected=r, got=g,
           hint=f"the sign is flipped: here the entropy estimate -mean(logp) = {entropy:.3g} is "
                f"{'above' if above else 'below'} the target {target:g}, so a gradient step must "
                f"{'shrink' if above else 'grow'} alpha, and yours would {'grow' if above else 'shrink'} it. "
                "L = mean(alpha * (-logp - target_entropy)) with alpha = exp(log_alpha).")


@checker("temperature_loss")
def check_temperature_loss(fn) -> None:
    """Check fn(log_alpha, logp, target_entropy): value, scalar shape, gradient into log_alpha, none into logp."""
    c = Check("temperature_loss")
    g = torch.Generator().manual_seed(11)
    cases = [
        ("alpha = 1, one sample", torch.tensor(0.0), torch.tensor([0.5]), -1.0),
        ("alpha = 2, two samples, entropy above the target", torch.tensor(math.log(2.0)), torch.tensor([-1.0, 0.0]),
         -1.0),
        ("alpha = 0.1, a batch of 256, entropy below the target", torch.tensor(math.log(0.1)),
         torch.randn(256, generator=g) + 2.0, -2.0),
    ]
    for case, log_alpha, lp, target in cases:
        ins = [_leaf(log_alpha), _leaf(lp)]
        got = c.call(fn, *ins, target, case=case)
        ref_ins = [_leaf(log_alpha), _leaf(lp)]
        ref = _temp_ref(*ref_ins, target)
        _expect_temperature_direction(c, got, ref, ins[0], ref_ins[0], lp, target, case)
        c.expect_tensor(got, ref.detach(), case=case, mistakes=_temp_mistakes(log_alpha, lp, target))
        _expect_grads(c, got, ref, ins, ref_ins, ["log_alpha", "logp"], case, {
            "log_alpha": ("no gradient reaches log_alpha: build the loss from torch.exp(log_alpha) (not .item() or a "
                          "detached copy).", "the gradient with respect to log_alpha is wrong."),
            "logp": ("", "the temperature loss must not move the policy: use logp.detach() (the policy has its own "
                         "loss)."),
        })
    c.passed(f"{len(cases)} cases: values, gradient into log_alpha only")


__all__ = ["check_squashed_gaussian_log_prob", "check_sac_critic_target", "check_sac_actor_loss",
           "check_temperature_loss"]


# ------------------------------------------------------------------------------------------- reparameterized_sample
def _reparam_ref(mu, log_std, eps):
    u = mu + torch.exp(log_std) * eps
    return torch.tanh(u), _sq_ref(u, mu, log_std)


def _reparam_mistakes(mu, log_std, eps) -> dict:
    u = mu + torch.exp(log_std) * eps
    a = torch.tanh(u)
    gauss = gaussian_log_prob(u, mu, log_std)
    return {
        "no_correction": (gauss, "log pi(a) needs the change-of-variables term: subtract sum_d log(1 - tanh(u_d)^2) "
                                 "from the Gaussian log-density of u."),
        "plus_correction": (2 * gauss - _sq_ref(u, mu, log_std), "the tanh correction has the wrong sign: subtract "
                                                                 "sum_d log(1 - tanh(u_d)^2)."),
        "gauss_of_a": (gaussian_log_prob(a, mu, log_std) + (_sq_ref(u, mu, log_std) - gauss),
                       "evaluate the Gaussian density at the pre-tanh sample u, not at a = tanh(u)."),
        "std_as_var": (_sq_ref(mu + torch.exp(0.5 * log_std) * eps, mu, 0.5 * log_std), None),
    }


@checker("reparameterized_sample")
def check_reparameterized_sample(fn) -> None:
    """Check `fn(mu, log_std, eps) -> (a, logp)`: the values, and that gradients reach mu and log_std through both
    (the pathwise gradient SAC's actor needs)."""
    c = Check("reparameterized_sample")
    g = torch.Generator().manual_seed(21)
    cases = [
        ("one action dimension, mu = 0, log_std = 0, eps = 0.5", torch.zeros(1), torch.zeros(1), torch.tensor([0.5])),
        ("a batch of 3 one-dimensional actions", torch.tensor([[0.3], [-1.0], [2.0]]),
         torch.tensor([[0.0], [-0.5], [0.5]]), torch.tensor([[1.0], [-0.3], [0.8]])),
        ("a batch of 8 two-dimensional actions", torch.randn(8, 2, generator=g), 0.3 * torch.randn(8, 2, generator=g),
         torch.randn(8, 2, generator=g)),
        ("actions near the bounds (u up to 12, float32)", torch.tensor([[6.0, -8.0]]), torch.tensor([[0.5, 0.5]]),
         torch.tensor([[2.0, -2.0]])),
    ]
    for case, mu, log_std, eps in cases:
        ins = [_leaf(mu), _leaf(log_std)]
        got = c.call(fn, *ins, eps.clone(), case=case)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            c.fail(case, expected="a pair (a, logp)", got=got, hint="return the squashed action and its log-probability.")
        ref_ins = [_leaf(mu), _leaf(log_std)]
        ref_a, ref_logp = _reparam_ref(*ref_ins, eps)
        u = mu + torch.exp(log_std) * eps
        c.expect_tensor(got[0], ref_a.detach(), case=case + " (the action a)",
                        mistakes={"no_tanh": (u, "squash the Gaussian sample: a = tanh(mu + exp(log_std) * eps)."),
                                  "var": (torch.tanh(mu + torch.exp(2 * log_std) * eps),
                                          "sigma = exp(log_std) multiplies eps, not exp(2 log_std)."),
                                  "std_is_log_std": (torch.tanh(mu + log_std * eps),
                                                     "sigma = exp(log_std): exponentiate before multiplying eps.")})
        hint_stable = " Near the bounds compute log(1 - tanh(u)^2) from u: 2 (log 2 - u - softplus(-2u)); " \
                      "atanh(a) of a rounded a loses all precision." if u.abs().max() > 5 else ""
        c.expect_tensor(got[1], ref_logp.detach(), case=case + " (the log-probability logp)", rtol=1e-4, atol=1e-4,
                        mistakes={k: (v, h) for k, (v, h) in _reparam_mistakes(mu, log_std, eps).items() if h},
                        hint="logp = log N(u; mu, sigma^2) - sum_d log(1 - tanh(u_d)^2), u = mu + sigma * eps, summed "
                             "over the last dimension." + hint_stable)
        for out_name, got_out, ref_out in (("a", got[0], ref_a), ("logp", got[1], ref_logp)):
            _expect_grads(c, got_out, ref_out, ins, ref_ins, ["mu", "log_std"], f"{case} ({out_name})", {
                name: (f"no gradient reaches `{name}` through `{out_name}`: the sample must be a differentiable "
                       "function of mu and log_std (u = mu + exp(log_std) * eps, no .detach(), no torch.no_grad(), "
                       "no .sample()); that is the reparameterisation trick.",
                       f"the gradient of `{out_name}` with respect to `{name}` is wrong although the value is right: "
                       "is u (or part of logp) detached?")
                for name in ("mu", "log_std")})
    c.passed(f"{len(cases)} cases: values of a and logp, gradients into mu and log_std, |u| up to 12")


# ------------------------------------------------------------------------------------------------------ tanh_density
def _tanh_density_ref(a, mu, sigma):
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    u = np.arctanh(a)
    return np.exp(-0.5 * ((u - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)) / (1 - a * a)


@checker("tanh_density")
def check_tanh_density(fn) -> None:
    """Check `fn(a, mu, sigma)`: the density of a = tanh(u), u ~ N(mu, sigma^2), by the change of variables."""
    import numpy as np

    c = Check("tanh_density")
    cases = [(np.array([0.0]), 0.0, 1.0), (np.array([0.5, -0.5]), 0.0, 1.0), (np.array([0.9, 0.0, -0.3]), 1.0, 0.5),
             (np.linspace(-0.99, 0.99, 50), -0.5, 2.0)]
    for a, mu, sigma in cases:
        case = f"a={a.tolist()}, mu={mu}, sigma={sigma}" if len(a) <= 3 else \
            f"{len(a)} points a in [-0.99, 0.99], mu={mu}, sigma={sigma}"
        got = c.call(fn, a, mu, sigma, case=case)
        ref = _tanh_density_ref(a, mu, sigma)
        u = np.arctanh(a)
        gauss_u = np.exp(-0.5 * ((u - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        gauss_a = np.exp(-0.5 * ((a - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        c.expect_close(got, ref, case=case, rtol=1e-6, atol=1e-10, mistakes={
            "times_jacobian": (gauss_u * (1 - a * a), "divide by |da/du| = 1 - a^2, do not multiply: squashing packs "
                                                       "the mass near +-1 into a smaller interval, so the density "
                                                       "there grows."),
            "no_jacobian": (gauss_u, "the Jacobian is missing: p_A(a) = p_U(atanh(a)) / |da/du|, da/du = 1 - a^2."),
            "gauss_of_a": (gauss_a / (1 - a * a), "evaluate the Gaussian at u = atanh(a), the point that maps to a."),
            "gauss_of_a_only": (gauss_a, "a = tanh(u) is not Gaussian: p_A(a) = N(atanh(a); mu, sigma^2) / (1 - a^2)."),
            "log": (np.log(ref), "return the density itself, not its logarithm."),
        }, hint="p_A(a) = N(atanh(a); mu, sigma^2) / (1 - a^2).")
    c.passed(f"{len(cases)} cases: points across (-1, 1), several mu and sigma")


# =====================================================================================================================
# Build-it: the whole SAC update.  The same three layers as `check_td3_update` (see checks/td3.py), on the machinery
# of `lecturekit.course.updatecheck`, with the fixtures and the recorder of checks/td3.py.
# =====================================================================================================================

SAC_GROUPS = ["actor", "critic", "critic_targ", "log_alpha"]
SAC_ORDERS = ["critic_first", "actor_first", "target_first", "alpha_first"]


def _sac_sample(actor, obs: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reparameterised action a = center + half_range * tanh(mu(s) + sigma(s) eps) and log pi(a|s)."""
    mu, log_std = actor.dist_params(obs)
    u = mu + log_std.exp() * eps
    center, half = _box(actor)
    return center + half * torch.tanh(u), _sq_ref(u, mu, log_std)


def _sac_reference(agent, b: Batch, step: int, noise, order: str = "critic_first", bugs=()) -> dict:
    """The SAC update, optionally in another accepted order or with named bugs.

    Orders: critic_first (critic, actor, temperature); actor_first (actor, temperature, then the critic with a'
    from the updated actor); target_first (y from the actor before its step, then actor, temperature, critic);
    alpha_first (critic, temperature, then the actor loss with the new alpha).  Polyak always last.
    """
    cfg, actor, critic = agent.cfg, agent.actor, agent.critic
    eps_next, eps_now = noise
    if "noise_swapped" in bugs:
        eps_next, eps_now = eps_now, eps_next
    alpha = agent.log_alpha.exp().item()
    out, state = {}, {}

    def target():
        with torch.no_grad():
            a2, logp2 = _sac_sample(actor, b.next_obs, eps_next)
            if "logp_of_current" in bugs:
                logp2 = _sac_sample(actor, b.obs, eps_now)[1]
            qt = critic if "online_critic_target" in bugs else agent.critic_targ
            nq1, nq2 = qt(b.next_obs, a2)
            nq = torch.max(nq1, nq2) if "max_target" in bugs else torch.min(nq1, nq2)
            next_v = {"plus_logp": nq + alpha * logp2, "no_entropy": nq}
            next_v = next((next_v[k] for k in next_v if k in bugs), nq - alpha * logp2)
            done = {"truncated_done": b.truncated, "either_done": torch.clamp(b.terminated + b.truncated, max=1.0),
                    "no_done": torch.zeros_like(b.terminated)}
            done = next((done[k] for k in done if k in bugs), b.terminated)
            state["y"] = b.reward + cfg.gamma * (1.0 - done) * next_v

    def critic_step():
        if "y" not in state:
            target()
        q1, q2 = critic(b.obs, b.action)
        loss = (q1 - state["y"]).pow(2).mean()
        if "q1_only_loss" not in bugs:
            loss = loss + (q2 - state["y"]).pow(2).mean()
        if "no_zero_grad_critic" not in bugs:
            agent.critic_opt.zero_grad()
        loss.backward()
        agent.critic_opt.step()
        out.update(critic_loss=loss.item(), q1=q1.mean().item())

    def sample_now():
        if "a" not in state:
            state["a"], state["logp"] = _sac_sample(actor, b.obs, eps_now)

    def actor_step():
        sample_now()
        a, logp = state["a"], state["logp"]
        q1, q2 = critic(b.obs, a.detach() if "no_reparam" in bugs else a)
        q = q1 if "actor_q1" in bugs else torch.min(q1, q2)
        lp = logp.detach() if "logp_detached" in bugs else logp
        a_now = agent.log_alpha.exp().item() if order == "alpha_first" else alpha
        loss = (a_now * lp - q).mean()
        if "no_zero_grad_actor" not in bugs:
            agent.actor_opt.zero_grad()
        loss.backward(inputs=list(actor.parameters()))
        agent.actor_opt.step()
        out.update(actor_loss=loss.item(), entropy=-logp.mean().item())

    def temperature_step():
        if agent.alpha_opt is None:
            return
        sample_now()
        lp = state["logp"].detach()
        if "temp_logp_resampled" in bugs:  # log pi(a|s) drawn again, from the actor after its step
            lp = _sac_sample(actor, b.obs, eps_now)[1].detach()
        la = agent.log_alpha
        loss = (la if "temp_log_alpha" in bugs else la.exp()) * (-lp - agent.target_entropy)
        loss = -loss.mean() if "temp_sign" in bugs else loss.mean()
        if "alpha_not_detached" in bugs:  # the actor loss's alpha * log pi reaches log_alpha too
            loss = loss + (la.exp() * lp).mean()
        if "no_zero_grad_alpha" not in bugs:
            agent.alpha_opt.zero_grad()
        loss.backward()
        agent.alpha_opt.step()

    def polyak():
        if "no_polyak" not in bugs:
            _polyak_update(agent.critic_targ, critic, 1.0 - cfg.tau if "tau_swapped" in bugs else cfg.tau)

    if "polyak_first" in bugs:
        polyak()
    steps = {"critic_first": [critic_step, actor_step, temperature_step],
             "actor_first": [actor_step, temperature_step, critic_step],
             "target_first": [target, actor_step, temperature_step, critic_step],
             "alpha_first": [critic_step, temperature_step, actor_step]}[order]
    for fn in steps:
        fn()
    if "polyak_first" not in bugs:
        polyak()
    out["alpha"] = alpha
    return out


def reference_sac_update(agent, batch: Batch, step: int, noise) -> dict:
    """The checker's reference SAC update (critic, actor, temperature, Polyak), the seam's signature."""
    return _sac_reference(agent, batch, step, noise)


SAC_BUGS = {  # name -> what the student is told (each re-enacted by `_sac_reference` and compared)
    "temp_sign": "the temperature moves the wrong way: its loss is mean(alpha * (-log pi(a|s) - target_entropy)) "
                 "(alpha = log_alpha.exp()); with the sign flipped alpha grows while the entropy is above the target.",
    "temp_log_alpha": "the temperature loss uses log_alpha where alpha = log_alpha.exp() belongs: "
                      "mean(log_alpha.exp() * (-logp.detach() - target_entropy)).",
    "temp_logp_resampled": "the temperature loss uses a log pi(a|s) computed again after the actor's step (the actor "
                           "has moved, so it differs a little): use the log-probability of the actor step's own "
                           "sample, detached.",
    "alpha_not_detached": "log_alpha also received the actor loss's gradient: in the actor loss alpha is a "
                          "constant (alpha = log_alpha.exp().item() or .detach()); only the temperature loss trains "
                          "it.",
    "logp_of_current": "the target's entropy term uses log pi of the action at s: use log pi(a'|s') of the fresh next "
                       "action a' sampled at s' (with eps_next), the same a' the target critics evaluate.",
    "noise_swapped": "the two noises are swapped: eps_next makes the next action a' at s' (for the target), eps_now "
                     "the reparameterised action at s (for the actor and the temperature).",
    "plus_logp": "the entropy bonus has the wrong sign in the target: min(Q1', Q2') - alpha * log pi(a'|s').",
    "no_entropy": "the target has no entropy term: y = r + gamma (1 - terminated) (min(Q1', Q2') - alpha * "
                  "log pi(a'|s')).",
    "max_target": "the target takes the larger of the two target critics; use min(Q1', Q2').",
    "online_critic_target": "the target uses the online critics: y uses agent.critic_targ (the slow copies).",
    "truncated_done": "the target uses batch.truncated as the end of the episode. A time limit (truncated) does not "
                      "end the MDP: bootstrap there; only batch.terminated stops the bootstrap.",
    "either_done": "the target stops bootstrapping at truncated transitions too. Only batch.terminated ends the MDP; "
                   "a time limit still has a future: y = r + gamma * (1 - terminated) * (...).",
    "no_done": "terminated is ignored: y = r + gamma * (1 - terminated) * (...) (no future after the end).",
    "q1_only_loss": "only the first critic is trained: both regress on y, loss = mean((Q1 - y)^2) + mean((Q2 - y)^2).",
    "actor_q1": "the actor climbs Q1 alone; SAC's actor uses min(Q1(s, a), Q2(s, a)).",
    "no_reparam": "no gradient flows through the action into the critics: the actor loss must use the "
                  "reparameterised action a, log pi(a|s) = agent.actor(s, eps_now) itself, not a.detach().",
    "logp_detached": "log pi(a|s) is detached in the actor loss: the actor learns its entropy through it; detach it "
                     "only in the temperature loss.",
    "no_zero_grad_critic": "the critic's gradient includes the previous update's: call critic_opt.zero_grad() before "
                           "backward() (PyTorch adds new gradients to .grad).",
    "no_zero_grad_actor": "the actor's gradient includes the previous update's: call actor_opt.zero_grad() before "
                          "backward().",
    "no_zero_grad_alpha": "the temperature's gradient includes the previous update's: call alpha_opt.zero_grad() "
                          "before backward().",
    "tau_swapped": "the target critics jumped almost onto the online ones: tau and 1 - tau are swapped. "
                   "critic_targ <- tau * critic + (1 - tau) * critic_targ, with tau small (cfg.tau).",
    "no_polyak": "the target critics did not move: polyak_update(agent.critic_targ, agent.critic, cfg.tau) after the "
                 "gradient steps.",
    "polyak_first": "the target critics moved towards the critics as they were BEFORE this update's step: do the "
                    "Polyak update last.",
}
SAC_HINTS = {
    "critic": "The critic step: a', log pi(a'|s') = agent.actor(s', eps_next); y = r + gamma * (1 - "
              "terminated) * (min(Q1'(s', a'), Q2'(s', a')) - alpha * log pi(a'|s')) under no_grad; loss = "
              "mean((Q1 - y)^2) + mean((Q2 - y)^2) at the batch's (s, a); zero_grad, backward, step.",
    "actor": "The actor step: a, log pi(a|s) = agent.actor(s, eps_now) (reparameterised: keep the graph); "
             "loss = mean(alpha * log pi(a|s) - min(Q1(s, a), Q2(s, a))) with alpha a constant; zero_grad, backward, "
             "actor_opt.step().",
    "log_alpha": "The temperature step (when agent.alpha_opt is not None): loss = mean(log_alpha.exp() * "
                 "(-log pi(a|s).detach() - agent.target_entropy)); zero_grad, backward, alpha_opt.step().",
    "critic_targ": "The targets: polyak_update(agent.critic_targ, agent.critic, cfg.tau) after the gradient steps.",
    "steps": "one step of each optimizer per update (none of alpha_opt when it is None: a fixed temperature).",
}
TARGET_GRAD_SAC = ("the target y carries a gradient: the critic loss's backward() reached the target critics (their "
                   "parameters now have a .grad). Compute a', log pi(a'|s') and y under `with torch.no_grad():`.")


def _sac_fixture(cfg, seed: int = 0):
    """A SAC agent on the fixture task that has trained a little: warm optimizers, the last update's gradients in
    .grad, target critics that differ from the online ones (and require grad, so that a target computed with
    autograd on leaves a .grad there)."""
    agent = _make_agent(_sac, cfg, seed)
    _randomize(agent.critic_targ, seed + 2)
    agent.critic_targ.requires_grad_(True)
    _sac_reference(agent, _fixture_batch(seed + 10), 0, (_fixture_noise(seed + 11), _fixture_noise(seed + 12)))
    return agent


def _sac_watch(c: Check, update, case: str):
    """The student's update, watched: the next action a' given to the target critics (a fresh sample at s' with
    eps_next, not the buffer's action, not the mean) and whether the critic loss reached the target critics."""

    def watched(agent, batch, step, noise):
        eps_next, eps_now = noise
        with torch.no_grad():
            mu, _ = agent.actor.dist_params(batch.next_obs)
            center, half = _box(agent.actor)
            wrong = {"the batch's action (taken at s, not s')": batch.action,
                     "the mean action at s' (no noise)": center + half * torch.tanh(mu),
                     "a sample at s' made with eps_now": _sac_sample(agent.actor, batch.next_obs, eps_now)[0]}
            right = _sac_sample(agent.actor, batch.next_obs, eps_next)[0]
        rec = _Recorder({**_critic_modules("critic", agent.critic),
                         **_critic_modules("critic_targ", agent.critic_targ)})
        try:
            out = update(agent, batch, step, noise)
        finally:
            rec.close()
        s2 = batch.next_obs
        targ_calls = rec.on("critic_targ", s2)
        if not targ_calls and rec.on("critic", s2):
            c.fail(case, hint=SAC_BUGS["online_critic_target"])
        for call in targ_calls[:1]:
            if len(call) >= 2:
                for what, a2 in wrong.items():
                    if _close(call[1], a2) and not _close(a2, right):
                        c.fail(f"{case}: the next action a' given to the target critics", right, call[1],
                               hint=f"a' is {what}. The soft target needs a fresh action of the current policy at "
                                    f"s': a', log pi(a'|s') = agent.actor(s', eps_next).")
        if _grads_in([agent.critic_targ]):
            c.fail(case, hint=TARGET_GRAD_SAC)
        return out

    return watched


@checker("sac_update")
def check_sac_update(update, *, train: bool = True, seeds=(0, 1), budget: int = 6_000) -> None:
    """Check `update(agent, batch, step, noise) -> dict`, the whole SAC update, `noise = (eps_next, eps_now)`,
    in three layers:

    1. one update on a fixed batch of 32 transitions (some terminated, some truncated) with fixed noise, with a
       learned temperature and with a fixed one (agent.alpha_opt None), lands where the reference does: gradients,
       parameter, target and log_alpha changes, Adam states (rtol 1e-4).  Accepted orders: critic, actor,
       temperature; actor, temperature, critic (a' from the updated actor, or y computed first); critic,
       temperature, actor (with the new alpha); Polyak last;
    2. if not, the message names the piece or the silent bug (the temperature's sign, log pi of the wrong action in
       the target, alpha not detached in the actor loss, a target that carries gradient, no zero_grad, tau and
       1 - tau swapped, truncated treated as terminated, ...);
    3. with `train=True`: the update trains Pendulum-v1 to an evaluation return of -200 (10 episodes, every 500
       steps) within `budget` environment steps, on the first of `seeds` that makes it.
    """
    c = Check("sac_update")
    cases = [("SAC with a learned temperature", _sac.Config(hidden=(16, 16), tau=0.05)),
             ("SAC with a fixed temperature (autotune=False: agent.alpha_opt is None)",
              _sac.Config(hidden=(16, 16), tau=0.05, autotune=False))]
    for name, cfg in cases:
        batch, noise = _fixture_batch(101), (_fixture_noise(201), _fixture_noise(301))
        case = f"{name}, one update on a batch of 32 transitions"

        def make(cfg=cfg, batch=batch, noise=noise):
            return _update_trial(lambda: _sac_fixture(cfg), SAC_GROUPS, ["actor_opt", "critic_opt", "alpha_opt"],
                                 batch, 1, noise)

        check_update(c, _sac_watch(c, update, case), reference_sac_update, make, case=case,
                     accepted=[_with_variant(_sac_reference, order=o) for o in SAC_ORDERS[1:]],
                     mistakes=[Mistake(bug, _with_variant(_sac_reference, bugs=(bug,)), hint)
                               for bug, hint in SAC_BUGS.items()],
                     stats_keys=("critic_loss", "actor_loss"), group_hints=SAC_HINTS)
    summary = f"{len(cases)} updates (learned and fixed temperature) land where the reference does"
    if train:
        summary += "; " + _train_layer(c, "sac", update, seeds, budget)
    c.passed(summary)


__all__ += ["check_sac_update"]
