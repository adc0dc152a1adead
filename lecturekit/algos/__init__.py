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
           (A2C and PPO: the loop has already multiplied `ro.rewards` by cfg.reward_scale, `rollout.loop`.)
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


# The benchmarks' "still solved" rule (`make bench`, `make compare`): after the first evaluation at the target, this
# many more must reach it too, and training goes on until that holds (lecturekit.evaluation.History says the rule).
CONFIRM_EVALS = 3


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
    eval_every: int | None = None     # benchmark evaluation period (None: the Run's default)
    eval_episodes: int | None = None  # benchmark evaluation episodes (None: the Run's default)

    def bench_run(self, seed: int = 0, **options):
        """The `Run` of one benchmark seed: this entry's budget, target and evaluation, the still-solved check of
        CONFIRM_EVALS more evaluations, the Run's other defaults;
        `options` change any of them (`bench_run(0, steps=8192)`)."""
        from lecturekit.evaluation import Run

        given = {"steps": self.bench_steps, "seed": seed, "target": self.bench_target, "eval_every": self.eval_every,
                 "eval_episodes": self.eval_episodes, "confirm_evals": CONFIRM_EVALS}
        return Run(**{**{k: v for k, v in given.items() if v is not None}, **options})


def call_train(train: Callable, env_id: str, cfg=None, run=None):
    """`train(env_id, cfg, run)`: the one place where the command line, the benchmark and the live demos call an
    algorithm."""
    from lecturekit.evaluation import Run

    return train(env_id, cfg, run if run is not None else Run())


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
    "ddpg": ("td3", "DDPG: deterministic actor, Q critic, replay and target networks"),
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
