"""Training algorithms.  Each module `lecturekit/algos/<name>.py` lists what it offers in a module-level `ALGOS`."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Algo:
    """One entry of the training command line and of the benchmark."""

    name: str               # command-line name, e.g. "a2c"
    train: Callable         # train(env_id, cfg=None, run=None) -> History
    config: type            # the Config dataclass (defaults solve the benchmark task)
    bench_env: str          # benchmark task
    bench_target: float     # mean deterministic evaluation return that counts as solved
    bench_steps: int        # step budget for the benchmark
    summary: str = ""       # one line for --help
    eval_every: int | None = None     # benchmark evaluation period (None: the Run's default)
    eval_episodes: int | None = None  # benchmark evaluation episodes (None: the Run's default)

    def bench_run(self, seed: int = 0, **options):
        """The `Run` of one benchmark seed: this entry's budget, target and evaluation, the Run's other defaults;
        `options` change any of them (`bench_run(0, steps=8192)`)."""
        from lecturekit.evaluation import Run

        given = {"steps": self.bench_steps, "seed": seed, "target": self.bench_target, "eval_every": self.eval_every,
                 "eval_episodes": self.eval_episodes}
        return Run(**{**{k: v for k, v in given.items() if v is not None}, **options})


def call_train(train: Callable, env_id: str, cfg=None, run=None):
    """`train(env_id, cfg, run)`: the one place where the command line, the benchmark and the live demos call an
    algorithm.  (A `train` still written with the run options as keywords gets them spelt out.)"""
    import inspect

    from lecturekit.evaluation import Run

    run = run if run is not None else Run()
    if "run" in inspect.signature(train).parameters:
        return train(env_id, cfg, run)
    return train(env_id, cfg, steps=run.steps, seed=run.seed, target=run.target, eval_every=run.eval_every,
                 eval_episodes=run.eval_episodes, callback=run.callback)


# The registry, in lecture order: name -> (module of `lecturekit.algos` whose `ALGOS` holds it, one line for --help).
# Stated here, not found by importing, so `python -m lecturekit --help` lists the algorithms without importing torch;
# tests/test_cli.py checks it against every module's `ALGOS`.
CATALOG = {
    "hill_climbing": ("gradient_free", "hill climbing with adaptive noise, linear policy (gradient-free)"),
    "random_search": ("gradient_free", "pure random search over linear policies (gradient-free)"),
    "es": ("gradient_free", "evolution strategies, antithetic, rank-shaped (gradient-free)"),
    "cem": ("gradient_free", "cross-entropy method, linear policy (gradient-free)"),
    "finite_difference": ("gradient_free", "finite-difference gradient ascent, linear policy (gradient-free)"),
    "reinforce": ("reinforce", "REINFORCE: Monte Carlo policy gradient with a baseline option"),
    "a2c": ("a2c", "advantage actor-critic (synchronous, n-step returns)"),
    "a3c": ("a3c", "asynchronous advantage actor-critic (worker processes, shared Adam)"),
    "trpo": ("trpo", "TRPO: natural gradient by conjugate gradient, KL-constrained line search"),
    "ppo": ("ppo", "PPO: clipped surrogate, GAE, epochs of shuffled minibatches"),
    "ddpg": ("ddpg", "DDPG: deterministic actor, Q critic, replay and target networks"),
    "td3": ("td3", "TD3: twin critics, target smoothing, delayed actor (continuous actions)"),
    "sac": ("sac", "soft actor-critic: entropy-regularised, reparameterized, twin critics"),
}
MODULES = list(dict.fromkeys(module for module, _ in CATALOG.values()))


def names() -> list[str]:
    """Every algorithm's name, sorted (no module is imported)."""
    return sorted(CATALOG)


def check_name(name: str) -> None:
    """ValueError listing the available algorithms if `name` is not one (no module is imported)."""
    if name not in CATALOG:
        raise ValueError(f"Unknown algorithm '{name}'. Available: {', '.join(names()) or '(none)'}.")


def registry() -> dict[str, Algo]:
    """Every algorithm of the modules in `MODULES`, by name (imports them all)."""
    found: dict[str, Algo] = {}
    for module_name in MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        for algo in module.ALGOS:
            if algo.name in found:
                raise RuntimeError(f"algorithm name '{algo.name}' is registered twice")
            found[algo.name] = algo
    return dict(sorted(found.items()))


def get(name: str) -> Algo:
    """The algorithm called `name` (importing only its module), or a ValueError listing the available ones."""
    check_name(name)
    module = importlib.import_module(f"{__name__}.{CATALOG[name][0]}")
    for algo in module.ALGOS:
        if algo.name == name:
            return algo
    raise RuntimeError(f"lecturekit.algos.{CATALOG[name][0]} has no ALGOS entry named '{name}' (see CATALOG)")
