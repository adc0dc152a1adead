# %% [markdown]
# # 05 · Baselines and variance
#
# Lecture: "Variance Reduction By Baseline" and the limitations in "Summary: Vanilla Policy Gradient (REINFORCE)".
#
# REINFORCE is unbiased but noisy: a single episode's gradient can point almost anywhere, and only the average
# over many episodes points uphill. Subtracting a **baseline** $b(s_t)$ from the returns,
#
# $$\nabla_\theta J(\theta) = \mathbb E\Big[\sum_t \nabla_\theta \log \pi_\theta(a_t\mid s_t)\,\big(G_t - b(s_t)\big)\Big],$$
#
# leaves that average unchanged and can shrink the noise a lot. This notebook measures both claims on part 1's
# small MDP, where the exact gradient is known, and then looks at what the baseline does to learning on CartPole.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.tabular import estimators
from lecturekit.course import live
from lecturekit.tabular.mdp import TabularMDP, small_mdp

# %% [markdown]
# ## 1. Why a baseline cannot bias the gradient
#
# The baseline may depend on the state but not on the action taken there. Then its contribution averages out over
# the action:
#
# $$\mathbb E_{a\sim\pi(\cdot\mid s)}\big[\nabla_\theta \log\pi_\theta(a\mid s)\, b(s)\big]
#   = b(s) \sum_a \pi_\theta(a\mid s)\frac{\nabla_\theta \pi_\theta(a\mid s)}{\pi_\theta(a\mid s)}
#   = b(s)\, \nabla_\theta \sum_a \pi_\theta(a\mid s) = b(s)\,\nabla_\theta 1 = 0 .$$
#
# For a softmax policy the score of action $a$ with respect to the logits of its state is $e_a - \pi(\cdot\mid s)$;
# its average under $\pi$ is exactly zero:

# %%
logits = np.array([2.0, -1.0, 0.5])
pi = np.exp(logits) / np.exp(logits).sum()
expected_score = sum(pi[a] * (np.eye(3)[a] - pi) for a in range(3))
print("E_a[score] =", expected_score)
assert np.allclose(expected_score, 0.0, atol=1e-15)

# %% [markdown]
# A baseline that depends on the action (for example the return itself) has no such guarantee: that is why
# $b$ is a function of $s_t$ only.
#
# ## 2. Four estimators on a small MDP
#
# Part 1's MDP has 4 states, 3 actions and random rewards in $[-1, 1]$; episodes end with probability 0.1 to 0.28 per
# step. We fix a softmax policy $\theta$ and sample 20,000 episodes. On the *same* episodes we compute one gradient
# sample per episode, $g_i = \sum_t \gamma^t \nabla\log\pi(a_t\mid s_t)\,(G_t - b(s_t))$, with four baselines:
#
# | baseline | $b(s)$ |
# |---|---|
# | none | 0 |
# | constant | the average return-to-go over 500 separate pilot episodes |
# | exact $V$ | $V_\pi(s)$ from the linear solve (not available in practice) |
# | learned $V$ | the average return-to-go observed from each state in the pilot episodes (a tabular least-squares fit) |
#
# The baselines are computed from episodes that the estimate does not use, so they are constants for it (a
# baseline fitted on the same episodes would correlate with them and add a small bias).
#
# We do this twice: on the MDP as it is, and on a copy where **every step pays 1 more**, the way CartPole pays +1
# for each step the pole stays up. The second one changes the task (surviving longer is now rewarded) but not the
# fact we test: the baseline keeps the mean. It makes all returns large and positive, which is where a baseline
# helps most.

# %%
def shifted(mdp: TabularMDP, c: float) -> TabularMDP:
    """The same MDP with reward r(s, a) + c in every non-terminal state."""
    R = mdp.R.copy()
    R[~mdp.terminal] += c
    return TabularMDP(P=mdp.P, R=R, gamma=mdp.gamma, mu0=mdp.mu0, terminal=mdp.terminal)


def compare_baselines(mdp, theta, n=20_000, pilot=500):
    episodes = mdp.sample_episodes(theta, n, np.random.default_rng(0))
    pilot_eps = mdp.sample_episodes(theta, pilot, np.random.default_rng(1))
    choices = {"none": 0.0,
               "constant": estimators.mean_return_to_go(pilot_eps, mdp.gamma),
               "exact V": mdp.value(theta).numpy(),
               "learned V": estimators.monte_carlo_values(pilot_eps, mdp.gamma, mdp.n_states)}
    exact = mdp.exact_gradient(theta)
    samples = {k: estimators.per_episode_gradients(theta, episodes, mdp.gamma, reward_to_go=True, baseline=b)
               for k, b in choices.items()}
    stats = {k: estimators.estimator_stats(s, exact) for k, s in samples.items()}
    return samples, stats, exact


theta = torch.tensor(np.random.default_rng(1).normal(size=(5, 3)))
mdps = {"original": small_mdp(), "+1 per step": shifted(small_mdp(), 1.0)}
results = {name: compare_baselines(m, theta) for name, m in mdps.items()}

for name, (_, stats, exact) in results.items():
    print(f"{name} MDP: J = {float(mdps[name].J(theta)):.3f}, |exact gradient| = {float(exact.norm()):.3f}")
    print(f"  {'baseline':<10} {'variance':>9} {'vs none':>8} {'max |bias| / s.e.':>18} {'rel. error (n=20k)':>19}")
    for k, s in stats.items():
        print(f"  {k:<10} {s['variance']:9.3f} {s['variance'] / stats['none']['variance']:8.2f} "
              f"{s['bias_z']:18.2f} {s['rel_error']:19.4f}")

# %% [markdown]
# **Reading the table.** *variance* is the total variance of one episode's gradient sample (summed over the 15
# entries); *max |bias| / s.e.* is the largest distance between the 20,000-episode average and the exact gradient,
# in standard errors. For an unbiased estimator each entry's distance is about a standard normal draw, so the
# largest of 12 live entries is typically between 1 and 3.
#
# - Every baseline leaves the mean where it was: all four averages sit within sampling error of the exact gradient.
# - On the original MDP the returns already hover around 0, so there is little to subtract: the baselines remove
#   only a few percent of the variance.
# - With +1 per step, returns are around 4 and the no-baseline estimator is about three times as noisy; any of the
#   baselines removes most of that. The values $V(s)$ of the four states are close to each other here, so the
#   state-dependent baseline buys only a little beyond the constant; the learned $V$ is as good as the exact one.

# %%
for name, (_, stats, _) in results.items():
    for k, s in stats.items():
        assert s["bias_z"] < 4.5, (name, k, s)  # unbiased: within sampling error of the exact gradient
st = results["+1 per step"][1]
assert st["exact V"]["variance"] < 0.5 * st["none"]["variance"]
assert st["constant"]["variance"] < 0.5 * st["none"]["variance"]
assert st["exact V"]["variance"] <= st["constant"]["variance"]
assert abs(st["learned V"]["variance"] / st["exact V"]["variance"] - 1) < 0.1
so = results["original"][1]
assert so["exact V"]["variance"] < so["none"]["variance"]

# %% [markdown]
# ## 3. Variance is the error you pay per episode
#
# The estimate from $n$ episodes is the mean of $n$ independent samples, so its expected squared error is the
# per-episode variance divided by $n$ (there is no bias term): $\mathbb E\|\hat g_n - \nabla J\|^2 = \sigma^2 / n$.
# We check this by cutting the 20,000 episodes into batches of $n$, and read off what a baseline is worth: the
# number of episodes needed for a given accuracy scales with the variance.

# %%
ns = [10, 30, 100, 300, 1000]
samples, stats, exact = results["+1 per step"]
rmse = {k: [] for k in samples}
for k, s in samples.items():
    for n in ns:
        batches = s[: (len(s) // n) * n].reshape(-1, n, *s.shape[1:]).mean(1)
        rmse[k].append(float(np.sqrt(((batches - exact.numpy()) ** 2).sum((1, 2)).mean())))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
names = list(samples)
for i, mdp_name in enumerate(results):
    v = [results[mdp_name][1][k]["variance"] for k in names]
    axes[0].bar(np.arange(4) + 0.4 * i, v, width=0.4, label=f"{mdp_name} MDP")
axes[0].set_xticks(np.arange(4) + 0.2, names), axes[0].set_ylabel("variance of one episode's sample")
axes[0].set_yscale("log"), axes[0].set_ylim(0.5, None), axes[0].legend(), axes[0].set_title("variance per episode")
for j, k in enumerate(names):
    axes[1].loglog(ns, rmse[k], "o", color=f"C{j}", label=k)
    axes[1].loglog(ns, np.sqrt(stats[k]["variance"] / np.array(ns)), "-", color=f"C{j}", alpha=0.5)
axes[1].set_xlabel("episodes per estimate n"), axes[1].set_ylabel("RMS error of the estimate")
axes[1].set_title("+1 per step: measured (dots) and $\\sigma / \\sqrt{n}$ (lines)"), axes[1].legend()
plt.tight_layout(), plt.show()

for j, k in enumerate(names):
    # measured error matches sigma / sqrt(n) (within the noise of a 200-batch average at n = 100)
    assert abs(rmse[k][2] / np.sqrt(stats[k]["variance"] / 100) - 1) < 0.15, (k, rmse[k][2])
ratio = stats["none"]["variance"] / stats["learned V"]["variance"]
print(f"without a baseline you need {ratio:.1f}x as many episodes for the same accuracy as with the learned V")
assert ratio > 2

# %% [markdown]
# ## 4. Learning speed on CartPole
#
# On CartPole every step pays +1 and returns-to-go run from 1 to about 100, exactly the situation of the shifted
# MDP. We train REINFORCE (`lecturekit.algos.reinforce`, 16 episodes per update) with each baseline for 50,000
# environment steps on three seeds and evaluate the greedy policy every 5,000 steps:
#
# - `none`: $b = 0$;
# - `mean`: $b$ = the batch's average return-to-go (a constant per update);
# - `value`: a learned $V_w(s)$, a second network regressed on the returns-to-go after each update.
#
# The weights are divided by their batch standard deviation in all three (the default; it rescales the step and
# does not subtract anything). The progress bar below counts the nine runs (about half a minute in total).

# %%
from lecturekit.algos import reinforce
from lecturekit.evaluation import Run

seeds, budget = [0, 1, 2], 50_000
jobs = {(b, seed): (lambda cb, b=b, seed=seed: reinforce.train(
            "CartPole-v1", reinforce.Config(baseline=b),
            Run(steps=budget, seed=seed, eval_every=5000, eval_episodes=10, callback=cb)))
        for b in ["none", "mean", "value"] for seed in seeds}
runs = live.sweep(jobs, steps_per_run=budget, target=475, title="REINFORCE on CartPole: baseline none / mean / value")


def steps_to_solve(h, target=475):
    hit = [s for s, _, m, _ in h.evals if m >= target]
    return hit[0] if hit else None


fig, ax = plt.subplots(figsize=(7, 3.6))
print(f"{'baseline':<8} " + " ".join(f"seed {s:<8}" for s in seeds) + " solved  median steps to 475")
solved_steps = {}
for j, b in enumerate(["none", "mean", "value"]):
    x = np.arange(5000, budget + 1, 5000)  # evaluations fall a little after each multiple of 5,000: align them
    curves = np.array([np.interp(x, runs[b, s].eval_steps, runs[b, s].eval_means) for s in seeds])
    ax.plot(x, np.median(curves, 0), color=f"C{j}", label=f"{b} (median of {len(seeds)})")
    ax.fill_between(x, curves.min(0), curves.max(0), color=f"C{j}", alpha=0.15)
    solved_steps[b] = [steps_to_solve(runs[b, s]) for s in seeds]
    med = np.median([s if s is not None else np.inf for s in solved_steps[b]])
    print(f"{b:<8} " + " ".join(f"{str(s):<13}" for s in solved_steps[b])
          + f" {sum(s is not None for s in solved_steps[b])}/{len(seeds)}    {med:,.0f}")
ax.axhline(475, color="0.5", ls="--", lw=1)
ax.set_xlabel("environment steps"), ax.set_ylabel("eval return"), ax.legend(loc="lower right")
ax.set_title("REINFORCE on CartPole: median and range over seeds")
plt.show()

# %% [markdown]
# With either baseline every seed reaches a greedy return of 475 within the budget, and sooner than without one;
# without a baseline the curves also wander more (a return climbs, then falls back), so the mean evaluation return
# over the run is lower. That is the variance of section 2 at work: when every return is large and positive, each
# update raises the probability of *every* action taken, and only the small differences between returns carry the
# signal. Three seeds are few; `python -m lecturekit train reinforce --set baseline=none --seed S` lets you try
# more. (Measured on six seeds, 0-5, while writing this notebook, with these 50k steps: without a baseline 6 of 6
# seeds reached 475, median 35k steps; with the mean baseline 6 of 6, median 17k; with the learned V 5 of 6, median
# 22k.)

# %%
n_solved = {b: sum(s is not None for s in v) for b, v in solved_steps.items()}
median_steps = {b: np.median([s if s is not None else np.inf for s in v]) for b, v in solved_steps.items()}
mean_eval = {b: np.mean([runs[b, s].eval_means.mean() for s in seeds]) for b in solved_steps}
print("mean eval return over the run:", {b: round(m) for b, m in mean_eval.items()})
assert n_solved["value"] == len(seeds) and n_solved["mean"] == len(seeds)
assert median_steps["none"] > max(median_steps["mean"], median_steps["value"])
assert mean_eval["none"] < min(mean_eval["mean"], mean_eval["value"])

# %% [markdown]
# **Next.** The learned $V$ of the `value` baseline is the first *critic*. Actor-critic methods (notebook 09) go one
# step further and use it not only to centre the returns but to replace them, so that the policy can be updated
# before an episode ends. Before that: [06 Policy parametrizations](06_policy_parametrizations.ipynb).
