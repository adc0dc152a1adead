# %% [markdown]
# # 01 · From value-based to policy-based learning
#
# Lecture part 1, "From value-based to policy-based learning": value-based vs policy-based methods, why the policy
# must be stochastic, and why an arg max over combinatorial action sets is out of reach.
#
# **What you will see.** A softmax policy and a Gaussian policy you can play with, together with their *score*
# $\nabla \log \pi$, the quantity every policy-gradient method multiplies with returns. Then a numerical
# demonstration that a deterministic policy gives the likelihood-ratio estimator nothing to work with, and a timing
# of brute-force search over routes ($n!$) and subsets ($2^n$).

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

# %% jupyter={"source_hidden": true}
import itertools
import math
import timeit

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from lecturekit.policies import gaussian_score, softmax, softmax_score
from lecturekit.applications.routing import brute_force_tsp, random_instances

# %% [markdown]
# ## 1. Two ways to act
#
# A **value-based** agent learns how good each action is, $Q(s, a)$, and acts by picking the best one,
# $a = \arg\max_a Q(s, a)$. The policy is implicit: it is whatever the arg max says. That is convenient when there
# are a handful of actions, but the arg max is itself an optimisation problem, and it becomes the bottleneck when
# actions are continuous (a price, a torque) or structured (a route, a schedule).
#
# A **policy-based** agent skips the detour: it has parameters $\theta$ that directly define a distribution
# $\pi_\theta(a \mid s)$ over actions, samples from it, and changes $\theta$ in the direction that makes high-return
# behaviour more likely:
#
# $$J(\theta) = \mathbb{E}_{\pi_\theta}\Big[\sum_{t \ge 0} \gamma^t r_t\Big], \qquad
# \theta \leftarrow \theta + \alpha \nabla_\theta J(\theta).$$
#
# No Bellman equation and no arg max are needed, but the gradient has to be estimated from sampled actions, and
# such estimates are noisy. The price of directness is variance.
#
# ## 2. A softmax policy (discrete actions)
#
# With logits (preferences) $h_a$ and a temperature $\tau$,
# $\pi(a) = \exp(h_a/\tau) / \sum_b \exp(h_b/\tau)$. Its score with respect to the logits has a simple form
# (for $\tau = 1$):
#
# $$\nabla_h \log \pi(a) = e_a - \pi,$$
#
# the one-hot vector of the sampled action minus the probability vector: sampling $a$ pushes up its own logit and
# pushes down the others in proportion to how likely they were. Move the sliders: as $\tau \to 0$ the policy
# approaches the arg max, and the score of the favourite action shrinks to zero.

# %%
def softmax_figure(h1=1.0, h2=0.5, h3=-0.5, temperature=1.0):
    """Bar plots of pi = softmax(h / temperature) and of the score e_a - pi of each action a (w.r.t. h / temperature)."""
    h = np.array([h1, h2, h3]) / temperature
    pi = softmax(h)
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    axes[0].bar(["a=0", "a=1", "a=2"], pi, color="C0")
    axes[0].set_ylim(0, 1)
    axes[0].set_title(f"pi(a), temperature {temperature:g}")
    for a in range(3):
        axes[1].bar(np.arange(3) + 0.25 * (a - 1), softmax_score(h, a), width=0.25, label=f"sampled a={a}")
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set_xticks(range(3), ["d/dh0", "d/dh1", "d/dh2"])
    axes[1].set_ylim(-1, 1)
    axes[1].set_title("score grad log pi(a) for each sampled a")
    axes[1].legend(fontsize=7, loc="lower right")
    plt.show()
    return pi


softmax_widget = W.interactive(softmax_figure, h1=(-3.0, 3.0, 0.1), h2=(-3.0, 3.0, 0.1), h3=(-3.0, 3.0, 0.1),
                               temperature=W.FloatLogSlider(value=1.0, base=10, min=-2, max=1, step=0.1))
display(softmax_widget)

# %% [markdown]
# Two facts hold for every setting of the sliders, and the cell below checks them on the widget's current
# values and after turning the temperature down: the probabilities sum to one, and the score has mean zero under
# the policy, $\sum_a \pi(a) \nabla \log \pi(a) = \nabla \sum_a \pi(a) = 0$. That zero mean is what later lets us
# subtract baselines without bias.

# %%
def check_softmax_facts(pi, h):
    mean_score = sum(pi[a] * softmax_score(h, a) for a in range(len(h)))
    assert np.isclose(pi.sum(), 1.0) and np.allclose(mean_score, 0.0, atol=1e-12)


kw = {k: v for k, v in softmax_widget.kwargs.items()}
check_softmax_facts(softmax_widget.result, np.array([kw["h1"], kw["h2"], kw["h3"]]) / kw["temperature"])
softmax_widget.children[3].value = 0.01  # the temperature slider: almost deterministic
pi_cold = softmax_widget.result
assert pi_cold[0] > 1 - 1e-12, pi_cold  # at temperature 0.01 the favourite action has all the mass
assert np.abs(softmax_score(np.array([1.0, 0.5, -0.5]) / 0.01, 0)).max() < 1e-12  # ... and its score vanishes
softmax_widget.children[3].value = 1.0

# %% [markdown]
# ## 3. A Gaussian policy (continuous actions)
#
# For a real-valued action, $\pi(a) = \mathcal{N}(a; \mu, \sigma^2)$ with $\sigma = e^{\log\sigma}$. The score with
# respect to the mean and the log standard deviation is
#
# $$\frac{\partial \log \pi(a)}{\partial \mu} = \frac{a - \mu}{\sigma^2}, \qquad
# \frac{\partial \log \pi(a)}{\partial \log\sigma} = \frac{(a-\mu)^2}{\sigma^2} - 1.$$
#
# An action above the mean pulls $\mu$ up, one below pulls it down; an action far from the mean (in either
# direction) says "widen", one close to it says "narrow". The smaller $\sigma$, the steeper the score: a nearly
# deterministic Gaussian policy reacts violently to tiny deviations, and at $\sigma = 0$ the score does not exist.

# %%
def gaussian_figure(mu=0.0, sigma=1.0):
    a = np.linspace(-4, 4, 401)
    dens = np.exp(-0.5 * ((a - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    d_mu, d_log_std = gaussian_score(a, mu, np.log(sigma))
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    axes[0].plot(a, dens)
    axes[0].set_title(f"N(a; {mu:.2f}, {sigma:.2f}^2)")
    axes[1].plot(a, d_mu, label="d log pi / d mu")
    axes[1].plot(a, d_log_std, label="d log pi / d log sigma")
    axes[1].set_ylim(-8, 8)
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].legend(fontsize=7)
    axes[1].set_title("score as a function of the action a")
    plt.show()
    return mu, sigma


gaussian_widget = W.interactive(gaussian_figure, mu=(-2.0, 2.0, 0.1), sigma=(0.1, 2.0, 0.05))
display(gaussian_widget)

# %% [markdown]
# The score formulas agree with automatic differentiation of $\log \mathcal{N}$, and both components average to zero
# over actions drawn from the policy (Monte Carlo with 200 000 draws, checked to within 5 standard errors).

# %%
mu, sigma = gaussian_widget.result
rng = np.random.default_rng(0)
a = rng.normal(mu, sigma, size=200_000)
d_mu, d_log_std = gaussian_score(a, mu, np.log(sigma))
for s in (d_mu, d_log_std):
    assert abs(s.mean()) < 5 * s.std() / np.sqrt(len(s))

m = torch.tensor(mu, requires_grad=True, dtype=torch.float64)
ls = torch.tensor(np.log(sigma), requires_grad=True, dtype=torch.float64)
torch.distributions.Normal(m, ls.exp()).log_prob(torch.tensor(1.3, dtype=torch.float64)).backward()
assert np.allclose(gaussian_score(1.3, mu, np.log(sigma)), [m.grad.item(), ls.grad.item()])

# %% [markdown]
# ## 4. Why the policy must be stochastic
#
# The likelihood-ratio (score-function) estimator that the rest of the course builds on is
#
# $$\nabla_\theta J \approx \frac{1}{N} \sum_{i=1}^N \nabla_\theta \log \pi_\theta(a_i)\, r(a_i), \qquad
# a_i \sim \pi_\theta.$$
#
# Take a one-step problem with three actions whose rewards are $r = (1, 0, 5)$ and logits that favour action 0.
# Action 2 is by far the best, so the true gradient should push toward it. We lower the temperature step by step
# and estimate the gradient from 10 000 samples each time.

# %%
r = np.array([1.0, 0.0, 5.0])
h = np.array([1.0, 0.5, -0.5])
rng = np.random.default_rng(1)
rows = []
for temperature in [3.0, 1.0, 0.3, 0.1, 0.03, 0.01]:
    pi = softmax(h / temperature)
    acts = rng.choice(3, size=10_000, p=pi)
    est = np.mean([softmax_score(h / temperature, a) * r[a] for a in acts], axis=0)
    exact = pi * (r - pi @ r)  # d/dh' sum_a pi(a) r(a) with h' = h / temperature
    rows.append((temperature, pi[2], len(set(acts)), np.linalg.norm(est), np.linalg.norm(exact)))
    print(f"temperature {temperature:5.2f}: pi(best) = {pi[2]:.1e}, distinct actions sampled = {len(set(acts))}, "
          f"|estimate| = {np.linalg.norm(est):.2e}, |exact| = {np.linalg.norm(exact):.2e}")

# %% [markdown]
# At high temperature all three actions get tried and the estimate matches the exact gradient. As the policy
# hardens, fewer actions are ever sampled; from temperature 0.03 on, every one of the 10 000 samples is action 0,
# the reward of action 2 is never observed, and the estimate shrinks toward zero (about 1e-22 at the end) because
# the sampled action's score $e_a - \pi$ vanishes when $\pi$ is one-hot. A deterministic policy
# $a = \arg\max_a h_a$ is the limit: the log-probability of the chosen action is $\log 1 = 0$ for every nearby
# $\theta$, so there is no gradient signal at all; the objective is piecewise constant in the logits, and a small
# finite difference sees nothing either.

# %%
assert rows[0][2] == 3 and rows[0][3] > 0.1           # stochastic: all actions tried, a real signal
assert rows[-1][2] == 1 and rows[-1][3] < 1e-12       # (almost) deterministic: one action, no signal


def J_deterministic(h):
    return r[np.argmax(h)]


delta = 1e-3
fd = [(J_deterministic(h + delta * e) - J_deterministic(h - delta * e)) / (2 * delta) for e in np.eye(3)]
assert fd == [0.0, 0.0, 0.0]  # flat: no direction looks better, although action 2 is worth 5x more
# autograd agrees: the argmax has no gradient, so log pi_det(a) = log 1 cannot depend on theta
hh = torch.tensor(h, requires_grad=True)
logp_det = torch.log(torch.nn.functional.one_hot(hh.argmax(), 3).double()[0])
assert not logp_det.requires_grad and logp_det.item() == 0.0

# %% [markdown]
# **Erratum E3: "stochasticity is essential", and where it is not.** The lecture's claim is true of the estimator
# above: the score-function gradient needs actions that vary. Part 6 of the lecture trains *deterministic* actors
# (DDPG, TD3) with the deterministic policy gradient, which looks like a contradiction. It is not, and the reason
# shows where the randomness went. A deterministic policy $a = \mu_\theta$ has a gradient whenever the return is a
# differentiable function of the action: $\nabla_\theta J = \nabla_a Q(a)\, \nabla_\theta \mu_\theta$, the chain
# rule, with no sampling at all. But $Q$ is unknown and must be *learned* from data, and a critic fitted to actions
# that never vary cannot know its own slope. DDPG therefore still explores with noisy actions; only the policy it
# *learns* is deterministic. Both halves, computed on the one-step reward $r(a) = -(a - 2)^2$ at $\theta = 0.5$:

# %%
def reward_1d(a):
    return -(a - 2.0) ** 2


theta_1d = torch.tensor(0.5, requires_grad=True)
reward_1d(theta_1d).backward()  # the deterministic policy a = theta, differentiated through a known reward
print(f"chain rule through a known reward: dJ/dtheta = {theta_1d.grad.item():.3f} (exact: -2 (0.5 - 2) = 3)")
assert abs(theta_1d.grad.item() - 3.0) < 1e-12

# a critic Q(a) = w0 a^2 + w1 a + w2 fitted by least squares, from 50 actions of the deterministic policy alone ...
rng_q = np.random.default_rng(3)
actions_fixed = np.full(50, 0.5)
rank_fixed = np.linalg.matrix_rank(np.vander(actions_fixed, 3))
# ... and from 50 actions with exploration noise (std 0.3), as DDPG's behaviour policy takes them
actions_noisy = 0.5 + 0.3 * rng_q.normal(size=50)
w = np.linalg.lstsq(np.vander(actions_noisy, 3), reward_1d(actions_noisy), rcond=None)[0]
slope = 2 * w[0] * 0.5 + w[1]
print(f"design matrix rank without noise: {rank_fixed} of 3 (the slope is not identifiable); "
      f"with noise: critic slope at theta {slope:.3f}")
assert rank_fixed == 1 and abs(slope - 3.0) < 1e-6

# %% [markdown]
# ## 5. Combinatorial actions: why the arg max is out of reach
#
# In routing the action is a whole tour through $n$ cities, $|\mathcal{A}| = n!$ orders (or $(n-1)!$ tours from a
# fixed start); in subset selection (which orders to accept, which items to pack) it is any subset,
# $|\mathcal{A}| = 2^n$. A value-based agent would need $Q(s, a)$ for every one of them just to act greedily once.
# We count the actions by enumerating them and time brute-force search as $n$ grows.

# %%
def brute_force_knapsack(values, weights, capacity):
    """Best subset by trying all 2^n of them (vectorised over subsets): (best value, number of subsets tried)."""
    n = len(values)
    masks = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float)
    total = masks @ values
    total[masks @ weights > capacity] = -np.inf
    return total.max(), len(masks)


rng = np.random.default_rng(2)
tsp_n, tsp_s, knap_n, knap_s = [], [], [], []
for n in range(4, 10):
    coords = random_instances(1, n, seed=n)[0]
    tsp_n.append(n)
    tsp_s.append(min(timeit.repeat(lambda: brute_force_tsp(coords), number=1, repeat=3)))  # best of 3: less noise
    assert sum(1 for _ in itertools.permutations(range(n))) == math.factorial(n)
for n in range(8, 19, 2):
    v, w = rng.random(n), rng.random(n)
    _, tried = brute_force_knapsack(v, w, capacity=w.sum() / 2)
    knap_n.append(n)
    knap_s.append(min(timeit.repeat(lambda: brute_force_knapsack(v, w, w.sum() / 2), number=1, repeat=3)))
    assert tried == 2 ** n

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
ns = np.arange(2, 21)
axes[0].semilogy(ns, [math.factorial(n) for n in ns], label="n! (orders)")
axes[0].semilogy(ns, 2.0 ** ns, label="2^n (subsets)")
axes[0].set_xlabel("n")
axes[0].set_title("number of actions |A|")
axes[0].legend()
axes[1].semilogy(tsp_n, tsp_s, "o-", label="routes: all (n-1)! tours")
axes[1].semilogy(knap_n, knap_s, "s-", label="subsets: all 2^n")
axes[1].set_xlabel("n")
axes[1].set_ylabel("seconds")
axes[1].set_title("brute-force arg max, measured")
axes[1].legend()
plt.tight_layout()
plt.show()
per_tour = tsp_s[-1] / math.factorial(tsp_n[-1] - 1)
print(f"{tsp_n[-1]} cities: {tsp_s[-1]:.2f} s; at that rate 20 cities would take "
      f"{per_tour * math.factorial(19) / 3.15e7:,.0f} years")

# %% [markdown]
# Each extra city multiplies the work by about $n$, each extra item doubles it: the measured times grow the same
# way as the counts. A policy-gradient method sidesteps the enumeration entirely. It builds the action one piece
# at a time (next city, include this item or not) from a stochastic policy, so acting costs $n$ small decisions,
# and learning needs only $\nabla \log \pi$ of the pieces it actually sampled; notebook 08 trains such a policy on
# routing.

# %%
assert tsp_s[-1] > 20 * tsp_s[0] and knap_s[-1] > 20 * knap_s[0]  # both blow up with n
assert math.factorial(20) > 2.0 ** 60 > 2.0 ** 20  # n! outgrows 2^n quickly
