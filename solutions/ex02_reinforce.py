# %% [markdown]
# # Exercise 02 · REINFORCE: the loss, a Gaussian policy gradient, the baseline, and the whole algorithm
#
# *Time: about 130 minutes for a student who followed the lecture, best in two sittings: sections 1-4 (four
# functions, about 25 lines, two short derivations on paper: about 70 minutes) and the build-it sections 5-6 (two
# functions, about 46 lines: about 60 minutes); an estimate from working it from the stub, see the course map. The
# checks and training runs take about 15 s of machine time in all (the longest: 6-8 s for the CartPole run of
# section 1). Difficulty 2 of 5.*
#
# Lecture: "Vanilla policy gradient (REINFORCE)", "Variance Reduction By Baseline" and "Policy Parametrizations".
# Notebooks [04 REINFORCE](../notebooks/04_reinforce.ipynb), [05 Baselines](../notebooks/05_baselines_variance.ipynb)
# and [06 Parametrizations](../notebooks/06_policy_parametrizations.ipynb) tell the story; here you write the
# pieces yourself.
#
# 1. `reinforce_loss`: the loss whose gradient is (minus) the REINFORCE estimate. You then train CartPole with it.
# 2. `gaussian_policy_gradient`: the same estimate for a one-dimensional Gaussian policy, written out by hand
#    (no autograd), used to find the revenue-maximising price of a product.
# 3. A derivation with a numerical answer: the baseline's zero expectation (`score_estimator_moments`). (The
#    log-derivative trick, the other derivation, is the last section of exercise 01.)
# 4. `score_gradient_samples`: REINFORCE's per-episode gradient on the course's small MDP, with which you measure
#    the variance with and without a baseline against the exact gradient.
# 5. and 6. Build it: the episode collection (`collect_episodes`) and the whole update (`reinforce_update`), which
#    the course's training loop runs to train CartPole live.
#
# The returns-to-go come from `discounted_returns` (exercise 00); here the reference one in `lecturekit.returns` does
# that part.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import numpy as np
import torch

from lecturekit.checks import check_gaussian_policy_gradient, check_reinforce_loss

# %% [markdown]
# ## 1. The REINFORCE loss
#
# Sample episodes with $\pi_\theta$, and write $G_t$ for the return-to-go of step $t$ and $b_t$ for a baseline that
# does not depend on the action taken at step $t$. The REINFORCE estimate of the policy gradient over a batch of
# $n$ time steps (all episodes together) is
#
# $$\hat g = \frac1n \sum_{t} \nabla_\theta \log \pi_\theta(a_t \mid s_t)\,(G_t - b_t).$$
#
# An optimizer minimises, so we hand it a **loss** whose gradient is $-\hat g$:
#
# $$L(\theta) = -\frac1n \sum_t \log \pi_\theta(a_t \mid s_t)\,(G_t - b_t).$$
#
# $G_t$ and $b_t$ are numbers measured from the samples, so the gradient must flow only through
# $\log \pi_\theta$. This matters once the baseline is the output of a value network: without `.detach()` the
# policy loss would also push that network around.

# %%
def reinforce_loss(log_probs, returns, baseline=None):
    """L = -mean(log_probs * (returns - baseline)): its gradient is minus the REINFORCE policy-gradient estimate.

    log_probs: torch tensor of log pi(a_t|s_t), any shape (e.g. (T,) or (T, N)), requires grad.
    returns:   torch tensor of the returns-to-go G_t, same shape.
    baseline:  None (meaning 0) or a torch tensor b_t of the same shape.
    Returns a scalar tensor. No gradient may flow into `returns` or `baseline`; do not modify the inputs.
    """
    ### BEGIN SOLUTION
    adv = returns if baseline is None else returns - baseline
    return -(log_probs * adv.detach()).mean()
    ### END SOLUTION


# %%
check_reinforce_loss(reinforce_loss)

# %% [markdown]
# ### Your loss trains CartPole
#
# Here is all of REINFORCE, around your loss: sample 16 episodes in parallel with the current policy, compute the
# returns-to-go, use their batch mean as the baseline, take one Adam step. `lecturekit.algos.reinforce` supplies the
# episode collection (vectorised, under `no_grad`); the training step is yours. It usually balances the pole for the
# full 500 steps after 40k to 80k environment steps (a few seconds).

# %% tags=["uses-answer"]
from lecturekit.algos import reinforce as R
from lecturekit.envs import make_vec
from lecturekit.evaluation import evaluate
from lecturekit.nets import ActorCritic
from lecturekit.returns import bootstrapped_returns

envs = make_vec("CartPole-v1", 16, seed=0)
model = ActorCritic(envs.single_observation_space, envs.single_action_space)
policy = R.Policy(model, envs.single_action_space)
opt = torch.optim.Adam(model.pi.parameters(), lr=1e-2)
buffers = R.episode_buffers(envs, t_max=500)
curve, steps = [], 0
while steps < 100_000:
    batch = R.collect_episodes(envs, policy, buffers, t_max=500)
    G = bootstrapped_returns(batch.rewards, batch.ends, np.zeros(16), gamma=0.99)  # returns-to-go of each episode
    m = batch.valid  # (T, 16): steps that belong to an episode
    obs, act = torch.as_tensor(batch.obs[m]), torch.as_tensor(batch.actions[m])
    ret = torch.as_tensor(G[m], dtype=torch.float32)
    loss = reinforce_loss(model.log_prob(obs, act), ret, torch.full_like(ret, ret.mean().item()))
    opt.zero_grad()
    loss.backward()
    opt.step()
    steps += batch.env_steps
    curve.append((steps, batch.episode_returns().mean()))
    if curve[-1][1] >= 475 and evaluate(policy.greedy, "CartPole-v1", 20, seed=123)[0] >= 475:
        break
envs.close()

import matplotlib.pyplot as plt

plt.figure(figsize=(6, 3))
plt.plot(*zip(*curve))
plt.xlabel("environment steps"), plt.ylabel("mean episode return of the batch"), plt.title("REINFORCE, your loss")
plt.show()
final = evaluate(policy.greedy, "CartPole-v1", 20, seed=123)[0]
print(f"{steps} environment steps; greedy evaluation return {final:.1f}")
assert final >= 475

# %% [markdown]
# ## 2. A Gaussian policy gradient, by hand: pricing one product
#
# A shop sets a price $a$ for one selling period; the number of buyers is Poisson with mean
# $\lambda(a) = 3 e^{-a}$ (demand falls as the price rises), and the revenue is $R = a \cdot D$. The expected revenue
# $3 a e^{-a}$ is largest at $a^\star = 1$. The shop does not know the demand curve: it tries prices from a Gaussian
# policy $a \sim \mathcal N(\mu, \sigma^2)$ with $\sigma = e^{\log\sigma}$, and climbs the REINFORCE estimate of
# $\nabla_{(\mu, \log\sigma)} \mathbb E[R]$.
#
# For one sample, the score (the gradient of $\log \mathcal N(a; \mu, \sigma^2)$) has a closed form. With
# $d = a - \mu$:
#
# $$\frac{\partial \log \pi}{\partial \mu} = \frac{d}{\sigma^2}, \qquad
#   \frac{\partial \log \pi}{\partial \log\sigma} = \frac{d^2}{\sigma^2} - 1.$$
#
# (The second one follows from $\log \pi = -\tfrac{d^2}{2\sigma^2} - \log\sigma - \tfrac12\log 2\pi$ and
# $\partial\sigma / \partial\log\sigma = \sigma$.) The estimate averages score times $(R_i - b)$ over the samples.
# Derive both scores on paper before you code them.

# %%
def gaussian_policy_gradient(actions, mu, log_std, returns, baseline=0.0):
    """REINFORCE estimate of grad E[R] for a 1-D Gaussian policy a ~ N(mu, exp(log_std)^2), without autograd.

    actions: NumPy array (B,) of sampled actions a_i; returns: NumPy array (B,) of their returns R_i (ints allowed).
    mu, log_std: floats, the policy's parameters.  baseline: float b subtracted from every return.
    Returns a float NumPy array of shape (2,): [mean_i dlog pi(a_i)/dmu * (R_i - b),
                                                mean_i dlog pi(a_i)/dlog_std * (R_i - b)].
    """
    ### BEGIN SOLUTION
    a = np.asarray(actions, dtype=float)
    d, var = a - mu, np.exp(2.0 * log_std)
    w = np.asarray(returns, dtype=float) - baseline
    return np.array([np.mean(d / var * w), np.mean((d * d / var - 1.0) * w)])
    ### END SOLUTION


# %%
check_gaussian_policy_gradient(gaussian_policy_gradient)

# %% [markdown]
# ### Your gradient finds the price
#
# Start from a price of 2.5 with $\sigma = 0.5$. Each step tries 256 prices, observes the revenues, uses their mean
# as the baseline, and moves $(\mu, \log\sigma)$ along your estimate. The mean price should settle near
# $a^\star = 1$ and the policy should become more certain (smaller $\sigma$) as it does.

# %% tags=["uses-answer"]
rng = np.random.default_rng(0)
mu, log_std, lr = 2.5, np.log(0.5), 0.1
path = [mu]
for _ in range(300):
    prices = mu + np.exp(log_std) * rng.standard_normal(256)
    revenue = prices * rng.poisson(3.0 * np.exp(-np.clip(prices, 0, None)))
    g = gaussian_policy_gradient(prices, mu, log_std, revenue, baseline=revenue.mean())
    mu, log_std = mu + lr * g[0], max(log_std + lr * g[1], np.log(0.05))
    path.append(mu)

plt.figure(figsize=(6, 3))
plt.plot(path, label="mean price $\\mu$")
plt.axhline(1.0, color="C2", ls="--", label="best price $a^\\star = 1$")
plt.xlabel("gradient step"), plt.legend(), plt.show()
expected_revenue = lambda a: 3.0 * a * np.exp(-a)
print(f"mu = {mu:.3f}, sigma = {np.exp(log_std):.3f}; expected revenue at mu: {expected_revenue(mu):.4f}, "
      f"at the best price: {expected_revenue(1.0):.4f}")
assert abs(mu - 1.0) < 0.2 and expected_revenue(mu) >= 0.98 * expected_revenue(1.0) and np.exp(log_std) < 0.5

# %% [markdown]
# **Think about it.** Run the pricing loop with `baseline=0.0`. The estimate stays unbiased, so why does $\mu$ wander
# much more? (Notebook 05 measures exactly this.) And what would go wrong with prices below 0 if we did not clip them
# inside the demand model?

# %% [markdown] tags=["answer"]
# **Answer.** Revenues are all positive (about 0 to 3 per sale), so without a baseline every sampled price is
# pushed *up* in probability, the good ones only a little more than the bad ones. The estimate is still unbiased
# (the pushes cancel on average, because $\mathbb E[\nabla\log\pi] = 0$), but each step is a large random push
# whose useful part is a small difference: its variance is proportional to $\mathbb E[R^2]$ instead of
# $\mathbb E[(R - b)^2]$, so $\mu$ performs a random walk around the slow drift. With the mean revenue as
# baseline, only prices that did better than the batch average are reinforced.
#
# Without the clip, a price $a < 0$ would have demand $3e^{-a}$, growing exponentially (22 buyers at $a = -2$, 8 900
# at $a = -8$), and a revenue $a \cdot D$ that is hugely negative: a few rare samples in the left tail of the Gaussian
# would dominate the whole batch. The estimate gets a heavy tail (enormous variance, occasional overflow), although
# a negative price is meaningless for the shop anyway.

# %% [markdown]
# ## 3. A derivation with a numerical answer: the baseline changes the variance, not the mean
#
# Lecture: "Variance Reduction By Baseline". One sample of the score-function estimator for a bandit with softmax
# policy $\pi = \mathrm{softmax}(h)$ and rewards $r(a)$ is $\hat g(a) = (r(a) - b)\,(e_a - \pi)$ with
# $a \sim \pi$. Derive on paper that
#
# $$\mathbb E_{a\sim\pi}\big[b\,(e_a - \pi)\big] = b \sum_a \pi(a)(e_a - \pi) = b\,(\pi - \pi) = 0,$$
#
# so the mean of $\hat g$ is the exact gradient $\nabla_h J$ for every $b$, while its total variance
# $\operatorname{Var}[\hat g] = \mathbb E\|\hat g\|^2 - \|\mathbb E \hat g\|^2$ does depend on $b$. Then compute both
# **exactly**, as sums over the actions (no sampling).

# %%
from lecturekit.checks import check_score_estimator_moments


def score_estimator_moments(logits, rewards, baseline):
    """Exact mean and total variance of g(a) = (r(a) - baseline) * (e_a - pi), a ~ pi = softmax(logits).

    logits, rewards: NumPy arrays (A,); baseline: a float.
    Returns (mean, variance): mean a float NumPy array (A,) = sum_a pi(a) g(a); variance a float
    = sum_a pi(a) |g(a)|^2 - |mean|^2 (the sum of the variances of the A entries).
    """
    ### BEGIN SOLUTION
    h = np.asarray(logits, dtype=float)
    pi = np.exp(h - h.max())
    pi /= pi.sum()
    g = (np.asarray(rewards, dtype=float) - baseline)[:, None] * (np.eye(len(pi)) - pi)  # row a: g(a)
    mean = pi @ g
    return mean, float(pi @ (g * g).sum(1) - mean @ mean)
    ### END SOLUTION


# %%
check_score_estimator_moments(score_estimator_moments)

# %% [markdown]
# The variance is a quadratic in $b$. Setting its derivative to zero gives the variance-minimising constant baseline
# $b^\star = \mathbb E[\|\nabla\log\pi\|^2 r] \,/\, \mathbb E[\|\nabla\log\pi\|^2]$, a *weighted* mean of the rewards,
# close to but not equal to $\mathbb E[r]$. Your function, swept over $b$:

# %% tags=["uses-answer"]
h, r = np.array([0.3, -0.4, 1.0]), np.array([5.0, 6.0, 4.0])
bs = np.linspace(0, 10, 201)
means, variances = zip(*(score_estimator_moments(h, r, b) for b in bs))
p = np.exp(h) / np.exp(h).sum()
sq_score = ((np.eye(3) - p) ** 2).sum(1)  # |grad log pi(a)|^2
b_star = (p * sq_score * r).sum() / (p * sq_score).sum()
plt.figure(figsize=(6, 3))
plt.plot(bs, variances)
plt.axvline(b_star, color="C2", ls="--", label=f"$b^*$ = {b_star:.3f}")
plt.axvline(p @ r, color="C3", ls=":", label=f"mean reward = {p @ r:.3f}")
plt.xlabel("baseline b"), plt.ylabel("total variance"), plt.legend(), plt.show()
assert np.allclose(means, means[0])                    # the mean does not move with b
assert abs(bs[np.argmin(variances)] - b_star) < 0.05   # the minimum is at b*
assert variances[0] > 10 * min(variances)              # and b = 0 is far worse here

# %% [markdown]
# ## 4. Measure it: the variance of REINFORCE on the small MDP, with and without a baseline
#
# Now the same question on an MDP with states, where the lecture's estimator is
#
# $$\hat g = \sum_t \gamma^t \big(G_t - b(s_t)\big)\,\nabla_\theta \log\pi_\theta(a_t \mid s_t),
#   \qquad G_t = \sum_{k \ge t} \gamma^{k-t} r_k,$$
#
# one sample per episode. The policy is a tabular softmax, $\pi(\cdot|s) = \mathrm{softmax}(\theta[s])$, so
# $\nabla_\theta \log\pi(a|s)$ is $e_a - \pi(\cdot|s)$ in row $s$ of an $(S, A)$ array and zero elsewhere. Write the
# per-episode samples; the cell after the check measures their mean and variance for three baselines against the
# exact gradient of `lecturekit.tabular` (which knows the model; your function sees only the episodes).

# %%
from lecturekit.checks import check_score_gradient_samples
from lecturekit.returns import discounted_returns as returns_to_go  # exercise 00, the reference one


def score_gradient_samples(theta, episodes, gamma, baseline):
    """One REINFORCE gradient sample per episode, g_i = sum_t gamma^t (G_t - b(s_t)) grad log pi(a_t|s_t).

    theta:    NumPy array (S, A), the logits of the tabular softmax policy.
    episodes: list of n tuples (states (T,), actions (T,), rewards (T,)), T varying from episode to episode.
    gamma:    discount factor.  baseline: a float (the same b for every state) or a NumPy array (S,) with b[s].
    Returns a float NumPy array (n, S, A). Must not modify its inputs.
    """
    ### BEGIN SOLUTION
    theta = np.asarray(theta, dtype=float)
    S, A = theta.shape
    pi = np.exp(theta - theta.max(1, keepdims=True))
    pi /= pi.sum(1, keepdims=True)
    b = np.broadcast_to(np.asarray(baseline, dtype=float), (S,))
    out = np.zeros((len(episodes), S, A))
    for i, (states, actions, rewards) in enumerate(episodes):
        G = returns_to_go(rewards, gamma)
        for t, (s, a) in enumerate(zip(states, actions)):
            w = gamma ** t * (G[t] - b[s])
            out[i, s] -= w * pi[s]
            out[i, s, a] += w
    return out
    ### END SOLUTION


# %%
check_score_gradient_samples(score_gradient_samples)

# %% [markdown]
# The measurement. To make the effect large we add a reward of +1 to every step of the course's small MDP (the
# optimal policy does not change much, but every return becomes large and positive, the case where a baseline
# matters most). For each baseline: the variance of one episode's sample (summed over the 15 entries), and the
# largest distance of the mean from the exact gradient in standard errors (about 1 to 3 if unbiased).

# %% tags=["uses-answer"]
from lecturekit.tabular.mdp import TabularMDP, small_mdp

base = small_mdp()
mdp = TabularMDP(P=base.P, R=base.R + 1.0 * ~base.terminal[:, None], gamma=base.gamma, mu0=base.mu0,
                 terminal=base.terminal)
theta = np.random.default_rng(1).normal(size=(mdp.n_states, mdp.n_actions))
episodes = mdp.sample_episodes(theta, 4000, np.random.default_rng(0))
exact = mdp.exact_gradient(theta).numpy()
mean_G = np.mean(np.concatenate([returns_to_go(r, mdp.gamma) for _, _, r in episodes]))
measured = {}
for name, b in [("none", 0.0), ("mean return", mean_G), ("exact V(s)", mdp.value(theta).numpy())]:
    g = score_gradient_samples(theta, episodes, mdp.gamma, b)
    se = g.std(0, ddof=1) / np.sqrt(len(g))
    live = se > 0
    measured[name] = (g.var(0, ddof=1).sum(), np.max(np.abs(g.mean(0) - exact)[live] / se[live]))
    print(f"baseline {name:12s}: variance {measured[name][0]:8.3f}   max |mean - exact| / s.e. {measured[name][1]:.2f}")
assert all(z < 4.5 for _, z in measured.values())                    # unbiased with every baseline
assert measured["exact V(s)"][0] < 0.4 * measured["none"][0]          # and about 3x less variance with one
assert measured["mean return"][0] < 0.5 * measured["none"][0]

# %% [markdown]
# **Think about it.** The variance with $b = V(s)$ is about three times smaller here, yet the number of episodes
# needed for a given accuracy of the *mean* is what matters for learning. By how much does the baseline cut that
# number?

# %% [markdown] tags=["answer"]
# **Answer.** By the same factor as the variance. The error of the mean of $n$ independent samples has
# $\mathbb E\|\bar g_n - \nabla J\|^2 = \sigma^2 / n$ (no bias term, since the estimator is unbiased), so reaching a
# given accuracy takes $n \propto \sigma^2$ episodes: a baseline that divides the variance by 3 lets REINFORCE reach
# the same gradient accuracy with a third of the episodes, or take steps three times less noisy (in variance) with
# the same data.


# %% [markdown]
# ## 5. Build it: the episode collection
#
# Section 1's loop used `R.collect_episodes` and wrote the training step in the notebook. Now you write both halves
# of REINFORCE as the course's training loop calls them: `reinforce.train("CartPole-v1", collect=collect_episodes,
# update=reinforce_update)` creates the $N$ environments, the network and the optimizers, and calls your two
# functions once per batch.
#
# First the collection. A vector environment steps all $N$ copies at once; each copy plays **one** episode from a
# reset, and copies whose episode has ended keep being stepped (the vector env cannot stop one copy) until every
# copy is done. Those later steps belong to no episode: the mask `valid` marks them False, and their rewards are 0.
# Write into the preallocated arrays `bufs` (they hold the previous batch: overwrite every row you use) and return
# the first $T$ rows, $T$ = the number of steps you ran:
#
# | array | shape | row t, column i |
# |---|---|---|
# | `obs` | (T, N, 4) | the observation copy i chose its action from at step t |
# | `actions` | (T, N) | the network action `policy.sample(obs)` returned |
# | `rewards` | (T, N) | the reward of step t while copy i's episode runs, 0 after it |
# | `valid` | (T, N) | True while copy i's episode runs, *including* its last step |
# | `ends` | (T, N) | True on the last step of copy i's episode: terminated, truncated, or cut at `t_max - 1` |
#
# `policy.sample(obs)` draws the actions (from the run's own generator: call it exactly once per step);
# `policy.to_env(u)` turns them into environment actions.

# %%
from lecturekit.algos import reinforce
from lecturekit.checks import check_collect_episodes, check_reinforce_update


def collect_episodes(envs, policy, bufs, t_max):
    """Run the N copies of `envs` from a reset until each has finished one episode (or t_max steps).

    envs:   a Gymnasium vector env with N copies (envs.num_envs); envs.reset() -> (obs (N, obs_dim), info),
            envs.step(actions) -> (obs, reward, terminated, truncated, info), each (N, ...).
    policy: `reinforce.Policy`: policy.sample(obs) -> network actions (N,), policy.to_env(u) -> env actions.
    bufs:   dict of preallocated arrays (t_max, N, ...) "obs", "actions", "rewards", "valid", "ends" (see the table).
    Returns reinforce.Batch(obs, actions, rewards, valid, ends) holding the first T rows of the buffers.
    """
    ### BEGIN SOLUTION
    obs_b, act_b, rew_b, val_b, end_b = (bufs[k] for k in ("obs", "actions", "rewards", "valid", "ends"))
    obs, _ = envs.reset()
    alive = np.ones(envs.num_envs, dtype=bool)
    t = 0
    while t < t_max and alive.any():
        obs_b[t] = obs
        u = policy.sample(obs_b[t])
        act_b[t] = u
        obs, r, terminated, truncated, _ = envs.step(policy.to_env(u))
        done = alive & (terminated | truncated | (t == t_max - 1))
        val_b[t], rew_b[t], end_b[t] = alive, np.where(alive, r, 0.0), done
        alive = alive & ~done
        t += 1
    return reinforce.Batch(obs_b[:t], act_b[:t], rew_b[:t], val_b[:t], end_b[:t])
    ### END SOLUTION


# %%
check_collect_episodes(collect_episodes)

# %% [markdown]
# ## 6. Build it: the REINFORCE update
#
# One update on a batch of complete episodes, in order:
#
# 1. **Returns-to-go** $G_t = r_t + \gamma G_{t+1}$ of every column (each column is one episode; its rewards are 0
#    after its end, so one backward pass over the rows does it), kept on the valid steps only.
# 2. **Baseline** $b_t$ by `cfg.baseline`: `"none"` ($0$), `"mean"` (the mean of $G_t$ over the valid steps) or
#    `"value"` ($V_w(s_t)$, computed *before* the value network is fitted to this batch, without gradient).
# 3. **Policy step.** $A_t = G_t - b_t$; if `cfg.normalize_adv`, divide it by its std over the valid steps
#    ($A / (\operatorname{std}(A) + 10^{-8})$, torch's `.std()`; no centring: the baseline decides what counts as
#    better than usual). Loss: your `reinforce_loss` minus `cfg.entropy_coef` times the mean entropy; then
#    `opt.zero_grad()`, `backward()`, `opt.step()` (`opt` holds the policy's parameters).
# 4. **Value step** (only if `vf_opt` is not None, i.e. `cfg.baseline == "value"`): `cfg.vf_iters` steps of
#    `vf_opt` on $\overline{(V_w(s_t) - G_t)^2}$ over the valid steps.

# %%
def reinforce_update(model, opt, vf_opt, batch, cfg):
    """One REINFORCE step on a batch of N complete episodes, then the value regression.

    model:  `lecturekit.nets.ActorCritic`: model.log_prob(obs, act), model.entropy(obs), model.value(obs), (B,).
    opt:    torch optimizer over the policy's parameters (model.pi).
    vf_opt: torch optimizer over the value network's parameters (model.v), or None unless cfg.baseline == "value".
    batch:  reinforce.Batch: obs (T, N, obs_dim) float32, actions (T, N) int64, rewards (T, N) float32,
            valid (T, N) bool, ends (T, N) bool (NumPy arrays; see collect_episodes).
    cfg:    `reinforce.Config`: gamma, baseline ('none', 'mean', 'value'), normalize_adv, entropy_coef, vf_iters.
    Returns a dict of floats: loss (the policy loss minimised), episode_return (mean undiscounted return of the
    batch's episodes), and value_loss (the last value-regression loss) when vf_opt is not None.
    Must not modify `batch`.
    """
    ### BEGIN SOLUTION
    G = np.zeros(batch.rewards.shape)
    running = np.zeros(batch.rewards.shape[1])
    for t in reversed(range(len(G))):
        running = batch.rewards[t] + cfg.gamma * running
        G[t] = running
    m = batch.valid
    obs, act = torch.as_tensor(batch.obs[m]), torch.as_tensor(batch.actions[m])
    ret = torch.as_tensor(G[m], dtype=torch.float32)
    if cfg.baseline == "value":
        with torch.no_grad():
            b = model.value(obs)
    elif cfg.baseline == "mean":
        b = ret.mean().expand_as(ret)
    else:
        b = torch.zeros_like(ret)
    adv = ret - b
    if cfg.normalize_adv:
        adv = adv / (adv.std() + 1e-8)
    entropy = model.entropy(obs).mean()
    loss = reinforce_loss(model.log_prob(obs, act), adv) - cfg.entropy_coef * entropy
    opt.zero_grad()
    loss.backward()
    opt.step()
    stats = {"loss": loss.item(), "episode_return": float(batch.rewards.sum(0).mean())}
    if vf_opt is not None:
        for _ in range(cfg.vf_iters):
            value_loss = ((model.value(obs) - ret) ** 2).mean()
            vf_opt.zero_grad()
            value_loss.backward()
            vf_opt.step()
        stats["value_loss"] = value_loss.item()
    return stats
    ### END SOLUTION


# %%
check_reinforce_update(reinforce_update, collect=collect_episodes)

# %% [markdown]
# ### Your REINFORCE trains CartPole, live
#
# The course's loop with your two functions: 16 episodes per batch, a value baseline, one Adam step per batch. The
# curve is the greedy policy's return every 2,000 steps; Stop ends the run after the current update.

# %% tags=["uses-answer"]
from lecturekit.course import live
from lecturekit.evaluation import Run

yours = live.watch(lambda cb: reinforce.train("CartPole-v1", reinforce.Config(),
                                              Run(steps=60_000, seed=0, target=475, eval_every=2000, callback=cb),
                                              collect=collect_episodes, update=reinforce_update),
                   total_steps=60_000, target=475, title="REINFORCE with your collection and update")
print(f"solved in {yours.solved_at_steps} environment steps ({yours.solved_at_s:.1f} s)")
assert yours.solved
