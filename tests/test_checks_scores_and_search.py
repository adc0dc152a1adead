"""The part 1 checkers reject the real mistakes (with the right hint) and accept differently written right answers."""
import numpy as np
import pytest
import torch

from lecturekit.course.checking import CheckFailed
from lecturekit.checks import (check_cem_update, check_finite_difference_gradient, check_gaussian_log_prob,
                               check_softmax_score)


def rejects(check, fn, *fragments):
    with pytest.raises(CheckFailed) as e:
        check(fn)
    msg = str(e.value)
    for frag in fragments:
        assert frag in msg, msg
    return msg


def not_implemented(*args):
    raise NotImplementedError("not implemented yet: replace this line with your code")


@pytest.mark.parametrize("check", [check_softmax_score, check_gaussian_log_prob, check_finite_difference_gradient,
                                   check_cem_update])
def test_stub_says_not_implemented(check):
    rejects(check, not_implemented, "not implemented yet")


@pytest.mark.parametrize("check", [check_softmax_score, check_gaussian_log_prob, check_finite_difference_gradient,
                                   check_cem_update])
def test_garbage_gives_check_failed_only(check):
    for bad in (lambda *a: None, lambda *a: 1 / 0, lambda *a: "x", lambda *a: [1, 2]):
        rejects(check, bad)
    rejects(check, 42, "expected your function")


# ---------------------------------------------------------------------------------------------------- softmax_score
def score_ok(logits, action):
    p = np.exp(logits - np.max(logits))
    p = p / p.sum()
    g = -p
    g[action] += 1
    return g


def score_ok_scipy_style(logits, action):
    z = np.asarray(logits, dtype=float)
    logp = z - (z.max() + np.log(np.sum(np.exp(z - z.max()))))
    return np.eye(len(z))[action] - np.exp(logp)


def test_softmax_score_accepts_right_answers(capsys):
    check_softmax_score(score_ok)
    check_softmax_score(score_ok_scipy_style)
    assert "all checks passed" in capsys.readouterr().out


def test_softmax_score_rejects_mistakes():
    rejects(check_softmax_score, lambda h, a: -score_ok(h, a), "sign")
    rejects(check_softmax_score, lambda h, a: np.eye(len(h))[a], "one-hot")
    # grad pi(a) = pi(a) (e_a - pi): forgot to divide by pi(a)
    rejects(check_softmax_score, lambda h, a: score_ok(h, a) * (np.exp(h - h.max()) / np.exp(h - h.max()).sum())[a],
            "gradient of pi(a)")

    def overflow(h, a):
        p = np.exp(h) / np.exp(h).sum()
        return np.eye(len(h))[a] - p

    with np.errstate(all="ignore"):
        rejects(check_softmax_score, overflow, "1000.", "NaN or inf")

    def in_place(h, a):
        h -= h.max()
        return score_ok(h, a)

    rejects(check_softmax_score, in_place, "modified its input")

    def int_dtype(h, a):  # zeros_like keeps the integer dtype of integer logits: -pi is truncated to 0
        g = np.zeros_like(h)
        g[:] = -np.exp(h - h.max()) / np.exp(h - h.max()).sum()
        g[a] += 1
        return g

    rejects(check_softmax_score, int_dtype, "array([1, 2, 3]", "float array")


# ---------------------------------------------------------------------------------------------------- gaussian_log_prob
def gauss_ok(x, mu, log_std):
    return (-0.5 * ((x - mu) / torch.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)


def gauss_ok_other(x, mu, log_std):
    var = torch.exp(2 * log_std)
    d = x.shape[-1]
    return -0.5 * ((x - mu) ** 2 / var).sum(-1) - log_std.expand_as(x).sum(-1) - 0.5 * d * np.log(2 * np.pi)


def gauss_ok_torch(x, mu, log_std):
    return torch.distributions.Normal(mu, log_std.exp()).log_prob(x).sum(dim=-1)


def test_gaussian_accepts_right_answers():
    for fn in (gauss_ok, gauss_ok_other, gauss_ok_torch):
        check_gaussian_log_prob(fn)


def test_gaussian_rejects_mistakes():
    log2pi = np.log(2 * np.pi)
    rejects(check_gaussian_log_prob, lambda x, m, ls: (-0.5 * ((x - m) / ls.exp()) ** 2 - 0.5 * log2pi).sum(-1),
            "-log sigma")
    rejects(check_gaussian_log_prob, lambda x, m, ls: (-0.5 * ((x - m) / ls.exp()) ** 2 - ls).sum(-1), "log(2 pi)/2")
    rejects(check_gaussian_log_prob, lambda x, m, ls: (-0.5 * (x - m) ** 2 / ls.exp() - ls - 0.5 * log2pi).sum(-1),
            "sigma^2")
    rejects(check_gaussian_log_prob, lambda x, m, ls: (-0.5 * ((x - m) / ls.exp()) ** 2 - ls - 0.5 * log2pi).mean(-1),
            "sum of the per-dimension")
    rejects(check_gaussian_log_prob, lambda x, m, ls: -0.5 * ((x - m) / ls.exp()) ** 2 - ls - 0.5 * log2pi, "shape")
    rejects(check_gaussian_log_prob, lambda x, m, ls: gauss_ok(x, m, ls).detach(), "requires grad")
    rejects(check_gaussian_log_prob, lambda x, m, ls: torch.as_tensor(gauss_ok(x, m, ls).detach().numpy()),
            "requires grad")
    rejects(check_gaussian_log_prob, lambda x, m, ls: gauss_ok(x, m.detach(), ls), "gradient")


# ---------------------------------------------------------------------------------------------------- finite differences
def fd_ok(f, theta, eps):
    g = np.zeros(len(theta))
    for k in range(len(theta)):
        up = np.array(theta, dtype=float)
        down = np.array(theta, dtype=float)
        up[k] += eps
        down[k] -= eps
        g[k] = (f(up) - f(down)) / (2 * eps)
    return g


def fd_ok_vectorised(f, theta, eps):
    E = eps * np.eye(len(theta))
    t = theta.astype(float)
    return np.array([f(t + e) - f(t - e) for e in E]) / (2 * eps)


def test_fd_accepts_right_answers():
    check_finite_difference_gradient(fd_ok)
    check_finite_difference_gradient(fd_ok_vectorised)


def test_fd_rejects_mistakes():
    def forward(f, theta, eps):
        t = theta.astype(float)
        return np.array([(f(t + e) - f(t)) / eps for e in eps * np.eye(len(t))])

    rejects(check_finite_difference_gradient, forward, "forward difference")
    rejects(check_finite_difference_gradient, lambda f, t, e: 2 * fd_ok(f, t, e), "2 eps")
    rejects(check_finite_difference_gradient, lambda f, t, e: -fd_ok(f, t, e), "sign")

    def in_place(f, theta, eps):
        g = np.zeros(len(theta))
        for k in range(len(theta)):
            theta[k] += eps
            fp = f(theta)
            theta[k] -= 2 * eps
            fm = f(theta)
            g[k] = (fp - fm) / (2 * eps)
        return g

    rejects(check_finite_difference_gradient, in_place, "modified its input")

    def in_place_restored(f, theta, eps):  # puts theta[k] back, up to a rounding error the printout cannot show
        g = np.zeros(len(theta))
        for k in range(len(theta)):
            theta[k] += eps
            fp = f(theta)
            theta[k] -= 2 * eps
            fm = f(theta)
            theta[k] += eps
            g[k] = (fp - fm) / (2 * eps)
        return g

    rejects(check_finite_difference_gradient, in_place_restored, "modified its input", "below the printed precision")

    def int_copy(f, theta, eps):
        g = np.zeros(len(theta))
        for k in range(len(theta)):
            up, down = theta.copy(), theta.copy()
            up[k] += eps
            down[k] -= eps
            g[k] = (f(up) - f(down)) / (2 * eps)
        return g

    with np.errstate(all="ignore"):
        rejects(check_finite_difference_gradient, int_copy, "integer dtype")

    def aliased(f, theta, eps):
        t = theta.astype(float)
        g = np.zeros(len(t))
        for k in range(len(t)):
            up = t
            up[k] += eps
            down = t
            down[k] -= eps
            g[k] = (f(up) - f(down)) / (2 * eps)
        return g

    with np.errstate(all="ignore"):
        rejects(check_finite_difference_gradient, aliased)


# ---------------------------------------------------------------------------------------------------- cem_update
def cem_ok(samples, scores, elite_frac):
    n = max(1, int(elite_frac * len(scores)))
    idx = np.argsort(scores)[::-1][:n]
    return samples[idx].mean(axis=0), samples[idx].std(axis=0)


def cem_ok_torch_topk(samples, scores, elite_frac):
    n = max(1, int(elite_frac * len(scores)))
    idx = torch.topk(torch.as_tensor(scores), n).indices.numpy()
    elite = samples[idx]
    mean = elite.sum(0) / n
    return mean, np.sqrt(((elite - mean) ** 2).mean(0))


def test_cem_accepts_right_answers():
    check_cem_update(cem_ok)
    check_cem_update(cem_ok_torch_topk)


def test_cem_rejects_mistakes():
    def ascending(samples, scores, frac):
        n = max(1, int(frac * len(scores)))
        idx = np.argsort(scores)[:n]
        return samples[idx].mean(0), samples[idx].std(0)

    rejects(check_cem_update, ascending, "lowest scores")

    def ddof1(samples, scores, frac):
        n = max(1, int(frac * len(scores)))
        idx = np.argsort(scores)[::-1][:n]
        return samples[idx].mean(0), samples[idx].std(0, ddof=1)

    with np.errstate(all="ignore"):
        rejects(check_cem_update, ddof1, "ddof")

    def ceil(samples, scores, frac):
        n = int(np.ceil(frac * len(scores)))
        idx = np.argsort(scores)[::-1][:n]
        return samples[idx].mean(0), samples[idx].std(0)

    rejects(check_cem_update, ceil, "rounds down")

    def no_min_one(samples, scores, frac):
        n = int(frac * len(scores))
        idx = np.argsort(scores)[::-1][:n]
        return samples[idx].mean(0), samples[idx].std(0)

    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        rejects(check_cem_update, no_min_one, "at least one elite")
    rejects(check_cem_update, lambda s, sc, f: (cem_ok(s, sc, f)[0], cem_ok(s, sc, f)[1] ** 2), "variance")
    rejects(check_cem_update, lambda s, sc, f: (s.mean(0), s.std(0)), "every sample")
    rejects(check_cem_update, lambda s, sc, f: cem_ok(s, sc, f)[0], "pair")
    rejects(check_cem_update, lambda s, sc, f: (s[np.argsort(sc)[::-1][:max(1, int(f * len(sc)))]].mean(1),) * 2,
            "shape")
