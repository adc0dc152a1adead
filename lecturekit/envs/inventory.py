"""Inventory control: how much to order each period (lecture: "Example: Inventory Control with Policy Gradient").

The environment, a vectorised simulator that shares its dynamics, and the search for the best base-stock
(order-up-to) policy: order ``q = max(0, S - inventory position)``, where the inventory position is the stock on
hand plus the orders still in the pipeline. With linear costs and no fixed ordering cost a base-stock rule is the
classical benchmark (optimal for backlogged demand; close to optimal for lost sales).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class InventoryParams:
    horizon: int = 30             # periods per episode
    mean_demand: float = 4.0      # Poisson demand per period
    lead_time: int = 1            # periods between placing an order and receiving it (0 = arrives at once)
    max_order: float = 12.0       # largest order per period
    unit_cost: float = 1.0        # ordering cost per unit ordered
    holding_cost: float = 0.5     # cost per unit left in stock at the end of a period
    stockout_cost: float = 6.0    # penalty per unit of demand that cannot be met (the sale is lost)
    max_initial_stock: float = 8.0  # the initial stock is uniform on [0, max_initial_stock]

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.lead_time < 0:
            raise ValueError(f"need horizon >= 1 and lead_time >= 0, got {self.horizon} and {self.lead_time}")
        if self.mean_demand <= 0 or self.max_order <= 0:
            raise ValueError("mean_demand and max_order must be positive")
        if min(self.unit_cost, self.holding_cost, self.stockout_cost, self.max_initial_stock) < 0:
            raise ValueError("costs and max_initial_stock must be non-negative")

    @property
    def scale(self) -> float:
        """Unit in which stock and orders are observed (stock / scale is about 0..2)."""
        return self.max_order


def inventory_step(params: InventoryParams, stock, pipeline, order, demand):
    """One period for a batch of systems (shared by the environment and `simulate_inventory`).

    Shapes: stock (B,), pipeline (B, L) with the order arriving next at column 0, order (B,) already clipped,
    demand (B,). Order of events: the order is placed (with L = 0 it arrives at once); the pipeline head arrives;
    demand is met from stock, unmet demand is lost; holding cost on what is left.
    Returns (stock', pipeline', reward (B,), lost (B,)).
    """
    p = params
    if p.lead_time == 0:
        stock = stock + order
    else:
        stock = stock + pipeline[:, 0]
        pipeline = np.concatenate([pipeline[:, 1:], order[:, None]], axis=1)
    sold = np.minimum(stock, demand)
    lost = demand - sold
    stock = stock - sold
    cost = p.unit_cost * order + p.holding_cost * stock + p.stockout_cost * lost
    return stock, pipeline, -cost, lost


class InventoryControlEnv(gym.Env):
    """Single-item inventory with random demand, lost sales and an order lead time.

    State: stock on hand ``x >= 0``, the ``L = lead_time`` orders still in the pipeline (the one arriving next
        first) and the periods left ``k``. Observation (float32, shape (L + 2,)):
        ``[x / max_order, pipeline / max_order ..., k / horizon]``.
    Action: the order quantity, shape (1,), in ``[0, max_order]`` (continuous; values outside are clipped).
    Reward: minus the period's cost, ``-(unit_cost * order + holding_cost * stock_left + stockout_cost * lost)``.
    Transitions: the order joins the pipeline (with ``L = 0`` it arrives at once) and the oldest pipeline order
        arrives; demand ``D ~ Poisson(mean_demand)`` is served from stock, the unmet part is lost; the stock evolves
        deterministically given ``D``: ``x' = max(x + arriving - D, 0)``. The episode terminates after ``horizon``
        periods. The initial stock is uniform on ``[0, max_initial_stock]`` with an empty pipeline.
    Info: ``order`` (after clipping), ``demand``, ``lost``, ``stock``.

    Economic parameters are constructor keyword arguments (see `InventoryParams`).
    """

    metadata = {"render_modes": []}

    def __init__(self, **params) -> None:
        self.params = p = InventoryParams(**params)
        # stock can at most grow by max_order a period; pipeline entries and periods-left fractions are <= 1
        high = np.ones(p.lead_time + 2, dtype=np.float32)
        high[0] = (p.max_initial_stock + p.horizon * p.max_order) / p.scale
        self.observation_space = spaces.Box(0.0, high, dtype=np.float32)
        self.action_space = spaces.Box(np.float32(0.0), np.float32(p.max_order), shape=(1,), dtype=np.float32)
        self.stock = 0.0
        self.pipeline = np.zeros(p.lead_time)
        self.periods_left = p.horizon

    def _obs(self) -> np.ndarray:
        p = self.params
        return np.concatenate([[self.stock / p.scale], self.pipeline / p.scale,
                               [self.periods_left / p.horizon]]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        p = self.params
        self.stock = float(self.np_random.uniform(0.0, p.max_initial_stock))
        self.pipeline = np.zeros(p.lead_time)
        self.periods_left = p.horizon
        return self._obs(), {"stock": self.stock}

    def step(self, action):
        p = self.params
        order = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 0.0, p.max_order))
        demand = float(self.np_random.poisson(p.mean_demand))
        stock, pipeline, reward, lost = inventory_step(p, np.array([self.stock]), self.pipeline[None, :],
                                                       np.array([order]), np.array([demand]))
        self.stock, self.pipeline = float(stock[0]), pipeline[0]
        self.periods_left -= 1
        info = dict(order=order, demand=demand, lost=float(lost[0]), stock=self.stock)
        return self._obs(), float(reward[0]), self.periods_left == 0, False, info


# ---------------------------------------------------------------------------------------------------------------
# Batched simulation and the base-stock benchmark
# ---------------------------------------------------------------------------------------------------------------

def simulate_inventory(policy: Callable[[np.ndarray], np.ndarray], episodes: int = 2000, seed: int = 0,
                       **params) -> np.ndarray:
    """Run `episodes` seasons at once with a deterministic policy; returns the mean reward per period of each (E,).

    `policy` maps observations (E, L + 2) float32 (as the environment builds them) to orders (E,) or (E, 1).
    The same seed gives the same demands and initial stocks (common random numbers), so two policies simulated
    with one seed are compared on identical scenarios.
    """
    p = InventoryParams(**params)
    rng = np.random.default_rng(seed)
    stock = rng.uniform(0.0, p.max_initial_stock, size=episodes)
    demand = rng.poisson(p.mean_demand, size=(p.horizon, episodes)).astype(np.float64)
    pipeline = np.zeros((episodes, p.lead_time))
    total = np.zeros(episodes)
    for t in range(p.horizon):
        k = np.full(episodes, (p.horizon - t) / p.horizon)
        obs = np.column_stack([stock / p.scale, pipeline / p.scale, k]).astype(np.float32)
        order = np.clip(np.asarray(policy(obs), dtype=np.float64).reshape(episodes), 0.0, p.max_order)
        stock, pipeline, reward, _ = inventory_step(p, stock, pipeline, order, demand[t])
        total += reward
    return total / p.horizon


def base_stock_policy(level: float, **params) -> Callable[[np.ndarray], np.ndarray]:
    """Order up to `level`: q = clip(level - (stock + pipeline), 0, max_order), read from the observation."""
    p = InventoryParams(**params)

    def policy(obs: np.ndarray) -> np.ndarray:
        position = obs[:, : p.lead_time + 1].astype(np.float64).sum(1) * p.scale
        return np.clip(level - position, 0.0, p.max_order)

    return policy


@dataclass
class BaseStockResult:
    level: float              # best order-up-to level S found
    mean_reward: float        # its mean reward per period on the search scenarios
    levels: np.ndarray        # every level tried
    rewards: np.ndarray       # mean reward per period of each level tried


def base_stock_search(episodes: int = 4000, seed: int = 0, step: float = 0.25, **params) -> BaseStockResult:
    """Best base-stock level by exhaustive search on a grid of `step` from 0 to (L + 1) * max_order.

    Every level is simulated on the same `episodes` scenarios (common random numbers), so the ranking is not
    blurred by sampling noise between levels.
    """
    p = InventoryParams(**params)
    levels = np.arange(0.0, (p.lead_time + 1) * p.max_order + step / 2, step)
    rewards = np.array([simulate_inventory(base_stock_policy(s, **params), episodes, seed, **params).mean()
                        for s in levels])
    i = int(np.argmax(rewards))
    return BaseStockResult(float(levels[i]), float(rewards[i]), levels, rewards)
