# %% [markdown]
# # 14 · Entropy: how random is a policy, and what an entropy bonus does to the optimum
#
# Lecture part 7: "Entropy Bonus: Encouraging Exploration" and the objective of "Soft Actor-Critic (SAC): Overview".
#
# The entropy of a policy in a state measures how spread out its action choice is:
#
# $$\mathcal{H}(\pi(\cdot|s)) = -\mathbb{E}_{a\sim\pi}[\log \pi(a|s)].$$
#
# For a softmax over $A$ actions it lies between $0$ (one action for sure) and $\log A$ (uniform). For a diagonal
# Gaussian it is $\sum_d \big(\log\sigma_d + \tfrac12 \log(2\pi e)\big)$: it has no floor (it goes to $-\infty$ as
# $\sigma \to 0$) and depends only on the spread, not on the mean.
#
# SAC rewards the agent for keeping this number high, with a weight $\alpha$ (the *temperature*):
#
# $$J_\alpha(\pi) = \mathbb{E}_\pi\Big[\sum_t \gamma^t \big(r_t + \alpha\, \mathcal{H}(\pi(\cdot|s_t))\big)\Big].$$

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from lecturekit.distributions import categorical_entropy, gaussian_entropy, gaussian_log_prob
from lecturekit.tabular.mdp import small_mdp

# %% [markdown]
# ## Entropy as you turn the knobs
#
# Left: a softmax policy $\pi(a) \propto \exp(z_a / T)$ over five actions with fixed preferences $z$, as the
# temperature $T$ changes. Right: a 1-D Gaussian policy as its standard deviation changes, with the closed-form
# entropy and a Monte Carlo estimate $-\frac1n\sum_i \log \pi(a_i)$ from samples.

# %% jupyter={"source_hidden": true}
z = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
temperature = W.FloatLogSlider(value=1.0, base=10, min=-1.5, max=2.0, step=0.05, description="softmax T",
                               continuous_update=False)
log_std = W.FloatSlider(value=0.0, min=-3.0, max=1.5, step=0.1, description="Gaussian log σ",
                        continuous_update=False)
out = W.Output()
shown = {}  # what the figure currently shows, for the asserts below


def entropies(T: float, ls: float, n: int = 20_000) -> dict:
    logits = z / T
    ls_t = torch.tensor([ls])
    x = torch.randn(n, 1, generator=torch.Generator().manual_seed(0)) * math.exp(ls)
    return {"softmax": categorical_entropy(logits).item(), "probs": torch.softmax(logits, -1).numpy(),
            "gaussian": gaussian_entropy(ls_t).item(),
            "gaussian_mc": -gaussian_log_prob(x, torch.zeros(1), ls_t).mean().item()}


def redraw(_=None):
    e = entropies(temperature.value, log_std.value)
    shown.update(e, T=temperature.value, log_std=log_std.value)
    with out:
        out.clear_output(wait=True)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
        ax1.bar(range(5), e["probs"], color="C0")
        ax1.set(ylim=(0, 1), xlabel="action", ylabel="π(a)",
                title=f"T = {temperature.value:.2f}: H = {e['softmax']:.3f} (max log 5 = {math.log(5):.3f})")
        xs = np.linspace(-6, 6, 400)
        s = math.exp(log_std.value)
        ax2.plot(xs, np.exp(-xs ** 2 / (2 * s * s)) / (s * math.sqrt(2 * math.pi)), color="C1")
        ax2.set(xlabel="action", ylabel="density",
                title=f"σ = {s:.2f}: H = {e['gaussian']:.3f} (MC {e['gaussian_mc']:.3f})")
        plt.tight_layout()
        plt.show()


temperature.observe(redraw, "value")
log_std.observe(redraw, "value")
display(W.HBox([temperature, log_std]), out)
redraw()

# %% [markdown]
# Moving a slider redraws the figure; the cell below moves them from code and checks what is shown.

# %%
temperature.value, log_std.value = 100.0, -3.0
assert shown["T"] == 100.0 and abs(shown["softmax"] - math.log(5)) < 1e-3  # hot softmax: nearly uniform
assert shown["gaussian"] < 0  # a narrow Gaussian has negative (differential) entropy
temperature.value, log_std.value = 0.05, 1.0
assert shown["softmax"] < 1e-6  # cold softmax: all mass on the best action
assert abs(shown["gaussian"] - (1.0 + 0.5 * math.log(2 * math.pi * math.e))) < 1e-6
assert abs(shown["gaussian_mc"] - shown["gaussian"]) < 0.02  # the sample estimate agrees with the formula
Ts = np.logspace(-2, 2, 30)
H_T = [entropies(T, 0.0)["softmax"] for T in Ts]
assert all(np.diff(H_T) > 0)  # entropy rises monotonically with the temperature

# %% [markdown]
# ## An entropy bonus on a bandit: the optimum becomes a softmax
#
# One state, $K$ arms with rewards $r_a$. Maximise $J_\alpha(\pi) = \sum_a \pi(a) r_a + \alpha\, \mathcal{H}(\pi)$
# over the probability simplex. Setting the derivative of the Lagrangian to zero, $r_a - \alpha(\log\pi(a) + 1) =
# \lambda$, gives
#
# $$\pi^\star_\alpha(a) = \frac{\exp(r_a / \alpha)}{\sum_b \exp(r_b / \alpha)} = \mathrm{softmax}(r / \alpha),
# \qquad J_\alpha(\pi^\star_\alpha) = \alpha \log \sum_a \exp(r_a / \alpha).$$
#
# Without the bonus ($\alpha = 0$) the optimum puts all its mass on the best arm; with it, every arm keeps some
# probability, more the closer its reward is to the best one. Gradient ascent on the softmax logits finds it.

# %%
r = torch.tensor([1.0, 0.8, 0.2, -0.5], dtype=torch.float64)


def bandit_optimum_by_ascent(alpha: float, steps: int = 2000) -> torch.Tensor:
    theta = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.1)
    for _ in range(steps):
        J = torch.softmax(theta, -1) @ r + alpha * categorical_entropy(theta)
        opt.zero_grad()
        (-J).backward()
        opt.step()
    return torch.softmax(theta.detach(), -1)


for alpha in (0.1, 0.3, 1.0):
    pi = bandit_optimum_by_ascent(alpha)
    closed = torch.softmax(r / alpha, -1)
    print(f"alpha = {alpha:4}: ascent {np.round(pi.numpy(), 4)}   softmax(r/alpha) {np.round(closed.numpy(), 4)}")
    assert torch.allclose(pi, closed, atol=1e-4)
    J_star = closed @ r + alpha * categorical_entropy(torch.log(closed))  # the optimal value, in closed form
    assert abs(J_star.item() - alpha * torch.logsumexp(r / alpha, 0).item()) < 1e-9
    assert (pi @ r + alpha * categorical_entropy(torch.log(pi))).item() <= J_star.item() + 1e-12

# %% [markdown]
# ## On a small MDP: soft value iteration and a softmax of Q / alpha
#
# With states, the same reasoning applies in every state at once. Define the *soft* values of a policy by
# $V(s) = \sum_a \pi(a|s)\big(Q(s,a) - \alpha\log\pi(a|s)\big)$ and $Q(s,a) = r(s,a) + \gamma\sum_{s'}
# P(s'|s,a)\,V(s')$. The best policy in each state is then the bandit answer with $Q$ in place of $r$:
#
# $$\pi^\star_\alpha(a|s) = \mathrm{softmax}\big(Q^\star_\alpha(s,\cdot)/\alpha\big)_a, \qquad V^\star_\alpha(s) =
# \alpha\log\sum_a \exp\big(Q^\star_\alpha(s,a)/\alpha\big),$$
#
# and iterating this "soft max" backup (soft value iteration) converges to $Q^\star_\alpha$. We check it against a
# completely different route: gradient ascent on $J_\alpha(\theta)$ computed exactly (a linear solve) for a
# tabular softmax policy on the course's small MDP (`lecturekit.tabular.mdp.small_mdp`, 4 states, 3 actions).

# %%
# `TabularMDP.soft_q_values(alpha)` runs soft value iteration; `TabularMDP.soft_J(theta, alpha)` computes
# J_alpha(theta) = mu0 . (I - gamma P_pi)^-1 (r_pi + alpha H_pi) exactly (a linear solve, differentiable).
mdp = small_mdp()


alphas = [0.02, 0.1, 0.3, 1.0]
results = {}
for alpha in alphas:
    Q = mdp.soft_q_values(alpha)
    pi_vi = torch.softmax(torch.as_tensor(Q / alpha), -1)
    theta = torch.zeros(mdp.n_states, mdp.n_actions, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.1)
    for _ in range(1500):
        loss = -mdp.soft_J(theta, alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
    pi_pg = mdp.policy(theta.detach())
    gap = (pi_pg - pi_vi)[torch.as_tensor(~mdp.terminal)].abs().max().item()
    results[alpha] = dict(pi=pi_vi, gap=gap, J_soft=mdp.soft_J(torch.as_tensor(Q / alpha), alpha).item(),
                          J=mdp.J(torch.as_tensor(Q / alpha)).item(),
                          H=categorical_entropy(torch.as_tensor(Q / alpha))[:-1].mean().item())
    print(f"alpha = {alpha:4}: max |pi_ascent - softmax(Q/alpha)| = {gap:.1e}   return J = {results[alpha]['J']:.4f}"
          f"   mean entropy {results[alpha]['H']:.3f}")

# %%
J_star = mdp.optimal_J()
for alpha in alphas:
    assert results[alpha]["gap"] < 1e-3  # gradient ascent on J_alpha lands on softmax(Q*_alpha / alpha)
    assert results[alpha]["J"] <= J_star + 1e-9  # the bonus costs (unregularised) return ...
# ... less and less as alpha shrinks, and the policy gets more deterministic
assert all(np.diff([results[a]["J"] for a in alphas]) < 0)
assert all(np.diff([results[a]["H"] for a in alphas]) > 0)
assert J_star - results[alphas[0]]["J"] < 0.01
# soft value iteration's policy beats random policies on the regularised objective
g = torch.Generator().manual_seed(0)
for _ in range(20):
    theta = torch.randn(mdp.n_states, mdp.n_actions, generator=g, dtype=torch.float64)
    assert mdp.soft_J(theta, 0.3) <= results[0.3]["J_soft"] + 1e-9

fig, ax = plt.subplots(1, 2, figsize=(9, 3))
ax[0].plot(alphas, [results[a]["J"] for a in alphas], "o-", label="return J of the soft optimum")
ax[0].axhline(J_star, color="C2", ls="--", label="J* (no bonus)")
ax[0].set(xscale="log", xlabel="temperature α", ylabel="return")
ax[0].legend(fontsize=8)
ax[1].plot(alphas, [results[a]["H"] for a in alphas], "o-", color="C1")
ax[1].axhline(math.log(3), color="gray", ls=":", label="log 3 (uniform)")
ax[1].set(xscale="log", xlabel="temperature α", ylabel="mean policy entropy")
ax[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What the temperature buys.** A larger $\alpha$ keeps the policy closer to uniform (more exploration, more
# robustness to an imperfect critic) at the cost of some return; $\alpha \to 0$ recovers the ordinary optimum.
# Choosing $\alpha$ by hand is awkward because the right value depends on the scale of the rewards, which is why SAC
# *learns* it to hold the entropy near a target (notebook 16).
#
# **Think about it.** With $\alpha > 0$ the optimal policy is never deterministic. Why does that matter for an
# off-policy learner whose critic is trained on the actions the policy itself takes?
