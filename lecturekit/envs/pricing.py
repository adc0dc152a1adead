"""Dynamic pricing: sell a fixed stock over a finite season (lecture: "Example: Dynamic Pricing with Policy Gradient").

The environment, its exact optimum by dynamic programming, and an exact evaluator for any deterministic pricing rule.

Demand model: in each period the number of buyers who would accept price ``p`` is Poisson with rate
``lam(p) = base_demand * exp(-price_sensitivity * p)``; we sell ``min(demand, units left)``.

Exact optimum (Bellman equation over periods left ``k`` and units left ``x``)::

    V_0(x) = 0,  V_k(0) = 0,
    V_k(x) = max_p  sum_s P(sales = s | p, x) * (p * s + V_{k-1}(x - s))

solved for every ``(k, x)`` by a dense price grid followed by golden-section refinement around the best grid point.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class PricingParams:
    horizon: int = 20               # selling periods in the season (T)
    inventory: int = 10             # units to sell at the start (C); unsold units are worth nothing
    base_demand: float = 3.0        # Poisson demand rate at price 0 (buyers per period)
    price_sensitivity: float = 1.0  # demand falls as exp(-price_sensitivity * price)
    min_price: float = 0.0          # lowest allowed price
    max_price: float = 4.0          # highest allowed price

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.inventory < 1:
            raise ValueError(f"horizon and inventory must be >= 1, got {self.horizon} and {self.inventory}")
        if not (0 <= self.min_price < self.max_price):
            raise ValueError(f"need 0 <= min_price < max_price, got {self.min_price} and {self.max_price}")
        if self.base_demand <= 0 or self.price_sensitivity <= 0:
            raise ValueError("base_demand and price_sensitivity must be positive")

    def demand_rate(self, price):
        """Expected number of buyers per period at `price` (scalar or array)."""
        return self.base_demand * np.exp(-self.price_sensitivity * np.asarray(price, dtype=np.float64))


class DynamicPricingEnv(gym.Env):
    """Dynamic pricing of a perishable stock over a finite season.

    State: periods left ``k`` in {1..T} and units left ``x`` in {0..C}. Observation (float32, shape (2,)):
        ``[k / T, x / C]``. (The lecture also lists past demand and competitor prices; here demand is independent
        across periods given the price and there is no competitor, so ``(k, x)`` is the whole Markov state.)
    Action: the price, shape (1,), in ``[min_price, max_price]``; prices outside that range are clipped.
    Reward: revenue of the period, ``price * sales``.
    Transitions: demand ``D ~ Poisson(base_demand * exp(-price_sensitivity * price))``; ``sales = min(D, x)``;
        ``x <- x - sales``, ``k <- k - 1``. The episode terminates when the season ends (``k = 0``) or the stock is
        sold out (``x = 0``: nothing more can be earned).
    Info: ``price`` (after clipping), ``demand``, ``sales``, ``periods_left``, ``units_left``.

    Economic parameters are constructor keyword arguments (see `PricingParams`).
    """

    metadata = {"render_modes": []}

    def __init__(self, **params) -> None:
        self.params = PricingParams(**params)
        p = self.params
        self.observation_space = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(np.float32(p.min_price), np.float32(p.max_price), shape=(1,), dtype=np.float32)
        self.periods_left = p.horizon
        self.units_left = p.inventory

    def _obs(self) -> np.ndarray:
        p = self.params
        return np.array([self.periods_left / p.horizon, self.units_left / p.inventory], dtype=np.float32)

    def _info(self, **extra) -> dict:
        return dict(periods_left=self.periods_left, units_left=self.units_left, **extra)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.periods_left = self.params.horizon
        self.units_left = self.params.inventory
        return self._obs(), self._info()

    def step(self, action):
        p = self.params
        price = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], p.min_price, p.max_price))
        demand = int(self.np_random.poisson(p.demand_rate(price)))
        sales = min(demand, self.units_left)
        self.units_left -= sales
        self.periods_left -= 1
        terminated = self.periods_left == 0 or self.units_left == 0
        info = self._info(price=price, demand=demand, sales=sales)
        return self._obs(), float(price * sales), terminated, False, info


# ---------------------------------------------------------------------------------------------------------------
# Exact dynamic programming
# ---------------------------------------------------------------------------------------------------------------

def sales_distribution(rate, units: int) -> np.ndarray:
    """P(sales = s) for s = 0..units when demand ~ Poisson(rate) and sales = min(demand, units).

    Shapes: rate: (...,) array of Poisson rates. Returns (..., units + 1); the last entry holds P(demand >= units).
    """
    rate = np.asarray(rate, dtype=np.float64)[..., None]
    s = np.arange(units + 1)
    log_fact = np.array([math.lgamma(k + 1.0) for k in range(units + 1)])
    with np.errstate(divide="ignore", invalid="ignore"):
        pmf = np.exp(s * np.log(rate) - rate - log_fact)  # rate 0 -> pmf = [1, 0, 0, ...]
    pmf = np.where(rate == 0, (s == 0).astype(np.float64), pmf)
    pmf[..., units] = np.clip(1.0 - pmf[..., :units].sum(-1), 0.0, 1.0)
    return pmf


def _q_value(params: PricingParams, price, units: int, v_next: np.ndarray) -> np.ndarray:
    """Expected revenue now plus continuation, sum_s P(s | price, units) (price * s + v_next[units - s])."""
    price = np.asarray(price, dtype=np.float64)
    probs = sales_distribution(params.demand_rate(price), units)          # (..., units + 1)
    s = np.arange(units + 1)
    return (probs * (price[..., None] * s + v_next[units - s])).sum(-1)


def _golden_max(f: Callable[[float], float], lo: float, hi: float, iters: int = 60) -> float:
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2.0


@dataclass
class PricingSolution:
    """Optimal values and prices. ``value[k, x]``: optimal expected revenue with k periods and x units left;
    ``price[k, x]``: the optimal price there (NaN where k = 0 or x = 0)."""

    params: PricingParams
    value: np.ndarray   # (T + 1, C + 1)
    price: np.ndarray   # (T + 1, C + 1)

    @property
    def optimal_revenue(self) -> float:
        """Optimal expected revenue of a whole season, V_T(C)."""
        return float(self.value[self.params.horizon, self.params.inventory])


def solve_pricing(n_grid: int = 801, **params) -> PricingSolution:
    """Exact optimal pricing by backward induction (see the module docstring). Keyword arguments: `PricingParams`."""
    p = PricingParams(**params)
    T, C = p.horizon, p.inventory
    value = np.zeros((T + 1, C + 1))
    price = np.full((T + 1, C + 1), np.nan)
    grid = np.linspace(p.min_price, p.max_price, n_grid)
    step = grid[1] - grid[0]
    for k in range(1, T + 1):
        for x in range(1, C + 1):
            q = _q_value(p, grid, x, value[k - 1])
            i = int(np.argmax(q))
            lo, hi = max(p.min_price, grid[i] - step), min(p.max_price, grid[i] + step)
            best = _golden_max(lambda pr: float(_q_value(p, pr, x, value[k - 1])), lo, hi)
            q_best = float(_q_value(p, best, x, value[k - 1]))
            price[k, x], value[k, x] = (best, q_best) if q_best >= q[i] else (grid[i], q[i])
    return PricingSolution(p, value, price)


def evaluate_pricing_rule(rule: Callable[[int, int], float], **params) -> float:
    """Exact expected season revenue of the deterministic rule ``price = rule(periods_left, units_left)``.

    The rule is evaluated on every state once; prices are clipped to the allowed range as in the environment.
    """
    p = PricingParams(**params)
    value = np.zeros((p.horizon + 1, p.inventory + 1))
    for k in range(1, p.horizon + 1):
        for x in range(1, p.inventory + 1):
            pr = float(np.clip(rule(k, x), p.min_price, p.max_price))
            value[k, x] = float(_q_value(p, pr, x, value[k - 1]))
    return float(value[p.horizon, p.inventory])


def best_fixed_price(n_grid: int = 401, **params) -> tuple[float, float]:
    """The single price kept all season that earns the most, and its exact expected revenue: (price, revenue)."""
    p = PricingParams(**params)
    grid = np.linspace(p.min_price, p.max_price, n_grid)
    revenues = [evaluate_pricing_rule(lambda k, x, g=g: g, **asdict(p)) for g in grid]
    i = int(np.argmax(revenues))
    return float(grid[i]), float(revenues[i])


def policy_price_table(policy: Callable[[np.ndarray], np.ndarray], **params) -> np.ndarray:
    """Price a policy sets in every state: ``table[k, x]`` for k = 1..T, x = 1..C (NaN elsewhere).

    `policy` maps a batch of observations (n, 2) float32 to prices (n,) or (n, 1), e.g. the deterministic
    (mean) action of a trained Gaussian policy.
    """
    p = PricingParams(**params)
    k, x = np.meshgrid(np.arange(1, p.horizon + 1), np.arange(1, p.inventory + 1), indexing="ij")
    obs = np.stack([k / p.horizon, x / p.inventory], axis=-1).reshape(-1, 2).astype(np.float32)
    prices = np.clip(np.asarray(policy(obs), dtype=np.float64).reshape(-1), p.min_price, p.max_price)
    table = np.full((p.horizon + 1, p.inventory + 1), np.nan)
    table[1:, 1:] = prices.reshape(p.horizon, p.inventory)
    return table


def evaluate_price_table(table: np.ndarray, **params) -> float:
    """Exact expected season revenue when pricing by ``table[k, x]`` (as returned by `policy_price_table`)."""
    return evaluate_pricing_rule(lambda k, x: table[k, x], **params)


def expected_price_path(table: np.ndarray, **params) -> tuple[np.ndarray, np.ndarray]:
    """Expected price and expected units left per period when following ``table`` from the season start.

    Returns (price (T,), units (T + 1,)): the mean price charged in period t = 0..T-1 among seasons still selling,
    and the expected stock at the start of each period.
    """
    p = PricingParams(**params)
    dist = np.zeros(p.inventory + 1)
    dist[p.inventory] = 1.0
    prices, units = [], [p.inventory]
    for t in range(p.horizon):
        k = p.horizon - t
        new = np.zeros_like(dist)
        new[0] = dist[0]
        selling = dist[1:].sum()
        prices.append(sum(dist[x] * table[k, x] for x in range(1, p.inventory + 1)) / selling if selling > 0
                      else np.nan)
        for x in range(1, p.inventory + 1):
            if dist[x] > 0:
                probs = sales_distribution(p.demand_rate(np.clip(table[k, x], p.min_price, p.max_price)), x)
                new[x - np.arange(x + 1)] += dist[x] * probs
        dist = new
        units.append(float((dist * np.arange(p.inventory + 1)).sum()))
    return np.array(prices), np.array(units)
