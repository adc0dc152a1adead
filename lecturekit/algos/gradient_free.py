"""Gradient-free policy search: hill climbing, random search, evolution strategies, the cross-entropy method and
finite-difference gradient ascent.  Lecture: "Gradient-Free Policy Optimization".

All five search over the flat parameter vector theta (D,) of a deterministic `LinearPolicy` (for CartPole-v1:
a = argmax(W s + b), D = 2 x (4 + 1) = 10). A candidate's fitness F(theta) is the undiscounted return of one episode.
Each generation a method proposes a population of candidates (P, D) ("ask"), all of them are run at once in one
vectorized environment with one copy per candidate, and the method updates its search state from their fitness
("tell"). The parameters it currently believes in are what the Monitor evaluates.

    hill climbing      theta' = theta + sigma eps;  keep the best of the perturbations if it beats theta;
                       halve sigma after an improvement (down to a floor), double it otherwise
    random search      theta' ~ U[-r, r]^D independently of the past;  keep the best seen
                       (hill climbing and random search re-run their current theta every generation and judge it
                       by its mean fitness over those runs, so one lucky episode does not decide)
    ES                 theta <- theta + alpha / (P sigma) sum_i F~_i eps_i   (antithetic eps, rank-shaped F~)
    CEM                sample N(mu, sigma^2), refit mu, sigma to the top elite_frac;  sigma += extra std
    finite difference  g_k = (F(theta + h e_k) - F(theta - h e_k)) / (2 h);  theta <- theta + alpha g / |g|
                       (a random direction when g = 0 on a plateau; |theta| is capped, which an argmax policy
                       does not notice but which keeps h and alpha meaningful)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lecturekit.algos import Algo
from lecturekit.envs import make_vec
from lecturekit.evaluation import History, Monitor, Run, generators
from lecturekit.policies import LinearAgent, LinearPolicy


# ---------------------------------------------------------------------------------------------------- configs
@dataclass
class HillClimbingConfig:
    n_candidates: int = 15      # perturbations per generation (the current theta is re-run alongside); with 31,
                                # the best of more noisy episodes wins more often by luck (4/5 seeds solved, not 5/5)
    sigma: float = 1.0          # initial perturbation scale (the same knob as ES's sigma)
    sigma_min: float = 0.1      # sigma never drops below this (smaller steps only chase evaluation noise) ...
    sigma_max: float = 2.0      # ... nor grows above this


@dataclass
class RandomSearchConfig:
    n_candidates: int = 63      # independent random parameter vectors per generation (the best so far is re-run)
    scale: float = 1.0          # each parameter is drawn uniformly from [-scale, scale]


@dataclass
class ESConfig:
    population: int = 32        # perturbations per generation (antithetic pairs: population / 2 directions)
    sigma: float = 0.1          # perturbation scale
    lr: float = 0.1             # step size alpha on the rank-shaped gradient estimate
    init_std: float = 0.1       # theta_0 ~ N(0, init_std^2)


@dataclass
class CEMConfig:
    population: int = 64        # candidates sampled per generation (N)
    elite_frac: float = 0.2     # fraction of the best candidates the Gaussian is refitted to
    init_std: float = 1.0       # initial standard deviation of the search distribution (mean starts at 0)
    extra_std: float = 0.1      # added to the refitted std so the search does not collapse too early


@dataclass
class FiniteDifferenceConfig:
    h: float = 0.2              # perturbation size of the central differences
    episodes: int = 4           # episodes per perturbed parameter vector (averaged)
    lr: float = 0.5             # length of each normalised ascent step theta <- theta + lr g / |g|
    init_std: float = 1.0       # theta_0 ~ N(0, init_std^2)
    max_norm: float = 3.0       # theta is rescaled to at most this length (a linear argmax policy is scale-free)


# ---------------------------------------------------------------------------------------------------- pure pieces
def cem_update(samples: np.ndarray, scores: np.ndarray, elite_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Refit the search Gaussian to the elite: mean and std (ddof=0) of the top max(1, int(elite_frac N)) samples.

    Shapes: samples (N, D), scores (N,) -> mean (D,), std (D,).
    """
    samples, scores = np.asarray(samples, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    n_elite = max(1, int(elite_frac * len(scores)))
    elite = samples[np.argsort(-scores, kind="stable")[:n_elite]]
    return elite.mean(0), elite.std(0)


def finite_difference_gradient(f: Callable[[np.ndarray], float], theta: np.ndarray, eps: float) -> np.ndarray:
    """Central differences: g_k = (f(theta + eps e_k) - f(theta - eps e_k)) / (2 eps).  theta (D,) -> (D,).
    theta itself is not modified."""
    theta = np.asarray(theta, dtype=np.float64)
    grad = np.zeros_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = eps
        grad[k] = (f(theta + e) - f(theta - e)) / (2 * eps)
    return grad


def centered_ranks(x: np.ndarray) -> np.ndarray:
    """Fitness shaping for ES: ranks mapped linearly onto [-0.5, 0.5] (robust to the scale of the returns)."""
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    return ranks / max(len(x) - 1, 1) - 0.5


def population_returns(envs, policy: LinearPolicy, params: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """Run one episode per candidate, all at once: candidate i acts in copy i of `envs`.

    params (P, D) with P = envs.num_envs.  Returns the undiscounted returns (P,) and the number of environment steps
    that belonged to these episodes (copies that already finished keep stepping but are not counted).
    """
    if params.shape[0] != envs.num_envs:
        raise ValueError(f"need one candidate per environment copy: {params.shape[0]} vs {envs.num_envs}")
    obs, _ = envs.reset(seed=seed)
    total = np.zeros(envs.num_envs)
    running = np.ones(envs.num_envs, dtype=bool)
    steps = 0
    while running.any():
        obs, r, term, trunc, _ = envs.step(policy.act(params, obs))
        steps += int(running.sum())
        total += np.where(running, r, 0.0)
        running &= ~(np.asarray(term) | np.asarray(trunc))
    return total, steps


# ---------------------------------------------------------------------------------------------------- the methods
# Each method is (population size, init(D, rng) -> state, ask(state, rng) -> candidates (P, D),
# tell(state, candidates, scores) -> state, current(state) -> theta). The state is a plain dict.
def _hill_climbing(cfg: HillClimbingConfig):
    # the current theta is re-run every generation (candidate 0); its fitness is the mean of all its runs, so a
    # lucky episode does not lock it in
    def init(D, rng):
        return {"theta": np.zeros(D), "sigma": cfg.sigma, "runs": []}

    def ask(st, rng):
        eps = rng.standard_normal((cfg.n_candidates, st["theta"].size))
        return np.vstack([st["theta"], st["theta"] + st["sigma"] * eps])

    def tell(st, cand, scores):
        runs = st["runs"] + [scores[0]]
        j = 1 + int(np.argmax(scores[1:]))
        if scores[j] > np.mean(runs):  # keep the improvement, search closer to it
            return {"theta": cand[j], "sigma": max(cfg.sigma_min, st["sigma"] / 2), "runs": [scores[j]]}
        return {"theta": st["theta"], "sigma": min(cfg.sigma_max, st["sigma"] * 2), "runs": runs}

    return cfg.n_candidates + 1, init, ask, tell, lambda st: st["theta"]


def _random_search(cfg: RandomSearchConfig):
    # as in hill climbing, the best theta so far is re-run every generation and judged by its mean fitness
    def init(D, rng):
        return {"theta": np.zeros(D), "runs": [-np.inf]}

    def ask(st, rng):
        fresh = rng.uniform(-cfg.scale, cfg.scale, size=(cfg.n_candidates, st["theta"].size))
        return np.vstack([st["theta"], fresh])

    def tell(st, cand, scores):
        runs = [r for r in st["runs"] if np.isfinite(r)] + [scores[0]]
        j = 1 + int(np.argmax(scores[1:]))
        if scores[j] > np.mean(runs):
            return {"theta": cand[j], "runs": [scores[j]]}
        return {"theta": st["theta"], "runs": runs}

    return cfg.n_candidates + 1, init, ask, tell, lambda st: st["theta"]


def _es(cfg: ESConfig):
    if cfg.population % 2:
        raise ValueError(f"ES uses antithetic pairs: population must be even, got {cfg.population}")

    def init(D, rng):
        return {"theta": cfg.init_std * rng.standard_normal(D)}

    def ask(st, rng):
        eps = rng.standard_normal((cfg.population // 2, st["theta"].size))
        st["eps"] = np.vstack([eps, -eps])
        return st["theta"] + cfg.sigma * st["eps"]

    def tell(st, cand, scores):
        grad = centered_ranks(scores) @ st["eps"] / (cfg.population * cfg.sigma)
        return {"theta": st["theta"] + cfg.lr * grad, "best": scores.max()}

    return cfg.population, init, ask, tell, lambda st: st["theta"]


def _cem(cfg: CEMConfig):
    def init(D, rng):
        return {"mean": np.zeros(D), "std": np.full(D, cfg.init_std)}

    def ask(st, rng):
        return st["mean"] + st["std"] * rng.standard_normal((cfg.population, st["mean"].size))

    def tell(st, cand, scores):
        mean, std = cem_update(cand, scores, cfg.elite_frac)
        return {"mean": mean, "std": std + cfg.extra_std, "best": scores.max()}

    return cfg.population, init, ask, tell, lambda st: st["mean"]


def _finite_difference(cfg: FiniteDifferenceConfig):
    # candidates: episodes copies of [theta + h e_1, ..., theta + h e_D, theta - h e_1, ..., theta - h e_D]
    def init(D, rng):
        return {"theta": cfg.init_std * rng.standard_normal(D), "rng": rng}

    def ask(st, rng):
        E = cfg.h * np.eye(st["theta"].size)
        return np.tile(np.vstack([st["theta"] + E, st["theta"] - E]), (cfg.episodes, 1))

    def tell(st, cand, scores):
        D = st["theta"].size
        F = scores.reshape(cfg.episodes, 2, D).mean(0)
        grad = (F[0] - F[1]) / (2 * cfg.h)
        norm = np.linalg.norm(grad)
        if norm == 0:  # on a plateau every probe scores the same: take a random step to leave it
            grad = st["rng"].standard_normal(D)
            norm = np.linalg.norm(grad)
        theta = st["theta"] + cfg.lr * grad / norm
        # argmax(W s + b) does not change when theta is scaled, but the probes and steps do: keep |theta| bounded
        # so that h and lr stay meaningful
        theta *= min(1.0, cfg.max_norm / np.linalg.norm(theta))
        return {"theta": theta, "rng": st["rng"]}

    def size(D):
        return 2 * D * cfg.episodes

    return size, init, ask, tell, lambda st: st["theta"]


METHODS = {
    "hill_climbing": (_hill_climbing, HillClimbingConfig),
    "random_search": (_random_search, RandomSearchConfig),
    "es": (_es, ESConfig),
    "cem": (_cem, CEMConfig),
    "finite_difference": (_finite_difference, FiniteDifferenceConfig),
}


# ---------------------------------------------------------------------------------------------------- the loop
def search(name: str, env_id: str, cfg=None, run: Run | None = None) -> History:
    """Run gradient-free method `name` (a key of METHODS) until the target, the step budget or the Stop button.

    All randomness (the initial theta, the candidates, the episodes' reset seeds) comes from the run's NumPy
    generator (`evaluation.generators(run.seed)`).  env_steps counts the steps of the candidates' episodes;
    History.model is a `LinearAgent` (the policy and theta).
    """
    if name not in METHODS:
        raise ValueError(f"Unknown gradient-free method '{name}'. Available: {', '.join(METHODS)}.")
    make, config_cls = METHODS[name]
    cfg, run = cfg or config_cls(), run or Run()
    _, rng = generators(run.seed)
    probe = make_vec(env_id, 1)
    policy = LinearPolicy.for_env(probe)
    probe.close()
    population, init, ask, tell, current = make(cfg)
    population = population(policy.n_params) if callable(population) else population
    envs = make_vec(env_id, population)
    mon = Monitor(name, env_id, run, config=cfg)
    state, env_steps = init(policy.n_params, rng), 0
    try:
        while True:
            cand = ask(state, rng)
            scores, n = population_returns(envs, policy, cand, seed=int(rng.integers(2**31)))
            env_steps += n
            state = tell(state, cand, scores)
            mon.log(env_steps, pop_mean=scores.mean(), pop_best=scores.max())
            agent = LinearAgent(policy, current(state).copy())
            if mon.should_stop(env_steps, agent):
                break
    finally:
        envs.close()
    return mon.finish(agent)


def _train_fn(name: str):
    def train(env_id: str, cfg=None, run: Run | None = None) -> History:
        return search(name, env_id, cfg, run)

    train.__name__ = train.__qualname__ = f"train_{name}"
    train.__doc__ = f"Train a linear policy with {name.replace('_', ' ')} (see `search`)."
    return train


train_hill_climbing = _train_fn("hill_climbing")
train_random_search = _train_fn("random_search")
train_es = _train_fn("es")
train_cem = _train_fn("cem")
train_finite_difference = _train_fn("finite_difference")

_SUMMARIES = {
    "hill_climbing": "hill climbing with adaptive noise, linear policy (gradient-free)",
    "random_search": "pure random search over linear policies (gradient-free)",
    "es": "evolution strategies, antithetic, rank-shaped (gradient-free)",
    "cem": "cross-entropy method, linear policy (gradient-free)",
    "finite_difference": "finite-difference gradient ascent, linear policy (gradient-free)",
}
ALGOS = [
    Algo(name=name, train=globals()[f"train_{name}"], config=METHODS[name][1], bench_env="CartPole-v1",
         bench_target=475.0, bench_steps=300_000, summary=_SUMMARIES[name], eval_every=2_000)
    for name in METHODS
]
