"""Training algorithms.  Each module `lecturekit/algos/<name>.py` lists what it offers in a module-level `ALGOS`.

Every algorithm trains with `train(env_id, cfg=None, run=None, *, update=update) -> History`: `cfg` is the module's
`Config` dataclass (defaults solve the course task), `run` an `evaluation.Run` (steps, seed, target, evaluation
cadence, callback), and `update` THE SEAM: the function a student may replace with their own, which the course's
loop then trains with.  `train` makes the run's generators from `run.seed` once and passes them down.

Off-policy (TD3, DDPG, SAC; the loop is `lecturekit.offpolicy.train_off_policy`).  The update is a plain function
    update(agent, batch: buffers.Batch, step: int, noise) -> dict of float diagnostics
called once per gradient step with a replay minibatch (obs, next_obs (B, obs_dim); action (B, act_dim); reward,
terminated, truncated (B,)) and `step` counting updates from 0.  It must not draw random numbers: the loop draws the
standard normals it needs from the run's torch generator, each algorithm's `draw_noise(B, act_dim, gen)` saying how
many.  The agent holds the networks, their optimizers and `cfg`:
- TD3 and DDPG (`algos/td3.py`; DDPG = TD3 with twin=False, target_noise=0, policy_delay=1, `td3.DDPGConfig`):
  noise is a standard-normal (B, act_dim) tensor for the target smoothing; agent has actor, critic (a `nets.TwinQ`:
  critic(obs, act) -> (2, B), Q_1 and Q_2; critic.q1(obs, act) -> (B,)), actor_targ, critic_targ, actor_opt,
  critic_opt, cfg.
- SAC (`algos/sac.py`): noise = (eps_next, eps_now), standard normals (B, act_dim) each, eps_next for a' at s'
  (the target), eps_now for the reparameterised action at s; agent has actor (a `nets.SquashedGaussianActor`:
  actor(obs, eps) -> (action, log pi)), critic, critic_targ, log_alpha, actor_opt, critic_opt, alpha_opt, cfg.
For example `td3.train("Pendulum-v1", run=Run(steps=20_000, target=-200), update=my_update)` trains TD3 with
`my_update`; the returned diagnostics are logged every `cfg.log_every` env steps (the latest value of each key).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Algo:
    """One entry of the training command line and of the benchmark."""

    name: str               # command-line name, e.g. "a2c"
    train: Callable         # train(env_id, cfg=None, run=None, *, update=update) -> History
    config: type            # the Config dataclass (defaults solve the benchmark task)
    bench_env: str          # benchmark task
    bench_target: float     # mean deterministic evaluation return that counts as solved
    bench_steps: int        # step budget for the benchmark
    summary: str = ""       # one line for --help
    eval_every: int | None = None     # benchmark evaluation period (default: the Monitor's)
    eval_episodes: int | None = None  # benchmark evaluation episodes (default 20)


# The registry: the modules whose `ALGOS` the command line and the benchmark offer, in lecture order.
MODULES = ["gradient_free", "reinforce", "a2c", "a3c", "trpo", "ppo", "td3", "sac"]


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
