"""Checkers of part 3 (actor-critic, A2C): `bootstrapped_returns` and `a2c_loss`."""
from __future__ import annotations

import numpy as np
import torch

from lecturekit.algos.a2c import a2c_loss as _a2c_loss
from lecturekit.course.checking import Check, checker
from lecturekit.returns import bootstrapped_returns as _bootstrapped_returns


# --- bootstrapped_returns -----------------------------------------------------------------------------------------
def _backward(rewards, cont, last_value, gamma, cont_on_reward=False):
    """R_t = r_t + gamma cont_t R_{t+1} with R_T = last_value, for the variants the mistakes need."""
    r = np.asarray(rewards, dtype=np.float64)
    out = np.empty_like(r)
    running = np.asarray(last_value, dtype=np.float64).copy()
    for t in range(r.shape[0] - 1, -1, -1):
        running = cont[t] * (r[t] + gamma * running) if cont_on_reward else r[t] + gamma * cont[t] * running
        out[t] = running
    return out


def _returns_mistakes(rewards, terminated, last_value, gamma) -> dict:
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(terminated, dtype=np.float64)
    T, N = r.shape
    ones = np.ones_like(d)
    d_next = np.vstack([d[1:], np.zeros((1, N))])  # the mask of step t + 1 used at step t
    right = _bootstrapped_returns(r, d, last_value, gamma)
    return {
        "no_cut": (_backward(r, ones, last_value, gamma),
                   "the returns run across episode boundaries: a terminated step must cut the sum, "
                   "R_t = r_t + gamma * (1 - terminated_t) * R_{t+1}."),
        "off_by_one": (_backward(r, 1.0 - d_next, last_value, gamma),
                       "the cut is one step late: use terminated_t (of the same step t) to cut R_{t+1} out of R_t; "
                       "the terminal step itself keeps its reward."),
        "reward_masked": (_backward(r, 1.0 - d, last_value, gamma, cont_on_reward=True),
                          "the reward of the terminal step is lost: (1 - terminated_t) multiplies only "
                          "gamma * R_{t+1}, not r_t."),
        "no_bootstrap": (_backward(r, 1.0 - d, np.zeros(N), gamma),
                         "last_value is not used: the returns must start from R_T = last_value (the critic's "
                         "estimate of what comes after the rollout), not from 0."),
        "undiscounted_bootstrap": (_backward(r, 1.0 - d, np.asarray(last_value) / max(gamma, 1e-12), gamma),
                                   "last_value is not discounted: R_{T-1} = r_{T-1} + gamma * last_value."),
        "reversed": (right[::-1].copy(), "your returns are in reverse time order: R_0 belongs at row 0. If you "
                     "loop backwards and append, reverse at the end."),
        "undiscounted": (_backward(r, 1.0 - d, last_value, 1.0), "no discount: multiply R_{t+1} by gamma."),
        "whole_episode": (_segment_starts(right, d),
                          "every step got the return of the first step of its episode (in the rollout): R_t adds only "
                          "the rewards from step t on, R_t = r_t + gamma * (1 - terminated_t) * R_{t+1}."),
    }


def _segment_starts(R: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Each step's entry replaced by that of the first step of its episode within the rollout (the mistake of putting
    the whole episode's return at every step)."""
    out = R.copy()
    for n in range(R.shape[1]):
        start = 0
        for t in range(R.shape[0]):
            out[t, n] = R[start, n]
            if d[t, n]:
                start = t + 1
    return out


def _returns_cases():
    rng = np.random.default_rng(3)
    f, t = False, True
    cases = [
        ("one step, one environment", np.array([[1.0]]), np.array([[0.0]]), np.array([2.0]), 0.5),
        ("three steps, no episode end", np.array([[1.0], [1.0], [1.0]]), np.zeros((3, 1)), np.array([10.0]), 0.5),
        ("an episode ends at t = 1", np.array([[1.0], [2.0], [3.0]]), np.array([[0.0], [1.0], [0.0]]),
         np.array([8.0]), 0.5),
        ("the episode ends at the last step", np.array([[1.0], [1.0]]), np.array([[0.0], [1.0]]),
         np.array([100.0]), 0.9),
        ("two environments (columns), T = 3", np.array([[1.0, 4.0], [2.0, 0.0], [3.0, 0.0]]),
         np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), np.array([8.0, 4.0]), 0.5),
        ("terminated as a bool array (what a rollout stores)", np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]),
         np.array([[f, t], [t, f], [f, f]]), np.array([1.0, -1.0]), 0.9),
        ("integer rewards", np.array([[1, 0, 2], [0, 3, 1]]), np.array([[f, f, t], [f, t, f]]),
         np.array([0.5, 0.5, 0.5]), 0.99),
        ("gamma = 1", rng.normal(size=(5, 3)), rng.random((5, 3)) < 0.3, rng.normal(size=3), 1.0),
        ("T = 16 steps of N = 8 environments", rng.normal(size=(16, 8)), rng.random((16, 8)) < 0.1,
         rng.normal(size=8), 0.99),
        ("T = 200 steps of N = 4 environments", rng.normal(size=(200, 4)), rng.random((200, 4)) < 0.02,
         10 * rng.normal(size=4), 0.99),
    ]
    return cases


@checker("bootstrapped_returns")
def check_bootstrapped_returns(fn) -> None:
    """Check `fn(rewards, terminated, last_value, gamma)` against R_t = r_t + gamma (1 - terminated_t) R_{t+1},
    R_T = last_value, on (T, N) cases from one step to 200 steps of 4 environments."""
    c = Check("bootstrapped_returns")
    cases = _returns_cases()
    for name, rewards, term, last, gamma in cases:
        T, N = rewards.shape
        case = (f"{name}: rewards={rewards.tolist()}, terminated={term.tolist()}, last_value={last.tolist()}, "
                f"gamma={gamma}" if rewards.size <= 6 else f"{name} (shape ({T}, {N})), gamma={gamma}")
        got = c.call(fn, rewards, term, last, gamma, case=case)
        c.expect_close(got, _bootstrapped_returns(rewards, term, last, gamma), case=case,
                       mistakes=_returns_mistakes(rewards, term, last, gamma),
                       hint="the result has shape (T, N) like rewards: one column per environment.")
    c.passed(f"{len(cases)} cases: episode ends, bool masks, int rewards, up to 200 x 4")


# --- a2c_loss -----------------------------------------------------------------------------------------------------
def _loss_cases():
    g = torch.Generator().manual_seed(7)

    def rand(b):
        logp = -torch.rand(b, generator=g) * 2.0
        values = torch.randn(b, generator=g)
        returns = values + torch.randn(b, generator=g)
        entropy = torch.rand(b, generator=g)
        return logp, values, returns, entropy

    return [
        ("B = 1", (torch.tensor([-0.5]), torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([0.7])), 0.5, 0.01),
        ("B = 3, by hand", (torch.tensor([-1.0, -0.5, -2.0]), torch.tensor([1.0, 2.0, 0.0]),
                            torch.tensor([2.0, 1.0, 0.5]), torch.tensor([0.6, 0.6, 0.3])), 0.5, 0.1),
        ("B = 8, no entropy bonus", rand(8), 0.5, 0.0),
        ("B = 8, value_coef = 1, entropy_coef = 0.5", rand(8), 1.0, 0.5),
        ("B = 256 (a rollout of 16 x 16)", rand(256), 0.25, 0.01),
    ]


def _loss_mistakes(logp, v, ret, ent, vc, ec) -> dict:
    adv = ret - v
    pi, vl, h = -(logp * adv).mean(), (ret - v).pow(2).mean(), ent.mean()
    mistakes = {
        "pi_sign": ((logp * adv).mean() + vc * vl - ec * h,
                    "the policy term has the wrong sign: the loss is -mean(log_probs * advantage) with advantage = "
                    "returns - values (minimising it performs gradient ascent on J). Check both the minus in front "
                    "and the order returns - values."),
        "ent_sign": (pi + vc * vl + ec * h,
                     "the entropy bonus has the wrong sign: subtract entropy_coef * mean(entropy) so that "
                     "minimising the loss raises the entropy."),
        "no_value_coef": (pi + vl - ec * h, "multiply the critic's squared error by value_coef."),
        "no_entropy": (pi + vc * vl, "the entropy term is missing: - entropy_coef * mean(entropy)."),
        "no_value": (pi - ec * h, "the critic's term value_coef * mean((returns - values)^2) is missing."),
        "half_mse": (pi + 0.5 * vc * vl - ec * h, "the critic term is value_coef * mean((returns - values)^2), "
                     "without an extra factor 1/2."),
        "abs_error": (pi + vc * (ret - v).abs().mean() - ec * h,
                      "the critic term squares the error: mean((returns - values)^2), not the absolute value."),
        "sum": (-(logp * adv).sum() + vc * (ret - v).pow(2).sum() - ec * ent.sum(),
                "use means over the batch, not sums (the step size would grow with the batch size)."),
    }
    if len(adv) > 1:
        mistakes["normalized"] = (
            -(logp * (adv - adv.mean()) / (adv.std() + 1e-8)).mean() + vc * vl - ec * h,
            "this loss uses the raw advantage returns - values; normalising the advantages is an option of the "
            "training loop, not part of a2c_loss.")
    return mistakes


@checker("a2c_loss")
def check_a2c_loss(fn) -> None:
    """Check `fn(log_probs, values, returns, entropy, value_coef, entropy_coef)`: the value of the loss, and its
    gradients (the advantage must be a constant: no gradient may reach `values` through the policy term)."""
    c = Check("a2c_loss")
    cases = _loss_cases()
    for name, (logp, v, ret, ent), vc, ec in cases:
        b = len(logp)
        case = (f"{name}: log_probs={logp.tolist()}, values={v.tolist()}, returns={ret.tolist()}, "
                f"entropy={ent.tolist()}, value_coef={vc}, entropy_coef={ec}" if b <= 3 else
                f"{name} (random tensors of shape ({b},)), value_coef={vc}, entropy_coef={ec}")
        leaves = [x.clone().requires_grad_(True) for x in (logp, v, ent)]
        lp, vv, en = leaves
        got = c.call(fn, lp, vv, ret.clone(), en, vc, ec, case=case)
        expected = _a2c_loss(logp, v, ret, ent, vc, ec)
        c.expect_tensor(got, expected, case=case, mistakes=_loss_mistakes(logp, v, ret, ent, vc, ec))
        _check_gradients(c, got, leaves, (logp, v, ret, ent), vc, ec, case)
    c.passed(f"{len(cases)} batches from 1 to 256: loss value and gradients, advantage held constant")


def _check_gradients(c: Check, got, leaves, data, vc, ec, case) -> None:
    logp, v, ret, ent = data
    b = len(logp)
    if not got.requires_grad:
        c.fail(case, "a loss that gradients flow through", "a tensor with requires_grad=False",
               hint="the result is cut off from the inputs: build it from the tensors with torch operations "
                    "(no .item(), .numpy() or .detach() on log_probs, values or entropy).")
    for x in leaves:
        x.grad = None
    got.backward()
    names = ("log_probs", "values", "entropy")
    expected = (-(ret - v) / b, 2 * vc * (v - ret) / b, torch.full((b,), -ec / b))
    for name, x, e in zip(names, leaves, expected):
        g = x.grad if x.grad is not None else torch.zeros_like(x)
        if torch.allclose(g, e.to(g.dtype), rtol=1e-4, atol=1e-6):
            continue
        hint = f"the gradient of your loss with respect to `{name}` is wrong."
        if name == "values" and torch.allclose(g, (e + logp / b).to(g.dtype), rtol=1e-4, atol=1e-6):
            hint = ("gradient flows from the policy term into `values`: the advantage must be a constant there. "
                    "Use advantage = (returns - values).detach().")
        elif x.grad is None:
            hint = f"no gradient reaches `{name}`: did you .detach() it (only the advantage is detached)?"
        c.fail(f"{case} (gradient with respect to {name})", e, g, hint=hint)
