"""Issue 15, items 3 and 5: the checkers of the new exercises (natural gradient, variance with and without a
baseline, DPG actor loss, reparameterised sample) and of the derivations with numerical answers (log-derivative trick,
the baseline's zero expectation, GAE's telescoping sum, the tanh change of variables).  Each accepts differently
written correct answers and rejects the real mistakes with their own hint."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lecturekit.checks import (CheckFailed, check_dpg_actor_loss, check_log_derivative_gradient,
                               check_n_step_advantage, check_natural_gradient_step, check_reparameterized_sample,
                               check_score_estimator_moments, check_score_gradient_samples, check_tabular_fisher,
                               check_tanh_density)
from lecturekit.returns import discounted_returns


def accepts(check, fn, capsys):
    check(fn)
    assert "all checks passed" in capsys.readouterr().out


def rejects(check, fn, *words):
    with pytest.raises(CheckFailed) as info:
        check(fn)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    assert "got" in msg or "not implemented" in msg or "return" in msg, msg
    return msg


def softmax(h):
    h = np.asarray(h, dtype=float)
    z = np.exp(h - h.max())
    return z / z.sum()


# --- log_derivative_gradient --------------------------------------------------------------------------------------
def ld_sum_over_actions(logits, rewards):
    pi, r = softmax(logits), np.asarray(rewards, dtype=float)
    return sum(pi[a] * r[a] * (np.eye(len(pi))[a] - pi) for a in range(len(pi)))


def ld_closed_form(logits, rewards):
    pi, r = softmax(logits), np.asarray(rewards, dtype=float)
    return pi * (r - pi @ r)


def ld_autograd(logits, rewards):
    h = torch.tensor(np.asarray(logits, dtype=float), requires_grad=True)
    (g,) = torch.autograd.grad(torch.log_softmax(h, -1).exp() @ torch.tensor(np.asarray(rewards, dtype=float)), h)
    return g.numpy()


@pytest.mark.parametrize("fn", [ld_sum_over_actions, ld_closed_form, ld_autograd])
def test_log_derivative_accepts(fn, capsys):
    accepts(check_log_derivative_gradient, fn, capsys)


@pytest.mark.parametrize("fn, words", [
    (lambda h, r: -ld_closed_form(h, r), ["sign is flipped"]),
    (lambda h, r: np.asarray(r, float) @ (np.eye(len(h)) - softmax(h)), ["weighted by its probability"]),
    (lambda h, r: (softmax(h) ** 2 * r) @ (np.eye(len(h)) - softmax(h)), ["pi(a) twice"]),
    (lambda h, r: softmax(h) * r, ["not e_a"]),
    (lambda h, r: (softmax(h) * r) @ (softmax(h) - np.eye(len(h))), ["sign is flipped"]),
    (lambda h, r: ld_closed_form(np.exp(np.asarray(h, float)) * 0 + h, r) if max(h) < 100 else
     np.full(len(h), np.nan), ["NaN"]),  # unstable softmax at logits 1000
])
def test_log_derivative_rejects(fn, words):
    rejects(check_log_derivative_gradient, fn, *words)


# --- score_estimator_moments --------------------------------------------------------------------------------------
def moments_loop(logits, rewards, baseline):
    pi = softmax(logits)
    g = [(rewards[a] - baseline) * (np.eye(len(pi))[a] - pi) for a in range(len(pi))]
    mean = sum(p * ga for p, ga in zip(pi, g))
    second = sum(p * ga @ ga for p, ga in zip(pi, g))
    return mean, float(second - mean @ mean)


def moments_cov_trace(logits, rewards, baseline):
    pi = softmax(logits)
    g = (np.asarray(rewards, float) - baseline)[:, None] * (np.eye(len(pi)) - pi)
    mean = pi @ g
    cov = (g - mean).T @ np.diag(pi) @ (g - mean)
    return mean, float(np.trace(cov))


@pytest.mark.parametrize("fn", [moments_loop, moments_cov_trace])
def test_moments_accepts(fn, capsys):
    accepts(check_score_estimator_moments, fn, capsys)


def moments_second(logits, rewards, baseline):
    mean, var = moments_loop(logits, rewards, baseline)
    return mean, var + float(mean @ mean)


@pytest.mark.parametrize("fn, words", [
    (moments_second, ["second moment"]),
    (lambda h, r, b: moments_loop(h, r, -b), ["baseline is subtracted"]),
    (lambda h, r, b: moments_loop(h, r, 0.0), ["baseline is missing"]),
    (lambda h, r, b: moments_loop(h, r, b)[0], ["pair (mean, variance)"]),
    (lambda h, r, b: (moments_loop(h, r, b)[0] * 2, 0.0), ["the mean"]),
])
def test_moments_rejects(fn, words):
    rejects(check_score_estimator_moments, fn, *words)


# --- score_gradient_samples ---------------------------------------------------------------------------------------
def samples_loop(theta, episodes, gamma, baseline, *, discount_t=True, whole=False, b_sign=1.0, minus_pi=True):
    theta = np.asarray(theta, dtype=float)
    S, A = theta.shape
    b = np.broadcast_to(np.asarray(baseline, dtype=float), (S,))
    out = np.zeros((len(episodes), S, A))
    for i, (states, actions, rewards) in enumerate(episodes):
        G = discounted_returns(rewards, gamma)
        for t, (s, a) in enumerate(zip(states, actions)):
            pi = softmax(theta[s])
            score = np.eye(A)[a] - (pi if minus_pi else 0.0)
            out[i, s] += (gamma ** t if discount_t else 1.0) * ((G[0] if whole else G[t]) - b_sign * b[s]) * score
    return out


def samples_autograd(theta, episodes, gamma, baseline):
    th = torch.tensor(np.asarray(theta, dtype=float), requires_grad=True)
    b = np.broadcast_to(np.asarray(baseline, dtype=float), (th.shape[0],))
    out = []
    for states, actions, rewards in episodes:
        G = discounted_returns(rewards, gamma)
        w = torch.tensor(gamma ** np.arange(len(G)) * (G - b[states]))
        logp = torch.log_softmax(th, -1)[torch.as_tensor(states), torch.as_tensor(actions)]
        (g,) = torch.autograd.grad((logp * w).sum(), th)
        out.append(g.numpy())
    return np.stack(out)


@pytest.mark.parametrize("fn", [samples_loop, samples_autograd])
def test_samples_accepts(fn, capsys):
    accepts(check_score_gradient_samples, fn, capsys)


@pytest.mark.parametrize("kw, words", [
    ({"discount_t": False}, ["gamma^t is missing"]),
    ({"whole": True}, ["whole episode's return"]),
    ({"b_sign": -1.0}, ["subtract the baseline"]),
    ({"minus_pi": False}, ["-pi(.|s) part is missing"]),
])
def test_samples_rejects(kw, words):
    rejects(check_score_gradient_samples, lambda th, e, g, b: samples_loop(th, e, g, b, **kw), *words)


def test_samples_rejects_list_of_arrays():
    rejects(check_score_gradient_samples, lambda th, e, g, b: list(samples_loop(th, e, g, b)), "NumPy array")


# --- tabular_fisher -----------------------------------------------------------------------------------------------
def fisher_block(pi, d):
    return torch.block_diag(*[d[s] * (torch.diag(pi[s]) - torch.outer(pi[s], pi[s])) for s in range(len(d))])


def fisher_expected_outer(pi, d):
    S, A = pi.shape
    F_ = torch.zeros(S * A, S * A, dtype=pi.dtype)
    for s in range(S):
        for a in range(A):
            score = torch.zeros(S * A, dtype=pi.dtype)
            score[s * A:(s + 1) * A] = -pi[s]
            score[s * A + a] += 1
            F_ += d[s] * pi[s, a] * torch.outer(score, score)
    return F_


@pytest.mark.parametrize("fn", [fisher_block, fisher_expected_outer])
def test_fisher_accepts(fn, capsys):
    accepts(check_tabular_fisher, fn, capsys)


@pytest.mark.parametrize("fn, words", [
    (lambda pi, d: fisher_block(pi, torch.ones_like(d)), ["visitation d(s)"]),
    (lambda pi, d: fisher_block(pi, d / d.sum()), ["not normalised"]),
    (lambda pi, d: fisher_block(pi, d / d.sum()) if len(d) > 1 else fisher_block(pi, d), ["not normalised"]),
    (lambda pi, d: torch.diag((pi * d[:, None]).reshape(-1)), ["outer product"]),
    (lambda pi, d: fisher_block(pi, d * d), ["not squared"]),
    (lambda pi, d: fisher_block(pi, d).float(), None),  # float32 is fine
])
def test_fisher_rejects(fn, words):
    if words is None:
        check_tabular_fisher(fn)
        return
    rejects(check_tabular_fisher, fn, *words)


# --- natural_gradient_step ----------------------------------------------------------------------------------------
def natural_pinv(g, F_, max_kl):
    x = torch.linalg.pinv(F_) @ g
    return torch.sqrt(2 * max_kl / (x @ F_ @ x)) * x


def natural_lstsq(g, F_, max_kl):
    x = torch.linalg.lstsq(F_, g[:, None], driver="gelsd").solution[:, 0]
    return math.sqrt(2 * max_kl / float(x @ F_ @ x)) * x


def natural_damped_solve(g, F_, max_kl):
    x = torch.linalg.solve(F_ + 1e-9 * torch.eye(len(g), dtype=F_.dtype), g)
    return torch.sqrt(2 * max_kl / (x @ F_ @ x)) * x


def scaled(x, F_, max_kl):
    return torch.sqrt(2 * max_kl / (x @ F_ @ x)) * x


@pytest.mark.parametrize("fn", [natural_pinv, natural_lstsq, natural_damped_solve])
def test_natural_accepts(fn, capsys):
    accepts(check_natural_gradient_step, fn, capsys)


@pytest.mark.parametrize("fn, words", [
    (lambda g, F_, k: torch.sqrt(2 * k / (g @ F_ @ g)) * g, ["vanilla gradient"]),
    (lambda g, F_, k: torch.linalg.pinv(F_) @ g, ["not scaled"]),
    (lambda g, F_, k: natural_pinv(g, F_, k) / math.sqrt(2), ["factor 2"]),
    (lambda g, F_, k: natural_pinv(g, F_, k / 2) * 0 + natural_pinv(F_ @ g, F_, k) * 0 +
     torch.sqrt(2 * k / ((F_ @ g) @ F_ @ (F_ @ g))) * (F_ @ g), ["INVERSE"]),
    (lambda g, F_, k: scaled(torch.linalg.solve(F_, g), F_, k), ["singular", "pinv"]),
])
def test_natural_rejects(fn, words):
    rejects(check_natural_gradient_step, fn, *words)


# --- n_step_advantage ---------------------------------------------------------------------------------------------
def n_step_closed_form(rewards, values, last_value, gamma, n):
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    T, vv = len(r), np.append(v, last_value)
    out = np.zeros(T)
    for t in range(T):
        m = min(n, T - t)
        out[t] = sum(gamma ** l * r[t + l] for l in range(m)) + gamma ** m * vv[t + m] - v[t]
    return out


def n_step_td_errors(rewards, values, last_value, gamma, n):
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    vv = np.append(v, last_value)
    delta = r + gamma * vv[1:] - vv[:-1]
    return np.array([sum(gamma ** l * delta[t + l] for l in range(min(n, len(r) - t))) for t in range(len(r))])


def n_step_vectorised(rewards, values, last_value, gamma, n):
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    T = len(r)
    out = np.empty(T)
    for t in range(T):
        m = min(n, T - t)
        disc = gamma ** np.arange(m)
        boot = last_value if t + m == T else v[t + m]
        out[t] = disc @ r[t:t + m] + gamma ** m * boot - v[t]
    return out


@pytest.mark.parametrize("fn", [n_step_closed_form, n_step_td_errors, n_step_vectorised])
def test_n_step_accepts(fn, capsys):
    accepts(check_n_step_advantage, fn, capsys)


def n_step_variant(rewards, values, last_value, gamma, n, *, truncate=True, disc_boot=True, minus_v=True):
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    T, vv = len(r), np.append(v, last_value)
    out = np.zeros(T)
    for t in range(T):
        m = min(n, T - t)
        out[t] = sum(gamma ** l * r[t + l] for l in range(m)) + \
            (gamma ** (m if truncate else n) if disc_boot else 1.0) * vv[t + m] - (v[t] if minus_v else 0.0)
    return out


@pytest.mark.parametrize("kw, words", [
    ({"truncate": False}, ["min(n, T - t)"]),
    ({"disc_boot": False}, ["bootstrap value is discounted"]),
    ({"minus_v": False}, ["subtracts V_t"]),
])
def test_n_step_rejects(kw, words):
    rejects(check_n_step_advantage, lambda *a: n_step_variant(*a, **kw), *words)


# --- dpg_actor_loss -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda q, actor, obs: -q(obs, actor(obs)).mean(),
    lambda q, actor, obs: -torch.mean(q(obs, actor(obs))),
    lambda q, actor, obs: torch.stack([-q(o[None], actor(o[None])) for o in obs]).mean(),
])
def test_dpg_accepts(fn, capsys):
    accepts(check_dpg_actor_loss, fn, capsys)


def dpg_no_grad(q, actor, obs):
    with torch.no_grad():
        a = actor(obs)
    return -q(obs, a).mean()


@pytest.mark.parametrize("fn, words", [
    (lambda q, actor, obs: q(obs, actor(obs)).mean(), ["sign is flipped"]),
    (lambda q, actor, obs: -q(obs, actor(obs)).sum(), [".mean()"]),
    (lambda q, actor, obs: -q(obs, actor(obs).detach()).mean(), ["no gradient reaches the actor"]),
    (dpg_no_grad, ["no gradient reaches the actor"]),
    (lambda q, actor, obs: -q(obs, actor(obs)), ["scalar"]),
    (lambda q, actor, obs: torch.tensor(-q(obs, actor(obs)).mean().item()), ["cut off from the actor"]),
])
def test_dpg_rejects(fn, words):
    rejects(check_dpg_actor_loss, fn, *words)


# --- reparameterized_sample ---------------------------------------------------------------------------------------
LOG_2PI = math.log(2 * math.pi)


def rs_stable(mu, log_std, eps):
    u = mu + log_std.exp() * eps
    logp = (-0.5 * eps ** 2 - log_std - 0.5 * LOG_2PI - 2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
    return torch.tanh(u), logp


def rs_torch_distributions(mu, log_std, eps):
    normal = torch.distributions.Normal(mu, log_std.exp())
    u = mu + log_std.exp() * eps
    return torch.tanh(u), (normal.log_prob(u) - 2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


def rs_transformed(mu, log_std, eps):
    from torch.distributions import Normal, TransformedDistribution
    from torch.distributions.transforms import TanhTransform
    u = mu + log_std.exp() * eps
    dist = TransformedDistribution(Normal(mu, log_std.exp()), [TanhTransform(cache_size=1)])
    a = dist.transforms[0](u)  # cached: log_prob(a) inverts from the cache, not atanh
    return a, dist.log_prob(a).sum(-1)


@pytest.mark.parametrize("fn", [rs_stable, rs_torch_distributions, rs_transformed])
def test_reparam_accepts(fn, capsys):
    accepts(check_reparameterized_sample, fn, capsys)


def rs_detached_u(mu, log_std, eps):
    a, logp = rs_stable(mu.detach(), log_std.detach(), eps)
    return a, logp


def rs_sample_not_rsample(mu, log_std, eps):
    u = (mu + log_std.exp() * eps).detach()  # like Normal(mu, std).sample()
    normal = torch.distributions.Normal(mu, log_std.exp())
    return torch.tanh(u), (normal.log_prob(u) - 2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


def rs_naive_atanh(mu, log_std, eps):
    a = torch.tanh(mu + log_std.exp() * eps)
    u = torch.atanh(a)
    return a, (torch.distributions.Normal(mu, log_std.exp()).log_prob(u) - torch.log(1 - a ** 2)).sum(-1)


@pytest.mark.parametrize("fn, words", [
    (lambda mu, ls, eps: (mu + ls.exp() * eps, rs_stable(mu, ls, eps)[1]), ["squash"]),
    (lambda mu, ls, eps: (rs_stable(mu, ls, eps)[0], torch.distributions.Normal(mu, ls.exp()).log_prob(
        mu + ls.exp() * eps).sum(-1)), ["change-of-variables"]),
    (lambda mu, ls, eps: (torch.tanh(mu + ls * eps), rs_stable(mu, ls, eps)[1]), ["exponentiate"]),
    (rs_detached_u, ["reparameterisation trick"]),
    (rs_sample_not_rsample, ["reparameterisation trick"]),
    (rs_naive_atanh, ["near the bounds"]),
    (lambda mu, ls, eps: rs_stable(mu, ls, eps)[0], ["pair (a, logp)"]),
])
def test_reparam_rejects(fn, words):
    rejects(check_reparameterized_sample, fn, *words)


# --- tanh_density -------------------------------------------------------------------------------------------------
def td_formula(a, mu, sigma):
    u = np.arctanh(a)
    return np.exp(-0.5 * ((u - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi) * (1 - a ** 2))


def td_via_log(a, mu, sigma):
    a = np.asarray(a, float)
    u = 0.5 * np.log((1 + a) / (1 - a))
    return np.exp(-0.5 * ((u - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi) - np.log1p(-a * a))


def td_torch(a, mu, sigma):
    u = torch.atanh(torch.as_tensor(a, dtype=torch.float64))
    lp = torch.distributions.Normal(mu, sigma).log_prob(u) - torch.log(1 - torch.tanh(u) ** 2)
    return lp.exp().numpy()


@pytest.mark.parametrize("fn", [td_formula, td_via_log, td_torch])
def test_tanh_density_accepts(fn, capsys):
    accepts(check_tanh_density, fn, capsys)


@pytest.mark.parametrize("fn, words", [
    (lambda a, mu, s: td_formula(a, mu, s) * (1 - a ** 2) ** 2, ["do not multiply"]),
    (lambda a, mu, s: td_formula(a, mu, s) * (1 - a ** 2), ["Jacobian is missing"]),
    (lambda a, mu, s: np.exp(-0.5 * ((a - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi)), ["not Gaussian"]),
    (lambda a, mu, s: np.log(td_formula(a, mu, s)), ["not its logarithm"]),
    (lambda a, mu, s: torch.as_tensor(td_formula(a, mu, s)), ["NumPy array"]),
])
def test_tanh_density_rejects(fn, words):
    rejects(check_tanh_density, fn, *words)


# --- every new checker: a stub says "not implemented yet", a non-function is refused --------------------------------
ALL = [check_log_derivative_gradient, check_score_estimator_moments, check_score_gradient_samples,
       check_tabular_fisher, check_natural_gradient_step, check_n_step_advantage, check_dpg_actor_loss,
       check_reparameterized_sample, check_tanh_density]


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_stub_and_garbage(check):
    def stub(*args):
        raise NotImplementedError("not implemented yet: replace this line with your code")

    rejects(check, stub, "not implemented yet")
    rejects(check, lambda *args: None, "return")
    with pytest.raises(CheckFailed):
        check(lambda *args: "nonsense")
    with pytest.raises(CheckFailed):
        check(42)
