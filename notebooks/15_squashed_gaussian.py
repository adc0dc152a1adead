# %% [markdown]
# # 15 · The tanh-squashed Gaussian: a bounded stochastic policy with an exact log-probability
#
# Lecture part 7: "Soft Actor-Critic (SAC): Overview" (the Gaussian actor $a = f_\theta(s, \epsilon)$) and the
# log-probabilities in "SAC: Policy Loss" and "SAC: Entropy Temperature Loss".
#
# Pendulum's torque lives in $[-2, 2]$; most continuous-control actions are bounded like this. A Gaussian has
# unbounded support, and clipping its samples piles probability onto the bounds and makes $\log\pi$ of the
# executed action meaningless. SAC instead **squashes** a Gaussian sample through $\tanh$:
#
# $$u = \mu_\theta(s) + \sigma_\theta(s)\,\epsilon,\quad \epsilon\sim\mathcal{N}(0, I), \qquad a = \tanh(u) \in
# (-1, 1)^D,$$
#
# (then scales $a$ affinely onto the action box). The sample stays reparameterized (notebook 13), and the density
# of $a$ follows from the change-of-variables formula. Since $\tanh$ acts on each coordinate separately, its
# Jacobian is diagonal with entries $1 - \tanh(u_d)^2$, so
#
# $$\log\pi(a) = \log\mathcal{N}(u;\mu,\sigma^2) - \sum_{d=1}^{D}\log\big(1 - \tanh(u_d)^2\big).$$
#
# Squashing compresses the tails into a thin layer near $\pm 1$: the density there is *higher* than the Gaussian's
# at $u$, hence the minus sign.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.distributions import (
    gaussian_log_prob,
    squashed_gaussian_log_prob,
    squashed_gaussian_sample,
    tanh_log_abs_det_jacobian,
)

# %% [markdown]
# ## The formula against a histogram of samples
#
# Draw a million squashed samples for a few $(\mu, \sigma)$ and histogram the actions. For each bin, the formula
# predicts the probability $\int_{\text{bin}} \exp(\log\pi(a))\,da$ (integrated numerically, with $u =
# \operatorname{atanh}(a)$); the counts must agree with it up to sampling noise. The naive density that forgets the
# correction, $\mathcal{N}(\operatorname{atanh}(a); \mu, \sigma^2)$, is drawn too.

# %% jupyter={"source_hidden": true}
settings = [(0.0, 0.5), (0.0, 1.5), (1.0, 0.8)]  # (mu, sigma); sigma = 1.5 piles mass near the bounds
n = 1_000_000
gen = torch.Generator().manual_seed(0)
edges = np.linspace(-1, 1, 81)
centres, width = (edges[1:] + edges[:-1]) / 2, edges[1] - edges[0]
# 4000 sub-intervals per bin for the integral of the formula's density (it is steep near the bounds)
fine = torch.as_tensor(np.linspace(edges[:-1], edges[1:], 4001).T.clip(-1 + 1e-12, 1 - 1e-12))  # (80, 4001)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
z_scores = []
for ax, (m, s) in zip(axes, settings):
    mu, log_std = torch.tensor([m], dtype=torch.float64), torch.tensor([math.log(s)], dtype=torch.float64)
    a, u = squashed_gaussian_sample(mu.float().expand(n, 1), log_std.float().expand(n, 1), generator=gen)
    counts, _ = np.histogram(a.numpy().ravel(), bins=edges)
    p_bin = torch.trapezoid(squashed_gaussian_log_prob(torch.atanh(fine)[..., None], mu, log_std).exp(), fine).numpy()
    ok = n * p_bin > 100  # bins with enough expected samples for a normal approximation
    z_scores.append(np.max(np.abs(counts[ok] - n * p_bin[ok]) / np.sqrt(n * p_bin[ok])))
    u_c = torch.atanh(torch.as_tensor(centres))[:, None]
    naive = gaussian_log_prob(u_c, mu, log_std).exp().numpy()
    ax.bar(centres, counts / (n * width), width=width, alpha=0.4, label="histogram of tanh(u)")
    ax.plot(centres, p_bin / width, "C1", label="formula (bin average)")
    ax.plot(centres, naive, "C3--", label="Gaussian at atanh(a), no correction")
    ax.set(title=f"μ = {m}, σ = {s}", xlabel="action a", ylim=(0, (counts / (n * width)).max() * 1.15))
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()
print("largest |count - expected| / sqrt(expected) per setting:", np.round(z_scores, 2))

# %%
# the corrected formula predicts every bin's count within sampling noise (80 bins: |z| < 5 always holds by chance)
assert max(z_scores) < 5
# numerical integration over (-1, 1): the corrected density integrates to 1, the uncorrected one does not
a_grid = torch.linspace(-1 + 1e-12, 1 - 1e-12, 2_000_001, dtype=torch.float64)
for m, s in settings:
    mu, log_std = torch.tensor([m], dtype=torch.float64), torch.tensor([math.log(s)], dtype=torch.float64)
    u_grid = torch.atanh(a_grid)[:, None]
    mass = torch.trapezoid(squashed_gaussian_log_prob(u_grid, mu, log_std).exp(), a_grid).item()
    mass_naive = torch.trapezoid(gaussian_log_prob(u_grid, mu, log_std).exp(), a_grid).item()
    print(f"mu = {m}, sigma = {s}:  integral of corrected density {mass:.5f},  uncorrected {mass_naive:.3f}")
    assert abs(mass - 1) < 1e-3 and abs(mass_naive - 1) > 0.1

# %% [markdown]
# ## Computing the correction without overflow
#
# Written literally, $\log(1 - \tanh(u)^2)$ breaks long before the policy does: in float32, $\tanh(u)$ rounds to
# exactly $1$ once $|u|$ is a little above 9, so the term becomes $\log 0 = -\infty$ and the loss becomes NaN (at
# $u = 9$ it is already off by 0.7, see the table below). Such $u$ are not exotic: a policy that has become
# confident pushes its mean towards the bounds. The identity
#
# $$\log\big(1-\tanh(u)^2\big) = \log\frac{4}{(e^{u}+e^{-u})^2} = 2\big(\log 2 - u - \operatorname{softplus}(-2u)
# \big),\qquad \operatorname{softplus}(x)=\log(1+e^x),$$
#
# uses only operations that stay finite (softplus of a large negative number is a tiny positive one, of a large
# positive number about the number itself). This is what `lecturekit.distributions.tanh_log_abs_det_jacobian`
# computes, and it is also why the log-probability takes the *pre-squash* $u$: recovering $u =
# \operatorname{atanh}(a)$ from a rounded $a = \pm 1$ is impossible.

# %%
u = torch.tensor([0.0, 1.0, 5.0, 9.0, 10.0, 15.0, 20.0, -20.0])[:, None]
naive = torch.log(1 - torch.tanh(u) ** 2).squeeze(-1)
stable = tanh_log_abs_det_jacobian(u)
exact = -2 * (u.double().abs() + torch.log1p(torch.exp(-2 * u.double().abs())) - math.log(2)).squeeze(-1)
for row in zip(u.squeeze(-1).tolist(), naive.tolist(), stable.tolist(), exact.tolist()):
    print("u = {:6.1f}   naive float32 {:>12.5f}   stable float32 {:>12.5f}   exact {:>12.5f}".format(*row))

assert torch.isinf(naive[u.squeeze(-1).abs() >= 10]).all()  # the literal formula has already failed at |u| = 10
assert torch.isfinite(stable).all() and torch.allclose(stable.double(), exact, rtol=1e-6, atol=1e-6)
# gradients stay finite too (a NaN gradient would silently poison every weight of the actor)
u_req = u.clone().requires_grad_(True)
squashed_gaussian_log_prob(u_req, torch.zeros(1), torch.zeros(1)).sum().backward()
assert torch.isfinite(u_req.grad).all()
u_req.grad = None
torch.log(1 - torch.tanh(u_req) ** 2).sum().backward()
assert not torch.isfinite(u_req.grad).all()  # the literal form's gradient is NaN/inf at large |u|

# %% [markdown]
# ## In more than one dimension, and in the actor
#
# With $D$ action dimensions the correction is a sum over dimensions, because the Jacobian of the coordinate-wise
# $\tanh$ is diagonal. We check it against PyTorch's own `TransformedDistribution(Normal, TanhTransform)` (an
# independent implementation) in three dimensions, away from the bounds where the latter is accurate.

# %%
D = torch.distributions
mu, log_std = torch.tensor([0.3, -1.0, 0.5]), torch.tensor([-0.5, 0.2, 0.0])
a, u = squashed_gaussian_sample(mu.expand(1000, 3), log_std.expand(1000, 3), generator=gen)
keep = (u.abs() < 4).all(-1)
reference = D.TransformedDistribution(D.Normal(mu, log_std.exp()), [D.TanhTransform()]).log_prob(a[keep]).sum(-1)
assert torch.allclose(squashed_gaussian_log_prob(u[keep], mu, log_std), reference, atol=1e-3)

# %% [markdown]
# SAC's actor (`lecturekit.nets.SquashedGaussianActor`) outputs $\mu_\theta(s)$ and a clamped
# $\log\sigma_\theta(s)$ from one network, returns the action $c + h\tanh(u)$ for the box $[c - h, c + h]$, and the
# log-probability of $\tanh(u)$ as above. The affine map to the box only shifts $\log\pi$ by the constant
# $-\sum_d\log h_d$, which changes no gradient; the target entropy $-\dim(A)$ of the temperature loss is meant in
# the $[-1, 1]$ units.
#
# **Entropy of a squashed Gaussian.** There is no closed form, but $-\frac1n\sum_i\log\pi(a_i)$ over samples
# estimates it, which is exactly what the temperature loss uses. Unlike the plain Gaussian's, it does not grow
# without bound as $\sigma$ grows: once most samples land near $\pm1$ a wider Gaussian only squeezes more mass into
# the corners, and the entropy falls again. The estimate below shows the maximum.

# %%
sigmas = np.exp(np.linspace(-3, 2.5, 23))
H = []
for s in sigmas:
    mu, log_std = torch.zeros(200_000, 1), torch.full((200_000, 1), math.log(s))
    a, u = squashed_gaussian_sample(mu, log_std, generator=gen)
    H.append(-squashed_gaussian_log_prob(u, mu, log_std).mean().item())
H = np.array(H)
plt.figure(figsize=(5, 3))
plt.semilogx(sigmas, H, "o-", label="squashed Gaussian (Monte Carlo)")
plt.semilogx(sigmas, np.log(sigmas) + 0.5 * math.log(2 * math.pi * math.e), "--", label="Gaussian before tanh")
plt.axhline(math.log(2), color="gray", ls=":", label="uniform on (-1, 1): log 2")
plt.xlabel("σ")
plt.ylabel("entropy")
plt.ylim(-3, 2)
plt.legend(fontsize=8)
plt.tight_layout()
plt.show()
best = sigmas[H.argmax()]
print(f"largest entropy {H.max():.3f} at sigma ~ {best:.2f} (uniform: {math.log(2):.3f})")
assert H.max() < math.log(2)  # no density on (-1, 1) beats the uniform one
assert 0.5 < best < 2.0 and H[-1] < H.max() - 0.3  # too wide a Gaussian loses entropy after squashing
