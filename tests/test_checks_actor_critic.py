"""The part-3 checkers accept differently written right answers and reject the real mistakes with a useful hint."""
import numpy as np
import pytest
import torch

from lecturekit.course.checking import CheckFailed
from lecturekit.checks import check_a2c_loss, check_bootstrapped_returns


def rejects(check, fn, *fragments):
    with pytest.raises(CheckFailed) as e:
        check(fn)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"expected {f!r} in:\n{msg}"
    return msg


# --- bootstrapped_returns: right answers ---------------------------------------------------------------------------
def returns_loop(rewards, terminated, last_value, gamma):
    R = np.zeros(np.shape(rewards))
    running = np.array(last_value, dtype=float)
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * (1 - np.asarray(terminated[t], dtype=float)) * running
        R[t] = running
    return R


def returns_per_env(rewards, terminated, last_value, gamma):
    # column by column, with Python floats and an explicit reset at episode ends
    T, N = np.shape(rewards)
    out = np.empty((T, N))
    for i in range(N):
        g = float(last_value[i])
        for t in range(T - 1, -1, -1):
            if terminated[t][i]:
                g = 0.0
            g = float(rewards[t][i]) + gamma * g
            out[t, i] = g
    return out


def returns_appended(rewards, terminated, last_value, gamma):
    out, running = [], last_value.astype(np.float64)
    for r, d in zip(rewards[::-1], terminated[::-1]):
        running = r + gamma * np.where(d, 0.0, running)
        out.append(running)
    return np.stack(out[::-1])


@pytest.mark.parametrize("fn", [returns_loop, returns_per_env, returns_appended])
def test_bootstrapped_returns_accepts_right_answers(fn, capsys):
    check_bootstrapped_returns(fn)
    assert "all checks passed" in capsys.readouterr().out


# --- bootstrapped_returns: mistakes --------------------------------------------------------------------------------
def test_rejects_stub():
    def stub(rewards, terminated, last_value, gamma):
        raise NotImplementedError("write this")

    rejects(check_bootstrapped_returns, stub, "not implemented yet")


def test_rejects_no_cut():
    def fn(rewards, terminated, last_value, gamma):
        return returns_loop(rewards, np.zeros_like(rewards), last_value, gamma)

    rejects(check_bootstrapped_returns, fn, "episode boundaries", "an episode ends at t = 1")


def test_rejects_cut_one_step_late():
    def fn(rewards, terminated, last_value, gamma):
        R = np.zeros(np.shape(rewards))
        running = np.array(last_value, dtype=float)
        for t in reversed(range(len(rewards))):
            running = rewards[t] + gamma * running
            R[t] = running
            running = running * (1 - np.asarray(terminated[t], dtype=float))  # reset after storing: one step late
        return R

    rejects(check_bootstrapped_returns, fn, "one step late")


def test_rejects_masked_terminal_reward():
    def fn(rewards, terminated, last_value, gamma):
        R = np.zeros(np.shape(rewards))
        running = np.array(last_value, dtype=float)
        for t in reversed(range(len(rewards))):
            running = (1 - np.asarray(terminated[t], dtype=float)) * (rewards[t] + gamma * running)
            R[t] = running
        return R

    rejects(check_bootstrapped_returns, fn, "reward of the terminal step")


def test_rejects_missing_bootstrap():
    def fn(rewards, terminated, last_value, gamma):
        return returns_loop(rewards, terminated, np.zeros_like(last_value), gamma)

    rejects(check_bootstrapped_returns, fn, "last_value is not used", "one step, one environment")


def test_rejects_undiscounted_bootstrap():
    def fn(rewards, terminated, last_value, gamma):
        return returns_loop(rewards, terminated, np.asarray(last_value) / gamma, gamma)

    rejects(check_bootstrapped_returns, fn, "not discounted")


def test_rejects_reversed_and_transposed():
    def reversed_fn(rewards, terminated, last_value, gamma):
        return returns_loop(rewards, terminated, last_value, gamma)[::-1]

    rejects(check_bootstrapped_returns, reversed_fn, "reverse time order")

    def transposed(rewards, terminated, last_value, gamma):
        return returns_loop(rewards, terminated, last_value, gamma).T

    rejects(check_bootstrapped_returns, transposed, "shape", "(T, N)")


def test_rejects_integer_result_and_in_place_modification():
    def ints(rewards, terminated, last_value, gamma):
        R = np.zeros_like(rewards)  # int rewards give an int array
        running = np.array(last_value, dtype=float)
        for t in reversed(range(len(rewards))):
            running = rewards[t] + gamma * (1 - np.asarray(terminated[t], dtype=float)) * running
            R[t] = running
        return R

    rejects(check_bootstrapped_returns, ints, "integer rewards", "float")

    def in_place(rewards, terminated, last_value, gamma):
        running = np.array(last_value, dtype=float)
        for t in reversed(range(len(rewards))):
            running = rewards[t] + gamma * (1 - np.asarray(terminated[t], dtype=float)) * running
            rewards[t] = running
        return rewards

    rejects(check_bootstrapped_returns, in_place, "modified its input `rewards`")


def test_rejects_bool_arithmetic_error_with_the_line():
    def fn(rewards, terminated, last_value, gamma):
        R = np.zeros(np.shape(rewards))
        running = np.array(last_value, dtype=float)
        for t in reversed(range(len(rewards))):
            running = rewards[t] + gamma * (True ^ terminated[t]) * running if terminated.dtype == bool else \
                rewards[t] + gamma * (1 - terminated[t]) * running
            R[t] = running
        return R

    check_bootstrapped_returns(fn)  # a right answer that handles bool masks its own way

    def crashes(rewards, terminated, last_value, gamma):
        R = np.zeros(np.shape(rewards))
        running = np.array(last_value, dtype=float)
        for t in reversed(range(len(rewards))):
            running = rewards[t] + gamma * (-terminated[t] + 1) * running  # unary minus on a bool array raises
            R[t] = running
        return R

    rejects(check_bootstrapped_returns, crashes, "TypeError", "bool array", "line")


def test_rejects_none():
    rejects(check_bootstrapped_returns, lambda rewards, terminated, last_value, gamma: None, "return")


# --- a2c_loss: right answers ---------------------------------------------------------------------------------------
def loss_plain(log_probs, values, returns, entropy, value_coef, entropy_coef):
    adv = (returns - values).detach()
    return -(log_probs * adv).mean() + value_coef * ((returns - values) ** 2).mean() - entropy_coef * entropy.mean()


def loss_functional(log_probs, values, returns, entropy, value_coef, entropy_coef):
    adv = returns - values.detach()
    pg = -torch.mean(log_probs * adv)
    vf = torch.nn.functional.mse_loss(values, returns)
    return pg + value_coef * vf - entropy_coef * torch.mean(entropy)


def loss_with_sum(log_probs, values, returns, entropy, value_coef, entropy_coef):
    n = log_probs.shape[0]
    adv = returns - values.data  # .data also cuts the graph
    return (-(log_probs * adv).sum() + value_coef * (values - returns).pow(2).sum() - entropy_coef * entropy.sum()) / n


@pytest.mark.parametrize("fn", [loss_plain, loss_functional, loss_with_sum])
def test_a2c_loss_accepts_right_answers(fn, capsys):
    check_a2c_loss(fn)
    assert "all checks passed" in capsys.readouterr().out


# --- a2c_loss: mistakes ---------------------------------------------------------------------------------------------
def test_a2c_loss_rejects_stub():
    def stub(log_probs, values, returns, entropy, value_coef, entropy_coef):
        raise NotImplementedError

    rejects(check_a2c_loss, stub, "not implemented yet")


def test_a2c_loss_rejects_missing_detach():
    def fn(log_probs, values, returns, entropy, value_coef, entropy_coef):
        adv = returns - values  # gradient leaks into the critic through the policy term
        return -(log_probs * adv).mean() + value_coef * ((returns - values) ** 2).mean() - entropy_coef * entropy.mean()

    rejects(check_a2c_loss, fn, "gradient with respect to values", ".detach()")


@pytest.mark.parametrize("wrong,fragment", [
    (lambda lp, v, r, h, cv, ch: (lp * (r - v).detach()).mean() + cv * ((r - v) ** 2).mean() - ch * h.mean(),
     "wrong sign"),
    (lambda lp, v, r, h, cv, ch: -(lp * (v - r).detach()).mean() + cv * ((r - v) ** 2).mean() - ch * h.mean(),
     "order returns - values"),
    (lambda lp, v, r, h, cv, ch: -(lp * (r - v).detach()).mean() + cv * ((r - v) ** 2).mean() + ch * h.mean(),
     "entropy bonus has the wrong sign"),
    (lambda lp, v, r, h, cv, ch: -(lp * (r - v).detach()).mean() + ((r - v) ** 2).mean() - ch * h.mean(),
     "value_coef"),
    (lambda lp, v, r, h, cv, ch: -(lp * (r - v).detach()).mean() + cv * ((r - v) ** 2).mean(),
     "entropy term is missing"),
    (lambda lp, v, r, h, cv, ch: -(lp * (r - v).detach()).mean() + 0.5 * cv * ((r - v) ** 2).mean() - ch * h.mean(),
     "1/2"),
    (lambda lp, v, r, h, cv, ch: -(lp * (r - v).detach()).sum() + cv * ((r - v) ** 2).sum() - ch * h.sum(),
     "means over the batch"),
    (lambda lp, v, r, h, cv, ch: -(lp * (r - v).detach()) + cv * ((r - v) ** 2) - ch * h,
     "forget .mean()"),
])
def test_a2c_loss_rejects_wrong_formulas(wrong, fragment):
    rejects(check_a2c_loss, wrong, fragment)


def test_a2c_loss_rejects_normalised_advantage():
    def fn(log_probs, values, returns, entropy, value_coef, entropy_coef):
        adv = (returns - values).detach()
        adv = (adv - adv.mean()) / (adv.std() + 1e-8) if len(adv) > 1 else adv
        return -(log_probs * adv).mean() + value_coef * ((returns - values) ** 2).mean() - entropy_coef * entropy.mean()

    rejects(check_a2c_loss, fn, "normalising the advantages")


def test_a2c_loss_rejects_detached_everything_and_numpy():
    def detached(log_probs, values, returns, entropy, value_coef, entropy_coef):
        return loss_plain(log_probs.detach(), values.detach(), returns, entropy.detach(), value_coef, entropy_coef)

    rejects(check_a2c_loss, detached, "requires_grad=False")

    def as_float(log_probs, values, returns, entropy, value_coef, entropy_coef):
        return loss_plain(log_probs, values, returns, entropy, value_coef, entropy_coef).item()

    rejects(check_a2c_loss, as_float, "torch tensor")


def test_a2c_loss_rejects_detached_log_probs():
    def fn(log_probs, values, returns, entropy, value_coef, entropy_coef):
        return loss_plain(log_probs.detach(), values, returns, entropy, value_coef, entropy_coef)

    rejects(check_a2c_loss, fn, "log_probs", "detach")


def test_a2c_loss_rejects_in_place_modification():
    def fn(log_probs, values, returns, entropy, value_coef, entropy_coef):
        returns -= values.detach()  # returns becomes the advantage, in place
        return -(log_probs * returns).mean() + value_coef * (values - values.detach() - returns).pow(2).mean() \
            - entropy_coef * entropy.mean()

    rejects(check_a2c_loss, fn, "modified its input `returns`")
