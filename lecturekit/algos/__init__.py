"""Training algorithms.  Each module `lecturekit/algos/<name>.py` lists what it offers in a module-level `ALGOS`;
`MODULES` below is the registry.  A module reads top to bottom: Config, losses, update, train; it imports the
library (`lecturekit.losses`, `rollout`, `nets`, `envs`, `evaluation`, ...), never a sibling algorithm.

Every algorithm is trained the same way::

    train(env_id: str, cfg: Config | None = None, run: evaluation.Run | None = None, *, update=update) -> History

`cfg` holds the algorithm's hyperparameters (defaults solve its benchmark task), `run` how the run is driven
(steps, seed, target, evaluation cadence and episodes, callback; defaults in `evaluation.Run`).  `train` makes
every random generator of the run from `run.seed` in one place (`evaluation.generators`) and hands them down:
network initialisation, action sampling and minibatch order never touch the global torch / NumPy generators, so
the same seed gives the same History, whatever else the process draws meanwhile.

The seam: the update step (and REINFORCE's episode collection) is an argument, so a student's function can be
trained by the course's loop, e.g. `a2c.train("CartPole-v1", update=my_update)`.  The protocol, per algorithm
(shapes: T steps of N environments; B = the valid steps of a rollout, autoreset steps left out; `rollout.Rollout`
and `Rollout.steps(gamma, gae_lambda)` give them with advantages and value targets):

REINFORCE  `collect(envs, policy, bufs, t_max) -> Batch`: run the N copies of `envs` (a vector env) from a reset
           until each has ended one episode or t_max steps; `policy.sample(obs (N, obs_dim)) -> (N,) / (N, act_dim)`
           network actions, `policy.to_env(u)` -> environment actions; `bufs` = `episode_buffers(envs, t_max)`.
           Batch: obs (T, N, obs_dim), actions (T, N) / (T, N, act_dim), rewards, valid, ends (T, N).
           `update(model, opt, vf_opt, batch, cfg) -> dict`: one step of `opt` (the policy's parameters) on
           -mean(log pi(a_t|s_t) (G_t - b_t)) over the valid steps, then cfg.vf_iters steps of `vf_opt` (None unless
           cfg.baseline == "value") on the value regression.
A2C        `update(model, opt, ro: Rollout, cfg) -> dict`: one step of `opt` (all of `model`) on the A2C loss.
PPO        `update(model, opt, ro: Rollout, cfg, gen: torch.Generator) -> dict`: cfg.epochs passes; each draws one
           `torch.randperm(B, generator=gen)` and splits it into minibatches of ceil(B / cfg.minibatches) steps,
           taken in that order, one step of `opt` each.  (`train` sets the learning rate before each call if
           cfg.anneal_lr.)
TRPO       `update(model, vf_opt, ro: Rollout, cfg) -> dict`: the trust-region step on the actor (`model.pi`, and
           `model.log_std` for Box actions), then cfg.vf_iters steps of `vf_opt` (the critic `model.v`).
A3C        no seam: its update is split between worker processes and a shared optimizer.

`model` is a `nets.ActorCritic` (REINFORCE: `reinforce.make_model`): `.log_prob(obs, act)`, `.entropy(obs)`,
`.value(obs)`, `.dist_params(obs)`, all (B,) from obs (B, obs_dim).  Box actions are in [-1, 1] units of a bounded
Box (`envs.make_unit_vec`).  The returned dict holds scalar diagnostics (floats), logged by the `Monitor` into
`History.logs`; a NaN or inf stops training with `TrainingDiverged`.  Same knob, same name everywhere:
`gamma`, `gae_lambda`, `entropy_coef`, `normalize_adv`, `value_coef`, `max_grad_norm`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Algo:
    """One entry of the training command line and of the benchmark."""

    name: str               # command-line name, e.g. "a2c"
    train: Callable         # train(env_id, cfg=None, run=None) -> History (see the module docstring)
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
