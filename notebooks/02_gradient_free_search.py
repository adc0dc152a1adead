# %% [markdown]
# # 02 · Gradient-free policy search on CartPole
#
# Lecture part 1, "Gradient-Free Policy Optimization". A policy is just a parameter vector $\theta$, and its return
# $F(\theta)$ can be measured by running it. That is enough to improve it without any gradient of the policy:
# propose parameter vectors, run them, keep or imitate the good ones. We compare five such methods on
# CartPole-v1 with a linear policy, all implemented in `lecturekit.algos.gradient_free`.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

# %% jupyter={"source_hidden": true}
import matplotlib.pyplot as plt
import numpy as np

from lecturekit.course import live
from lecturekit.algos import gradient_free as gf
from lecturekit.envs import make_vec
from lecturekit.evaluation import Run
from lecturekit.policies import LinearPolicy

# %% [markdown]
# ## 1. The search space: linear policies
#
# CartPole's observation is $s = (x, \dot x, \vartheta, \dot\vartheta)$ (cart position and velocity, pole angle and
# angular velocity) and there are two actions (push left, push right). A linear policy scores both actions with
# $W s + b$ and takes the larger: $a = \arg\max_a (W s + b)_a$, so $\theta = (W, b)$ has $2 \times (4 + 1) = 10$
# numbers. The fitness $F(\theta)$ of a candidate is the return of one episode (at most 500).
#
# Each method evaluates a whole population at once: candidate $i$ drives copy $i$ of Gymnasium's vectorised
# CartPole, so one `step` call advances every candidate. How good is a random guess?

# %%
policy = LinearPolicy(obs_dim=4, n_out=2)
assert policy.n_params == 2 * (4 + 1) == 10  # W (2 x 4) and b (2): ten parameters (erratum E7)
envs = make_vec("CartPole-v1", 1024)
guesses = np.random.default_rng(0).uniform(-1, 1, size=(1024, policy.n_params))
returns, steps = gf.population_returns(envs, policy, guesses, seed=0)
envs.close()
plt.figure(figsize=(5, 2.5))
plt.hist(returns, bins=25)
plt.xlabel("return of one episode")
plt.ylabel("random linear policies")
plt.yscale("log")
plt.show()
print(f"median return {np.median(returns):.0f}; {np.mean(returns >= 475):.1%} of 1024 random guesses reach 475; "
      f"{steps:,} environment steps")
assert np.median(returns) < 100 and returns.max() >= 475  # most guesses are bad, a few are already excellent

# %% [markdown]
# Most guesses let the pole fall within about ten steps, but a few in a thousand already balance it for the full
# 500 steps: CartPole with a linear policy is an easy search problem, which is why it suits a first comparison. (One lucky episode is not a solved task, though: "solved"
# here means a mean return of at least 475 over 20 separate evaluation episodes.)
#
# ## 2. Five ways to search
#
# | method | one generation | what it keeps |
# |---|---|---|
# | hill climbing | perturb the current $\theta$: $\theta + \sigma\varepsilon_i$, $\varepsilon_i \sim \mathcal N(0, I)$ | the best perturbation if it beats $\theta$; $\sigma$ halves after a success and doubles after a failure |
# | random search | draw fresh $\theta_i \sim U[-1, 1]^D$, independent of the past | the best $\theta$ seen so far |
# | evolution strategies | $\theta \pm \sigma\varepsilon_i$ (mirrored pairs) | moves $\theta$ along $\frac{1}{P\sigma}\sum_i \tilde F_i \varepsilon_i$, a smoothed-gradient estimate built from fitness ranks $\tilde F_i$ |
# | cross-entropy method | $\theta_i \sim \mathcal N(\mu, \mathrm{diag}\,\sigma^2)$ | refits $\mu, \sigma$ to the top 20 % (the elite), plus a little extra $\sigma$ so the search does not freeze |
# | finite differences | $\theta \pm h e_k$ for each coordinate $k$ | steps along $g_k = \frac{F(\theta + h e_k) - F(\theta - h e_k)}{2h}$ |
#
# Hill climbing and random search re-run their current best every generation and judge it by its average, so a
# single lucky episode cannot crown a mediocre policy. ES and finite differences both estimate a gradient of the
# return with respect to $\theta$, without ever differentiating the policy: ES from random directions, finite
# differences one coordinate at a time (and $2D$ probes per step, each averaged over 4 episodes). CEM never forms
# a gradient at all: it moves a distribution toward where the good samples were.
#
# ## 3. The cross-entropy method, live
#
# The defaults (population 64, top 20 %, extra standard deviation 0.1) solve CartPole in a few generations.
# Change the knobs and press Train to see how the population size and the elite fraction trade speed for
# reliability.

# %%
from lecturekit.evaluation import Run

cem_history = live.demo(gf.train_cem, "CartPole-v1", gf.CEMConfig(),
                        knobs={"population": (16, 256, 16), "elite_frac": (0.05, 0.5, 0.05),
                               "extra_std": (0.0, 0.5, 0.05)},
                        run=Run(steps=100_000, seed=0, target=475.0, eval_every=2000),
                        title="CEM on CartPole-v1 (linear policy)")

# %%
print(cem_history.summary())
assert cem_history.solved and cem_history.final_return >= 475  # mean over 20 deterministic evaluation episodes
assert cem_history.solved_at_steps <= 60_000

# %% [markdown]
# ## 4. All five, three seeds each
#
# Same task, same step budget (100 000 environment steps per run), three seeds per method. A run stops as soon as
# its mean evaluation return (20 episodes, every 2 500 steps) reaches 475; in the plot a finished run keeps its
# last evaluation. The line is the median over seeds, the band spans the best and the worst seed.

# %% jupyter={"source_hidden": true}
BUDGET, SEEDS = 100_000, (0, 1, 2)
runs = {name: [gf.search(name, "CartPole-v1", run=Run(steps=BUDGET, seed=s, target=475.0, eval_every=2500))
               for s in SEEDS]
        for name in gf.METHODS}

# %% jupyter={"source_hidden": true}
grid = np.linspace(0, BUDGET, 201)


def curve(h):
    """Evaluation return on the grid: the latest evaluation at or before each step (0 before the first one)."""
    idx = np.searchsorted(h.eval_steps, grid, side="right") - 1
    return np.where(idx >= 0, h.eval_means[np.maximum(idx, 0)], 0.0)


plt.figure(figsize=(8, 4))
for i, (name, hs) in enumerate(runs.items()):
    c = np.array([curve(h) for h in hs])
    plt.plot(grid, np.median(c, 0), color=f"C{i}", label=name)
    plt.fill_between(grid, c.min(0), c.max(0), color=f"C{i}", alpha=0.15)
plt.axhline(475, color="k", ls="--", lw=1, label="target 475")
plt.xlabel("environment steps")
plt.ylabel("mean evaluation return (20 episodes)")
plt.legend(fontsize=8)
plt.show()

table = []
print(f"{'method':<18}{'solved':>8}{'median steps to solve':>24}{'median wall s':>15}{'best return':>13}")
for name, hs in runs.items():
    solved = [h for h in hs if h.solved]
    steps = np.median([h.solved_at_steps for h in solved]) if solved else np.inf
    secs = np.median([h.solved_at_s for h in solved]) if solved else np.inf
    best = max(h.best_return for h in hs)
    table.append((name, len(solved), steps, secs, best))
    print(f"{name:<18}{len(solved):>6}/3{steps:>24,.0f}{secs:>15.2f}{best:>13.1f}")

# %% [markdown]
# Wall seconds count training and evaluation from the start of each run; they depend on the machine and its load,
# so compare them within this table only.
#
# What the comparison shows, checked below:
# - CEM solves every seed within a few generations: it imitates a whole elite rather than a single winner, so one
#   lucky episode moves it only a little;
# - every method ends far above the random guesses of section 1, most of them at the full 500;
# - finite differences is the slowest: it pays $2D = 20$ probes (80 episodes) for each small step. In higher
#   dimensions that cost grows with $D$, while ES and CEM keep a fixed population.
#
# Hill climbing can be the quickest of all when its first perturbations happen to be good, and random search
# lives on luck in the same way; their step counts vary most from seed to seed. Rerun the cell above with other
# seeds to see it.

# %%
res = {name: {"solved": n, "steps": steps, "best": best} for name, n, steps, secs, best in table}
assert res["cem"]["solved"] == 3 and res["cem"]["steps"] < 50_000
assert all(r["best"] >= 300 for r in res.values())
assert res["finite_difference"]["steps"] == max(r["steps"] for r in res.values())

# %% [markdown]
# **Why learn gradients at all, then?** For ten parameters, search is hard to beat. But the number of probes a
# search needs grows with the number of parameters, and a neural-network policy has thousands; the returns of the
# candidates also tell a search nothing about *which actions* in an episode were good. The policy gradient
# (notebook 03) uses exactly that information: it credits individual decisions through $\nabla \log \pi$.
#
# The same methods run from a terminal, for any seed or budget:
# `python -m lecturekit train cem --env CartPole-v1 --target 475 --seed 3`.

# %% [markdown]
# ## 5. When the parameters multiply: CartPole with noise features (recorded runs)
#
# The lecture's argument against search is the number of parameters. To test it without changing the task, give
# CartPole $D$ extra observation features of pure noise, $\mathcal{N}(0, 1)$ at every step
# (`lecturekit/CartPoleDistractors-v0`). The best policy ignores them, so the task is exactly as hard as before, but
# the linear policy now has $(4 + D + 1) \times 2$ parameters: 10 for $D = 0$, 138 for $D = 64$. Every search
# direction that moves a noise weight only adds random kicks to the actions.
#
# `make bench-hard` (`bench/hard.py`) ran CEM (linear policy, as above) and REINFORCE (the course's default: a
# 64x64 network with a learned value baseline, 16 episodes per update) with 3 seeds each, 200,000 steps, on $D = 0$
# and $D = 64$, evaluating every 5,000 steps (10 episodes, deterministic actions; target 475).

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import lecturekit as lk

HARD_FILE = Path(lk.__file__).resolve().parent.parent / "bench" / "hard" / "results.json"
hard = json.loads(HARD_FILE.read_text())
gf_runs = [r for r in hard["runs"] if r["experiment"] == "gradient_free_vs_reinforce"]
print(f"recorded {hard['meta']['date']} on {hard['meta']['machine']} (commit {hard['meta']['commit']})")
envs = list(dict.fromkeys(r["env"] for r in gf_runs))
fig, axes = plt.subplots(1, len(envs), figsize=(11, 3.2), sharey=True)
steps_to = {}
for ax, env in zip(axes, envs):
    d = int(env.split("n_distractors")[1].split("-")[0])
    for color, v in zip(["C0", "C1"], dict.fromkeys(r["variant"] for r in gf_runs)):
        rs = [r for r in gf_runs if r["env"] == env and r["variant"] == v]
        steps_to[d, v] = [r["steps_to_target"] for r in rs]
        for i, r in enumerate(rs):
            x, y = np.array(r["evals"]).T
            ax.plot(x, y, color=color, lw=1, label=v if i == 0 else None)
    ax.axhline(475, color="k", ls="--", lw=1)
    ax.set_title(f"D = {d} noise features", fontsize=10)
    ax.set_xlabel("environment steps")
axes[0].set_ylabel("eval return")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()
best = {}
for (d, v), s in steps_to.items():
    best[d, v] = [max(m for _, m in r["evals"]) for r in gf_runs if r["variant"] == v and f"n_distractors{d}-" in r["env"]]
    print(f"D = {d:>2}  {v:<20} steps to 475 per seed: {s}, best evaluation per seed: {best[d, v]}")
CEM, PG = "CEM (linear policy)", "REINFORCE"
assert all(s is not None for s in steps_to[0, CEM] + steps_to[0, PG])  # D = 0: both solve CartPole
assert max(best[64, CEM]) < 100  # D = 64: CEM has not started to learn after 200,000 steps
assert min(best[64, PG]) > 2 * max(best[64, CEM])  # REINFORCE has, with far more parameters
assert all(s is None for s in steps_to[64, PG])  # but it has not reached 475 either
assert max(steps_to[0, CEM]) < 26_000 and max(steps_to[0, PG]) < 33_000  # the step ranges quoted below
assert 45 < min(best[64, CEM]) and max(best[64, CEM]) < 80 and 260 < min(best[64, PG]) and max(best[64, PG]) < 360

# %% [markdown]
# **What the runs show.** Without noise features both methods reach 475 within about 33,000 steps (CEM in 15,000
# to 26,000, REINFORCE in 17,000 to 33,000). With 64 of them CEM, searching 138 parameters, is still where it started
# after 200,000 steps (best evaluations 47 to 79), while REINFORCE climbs to best evaluations of 260 to 360.
# REINFORCE's network has about 8,700 policy parameters, sixty times as many as CEM's linear policy, yet the gradient
# tells it which of them mattered for the actions taken; the search only learns which candidates scored higher.
# The noise features slow REINFORCE down too (neither method reaches 475 within 200,000 steps), so the honest
# summary is: both pay for irrelevant inputs, and the search pays far more. Three seeds each, one value of $D$.

# %% [markdown]
# A short live run of CEM alone, seed 0, at most 40,000 steps on each (a few seconds): with the ten parameters
# of plain CartPole it reaches 475 quickly; with 64 noise features it has not started to learn.

# %%
import gymnasium as gym

import lecturekit.envs  # noqa: F401  (registers lecturekit/CartPoleDistractors-v0)
from lecturekit.algos import gradient_free as gf
from lecturekit.evaluation import Run

live_best = {}
for d in (0, 64):
    env_id = f"lecturekit/CartPoleDistractors-n_distractors{d}-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point="lecturekit.envs.phenomena:make_cartpole_distractors",
                     max_episode_steps=500, kwargs={"n_distractors": d})
    h = gf.train_cem(env_id, run=Run(steps=40_000, seed=0, target=475.0, eval_every=5_000, eval_episodes=10))
    live_best[d] = h.best_return
    print(f"D = {d:>2}: {h.env_steps:>6,} steps, best evaluation {h.best_return:6.1f}, "
          f"{h.wall_s:.1f} s, {'reached 475' if h.solved else 'target not reached'}")
assert live_best[0] >= 475 and live_best[64] < 200
