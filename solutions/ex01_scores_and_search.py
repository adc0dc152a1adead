# %% [markdown]
# # Exercise 01 · Scores, finite differences and the cross-entropy method
#
# *Time: about 60 minutes for a student who followed the lecture (five functions, about 23 lines, one of them after a
# short derivation on paper; an estimate from working it from the stub, see the course map). The checks and the
# CEM run take about a second of machine time in all. Difficulty 1 of 5.*
#
# Lecture part 1: "Why Must Policies Be Stochastic?", "Policy Parametrizations", "Gradient-Free Policy
# Optimization", and the first step of the policy gradient theorem, "Apply the Log-Derivative Identity". Notebooks
# 01-03 use reference versions of these functions; here you write them yourself.
# Each function has a check cell below it: it prints a line when everything passes, or names the smallest input
# on which your answer is wrong, with the expected value, what you returned and a hint.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

# %%
import numpy as np
import torch

from lecturekit.checks import (check_cem_update, check_finite_difference_gradient, check_gaussian_log_prob,
                               check_softmax_score)

# %% [markdown]
# ## 1. The score of a softmax policy
#
# For logits $h \in \mathbb{R}^A$ and $\pi = \mathrm{softmax}(h)$, the score of action $a$ is
# $\nabla_h \log \pi(a) = e_a - \pi$. Computing $\exp(h)$ directly overflows for logits like 1000; subtract
# $\max(h)$ first (it cancels in the ratio).

# %%
def softmax_score(logits, action):
    """Gradient of log softmax(logits)[action] with respect to the logits.

    logits: 1-D NumPy array of shape (A,) (may have an integer dtype, may contain large values such as 1000).
    action: an int in [0, A).
    Returns a new float NumPy array of shape (A,): one_hot(action) - softmax(logits). Must not modify `logits`.
    """
    ### BEGIN SOLUTION
    h = np.asarray(logits, dtype=float)
    z = np.exp(h - h.max())
    score = -z / z.sum()
    score[action] += 1.0
    return score
    ### END SOLUTION


# %%
check_softmax_score(softmax_score)

# %% [markdown]
# ## 2. The log-density of a diagonal Gaussian policy
#
# $$\log \mathcal{N}(x; \mu, \mathrm{diag}\,\sigma^2) = \sum_{d=1}^D \Big[-\frac{(x_d - \mu_d)^2}{2\sigma_d^2}
# - \log \sigma_d - \tfrac12 \log 2\pi\Big], \qquad \sigma = e^{\log\sigma}.$$
#
# Stay in torch (no `.numpy()`, `.item()` or `.detach()`): policy gradients flow through this value.

# %%
def gaussian_log_prob(x, mu, log_std):
    """Log-density of a diagonal Gaussian, summed over the last dimension.

    x, mu, log_std: torch tensors broadcastable to shape (..., D) (log_std is often just (D,)).
    Returns a torch tensor of shape (...), differentiable with respect to mu and log_std.
    """
    ### BEGIN SOLUTION
    z = (x - mu) / torch.exp(log_std)
    return (-0.5 * z ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    ### END SOLUTION


# %%
check_gaussian_log_prob(gaussian_log_prob)

# %% [markdown]
# ## 3. Central finite differences
#
# $g_k = \dfrac{f(\theta + \epsilon e_k) - f(\theta - \epsilon e_k)}{2\epsilon}$ for every coordinate $k$. Work on
# float copies: the caller's `theta` must come back unchanged, and an integer `theta` must still be perturbed.

# %%
def finite_difference_gradient(f, theta, eps):
    """Central-difference estimate of the gradient of a scalar function.

    f:     a function from a 1-D NumPy array of shape (D,) to a float.
    theta: 1-D NumPy array of shape (D,) (may have an integer dtype); must not be modified.
    eps:   the perturbation size.
    Returns a float NumPy array of shape (D,).
    """
    ### BEGIN SOLUTION
    theta = np.array(theta, dtype=float)
    grad = np.zeros_like(theta)
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = eps
        grad[k] = (f(theta + step) - f(theta - step)) / (2 * eps)
    return grad
    ### END SOLUTION


# %%
check_finite_difference_gradient(finite_difference_gradient)

# %% [markdown]
# Your finite differences against the exact policy gradient of the course's small MDP (notebook 03): the
# objective is a smooth function of the logits, so they should agree closely.

# %% tags=["uses-answer"]
from lecturekit.tabular.mdp import small_mdp

mdp = small_mdp()
theta0 = np.random.default_rng(0).normal(size=(mdp.n_states, mdp.n_actions))


def J_flat(v):
    return mdp.J(torch.as_tensor(v.reshape(theta0.shape))).item()


fd = finite_difference_gradient(J_flat, theta0.ravel(), 1e-5)
exact = mdp.exact_gradient(torch.as_tensor(theta0)).numpy().ravel()
print("max difference to the exact gradient:", np.abs(fd - exact).max())
assert np.abs(fd - exact).max() < 1e-8

# %% [markdown]
# ## 4. The cross-entropy method's update
#
# Given $N$ sampled parameter vectors and their scores, keep the elite, the top $\max(1, \lfloor
# \text{elite\_frac} \cdot N\rfloor)$ by score, and refit the search distribution to them: their mean and their
# standard deviation per coordinate (`ddof=0`).

# %%
def cem_update(samples, scores, elite_frac):
    """Mean and standard deviation of the elite samples.

    samples:    NumPy array (N, D) of parameter vectors.
    scores:     NumPy array (N,) of their fitness (higher is better).
    elite_frac: fraction of samples to keep; at least one sample is always kept.
    Returns (mean, std): two float NumPy arrays of shape (D,), std with ddof=0.
    """
    ### BEGIN SOLUTION
    n_elite = max(1, int(elite_frac * len(scores)))
    elite = samples[np.argsort(scores)[::-1][:n_elite]]
    return elite.mean(axis=0), elite.std(axis=0)
    ### END SOLUTION


# %%
check_cem_update(cem_update)

# %% [markdown]
# Your `cem_update` inside a complete cross-entropy method on CartPole-v1: a linear policy, 64 candidates per
# generation, each run for one episode in a vectorised environment, and 0.1 extra standard deviation per
# generation. It usually solves the task (mean return 475 over 20 evaluation episodes) within ten generations.

# %% tags=["uses-answer"]
from lecturekit.algos.gradient_free import population_returns
from lecturekit.envs import make_vec
from lecturekit.evaluation import evaluate
from lecturekit.policies import LinearAgent, LinearPolicy

rng = np.random.default_rng(0)
policy = LinearPolicy(obs_dim=4, n_out=2)
envs = make_vec("CartPole-v1", 64)
mean, std = np.zeros(policy.n_params), np.ones(policy.n_params)
for generation in range(15):
    samples = mean + std * rng.standard_normal((64, policy.n_params))
    scores, _ = population_returns(envs, policy, samples, seed=generation)
    mean, std = cem_update(samples, scores, 0.2)
    std = std + 0.1
    eval_mean, _ = evaluate(LinearAgent(policy, mean), "CartPole-v1", episodes=20, seed=1000)
    print(f"generation {generation}: best candidate {scores.max():.0f}, mean policy {eval_mean:.1f}")
    if eval_mean >= 475:
        break
envs.close()
assert eval_mean >= 475

# %% [markdown]
# ## 5. A derivation with a numerical answer: the log-derivative trick
#
# Lecture: "Apply the Log-Derivative Identity". For a bandit with $A$ actions, rewards $r(a)$ and the softmax policy
# $\pi = \mathrm{softmax}(h)$, the objective is $J(h) = \sum_a \pi(a)\, r(a)$. Its gradient is a sum of
# $\nabla_h \pi(a)$, which is not an expectation and so cannot be estimated from samples. The identity
# $\nabla \pi(a) = \pi(a)\, \nabla \log \pi(a)$ turns it into one:
#
# $$\nabla_h J = \sum_a \pi(a)\, r(a)\, \nabla_h \log \pi(a) = \mathbb{E}_{a \sim \pi}\big[r(a)\, \nabla_h \log\pi(a)\big].$$
#
# Derive it on paper, then write the right-hand side as an **exact** sum over the actions, using the score of
# section 1 ($\nabla_h \log\pi(a) = e_a - \pi$). No sampling and no autograd: the checker compares your number with
# autograd's gradient of $J$. Logits can be as large as 1000.

# %%
from lecturekit.checks import check_log_derivative_gradient


def log_derivative_gradient(logits, rewards):
    """Exact gradient of J(h) = sum_a softmax(h)[a] * r[a], written as sum_a pi(a) r(a) (e_a - pi).

    logits: NumPy array (A,) (may be ints, may be as large as 1000); rewards: NumPy array (A,) (may be ints).
    Returns a float NumPy array of shape (A,). Must not modify its inputs.
    """
    ### BEGIN SOLUTION
    h = np.asarray(logits, dtype=float)
    r = np.asarray(rewards, dtype=float)
    pi = np.exp(h - h.max())
    pi /= pi.sum()
    scores = np.eye(len(pi)) - pi  # row a: grad log pi(a) = e_a - pi
    return (pi * r) @ scores
    ### END SOLUTION


# %%
check_log_derivative_gradient(log_derivative_gradient)

# %% [markdown]
# The point of the trick: the expectation can be **estimated from samples** of the policy, without knowing $r$ for
# the actions not taken. Below, the average of $r(a)\,(e_a - \pi)$ over sampled actions approaches your exact value
# as the number of samples grows (the error shrinks like $1/\sqrt{n}$).

# %% tags=["uses-answer"]
h, r = np.array([0.5, -0.2, 1.0, 0.0]), np.array([1.0, 3.0, -1.0, 0.5])
exact = log_derivative_gradient(h, r)
p = np.exp(h - h.max()) / np.exp(h - h.max()).sum()
rng = np.random.default_rng(0)
for n in [100, 10_000, 1_000_000]:
    a = rng.choice(4, size=n, p=p)
    estimate = (r[a][:, None] * (np.eye(4)[a] - p)).mean(0)
    print(f"n = {n:>9,}: largest error of the sample estimate {np.abs(estimate - exact).max():.4f}")
assert np.abs(estimate - exact).max() < 0.01

# %% [markdown]
# **Think about it.** The sample estimate above uses only the reward of the action that was drawn. Why can a
# finite-difference estimate (section 3) not do the same with a single episode per perturbation of the policy?
# (Hint: what does each method need to know about $J$ near $\theta$?)

# %% [markdown] tags=["answer"]
# **Answer.** The log-derivative estimate needs only samples *from the current policy* and their rewards: the
# score $\nabla\log\pi(a)$ is known exactly because we wrote the policy, so every single sample is an unbiased
# (if noisy) estimate of the whole gradient. Finite differences must evaluate $J$ at $\theta \pm \epsilon e_k$ for
# every coordinate $k$: $2D$ policies, each evaluated well enough that the difference of two noisy returns divided
# by $2\epsilon$ is not swamped by noise. With one episode per evaluation the noise of the difference is
# $O(\sigma / \epsilon)$, which explodes for the small $\epsilon$ that the approximation needs.
