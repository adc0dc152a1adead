"""Training algorithms.  Each module `lecturekit/algos/<name>.py` lists what it offers in a module-level `ALGOS`."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Algo:
    """One entry of the training command line and of the benchmark."""

    name: str               # command-line name, e.g. "a2c"
    train: Callable         # train(env_id, cfg=None, *, steps, seed, target, eval_every, eval_episodes, callback)
    config: type            # the Config dataclass (defaults solve the benchmark task)
    bench_env: str          # benchmark task
    bench_target: float     # mean deterministic evaluation return that counts as solved
    bench_steps: int        # step budget for the benchmark
    summary: str = ""       # one line for --help
    eval_every: int | None = None     # benchmark evaluation period (default: the Monitor's)
    eval_episodes: int | None = None  # benchmark evaluation episodes (default 20)


# The registry: the modules whose `ALGOS` the command line and the benchmark offer, in lecture order.
MODULES = ["gradient_free", "reinforce", "a2c", "a3c", "trpo", "ppo", "ddpg", "td3", "sac"]


def registry() -> dict[str, Algo]:
    """Every algorithm of the modules in `MODULES`, by name."""
    found: dict[str, Algo] = {}
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        for algo in module.ALGOS:
            if algo.name in found:
                raise RuntimeError(f"algorithm name '{algo.name}' is registered twice")
            found[algo.name] = algo
    return dict(sorted(found.items()))


def get(name: str) -> Algo:
    """The algorithm called `name`, or a ValueError listing the available ones."""
    algos = registry()
    if name not in algos:
        raise ValueError(f"Unknown algorithm '{name}'. Available: {', '.join(algos) or '(none)'}.")
    return algos[name]
