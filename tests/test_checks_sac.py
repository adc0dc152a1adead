"""Part 7 checkers reject the real SAC mistakes (with the right hint) and accept differently written correct answers."""
import math

import pytest
import torch
import torch.nn.functional as F

from lecturekit.checks import (
    CheckFailed,
    check_sac_actor_loss,
    check_sac_critic_target,
    check_squashed_gaussian_log_prob,
    check_temperature_loss,
)

LOG_2PI = math.log(2 * math.pi)


def gauss(x, mu, log_std):
    return (-0.5 * ((x - mu) / log_std.exp()) ** 2 - log_std - 0.5 * LOG_2PI).sum(-1)


def rejects(check, fn, *words):
    with pytest.raises(CheckFailed) as info:
        check(fn)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    return msg


# ------------------------------------------------------------------------------------- squashed_gaussian_log_prob
def sq_with_torch_normal(u, mu, log_std):
    base = torch.distributions.Normal(mu, log_std.exp()).log_prob(u)
    return (base - 2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


def sq_with_log_cosh(u, mu, log_std):
    # log(1 - tanh^2) = -2 log cosh u = -2 (|u| + log1p(exp(-2|u|)) - log 2)
    a = u.abs()
    return gauss(u, mu, log_std) + (2 * (a + torch.log1p(torch.exp(-2 * a)) - math.log(2))).sum(-1)


def sq_loop_over_dims(u, mu, log_std):
    total = torch.zeros(u.shape[:-1], dtype=u.dtype)
    for d in range(u.shape[-1]):
        ud, m, s = u[..., d], mu[..., d], log_std[..., d]
        total = total + (-0.5 * ((ud - m) / s.exp()) ** 2 - s - 0.5 * LOG_2PI)
        total = total - 2 * (math.log(2) - ud - F.softplus(-2 * ud))
    return total


@pytest.mark.parametrize("fn", [sq_with_torch_normal, sq_with_log_cosh, sq_loop_over_dims])
def test_squashed_accepts_correct_answers(fn, capsys):
    check_squashed_gaussian_log_prob(fn)
    assert "all checks passed" in capsys.readouterr().out


def sq_naive(u, mu, log_std):
    return gauss(u, mu, log_std) - torch.log(1 - torch.tanh(u) ** 2).sum(-1)


def sq_no_correction(u, mu, log_std):
    return gauss(u, mu, log_std)


def sq_plus_correction(u, mu, log_std):
    return gauss(u, mu, log_std) + 2 * (math.log(2) - u - F.softplus(-2 * u)).sum(-1)


def sq_no_sum(u, mu, log_std):
    gauss_terms = -0.5 * ((u - mu) / log_std.exp()) ** 2 - log_std - 0.5 * LOG_2PI
    return gauss_terms - 2 * (math.log(2) - u - F.softplus(-2 * u))  # (..., D): forgot the sum


def sq_detached(u, mu, log_std):
    return sq_with_torch_normal(u.detach(), mu.detach(), log_std.detach())


def sq_gauss_of_a(u, mu, log_std):
    return gauss(torch.tanh(u), mu, log_std) - 2 * (math.log(2) - u - F.softplus(-2 * u)).sum(-1)


def sq_variance(u, mu, log_std):
    return gauss(u, mu, 2 * log_std) - 2 * (math.log(2) - u - F.softplus(-2 * u)).sum(-1)


def sq_in_place(u, mu, log_std):
    with torch.no_grad():
        u.clamp_(-5, 5)
    return sq_with_torch_normal(u, mu, log_std)


@pytest.mark.parametrize("fn, words", [
    (sq_naive, ["|u| up to 20", "softplus"]),
    (sq_no_correction, ["change-of-variables"]),
    (sq_plus_correction, ["wrong sign"]),
    (sq_no_sum, ["shape", "last dimension"]),
    (sq_detached, ["no gradient", "keep the whole computation in torch"]),
    (sq_gauss_of_a, ["pre-tanh sample u"]),
    (sq_variance, ["variance"]),
    (sq_in_place, ["in place", "`u`"]),
])
def test_squashed_rejects_mistakes(fn, words):
    rejects(check_squashed_gaussian_log_prob, fn, *words)


def test_not_implemented_message():
    def stub(*args):
        raise NotImplementedError("write this")
    for check in (check_squashed_gaussian_log_prob, check_sac_critic_target, check_sac_actor_loss,
                  check_temperature_loss):
        rejects(check, stub, "not implemented yet")


# ------------------------------------------------------------------------------------------- sac_critic_target
def target_no_grad(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    with torch.no_grad():
        return reward + gamma * (1 - terminated) * (torch.minimum(next_q1, next_q2) - alpha * next_logp)


def target_where(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    v = torch.where(next_q1 < next_q2, next_q1, next_q2) - alpha * next_logp
    return torch.where(terminated > 0.5, reward, reward + gamma * v).detach()


def target_stack(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    q = torch.stack([next_q1, next_q2]).min(0).values.detach()
    return reward + gamma * (1.0 - terminated) * (q - alpha * next_logp.detach())


@pytest.mark.parametrize("fn", [target_no_grad, target_where, target_stack])
def test_target_accepts_correct_answers(fn, capsys):
    check_sac_critic_target(fn)
    assert "all checks passed" in capsys.readouterr().out


def target_not_detached(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    return reward + gamma * (1 - terminated) * (torch.min(next_q1, next_q2) - alpha * next_logp)


def target_max(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    return target_no_grad(reward, terminated, torch.max(next_q1, next_q2), torch.max(next_q1, next_q2), next_logp,
                          alpha, gamma)


def target_plus_logp(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    return target_no_grad(reward, terminated, next_q1, next_q2, -next_logp, alpha, gamma)


def target_no_done(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    return target_no_grad(reward, torch.zeros_like(terminated), next_q1, next_q2, next_logp, alpha, gamma)


def target_entropy_outside(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    with torch.no_grad():
        return reward + gamma * (1 - terminated) * torch.min(next_q1, next_q2) - alpha * next_logp


def target_in_place(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    with torch.no_grad():
        reward += gamma * (1 - terminated) * (torch.min(next_q1, next_q2) - alpha * next_logp)
    return reward


@pytest.mark.parametrize("fn, words", [
    (target_not_detached, ["no_grad"]),
    (target_max, ["MINIMUM"]),
    (target_plus_logp, ["subtract"]),
    (target_no_done, ["(1 - terminated)"]),
    (target_entropy_outside, ["inside gamma"]),
    (target_in_place, ["in place", "reward"]),
])
def test_target_rejects_mistakes(fn, words):
    rejects(check_sac_critic_target, fn, *words)


# ---------------------------------------------------------------------------------------------- sac_actor_loss
def actor_float_alpha(q1, q2, logp, alpha):
    a = alpha.item() if torch.is_tensor(alpha) else alpha
    return (a * logp - torch.minimum(q1, q2)).mean()


def actor_detach_if_tensor(q1, q2, logp, alpha):
    if torch.is_tensor(alpha):
        alpha = alpha.detach()
    return torch.mean(alpha * logp) - torch.mean(torch.min(q1, q2))


@pytest.mark.parametrize("fn", [actor_float_alpha, actor_detach_if_tensor])
def test_actor_accepts_correct_answers(fn, capsys):
    check_sac_actor_loss(fn)
    assert "all checks passed" in capsys.readouterr().out


def actor_alpha_not_detached(q1, q2, logp, alpha):
    return (alpha * logp - torch.min(q1, q2)).mean()


def actor_sign(q1, q2, logp, alpha):
    return -actor_float_alpha(q1, q2, logp, alpha)


def actor_logp_detached(q1, q2, logp, alpha):
    return actor_float_alpha(q1, q2, logp.detach(), alpha)


def actor_q_detached(q1, q2, logp, alpha):
    return actor_float_alpha(q1.detach(), q2.detach(), logp, alpha)


def actor_q1_only(q1, q2, logp, alpha):
    return (float(alpha.detach() if torch.is_tensor(alpha) else alpha) * logp - q1).mean()


def actor_sum(q1, q2, logp, alpha):
    return (float(alpha.detach() if torch.is_tensor(alpha) else alpha) * logp - torch.min(q1, q2)).sum()


@pytest.mark.parametrize("fn, words", [
    (actor_alpha_not_detached, ["alpha.detach()"]),
    (actor_sign, ["sign is flipped"]),
    (actor_logp_detached, ["no gradient reaches logp"]),
    (actor_q_detached, ["do not detach q1/q2"]),
    (actor_q1_only, ["both critics"]),
    (actor_sum, ["do not sum"]),
])
def test_actor_rejects_mistakes(fn, words):
    rejects(check_sac_actor_loss, fn, *words)


# --------------------------------------------------------------------------------------------- temperature_loss
def temp_exp(log_alpha, logp, target_entropy):
    return torch.exp(log_alpha) * (-logp.detach() - target_entropy).mean()


def temp_entropy_estimate(log_alpha, logp, target_entropy):
    entropy = -logp.detach().mean()
    return log_alpha.exp() * (entropy - target_entropy)


@pytest.mark.parametrize("fn", [temp_exp, temp_entropy_estimate])
def test_temperature_accepts_correct_answers(fn, capsys):
    check_temperature_loss(fn)
    assert "all checks passed" in capsys.readouterr().out


def temp_log_alpha(log_alpha, logp, target_entropy):
    return (log_alpha * (-logp.detach() - target_entropy)).mean()


def temp_sign(log_alpha, logp, target_entropy):
    return (log_alpha.exp() * (logp.detach() + target_entropy)).mean()


def temp_logp_not_detached(log_alpha, logp, target_entropy):
    return (log_alpha.exp() * (-logp - target_entropy)).mean()


def temp_item(log_alpha, logp, target_entropy):
    return (math.exp(log_alpha.item()) * (-logp.detach() - target_entropy)).mean()


@pytest.mark.parametrize("fn, words", [
    (temp_log_alpha, ["exp(log_alpha)"]),
    (temp_sign, ["sign is flipped"]),
    (temp_logp_not_detached, ["logp.detach()"]),
    (temp_item, ["no gradient reaches log_alpha"]),
])
def test_temperature_rejects_mistakes(fn, words):
    rejects(check_temperature_loss, fn, *words)
