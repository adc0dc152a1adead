"""Command line: `python -m lecturekit train|bench|grade ...`.  See `python -m lecturekit --help`."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys

from lecturekit.algos import Algo, get, registry


class UsageError(Exception):
    """A mistake in the command line: printed as one line, exit status 2."""


def parse_overrides(config_cls: type, pairs: list[str]):
    """Config from `field=value` strings, each value converted to the type of the field's default."""
    cfg = config_cls()
    names = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set expects field=value, got '{pair}'")
        key, raw = pair.split("=", 1)
        if key not in names:
            raise UsageError(f"{config_cls.__name__} has no field '{key}'. Fields: {', '.join(sorted(names))}")
        default = getattr(cfg, key)
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1")
            elif isinstance(default, (tuple, list)):
                value = type(default)(int(x) for x in raw.split(",") if x)
            elif default is None:
                value = json.loads(raw)
            else:
                value = type(default)(raw)
        except ValueError:
            raise UsageError(f"cannot read '{raw}' as a value for {key} (default {default!r})") from None
        changes[key] = value
    try:
        return dataclasses.replace(cfg, **changes)
    except (ValueError, TypeError) as e:  # a Config's own validation (__post_init__)
        raise UsageError(f"{config_cls.__name__}: {e}") from None


def stderr_progress(event: dict) -> None:
    """One line of progress per evaluation, on stderr."""
    print(
        f"  step {event['env_steps']:>8d}/{event['total_steps']}  eval {event['eval_mean']:9.2f} "
        f"± {event['eval_std']:7.2f}  {event['wall_s']:7.2f}s",
        file=sys.stderr,
        flush=True,
    )


def run_train(algo: Algo, env: str, steps: int, seed: int, target, eval_every, eval_episodes, cfg, callback=None):
    import torch

    torch.set_num_threads(int(os.environ.get("LECTUREKIT_THREADS", "1")))
    return algo.train(env, cfg, steps=steps, seed=seed, target=target, eval_every=eval_every,
                      eval_episodes=eval_episodes, callback=callback)


def cmd_train(args) -> int:
    from lecturekit.envs import check_env_id
    from lecturekit.evaluation import TrainingDiverged

    algo = get_algo(args.algo)
    try:
        check_env_id(args.env)
    except ValueError as e:
        raise UsageError(str(e)) from None
    cfg = parse_overrides(algo.config, args.set)
    print(f"training {algo.name} on {args.env}, seed {args.seed}, up to {args.steps} steps", file=sys.stderr)
    try:
        hist = run_train(algo, args.env, args.steps, args.seed, args.target, args.eval_every, args.eval_episodes,
                         cfg, callback=None if args.quiet else stderr_progress)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # e.g. an algorithm that does not support this action space
        raise UsageError(str(e)) from None
    print(json.dumps(hist.summary()))
    return 0


def bench_rows(results: list[dict]) -> list[dict]:
    """Aggregate per-seed results into one row per algorithm (unsolved seeds count as infinitely slow)."""
    rows = []
    for name in dict.fromkeys(r["algo"] for r in results):
        runs = [r for r in results if r["algo"] == name]
        inf = float("inf")
        steps = sorted(r["solved_at_steps"] if r["solved"] else inf for r in runs)
        secs = sorted(r["solved_at_s"] if r["solved"] else inf for r in runs)
        rows.append({
            "algo": name, "env": runs[0]["env"], "target": runs[0]["target"],
            "solved": sum(r["solved"] for r in runs), "seeds": len(runs),
            "median_steps": statistics.median(steps), "worst_steps": steps[-1],
            "median_s": statistics.median(secs), "worst_s": secs[-1],
        })
    return rows


def markdown_table(rows: list[dict]) -> str:
    def fmt(x, digits):
        return "not reached" if x == float("inf") else (f"{x:,.0f}" if digits == 0 else f"{x:.{digits}f}")

    lines = ["| algorithm | task (target) | seeds solved | median steps | worst steps | median s | worst s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['algo']} | {r['env']} ({r['target']:g}) | {r['solved']}/{r['seeds']} | "
                     f"{fmt(r['median_steps'], 0)} | {fmt(r['worst_steps'], 0)} | {fmt(r['median_s'], 2)} | "
                     f"{fmt(r['worst_s'], 2)} |")
    return "\n".join(lines)


def bench_one(algo: Algo, seed: int) -> dict:
    """The summary of one benchmark run (a diverged run counts as not solved), with a line of progress on stderr."""
    from lecturekit.evaluation import TrainingDiverged

    try:
        hist = run_train(algo, algo.bench_env, algo.bench_steps, seed, algo.bench_target, algo.eval_every,
                         algo.eval_episodes, algo.config())
        summary = hist.summary()
    except TrainingDiverged as e:
        summary = {"algo": algo.name, "env": algo.bench_env, "seed": seed, "solved": False,
                   "solved_at_steps": None, "solved_at_s": None, "error": str(e)}
    summary["target"] = algo.bench_target
    print(f"  {algo.name} seed {seed}: solved={summary['solved']} steps={summary.get('solved_at_steps')} "
          f"s={summary.get('solved_at_s')}", file=sys.stderr, flush=True)
    return summary


def cmd_bench(args) -> int:
    names = args.algos or list(registry())
    algos = [get_algo(n) for n in names]
    if args.cluster:  # each run a task on a Dask cluster: lecturekit.course.cluster
        from lecturekit.course import cluster
        try:
            results = cluster.bench(args.cluster, algos, args.seeds, log=cluster.stderr_log)
        except cluster.ClusterError as e:
            raise UsageError(str(e)) from None
    else:
        results = [bench_one(algo, seed) for algo in algos for seed in range(args.seeds)]
    rows = bench_rows(results)
    table = markdown_table(rows)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                "python": platform.python_version(), "seeds": args.seeds}
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows, "runs": results}, f, indent=1, default=str)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(f"Measured {meta['date']} on {meta['machine']}, {args.seeds} seeds, one torch thread; "
                    "seconds are training time including evaluation.\n\n" + table + "\n")
    return 0


def cmd_grade(args) -> int:
    from lecturekit.course import grade

    def progress(ev: dict) -> None:
        verdicts = ", ".join(f"{r.exercise} {r.result}" for r in ev["rows"])
        print(f"  [{ev['index']}/{ev['total']}] {ev['student']} ({ev['notebook']}): {verdicts}", file=sys.stderr,
              flush=True)

    try:
        subs = grade.find_notebooks(args.paths)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    if not subs:
        raise UsageError(f"no .ipynb notebooks found in {', '.join(args.paths)}")
    print(f"grading {len(subs)} notebook(s), at most {args.timeout:g} s each, {args.jobs} at a time", file=sys.stderr,
          flush=True)
    rows = grade.grade(args.paths, timeout=args.timeout, cell_timeout=args.cell_timeout,
                       progress=None if args.quiet else progress, jobs=args.jobs)
    print(grade.table(rows))
    if args.csv:
        grade.write_csv(rows, args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def get_algo(name: str) -> Algo:
    try:
        return get(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    try:
        listing = "\n".join(f"  {a.name:<18} {a.summary}" for a in registry().values())
    except Exception as e:  # a broken algorithm module must not hide --help
        listing = f"  (could not list algorithms: {e})"
    p = argparse.ArgumentParser(
        prog="python -m lecturekit",
        description="Train and benchmark the course's policy-gradient algorithms; grade exercise notebooks.",
        epilog="algorithms:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one algorithm on one environment")
    t.add_argument("algo")
    t.add_argument("--env", default="CartPole-v1", help="Gymnasium environment id (default CartPole-v1)")
    t.add_argument("--steps", type=int, default=200_000, help="environment step budget")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--target", type=float, default=None, help="stop once the mean eval return reaches this")
    t.add_argument("--eval-every", type=int, default=None, help="evaluate every K environment steps")
    t.add_argument("--eval-episodes", type=int, default=20, help="episodes per evaluation (deterministic actions)")
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a Config field")
    t.add_argument("--quiet", action="store_true", help="no progress on stderr")
    t.set_defaults(func=cmd_train)
    b = sub.add_parser("bench", help="run algorithms on their benchmark tasks over several seeds")
    b.add_argument("algos", nargs="*", help="algorithms (default: all)")
    b.add_argument("--seeds", type=int, default=5)
    b.add_argument("--out", default=None, help="folder for results.json and results.md")
    b.add_argument("--cluster", metavar="ADDRESS", default=None, help="run each (algorithm, seed) as a task on this "
                   "Dask scheduler (tcp://host:8786, or a scheduler file)")
    b.set_defaults(func=cmd_bench)
    g = sub.add_parser("grade", help="run filled-in exercise notebooks and report every exercise's result")
    g.add_argument("paths", nargs="+", metavar="PATH", help="notebooks, or folders of them (one sub-folder per "
                   "student, or files named like alice_ex00_discounted_returns.ipynb)")
    g.add_argument("--timeout", type=float, default=300, help="seconds per notebook (default 300)")
    g.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default 120)")
    g.add_argument("--csv", default="grades.csv", help="write the rows here too (default grades.csv; '' for none)")
    g.add_argument("--jobs", type=int, default=1, help="notebooks graded at the same time (default 1)")
    g.add_argument("--quiet", action="store_true", help="no progress on stderr")
    g.set_defaults(func=cmd_grade)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["grade"]:  # grade owns its options: lecturekit.course.grade.main
        from lecturekit.course import grade
        return grade.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
