"""Checkers of part 2's exercises: the REINFORCE loss and the Gaussian policy gradient of a pricing bandit.

Expected values are computed independently of the exercise's own formula where it matters (the loss's gradient is
compared with the hand-derived estimate -(G - b)/n; the Gaussian policy gradient with autograd through
torch.distributions.Normal), and each known wrong answer is computed so that its hint can say what went wrong.
"""
from __future__ import annotations

import numpy as np
import torch

from lecturekit.course.checking import Check, checker, describe


# ---------------------------------------------------------------------------------------------------- reinforce_loss
def _loss_mistakes(logp: torch.Tensor, ret: torch.Tensor, b: torch.Tensor | None) -> dict:
    lp, g = logp.detach().double(), ret.detach().double()
    bb = torch.zeros_like(g) if b is None else b.detach().double()
    adv = g - bb
    out = {
        "sign": ((lp * adv).mean(), "the sign is flipped: this is the objective's estimate; the loss that an optimizer "
                                    "*minimizes* is its negative, -mean(log_probs * (returns - baseline))."),
        "sum": (-(lp * adv).sum(), "you summed over the steps; the exercise asks for the mean (sum / number of steps)."),
        "normalized": (-(lp * (adv - adv.mean()) / (adv.std() + 1e-8)).mean() if adv.numel() > 1 else None,
                       "you normalized the advantages inside the loss; the loss takes returns and baseline as given."),
        "no_log": (-(lp.exp() * adv).mean(), "use the log-probabilities as given; do not exponentiate them."),
    }
    if b is not None:
        out["no_baseline"] = (-(lp * g).mean(), "the baseline is ignored: weight each log-probability by "
                                                "returns - baseline.")
        out["plus_baseline"] = (-(lp * (g + bb)).mean(), "the baseline is subtracted from the returns, not added.")
        out["only_baseline"] = (-(lp * bb).mean(), "you weighted the log-probabilities by the baseline alone.")
    return {k: v for k, v in out.items() if v[0] is not None}


def _grad_of(loss: torch.Tensor, t: torch.Tensor) -> torch.Tensor | None:
    if not (isinstance(loss, torch.Tensor) and loss.requires_grad and t.requires_grad):
        return None
    (g,) = torch.autograd.grad(loss, [t], retain_graph=True, allow_unused=True)
    return g


@checker("reinforce_loss")
def check_reinforce_loss(fn) -> None:
    """Check `fn(log_probs, returns, baseline=None)` = -mean(log_probs * (returns - baseline)), a scalar tensor whose
    gradient flows into log_probs only."""
    c = Check("reinforce_loss")
    g = torch.Generator().manual_seed(0)

    def t(*shape, scale=1.0, shift=0.0):
        return torch.randn(*shape, generator=g) * scale + shift

    cases = [
        ("log_probs=[-1., -2.], returns=[3., 1.], no baseline", torch.tensor([-1.0, -2.0]), torch.tensor([3.0, 1.0]),
         None),
        ("log_probs=[-1., -2.], returns=[3., 1.], baseline=[1., 1.]", torch.tensor([-1.0, -2.0]),
         torch.tensor([3.0, 1.0]), torch.tensor([1.0, 1.0])),
        ("log_probs=[-0.5], returns=[2.], baseline=[2.] (return equal to the baseline)", torch.tensor([-0.5]),
         torch.tensor([2.0]), torch.tensor([2.0])),
        ("6 steps with a varying baseline", -t(6).abs(), t(6, scale=3, shift=5), t(6, shift=4)),
        ("(T, N) = (5, 3) tensors, no baseline", -t(5, 3).abs(), t(5, 3, scale=10, shift=20), None),
        ("(T, N) = (7, 4) tensors with a baseline", -t(7, 4).abs(), t(7, 4, scale=10, shift=20),
         t(7, 4, scale=10, shift=20)),
    ]
    for case, logp, ret, b in cases:
        logp = logp.clone().requires_grad_(True)
        args = (logp, ret) if b is None else (logp, ret, b)
        got = c.call(fn, *args, case=case)
        adv = ret - (0.0 if b is None else b)
        expected = -(logp.detach() * adv).mean()
        c.expect_tensor(got, expected, case=case, mistakes=_loss_mistakes(logp, ret, b),
                        hint="loss = -mean(log_probs * (returns - baseline)), with baseline 0 when it is None.")
        grad = _grad_of(got, logp)
        if grad is None:
            c.fail(case, expected="a loss that depends on log_probs (requires_grad=True)", got=got,
                   hint="keep the computation in torch and do not detach log_probs (no .detach(), .item(), "
                        ".numpy() or torch.tensor(...) of it): the policy gradient flows through log_probs.")
        c.expect_tensor(grad, -adv / adv.numel(), case=case + ": the gradient with respect to log_probs",
                        hint="d loss / d log_probs[t] must be -(returns[t] - baseline[t]) / n.")
    # no gradient may flow into the returns or the baseline (e.g. a baseline that is a value network's output)
    case = "returns and baseline that require gradients (a baseline computed by a value network)"
    logp = (-t(8).abs()).requires_grad_(True)
    ret, b = t(8, scale=3, shift=5).requires_grad_(True), t(8, shift=5).requires_grad_(True)
    got = c.call(fn, logp, ret, b, case=case)
    c.expect_tensor(got, -(logp.detach() * (ret.detach() - b.detach())).mean(), case=case,
                    mistakes=_loss_mistakes(logp, ret, b))
    for name, x in (("baseline", b), ("returns", ret)):
        gx = _grad_of(got, x)
        if gx is not None and gx.abs().sum() > 0:
            c.fail(case, expected=f"no gradient into `{name}`", got=f"d loss / d {name} = {describe(gx)}",
                   hint=f"`{name}` is a constant of the estimator: use {name}.detach() so that no gradient "
                        "flows into it (otherwise the loss also trains whatever produced it, in a direction that has "
                        "nothing to do with its own target).")
    c.passed(f"{len(cases) + 1} cases: 1 to 28 steps, 1-D and (T, N) tensors, with and without a baseline, gradients")


# ---------------------------------------------------------------------------------------------------- gaussian_policy_gradient
def _autograd_gaussian_pg(actions, mu, log_std, returns, baseline) -> np.ndarray:
    """grad of mean_i log N(a_i; mu, exp(log_std)^2) (R_i - b) with respect to (mu, log_std), by autograd."""
    m = torch.tensor(float(mu), dtype=torch.float64, requires_grad=True)
    s = torch.tensor(float(log_std), dtype=torch.float64, requires_grad=True)
    a = torch.as_tensor(np.asarray(actions, dtype=np.float64))
    adv = torch.as_tensor(np.asarray(returns, dtype=np.float64)) - float(baseline)
    (torch.distributions.Normal(m, s.exp()).log_prob(a) * adv).mean().backward()
    return np.array([m.grad.item(), s.grad.item()])


def _gaussian_pg_mistakes(actions, mu, log_std, returns, baseline) -> dict:
    a = np.asarray(actions, dtype=np.float64)
    adv = np.asarray(returns, dtype=np.float64) - baseline
    sd = np.exp(log_std)
    d = a - mu

    def est(s_mu, s_ls, weight=adv, reduce=np.mean):
        return np.array([reduce(s_mu * weight), reduce(s_ls * weight)])

    return {
        "sign": (est(-d / sd ** 2, -(d ** 2 / sd ** 2 - 1)), "the sign is flipped: the score of the mean is "
                                                             "(a - mu) / sigma^2, pointing towards the sampled action."),
        "sigma_not_var": (est(d / sd, d ** 2 / sd ** 2 - 1), "the mean's score divides by sigma^2, not by sigma."),
        "no_minus_one": (est(d / sd ** 2, d ** 2 / sd ** 2), "the log_std score is (a - mu)^2 / sigma^2 - 1: the -1 "
                                                              "(from the -log sigma normalizer) is missing."),
        "wrt_sigma": (est(d / sd ** 2, d ** 2 / sd ** 3 - 1 / sd), "that is the derivative with respect to sigma; the "
                                                                     "parameter is log_std: multiply by sigma (chain rule)."),
        "var_is_exp_log_std": (est(d / sd, d ** 2 / sd - 1), "sigma = exp(log_std), so sigma^2 = exp(2 log_std), not "
                                                             "exp(log_std)."),
        "no_baseline": (est(d / sd ** 2, d ** 2 / sd ** 2 - 1, weight=adv + baseline),
                        "the baseline is ignored: weight each score by returns - baseline."),
        "sum": (est(d / sd ** 2, d ** 2 / sd ** 2 - 1, reduce=np.sum), "you summed over the samples; average them "
                                                                        "(the estimate is a sample mean)."),
    }


@checker("gaussian_policy_gradient")
def check_gaussian_policy_gradient(fn) -> None:
    """Check `fn(actions, mu, log_std, returns, baseline=0.0)` = the REINFORCE estimate of the gradient of the expected
    return of a Gaussian policy N(mu, exp(log_std)^2) with respect to (mu, log_std), as a NumPy array of shape (2,)."""
    c = Check("gaussian_policy_gradient")
    rng = np.random.default_rng(2)
    a5 = rng.normal(2.0, 0.5, size=5)
    a200 = rng.normal(1.5, 0.3, size=200)
    cases = [
        (np.array([1.0]), 0.0, 0.0, np.array([1.0]), 0.0),
        (np.array([2.0]), 1.0, np.log(2.0), np.array([3.0]), 1.0),
        (np.array([0.5, 1.5]), 1.0, -1.0, np.array([2.0, -1.0]), 0.0),
        (a5, 2.0, np.log(0.5), a5 * 3 * np.exp(-a5), 0.3),
        (a200, 1.4, np.log(0.3), a200 * 3 * np.exp(-a200), 1.0),
        (np.array([0, 1, 2, 3]), 1.0, 0.5, np.array([1, 0, 2, 1]), 0.5),  # integer actions and returns
    ]
    for actions, mu, log_std, returns, baseline in cases:
        case = (f"actions={describe(actions)}, mu={mu:.4g}, log_std={log_std:.4g}, returns={describe(returns)}, "
                f"baseline={baseline:g}") if len(actions) <= 6 else \
            f"{len(actions)} sampled prices, mu={mu:.4g}, log_std={log_std:.4g}, baseline={baseline:g}"
        got = c.call(fn, actions, mu, log_std, returns, baseline, case=case)
        c.expect_close(got, _autograd_gaussian_pg(actions, mu, log_std, returns, baseline), case=case, atol=1e-8,
                       mistakes=_gaussian_pg_mistakes(actions, mu, log_std, returns, baseline),
                       hint="with d = a - mu and sigma = exp(log_std): score_mu = d / sigma^2, score_log_std = "
                            "d^2 / sigma^2 - 1; return [mean(score_mu * (R - b)), mean(score_log_std * (R - b))].")
    # the default baseline is 0
    case = "actions=[1., 3.], mu=2, log_std=0, returns=[1., 2.] with the baseline left at its default"
    actions, returns = np.array([1.0, 3.0]), np.array([1.0, 2.0])
    got = c.call(fn, actions, 2.0, 0.0, returns, case=case)
    c.expect_close(got, _autograd_gaussian_pg(actions, 2.0, 0.0, returns, 0.0), case=case,
                   hint="the baseline defaults to 0.")
    c.passed(f"{len(cases) + 1} cases: 1 to 200 samples, with and without a baseline, integer inputs")


# ----------------------------------------------------------------------------------------- log_derivative_gradient
def _softmax(h: np.ndarray) -> np.ndarray:
    z = np.exp(h - h.max())
    return z / z.sum()


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

# ------------------------------------------------------------------------------------------ score_estimator_moments
def _moments(logits, rewards, b) -> tuple[np.ndarray, float, np.ndarray]:
    """Exact mean (A,), total variance and second moment per action of g(a) = (r(a) - b)(e_a - pi), a ~ pi."""
    h = np.asarray(logits, dtype=np.float64)
    pi = np.exp(h - h.max())
    pi /= pi.sum()
    g = (np.asarray(rewards, dtype=np.float64) - b)[:, None] * (np.eye(len(pi)) - pi)  # row a: the sample for a
    mean = pi @ g
    return mean, float(pi @ (g * g).sum(1) - mean @ mean), g


def _moments_mistakes(logits, rewards, b) -> dict:
    mean, var, g = _moments(logits, rewards, b)
    h = np.asarray(logits, dtype=np.float64)
    pi = np.exp(h - h.max())
    pi /= pi.sum()
    return {  # in this order: the first case has b = 0, where a missing baseline cannot show
        "plus_b": ((_moments(logits, rewards, -b)[0], _moments(logits, rewards, -b)[1]),
                   "the baseline is subtracted: g(a) = (r(a) - b) grad log pi(a)."),
        "no_b": ((_moments(logits, rewards, 0.0)[0], _moments(logits, rewards, 0.0)[1]),
                 "the baseline is missing: the mean does not change with b, but the variance does."),
        "second_moment": ((mean, float(pi @ (g * g).sum(1))),
                          "that is the second moment E[|g|^2]: the variance subtracts the squared mean, "
                          "Var = E[|g|^2] - |E[g]|^2."),
        "unweighted": ((g.mean(0), float(g.var(0).sum())), "the moments are expectations under the policy: weight "
                                                          "each action's sample g(a) by pi(a), not 1/A."),
    }


@checker("score_estimator_moments")
def check_score_estimator_moments(fn) -> None:
    """Check `fn(logits, rewards, baseline) -> (mean, variance)` of the one-sample estimator (r(a) - b) grad log pi(a).

    The mean must equal the exact gradient of E_pi[r] (autograd) for every baseline: that is the baseline's zero
    expectation.  The variance is compared with the exact sum over actions.
    """
    c = Check("score_estimator_moments")
    rng = np.random.default_rng(4)
    cases = [
        (np.array([0.0, 0.0]), np.array([1.0, 0.0]), 0.0),
        (np.array([0.0, 0.0]), np.array([1.0, 0.0]), 0.5),
        (np.array([1.0, -1.0, 0.5]), np.array([1.0, 2.0, -1.0]), 0.0),
        (np.array([1.0, -1.0, 0.5]), np.array([1.0, 2.0, -1.0]), 3.0),
        (rng.normal(size=6), rng.normal(2.0, 1.0, size=6), 1.7),
    ]
    for logits, rewards, b in cases:
        case = f"logits={logits.tolist()}, rewards={rewards.tolist()}, baseline={b}" if len(logits) <= 3 else \
            f"{len(logits)} actions with random logits and rewards, baseline={b}"
        got = c.call(fn, logits, rewards, b, case=case)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            c.fail(case, expected="a pair (mean, variance)", got=got,
                   hint="return two things: the mean vector (A,) and the total variance (a float).")
        mean, var, _ = _moments(logits, rewards, b)
        h = torch.tensor(logits, requires_grad=True)
        (exact,) = torch.autograd.grad(torch.softmax(h, -1) @ torch.as_tensor(rewards), h)
        wrong = _moments_mistakes(logits, rewards, b)
        c.expect_close(got[0], exact.numpy(), case=case + " (the mean)",
                       mistakes={k: (m, hint) for k, ((m, _), hint) in wrong.items()},
                       hint="the mean of the estimator is the exact gradient sum_a pi(a) r(a) (e_a - pi), whatever b.")
        c.expect_close(got[1], var, case=case + " (the variance)",
                       mistakes={k: (v, hint) for k, ((_, v), hint) in wrong.items()},
                       hint="total variance = sum_a pi(a) |g(a)|^2 - |mean|^2, with g(a) = (r(a) - b)(e_a - pi).")
    c.passed(f"{len(cases)} cases: the mean equals the exact gradient for every baseline, and the variance")


# -------------------------------------------------------------------------------------------- score_gradient_samples
def _samples_variant(theta, episodes, gamma, baseline, *, discount_t=True, rtg=True, b_sign=1.0, score_pi=True,
                     ret_gamma=None) -> np.ndarray:
    """Per-episode samples sum_t gamma^t (G_t - b(s_t)) (e_{a_t} - pi(.|s_t)) in row s_t, with one piece changed."""
    from lecturekit.returns import discounted_returns

    th = np.asarray(theta, dtype=np.float64)
    S, A = th.shape
    pi = np.exp(th - th.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    b = np.broadcast_to(np.asarray(baseline, dtype=np.float64), (S,))
    out = np.zeros((len(episodes), S, A))
    for i, (states, actions, rewards) in enumerate(episodes):
        G = discounted_returns(rewards, gamma if ret_gamma is None else ret_gamma)
        if not rtg:
            G = np.full(len(G), G[0])
        for t, (s, a) in enumerate(zip(states, actions)):
            w = (gamma ** t if discount_t else 1.0) * (G[t] - b_sign * b[s])
            out[i, s] -= w * pi[s] if score_pi else 0.0
            out[i, s, a] += w
    return out


def _samples_mistakes(theta, episodes, gamma, baseline) -> dict:
    v = lambda **kw: _samples_variant(theta, episodes, gamma, baseline, **kw)  # noqa: E731
    return {
        "no_gamma_t": (v(discount_t=False), "the factor gamma^t is missing: in a discounted problem the step-t term is "
                                            "gamma^t (G_t - b(s_t)) grad log pi(a_t|s_t) (the policy gradient theorem "
                                            "weights states by the discounted visitation)."),
        "whole_return": (v(rtg=False), "every step got the whole episode's return G_0: use the return-to-go G_t of "
                                       "step t (rewards from t on, discounted from t)."),
        "plus_b": (v(b_sign=-1.0), "subtract the baseline: (G_t - b(s_t))."),
        "score_e_a": (v(score_pi=False), "grad log pi(a|s) = e_a - pi(.|s) in row s: the -pi(.|s) part is missing."),
        "undiscounted_G": (v(ret_gamma=1.0), "the returns-to-go are not discounted: G_t = sum_{k >= t} gamma^(k - t) "
                                             "r_k."),
    }


def _tabular_cases() -> list:
    from lecturekit.tabular.mdp import small_mdp

    f = np.array
    theta1 = f([[0.0, 0.0], [1.0, -1.0]])
    one_step = [(f([0]), f([1]), f([2.0]))]
    two_eps = [(f([0, 1]), f([1, 0]), f([1.0, 2.0])), (f([1]), f([1]), f([-1.0]))]
    mdp = small_mdp()
    theta = np.random.default_rng(1).normal(size=(mdp.n_states, mdp.n_actions))
    eps = mdp.sample_episodes(theta, 40, np.random.default_rng(2))
    V = mdp.value(theta).numpy()
    return [
        ("one episode of one step, no baseline", theta1, one_step, 0.9, 0.0),
        ("two short episodes, gamma = 0.5, no baseline", theta1, two_eps, 0.5, 0.0),
        ("two short episodes, gamma = 0.5, constant baseline 1.5", theta1, two_eps, 0.5, 1.5),
        ("two short episodes, gamma = 0.5, baseline per state b = [1, -2]", theta1, two_eps, 0.5, f([1.0, -2.0])),
        ("40 episodes of the course's small MDP, baseline V_pi (S,)", theta, eps, mdp.gamma, V),
    ]


@checker("score_gradient_samples")
def check_score_gradient_samples(fn) -> None:
    """Check `fn(theta, episodes, gamma, baseline)` -> (n, S, A) against `lecturekit.tabular.baselines`."""
    from lecturekit.tabular.baselines import per_episode_gradients

    c = Check("score_gradient_samples")
    cases = _tabular_cases()
    for case, theta, episodes, gamma, baseline in cases:
        got = c.call(fn, theta, episodes, gamma, baseline, case=case)
        c.expect_close(got, per_episode_gradients(theta, episodes, gamma, baseline), case=case, rtol=1e-6, atol=1e-9,
                       mistakes=_samples_mistakes(theta, episodes, gamma, baseline),
                       hint="episode i's sample is sum_t gamma^t (G_t - b(s_t)) (e_{a_t} - pi(.|s_t)), placed in row "
                            "s_t of an (S, A) array.")
    c.passed(f"{len(cases)} cases: 1 to 40 episodes, no, constant and per-state baselines")
