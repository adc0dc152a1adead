"""The discounted-returns checker rejects the mistakes students make and accepts any correct answer."""
import numpy as np
import pytest
import torch

from lecturekit.checks import CheckFailed, check_discounted_returns


def loop_backwards(rewards, gamma):
    g, out = 0.0, []
    for r in reversed(list(rewards)):
        g = r + gamma * g
        out.append(g)
    return np.array(out[::-1], dtype=float)


def by_definition(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    return np.array([np.sum(gamma ** np.arange(len(r) - t) * r[t:]) for t in range(len(r))])


def with_matrix(rewards, gamma):
    r = np.asarray(rewards, dtype=np.float32)  # float32 is fine
    T = len(r)
    k = np.arange(T)
    m = np.triu(float(gamma) ** np.clip(k[None] - k[:, None], 0, None))
    return m.astype(np.float64) @ r.astype(np.float64)


def via_torch(rewards, gamma):
    r = torch.as_tensor(np.asarray(rewards, dtype=float))
    out = torch.zeros_like(r)
    run = torch.tensor(0.0, dtype=r.dtype)
    for t in range(len(r) - 1, -1, -1):
        run = r[t] + gamma * run
        out[t] = run
    return out.numpy()


@pytest.mark.parametrize("fn", [loop_backwards, by_definition, with_matrix, via_torch])
def test_accepts_correct_answers(fn, capsys):
    check_discounted_returns(fn)
    assert "all checks passed" in capsys.readouterr().out


def reversed_order(rewards, gamma):
    return loop_backwards(rewards, gamma)[::-1]


def forward_sum(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    return np.array([sum(gamma ** k * r[k] for k in range(t + 1)) for t in range(len(r))])


def discount_from_start(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    return np.array([sum(gamma ** k * r[k] for k in range(t, len(r))) for t in range(len(r))])


def off_by_one(rewards, gamma):
    return np.append(loop_backwards(rewards, gamma)[1:], 0.0) * gamma


def int_array(rewards, gamma):
    r = np.asarray(rewards)
    g = np.zeros_like(r)
    run = 0
    for t in range(len(r) - 1, -1, -1):
        run = r[t] + gamma * run
        g[t] = run
    return g


def in_place(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    for t in range(len(r) - 2, -1, -1):
        r[t] += gamma * r[t + 1]
    return r


def in_place_list(rewards, gamma):
    for t in range(len(rewards) - 2, -1, -1):
        rewards[t] = rewards[t] + gamma * rewards[t + 1]
    return np.array(rewards, dtype=float)


def returns_list(rewards, gamma):
    return list(loop_backwards(rewards, gamma))


def returns_tensor(rewards, gamma):
    return torch.as_tensor(loop_backwards(rewards, gamma))


def stub(rewards, gamma):
    raise NotImplementedError


def crashes(rewards, gamma):
    return rewards[3]


def forgets_return(rewards, gamma):
    loop_backwards(rewards, gamma)


def undiscounted(rewards, gamma):
    return loop_backwards(rewards, 1.0)


def divide_by_powers(rewards, gamma):
    # the "vectorised" rewrite G_t = gamma^-t sum_{k>=t} gamma^k r_k: 0/0 = NaN when gamma = 0
    r = np.asarray(rewards, dtype=float)
    p = gamma ** np.arange(len(r), dtype=float)
    with np.errstate(all="ignore"):
        return np.cumsum((r * p)[::-1])[::-1] / p


WRONG = {
    reversed_order: "reverse order",
    forward_sum: "past",
    discount_from_start: "gamma^(k - t)",
    off_by_one: "off by one",
    int_array: "float",
    in_place: "in place",
    in_place_list: "in place",
    returns_list: "NumPy array",
    returns_tensor: "NumPy array",
    stub: "not implemented yet",
    crashes: "IndexError",
    forgets_return: "return",
    undiscounted: "discount",
    divide_by_powers: "NaN or inf",
}


@pytest.mark.parametrize("fn", list(WRONG), ids=lambda f: f.__name__)
def test_rejects_wrong_answers_with_a_helpful_message(fn):
    with pytest.raises(CheckFailed) as info:
        check_discounted_returns(fn)
    msg = str(info.value)
    assert msg.startswith("discounted_returns")
    assert WRONG[fn] in msg, msg


def test_failure_names_the_smallest_case_and_expected_vs_got():
    with pytest.raises(CheckFailed) as info:
        check_discounted_returns(reversed_order)
    msg = str(info.value)
    assert "rewards=[0.0, 1.0], gamma=0.5" in msg  # the first case on which reversing shows
    assert "expected: array([0.5, 1. ]" in msg and "got:      array([1. , 0.5]" in msg


def test_not_a_function():
    with pytest.raises(CheckFailed, match="expected your function"):
        check_discounted_returns(None)


def test_checker_never_lets_another_exception_escape():
    class Weird:
        def __array__(self, *a, **k):
            raise RuntimeError("boom")

    with pytest.raises(CheckFailed):
        check_discounted_returns(lambda r, g: Weird())
