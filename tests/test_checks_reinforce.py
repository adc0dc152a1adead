"""Part 2's checkers reject the mistakes students make (with the right hint) and accept correct answers however
they are written."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lecturekit.checks import CheckFailed, check_gaussian_policy_gradient, check_reinforce_loss


def _rejects(check, fn, *needles):
    with pytest.raises(CheckFailed) as e:
        check(fn)
    msg = str(e.value)
    for n in needles:
        assert n in msg, msg
    return msg


# ---------------------------------------------------------------- reinforce_loss: right answers
def loss_detach(log_probs, returns, baseline=None):
    adv = returns if baseline is None else returns - baseline
    return -(log_probs * adv.detach()).mean()


def loss_sum_over_n(log_probs, returns, baseline=None):
    b = torch.zeros_like(returns) if baseline is None else baseline.detach()
    return -torch.sum(log_probs * (returns.detach() - b)) / log_probs.numel()


def loss_with_no_grad(log_probs, returns, baseline=None):
    with torch.no_grad():
        adv = returns.clone() if baseline is None else returns - baseline
    return (log_probs * adv).mean().neg()


def loss_dot(log_probs, returns, baseline=None):
    adv = (returns - (0 if baseline is None else baseline)).detach().reshape(-1)
    return -(log_probs.reshape(-1) @ adv) / adv.numel()


@pytest.mark.parametrize("fn", [loss_detach, loss_sum_over_n, loss_with_no_grad, loss_dot])
def test_reinforce_loss_accepts_correct_answers(fn, capsys):
    check_reinforce_loss(fn)
    assert "all checks passed" in capsys.readouterr().out


# ---------------------------------------------------------------- reinforce_loss: wrong answers
def test_reinforce_loss_rejects_not_implemented():
    def stub(log_probs, returns, baseline=None):
        raise NotImplementedError("write me")

    _rejects(check_reinforce_loss, stub, "not implemented yet")


@pytest.mark.parametrize("fn, needle", [
    (lambda lp, r, b=None: (lp * (r if b is None else r - b).detach()).mean(), "sign is flipped"),
    (lambda lp, r, b=None: -(lp * (r if b is None else r - b).detach()).sum(), "summed over the steps"),
    (lambda lp, r, b=None: -(lp * r.detach()).mean(), "baseline is ignored"),
    (lambda lp, r, b=None: -(lp * (r if b is None else r + b).detach()).mean(), "not added"),
    (lambda lp, r, b=None: -(lp.exp() * (r if b is None else r - b).detach()).mean(), "do not exponentiate"),
    (lambda lp, r, b=None: -(lp * (r if b is None else r - b)).mean(), "no gradient into `baseline`"),
    (lambda lp, r, b=None: -(lp * (r if b is None else r - b.detach())).mean(), "no gradient into `returns`"),
    (lambda lp, r, b=None: -(lp * (r if b is None else r - b).detach()), "must be a scalar"),
    (lambda lp, r, b=None: -(lp.detach() * (r if b is None else r - b)).mean(), "do not detach log_probs"),
    (lambda lp, r, b=None: (-(lp * (r if b is None else r - b)).mean()).item(), "return a torch tensor"),
    (lambda lp, r, b=None: None, "forget the `return`"),
    (lambda lp, r, b=None: -(lp * (r - b).detach()).mean(), "AttributeError"),  # fails on baseline=None
], ids=["sign", "sum", "no_baseline", "plus_baseline", "exp", "grad_into_baseline", "grad_into_returns",
        "not_scalar", "detached_logp", "python_float", "none", "baseline_none"])
def test_reinforce_loss_rejects_mistakes(fn, needle):
    _rejects(check_reinforce_loss, fn, needle)


def test_reinforce_loss_rejects_normalized_advantages():
    def normalized(lp, r, b=None):
        adv = (r if b is None else r - b).detach()
        if adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        return -(lp * adv).mean()

    _rejects(check_reinforce_loss, normalized, "normalized the advantages")


def test_reinforce_loss_rejects_in_place_modification():
    def in_place(lp, r, b=None):
        if b is not None:
            r.sub_(b)  # modifies the caller's returns
        return -(lp * r.detach()).mean()

    _rejects(check_reinforce_loss, in_place, "modified its input `r` in place")


# ---------------------------------------------------------------- gaussian_policy_gradient
def gpg_closed_form(actions, mu, log_std, returns, baseline=0.0):
    a = np.asarray(actions, dtype=float)
    d, var = a - mu, np.exp(2 * log_std)
    w = np.asarray(returns, dtype=float) - baseline
    return np.array([np.mean(d / var * w), np.mean((d * d / var - 1) * w)])


def gpg_autograd(actions, mu, log_std, returns, baseline=0.0):
    m = torch.tensor(float(mu), requires_grad=True, dtype=torch.float64)
    s = torch.tensor(float(log_std), requires_grad=True, dtype=torch.float64)
    a = torch.tensor(np.asarray(actions, dtype=float))
    lp = -0.5 * ((a - m) / s.exp()) ** 2 - s - 0.5 * np.log(2 * np.pi)
    (lp * torch.tensor(np.asarray(returns, dtype=float) - baseline)).mean().backward()
    return np.array([m.grad.item(), s.grad.item()])


def gpg_loop(actions, mu, log_std, returns, baseline=0.0):
    sigma = np.exp(log_std)
    g = np.zeros(2)
    for a, r in zip(actions, returns):
        z = (a - mu) / sigma
        g += np.array([z / sigma, z * z - 1.0]) * (r - baseline)
    return g / len(actions)


@pytest.mark.parametrize("fn", [gpg_closed_form, gpg_autograd, gpg_loop])
def test_gaussian_policy_gradient_accepts_correct_answers(fn, capsys):
    check_gaussian_policy_gradient(fn)
    assert "all checks passed" in capsys.readouterr().out


def _variant(score_mu, score_ls, *, use_baseline=True, reduce=np.mean):
    def fn(actions, mu, log_std, returns, baseline=0.0):
        a = np.asarray(actions, dtype=float)
        w = np.asarray(returns, dtype=float) - (baseline if use_baseline else 0.0)
        return np.array([reduce(score_mu(a, mu, log_std) * w), reduce(score_ls(a, mu, log_std) * w)])

    return fn


_mu = lambda a, m, s: (a - m) / np.exp(2 * s)  # noqa: E731
_ls = lambda a, m, s: (a - m) ** 2 / np.exp(2 * s) - 1  # noqa: E731


@pytest.mark.parametrize("fn, needle", [
    (_variant(lambda a, m, s: (m - a) / np.exp(2 * s), lambda a, m, s: 1 - (a - m) ** 2 / np.exp(2 * s)),
     "sign is flipped"),
    (_variant(lambda a, m, s: (a - m) / np.exp(s), _ls), "not by sigma"),
    (_variant(_mu, lambda a, m, s: (a - m) ** 2 / np.exp(2 * s)), "-1"),
    (_variant(_mu, lambda a, m, s: (a - m) ** 2 / np.exp(3 * s) - np.exp(-s)), "derivative with respect to sigma"),
    (_variant(_mu, _ls, use_baseline=False), "baseline is ignored"),
    (_variant(_mu, _ls, reduce=np.sum), "summed over the samples"),
    (lambda actions, mu, log_std, returns, baseline=0.0: gpg_closed_form(actions, mu, log_std, returns, baseline)[0],
     "shape"),
    (lambda actions, mu, log_std, returns, baseline=0.0: torch.tensor(gpg_closed_form(actions, mu, log_std, returns,
                                                                                        baseline)), "NumPy array"),
    (lambda actions, mu, log_std, returns, baseline: gpg_closed_form(actions, mu, log_std, returns, baseline),
     "TypeError"),  # no default for the baseline
], ids=["sign", "sigma_not_var", "no_minus_one", "wrt_sigma", "no_baseline", "sum", "scalar", "tensor",
        "no_default"])
def test_gaussian_policy_gradient_rejects_mistakes(fn, needle):
    _rejects(check_gaussian_policy_gradient, fn, needle)


def test_gaussian_policy_gradient_rejects_var_as_exp_log_std():
    fn = _variant(lambda a, m, s: (a - m) / np.exp(s), lambda a, m, s: (a - m) ** 2 / np.exp(s) - 1)
    _rejects(check_gaussian_policy_gradient, fn, "exp(2 log_std)")
