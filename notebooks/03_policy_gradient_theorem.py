# %% [markdown]
# # 03 · The policy gradient theorem, checked by code
#
# Lecture part 1, "Derivation of policy gradient theorem" up to "From Objective to Sample-Based Learning".
# On a small MDP whose transition probabilities we know, everything can be computed exactly: the objective
# $J(\theta)$ by a linear solve, its gradient by differentiating through that solve. We then derive the
# likelihood-ratio form of the gradient step by step and check every step against the exact answer, ending with
# a Monte Carlo estimate that uses sampled episodes only and never looks at the transition probabilities.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

# %% jupyter={"source_hidden": true}
import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.tabular.estimators import per_episode_gradients, surrogate_gradient, tabular_softmax_score
from lecturekit.tabular.mdp import discounted_return, small_mdp

# %% [markdown]
# ## 1. A small MDP with a known model
#
# `small_mdp()` has 4 ordinary states and one absorbing terminal state, 3 actions, known transition probabilities
# $P(s' \mid s, a)$, expected rewards $r(s, a)$, a uniform start distribution $\rho$ and $\gamma = 0.9$. From every
# state-action pair the episode ends with probability at least 0.1, so every episode is finite. The policy is a
# tabular softmax: one logit per state and action, $\pi_\theta(a \mid s) = \mathrm{softmax}(\theta_{s,\cdot})_a$.
#
# For a fixed policy, the values satisfy the Bellman equation $V = r_\pi + \gamma P_\pi V$, a linear system:
#
# $$V_\theta = (I - \gamma P_\pi)^{-1} r_\pi, \qquad J(\theta) = \rho^\top V_\theta,$$
#
# with $P_\pi(s, s') = \sum_a \pi_\theta(a \mid s) P(s' \mid s, a)$ and $r_\pi(s) = \sum_a \pi_\theta(a\mid s) r(s, a)$.
# Every step is differentiable in $\theta$, so autograd gives the **exact** gradient $\nabla_\theta J$.

# %%
mdp = small_mdp()
theta = torch.as_tensor(np.random.default_rng(0).normal(size=(mdp.n_states, mdp.n_actions)) * 0.5)
J = mdp.J(theta).item()
exact = mdp.exact_gradient(theta).numpy()
print(f"J(theta) = {J:.4f}   (best possible J* = {mdp.optimal_J():.4f}, by value iteration)")
print("exact gradient (rows: states, the last one terminal):\n", exact.round(4))

# %% [markdown]
# The exact $J$ is an expectation over episodes, so the average discounted return of sampled episodes must
# approach it. The sampler is the only place where $P$ is used; from here on, estimates see episodes only.

# %%
rng = np.random.default_rng(1)
episodes = mdp.sample_episodes(theta, 40_960, rng)
G = np.array([discounted_return(r, mdp.gamma) for _, _, r in episodes])
se = G.std() / np.sqrt(len(G))
print(f"Monte Carlo J = {G.mean():.4f} ± {se:.4f} (1 s.e.) from {len(G):,} episodes; "
      f"mean length {np.mean([len(s) for s, _, _ in episodes]):.1f} steps")
assert abs(G.mean() - J) < 4 * se

# %% [markdown]
# A first check of the exact gradient: central finite differences of the exact $J$ (one coordinate at a time,
# $\epsilon = 10^{-6}$) agree with autograd to better than $10^{-8}$.

# %%
eps = 1e-6
fd = np.zeros_like(exact)
for i in range(mdp.n_states):
    for j in range(mdp.n_actions):
        e = torch.zeros_like(theta)
        e[i, j] = eps
        fd[i, j] = (mdp.J(theta + e).item() - mdp.J(theta - e).item()) / (2 * eps)
print("max |finite differences - autograd| =", np.abs(fd - exact).max())
assert np.abs(fd - exact).max() < 1e-8

# %% [markdown]
# ## 2. The derivation, one step at a time
#
# Write a trajectory as $\tau = (s_0, a_0, s_1, a_1, \dots, s_T)$ and its discounted return as
# $R(\tau) = \sum_t \gamma^t r(s_t, a_t)$. Then
#
# 1. **Objective as a sum over trajectories.** $J(\theta) = \sum_\tau P(\tau; \theta) R(\tau)$, with
#    $P(\tau;\theta) = \rho(s_0) \prod_t \pi_\theta(a_t \mid s_t) P(s_{t+1} \mid s_t, a_t)$.
# 2. **Differentiate term by term.** $R(\tau)$ does not depend on $\theta$, so
#    $\nabla J = \sum_\tau \nabla P(\tau;\theta)\, R(\tau)$. This is exact but useless as it stands: it is not an
#    expectation, so we cannot estimate it by sampling, and it involves the unknown dynamics.
# 3. **Multiply and divide by $P(\tau; \theta)$.** $\nabla J = \sum_\tau P(\tau;\theta)
#    \frac{\nabla P(\tau;\theta)}{P(\tau;\theta)} R(\tau)$: now it is an expectation over trajectories drawn from
#    the current policy.
# 4. **Log-derivative identity.** $\nabla P / P = \nabla \log P$, so
#    $\nabla J = \mathbb{E}_{\tau}\big[\nabla_\theta \log P(\tau;\theta)\, R(\tau)\big]$.
# 5. **Only the policy depends on $\theta$.** The log turns the product into a sum,
#    $\log P(\tau;\theta) = \log\rho(s_0) + \sum_t \log \pi_\theta(a_t\mid s_t) + \sum_t \log P(s_{t+1}\mid s_t,a_t)$,
#    and the first and last parts do not involve $\theta$. Hence
#
# $$\nabla_\theta J(\theta) = \mathbb{E}_{\tau \sim \pi_\theta}\Big[\Big(\sum_t \nabla_\theta \log \pi_\theta(a_t \mid s_t)\Big) R(\tau)\Big].$$
#
# The dynamics dropped out: the estimate needs the policy's scores along sampled episodes, nothing else.
#
# ### Step 5 checked: the dynamics terms do not move
#
# Take one sampled episode of at least four steps, compute the three parts of $\log P(\tau;\theta)$ from the model, change $\theta$, and
# compute them again. Only the policy part changes, and the gradient of the whole $\log P(\tau;\theta)$ equals the
# sum of the per-step policy scores $e_{a_t} - \pi(\cdot \mid s_t)$.

# %%
states, actions, rewards = next(e for e in episodes if len(e[0]) >= 4)
print("episode:", list(zip(states.tolist(), actions.tolist())))
before = mdp.log_prob_terms(theta, states, actions)
theta_new = theta + torch.as_tensor(np.random.default_rng(5).normal(size=theta.shape))
after = mdp.log_prob_terms(theta_new, states, actions)
for part in ("initial", "policy", "dynamics"):
    print(f"{part:>9}: {float(before[part]):9.4f} -> {float(after[part]):9.4f}")
assert before["initial"] == after["initial"] and before["dynamics"] == after["dynamics"]
assert abs(float(before["policy"]) - float(after["policy"])) > 1e-3

th = theta.clone().requires_grad_(True)
t = mdp.log_prob_terms(th, states, actions)
log_P = t["initial"] + t["policy"] + t["dynamics"]
(grad_log_P,) = torch.autograd.grad(log_P, th)
assert np.allclose(grad_log_P.numpy(), tabular_softmax_score(theta, states, actions).sum(0), atol=1e-12)

# %% [markdown]
# ## 3. The Monte Carlo score-function estimate
#
# Average $\big(\sum_t \nabla \log \pi_\theta(a_t\mid s_t)\big) R(\tau)$ over the sampled episodes
# (`lecturekit.tabular.estimators`): each episode gives one gradient sample $g_i$, and the estimate is their mean.
# Its standard error per coordinate is $\mathrm{std}(g)/\sqrt{N}$. With all 40 960 episodes the estimate should
# agree with the exact gradient to within a few standard errors in every coordinate, and to a few percent overall.

# %%
g = per_episode_gradients(theta, episodes, mdp.gamma)  # (N, S, A)
estimate = g.mean(0)
stderr = g.std(0) / np.sqrt(len(g))
rel_err = np.linalg.norm(estimate - exact) / np.linalg.norm(exact)
print("estimate:\n", estimate.round(4))
print(f"relative error |estimate - exact| / |exact| = {rel_err:.3f}; "
      f"largest error in standard errors = {np.max(np.abs(estimate - exact)[:-1] / stderr[:-1]):.2f}")
assert np.all(np.abs(estimate - exact) <= 4 * stderr + 1e-12)
assert rel_err < 0.05

# %% [markdown]
# The same estimate comes out of automatic differentiation of a *surrogate*, the sum of
# $\log \pi_\theta(a_t \mid s_t)$ weighted by the (constant) return: this is how every deep policy-gradient method
# computes it in practice, with a network in place of the table.

# %%
th = theta.clone().requires_grad_(True)
(auto,) = surrogate_gradient(lambda s, a: torch.log_softmax(th, -1)[s, a], [th], episodes[:500], mdp.gamma)
assert np.allclose(auto.numpy(), g[:500].mean(0), atol=1e-10)

# %% [markdown]
# ### The policy gradient theorem, state by state
#
# Grouping the same expectation by states and actions gives the form of the theorem that later notebooks use:
#
# $$\nabla_\theta J = \sum_s d_\pi(s) \sum_a \pi_\theta(a \mid s)\, \nabla_\theta \log \pi_\theta(a \mid s)\, Q_\pi(s, a),
# \qquad d_\pi(s) = \sum_t \gamma^t \Pr(s_t = s).$$
#
# For the tabular softmax, $\pi\, \nabla \log \pi\, Q$ summed over actions is $\pi(a\mid s)\,(Q(s,a) - V(s))$ in
# entry $(s, a)$: the gradient is the discounted visitation times the policy times the advantage.

# %%
d = mdp.discounted_state_visitation(theta)
theorem = (d[:, None] * mdp.policy(theta) * mdp.advantages(theta)).numpy()
assert np.allclose(theorem, exact, atol=1e-12)

# %% [markdown]
# ## 4. How fast does the estimate converge?
#
# The $g_i$ are independent, so the mean of $N$ of them has a covariance that shrinks like $1/N$: the root mean
# squared error $\sqrt{\mathbb{E}\,|\hat g_N - \nabla J|^2}$ should fall like $\sqrt{\mathrm{tr}\,\mathrm{Cov}(g)/N}$,
# a line of slope $-1/2$ on a log-log plot. We measure it by splitting the 40 960 episodes into disjoint batches
# of $N$ and comparing each batch's estimate with the exact gradient. Replacing $R(\tau)$ by the reward-to-go
# $\sum_{k \ge t} \gamma^k r_k$ (rewards before step $t$ cannot be caused by $a_t$) gives another unbiased
# estimator with a smaller constant; notebook 05 takes this further with baselines.

# %%
Ns = np.array([10, 40, 160, 640, 2560])
results = {}
for label, rtg in (("whole return R(tau)", False), ("reward-to-go", True)):
    gi = per_episode_gradients(theta, episodes, mdp.gamma, reward_to_go=rtg)
    rmse = []
    for N in Ns:
        batches = gi[: len(gi) // N * N].reshape(-1, N, *exact.shape).mean(1)
        rmse.append(np.sqrt(((batches - exact) ** 2).sum((1, 2)).mean()))
    predicted = np.sqrt(gi.reshape(len(gi), -1).var(0).sum() / Ns)
    results[label] = (np.array(rmse), predicted)

plt.figure(figsize=(6, 4))
for i, (label, (rmse, predicted)) in enumerate(results.items()):
    plt.loglog(Ns, rmse, "o", color=f"C{i}", label=f"{label}: measured")
    plt.loglog(Ns, predicted, "-", color=f"C{i}", alpha=0.6, label=f"{label}: sqrt(tr Cov / N)")
plt.xlabel("episodes N")
plt.ylabel("RMS error of the gradient estimate")
plt.legend(fontsize=8)
plt.show()

for label, (rmse, predicted) in results.items():
    slope = np.polyfit(np.log(Ns), np.log(rmse), 1)[0]
    print(f"{label}: fitted slope {slope:.3f}; measured / predicted = {np.round(rmse / predicted, 2)}")
    assert -0.6 < slope < -0.4
    assert np.all(np.abs(rmse / predicted - 1) < 0.3)
assert np.all(results["reward-to-go"][0] < results["whole return R(tau)"][0])

# %% [markdown]
# **Summary.** The exact gradient (autograd through a linear solve), central finite differences, the
# state-by-state theorem and the sampled likelihood-ratio estimate all agree; the sampled one needed only the
# policy and the episodes. Its error falls like $1/\sqrt{N}$: four times as many episodes halve it. That slow
# rate, with a constant set by the variance of $g$, is the reason for everything in part 2 of the course.
