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


# ------------------------------------------------------------------------------------------ score_estimator_moments
def _softmax(h: np.ndarray) -> np.ndarray:
    z = np.exp(h - h.max())
    return z / z.sum()


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
    """Check `fn(theta, episodes, gamma, baseline)` -> (n, S, A) against `lecturekit.tabular.estimators`."""
    from lecturekit.tabular.estimators import per_episode_gradients as reference

    def per_episode_gradients(theta, episodes, gamma, baseline):
        return reference(theta, episodes, gamma, reward_to_go=True, baseline=baseline)

    c = Check("score_gradient_samples")
    cases = _tabular_cases()
    for case, theta, episodes, gamma, baseline in cases:
        got = c.call(fn, theta, episodes, gamma, baseline, case=case)
        c.expect_close(got, per_episode_gradients(theta, episodes, gamma, baseline), case=case, rtol=1e-6, atol=1e-9,
                       mistakes=_samples_mistakes(theta, episodes, gamma, baseline),
                       hint="episode i's sample is sum_t gamma^t (G_t - b(s_t)) (e_{a_t} - pi(.|s_t)), placed in row "
                            "s_t of an (S, A) array.")
    c.passed(f"{len(cases)} cases: 1 to 40 episodes, no, constant and per-state baselines")


# ------------------------------------------------------------------------------------------ collect_episodes (build-it)
COLLECT_FIELDS = ("obs", "actions", "rewards", "valid", "ends")


def _collect_variant(envs, policy, bufs, t_max, bug: str | None = None):
    """Episode collection written out (independently of `lecturekit.algos.reinforce`), with one bug if asked."""
    from lecturekit.algos.reinforce import Batch

    n = envs.num_envs
    obs, _ = envs.reset()
    alive = np.ones(n, dtype=bool)
    rows = {k: [] for k in COLLECT_FIELDS}
    for t in range(t_max):
        u = policy.sample(np.asarray(obs, dtype=np.float32))
        next_obs, r, term, trunc, _ = envs.step(policy.to_env(u))
        done = alive & (term | trunc) if bug == "no_tmax_end" else alive & (term | trunc | (t == t_max - 1))
        rows["obs"].append(np.asarray(next_obs if bug == "next_obs" else obs, dtype=np.float32))
        rows["actions"].append(u)
        rows["rewards"].append(r.astype(np.float32) if bug == "rewards_after_end" else np.where(alive, r, 0.0))
        rows["ends"].append(done | bufs["ends"][t] if bug == "no_clear" else done)
        if bug == "no_clear":  # only the running copies' entries written: the others keep the previous batch's
            rows["rewards"][-1] = np.where(alive, r, bufs["rewards"][t])
            rows["valid"].append(alive | bufs["valid"][t])
            alive = alive & ~done
        elif bug == "valid_after_update":
            alive = alive & ~done
            rows["valid"].append(alive.copy())
        else:
            rows["valid"].append(alive.copy())
            alive = alive & ~done
        obs = next_obs
        if (alive.all() is False or not alive.all()) if bug == "stop_at_first" else not alive.any():
            break
    arrays = {k: np.stack(v) for k, v in rows.items()}
    if bug == "untrimmed":
        for k, v in arrays.items():
            pad = np.zeros((t_max - len(v), *v.shape[1:]), v.dtype)
            arrays[k] = np.concatenate([v, pad])
    return Batch(arrays["obs"].astype(np.float32), arrays["actions"], arrays["rewards"].astype(np.float32),
                 arrays["valid"].astype(bool), arrays["ends"].astype(bool))


COLLECT_MISTAKES = {
    "valid_after_update": "off by one: mark step t valid *before* removing the episodes that end at t (the last step "
                          "of an episode belongs to it: valid[t] = alive, then alive &= ~done).",
    "rewards_after_end": "rewards of copies whose episode has already ended must be 0: those steps belong to no "
                         "episode of the batch (rewards[t] = np.where(alive, r, 0)).",
    "no_tmax_end": "an episode still running at t = t_max - 1 ends there: mark ends[t_max - 1] for it (the batch "
                   "holds complete episodes, cut at t_max).",
    "stop_at_first": "keep stepping until *every* copy has finished its episode (while alive.any()), not until the "
                     "first one finishes.",
    "next_obs": "store the observation the action was chosen from (obs before the step), not the one after it.",
    "no_clear": "the buffers still hold the previous batch: write every entry of row t (0 / False for the copies "
                "whose episode has ended), not only those of the running copies.",
    "untrimmed": "return only the T steps you ran (bufs[...][:t]), not all t_max rows of the buffers.",
}


def _collect_case(N: int, t_max: int, seed: int, garbage: bool):
    """Fresh identical (envs, policy, bufs) for one case: CartPole copies reset with seeds seed, seed + 1, ...; a
    random softmax policy sampling from its own generator; buffers full of garbage if `garbage` (a previous batch)."""
    from lecturekit.algos import reinforce as R
    from lecturekit.envs import make_vec

    envs = make_vec("CartPole-v1", N, seed)
    cfg = R.Config(hidden=(16,))
    model = R.make_model(envs.single_observation_space, envs.single_action_space, cfg,
                         torch.Generator().manual_seed(seed))
    with torch.no_grad():  # a policy that prefers one side in some states: episodes of quite different lengths
        model.pi[-1].weight.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(seed + 1))
    policy = R.Policy(model, envs.single_action_space, torch.Generator().manual_seed(seed + 2))
    bufs = R.episode_buffers(envs, t_max)
    if garbage:
        rng = np.random.default_rng(seed)
        for k, v in bufs.items():
            v[...] = rng.random(v.shape) < 0.5 if v.dtype == bool else rng.integers(0, 2, v.shape).astype(v.dtype)
    return envs, policy, bufs


@checker("collect_episodes")
def check_collect_episodes(fn) -> None:
    """Check `fn(envs, policy, bufs, t_max) -> Batch` against the reference collection on identical seeded copies of
    CartPole and of a policy that samples from its own generator: every field (obs, actions, rewards, valid, ends)
    must be equal, including when t_max cuts episodes and when the buffers hold a previous batch."""
    from lecturekit.algos import reinforce as R

    c = Check("collect_episodes")
    cases = [(4, 500, 0, False), (6, 12, 1, False), (5, 30, 2, True), (8, 500, 3, True)]
    for N, t_max, seed, garbage in cases:
        case = (f"N={N} CartPole copies, t_max={t_max}" + (" (cuts episodes)" if t_max < 100 else "") +
                (", buffers still holding a previous batch" if garbage else ""))
        envs, policy, bufs = _collect_case(N, t_max, seed, garbage)
        ref = R.collect_episodes(envs, policy, bufs, t_max)
        ref = {k: np.array(getattr(ref, k)) for k in COLLECT_FIELDS}
        envs.close()
        envs, policy, bufs = _collect_case(N, t_max, seed, garbage)
        got = c.call(fn, envs, policy, bufs, t_max, case=case, check_inputs=False)
        envs.close()
        c._not_none(got, case)
        missing = [k for k in COLLECT_FIELDS if not hasattr(got, k)]
        if missing:
            c.fail(case, expected="a Batch(obs, actions, rewards, valid, ends)", got=got,
                   hint="return reinforce.Batch(obs, actions, rewards, valid, ends) built from the buffers.")
        got = {k: np.asarray(getattr(got, k)) for k in COLLECT_FIELDS}
        bad = _first_field_difference(got, ref)
        if bad is None:
            continue
        for bug, hint in COLLECT_MISTAKES.items():
            envs, policy, bufs = _collect_case(N, t_max, seed, garbage)
            out = _collect_variant(envs, policy, bufs, t_max, bug)
            envs.close()
            if _first_field_difference(got, {k: np.asarray(getattr(out, k)) for k in COLLECT_FIELDS}) is None:
                c.fail(case, expected=f"{bad[0]}: {describe(ref[bad[0]])}", got=describe(got[bad[0]]), hint=hint)
        field_hints = {
            "obs": "obs[t] is the observation the action of step t was chosen from.",
            "actions": "sample with policy.sample(obs) once per step (it draws from the policy's own generator: "
                       "do not sample any other way or an extra time), and store those network actions.",
            "rewards": "rewards[t, i] is the reward of step t for copies still in their episode, 0 afterwards.",
            "valid": "valid[t, i] is True while copy i's episode is running, including its last step.",
            "ends": "ends[t, i] is True only on the last step of copy i's episode (terminated, truncated or cut at "
                    "t_max - 1).",
        }
        c.fail(case, expected=f"{bad[0]}: {describe(ref[bad[0]])}", got=f"{describe(got[bad[0]])}; {bad[1]}",
               hint=field_hints[bad[0]])
    c.passed(f"{len(cases)} batches of 4 to 8 episodes, cut by t_max or not, reused buffers")


def _first_field_difference(got: dict, ref: dict):
    """(field, description) of the first difference: values on the rows both have (field by field, earliest row
    first, so that a different action is named before the episodes it changed), then the number of rows."""
    for k in COLLECT_FIELDS:
        if got[k].shape[1:] != ref[k].shape[1:]:
            return k, f"shape {got[k].shape}, expected {ref[k].shape}"
    T = min(len(got["obs"]), len(ref["obs"]))
    first = None
    for k in COLLECT_FIELDS:
        g, r = got[k][:T].astype(np.float64), ref[k][:T].astype(np.float64)
        if not np.array_equal(g, r):
            idx = tuple(int(i) for i in np.argwhere(g != r)[0])
            if first is None or idx[0] < first[0][0]:
                first = (idx, k)
    if first is not None:
        idx, k = first
        return k, f"first difference at index {idx}: expected {ref[k][idx]}, got {got[k][idx]}"
    for k in COLLECT_FIELDS:
        if got[k].shape != ref[k].shape:
            return k, f"shape {got[k].shape}, expected {ref[k].shape} (T = the length of the longest episode)"
    return None


# ------------------------------------------------------------------------------------------ reinforce_update (build-it)
REINFORCE_BUDGET, REINFORCE_SEEDS = 50_000, (0, 1)  # layer 3: CartPole-v1 475 within this many env steps


def _reinforce_returns(batch, gamma: float, bug: str | None) -> np.ndarray:
    r = batch.rewards.astype(np.float64)
    g = 1.0 if bug == "no_discount" else gamma
    G, run = np.zeros(r.shape), np.zeros(r.shape[1])
    for t in reversed(range(r.shape[0])):
        run = r[t] + g * run  # rewards are 0 after an episode's end: each column is one episode
        G[t] = run
    if bug == "total_return":
        G = np.broadcast_to(G[0], G.shape).copy()
    elif bug == "off_by_one":
        G = np.vstack([G[1:], np.zeros((1, r.shape[1]))])
    elif bug == "discount_from_start":
        G = G * gamma ** np.arange(r.shape[0])[:, None]
    return G


def _reinforce_variant(model, opt, vf_opt, batch, cfg, bug: str | None = None) -> dict:
    """The REINFORCE update written out (independently of `lecturekit.algos.reinforce`), with one bug if asked."""
    G = torch.as_tensor(_reinforce_returns(batch, cfg.gamma, bug), dtype=torch.float32)
    m = torch.ones(batch.valid.shape, dtype=torch.bool) if bug == "no_mask" else torch.as_tensor(batch.valid)
    obs, act, ret = torch.as_tensor(batch.obs)[m], torch.as_tensor(batch.actions)[m], G[m]

    def fit_value():
        for _ in range(1 if bug == "vf_once" else cfg.vf_iters):
            target = (ret - ret.mean()) / (ret.std() + 1e-8) if bug == "value_normalized_target" else ret
            vl = (model.value(obs) - target).pow(2).mean()
            if bug != "vf_no_zero_grad":
                vf_opt.zero_grad()
            vl.backward()
            vf_opt.step()
        return vl

    if vf_opt is not None and bug == "value_first":
        vl = fit_value()
    if cfg.baseline == "value":
        with torch.no_grad():
            b = model.value(obs)
    elif cfg.baseline == "mean":
        b = G.mean() if bug == "baseline_all" else ret.mean()
    else:
        b = torch.zeros(())
    adv = ret - b
    if cfg.normalize_adv and bug != "no_normalize":
        if bug == "normalize_centered":
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        else:
            std = ret.std() if bug == "std_of_returns" else adv.std(unbiased=bug != "population_std")
            adv = adv / (std + 1e-8)
    logp, ent = model.log_prob(obs, act), model.entropy(obs).mean()
    pi_l = (logp * adv).mean() if bug == "pl_sign" else -(logp * adv).mean()
    if bug == "mean_over_all":
        pi_l = -(logp * adv).sum() / batch.valid.size
    loss = pi_l - cfg.entropy_coef * ent
    if bug != "no_zero_grad":
        opt.zero_grad()
    loss.backward()
    opt.step()
    stats = {"loss": loss.item(), "episode_return": float(batch.rewards.sum(0).mean())}
    if vf_opt is not None:
        if bug != "value_first":
            vl = fit_value()
        stats["value_loss"] = vl.item()
    return stats


REINFORCE_MISTAKES = {
    "no_zero_grad": "the gradients of the previous update were still in .grad: call opt.zero_grad() before "
                    "loss.backward() (backward adds to .grad).",
    "vf_no_zero_grad": "the value network's gradients accumulated: call vf_opt.zero_grad() before each backward() "
                       "of the value regression.",
    "total_return": "every step got the whole episode's return: use the reward-to-go G_t = sum_{k >= t} "
                    "gamma^(k - t) r_k (rewards before t were earned before a_t was chosen and only add noise).",
    "off_by_one": "off by one: the reward-to-go of step t includes r_t itself, G_t = r_t + gamma G_{t+1}.",
    "no_discount": "discount the reward-to-go with cfg.gamma: G_t = r_t + gamma G_{t+1}.",
    "discount_from_start": "G_t is discounted from step t, not from the start of the episode: drop the extra "
                           "gamma^t factor.",
    "no_mask": "the padding steps after an episode's end (valid == False) are in your loss: keep only batch.valid "
               "steps.",
    "mean_over_all": "average over the valid steps (the B steps of the episodes), not over all T x N entries.",
    "baseline_all": "the 'mean' baseline is the mean of G_t over the valid steps, not over all T x N entries "
                    "(the padding zeros pull it down).",
    "no_normalize": "cfg.normalize_adv is True: divide G_t - b by its std over the valid steps.",
    "normalize_centered": "with normalize_adv, only divide G_t - b by its std; do not subtract its mean (the "
                          "baseline alone decides what counts as better than usual).",
    "std_of_returns": "divide by the std of G_t - b (the advantages), not by the std of the returns G_t.",
    "pl_sign": "the loss has the wrong sign: minimising -mean(log pi(a_t|s_t) (G_t - b_t)) climbs the policy "
               "gradient.",
    "value_first": "compute the baseline V(s_t) *before* fitting the value network on this batch's returns: a "
                   "baseline that has seen G_t depends on a_t and biases the gradient.",
    "vf_once": "fit the value network with cfg.vf_iters steps of vf_opt, not one.",
    "value_normalized_target": "the value network regresses on the returns-to-go G_t themselves, not on normalised "
                               "returns or advantages.",
}

REINFORCE_GROUP_HINTS = {
    "actor": "The policy's gradient comes from -mean(log pi(a_t|s_t) (G_t - b_t)) over the valid steps: check the "
             "returns-to-go, the baseline, the normalisation and the sign.",
    "critic": "The value network regresses on G_t with cfg.vf_iters steps of vf_opt, after the policy step.",
    "steps": "REINFORCE takes one opt.step() and then cfg.vf_iters vf_opt.step()s (value baseline only).",
    "scale": "look for a factor: a mean taken over the wrong number of steps, or the normalisation.",
}

REINFORCE_STAT_HINTS = {
    "loss": "loss is the policy loss you minimised (with the entropy term, if any), as a float.",
    "episode_return": "episode_return is the mean undiscounted return of the batch's episodes "
                      "(batch.rewards.sum(0).mean()).",
    "value_loss": "value_loss is the value regression's last loss.",
}


def _reinforce_batch(model, T: int, lengths, seed: int):
    """A Batch of len(lengths) episodes (one per column) of the given lengths, made up from `seed`."""
    from lecturekit.algos.reinforce import Batch

    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    N = len(lengths)
    t = np.arange(T)[:, None]
    valid = t < np.asarray(lengths)[None]
    ends = t == (np.asarray(lengths)[None] - 1)
    obs = (torch.randn((T, N, 4), generator=gen) * 0.5).numpy()
    with torch.no_grad():
        probs = torch.softmax(model.pi(torch.as_tensor(obs)), -1).reshape(T * N, -1)
        act = torch.multinomial(probs, 1, generator=gen).reshape(T, N).numpy()
    rewards = np.where(valid, rng.uniform(0.5, 1.5, (T, N)), 0.0).astype(np.float32)
    obs[~valid] = 0.0
    return Batch(obs.astype(np.float32), act.astype(np.int64), rewards, valid, ends)


def _reinforce_trial(cfg, seed: int, lengths):
    from lecturekit.algos import reinforce as R
    from lecturekit.course.updatecheck import Trial, cartpole_spaces, warm_up

    def make():
        model = R.make_model(*cartpole_spaces(), cfg, torch.Generator().manual_seed(seed))
        opt = torch.optim.Adam(model.pi.parameters(), lr=cfg.lr)
        vf_opt = torch.optim.Adam(model.v.parameters(), lr=cfg.vf_lr) if cfg.baseline == "value" else None
        warm_up([opt] + ([vf_opt] if vf_opt else []), seed)
        batch = _reinforce_batch(model, max(lengths), lengths, seed)
        optimizers = {"opt": opt, **({"vf_opt": vf_opt} if vf_opt else {})}
        return Trial(args=(model, opt, vf_opt, batch, cfg), groups={"actor": model.pi, "critic": model.v},
                     optimizers=optimizers, inputs={"batch": batch})

    return make


@checker("reinforce_update")
def check_reinforce_update(fn, train: bool = True, collect=None) -> None:
    """Check `fn(model, opt, vf_opt, batch, cfg) -> dict`, one REINFORCE update on a batch of complete episodes, in
    three layers: one update on fixed batches (each baseline) matches the reference (`lecturekit.algos.reinforce.
    update`) within a relative 1e-4 on every gradient, parameter change and Adam state; the known silent bugs are
    named; and with `train=True` it trains CartPole-v1 to 475 through `reinforce.train(..., update=fn,
    collect=collect)` (the reference collection if None) within REINFORCE_BUDGET steps on one of REINFORCE_SEEDS."""
    from functools import partial

    from lecturekit.algos import reinforce as R
    from lecturekit.course.updatecheck import Mistake, check_training, check_update, train_with, trained
    from lecturekit.evaluation import Run

    c = Check("reinforce_update")
    mistakes = [Mistake(k, partial(_reinforce_variant, bug=k), h) for k, h in REINFORCE_MISTAKES.items()]
    accepted = [partial(_reinforce_variant, bug="population_std")]  # std without Bessel's correction: as good
    lengths = [20, 7, 13, 1, 16, 20]
    trials = [
        ("one update with a value baseline on 6 episodes of 1 to 20 steps (normalize_adv=True, vf_iters=3)",
         R.Config(baseline="value", vf_iters=3, hidden=(32, 32)), 1),
        ("one update with the mean baseline (normalize_adv=False, entropy_coef=0.01)",
         R.Config(baseline="mean", normalize_adv=False, entropy_coef=0.01, hidden=(32, 32)), 2),
        ("one update without a baseline (normalize_adv=True, gamma=0.9)",
         R.Config(baseline="none", gamma=0.9, hidden=(32, 32)), 3),
    ]
    for case, cfg, seed in trials:
        keys = ("loss", "episode_return") + (("value_loss",) if cfg.baseline == "value" else ())
        check_update(c, fn, R.update, _reinforce_trial(cfg, seed, lengths), case=case, mistakes=mistakes,
                     accepted=accepted,
                     stats_keys=keys, group_hints=REINFORCE_GROUP_HINTS, stat_hints=REINFORCE_STAT_HINTS)
    summary = f"{len(trials)} one-update checks (each baseline), {len(mistakes)} known mistakes ruled out"
    if train:
        seam = {"collect": collect} if collect is not None else {}
        run = lambda s: Run(steps=REINFORCE_BUDGET, seed=s, target=475.0, eval_every=2000)  # noqa: E731
        task = "CartPole-v1" + (" with your collect_episodes" if collect is not None else "")
        result = check_training(c, lambda s: train_with(R, "CartPole-v1", R.Config(), run(s), fn, **seam),
                                seeds=REINFORCE_SEEDS, budget=REINFORCE_BUDGET, target=475.0, task=task)
        summary += "; " + trained(result)
    c.passed(summary)
