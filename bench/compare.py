"""`make compare`: Stable-Baselines3 (rl-baselines3-zoo hyperparameters) and the course's implementations, side by
side on the same tasks, seeds and evaluation rule.

    python bench/compare.py [ALGO ...] [--seeds 5] [--out bench/compare]

For each algorithm (ppo, a2c on CartPole-v1; sac, td3, ddpg on Pendulum-v1) and seed, one SB3 run and one course
run, alternating in one process queue (SB3, course, SB3, course, ...) on one torch thread.  Both sides are judged
by the same `lecturekit.evaluation.Monitor`: an evaluation every `eval_every` env steps (the course benchmark's
period for that algorithm), the same number of deterministic episodes from the same reset seeds, the same target,
and the same still-solved rule (`lecturekit.algos.CONFIRM_EVALS` more evaluations at the target; see
`lecturekit.evaluation.History`).  On the SB3 side a callback hands the Monitor an act_fn that calls
`model.predict(obs, deterministic=True)` and stops `learn` when the Monitor says so.  Seconds run from the start of
training (after the model and environments are built) to the evaluation in question, evaluations included.
Step budgets are each side's own: the zoo's n_timesteps for SB3, the course benchmark's for the course.

Writes OUT/results.json (meta, rows, every run's `History.summary()`) and OUT/results.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from lecturekit.algos import get
from lecturekit.course.cli import bench_rows, fmt_number, markdown_table, train_one
from lecturekit.evaluation import History, Monitor, Run

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_hparams import HPARAMS, ZOO_COMMIT  # noqa: E402

ALGOS = ["ppo", "a2c", "sac", "td3", "ddpg"]


def schedule(value):
    """The zoo's "lin_X" (X at the start, falling linearly to 0 over the budget) as SB3's schedule; numbers as is."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: progress_remaining * start
    return value


def sb3_model(name: str, env_id: str, seed: int):
    """The SB3 model of `name` with the zoo's hyperparameters for `env_id`, and its step budget."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    hp = dict(HPARAMS[name, env_id])
    budget, n_envs, policy = hp.pop("n_timesteps"), hp.pop("n_envs", 1), hp.pop("policy")
    for key in ("learning_rate", "clip_range"):
        if key in hp:
            hp[key] = schedule(hp[key])
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if hp.pop("noise_type", None) == "normal":
        n_act = env.action_space.shape[0]
        hp["action_noise"] = NormalActionNoise(np.zeros(n_act), hp.pop("noise_std") * np.ones(n_act))
    model = getattr(sb3, name.upper())(policy, env, seed=seed, device="cpu", verbose=0, **hp)
    return model, budget


def train_sb3(name: str, env_id: str, run: Run) -> History:
    """One SB3 run judged by the course's Monitor (`run`'s target, evaluation and still-solved rule); the step
    budget is the zoo's unless `run.steps` is smaller."""
    from stable_baselines3.common.callbacks import BaseCallback

    model, budget = sb3_model(name, env_id, run.seed)
    run = dataclasses.replace(run, steps=min(budget, run.steps))

    class MonitorCallback(BaseCallback):
        def _on_training_start(self) -> None:
            self.mon = Monitor(f"sb3-{name}", env_id, run, config=HPARAMS[name, env_id])

        def _on_step(self) -> bool:
            return not self.mon.should_stop(self.num_timesteps, self.act)

        def act(self, obs: np.ndarray) -> np.ndarray:
            return self.model.predict(obs, deterministic=True)[0]

    cb = MonitorCallback()
    # the zoo's budget, not run.steps, so that the linear schedules fall as they do in the zoo
    model.learn(total_timesteps=budget, callback=cb)
    hist = cb.mon.finish(None)
    model.get_env().close()
    return hist


def one_pair(name: str, seed: int, **run_options) -> list[dict]:
    """An SB3 run, then a course run, of `name` with `seed`: their summaries (with side and target)."""
    algo = get(name)
    out = []
    for side in ("sb3", "course"):
        run = algo.bench_run(seed, **run_options)
        if side == "sb3":
            hist = train_sb3(name, algo.bench_env, run)
        else:
            hist = train_one(algo, algo.bench_env, algo.config(), run)
        out.append({**hist.summary(), "algo": name, "side": side, "target": run.target})
        if hist.confirm_evals != run.confirm_evals:  # a train() still written with keywords gets no confirm_evals
            out[-1]["note"] = f"{name}'s train() does not take a Run: still-solved not checked"
            print(f"  note: {out[-1]['note']}", file=sys.stderr)
    return out


SIDE_KEYS = ["solved", "still_solved", "seeds", "median_steps", "median_s", "good_median_steps", "good_median_s",
             "worst_s", "good_worst_s"]


def compare_rows(results: list[dict]) -> list[dict]:
    """One row per algorithm: each side's `bench_rows` figures (prefixed sb3_ / course_) and the ratios of the
    median seconds (SB3 / course) to the first evaluation at the target and to solved for good."""
    rows = []
    for name in dict.fromkeys(r["algo"] for r in results):
        sides = {s: bench_rows([r for r in results if r["algo"] == name and r["side"] == s])[0]
                 for s in ("sb3", "course")}
        row = {"algo": name, "env": sides["course"]["env"], "target": sides["course"]["target"]}
        for s, r in sides.items():
            row |= {f"{s}_{k}": r[k] for k in SIDE_KEYS}
            # a side whose runs ignored confirm_evals has first hits only: no still-solved or for-good figures
            row[f"{s}_checked"] = not any(r.get("note") for r in results if r["algo"] == name and r["side"] == s)
        for key in ("median_s", "good_median_s"):
            a, b = row[f"sb3_{key}"], row[f"course_{key}"]
            if key.startswith("good") and not (row["sb3_checked"] and row["course_checked"]):
                a = b = float("nan")
            row[f"ratio_{key}"] = a / b if b and np.isfinite(a) and np.isfinite(b) else float("nan")
        rows.append(row)
    return rows


def ratio(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.1f}x"


def solved_still(r: dict, side: str) -> str:
    still = f"{r[f'{side}_still_solved']}/{r[f'{side}_seeds']}" if r.get(f"{side}_checked", True) else "not checked"
    return f"{r[f'{side}_solved']}/{r[f'{side}_seeds']} / {still}"


def good_s(r: dict, side: str) -> str:
    return fmt_number(r[f"{side}_good_median_s"], 2) if r.get(f"{side}_checked", True) else "not checked"


COLUMNS = [
    ("task (target)", lambda r: f"{r['algo']} {r['env']} ({r['target']:g})"),
    ("SB3 solved / still", lambda r: solved_still(r, "sb3")),
    ("course solved / still", lambda r: solved_still(r, "course")),
    ("SB3 median s", lambda r: fmt_number(r["sb3_median_s"], 2)),
    ("course median s", lambda r: fmt_number(r["course_median_s"], 2)),
    ("ratio", lambda r: ratio(r["ratio_median_s"])),
    ("SB3 for good, s", lambda r: good_s(r, "sb3")),
    ("course for good, s", lambda r: good_s(r, "course")),
    ("ratio (for good)", lambda r: ratio(r["ratio_good_median_s"])),
    ("SB3 median steps", lambda r: fmt_number(r["sb3_median_steps"])),
    ("course median steps", lambda r: fmt_number(r["course_median_steps"])),
]


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def write(out: str, rows: list[dict], results: list[dict], meta: dict) -> str:
    """OUT/results.json and OUT/results.md; returns the Markdown."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "runs": results}, f, indent=1, default=str)
    text = (f"{'**' + meta['label'] + '.** ' if meta.get('label') else ''}Measured {meta['date']} on {meta['machine']}, "
            f"seeds {meta['seeds']}, one torch thread, SB3 {meta['sb3']} with rl-baselines3-zoo hyperparameters "
            f"(commit {meta['zoo_commit'][:10]}), {meta['load_start']} at the start and {meta['load_end']} at the "
            f"end ({meta['wall_min']:.1f} min).  Medians over seeds; seconds from the start of training to the "
            "first evaluation at the target (\"median s\") and to the evaluation from which the run stays at the "
            f"target (\"for good\"); still solved: the {meta['confirm_evals']} evaluations after the first hit "
            "reach the target too.  Ratio: SB3 seconds / course seconds.\n\n" + markdown_table(rows, COLUMNS) + "\n")
    notes = sorted({r["note"] for r in results if r.get("note")})
    text += "".join(f"\nNote: {n}.\n" for n in notes)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/compare.py", description=__doc__.split("\n\n")[0])
    p.add_argument("algos", nargs="*", default=ALGOS, help=f"algorithms (default: {' '.join(ALGOS)})")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    p.add_argument("--out", default=None, help="folder for results.json and results.md")
    p.add_argument("--label", default="", help="a label written above the table (e.g. 'smoke run')")
    args = p.parse_args(argv)
    unknown = [a for a in args.algos if a not in ALGOS]
    if unknown:
        p.error(f"unknown algorithm(s) {', '.join(unknown)}; available: {', '.join(ALGOS)}")
    import stable_baselines3

    from lecturekit.algos import CONFIRM_EVALS

    torch.set_num_threads(1)
    meta = {"label": args.label, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "python": platform.python_version(), "torch": torch.__version__, "sb3": stable_baselines3.__version__,
            "zoo_commit": ZOO_COMMIT, "seeds": f"0-{args.seeds - 1}", "confirm_evals": CONFIRM_EVALS,
            "load_start": load()}
    start, results = time.perf_counter(), []
    for seed in range(args.seeds):
        for name in args.algos:
            for r in one_pair(name, seed):
                results.append(r)
                print(f"  {r['side']:>6} {name} seed {seed}: solved={r['solved']} still={r['still_solved']} "
                      f"steps={r['solved_at_steps']} s={r['solved_at_s']} for good s={r['solved_for_good_at_s']}",
                      file=sys.stderr, flush=True)
    meta |= {"load_end": load(), "wall_min": (time.perf_counter() - start) / 60}
    rows = compare_rows(results)
    if args.out:
        print(write(args.out, rows, results, meta))
    else:
        print(markdown_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
