# %% [markdown]
# # 07 · Applications I: dynamic pricing and inventory control
#
# Lecture: "Example: Dynamic Pricing with Policy Gradient", "Example: Inventory Control with Policy Gradient",
# "Policy Parametrizations" (Gaussian policy for continuous actions), "Variance Reduction By Baseline".
#
# Two small operations-research problems with a **continuous action** (a price, an order quantity), solved with the
# Gaussian-policy REINFORCE of notebooks 04-06. Both are Gymnasium environments in `lecturekit.envs`, and for both
# we have an independent benchmark to measure the learned policy against:
#
# | problem | action | benchmark |
# |---|---|---|
# | `lecturekit/DynamicPricing-v0` | price of the period | the exact optimum, by dynamic programming |
# | `lecturekit/InventoryControl-v0` | order quantity | the best base-stock (order-up-to) policy, by search |

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np

import lecturekit.envs  # noqa: F401  (registers the course environments)
from lecturekit.course import live
from lecturekit.algos import reinforce
from lecturekit.evaluation import Run
from lecturekit.envs import inventory, pricing

# %% [markdown]
# ## 1. Dynamic pricing
#
# A seller has $C = 10$ units and $T = 20$ periods to sell them; what is unsold at the end is worth nothing
# (seats on a flight, hotel rooms for a date, tickets for a concert). In each period it sets a price $p$; the number
# of buyers who accept that price is random, Poisson with a rate that falls with the price,
#
# $$D \sim \text{Poisson}(\lambda(p)), \qquad \lambda(p) = a\, e^{-b p} \quad (a = 3,\ b = 1),$$
#
# and it sells $\min(D, x)$ when $x$ units are left. The state is (periods left $k$, units left $x$); the reward is the
# period's revenue $p \cdot \min(D, x)$. (The lecture's state also mentions past demand and competitor prices; in
# this model demand does not depend on the past and there is no competitor, so $(k, x)$ is all there is to know.)
#
# The trade-off: a low price sells now but may leave nothing for later buyers who would pay more; a high price
# protects the stock but risks ending the season with unsold units.

# %%
env = gym.make("lecturekit/DynamicPricing-v0")
print(env.unwrapped.__doc__.split("\n\n")[1])
obs, _ = env.reset(seed=0)
total = 0.0
for t in range(20):  # a naive seller: always price 2.0
    obs, r, terminated, truncated, info = env.step(np.array([2.0], dtype=np.float32))
    total += r
    if terminated:
        break
print(f"price 2.0 every period: revenue {total:.1f}, sold out after {t + 1} periods: {info['units_left'] == 0}")

# %% [markdown]
# ### The exact optimum by dynamic programming
#
# Because the state space is small ($20 \times 10$) and the demand distribution is known, Bellman's equation can be
# solved exactly, backwards from the end of the season. With $V_0(x) = 0$ and $V_k(0) = 0$:
#
# $$V_k(x) = \max_p \sum_{s=0}^{x} P(\text{sales} = s \mid p, x)\,\big(p\, s + V_{k-1}(x - s)\big),$$
#
# where the sales distribution is the Poisson probabilities for $s < x$ and the tail $P(D \ge x)$ for $s = x$.
# `pricing.solve_pricing` maximises over $p$ on a fine grid and refines with a golden-section search.
# This is the benchmark: **no** policy can earn more than $V_T(C)$ in expectation.

# %%
sol = pricing.solve_pricing()
V_opt = sol.optimal_revenue
p_fixed, V_fixed = pricing.best_fixed_price()
print(f"optimal expected revenue V_T(C) = {V_opt:.3f}")
print(f"best single price for the whole season: {p_fixed:.2f}, revenue {V_fixed:.3f} = {V_fixed / V_opt:.1%} of optimal")
assert V_fixed < V_opt
# the optimal price rises when stock is scarce and falls as the season runs out
assert np.all(np.diff(sol.price[1:, 1:], axis=1) <= 1e-6) and np.all(np.diff(sol.price[1:, 1:], axis=0) >= -1e-6)

fig, ax = plt.subplots(figsize=(6, 3.4))
im = ax.imshow(sol.price[1:, 1:].T, origin="lower", aspect="auto", extent=[0.5, 20.5, 0.5, 10.5], cmap="viridis")
ax.set_xlabel("periods left k"), ax.set_ylabel("units left x"), ax.set_title("optimal price p*(k, x)")
fig.colorbar(im, ax=ax)
plt.tight_layout(), plt.show()

# %% [markdown]
# A good fixed price already earns most of the optimum: with Poisson demand, adjusting the price to the remaining
# stock and time is worth a few percent here. Those few percent are what the learned policy has to find, so the
# target below (95 % of the optimum) sits *between* the fixed prices that are slightly off and the optimum.

# %% [markdown]
# ### REINFORCE with a Gaussian price policy
#
# The policy is a small network $\mu_\theta(k/T, x/C)$ for the mean and a learned, state-independent standard
# deviation: $a \sim \mathcal N(\mu_\theta(s), \sigma^2)$, and the price is $a$ mapped linearly from $[-1, 1]$ onto
# the allowed range $[0, 4]$ (and clipped). The gradient of $\log \pi$ with respect to the mean is
# $(a - \mu)/\sigma^2$: a price that turned out better than the baseline pulls the mean towards itself.
#
# Settings: 32 seasons per update, Adam step 2e-3, a learned value baseline, and a fairly small initial exploration
# noise, $\sigma = e^{-1.5} \approx 0.22$ in $[-1, 1]$ units (about 0.45 in price). With the defaults that solve
# CartPole (step 1e-2, $\sigma \approx 0.6$, 16 seasons per update) we measured 94 % of the optimum: the revenue curve
# is flat near its top and the estimate is noisy, so a large step keeps the mean price jittering around the optimum.
# The knobs let you try this.
#
# The learned policy is judged with its **mean** price (no exploration noise), exactly: `policy_price_table` asks
# the network for its price in each of the 200 states, and `evaluate_price_table` runs the same backward recursion
# as the DP with that fixed rule instead of the max. No sampling noise in the verdict.

# %%
PRICING_STEPS = 120_000


from lecturekit.evaluation import Run

pricing_history = live.demo(reinforce.train, "lecturekit/DynamicPricing-v0",
                            reinforce.Config(lr=2e-3, n_episodes=32, log_std_init=-1.5),
                            knobs={"lr": (5e-4, 2e-2, 5e-4), "n_episodes": (8, 128, 8),
                                   "baseline": ["value", "mean", "none"], "log_std_init": (-3.0, 0.0, 0.5),
                                   "seed": (0, 9)},
                            run=Run(steps=PRICING_STEPS, seed=0, eval_every=20_000, eval_episodes=50),
                            target=0.95 * V_opt,
                            title="REINFORCE on dynamic pricing (eval: mean revenue of 50 seasons)")

# %%
act_space = gym.make("lecturekit/DynamicPricing-v0").action_space
learned = reinforce.Policy(pricing_history.model, act_space)
table = pricing.policy_price_table(learned.greedy)
V_learned = pricing.evaluate_price_table(table)
print(f"learned policy: expected revenue {V_learned:.3f} = {V_learned / V_opt:.1%} of the optimum "
      f"(best fixed price: {V_fixed / V_opt:.1%}); trained {pricing_history.env_steps:,} steps "
      f"in {pricing_history.wall_s:.1f} s")
assert V_learned >= 0.95 * V_opt

# %% [markdown]
# ### The learned price path against the optimal one
#
# Along a season, the expected price charged in each period (averaged over the seasons still selling) and the
# expected stock left. The optimal policy holds the price nearly steady and cuts it sharply in the last few periods,
# when unsold units are about to become worthless. The learned policy comes within a few tenths of the optimal
# price early in the season and closer towards its middle, and cuts more gently at the end: by then few seasons
# still have stock, so those prices weigh little in the revenue and little in the gradient.

# %%
path_opt, units_opt = pricing.expected_price_path(sol.price)
path_learned, units_learned = pricing.expected_price_path(table)
fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
axes[0].plot(np.arange(1, 21), path_opt, "o-", label="optimal (DP)")
axes[0].plot(np.arange(1, 21), path_learned, "s-", label="learned (REINFORCE)")
axes[0].axhline(p_fixed, color="0.5", ls="--", label="best fixed price")
axes[0].set_xlabel("period"), axes[0].set_ylabel("expected price"), axes[0].legend()
axes[1].plot(np.arange(21), units_opt, "o-", label="optimal")
axes[1].plot(np.arange(21), units_learned, "s-", label="learned")
axes[1].set_xlabel("period"), axes[1].set_ylabel("expected units left"), axes[1].legend()
for x, ls in [(2, ":"), (5, "--"), (9, "-")]:
    axes[2].plot(np.arange(1, 21), sol.price[1:, x], ls, color="C0", label=f"optimal, x = {x}")
    axes[2].plot(np.arange(1, 21), table[1:, x], ls, color="C1", label=f"learned, x = {x}")
axes[2].set_xlabel("periods left k"), axes[2].set_ylabel("price"), axes[2].legend(fontsize=7, ncol=2)
plt.tight_layout(), plt.show()
err = np.abs(path_learned - path_opt)
print(f"largest gap between the expected price paths: {err[:15].max():.2f} in periods 1-15, {err.max():.2f} overall")
# measured on seeds 0-3: largest gap in periods 1-15 between 0.16 and 0.34, mean gap between 0.10 and 0.16
assert err[:15].max() < 0.35 and err[:15].mean() < 0.2

# %% [markdown]
# ## 2. Inventory control
#
# A shop sells one item. Each period it decides how much to order; the order arrives one period later (lead time 1);
# demand is Poisson with mean 4; demand that cannot be served is lost. Costs per period: 1 per unit ordered, 0.5 per
# unit left in stock at the end of the period, 6 per unit of lost demand. The reward is minus the cost. The state is
# (stock on hand, the order in the pipeline, periods left); the stock evolves deterministically once demand is drawn:
# $x' = \max(x + \text{arriving} - D, 0)$.
#
# **The benchmark.** Operations research has a classic rule for this problem, the **base-stock** (order-up-to)
# policy: order $q = \max(0, S - \text{inventory position})$, where the position is stock on hand plus the order in
# the pipeline. With linear costs it is optimal when unmet demand is backlogged and very close to optimal when it
# is lost. `inventory.base_stock_search` tries every level $S$ on a grid, each on the same 4 000 simulated seasons
# (common random numbers, so differences between levels are not sampling noise), and keeps the best.

# %%
bs = inventory.base_stock_search()
print(f"best base-stock level S = {bs.level}, mean reward per period {bs.mean_reward:.3f}")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(bs.levels, bs.rewards)
ax.axvline(bs.level, color="C3", ls="--", label=f"best S = {bs.level}")
ax.set_xlabel("order-up-to level S"), ax.set_ylabel("mean reward per period"), ax.legend()
ax.set_ylim(bs.mean_reward - 6, bs.mean_reward + 0.5)
plt.tight_layout(), plt.show()
assert 8 <= bs.level <= 14  # about two periods of demand (the lead time plus the period itself) plus safety stock

# %% [markdown]
# ### REINFORCE with a Gaussian order policy
#
# Same algorithm, same network shape, a different environment: the order quantity is the Gaussian action, mapped
# from $[-1, 1]$ onto $[0, 12]$. We compare the learned mean policy with the best base-stock policy on the *same*
# 4 000 fresh seasons (a different seed from the search). Costs are negative rewards, so "at least 95 % of the
# base-stock's reward" means a cost at most $1/0.95 \approx 1.053$ times the base-stock cost.

# %%
INVENTORY_STEPS = 100_000


inventory_history = live.demo(reinforce.train, "lecturekit/InventoryControl-v0",
                              reinforce.Config(lr=3e-3, n_episodes=32),
                              knobs={"lr": (5e-4, 2e-2, 5e-4), "n_episodes": (8, 128, 8),
                                     "baseline": ["value", "mean", "none"], "log_std_init": (-3.0, 0.0, 0.5),
                                     "seed": (0, 9)},
                              run=Run(steps=INVENTORY_STEPS, seed=0, eval_every=20_000, eval_episodes=50),
                              target=30 * bs.mean_reward / 0.95,
                              title="REINFORCE on inventory control (eval: mean return of 50 seasons)")

# %%
inv_space = gym.make("lecturekit/InventoryControl-v0").action_space
inv_policy = reinforce.Policy(inventory_history.model, inv_space)
r_learned = inventory.simulate_inventory(inv_policy.greedy, episodes=4000, seed=1).mean()
r_base = inventory.simulate_inventory(inventory.base_stock_policy(bs.level), episodes=4000, seed=1).mean()
ratio = r_base / r_learned  # both negative: ratio of costs, 1.0 = as good as base-stock
print(f"mean reward per period on 4000 fresh seasons: learned {r_learned:.3f}, base-stock {r_base:.3f}; "
      f"the learned policy reaches {ratio:.1%} of the base-stock reward")
assert ratio >= 0.95

# %% [markdown]
# What did the network learn? For the middle of the season, the order it places as a function of the stock on hand
# (with nothing in the pipeline and with 4 units on the way), next to the base-stock rule.

# %%
stock = np.linspace(0, 16, 81)
fig, ax = plt.subplots(figsize=(6, 3.4))
for pipe, ls in [(0.0, "-"), (4.0, "--")]:
    obs = np.column_stack([stock / 12, np.full_like(stock, pipe / 12), np.full_like(stock, 0.5)]).astype(np.float32)
    ax.plot(stock, inv_policy.greedy(obs).reshape(-1), ls, color="C1", label=f"learned, pipeline {pipe:g}")
    ax.plot(stock, inventory.base_stock_policy(bs.level)(obs), ls, color="C0", label=f"base-stock, pipeline {pipe:g}")
ax.set_xlabel("stock on hand"), ax.set_ylabel("order quantity"), ax.legend(fontsize=8)
plt.tight_layout(), plt.show()

# %% [markdown]
# The network was never told about inventory positions or order-up-to levels; it found a rule of the same shape
# (order less when more is on hand or on the way) from sampled costs alone. The point of the exercise is not that
# REINFORCE beats operations research here (it does not need to: for this problem the classical rule is known to be
# near optimal), but that the *same* algorithm and code that balanced a pole also prices a season and runs a
# warehouse, and that an independent benchmark tells us how close it gets.
