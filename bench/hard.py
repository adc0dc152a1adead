"""The lecture's phenomena that CartPole and Pendulum do not show, each measured on the smallest task found to show it.

    python bench/hard.py --out bench/hard [--seeds 3] [--only NAME ...] [--workers 1] [--resume]

writes `OUT/results.json` (date, machine, commit, every run) and `OUT/results.md` (one table per experiment).
Notebooks 02, 09 and 12 plot and assert from the json; they never rerun this (about 12 CPU minutes).

Experiments (`EXPERIMENTS`; each trains every variant with seeds 0 .. max(seeds, the task's own `seeds`) - 1, for
the full step budget):
- a2c_vs_reinforce (notebook 09): A2C's bootstrapped targets against REINFORCE's Monte Carlo returns on Acrobot-v1
  (episodes of up to 500 steps, -1 per step until the tip swings up);
- overestimation (notebook 12): DDPG (one critic) against TD3 and its ablations on lecturekit/OverestimationTrap-v0,
  with the critic's estimate of the first decision's value against the true value;
- gradient_free_vs_reinforce (notebook 02): CEM against REINFORCE on CartPole with 0 and 64 noise features
  (lecturekit/CartPoleDistractors-v0): the linear policy's parameter count grows from 10 to 138.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import lecturekit.envs  # noqa: F401  (registers the lecturekit/... environments)
from lecturekit import algos
from lecturekit.evaluation import Run

DDPG_AS_TD3 = {"twin": False, "target_noise": 0.0, "policy_delay": 1}  # DDPG = TD3 without its three fixes

EXPERIMENTS = {
    "a2c_vs_reinforce": dict(
        notebook="09", phenomenon="A2C learns faster than REINFORCE (no waiting for whole episodes, less variance)",
        tasks=[dict(env="Acrobot-v1", steps=100_000, target=-100.0, eval_every=5_000, seeds=10)],
        variants={"REINFORCE": ("reinforce", {}), "A2C": ("a2c", {})}),
    "overestimation": dict(
        notebook="12", phenomenon="DDPG's single critic overestimates and misleads the actor; TD3's fixes reduce it",
        tasks=[dict(env="lecturekit/OverestimationTrap-v0", steps=6_000, target=None, eval_every=1_000,
                    eval_episodes=20, seeds=5)],
        variants={"DDPG (TD3 without fixes)": ("td3", DDPG_AS_TD3),
                  "DDPG + clipped double Q": ("td3", {**DDPG_AS_TD3, "twin": True}),
                  "TD3 without clipped double Q": ("td3", {"twin": False}),
                  "TD3 (all three fixes)": ("td3", {})}),
    "gradient_free_vs_reinforce": dict(
        notebook="02", phenomenon="gradient-free search needs more samples as the parameter count grows",
        tasks=[dict(env="lecturekit/CartPoleDistractors-v0", env_kwargs={"n_distractors": 0}, steps=200_000,
                    target=475.0, eval_every=5_000),
               dict(env="lecturekit/CartPoleDistractors-v0", env_kwargs={"n_distractors": 64}, steps=200_000,
                    target=475.0, eval_every=5_000)],
        variants={"CEM (linear policy)": ("cem", {}), "REINFORCE": ("reinforce", {})}),
}


def train_one(algo: str, env_id: str, overrides: dict, *, steps: int, seed: int, target: float | None,
              eval_every: int, eval_episodes: int):
    """THE one call into the algorithms (adapt here when their `train` signature changes); returns a History."""
    a = algos.get(algo)
    run = Run(steps=steps, seed=seed, target=target, eval_every=eval_every, eval_episodes=eval_episodes)
    return a.train(env_id, a.config(**overrides), run)


def env_with_kwargs(env: str, kwargs: dict | None) -> str:
    """Register `env` with changed keyword arguments under a new id (e.g. lecturekit/CartPoleDistractors-D64-v0)."""
    if not kwargs:
        return env
    name, version = env.rsplit("-v", 1)
    new = f"{name}-" + "-".join(f"{k}{v}" for k, v in sorted(kwargs.items())) + f"-v{version}"
    if new not in gym.registry:
        spec = gym.spec(env)
        gym.register(new, entry_point=spec.entry_point, max_episode_steps=spec.max_episode_steps,
                     kwargs={**spec.kwargs, **kwargs})
    return new


def trap_probe(model, env_id: str, gamma: float = 0.99) -> dict:
    """The critic's value of the first decision, Q(s0, mu(s0)), against its true (discounted) value."""
    env = gym.make(env_id).unwrapped
    s0 = torch.tensor([[1.0, 0.0, 1.0]])
    with torch.no_grad():
        a0 = float(model["actor"](s0))
        q = model["critic"].q1(s0, torch.tensor([[a0]]))  # TwinQ: the first critic, as the TD3 paper plots
    risk = (1.0 - a0) / 2.0
    true = -env.trap_mean * risk * sum(gamma ** k for k in range(1, env.horizon + 1))
    return {"first_action": a0, "risk": risk, "expected_return": env.expected_return(a0), "q_estimate": float(q),
            "q_true": true, "q_bias": float(q) - true}


def run_one(job: tuple) -> dict:
    name, task, label, algo, overrides, seed = job
    torch.set_num_threads(1)
    env_id = env_with_kwargs(task["env"], task.get("env_kwargs"))
    cpu0 = time.process_time()
    h = train_one(algo, env_id, overrides, steps=task["steps"], seed=seed, target=None,
                  eval_every=task["eval_every"], eval_episodes=task.get("eval_episodes", 10))
    evals = [[int(e[0]), round(float(e[2]), 3)] for e in h.evals]
    target = task.get("target")
    reached = [s for s, m in evals if target is not None and m >= target]
    row = {"experiment": name, "env": env_id, "variant": label, "algo": algo, "overrides": overrides, "seed": seed,
           "steps": task["steps"], "target": target, "steps_to_target": reached[0] if reached else None,
           "final_return": float(np.mean([m for _, m in evals[-3:]])), "evals": evals,
           "cpu_s": round(time.process_time() - cpu0, 1), "wall_s": round(h.wall_s, 1)}
    if env_id.startswith("lecturekit/OverestimationTrap"):
        row.update(trap_probe(h.model, env_id))
    return row


def jobs(names, seeds: int) -> list[tuple]:
    """Every (experiment, task, variant, seed); a task may ask for more seeds than `seeds` (cheap tasks)."""
    return [(name, task, label, algo, overrides, seed) for name in names for task in EXPERIMENTS[name]["tasks"]
            for label, (algo, overrides) in EXPERIMENTS[name]["variants"].items()
            for seed in range(max(seeds, task.get("seeds", 0)))]


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (experiment, env, variant): seeds that reached the target, median steps, final return."""
    out = []
    keys = dict.fromkeys((r["experiment"], r["env"], r["variant"]) for r in rows)
    for exp, env, variant in keys:
        rs = [r for r in rows if (r["experiment"], r["env"], r["variant"]) == (exp, env, variant)]
        steps = [r["steps_to_target"] if r["steps_to_target"] is not None else float("inf") for r in rs]
        finals = [r["final_return"] for r in rs]
        line = {"experiment": exp, "env": env, "variant": variant, "seeds": len(rs), "steps": rs[0]["steps"],
                "target": rs[0]["target"], "reached": sum(s != float("inf") for s in steps),
                "median_steps_to_target": float(np.median(steps)) if rs[0]["target"] is not None else None,
                "final_mean": float(np.mean(finals)), "final_min": float(np.min(finals)),
                "final_max": float(np.max(finals)), "cpu_s": float(sum(r["cpu_s"] for r in rs))}
        if "q_bias" in rs[0]:
            line["risk_mean"] = float(np.mean([r["risk"] for r in rs]))
            line["expected_return_mean"] = float(np.mean([r["expected_return"] for r in rs]))
            line["q_bias_mean"] = float(np.mean([r["q_bias"] for r in rs]))
        out.append(line)
    return out


def markdown(meta: dict, summary: list[dict]) -> str:
    lines = [f"# Phenomena on harder tasks (`make bench-hard`)\n",
             f"Measured {meta['date']} on {meta['machine']}, commit {meta['commit']}, at least {meta['seeds']} seeds per task (counts in the tables), "
             f"one torch thread, {meta['cpu_s'] / 60:.1f} CPU minutes in all. Every run uses its full step budget; "
             "'final' is the mean of its last 3 evaluations (deterministic actions). " + meta.get("note", "") + "\n"]
    for name, exp in EXPERIMENTS.items():
        rows = [s for s in summary if s["experiment"] == name]
        if not rows:
            continue
        lines += [f"\n## {name} (notebook {exp['notebook']}): {exp['phenomenon']}\n",
                  "| task | variant | steps | seeds reaching target | median steps to target | final mean [min, max] "
                  "| risk x (mean) | critic bias | CPU s |", "|---|---|---|---|---|---|---|---|---|"]
        for s in rows:
            med = s["median_steps_to_target"]
            med = "-" if med is None else ("not reached" if med == float("inf") else f"{med:,.0f}")
            reached = "-" if s["target"] is None else f"{s['reached']}/{s['seeds']} (>= {s['target']:g})"
            trap = f"{s['risk_mean']:.2f}" if "risk_mean" in s else "-"
            bias = f"{s['q_bias_mean']:+.2f}" if "q_bias_mean" in s else "-"
            lines.append(f"| {s['env']} | {s['variant']} | {s['steps']:,} | {reached} | {med} | "
                         f"{s['final_mean']:.1f} [{s['final_min']:.1f}, {s['final_max']:.1f}] | {trap} | {bias} | "
                         f"{s['cpu_s']:.0f} |")
    return "\n".join(lines) + "\n"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="bench/hard")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", nargs="*", choices=list(EXPERIMENTS), help="run only these experiments")
    p.add_argument("--workers", type=int, default=1, help="processes (each uses one torch thread)")
    p.add_argument("--resume", action="store_true", help="keep the runs in OUT/results.json, run only the missing")
    p.add_argument("--note", default="", help="a sentence for the header of results.md (e.g. how the runs were made)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = jobs(args.only or list(EXPERIMENTS), args.seeds)
    meta = {"command": " ".join(["python bench/hard.py", *(argv if argv is not None else sys.argv[1:])]),
            "note": args.note,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "commit": commit(), "seeds": args.seeds}
    # --only keeps the recorded runs of the other experiments; --resume also keeps this run's, and skips them
    old = out / "results.json"
    rows = json.loads(old.read_text())["runs"] if (args.only or args.resume) and old.exists() else []
    if not args.resume:
        rows = [r for r in rows if r["experiment"] not in set(args.only or [])]
    done = {(r["experiment"], r["env"], r["variant"], r["seed"]) for r in rows}
    todo = [j for j in todo if (j[0], env_with_kwargs(j[1]["env"], j[1].get("env_kwargs")), j[2], j[5]) not in done]

    def save():
        meta["cpu_s"] = float(sum(r["cpu_s"] for r in rows))
        summary = summarize(rows)
        (out / "results.json").write_text(json.dumps({"meta": meta, "experiments": EXPERIMENTS, "summary": summary,
                                                      "runs": rows}, indent=1, default=str))
        (out / "results.md").write_text(markdown(meta, summary))

    if args.workers <= 1:
        results = map(run_one, todo)
    else:
        from concurrent.futures import ProcessPoolExecutor
        results = ProcessPoolExecutor(args.workers).map(run_one, todo)
    for row in results:
        rows.append(row)
        print(f"{row['experiment']:28s} {row['env']:45s} {row['variant']:30s} seed {row['seed']}: final "
              f"{row['final_return']:8.1f}, target at {row['steps_to_target']}, {row['cpu_s']:.0f} CPU s",
              file=sys.stderr, flush=True)
        save()
    save()


if __name__ == "__main__":
    main()
