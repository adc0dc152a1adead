"""What every training loop shares: evaluation, early stopping at a target, NaN detection, progress reporting.

A training loop looks like::

    run = Run(steps=50_000, seed=0, target=475)              # the options every train() takes, defaults stated once
    mon = Monitor("a2c", env_id, run, config=cfg)
    while True:
        ...collect, update...
        mon.log(env_steps, loss=loss.item(), entropy=ent)     # raises TrainingDiverged on NaN/inf
        if mon.should_stop(env_steps, act_fn):                 # evaluates when due, calls the callback
            break
    return mon.finish(model)

Library code never prints: progress goes to `callback(event)` (the notebooks' live plot, the CLI's stderr line).
A callback that returns False asks training to stop (the Stop button); what was learned is kept.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from lecturekit.envs import make_vec


class TrainingDiverged(ValueError):
    """Raised when a loss or statistic becomes NaN or infinite: training stops and says where."""


@dataclass
class History:
    """The result of one training run: evaluation curve, training logs, and the trained model.

    evals: list of (env_steps, wall_s, eval_return_mean, eval_return_std), one per evaluation.
    logs: training diagnostics, one list per name, with 'env_steps' alongside.

    Solved, still solved, solved for good (the rule every benchmark uses; `solved_marks` computes it), with
    K = `confirm_evals` and "at the target" meaning an evaluation mean >= target:
    - solved_at_steps / solved_at_s: the first evaluation at the target.
    - still_solved: the K evaluations right after that first one are all at the target as well (True), or one of
      them is not (False).  False when never solved; None when not checked (K = 0, or the run ended before K
      evaluations followed the first hit).
    - solved_for_good_at_steps / _s: the first evaluation from which every later evaluation of the run stays at the
      target, counted only when that streak holds at least K + 1 evaluations (else None).  Training stops at the end
      of the first such streak (`Monitor`), so it costs at most K extra evaluation periods; with K = 0 it is the
      first hit, checked by nothing.
    """

    algo: str
    env: str
    seed: int
    config: dict = field(default_factory=dict)
    evals: list = field(default_factory=list)
    logs: dict = field(default_factory=dict)
    solved: bool = False
    solved_at_steps: int | None = None
    solved_at_s: float | None = None
    env_steps: int = 0
    wall_s: float = 0.0
    stopped: str = ""
    target: float | None = None
    confirm_evals: int = 0
    still_solved: bool | None = None
    solved_for_good_at_steps: int | None = None
    solved_for_good_at_s: float | None = None
    model: Any = None

    @property
    def eval_steps(self) -> np.ndarray:
        return np.array([e[0] for e in self.evals], dtype=np.int64)

    @property
    def eval_means(self) -> np.ndarray:
        return np.array([e[2] for e in self.evals], dtype=np.float64)

    @property
    def final_return(self) -> float:
        return self.evals[-1][2] if self.evals else float("nan")

    @property
    def best_return(self) -> float:
        return max((e[2] for e in self.evals), default=float("nan"))

    def summary(self) -> dict:
        """The JSON line the command line prints."""
        last = self.evals[-1] if self.evals else (0, 0.0, float("nan"), float("nan"))
        return {
            "algo": self.algo,
            "env": self.env,
            "seed": self.seed,
            "env_steps": int(self.env_steps),
            "wall_s": round(self.wall_s, 3),
            "eval_return_mean": round(float(last[2]), 3),
            "eval_return_std": round(float(last[3]), 3),
            "solved": bool(self.solved),
            "solved_at_steps": self.solved_at_steps,
            "solved_at_s": None if self.solved_at_s is None else round(self.solved_at_s, 3),
            "confirm_evals": self.confirm_evals,
            "still_solved": self.still_solved,
            "solved_for_good_at_steps": self.solved_for_good_at_steps,
            "solved_for_good_at_s": None if self.solved_for_good_at_s is None else round(self.solved_for_good_at_s, 3),
            "stopped": self.stopped,
        }


def solved_marks(evals: list, target: float | None, confirm_evals: int) -> dict:
    """The History's solved fields for an evaluation sequence (see `History` for the rule).

    evals: [(env_steps, wall_s, mean, std), ...] in order.  Returns solved, solved_at_steps, solved_at_s,
    still_solved, solved_for_good_at_steps, solved_for_good_at_s.
    """
    k = int(confirm_evals)
    at = [target is not None and e[2] >= target for e in evals]
    first = next((i for i, hit in enumerate(at) if hit), None)
    marks = {"solved": first is not None, "solved_at_steps": None, "solved_at_s": None, "still_solved": False,
             "solved_for_good_at_steps": None, "solved_for_good_at_s": None}
    if first is None:
        return marks
    marks["solved_at_steps"], marks["solved_at_s"] = int(evals[first][0]), evals[first][1]
    after = at[first + 1:first + 1 + k]
    marks["still_solved"] = False if not all(after) else (True if k > 0 and len(after) == k else None)
    start = len(at)
    while start > 0 and at[start - 1]:  # the final streak of evaluations at the target
        start -= 1
    if len(at) - start >= k + 1:
        marks["solved_for_good_at_steps"], marks["solved_for_good_at_s"] = int(evals[start][0]), evals[start][1]
    return marks


def confirmed(evals: list, target: float | None, confirm_evals: int) -> bool:
    """True when the last `confirm_evals` + 1 evaluations are all at the target: training may stop."""
    last = evals[len(evals) - (int(confirm_evals) + 1):] if len(evals) > confirm_evals else []
    return target is not None and bool(last) and all(e[2] >= target for e in last)


def evaluate(act_fn: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int, seed: int,
             envs=None) -> tuple[float, float]:
    """Mean and std of the undiscounted return of `episodes` episodes, all run at once in a vector env.

    act_fn maps a batch of observations (n, obs_dim) to a batch of (deterministic) actions.  Episode i starts from
    reset(seed + i), so an evaluation is repeatable.  Only the first episode of each copy counts.
    """
    own = envs is None
    if own:
        envs = make_vec(env_id, episodes)
    obs, _ = envs.reset(seed=seed)
    total = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    while running.any():
        act = act_fn(np.asarray(obs, dtype=np.float32))
        obs, r, term, trunc, _ = envs.step(act)
        total += np.where(running, r, 0.0)
        running &= ~(np.asarray(term) | np.asarray(trunc))
    if own:
        envs.close()
    return float(total.mean()), float(total.std())


def torch_act_fn(policy: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a torch policy (obs tensor -> action tensor) as a NumPy act_fn run under no_grad."""

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return policy(torch.as_tensor(obs)).numpy()

    return act


EVAL_EVERY_MAX = 10_000  # the default evaluation period never exceeds this, so a target is checked early
EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never share seeds with training ones


@dataclass
class Run:
    """How one training run is driven: the options every algorithm's `train(env_id, cfg, run)` takes.

    The defaults are stated here and nowhere else; the command line, the benchmark and the notebooks build a `Run`.
    """

    steps: int = 100_000              # environment-step budget
    seed: int = 0                     # every generator of the run is made from it (see `generators`)
    target: float | None = None       # stop at the first evaluation whose mean return reaches it (see confirm_evals)
    eval_every: int | None = None     # env steps between evaluations; None: steps // 50, at most EVAL_EVERY_MAX
    eval_episodes: int = 20           # episodes per evaluation (run side by side, deterministic policy)
    callback: Callable[[dict], Any] | None = None  # called after each evaluation; returning False stops training
    confirm_evals: int = 0            # K more evaluations at the target after the first ("still solved"); 0: stop at it

    def __post_init__(self):
        if not isinstance(self.steps, (int, np.integer)) or self.steps <= 0:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if self.eval_every is not None and self.eval_every <= 0:
            raise ValueError(f"eval_every must be a positive number of env steps, got {self.eval_every!r}")
        if self.eval_episodes <= 0:
            raise ValueError(f"eval_episodes must be at least 1, got {self.eval_episodes!r}")
        if not isinstance(self.confirm_evals, (int, np.integer)) or self.confirm_evals < 0:
            raise ValueError(f"confirm_evals must be a whole number >= 0, got {self.confirm_evals!r}")
        if self.target is not None and not math.isfinite(self.target):
            raise ValueError(f"target must be a finite return, got {self.target!r}")

    @property
    def eval_period(self) -> int:
        """The evaluation period in env steps that this run uses."""
        return int(self.eval_every or min(max(1, self.steps // 50), EVAL_EVERY_MAX))


def generators(seed: int) -> tuple[torch.Generator, np.random.Generator]:
    """The run's own random generators (torch, NumPy), made from `seed` in one place.  Library code draws only from
    generators it is handed, never from the global ones, so a notebook drawing random numbers meanwhile (or a second
    run in another thread) cannot change a run."""
    return torch.Generator().manual_seed(int(seed)), np.random.default_rng(int(seed))


def gym_evaluator(env_id: str, episodes: int, seed: int):
    """evaluate(act_fn) -> (mean, std) on `episodes` episodes of `env_id` from reset(seed + i); reuses its vector env.
    `.close()` releases it.  Pendulum-v1 and CartPole-v0/v1 are played by NumPy copies of gymnasium's vector env
    (`envs.pendulum`, `envs.cartpole`: the same returns from the same start states, up to float64 rounding for
    Pendulum, at a fraction of the cost; the benchmarks evaluate often)."""
    if env_id == "Pendulum-v1":
        from lecturekit.envs.pendulum import PendulumBatch

        envs = PendulumBatch(episodes)
    elif env_id in ("CartPole-v0", "CartPole-v1"):
        from lecturekit.envs.cartpole import CartPoleBatch

        envs = CartPoleBatch(episodes, gym.spec(env_id).max_episode_steps)
    else:
        envs = make_vec(env_id, episodes)

    def evaluate_fn(act_fn):
        return evaluate(act_fn, env_id, episodes, seed, envs)

    evaluate_fn.close = envs.close
    return evaluate_fn


class Monitor:
    """Evaluation schedule, target, step budget, NaN check and progress callback for one training run."""

    def __init__(self, algo: str, env_id: str, run: Run, config: Any = None,
                 evaluate: Callable[[Callable], tuple[float, float]] | None = None):
        """`evaluate(act_fn) -> (mean, std)` scores the current policy; default: `run.eval_episodes` episodes of
        `env_id` (`gym_evaluator`).  Routing and Cliff Walking pass their own."""
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
        self.run = run
        self.history = History(algo=algo, env=env_id, seed=run.seed, config=cfg, target=run.target,
                               confirm_evals=int(run.confirm_evals))
        self.steps, self.target, self.callback = int(run.steps), run.target, run.callback
        self.eval_every = run.eval_period
        self.next_eval = self.eval_every
        self._evaluate = evaluate or gym_evaluator(env_id, run.eval_episodes, run.seed + EVAL_SEED_OFFSET)
        self.start = time.perf_counter()
        self.last_logs: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def log(self, env_steps: int, **scalars: float) -> None:
        """Record training diagnostics; stop with TrainingDiverged if any is NaN or infinite."""
        logs = self.history.logs
        logs.setdefault("env_steps", []).append(int(env_steps))
        for k, v in scalars.items():
            v = float(v)
            if not math.isfinite(v):
                raise TrainingDiverged(
                    f"{self.history.algo} on {self.history.env}: '{k}' became {v} at env step {env_steps}. "
                    "Training stopped; try a smaller learning rate."
                )
            logs.setdefault(k, []).append(v)
        self.last_logs = scalars

    def evaluate_now(self, env_steps: int, act_fn) -> tuple[float, float]:
        mean, std = self._evaluate(act_fn)
        if not math.isfinite(mean):
            raise TrainingDiverged(f"evaluation return became {mean} at env step {env_steps}")
        wall = self.elapsed()
        self.history.evals.append((int(env_steps), wall, mean, std))
        h = self.history
        for name, value in solved_marks(h.evals, self.target, h.confirm_evals).items():
            setattr(h, name, value)
        return mean, std

    def should_stop(self, env_steps: int, act_fn) -> bool:
        """Evaluate if due; True when the target is reached (and, with `confirm_evals` K, held for K more
        evaluations), the budget is spent, or the callback says stop."""
        done = env_steps >= self.steps
        if env_steps >= self.next_eval or done:
            while self.next_eval <= env_steps:
                self.next_eval += self.eval_every
            mean, std = self.evaluate_now(env_steps, act_fn)
            if self.callback is not None:
                event = {"env_steps": int(env_steps), "wall_s": self.elapsed(), "eval_mean": mean, "eval_std": std,
                         "target": self.target, "total_steps": self.steps, **self.last_logs}
                if self.callback(event) is False:
                    self.history.stopped = "user"
                    return True
            if confirmed(self.history.evals, self.target, self.history.confirm_evals):
                self.history.stopped = "target"
                return True
        if done:
            self.history.stopped = "budget"
        return done

    def finish(self, model: Any = None) -> History:
        h = self.history
        h.env_steps = h.evals[-1][0] if h.evals else int(h.logs.get("env_steps", [0])[-1] if h.logs else 0)
        h.wall_s = self.elapsed()
        h.model = model
        getattr(self._evaluate, "close", lambda: None)()
        return h


def critic_bias(actor: Callable, q: Callable, env_id: str, episodes: int, seed: int, gamma: float,
                horizon: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """A critic's estimate Q(s0, mu(s0)) and the discounted return the deterministic policy mu really collects from
    s0 (Monte Carlo, `horizon` steps: gamma**horizon is negligible), for `episodes` start states reset(seed + i).

    actor: obs tensor (n, obs_dim) -> actions (n, act_dim); q(obs, act) -> (n,).  Returns (q_estimates,
    mc_returns), both of shape (episodes,); their difference is the critic's bias (notebook 12).
    """
    envs = make_vec(env_id, episodes, max_episode_steps=horizon)
    obs, _ = envs.reset(seed=seed)
    obs = torch.as_tensor(obs, dtype=torch.float32)
    with torch.no_grad():
        q0 = q(obs, actor(obs)).numpy().astype(np.float64)
        ret, disc, running = np.zeros(episodes), 1.0, np.ones(episodes, dtype=bool)
        while running.any():
            obs, r, term, trunc, _ = envs.step(actor(obs).numpy())
            obs = torch.as_tensor(obs, dtype=torch.float32)
            ret += np.where(running, disc * r, 0.0)
            disc *= gamma
            running &= ~(term | trunc)
    envs.close()
    return q0, ret
