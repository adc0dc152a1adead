"""The training command line: help, clear errors with exit status 2, the JSON summary, the benchmark table."""
import json
import subprocess
import sys

import numpy as np
import pytest

from lecturekit.course.cli import bench_rows, main, markdown_table, parse_overrides
from lecturekit.evaluation import History, Monitor, Run, TrainingDiverged, evaluate

KEYS = {"algo", "env", "seed", "env_steps", "wall_s", "eval_return_mean", "eval_return_std", "solved",
        "solved_at_steps", "solved_at_s"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "lecturekit", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_algorithms():
    out = run("--help")
    assert out.returncode == 0
    for name in ("reinforce", "a2c", "ppo", "cem"):
        assert name in out.stdout


@pytest.mark.parametrize("args, words", [
    (["train", "ppo2"], "Unknown algorithm 'ppo2'. Available:"),
    (["train", "reinforce", "--env", "NoSuchEnv-v0"], "Unknown environment 'NoSuchEnv-v0'"),
    (["train", "reinforce", "--set", "no_such_field=1"], "has no field 'no_such_field'"),
    (["bench", "nope"], "Unknown algorithm 'nope'"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, words, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_train_prints_progress_on_stderr_and_json_last():
    out = run("train", "cem", "--env", "CartPole-v1", "--steps", "3000", "--seed", "1", "--eval-every", "1000",
              "--eval-episodes", "3")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert KEYS <= summary.keys()
    assert summary["algo"] == "cem" and summary["seed"] == 1 and summary["env_steps"] >= 3000
    assert "step" in out.stderr


def test_parse_overrides_converts_types():
    from dataclasses import dataclass

    @dataclass
    class C:
        lr: float = 1e-3
        n: int = 4
        norm: bool = True
        hidden: tuple = (64, 64)

    c = parse_overrides(C, ["lr=0.01", "n=8", "norm=false", "hidden=32,32"])
    assert (c.lr, c.n, c.norm, c.hidden) == (0.01, 8, False, (32, 32))


def test_bench_rows_median_and_worst_with_an_unsolved_seed():
    runs = [{"algo": "x", "env": "E", "target": 1.0, "solved": s, "solved_at_steps": n, "solved_at_s": t}
            for s, n, t in [(True, 100, 1.0), (True, 300, 3.0), (False, None, None)]]
    (row,) = bench_rows(runs)
    assert row["solved"] == 2 and row["median_steps"] == 300 and row["worst_steps"] == float("inf")
    assert "2/3" in markdown_table([row]) and "not reached" in markdown_table([row])


def test_monitor_stops_on_nan_with_a_message():
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=100, eval_episodes=2))
    with pytest.raises(TrainingDiverged, match="'loss' became nan at env step 7"):
        mon.log(7, loss=float("nan"))


def test_monitor_target_budget_and_stop_button():
    always_left = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=100, target=1.0, eval_every=10, eval_episodes=2))
    assert mon.should_stop(10, always_left) and mon.finish().stopped == "target"
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=20, target=1e9, eval_every=10, eval_episodes=2))
    assert not mon.should_stop(10, always_left) and mon.should_stop(20, always_left)
    h = mon.finish()
    assert h.stopped == "budget" and not h.solved and len(h.evals) == 2
    mon = Monitor("demo", "CartPole-v1", Run(seed=0, steps=100, eval_every=10, eval_episodes=2, callback=lambda e: False))
    assert mon.should_stop(10, always_left) and mon.finish().stopped == "user"


def test_evaluate_is_deterministic_and_counts_one_episode_per_env():
    always_left = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    m1, s1 = evaluate(always_left, "CartPole-v1", 5, seed=3)
    m2, s2 = evaluate(always_left, "CartPole-v1", 5, seed=3)
    assert (m1, s1) == (m2, s2) and 5 <= m1 < 20  # pushing left always drops the pole in a few steps


def test_history_summary_keys():
    h = History("a", "E", 0, evals=[(10, 0.5, 3.0, 1.0)], env_steps=10, wall_s=0.5)
    assert KEYS <= h.summary().keys()
