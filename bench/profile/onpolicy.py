"""Where the time of one on-policy benchmark run goes: rollout collection, updates, evaluation.

    python bench/profile/onpolicy.py [ALGO ...] [--seed S]      (default: ppo a2c, seed 0)

Runs each algorithm's benchmark run (`Algo.bench_run(seed)`: its Config defaults, evaluation every `eval_every`
steps, training on to the still-solved check) once under cProfile, after a short warm-up run (the first optimizer of
a process imports a compiler module), on one torch thread, and prints a Markdown table of the cumulative time in
`rollout.collect`, the algorithm's `update` and the evaluations (`Monitor.evaluate_now`: since round 2 CartPole is
evaluated by `envs.cartpole`, not by `evaluation.evaluate`), the rest ("loop and logging"), and the functions with
the most own time.  cProfile adds overhead to every Python call, so read the shares, not the seconds.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time

import torch

from lecturekit.algos import get

PARTS = [("rollout (`rollout.collect`)", "rollout.py", "collect"),
         ("update (the algorithm's `update`)", None, "update"),
         ("evaluation (`Monitor.evaluate_now`)", "evaluation.py", "evaluate_now")]


def cumulative(stats: pstats.Stats, filename: str, funcname: str) -> float:
    return sum(v[3] for (f, _, name), v in stats.stats.items() if f.endswith(filename) and name == funcname)


def profile(name: str, seed: int) -> str:
    algo = get(name)
    module_file = sys.modules[algo.train.__module__].__file__.rsplit("/", 1)[-1]
    algo.train(algo.bench_env, algo.config(), algo.bench_run(seed, steps=512))  # warm-up
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    hist = algo.train(algo.bench_env, algo.config(), algo.bench_run(seed))
    prof.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(prof)
    total = cumulative(stats, module_file, "train")
    lines = [f"### {name} on {algo.bench_env}, seed {seed}",
             "",
             f"{hist.env_steps:,} environment steps ({hist.solved_at_steps and f'{hist.solved_at_steps:,}'} to the "
             f"first evaluation at the target, still solved: {hist.still_solved}), {len(hist.evals)} evaluations; "
             f"{total:.2f} s under cProfile ({wall:.2f} s wall).",
             "",
             "| part | seconds | share |", "|---|---|---|"]
    rest = total
    for label, filename, funcname in PARTS:
        secs = cumulative(stats, filename or module_file, funcname)
        rest -= secs
        lines.append(f"| {label} | {secs:.2f} | {100 * secs / total:.0f} % |")
    lines += [f"| loop and logging (the rest) | {rest:.2f} | {100 * rest / total:.0f} % |", "",
              "Most own time (tottime):", "", "| function | calls | own s |", "|---|---|---|"]
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:8]
    for (f, line, func), (_, ncalls, tottime, _, _) in top:
        where = f"{f.rsplit('site-packages/', 1)[-1]}:{line}" if line else "built-in"
        lines.append(f"| `{func}` ({where}) | {ncalls:,} | {tottime:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("algos", nargs="*", default=["ppo", "a2c"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.algos:
        print(profile(name, args.seed))


if __name__ == "__main__":
    main()
