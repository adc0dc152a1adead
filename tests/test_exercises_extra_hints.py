"""Issue 15, item 7: the mistakes that used to get a generic or misleading hint now get their own."""
import numpy as np
import pytest
import torch

from lecturekit.checks import CheckFailed, check_discounted_returns, check_gae, check_temperature_loss


def rejects(check, fn, *words, absent=()):
    with pytest.raises(CheckFailed) as info:
        check(fn)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    for w in absent:
        assert w not in msg, msg
    return msg


# --- returns that put the whole episode's return at every step ----------------------------------------------------
def whole_episode_return(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    return np.full(len(r), float(r @ gamma ** np.arange(len(r))))


def discount_from_start(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    return np.array([sum(gamma ** k * r[k] for k in range(t, len(r))) for t in range(len(r))])


def test_whole_episode_return_is_named():
    msg = rejects(check_discounted_returns, whole_episode_return, "every G_t equals G_0", "whole episode")
    assert msg.index("every G_t equals G_0") < msg.index("hint") + 10


def test_discount_from_start_still_gets_its_hint():
    # on the first case that tells them apart ([1, 2, 3], gamma 0.5 after [0, 1]) the hints differ; on [0, 1] the
    # two mistakes give the same numbers and the hint names both
    rejects(check_discounted_returns, discount_from_start, "gamma^(k - t), not gamma^k")


# --- GAE with lambda where gamma * lambda belongs -----------------------------------------------------------------
def gae_lambda_only(rewards, values, terminated, last_value, gamma, lam):
    r, v = np.asarray(rewards, float), np.asarray(values, float)
    nd = 1.0 - np.asarray(terminated, float)
    nv = np.concatenate([v[1:], np.asarray(last_value, float)[None]])
    delta = r + gamma * nd * nv - v
    adv, run = np.zeros_like(r), np.zeros(r.shape[1])
    for t in reversed(range(len(r))):
        run = delta[t] + lam * nd[t] * run  # the mistake: lam where gamma * lam belongs
        adv[t] = run
    return adv


def test_gae_lambda_instead_of_gamma_lambda():
    rejects(check_gae, gae_lambda_only, "lam alone", "gamma * lam")


# --- the temperature loss with its sign flipped, written in each of the usual ways --------------------------------
@pytest.mark.parametrize("fn", [
    lambda la, lp, te: (la.exp() * (lp.detach() + te)).mean(),
    lambda la, lp, te: -(la.exp() * (-lp.detach() - te)).mean(),
    lambda la, lp, te: (la * (lp.detach() + te)).mean(),        # the log_alpha form, sign flipped
    lambda la, lp, te: -(la * (-lp.detach() - te)).mean(),
])
def test_temperature_sign_flipped(fn):
    rejects(check_temperature_loss, fn, "sign is flipped", "shrink alpha", "would grow it")


def test_temperature_logp_sign():
    rejects(check_temperature_loss, lambda la, lp, te: (la.exp() * (lp.detach() - te)).mean(), "-logp (not +logp)")


def test_temperature_log_alpha_form_with_right_sign_is_told_to_use_exp():
    # the right direction but log_alpha instead of alpha: not a sign problem
    rejects(check_temperature_loss, lambda la, lp, te: -(la * (lp.detach() + te)).mean(), "exp(log_alpha)",
            absent=("sign is flipped",))


def test_correct_temperature_loss_still_passes(capsys):
    check_temperature_loss(lambda la, lp, te: (torch.exp(la) * (-lp.detach() - te)).mean())
    assert "all checks passed" in capsys.readouterr().out


# --- the same mistake in the bootstrapped returns of exercise 03 --------------------------------------------------
def bootstrapped_whole_episode(rewards, terminated, last_value, gamma):
    from lecturekit.returns import bootstrapped_returns

    R = bootstrapped_returns(np.asarray(rewards, float), np.asarray(terminated, float), np.asarray(last_value, float),
                             gamma)
    out, d = R.copy(), np.asarray(terminated, float)
    for n in range(R.shape[1]):
        start = 0
        for t in range(R.shape[0]):
            out[t, n] = R[start, n]
            start = t + 1 if d[t, n] else start
    return out


def test_bootstrapped_whole_episode_is_named():
    from lecturekit.checks import check_bootstrapped_returns

    rejects(check_bootstrapped_returns, bootstrapped_whole_episode, "first step of its episode")
