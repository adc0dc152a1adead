# %% [markdown]
# # 08 · Applications II: a routing problem and Cliff Walking
#
# Lecture: "Policy Gradients for Combinatorial Actions", "REINFORCE Algorithm", and the start of "Deep policy
# gradient methods" (a neural softmax policy on Cliff Walking).
#
# Two problems where the policy is a neural network with a **softmax** output, trained by REINFORCE:
#
# 1. **Routing.** The action is an entire tour through 10 cities. There are $9!/2 = 181\,440$ different tours, so a
#    method that scores every action (a Q-function and its arg max) is out of the question. A policy can instead
#    *build* the tour one city at a time, each step a softmax over the cities not yet visited.
# 2. **Cliff Walking.** A 4 x 12 grid with a cliff along the bottom edge; a small network reads the one-hot code of
#    the current cell and outputs probabilities of the four moves.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import lecturekit.envs  # noqa: F401  (registers lecturekit/CliffWalkingOneHot-v0)
from lecturekit.applications import cliffwalk, routing
from lecturekit.course import live
from lecturekit.envs import cliff
from lecturekit.evaluation import Run

# %% [markdown]
# ## 1. The routing problem and its exact optimum
#
# An instance is a set of $n$ cities in the unit square; a tour visits each once and returns to the start; its
# cost is its length $L$. We want a policy that, given the cities, outputs a short tour.
#
# To know how good the learned tours are we need the optimum. Trying all $(n-1)!$ orders is fine for 8 cities
# (5 040 tours) but grows fast. The **Held-Karp** dynamic program does better: let $D(S, j)$ be the length of the
# shortest path that leaves city 0, visits exactly the set $S$ and stops at $j \in S$. Then
#
# $$D(\{j\}, j) = d(0, j), \qquad D(S, j) = \min_{k \in S\setminus\{j\}} D(S \setminus \{j\}, k) + d(k, j),
# \qquad L^\star = \min_j D(\{1..n-1\}, j) + d(j, 0),$$
#
# which costs $O(2^n n^2)$ instead of $O(n!)$: for 10 cities about $2^9 \cdot 9 \cdot 9 \approx 41\,000$ additions
# instead of $9! = 362\,880$ orders of 10 legs each, and it stays feasible up to about 16 cities.

# %%
coords8 = routing.random_instances(20, 8, seed=1)
hk8, _ = routing.held_karp(coords8)
bf8 = np.array([routing.brute_force_tsp(c)[0] for c in coords8])
assert np.allclose(hk8, bf8)  # the dynamic program agrees with trying every tour

test_coords = routing.random_instances(256, 10, seed=2026)  # held out: never seen in training or validation
t0 = time.perf_counter()
test_opt, test_tours = routing.held_karp(test_coords)
print(f"Held-Karp: 256 instances of 10 cities in {time.perf_counter() - t0:.2f} s; mean optimal length "
      f"{test_opt.mean():.3f}")

nn_gap = routing.optimality_gap(routing.tour_length(test_coords, routing.nearest_neighbour_tours(test_coords)), test_opt)
rng = np.random.default_rng(0)
random_tours = np.stack([np.r_[0, 1 + rng.permutation(9)] for _ in range(256)])
random_gap = routing.optimality_gap(routing.tour_length(test_coords, random_tours), test_opt)
print(f"gap of a random tour: {random_gap:.1f} %;  nearest-neighbour heuristic: {nn_gap:.1f} %")
assert random_gap > 50 and 5 < nn_gap < 20

# %% [markdown]
# ## 2. A policy that builds tours
#
# The tour is generated city by city, so its probability factorises into a chain of softmax choices:
#
# $$\pi_\theta(\tau \mid x) = \prod_{t=1}^{n-1} \pi_\theta(c_t \mid x, c_0, \dots, c_{t-1}),$$
#
# and $\log \pi_\theta(\tau \mid x)$ is the sum of the log-probabilities of the individual choices. The network
# (`routing.PointerPolicy`, about 60k parameters) has two parts:
#
# - an **encoder**: each city's coordinates are embedded in 64 dimensions and mixed by one self-attention layer, so
#   that a city's embedding knows about its neighbours;
# - a **pointer decoder**: at each step a query made of (the whole instance, the first city, the current city)
#   attends to the cities and scores each of them; cities already visited get score $-\infty$ (**masking**), so every
#   sampled sequence is a valid tour and the softmax never wastes probability on illegal moves.
#
# The tour starts at city 0 (a closed tour can start anywhere), so there are $n - 1$ decisions.

# %%
torch.manual_seed(0)
untrained = routing.PointerPolicy()
tours, logp = untrained(torch.as_tensor(test_coords[:4]), n_samples=3)
print("three tours sampled for instance 0:\n", tours[:3].numpy())
assert all(sorted(t) == list(range(10)) for t in tours.tolist())  # masking: each city exactly once
print(f"untrained policy: log pi(tour) = {logp[0].item():.1f}, uniform over 9! tours would be {-np.log(362880):.1f}")

# %% [markdown]
# ## 3. REINFORCE with a baseline from the other samples
#
# The reward of an episode is $-L(\tau)$, so the REINFORCE estimate of the gradient of $\mathbb E[-L]$ is
# $-\,(L(\tau) - b)\,\nabla_\theta \log \pi_\theta(\tau \mid x)$: tours shorter than the baseline $b$ become more
# likely, longer ones less likely. The baseline matters a lot here, because instances differ: a tour of length 3.0
# is excellent on one instance and poor on another. So the baseline should be **per instance**. We sample $K = 8$
# tours for each instance and compare each with the mean of the *other* seven,
#
# $$b_{ik} = \frac{1}{K-1} \sum_{j \neq k} L(\tau_{ij}),$$
#
# which does not depend on $\tau_{ik}$ itself, so it leaves the gradient unbiased (the argument of the baseline
# section in notebook 05). Alternatives implemented in `routing.train`: the length of the policy's own *greedy* tour
# (`baseline="greedy"`) and the batch mean over all instances (`baseline="mean"`, which ignores how hard each
# instance is). Each update uses 64 fresh random instances.
#
# Training stops when the greedy tours of a validation set of 128 instances are within 4 % of optimal; the claim
# is then checked on the 256 held-out test instances above. The curve shows **minus** the validation gap (in %),
# so that up is better, as for returns.

# %%
val_coords = routing.random_instances(128, 10, seed=77)
val = (val_coords, routing.held_karp(val_coords)[0])


def train_routing(callback, lr=2e-3, baseline="loo", samples=8, updates=500, seed=0):
    cfg = routing.RoutingConfig(lr=lr, baseline=baseline, samples=samples)
    run = Run(steps=updates * cfg.batch, seed=seed, target=-4.0, eval_every=25 * cfg.batch, callback=callback)
    return routing.train(cfg, run, val=val)  # steps count instances; the target is minus the gap in %


tsp_history = live.demo(train_routing,
                        knobs={"lr": (2e-4, 5e-3, 1e-4, 2e-3), "baseline": ["loo", "greedy", "mean"],
                               "samples": (2, 16, 1, 8), "updates": (50, 2000, 50, 500), "seed": (0, 9, 1, 0)},
                        total_steps=500 * 64, target=-4.0, title="routing: minus the validation gap (%)")

# %%
policy = tsp_history.model
greedy_len = routing.tour_length(test_coords, policy.greedy_tours(test_coords))
test_gap = routing.optimality_gap(greedy_len, test_opt)
best16_gap = routing.optimality_gap(routing.tour_length(test_coords, policy.best_of_samples(test_coords, 16)), test_opt)
print(f"trained for {tsp_history.env_steps // 64} updates ({tsp_history.env_steps:,} instances) in "
      f"{tsp_history.wall_s:.1f} s")
print(f"held-out gap: greedy tour {test_gap:.2f} %, best of 16 sampled tours {best16_gap:.2f} %, "
      f"nearest neighbour {nn_gap:.2f} %")
assert tsp_history.solved
assert test_gap < 5.0 and test_gap < nn_gap
assert best16_gap < test_gap

# %% [markdown]
# Nothing in the network depends on the number of cities (attention works on sets of any size), so the policy
# trained on 10 cities can be tried on the smaller instances of the lecture's range, 8 and 9 cities, unchanged.

# %%
for n in (8, 9):
    coords_n = routing.random_instances(256, n, seed=2026 + n)
    opt_n, _ = routing.held_karp(coords_n)
    gap_n = routing.optimality_gap(routing.tour_length(coords_n, policy.greedy_tours(coords_n)), opt_n)
    nn_n = routing.optimality_gap(routing.tour_length(coords_n, routing.nearest_neighbour_tours(coords_n)), opt_n)
    print(f"{n} cities (256 held-out instances): greedy gap {gap_n:.2f} %, nearest neighbour {nn_n:.2f} %")
    assert gap_n < 5.0

# %% [markdown]
# The learned tours next to the optimal ones, for six test instances.

# %%
fig, axes = plt.subplots(2, 6, figsize=(13, 4.6))
learned = policy.greedy_tours(test_coords[:6])
for i in range(6):
    for row, (tour, name, length) in enumerate([(learned[i], "learned", greedy_len[i]),
                                                (test_tours[i], "optimal", test_opt[i])]):
        ax = axes[row, i]
        pts = test_coords[i][np.r_[tour, tour[0]]]
        ax.plot(pts[:, 0], pts[:, 1], "-", color="C0" if row == 0 else "C2")
        ax.scatter(test_coords[i][:, 0], test_coords[i][:, 1], s=12, color="k", zorder=3)
        ax.scatter(*test_coords[i][0], s=40, color="C3", zorder=4)
        ax.set_title(f"{name}: {length:.3f}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([]), ax.set_aspect("equal")
plt.tight_layout(), plt.show()

# %% [markdown]
# What to take from this: nothing in the training loop knows what a tour is. The policy only needs to (1) sample a
# structured action step by step with a mask for the constraints and (2) report the log-probability of what it
# sampled; REINFORCE does the rest. That is why policy gradients are the method of choice for routing, scheduling
# and other combinatorial decisions.

# %% [markdown]
# ## 4. Cliff Walking with a neural softmax policy
#
# Gymnasium's `CliffWalking-v1`: start S at the bottom left, goal G at the bottom right, the cells between them are
# a cliff. Every move costs $-1$; stepping into the cliff costs $-100$ and sends the walker back to S (the episode
# goes on); reaching G ends the episode. The shortest path runs along the edge of the cliff (13 moves, return
# $-13$); paths one or two rows higher cost $-15$ or $-17$ but keep a distance from the edge.
#
# The policy is a network with one hidden layer of 32 units that reads the **one-hot** vector of the current cell
# (48 inputs) and outputs a softmax over the four moves: $\pi_\theta(a\mid s) = \text{softmax}(f_\theta(e_s))_a$.
# With one-hot inputs the first layer gives each cell its own weights, but everything after it is shared by all
# cells. That sharing is what distinguishes it from a table of action preferences, and it is why this problem is
# harder for a network than for a table. The environment `lecturekit/CliffWalkingOneHot-v0` adds the one-hot
# observation and a limit of 100 steps per episode, so that a walker that never finds the goal still finishes.
#
# ### Plain REINFORCE gets stuck
#
# First, REINFORCE with a learned value baseline, nothing else. Early on, falling off the cliff ($-100$) is by far
# the strongest signal, and the cheapest way for the network to avoid it is with its shared weights: "move up" (or
# "left") in *every* cell. The walker ends up pinned against the top or left wall, every episode runs into the time
# limit without reaching G, and a batch in which every episode ends the same way carries almost no information about
# where the goal is. (We saw this with several step sizes, discounts, time limits and network sizes, in runs of up to 280 000 steps.)

# %%
plain = live.watch(lambda cb: cliffwalk.train(cliffwalk.config(entropy_coef=0.0),
                                              Run(steps=60_000, seed=0, eval_every=20_000, callback=cb),
                                              exploring_starts=False),
                   total_steps=60_000, target=-17, title="plain REINFORCE on Cliff Walking")
plain_cells, plain_ret, plain_reached = cliff.greedy_path(cliffwalk.greedy_policy(plain))
moves = np.bincount(cliff.greedy_actions(cliffwalk.greedy_policy(plain))[:3].ravel(), minlength=4)
print(f"plain REINFORCE after {plain.env_steps:,} steps: greedy walk reaches the goal: {plain_reached}; mean return "
      f"of the last batch {plain.logs['episode_return'][-1]:.0f}; greedy moves in the top three rows "
      f"(up, right, down, left): {moves.tolist()}")
assert not plain_reached

# %% [markdown]
# ### Two small changes
#
# `lecturekit.applications.cliffwalk` runs the same REINFORCE (`lecturekit.algos.reinforce`: episodes, returns-to-go, the loss,
# the value baseline) with two changes:
#
# - **exploring starts** during training: each episode starts in a random cell
#   (`lecturekit/CliffWalkingExploringStarts-v0`). Episodes that start near G reach it, and the policy learns how to
#   finish first and then, cell by cell, how to get there. The learned policy is still judged from S.
# - an **entropy bonus** (REINFORCE's `entropy_coef`): the loss gets $-\beta\, \mathbb E_t[H(\pi_\theta(\cdot\mid s_t))]$
#   with $\beta = 0.1$,
#   which keeps the softmax from collapsing onto a single move before the goal has been found. (Entropy
#   regularisation returns with SAC at the end of the lecture.)
#
# Training stops when the greedy walk from S reaches G with a return of at least $-17$. We needed both changes:
# with exploring starts alone the softmax still collapsed onto one move (no goal after 100 000 steps), with the
# entropy bonus alone the walker from S had not found the goal after 200 000 steps; with both, seeds 0, 1 and 2
# reached the target after 90 000 to 100 000 steps.

# %%
CLIFF_STEPS = 300_000


def train_cliff(callback, lr=1e-2, entropy_coef=0.1, exploring_starts=True, seed=0):
    run = Run(steps=CLIFF_STEPS, seed=seed, target=cliffwalk.TARGET, eval_every=10_000, callback=callback)
    return cliffwalk.train(cliffwalk.config(lr=lr, entropy_coef=entropy_coef), run, exploring_starts=exploring_starts)


cliff_history = live.demo(train_cliff,
                          knobs={"lr": (1e-3, 3e-2, 1e-3, 1e-2), "entropy_coef": (0.0, 0.3, 0.01, 0.1),
                                 "exploring_starts": True, "seed": (0, 9, 1, 0)},
                          total_steps=CLIFF_STEPS, target=-17, title="REINFORCE on Cliff Walking (greedy return from S)")

# %%
cliff_act = cliffwalk.greedy_policy(cliff_history)
cells, ret, reached = cliff.greedy_path(cliff_act)
print(f"greedy path: {len(cells) - 1} moves, return {ret:.0f}, reached the goal: {reached}; "
      f"trained {cliff_history.env_steps:,} steps in {cliff_history.wall_s:.1f} s")
assert cliff_history.solved and reached and ret >= -17

fig, axes = plt.subplots(1, 2, figsize=(13, 3))
logs = cliff_history.logs
axes[0].plot(logs["env_steps"], logs["episode_return"])
axes[0].set_xlabel("environment steps"), axes[0].set_ylabel("mean return of a batch (random starts)")
axes[0].set_title("learning curve")
cliff.draw_cliff(axes[1], cells, cliff.greedy_actions(cliff_act), title=f"learned path from S (return {ret:.0f})")
plt.tight_layout(), plt.show()

# %% [markdown]
# Depending on the seed, the greedy walk runs one row above the edge (return $-15$) or right along it ($-13$). Note
# what policy gradient optimises: the return of the *stochastic* policy it samples from. While that policy still
# explores, cells next to the edge are risky (one random step down costs $-100$), which is why on-policy methods
# such as this one and Sarsa (Sutton and Barto, Example 6.6) tend to learn paths that keep some distance from the
# cliff, while Q-learning, which evaluates the greedy policy, learns the edge path. The greedy walk drawn here is
# the mean behaviour of a policy that is still partly random.
