# %% [markdown]
# # 04 · REINFORCE: the vanilla policy gradient
#
# Lecture: "Vanilla policy gradient (REINFORCE)": objective and gradient, the REINFORCE algorithm.
#
# Notebook 03 turned the gradient of the expected return into an expectation we can sample. This notebook makes an
# algorithm of it: sample episodes, compute each step's return-to-go, and follow the estimated gradient uphill.
# Three things are new here:
#
# 1. the **returns-to-go** $G_t$ that weight each action,
# 2. a **loss function** whose gradient is (minus) the estimate, so that an autograd library and an off-the-shelf
#    optimizer do the work,
# 3. a neural **softmax policy** trained this way on CartPole until it balances the pole for the full 500 steps.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.course import live
from lecturekit.algos import reinforce
from lecturekit.evaluation import Run
from lecturekit.returns import discounted_returns

# %% [markdown]
# ## 1. From the gradient to an algorithm
#
# The objective is the expected return of the stochastic policy, $J(\theta) = \mathbb E_{\pi_\theta}\big[\sum_t r_t\big]$
# (with a discount $\gamma$ when we want one). The log-derivative trick of notebook 03 gives
#
# $$\nabla_\theta J(\theta) = \mathbb E_{\pi_\theta}\Big[\sum_t \nabla_\theta \log \pi_\theta(a_t \mid s_t)\, G_t\Big],
# \qquad G_t = \sum_{k=t}^{T} \gamma^{k-t} r_k .$$
#
# Each action's log-probability is pushed up in proportion to what followed it. Rewards that came *before*
# step $t$ are left out: the action at $t$ cannot have caused them, and their product with the score has mean zero,
# so dropping them keeps the estimate unbiased and removes noise.
#
# **REINFORCE** (Williams, 1992) repeats three steps:
#
# 1. sample episodes $\tau = (s_0, a_0, r_0, \dots, s_T)$ with the current $\pi_\theta$;
# 2. compute $G_t$ for every step of every episode;
# 3. take a gradient-ascent step $\theta \leftarrow \theta + \alpha \sum_t \nabla_\theta \log \pi_\theta(a_t\mid s_t)\, G_t$.
#
# The samples are used for one step and then thrown away: the gradient is an expectation under the *current*
# policy (on-policy), so the next step needs fresh episodes.

# %% [markdown]
# ## 2. Returns-to-go
#
# One backward pass over the episode: $G_t = r_t + \gamma G_{t+1}$ with $G_T = 0$. The reference implementation is
# `lecturekit.returns.discounted_returns` (exercise 00). For a CartPole episode (reward 1 per step), early steps get
# large weights and the last steps small ones, even though every step paid the same reward.

# %%
G = discounted_returns([1.0, 0.0, 2.0], gamma=0.5)
# by hand: G_2 = 2, G_1 = 0 + 0.5 * 2 = 1, G_0 = 1 + 0.5 * 1 = 1.5
assert G.tolist() == [1.5, 1.0, 2.0]

G_cartpole = discounted_returns(np.ones(200), gamma=0.99)
plt.figure(figsize=(6, 2.8))
plt.plot(G_cartpole)
plt.xlabel("step t"), plt.ylabel("$G_t$"), plt.title("returns-to-go of a 200-step CartPole episode, $\\gamma$ = 0.99")
plt.show()
# the first step's weight is the geometric sum (1 - gamma^200) / (1 - gamma); the last one is just r = 1
assert np.isclose(G_cartpole[0], (1 - 0.99 ** 200) / (1 - 0.99)) and G_cartpole[-1] == 1.0

# %% [markdown]
# ## 3. A loss whose gradient is the policy gradient
#
# Autograd differentiates a number. So we write down a scalar whose gradient *is* the estimate, with the weights
# held fixed:
#
# $$L(\theta) = -\frac1n \sum_{t} \log \pi_\theta(a_t \mid s_t)\,\big(G_t - b_t\big), \qquad
#   -\nabla_\theta L = \frac1n \sum_t \nabla_\theta \log \pi_\theta(a_t\mid s_t)\,(G_t - b_t).$$
#
# The minus sign is there because optimizers minimise; $n$ is the number of time steps in the batch; $b_t$ is a
# baseline (0 for now; notebook 05 is about it). $G_t$ and $b_t$ are measured numbers, so no gradient may flow
# into them. $L$ is not the return and its value means little (it can fall while the policy gets worse); only its
# gradient matters. This is `reinforce.reinforce_loss`, and exercise 02 asks you to write it.
#
# **Check on an MDP with a known answer.** On part 1's small tabular MDP (4 states, 3 actions, exact gradient by a
# linear solve), the gradient of this loss over many sampled episodes must match the exact $\nabla J$. For the exact
# discounted objective, step $t$ is weighted by $\gamma^t G_t$ (its reward-to-go discounted back to the start); we
# use that weight here. Deep-RL code, including our CartPole runs below, usually drops the $\gamma^t$: a small,
# well-known bias towards the near future that works well in practice.

# %%
from lecturekit.tabular import estimators
from lecturekit.tabular.mdp import small_mdp

mdp = small_mdp()
theta = torch.tensor(np.random.default_rng(1).normal(size=(mdp.n_states, mdp.n_actions)))
episodes = mdp.sample_episodes(theta, 20_000, np.random.default_rng(0))

states = torch.as_tensor(np.concatenate([s for s, _, _ in episodes]))
actions = torch.as_tensor(np.concatenate([a for _, a, _ in episodes]))
weights = torch.as_tensor(np.concatenate([discounted_returns(r, mdp.gamma) * mdp.gamma ** np.arange(len(r))
                                          for _, _, r in episodes]))
theta_var = theta.clone().requires_grad_(True)
log_probs = torch.log_softmax(theta_var, dim=-1)[states, actions]
loss = reinforce.reinforce_loss(log_probs, weights)
loss.backward()
n_steps, n_episodes = len(states), len(episodes)
estimate = -theta_var.grad * n_steps / n_episodes  # mean over steps -> sum per episode, averaged over episodes

exact = mdp.exact_gradient(theta)
samples = estimators.per_episode_gradients(theta, episodes, mdp.gamma, reward_to_go=True)
stderr = samples.std(0) / np.sqrt(n_episodes)
print("exact gradient:\n", exact.numpy().round(4))
print("REINFORCE estimate (20,000 episodes):\n", estimate.numpy().round(4))
z = (estimate.numpy() - exact.numpy()) / np.maximum(stderr, 1e-12)
print(f"largest |estimate - exact| / standard error: {np.abs(z).max():.2f}")
# the autograd gradient of the loss is the hand-written score-function estimate (numpy, no autograd) ...
assert np.allclose(estimate.numpy(), samples.mean(0), atol=1e-10)
# ... and it agrees with the exact gradient within sampling error
assert np.abs(z).max() < 4.5
cos = float(np.sum(estimate.numpy() * exact.numpy()) / np.linalg.norm(estimate.numpy()) / np.linalg.norm(exact.numpy()))
assert cos > 0.95, cos

# %% [markdown]
# ## 4. A softmax policy on CartPole
#
# Now a neural policy. The network maps the 4-dimensional CartPole state to one score (logit) per action, and the
# policy is the softmax of the scores,
#
# $$\pi_\theta(a \mid s) = \frac{\exp h_\theta(s, a)}{\sum_{a'} \exp h_\theta(s, a')},$$
#
# a 64-64 tanh MLP here (`lecturekit.nets.ActorCritic`; notebook 06 looks at this and the Gaussian policy more
# closely). `lecturekit.algos.reinforce` runs the loop of section 1:
#
# - **sample**: 16 complete episodes per update, run side by side in a vectorised CartPole and stored as
#   $(T, N)$ arrays (a step after an episode has ended is masked out);
# - **returns**: $G_t$ per episode ($\gamma = 0.99$);
# - **step**: one Adam step on the loss of section 3 (the weights are rescaled by their batch standard deviation,
#   which changes the step size, not its direction), with a baseline that notebook 05 explains.
#
# Press **Train** to rerun with other settings; **Stop** ends a run early and keeps what was learned. The curve
# shows the mean return of 20 evaluation episodes with the most likely action (no sampling).

# %%
from lecturekit.evaluation import Run

history = live.demo(reinforce.train, "CartPole-v1", reinforce.Config(),
                    knobs={"lr": (1e-3, 3e-2, 1e-3), "n_episodes": (4, 64, 4), "baseline": ["value", "mean", "none"],
                           "seed": (0, 9)},
                    run=Run(steps=100_000, seed=0, target=475, eval_every=4000), title="REINFORCE on CartPole-v1")

# %%
print(history.summary())
assert history.solved and history.final_return >= 475

# %% [markdown]
# ## 5. What happened during training
#
# The History keeps one entry per update. Two things to look at: the mean return of the 16 *sampled* training
# episodes (noisier and lower than the evaluation, because the policy still explores), and the policy's entropy,
# which falls as the softmax commits to one action per state.

# %%
logs = history.logs
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(logs["env_steps"], logs["episode_return"])
axes[0].set_xlabel("environment steps"), axes[0].set_ylabel("mean return of the batch")
axes[1].plot(logs["env_steps"], logs["entropy"])
axes[1].axhline(np.log(2), color="0.5", ls="--", label="uniform over 2 actions (log 2)")
axes[1].set_xlabel("environment steps"), axes[1].set_ylabel("policy entropy (nats)"), axes[1].legend()
plt.tight_layout(), plt.show()

n_updates = len(logs["loss"])
print(f"{n_updates} updates, {history.env_steps / n_updates:.0f} environment steps per update on average")
assert logs["entropy"][-1] < logs["entropy"][0] <= np.log(2) + 1e-6
assert logs["episode_return"][-1] > 5 * logs["episode_return"][0]

# %% [markdown]
# Every update consumed a fresh batch of complete episodes, and the longer the episodes got, the more steps each
# update cost. This is the price of the estimator's strengths:
#
# | strengths | limitations |
# |---|---|
# | unbiased: on average it is the true gradient | high variance: many samples per useful step |
# | works for any differentiable policy, discrete or continuous | on-policy: samples are used once |
# | simple: a loss and an optimizer | needs complete episodes before it can update |
#
# Notebook 05 attacks the variance with a baseline; actor-critic methods (notebook 09) also drop the need for
# complete episodes.
#
# ## 6. From a terminal
#
# The same training runs from the command line; `--set` changes a Config field:
#
# ```
# python -m lecturekit train reinforce --env CartPole-v1 --target 475 --set baseline=none
# python -m lecturekit bench reinforce --seeds 5
# ```
#
# Next: [05 Baselines and variance](05_baselines_variance.ipynb).
