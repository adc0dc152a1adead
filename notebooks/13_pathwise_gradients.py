# %% [markdown]
# # 13 · Two ways to differentiate through a random action: score function vs pathwise
#
# Lecture part 7: "From Deterministic to Stochastic Policies", "REINFORCE Gradient: Intuition and Limitations",
# "Challenges in Practice", "Reparameterization: Deterministic Sampling", "From Pathwise Gradients to SAC".
#
# TD3 explores with a deterministic actor plus noise that we fix by hand. A stochastic policy instead *learns* how
# much to explore, state by state. The price: we now need the gradient of an expectation over a random action,
#
# $$\nabla_\theta\, \mathbb{E}_{a \sim \pi_\theta}[f(a)],$$
#
# where $f$ plays the role of the critic $Q(s, a)$. There are two unbiased ways to estimate it from samples.
#
# * **Score function (likelihood ratio, REINFORCE):** $\;\nabla_\theta \mathbb{E}[f(a)] = \mathbb{E}\big[f(a)\,
#   \nabla_\theta \log \pi_\theta(a)\big]$. It only needs the *values* $f(a)$, never the slope of $f$.
# * **Pathwise (reparameterization):** write the sample as a differentiable function of the parameters and of
#   parameter-free noise, $a = g_\theta(\epsilon) = \mu_\theta + \sigma_\theta\,\epsilon$ with $\epsilon \sim
#   \mathcal{N}(0, I)$. Then $\nabla_\theta \mathbb{E}_\epsilon[f(g_\theta(\epsilon))] = \mathbb{E}_\epsilon\big[
#   \nabla_a f(a)\, \nabla_\theta g_\theta(\epsilon)\big]$: it uses the slope of $f$ at the sampled action.
#
# This notebook measures both on a problem whose answer we know, then with a learned critic in place of $f$.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.distributions import gaussian_log_prob
from lecturekit.nets import mlp

torch.set_default_dtype(torch.float64)  # variances of small numbers: keep the arithmetic exact enough

# %% [markdown]
# ## A test problem with a known answer
#
# Policy $\pi_\mu = \mathcal{N}(\mu, \sigma^2 I)$ in $D$ dimensions; "critic" $f(a) = -\lVert a - a^\star\rVert^2$
# (the best action is $a^\star$). Then
#
# $$J(\mu) = \mathbb{E}[f(a)] = -\lVert \mu - a^\star\rVert^2 - D\sigma^2, \qquad
#   \nabla_\mu J = -2(\mu - a^\star).$$
#
# Both estimators are computed with autograd, one gradient per sample (each sample gets its own copy of $\mu$):
# the score function differentiates $f(a)\log\pi_\mu(a)$ with $f(a)$ held fixed, the pathwise one
# differentiates $f(\mu + \sigma\epsilon)$.

# %%
def quadratic(a_star):
    return lambda a: -((a - a_star) ** 2).sum(-1)


def per_sample_grads(f, mu, sigma, n, gen, method, baseline=0.0):
    """(n, D) single-sample estimates of grad_mu E[f(a)], a ~ N(mu, sigma^2 I)."""
    mu_n = mu.expand(n, -1).clone().requires_grad_(True)
    eps = torch.randn(mu_n.shape, generator=gen)
    if method == "pathwise":
        f(mu_n + sigma * eps).sum().backward()
    else:  # score function: f(a) is a number, only log pi carries the gradient
        a = (mu_n + sigma * eps).detach()
        weight = (f(a) - baseline).detach()
        (weight * gaussian_log_prob(a, mu_n, torch.full_like(mu_n, math.log(sigma)))).sum().backward()
    return mu_n.grad


D, sigma = 4, 0.5
a_star = torch.zeros(D)
mu = torch.tensor([1.0, -0.5, 0.3, 0.0])
true_grad = -2 * (mu - a_star)
gen = torch.Generator().manual_seed(0)
for method in ("score function", "pathwise"):
    g = per_sample_grads(quadratic(a_star), mu, sigma, 200_000, gen, method)
    mean, se = g.mean(0), g.std(0) / math.sqrt(len(g))
    print(f"{method:>15}: mean {np.round(mean.numpy(), 3)}  (true {true_grad.numpy()})  "
          f"per-sample variance (sum over D) {g.var(0).sum():.2f}")
    # unbiased: the sample mean sits within 5 standard errors of the true gradient in every component
    assert ((mean - true_grad).abs() <= 5 * se + 1e-12).all()

# %% [markdown]
# Both are right on average. They differ in how much a single sample scatters: the score-function estimate above
# has a per-sample variance dozens of times larger. The pathwise estimate is $-2(a - a^\star) = -2(\mu - a^\star)
# - 2\sigma\epsilon$, whose variance $4\sigma^2 D$ does not depend on how far $\mu$ is from the optimum. The score
# function multiplies the *value* $f(a)$, which is large and noisy far from the optimum, by $(a - \mu)/\sigma^2$.
#
# ## How the variance grows: with the action dimension and with the distance to the optimum
#
# We also give the score function its best constant baseline, $b = J(\mu)$ (subtracting it leaves the estimate
# unbiased, since $\mathbb{E}[\nabla \log \pi] = 0$), to see that the baseline helps but does not close the gap.

# %%
def total_variance(D, dist, method, n=20_000, seed=1):
    mu = torch.zeros(D)
    mu[0] = dist  # the mean sits `dist` away from the optimum a* = 0
    b = -(dist ** 2) - D * sigma ** 2 if method == "score + baseline" else 0.0
    g = per_sample_grads(quadratic(torch.zeros(D)), mu, sigma, n, torch.Generator().manual_seed(seed),
                         "pathwise" if method == "pathwise" else "score", baseline=b)
    return g.var(0).sum().item()


methods = ("score function", "score + baseline", "pathwise")
dims, dists = [1, 2, 4, 8, 16, 32], [0.0, 0.5, 1.0, 2.0, 4.0]
var_dim = {m: [total_variance(d, 1.0, m) for d in dims] for m in methods}
var_dist = {m: [total_variance(4, r, m) for r in dists] for m in methods}

print("total per-sample variance, distance 1:        D =", "".join(f"{d:>10}" for d in dims))
for m in methods:
    print(f"{m:>47}", "".join(f"{v:10.1f}" for v in var_dim[m]))
print("total per-sample variance, D = 4:      distance =", "".join(f"{r:>10}" for r in dists))
for m in methods:
    print(f"{m:>47}", "".join(f"{v:10.1f}" for v in var_dist[m]))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for m, style in zip(methods, ("o-", "s--", "^-")):
    axes[0].plot(dims, var_dim[m], style, label=m)
    axes[1].plot(dists, var_dist[m], style, label=m)
axes[0].set(xscale="log", yscale="log", xlabel="action dimension D", ylabel="variance of one-sample gradient",
            title="distance to optimum = 1")
axes[1].set(yscale="log", xlabel="distance |mu - a*|", title="D = 4")
for ax in axes:
    ax.grid(alpha=0.3)
axes[0].legend()
plt.tight_layout()
plt.show()

# %%
var_dim_pw, var_dim_sf = np.array(var_dim["pathwise"]), np.array(var_dim["score function"])
# pathwise: 4 sigma^2 D exactly (up to sampling error), independent of the distance
assert np.allclose(var_dim_pw, 4 * sigma ** 2 * np.array(dims), rtol=0.05)
assert np.allclose(var_dist["pathwise"], 4 * sigma ** 2 * 4, rtol=0.05)
# the pathwise estimate has the smallest variance everywhere, even against the score function with a baseline
for m in ("score function", "score + baseline"):
    assert (np.array(var_dim[m]) > var_dim_pw).all() and (np.array(var_dist[m]) > np.array(var_dist["pathwise"])).all()
# the score function's variance grows faster than linearly with D and keeps growing with the distance
assert var_dim_sf[-1] / var_dim_sf[0] > 2 * dims[-1] / dims[0]
assert all(np.diff(var_dist["score function"]) > 0)
print(f"D = 32: score function {var_dim_sf[-1] / var_dim_pw[-1]:.0f}x the pathwise variance")

# %% [markdown]
# Two things stand out. The score function gets worse as the action space grows (each extra dimension adds noise
# to the value $f(a)$ *and* a new component to estimate), and it gets worse the further we are from the
# optimum, which is exactly where a policy starts. The pathwise estimator uses the slope $\nabla_a f$, which
# already says which way to move each coordinate, so one sample is nearly enough.
#
# ## With a learned critic standing in for f
#
# In reinforcement learning nobody hands us $f$. An actor-critic method fits a critic $Q_w(a)$ to noisy returns
# and then follows *its* slope. Here: noisy samples $f(a) + \text{noise}$ around the current policy, a small MLP
# fitted to them, and the two gradient estimators applied to the critic instead of the true $f$. The pathwise
# estimator now inherits the critic's errors in slope (a bias), the score function inherits its errors in value;
# the variance gap remains.

# %%
D, sigma = 4, 0.5
mu = torch.tensor([1.0, -0.5, 0.3, 0.0])
f = quadratic(torch.zeros(D))
gen = torch.Generator().manual_seed(2)
a_train = mu + 1.5 * sigma * torch.randn(4000, D, generator=gen)  # data a bit wider than the policy
y_train = f(a_train) + 0.3 * torch.randn(4000, generator=gen)     # returns are noisy

critic = mlp([D, 64, 64, 1])
opt = torch.optim.Adam(critic.parameters(), lr=3e-3)
for step in range(600):
    idx = torch.randint(0, 4000, (256,), generator=gen)
    loss = (critic(a_train[idx]).squeeze(-1) - y_train[idx]).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
q_hat = lambda a: critic(a).squeeze(-1)

true_grad = -2 * mu
est = {}
for method in ("score", "pathwise"):
    g = per_sample_grads(q_hat, mu, sigma, 50_000, torch.Generator().manual_seed(3), method)
    est[method] = (g.mean(0).detach(), g.var(0).sum().item())
    print(f"{method:>8} with learned critic: mean {np.round(est[method][0].numpy(), 2)}  (true {true_grad.numpy()}),"
          f"  variance {est[method][1]:.2f}")

# %%
# both average to (about) the true gradient: the critic is accurate near the policy's actions
for method in ("score", "pathwise"):
    cos = torch.nn.functional.cosine_similarity(est[method][0], true_grad, dim=0).item()
    assert cos > 0.95, (method, cos)
# and the pathwise estimate through the critic's slope is still far less noisy
assert est["pathwise"][1] < est["score"][1] / 5
# how many samples does each need for a gradient within 10 % (in norm) of the truth? variance / (0.1 |g|)^2
need = {m: math.ceil(est[m][1] / (0.1 * true_grad.norm().item()) ** 2) for m in est}
print("samples for a 10 % standard error:", need)

# %% [markdown]
# **Take-away.** Sampling an action with `torch.distributions`' `.sample()` breaks the chain from the critic back to
# the actor; reparameterizing it, $a = \mu_\theta(s) + \sigma_\theta(s)\,\epsilon$, keeps the chain intact (the same
# distributions do this for you with `.rsample()`, see the cell below), and the actor
# update becomes "move the action in the direction in which $Q$ rises", averaged over a little noise. In the limit
# $\sigma \to 0$ this is exactly DDPG/TD3's deterministic policy gradient (notebook 12); SAC keeps $\sigma > 0$ and
# adds an entropy bonus so that the noise does not collapse (notebooks 14-16).
#
# **Erratum E5: `torch.distributions` and the chain.** It is `.sample()` that cuts the graph, not the library:
# `.rsample()` draws $\epsilon$ and returns $\mu + \sigma \epsilon$ as a differentiable function of $\mu$ and $\sigma$,
# exactly the reparameterisation above (`Normal`, `MultivariateNormal` and others have it: `has_rsample`). Checked:

# %%
mu_e5 = torch.tensor(0.5, requires_grad=True)
log_std_e5 = torch.tensor(-1.0, requires_grad=True)
dist_e5 = torch.distributions.Normal(mu_e5, log_std_e5.exp())
drawn = dist_e5.sample()
torch.manual_seed(0)
a_r = dist_e5.rsample()
a_r.pow(2).backward()  # d(a^2)/d mu = 2a, d(a^2)/d log_std = 2a * sigma * eps
torch.manual_seed(0)
eps_e5 = torch.randn(())  # the same draw that rsample used
print(f"sample(): requires_grad={drawn.requires_grad};  rsample(): d(a^2)/dmu = {mu_e5.grad.item():.4f} "
      f"(2a = {2 * a_r.item():.4f})")
assert not drawn.requires_grad and dist_e5.has_rsample
assert torch.isclose(mu_e5.grad, 2 * a_r.detach())
assert torch.isclose(log_std_e5.grad, 2 * a_r.detach() * log_std_e5.exp().detach() * eps_e5)

# %% [markdown]
# **Think about it.** The score function needs no slope, so it works when actions are discrete or $f$ is a
# black box (a simulator you cannot differentiate). Which of the course's environments could *only* use it?
