"""Checkers of the foundation's exercise: discounted returns.  The worked example of the checker pattern."""
from __future__ import annotations

import numpy as np

from lecturekit.course.checking import Check, checker
from lecturekit.returns import discounted_returns


def _returns_mistakes(rewards, gamma) -> dict:
    """What the common wrong answers produce, each with the hint that explains it."""
    r = np.asarray(rewards, dtype=np.float64)
    T = len(r)
    forward = np.array([sum(gamma ** k * r[k] for k in range(t + 1)) for t in range(T)])
    from_start = np.array([sum(gamma ** k * r[k] for k in range(t, T)) for t in range(T)])
    shifted = np.array([sum(gamma ** (k - t) * r[k] for k in range(t + 1, T)) for t in range(T)])
    whole = np.full(T, discounted_returns(r, gamma)[0] if T else 0.0)
    whole_hint = ("every G_t equals G_0, the return of the whole episode: G_t must add only the rewards from step t "
                  "on (the earlier ones cannot be changed by a_t), discounted from t: sum_{k >= t} gamma^(k - t) r_k.")
    if np.allclose(whole, from_start):  # both mistakes give the same numbers here: say both
        whole_hint += " (Or your discount restarts from k = 0: G_t uses gamma^(k - t), not gamma^k.)"
    return {
        "whole_episode": (whole, whole_hint),
        "reversed": (discounted_returns(r, gamma)[::-1].copy(),
                     "your returns come out in reverse order: G_0 (the whole episode) belongs at index 0. If you "
                     "loop backwards and append, reverse the list at the end."),
        "forward": (forward, "you summed the rewards up to t (the past) instead of from t to the end (the future)."),
        "from_start": (from_start, "the discount restarts at each t: G_t uses gamma^(k - t), not gamma^k."),
        "off_by_one": (shifted, "off by one: G_t includes r_t itself (G_t = r_t + gamma * G_{t+1})."),
        "undiscounted": (discounted_returns(r, 1.0), "no discount applied: multiply by gamma at each step back."),
        "cumsum": (np.cumsum(r), "you added the past rewards r_0..r_t (as np.cumsum or a forward loop does); "
                                 "returns-to-go add the future ones, r_t..r_{T-1}, discounted: loop backwards."),
    }


@checker("discounted_returns")
def check_discounted_returns(fn) -> None:
    """Check `fn(rewards, gamma)` against G_t = sum_{k >= t} gamma^(k - t) r_k on cases from small to large."""
    c = Check("discounted_returns")
    rng = np.random.default_rng(0)
    cases = [
        ([1.0], 0.9),
        ([0.0, 1.0], 0.5),
        ([1, 2, 3], 0.5),                          # ints: the answer must still be floats
        ([1.0, 1.0, 1.0], 1.0),                    # no discount
        ([2.0, 0.0, 1.0], 0.0),                    # gamma = 0: G_t = r_t
        ([-1.0, 0.5, 2.0, -3.0], 0.9),
        (np.array([1.0, -2.0, 0.5, 4.0, 0.0]), 0.99),
        (rng.normal(size=50), 0.95),               # longer episode, as a NumPy array
        (np.ones(500), 0.99),                      # CartPole length
    ]
    for rewards, gamma in cases:
        case = f"rewards={rewards!r}, gamma={gamma}" if len(rewards) <= 6 else \
            f"a NumPy array of {len(rewards)} rewards, gamma={gamma}"
        got = c.call(fn, rewards, gamma, case=case)
        c.expect_close(got, discounted_returns(rewards, gamma), case=case, mistakes=_returns_mistakes(rewards, gamma))
    c.passed(f"{len(cases)} episodes from 1 to 500 steps, int and float rewards, gamma in [0, 1]")
