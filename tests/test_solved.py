"""Solved, still solved, solved for good: the rule of lecturekit.evaluation.History on hand-made evaluation
sequences (no training), and the Monitor's stopping with `confirm_evals`."""
import pytest

from lecturekit.evaluation import History, Monitor, Run, confirmed, solved_marks


def evals_of(means, every=100):
    """(env_steps, wall_s, mean, std) per evaluation: every 100 steps, one second each."""
    return [(every * (i + 1), float(i + 1), float(m), 0.0) for i, m in enumerate(means)]


def test_confirmed_first_hit_is_still_solved_and_for_good():
    # target 10, K = 3: first hit at eval 3 (300 steps, 3 s); evals 4, 5, 6 all >= 10 -> still solved;
    # every later one stays at 10 -> solved for good from eval 3 too.
    m = solved_marks(evals_of([1, 5, 10, 12, 10, 11]), target=10, confirm_evals=3)
    assert m == {"solved": True, "solved_at_steps": 300, "solved_at_s": 3.0, "still_solved": True,
                 "solved_for_good_at_steps": 300, "solved_for_good_at_s": 3.0}


def test_lucky_first_hit_then_falls_apart():
    # SB3's A2C in issue 18: at the target once (eval 2), then below it (eval 3) -> not still solved;
    # the streak that lasts to the end starts at eval 5 (500 steps) and holds 4 = K + 1 evaluations.
    m = solved_marks(evals_of([3, 10, 2, 4, 10, 10, 11, 10]), target=10, confirm_evals=3)
    assert m["solved"] and m["solved_at_steps"] == 200
    assert m["still_solved"] is False
    assert (m["solved_for_good_at_steps"], m["solved_for_good_at_s"]) == (500, 5.0)


def test_final_streak_too_short_is_not_for_good():
    # the run ends with 2 evaluations at the target after a dip: fewer than K + 1 = 4, so not solved for good;
    # the first hit (eval 1) was followed by 10, 10, 3: one of the K = 3 is below -> not still solved.
    m = solved_marks(evals_of([10, 10, 10, 3, 10, 10]), target=10, confirm_evals=3)
    assert m["solved_at_steps"] == 100 and m["still_solved"] is False
    assert m["solved_for_good_at_steps"] is None and m["solved_for_good_at_s"] is None


def test_not_yet_checked_and_never_solved():
    # hit at the last-but-one evaluation, only 1 of K = 3 followed: not checked yet (None), not for good
    m = solved_marks(evals_of([0, 10, 10]), target=10, confirm_evals=3)
    assert m["solved"] and m["still_solved"] is None and m["solved_for_good_at_steps"] is None
    never = solved_marks(evals_of([0, 9.99, 5]), target=10, confirm_evals=3)
    assert never == {"solved": False, "solved_at_steps": None, "solved_at_s": None, "still_solved": False,
                     "solved_for_good_at_steps": None, "solved_for_good_at_s": None}
    assert solved_marks(evals_of([100]), target=None, confirm_evals=0)["solved"] is False


def test_k_zero_is_todays_first_hit():
    # K = 0 checks nothing after the hit: still_solved None; for good = the final streak (here the hit itself)
    m = solved_marks(evals_of([-500, -180]), target=-200, confirm_evals=0)
    assert m["solved_at_steps"] == 200 and m["still_solved"] is None and m["solved_for_good_at_steps"] == 200


def test_confirmed_needs_the_last_k_plus_one_at_target():
    assert confirmed(evals_of([1, 10]), 10, 0)
    assert not confirmed(evals_of([10, 10, 10]), 10, 3)       # only 3 evaluations in all
    assert confirmed(evals_of([0, 10, 10, 10, 10]), 10, 3)
    assert not confirmed(evals_of([10, 10, 9, 10, 10]), 10, 3)
    assert not confirmed(evals_of([10, 10]), None, 0)


def test_run_rejects_negative_confirm_evals():
    with pytest.raises(ValueError, match="confirm_evals"):
        Run(confirm_evals=-1)


class Scripted:
    """An evaluate(act_fn) that returns the next mean of a script: the Monitor without any environment."""

    def __init__(self, means):
        self.means = iter(means)

    def __call__(self, act_fn):
        return float(next(self.means)), 0.0


@pytest.mark.parametrize("k, means, stop_at, still", [
    (0, [0, 10, 10, 10], 200, None),            # today's rule: stop at the first hit
    (2, [0, 10, 11, 10, 0], 400, True),         # hit at 200, confirmed by 300 and 400: stop at 400
    (2, [0, 10, 3, 10, 10, 10, 0], 600, False),  # the dip at 300 breaks it; the streak from 400 ends it at 600
])
def test_monitor_keeps_evaluating_k_more_after_the_hit(k, means, stop_at, still):
    mon = Monitor("scripted", "none", Run(steps=10_000, target=10, eval_every=100, confirm_evals=k),
                  evaluate=Scripted(means))
    step = 0
    while True:
        step += 100
        if mon.should_stop(step, act_fn=None):
            break
    h = mon.finish()
    assert (h.stopped, h.env_steps, h.solved_at_steps, h.still_solved) == ("target", stop_at, 200, still)
    assert h.solved_for_good_at_steps == stop_at - 100 * k
    summary = h.summary()
    assert summary["still_solved"] is still and summary["solved_for_good_at_steps"] == stop_at - 100 * k
    assert summary["confirm_evals"] == k


def test_bench_rows_count_still_solved_and_for_good():
    from lecturekit.course.cli import bench_rows, markdown_table

    def run(seed, **marks):
        return {"algo": "x", "env": "E", "target": 10, "seed": seed, "confirm_evals": 3, **marks}

    rows = bench_rows([
        run(0, solved=True, solved_at_steps=100, solved_at_s=1.0, still_solved=True,
            solved_for_good_at_steps=100, solved_for_good_at_s=1.0),
        run(1, solved=True, solved_at_steps=200, solved_at_s=2.0, still_solved=False,
            solved_for_good_at_steps=600, solved_for_good_at_s=6.0),
        run(2, solved=False, solved_at_steps=None, solved_at_s=None, still_solved=False,
            solved_for_good_at_steps=None, solved_for_good_at_s=None),
    ])
    # first hits 100, 200, inf -> median 200; for good 100, 600, inf -> median 600, worst inf
    (row,) = rows
    assert (row["solved"], row["still_solved"], row["seeds"]) == (2, 1, 3)
    assert (row["median_steps"], row["good_median_steps"], row["good_median_s"]) == (200, 600, 6.0)
    assert row["good_worst_steps"] == float("inf")
    table = markdown_table(rows)
    assert "| 2/3 | 1/3 |" in table and "not reached" in table


def test_history_defaults_say_not_checked():
    h = History(algo="a", env="e", seed=0)
    assert h.still_solved is None and h.solved_for_good_at_steps is None and h.summary()["confirm_evals"] == 0
