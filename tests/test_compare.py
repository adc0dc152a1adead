"""bench/compare.py: the table from hand-made runs (no SB3 needed), and one tiny real comparison (skipped when
Stable-Baselines3, the optional `compare` extra, is not installed)."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def compare():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("compare", BENCH / "compare.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def summary(side, seed, first_s, good_s, still=True):
    solved = first_s is not None
    return {"algo": "ppo", "env": "CartPole-v1", "target": 475.0, "seed": seed, "side": side, "solved": solved,
            "solved_at_steps": 1000 if solved else None, "solved_at_s": first_s, "still_solved": still,
            "solved_for_good_at_steps": 2000 if good_s else None, "solved_for_good_at_s": good_s, "confirm_evals": 3}


def test_rows_ratios_and_files(compare, tmp_path):
    # SB3 first hits 6, 4, 8 s (median 6), course 1, 2, 3 s (median 2): ratio 3.0;
    # for good: SB3 10, never, 12 (median 12), course 1, 2, 3 (median 2): ratio 6.0
    runs = [summary("sb3", 0, 6.0, 10.0), summary("course", 0, 1.0, 1.0),
            summary("sb3", 1, 4.0, None, still=False), summary("course", 1, 2.0, 2.0),
            summary("sb3", 2, 8.0, 12.0), summary("course", 2, 3.0, 3.0)]
    (row,) = compare.compare_rows(runs)
    assert (row["sb3_median_s"], row["course_median_s"], row["ratio_median_s"]) == (6.0, 2.0, 3.0)
    assert (row["sb3_good_median_s"], row["ratio_good_median_s"]) == (12.0, 6.0)
    assert (row["sb3_solved"], row["sb3_still_solved"], row["course_still_solved"]) == (3, 2, 3)
    meta = {"label": "test", "date": "2026-12-04T00:00:00+00:00", "machine": "m", "sb3": "x", "zoo_commit": "0" * 40,
            "seeds": "0-2", "confirm_evals": 3, "load_start": "load average 1", "load_end": "load average 1",
            "wall_min": 0.1}
    text = compare.write(str(tmp_path), [row], runs, meta)
    assert "| ppo CartPole-v1 (475) | 3/3 / 2/3 | 3/3 / 3/3 | 6.00 | 2.00 | 3.0x |" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"][0]["ratio_median_s"] == 3.0 and len(saved["runs"]) == 6


def test_unsolved_side_has_no_ratio(compare):
    (row,) = compare.compare_rows([summary("sb3", 0, None, None, still=False), summary("course", 0, 1.0, 1.0)])
    assert math.isnan(row["ratio_median_s"]) and compare.ratio(row["ratio_median_s"]) == "n/a"


def test_side_that_ignored_confirm_evals_says_not_checked(compare):
    course = {**summary("course", 0, 1.0, 1.0, still=None), "confirm_evals": 0, "note": "not checked"}
    (row,) = compare.compare_rows([summary("sb3", 0, 6.0, 10.0), course])
    assert not row["course_checked"] and row["ratio_median_s"] == 6.0 and math.isnan(row["ratio_good_median_s"])
    assert compare.solved_still(row, "course") == "1/1 / not checked" and compare.good_s(row, "course") == "not checked"


def test_zoo_linear_schedule(compare):
    lr = compare.schedule("lin_0.001")
    assert lr(1.0) == 0.001 and lr(0.25) == 0.00025 and compare.schedule(3e-4) == 3e-4


def test_tiny_comparison_plumbing(compare):
    pytest.importorskip("stable_baselines3")
    # PPO on CartPole, one seed, a target of 30 (a random policy scores about 20): both sides evaluated by the same
    # Monitor with 2 episodes every 512 steps, and the still-solved rule's 3 extra evaluations
    sb3, course = compare.one_pair("ppo", 0, target=30.0, eval_every=512, eval_episodes=2, steps=8192)
    for r in (sb3, course):
        assert r["solved"] and r["confirm_evals"] == 3 and r["target"] == 30.0
        assert r["env_steps"] <= 8192 and r["still_solved"] in (True, False, None)
        if r["stopped"] == "target":  # stopped only once the last 3 + 1 evaluations were all at the target
            assert r["solved_at_steps"] <= r["solved_for_good_at_steps"] <= r["env_steps"] - 3 * 512
    assert (sb3["side"], course["side"]) == ("sb3", "course")
