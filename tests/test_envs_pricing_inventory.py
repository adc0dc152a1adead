"""The applications' environments: dynamic pricing (with its exact DP optimum), inventory control (with the
base-stock search) and Cliff Walking with one-hot observations."""
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lecturekit.envs  # noqa: F401  (registers the course environments)
from lecturekit.envs import cliff, inventory, pricing

ENV_IDS = ["lecturekit/DynamicPricing-v0", "lecturekit/InventoryControl-v0", "lecturekit/CliffWalkingOneHot-v0",
           "lecturekit/CliffWalkingExploringStarts-v0"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_and_passes_gymnasium_check_env(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice (e.g. "use a normalised Box") is not a failure
        check_env(env if "Cliff" in env_id else env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("cls", [pricing.DynamicPricingEnv, inventory.InventoryControlEnv])
def test_docstring_states_state_action_reward_transitions(cls):
    for word in ("State:", "Action:", "Reward:", "Transitions:"):
        assert word in cls.__doc__


def test_economic_parameters_are_keyword_arguments():
    env = gym.make("lecturekit/DynamicPricing-v0", horizon=5, inventory=3, max_price=2.0)
    assert env.unwrapped.params.horizon == 5 and env.action_space.high[0] == 2.0
    env = gym.make("lecturekit/InventoryControl-v0", lead_time=2, holding_cost=1.5)
    assert env.observation_space.shape == (4,) and env.unwrapped.params.holding_cost == 1.5
    with pytest.raises(ValueError, match="min_price"):
        pricing.DynamicPricingEnv(min_price=3.0, max_price=1.0)
    with pytest.raises(TypeError):
        pricing.DynamicPricingEnv(no_such_parameter=1)


# ----------------------------------------------------------------------------------------------------- pricing

def test_sales_distribution_hand_worked():
    # rate 1, 2 units: P(0) = e^-1, P(1) = e^-1, P(2) = P(D >= 2) = 1 - 2 e^-1
    p = pricing.sales_distribution(1.0, 2)
    np.testing.assert_allclose(p, [math.exp(-1), math.exp(-1), 1 - 2 * math.exp(-1)], rtol=1e-12)
    q = pricing.sales_distribution(np.array([0.0, 0.5, 7.0]), 4)
    np.testing.assert_allclose(q.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(q[0], [1, 0, 0, 0, 0])


def test_pricing_step_and_termination():
    env = pricing.DynamicPricingEnv(horizon=3, inventory=2)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, [1.0, 1.0])
    obs, r, term, trunc, info = env.step(np.array([99.0], dtype=np.float32))  # clipped to max_price = 4
    assert info["price"] == 4.0 and r == pytest.approx(4.0 * info["sales"]) and not trunc
    n = 1
    while not term:
        obs, r, term, trunc, info = env.step(np.array([0.0], dtype=np.float32))
        n += 1
    assert n <= 3 and (info["periods_left"] == 0 or info["units_left"] == 0)


def test_dp_one_period_one_unit_matches_dense_search():
    # V_1(1) = max_p p * P(D >= 1) = max_p p (1 - exp(-3 e^{-p}))
    prices = np.linspace(0, 4, 400_001)
    best = np.max(prices * (1 - np.exp(-3 * np.exp(-prices))))
    sol = pricing.solve_pricing(horizon=1, inventory=1)
    assert sol.optimal_revenue == pytest.approx(best, abs=1e-8)


def test_dp_ample_stock_gives_the_static_monopoly_price():
    # with stock that never runs out, maximise p * lam(p) = p a e^{-b p}: p* = 1 / b, revenue a / (b e)
    sol = pricing.solve_pricing(horizon=1, inventory=40, base_demand=3.0, price_sensitivity=2.0)
    assert sol.price[1, 40] == pytest.approx(0.5, abs=1e-5)
    assert sol.optimal_revenue == pytest.approx(3.0 / (2.0 * math.e), rel=1e-9)


def test_dp_beats_every_other_rule_and_matches_simulation():
    params = dict(horizon=6, inventory=4)
    sol = pricing.solve_pricing(**params)
    assert pricing.evaluate_price_table(sol.price, **params) == pytest.approx(sol.optimal_revenue, rel=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(30):
        table = sol.price + rng.normal(0, 0.3, size=sol.price.shape)
        assert pricing.evaluate_price_table(table, **params) <= sol.optimal_revenue + 1e-12
    p_fixed, r_fixed = pricing.best_fixed_price(**params)
    assert r_fixed <= sol.optimal_revenue
    # Monte Carlo in the environment itself (independent of the DP's arithmetic)
    env = pricing.DynamicPricingEnv(**params)
    revenues = []
    for ep in range(3000):
        env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            _, r, done, _, _ = env.step(np.array([sol.price[env.periods_left, env.units_left]], dtype=np.float32))
            total += r
        revenues.append(total)
    se = np.std(revenues) / math.sqrt(len(revenues))
    assert abs(np.mean(revenues) - sol.optimal_revenue) < 4 * se


def test_default_pricing_optimum_and_price_path():
    sol = pricing.solve_pricing()
    assert 16.0 < sol.optimal_revenue < 16.6
    # more stock left -> lower price; fewer periods left with the same stock -> lower price
    assert np.all(np.diff(sol.price[1:, 1:], axis=1) <= 1e-6)
    assert np.all(np.diff(sol.price[1:, 1:], axis=0) >= -1e-6)
    prices, units = pricing.expected_price_path(sol.price)
    assert prices.shape == (20,) and units.shape == (21,) and units[0] == 10 and np.all(np.diff(units) <= 0)
    table = pricing.policy_price_table(lambda obs: np.full(len(obs), 1.5))
    assert pricing.evaluate_price_table(table) == pytest.approx(pricing.evaluate_pricing_rule(lambda k, x: 1.5))


# ----------------------------------------------------------------------------------------------------- inventory

def test_inventory_step_hand_worked():
    p = inventory.InventoryParams(lead_time=1)
    # stock 5, order placed last period 3 arrives -> 8; demand 10: 8 sold, 2 lost; new order 2 joins the pipeline
    # cost = 1 * 2 (order) + 0.5 * 0 (holding) + 6 * 2 (lost) = 14
    stock, pipe, r, lost = inventory.inventory_step(p, np.array([5.0]), np.array([[3.0]]), np.array([2.0]),
                                                    np.array([10.0]))
    assert stock[0] == 0 and pipe[0, 0] == 2 and lost[0] == 2 and r[0] == -14
    p0 = inventory.InventoryParams(lead_time=0)
    # lead time 0: 5 + 2 = 7 on hand, demand 3 -> 4 left: cost = 2 + 0.5 * 4 = 4
    stock, pipe, r, lost = inventory.inventory_step(p0, np.array([5.0]), np.zeros((1, 0)), np.array([2.0]),
                                                    np.array([3.0]))
    assert stock[0] == 4 and lost[0] == 0 and r[0] == -4


def test_inventory_env_agrees_with_batched_simulator():
    policy = inventory.base_stock_policy(11.0)
    sim = inventory.simulate_inventory(policy, episodes=4000, seed=0)
    env = inventory.InventoryControlEnv()
    per_period = []
    for ep in range(1500):
        obs, _ = env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            obs, r, done, _, _ = env.step(policy(obs[None]).astype(np.float32))
            total += r
        per_period.append(total / env.params.horizon)
    se = math.hypot(np.std(per_period) / math.sqrt(1500), sim.std() / math.sqrt(4000))
    assert abs(np.mean(per_period) - sim.mean()) < 4 * se


def test_base_stock_search_recovers_the_newsvendor_quantile():
    # one period, no lead time, empty start: order up to S; the best S is the smallest with
    # P(D <= S) >= (stockout - unit) / (stockout + holding) = 5 / 6.5 = 0.769; for Poisson(4): P(D<=4) = 0.629,
    # P(D<=5) = 0.785 -> S* = 5
    res = inventory.base_stock_search(episodes=20000, horizon=1, lead_time=0, max_initial_stock=0.0)
    assert res.level == 5.0
    # and it is the best of the levels tried, on common random numbers
    assert res.mean_reward == res.rewards.max()


def test_default_base_stock_level():
    res = inventory.base_stock_search(episodes=2000)
    # lead time 1: the position must cover about two periods of demand (mean 8) plus safety stock
    assert 9.0 <= res.level <= 13.0
    assert res.mean_reward > inventory.simulate_inventory(lambda o: np.zeros(len(o)), 2000, 0).mean()


# ----------------------------------------------------------------------------------------------------- cliff

def test_cliff_onehot_and_the_shortest_path():
    env = gym.make("lecturekit/CliffWalkingOneHot-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (48,) and obs[cliff.START] == 1 and obs.sum() == 1
    # up, 11 x right, down: the optimal path along the cliff, return -13
    def act(obs):
        r, c = np.divmod(obs.argmax(1), 12)
        return np.where((r == 3) & (c == 0), 0, np.where(c == 11, 2, 1))
    cells, ret, ok = cliff.greedy_path(act)
    assert ok and ret == -13 and cells[-1] == cliff.GOAL and len(cells) == 14
    assert cliff.greedy_actions(act).shape == (4, 12)


def test_exploring_starts_start_anywhere_but_cliff_and_goal():
    env = gym.make("lecturekit/CliffWalkingExploringStarts-v0")
    starts = {int(env.reset(seed=i)[0].argmax()) for i in range(400)}
    cliff_cells = set(range(37, 47))
    assert not starts & cliff_cells and cliff.GOAL not in starts and len(starts) > 30
    # the dynamics are CliffWalking's: from cell 35 (row 2, last column) moving down reaches the goal
    env.reset(seed=0)
    env.unwrapped.s = 35
    _, r, term, _, _ = env.step(2)
    assert term and r == -1


def test_reinforce_update_with_entropy_bonus_as_cliffwalk_uses_it():
    import torch

    from lecturekit.applications import cliffwalk
    from lecturekit.algos import reinforce
    from lecturekit.nets import ActorCritic

    space = gym.spaces.Box(0.0, 1.0, shape=(48,), dtype=np.float32)
    # two episodes, T = 3; the second ends after 2 steps (its third step is invalid)
    obs = np.zeros((3, 2, 48), np.float32)
    for t in range(3):
        obs[t, 0, 36 - 12 * t] = obs[t, 1, 24 + t] = 1.0
    batch = reinforce.Batch(obs=obs, actions=np.array([[0, 1], [1, 2], [1, 0]]),
                            rewards=np.array([[-1, -1], [-1, -100], [-1, 0]], np.float32),
                            valid=np.array([[1, 1], [1, 1], [1, 0]], bool),
                            ends=np.array([[0, 0], [0, 1], [1, 0]], bool))
    results = {}
    for beta in (0.0, 0.5):
        torch.manual_seed(0)
        model = ActorCritic(space, gym.spaces.Discrete(4), (8,))
        cfg = cliffwalk.config(entropy_coef=beta, gamma=0.5)
        opt = torch.optim.SGD(model.pi.parameters(), lr=0.0)  # lr 0: only the reported loss matters here
        vf = torch.optim.SGD(model.v.parameters(), lr=0.0)
        results[beta] = reinforce.update(model, opt, vf, batch, cfg)
    # returns with gamma 0.5: episode 0: G = [-1.75, -1.5, -1]; episode 1: G = [-51, -100]
    m = torch.as_tensor(batch.valid)
    o, a = torch.as_tensor(obs)[m], torch.as_tensor(batch.actions)[m]
    G = torch.tensor([-1.75, -51.0, -1.5, -100.0, -1.0])
    with torch.no_grad():
        b = model.value(o)
        adv = (G - b) / ((G - b).std() + 1e-8)
        expected = -(model.log_prob(o, a) * adv).mean()
        ent = model.entropy(o).mean()
    assert results[0.0]["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert results[0.5]["loss"] == pytest.approx(float(expected - 0.5 * ent), rel=1e-5)
    assert results[0.5]["entropy"] == pytest.approx(float(ent), rel=1e-6)


def test_cliffwalk_train_smoke_and_stop_button():
    from lecturekit.applications import cliffwalk
    from lecturekit.evaluation import Run

    events = []
    h = cliffwalk.train(cliffwalk.config(n_episodes=4), Run(steps=2000, seed=0, eval_every=1000,
                        callback=lambda e: events.append(e) or len(events) < 1))
    assert h.stopped == "user" and len(events) == 1 and h.env == cliffwalk.TRAIN_ENV
    assert h.config["entropy_coef"] == 0.1
    cells, ret, reached = cliff.greedy_path(cliffwalk.greedy_policy(h))
    assert cells[0] == cliff.START and len(cells) <= 101
