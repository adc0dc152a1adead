# %% [markdown]
# # 06 · Policy parametrizations: softmax and Gaussian
#
# Lecture: "Policy Parametrizations", and the actor networks of "Deep policy gradient methods".
#
# REINFORCE needs two things from a policy: samples $a \sim \pi_\theta(\cdot\mid s)$ and the gradient of
# $\log\pi_\theta(a\mid s)$. Any family of distributions that provides both will do. Two families cover almost
# everything in this course:
#
# | action space | policy | what the network outputs |
# |---|---|---|
# | discrete (push left / right, which city next) | softmax | one score $h_\theta(s, a)$ per action |
# | continuous (a price, a torque, an order quantity) | Gaussian | a mean $\mu_\theta(s)$, and a standard deviation that is either one learned number or $\sigma_\theta(s)$ |

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.course import live
from lecturekit.algos import reinforce
from lecturekit.evaluation import Run
from lecturekit.distributions import gaussian_log_prob
from lecturekit.policies import gaussian_score, softmax, softmax_score

# %% [markdown]
# ## 1. Softmax policies for discrete actions
#
# $$\pi_\theta(a\mid s) = \frac{\exp h_\theta(s, a)}{\sum_{a'} \exp h_\theta(s, a')}$$
#
# The scores (logits) $h_\theta$ can be anything differentiable: a table $\theta_{s,a}$ (part 1's MDP), a linear
# function of features, or a neural network. Three properties matter in practice:
#
# - probabilities are positive and sum to one for *any* scores, so gradient steps never leave the family;
# - adding the same number to every score changes nothing (only differences between scores matter), which is also
#   how we compute it without overflow: subtract the largest score first;
# - scaling the scores sharpens or flattens the distribution (a *temperature*); large scores give a nearly greedy
#   policy, and with it little exploration.

# %%
h = np.array([2.0, 1.0, -1.0])
print("pi =", softmax(h).round(4))
assert np.isclose(softmax(h).sum(), 1.0) and (softmax(h) > 0).all()
assert np.allclose(softmax(h + 1000.0), softmax(h))  # shift invariance, and no overflow

temps = [0.25, 1.0, 4.0]
fig, ax = plt.subplots(figsize=(6, 2.8))
for i, T in enumerate(temps):
    ax.bar(np.arange(3) + 0.27 * i, softmax(h / T), width=0.27, label=f"temperature {T}")
ax.set_xticks(np.arange(3) + 0.27, [f"a={a} (h={v:g})" for a, v in enumerate(h)]), ax.set_ylabel("$\\pi(a)$")
ax.legend(), plt.show()
assert softmax(h / 0.25)[0] > softmax(h)[0] > softmax(h / 4.0)[0]

# %% [markdown]
# **Its score.** Differentiating $\log\pi(a) = h_a - \log\sum_b e^{h_b}$ with respect to the scores gives
# $\nabla_h \log\pi(a) = e_a - \pi$: raise the taken action's score, lower all scores in proportion to their
# probability. The REINFORCE step multiplies this by $G_t - b$. Autograd agrees:

# %%
for a in range(3):
    hv = torch.tensor(h, requires_grad=True)
    torch.log_softmax(hv, -1)[a].backward()
    assert np.allclose(hv.grad.numpy(), softmax_score(h, a))
print("score of action 0:", softmax_score(h, 0).round(4), "(sums to 0: probability moves, it is not created)")

# %% [markdown]
# **A learned softmax policy.** Notebook 04's CartPole policy is a softmax over two actions with a 64-64 MLP
# computing the scores. We train it again (a few seconds) and look at what it learned: the probability of pushing
# right as a function of the pole's angle and angular velocity (cart at rest in the middle).

# %%
h_cart = live.watch(lambda cb: reinforce.train("CartPole-v1", reinforce.Config(),
                                               Run(steps=100_000, seed=0, target=475, eval_every=4000, callback=cb)),
                    total_steps=100_000, target=475, title="REINFORCE, softmax policy on CartPole")
print(h_cart.summary())
assert h_cart.solved

angles, omegas = np.linspace(-0.2, 0.2, 41), np.linspace(-1.5, 1.5, 41)
A, Om = np.meshgrid(angles, omegas)
obs = np.stack([np.zeros_like(A), np.zeros_like(A), A, Om], -1).reshape(-1, 4).astype(np.float32)
with torch.no_grad():
    p_right = torch.softmax(h_cart.model.dist_params(torch.as_tensor(obs)), -1)[:, 1].numpy().reshape(A.shape)
plt.figure(figsize=(5.5, 3.6))
plt.pcolormesh(angles, omegas, p_right, cmap="coolwarm", vmin=0, vmax=1, shading="auto")
plt.colorbar(label="$\\pi$(push right | s)")
plt.xlabel("pole angle (rad, > 0: leaning right)"), plt.ylabel("angular velocity (rad/s)")
plt.title("learned softmax policy on CartPole"), plt.show()
# a pole that leans and falls to the right is caught by pushing the cart right, and vice versa
assert p_right[(A > 0.05) & (Om > 0.5)].mean() > 0.9 and p_right[(A < -0.05) & (Om < -0.5)].mean() < 0.1

# %% [markdown]
# The policy mostly reads the angular velocity: it pushes the cart in the direction the pole is falling, and the
# angle only tilts the boundary a little. It is nearly deterministic except in a thin band around zero angular
# velocity, where either push is about as good.
#
# ## 2. Gaussian policies for continuous actions
#
# $$\pi_\theta(a\mid s) = \mathcal N\big(a;\ \mu_\theta(s),\ \sigma_\theta(s)^2\big), \qquad
#   \log\pi = -\frac{(a-\mu)^2}{2\sigma^2} - \log\sigma - \tfrac12\log 2\pi$$
#
# (for several action dimensions, one independent Gaussian per dimension: the log-densities add). We learn
# $\log\sigma$ rather than $\sigma$ so that any real number is a valid parameter. The score has a closed form,
# with $d = a - \mu$:
#
# $$\frac{\partial\log\pi}{\partial\mu} = \frac{d}{\sigma^2}, \qquad \frac{\partial\log\pi}{\partial\log\sigma} = \frac{d^2}{\sigma^2} - 1 .$$
#
# A sample above the mean that did better than the baseline pulls $\mu$ up; a sample far from the mean (more than
# one $\sigma$) that did well widens the distribution, one close to the mean that did well narrows it.

# %%
a, mu, log_std = torch.tensor([1.3]), torch.tensor([0.5], requires_grad=True), torch.tensor([-0.2], requires_grad=True)
gaussian_log_prob(a, mu, log_std).backward()
d_mu, d_log_std = gaussian_score(1.3, 0.5, -0.2)
print(f"autograd: d/dmu = {mu.grad.item():.4f}, d/dlog_std = {log_std.grad.item():.4f}; "
      f"closed form: {d_mu:.4f}, {d_log_std:.4f}")
assert np.isclose(mu.grad.item(), d_mu) and np.isclose(log_std.grad.item(), d_log_std)
reference = torch.distributions.Normal(0.5, np.exp(-0.2)).log_prob(torch.tensor([1.3]))
assert torch.allclose(gaussian_log_prob(a, mu.detach(), log_std.detach()), reference)

# %% [markdown]
# **Bounded actions.** A Gaussian puts mass on every real number, but a price lies in $[0, 4]$ and a torque in
# $[-2, 2]$. `lecturekit.algos.reinforce` lets the Gaussian live in $[-1, 1]$ units $u$ and maps them affinely onto
# the environment's bounds, $a = \text{low} + (u + 1)(\text{high} - \text{low})/2$, clipping what falls outside
# (`lecturekit.envs.from_unit`; A2C, TRPO and PPO do the same). The
# log-probability used in the loss is that of the unclipped $u$, which is what was sampled. (Squashing with tanh
# instead of clipping is notebook 15's topic.)

# %%
from lecturekit.envs import from_unit  # importing lecturekit.envs registers the course's environments

price_space = gym.make("lecturekit/DynamicPricing-v0").action_space
print("price action space:", price_space)
to_env = lambda u: from_unit(u, price_space.low, price_space.high)  # noqa: E731
u = np.array([[-1.0], [0.0], [1.0], [1.7]], dtype=np.float32)
print("u:", u.ravel(), "-> price:", to_env(u).ravel())
assert np.allclose(to_env(u).ravel(), [price_space.low[0], (price_space.low[0] + price_space.high[0]) / 2,
                                      price_space.high[0], price_space.high[0]])

# %% [markdown]
# ## 3. One standard deviation, or one per state?
#
# The mean always depends on the state. For the spread there are two common choices:
#
# - **state-independent**: $\log\sigma$ is a free parameter, one per action dimension (the default in
#   `lecturekit.nets.ActorCritic`, and in most PPO implementations);
# - **state-dependent**: the network has a second output head, $\log\sigma_\theta(s)$
#   (`reinforce.Config(state_std=True)`; SAC uses this).
#
# When does the difference matter? Take a one-step task with a state $s \sim U[-1, 1]$, an action
# $a\in[-1, 1]$ and reward $r = -w(s)\,(a - s/2)^2$: the best action is $s/2$, and the weight $w(s) = 25^{(s+1)/2}$
# makes precision cheap on the left ($w = 1$) and expensive on the right ($w = 25$). On its own, every policy would
# shrink $\sigma$ to zero. We add a small **entropy bonus** $\alpha\, H(\pi(\cdot\mid s))$ to the reward (the
# subject of notebook 14), which rewards keeping some spread. For a Gaussian, $H = \log\sigma + \text{const}$ and
# the expected reward of state $s$ is $-w(s)\big((\mu - s/2)^2 + \sigma^2\big)$, so the best spread has a closed
# form:
#
# $$\sigma^\star(s) = \sqrt{\frac{\alpha}{2\,w(s)}} \quad\text{(one per state)}, \qquad
#   \sigma^\star_{\text{shared}} = \sqrt{\frac{\alpha}{2\,\mathbb E_s[w(s)]}} \quad\text{(one for all states)}.$$
#
# A state-dependent head can represent the first; a single $\sigma$ can only compromise.
#
# The environment is `lecturekit/PrecisionBandit-v0` (`lecturekit.envs.bandit`).

# %%
from lecturekit.envs.bandit import weight  # w(s) = 25^((s + 1) / 2)

alpha = 0.02


def train_bandit(callback, state_std, lr, seed=0):
    # normalize_adv=False: the entropy bonus must be weighed against the rewards themselves, not rescaled ones
    cfg = reinforce.Config(n_episodes=64, lr=lr, hidden=(32, 32), state_std=state_std, entropy_coef=alpha,
                           log_std_init=-2.0, min_log_std=-5.0, normalize_adv=False)
    run = Run(steps=20_000, seed=seed, eval_every=2000, eval_episodes=200, callback=callback)
    return reinforce.train("lecturekit/PrecisionBandit-v0", cfg, run)


runs = {True: live.demo(train_bandit, knobs={"state_std": True, "lr": (1e-3, 3e-2, 1e-3, 1e-2)},
                        total_steps=20_000, title="Gaussian policy with sigma(s), precision bandit")}
runs[False] = train_bandit(None, state_std=False, lr=1e-2)

# %% [markdown]
# The curve shows the return of the *mean* action (no sampling), which approaches 0 as $\mu(s)$ approaches $s/2$.
# Now the spreads, against the closed-form optimum:

# %% jupyter={"source_hidden": true}
s_grid = np.linspace(-1, 1, 41, dtype=np.float32)
sigma_star = np.sqrt(alpha / (2 * weight(s_grid)))
sigma_shared = np.sqrt(alpha / (2 * np.mean(weight(np.linspace(-1, 1, 100_001)))))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
learned = {}
for state_std, hist in runs.items():
    with torch.no_grad():
        mu_s, log_std_s = hist.model.dist_params(torch.as_tensor(s_grid[:, None]))
    learned[state_std] = (mu_s[:, 0].numpy(), np.exp(log_std_s.detach().expand_as(mu_s)[:, 0].numpy()))
    label = "state-dependent $\\sigma(s)$" if state_std else "one shared $\\sigma$"
    axes[0].plot(s_grid, learned[state_std][0], label=label)
    axes[1].plot(s_grid, learned[state_std][1], label=label)
axes[0].plot(s_grid, s_grid / 2, "k--", lw=1, label="best action s/2")
axes[0].set_xlabel("state s"), axes[0].set_ylabel("mean action $\\mu(s)$"), axes[0].legend()
axes[1].plot(s_grid, sigma_star, "k--", lw=1, label="$\\sigma^\\star(s)$")
axes[1].axhline(sigma_shared, color="0.5", ls=":", label="best shared $\\sigma$")
axes[1].set_xlabel("state s"), axes[1].set_ylabel("$\\sigma$"), axes[1].set_yscale("log"), axes[1].legend()
plt.tight_layout(), plt.show()


def objective(mu_s, sigma_s):
    """Exact expected reward plus entropy bonus, averaged over the states of the grid."""
    return float(np.mean(-weight(s_grid) * ((mu_s - s_grid / 2) ** 2 + sigma_s ** 2) + alpha * np.log(sigma_s)))


for state_std, (mu_s, sigma_s) in learned.items():
    print(f"state_std={state_std!s:<5}: max |mu - s/2| = {np.abs(mu_s - s_grid / 2).max():.3f}, "
          f"sigma from {sigma_s.min():.3f} to {sigma_s.max():.3f}, objective {objective(mu_s, sigma_s):.4f}")
print(f"optimum per state: sigma from {sigma_star.min():.3f} to {sigma_star.max():.3f}, objective "
      f"{objective(s_grid / 2, sigma_star):.4f}; best shared sigma {sigma_shared:.3f}")

# %%
mu_dep, sig_dep = learned[True]
mu_ind, sig_ind = learned[False]
assert np.abs(mu_dep - s_grid / 2).max() < 0.1 and np.abs(mu_ind - s_grid / 2).max() < 0.12
# the state-dependent head follows sigma*(s) within a factor 1.5 everywhere; the shared sigma is one number
assert np.abs(np.log(sig_dep / sigma_star)).max() < np.log(1.5)
assert np.ptp(sig_ind) == 0 and sig_dep[0] > 3 * sig_dep[-1]
assert objective(mu_dep, sig_dep) > objective(mu_ind, sig_ind)
# even the best shared sigma (with perfect means) scores below the per-state optimum
assert objective(s_grid / 2, np.full_like(s_grid, sigma_shared)) < objective(s_grid / 2, sigma_star)

# %% [markdown]
# Both policies find the right *mean*. The state-dependent spread follows $\sigma^\star(s)$: wide where a wrong action
# costs little, narrow where it costs a lot. The shared $\sigma$ has to pick one value for all states (after 20,000
# steps it is still on its way down to the best shared value: a single parameter that Adam moves by about the
# learning rate per update; even at that value, its objective would stay below the state-dependent one's). That extra
# flexibility has a price in general: a $\sigma_\theta(s)$ head can also collapse early in states the policy has
# not figured out yet, which is why many on-policy methods (A2C, TRPO, PPO in this course) keep the simpler shared
# $\log\sigma$, and entropy-regularised methods such as SAC use the state-dependent one.
#
# Next: [07 Pricing and inventory](07_pricing_inventory.ipynb), where a Gaussian REINFORCE policy sets prices and
# order quantities.
