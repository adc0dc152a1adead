"""Asynchronous advantage actor-critic (A3C).  Lecture: "Asynchronous Advantage Actor-Critic (A3C)".

K worker processes (`torch.multiprocessing`) share one set of parameters and one Adam state in shared memory.
Each worker loops on its own copy of the environment(s):

1. copy the shared parameters into its local network (version v0 of the shared parameters);
2. collect T steps and compute the A2C loss and its gradient on the local network (`losses.actor_critic_loss`,
   the loss of `a2c`);
3. hand the gradient to the shared parameters and take one shared Adam step (version v1).

Between 1 and 3 the other workers may have updated the shared parameters: the gradient is *stale* by v1 - v0 - 1
updates (logged as `staleness`).  The optimizer step itself is serialised by a lock (so Adam's moment estimates stay
consistent); everything else runs in parallel.  The main process only evaluates the shared network and stops the
workers at the target, at the step budget, or when the callback says so.  Runs are not bit-for-bit repeatable:
the order in which workers update depends on the operating system's scheduling.  Seeds: `train` draws one seed
per worker from the run's NumPy generator (`evaluation.generators(run.seed)`); worker k makes its own generators
from its seed with the same `generators` and resets its environments with it.
"""
from __future__ import annotations

import queue
import signal
import time
from dataclasses import dataclass

import torch
import torch.multiprocessing as mp

from lecturekit.algos import Algo
from lecturekit.envs import make_unit_vec
from lecturekit.evaluation import History, Monitor, Run, generators
from lecturekit.losses import actor_critic_loss, clip_grads
from lecturekit.nets import ActorCritic, greedy_act_fn
from lecturekit.rollout import collect, start


@dataclass
class A3CConfig:
    n_workers: int = 2           # asynchronous worker processes (K)
    n_envs: int = 8              # environments per worker (the original A3C used 1; a few make a worker cheaper)
    n_steps: int = 16            # rollout length per worker update (T)
    lr: float = 1e-3             # shared Adam step size
    gamma: float = 0.99          # discount factor
    gae_lambda: float = 1.0      # 1.0: n-step returns minus V (A2C); < 1: GAE(lambda) advantages
    value_coef: float = 0.5      # c_v: weight of the critic's squared error in the loss
    entropy_coef: float = 0.0    # c_H: weight of the entropy bonus (0 = off)
    normalize_adv: bool = True   # standardise advantages within each worker's batch
    max_grad_norm: float = 0.5   # clip the global gradient norm of each worker's gradient (0 = no clipping)
    hidden: tuple = (64, 64)     # hidden sizes of the actor and of the critic MLP
    log_std_init: float = -0.5   # initial log std of the Gaussian policy in [-1, 1] action units (Box only)
    start_method: str = "fork"   # 'fork' (fast start, Linux) or 'spawn' (each worker imports torch afresh)
    poll_s: float = 0.02         # how often the main process looks at the step counter

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if self.n_workers < 1 or self.n_envs < 1 or self.n_steps < 1:
            raise ValueError("n_workers, n_envs and n_steps must all be >= 1")


Config = A3CConfig


def shared_adam_state(model: torch.nn.Module) -> list[dict]:
    """Adam's per-parameter state (step, first and second moments) allocated in shared memory."""
    return [{"step": torch.zeros(()).share_memory_(), "exp_avg": torch.zeros_like(p).share_memory_(),
             "exp_avg_sq": torch.zeros_like(p).share_memory_()} for p in model.parameters()]


def shared_adam(model: torch.nn.Module, state: list[dict], lr: float) -> torch.optim.Adam:
    """An Adam optimizer over the shared parameters whose state is the shared `state` (one per process)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for p, s in zip(model.parameters(), state):
        opt.state[p] = s
    return opt


def worker(rank: int, env_id: str, cfg: A3CConfig, seed: int, shared: ActorCritic, adam_state: list[dict],
           counter, version, lock, stop, steps: int, out: "mp.Queue") -> None:
    """One A3C worker (its own `seed`): sync, collect, compute the gradient locally, apply it to the shared
    parameters."""
    # Ctrl-C belongs to the main process, which stops the workers through `stop`: a worker never prints a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    gen, _ = generators(seed)
    envs = make_unit_vec(env_id, cfg.n_envs)
    local = ActorCritic(envs.single_observation_space, envs.single_action_space, cfg.hidden, cfg.log_std_init, gen)
    opt = shared_adam(shared, adam_state, cfg.lr)
    state = start(envs, seed)
    try:
        while not stop.is_set() and counter.value < steps:
            local.load_state_dict(shared.state_dict())
            v0 = version.value
            ro = collect(envs, local, state, cfg.n_steps, gen)
            loss, stats = actor_critic_loss(local, ro.steps(cfg.gamma, cfg.gae_lambda), cfg)
            local.zero_grad()
            loss.backward()
            stats["grad_norm"] = clip_grads(local.parameters(), cfg.max_grad_norm)
            with lock:
                for sp, lp in zip(shared.parameters(), local.parameters()):
                    sp.grad = lp.grad
                opt.step()
                stats["staleness"] = version.value - v0
                version.value += 1
                counter.value += cfg.n_envs * cfg.n_steps
                stats["env_steps"] = counter.value
            stats["worker"] = rank
            out.put(stats)
    except Exception as e:  # report, do not hang the main process
        out.put({"error": f"worker {rank}: {type(e).__name__}: {e}"})
    finally:
        envs.close()


def train(env_id: str, cfg: A3CConfig | None = None, run: Run | None = None) -> History:
    """Train A3C with cfg.n_workers processes as `run` says; the main process evaluates and stops them.  Returns a
    History whose logs hold every worker update (with its `worker` id and `staleness`).  (No `update` seam: the
    update is split between the workers and the shared optimizer.)"""
    cfg, run = cfg or A3CConfig(), run or Run()
    gen, rng = generators(run.seed)
    worker_seeds = [int(s) for s in rng.integers(2**31 - 1, size=cfg.n_workers)]
    steps = run.steps
    probe = make_unit_vec(env_id, 1)
    shared = ActorCritic(probe.single_observation_space, probe.single_action_space, cfg.hidden, cfg.log_std_init,
                         gen)
    act_fn = greedy_act_fn(shared, probe.unwrapped.single_action_space)
    probe.close()
    shared.share_memory()
    adam_state = shared_adam_state(shared)
    # the first optimizer of a process imports a compiler module (seconds): pay it here, before forking
    shared_adam(shared, adam_state, cfg.lr)
    ctx = mp.get_context(cfg.start_method)
    counter, version = ctx.Value("q", 0), ctx.Value("q", 0)
    lock, stop, out = ctx.Lock(), ctx.Event(), ctx.Queue()
    mon = Monitor("a3c", env_id, run, config=cfg)
    procs = [ctx.Process(target=worker, args=(k, env_id, cfg, worker_seeds[k], shared, adam_state, counter, version,
                                               lock, stop, steps, out), daemon=True) for k in range(cfg.n_workers)]
    for p in procs:
        p.start()
    try:
        while True:
            time.sleep(cfg.poll_s)
            _drain(out, mon)
            if mon.should_stop(counter.value, act_fn) or not any(p.is_alive() for p in procs):
                break
    finally:
        stop.set()
        deadline = time.perf_counter() + 10.0
        while any(p.is_alive() for p in procs) and time.perf_counter() < deadline:
            _drain(out, mon, strict=False)  # keep reading: a worker cannot exit while its queue is full
            time.sleep(0.01)
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
        _drain(out, mon, strict=False)
    if not mon.history.evals:  # every worker died before the first evaluation
        mon.evaluate_now(counter.value, act_fn)
    return mon.finish(shared)


def _drain(out, mon: Monitor, strict: bool = True) -> None:
    """Log every worker update waiting in the queue; re-raise a worker's error (or NaN) in the main process."""
    while True:
        try:
            stats = out.get_nowait()
        except queue.Empty:
            return
        if "error" in stats:
            if strict:
                raise RuntimeError(stats["error"])
            continue
        try:
            mon.log(stats.pop("env_steps"), **stats)
        except Exception:
            if strict:
                raise


ALGOS = [Algo(name="a3c", train=train, config=A3CConfig, bench_env="CartPole-v1", bench_target=475.0,
              bench_steps=300_000, summary="asynchronous advantage actor-critic (worker processes, shared Adam)",
              eval_every=4096)]
