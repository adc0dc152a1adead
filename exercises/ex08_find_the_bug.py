# %% [markdown]
# # Exercise 08 · Find the bug
#
# *Time: about 55 minutes for a student who followed the lecture (three bugs to find, each in about ten lines of
# code, and three fixes of two to six lines; an estimate from working it from the stub, see the course map). The six
# training runs and the checks take about 15 s of machine time in all. Difficulty 4 of 5.*
#
# The worst bugs in reinforcement learning do not crash: the code runs, the loss goes down, and the agent simply
# learns badly. Below are three implementations of pieces you have written before, each with **one** realistic bug
# of the kind that costs days in practice: a return computation, an on-policy loss and an off-policy critic loss.
# For each one:
#
# 1. run the short training cell and watch it learn badly;
# 2. read the code (printed below it) and find the bug: test it on a tiny input you can work out by hand, and print
#    the **shapes** of the intermediate tensors;
# 3. write the fixed function in its cell: start from the buggy code (`%load -n bugs.reward_to_go` in an empty cell
#    pastes it; then rename it `fixed_reward_to_go`), fix that one bug, and run the check: it says whether the bug
#    is gone, or which other mistake your fix made;
# 4. run the training cell again with your fix.
#
# Each bug hides in a few characters. Hints are folded away at the end of each section: try without them first.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.checks import check_fixed_critic_loss, check_fixed_policy_loss, check_fixed_reward_to_go
from lecturekit.course import bugs

# %% [markdown]
# ## 1. A return computation: REINFORCE that does not improve
#
# `bugs.train_reinforce` is REINFORCE on CartPole: each iteration collects 128 steps of 8 environments, lays each
# environment's steps end to end (so one array holds several episodes, with `dones` = 1 at the last step of each,
# and at the cut at the end of the batch), weights every step by its normalised return-to-go and takes one Adam
# step. With correct pieces the mean episode return climbs from about 20 to over 60 in 25 iterations. With the
# `reward_to_go` below it does not.

# %%
curve_bug = bugs.train_reinforce(reward_to_go=bugs.reward_to_go, iterations=25, seed=0)
print("mean episode return per iteration:", np.round(curve_bug, 0))
assert np.nanmean(curve_bug[-5:]) < 40  # learns badly

# %%
bugs.show(bugs.reward_to_go)


# %% [markdown]
# Fix it here (same signature, same docstring), then run the check.

# %%
def fixed_reward_to_go(rewards, dones, gamma):
    """Discounted returns-to-go of a batch of episodes laid end to end.

    rewards: (n,) floats; dones: (n,) 1.0 at the last step of each episode (or of each piece of an episode cut by
    the end of the batch), else 0.0.  Returns G (n,) with G_t = r_t + gamma * G_{t+1} inside an episode and
    G_t = r_t at its last step.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_fixed_reward_to_go(fixed_reward_to_go)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Call it on `rewards=[1, 1]`, `dones=[1, 1]`, `gamma=0.5`: two episodes of one step each. What should $G$ be, and
# what do you get? What does the last step of the first episode learn about the second one?
# </details>
#
# With your fix, the same run:

# %% tags=["uses-answer"]
curve_fix = bugs.train_reinforce(reward_to_go=fixed_reward_to_go, iterations=25, seed=0)
plt.figure(figsize=(6, 3))
plt.plot(curve_bug, label="with the bug"), plt.plot(curve_fix, label="fixed")
plt.xlabel("iteration"), plt.ylabel("mean episode return"), plt.legend(), plt.show()
assert np.nanmean(curve_fix[-5:]) > 60

# %% [markdown]
# **Think about it.** Why does this bug hurt CartPole so much, although it only changes the returns of the last
# steps of each episode?

# %% [markdown]
# ## 2. An on-policy loss: REINFORCE that gets worse than random
#
# Same training loop, correct returns, but this `policy_loss`: the mean return *falls* to about 10, below a random
# policy's 20.

# %%
curve_bug = bugs.train_reinforce(policy_loss=bugs.policy_loss, iterations=25, seed=0)
print("mean episode return per iteration:", np.round(curve_bug, 0))
assert np.nanmean(curve_bug[-5:]) < 20

# %%
bugs.show(bugs.policy_loss)


# %%
def fixed_policy_loss(logits, actions, weights):
    """REINFORCE surrogate -mean_b log pi(a_b | s_b) w_b for a categorical policy.

    logits: (B, A) with gradient; actions: (B, 1) int64, as the rollout buffer stores them; weights: (B,) constants
    (normalised returns-to-go).  Returns a scalar whose gradient is minus the policy-gradient estimate.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_fixed_policy_loss(fixed_policy_loss)

# %% [markdown]
# <details><summary>Hint</summary>
#
# `logits = torch.zeros(3, 2)`, `actions = torch.tensor([[0], [1], [1]])`: print
# `torch.distributions.Categorical(logits=logits).log_prob(actions).shape`. How many log-probabilities should
# there be?
# </details>

# %% tags=["uses-answer"]
curve_fix = bugs.train_reinforce(policy_loss=fixed_policy_loss, iterations=25, seed=0)
plt.figure(figsize=(6, 3))
plt.plot(curve_bug, label="with the bug"), plt.plot(curve_fix, label="fixed")
plt.xlabel("iteration"), plt.ylabel("mean episode return"), plt.legend(), plt.show()
assert np.nanmean(curve_fix[-5:]) > 60

# %% [markdown]
# **Think about it.** With the bug, what does one gradient step do to the policy of state $s_j$? Why does that
# make the agent *worse* than random rather than just not better?

# %% [markdown]
# ## 3. An off-policy loss: a DDPG critic that learns almost nothing
#
# `bugs.fit_critic` trains a DDPG critic on 2000 fixed transitions of Pendulum (random torques; it evaluates a fixed
# random target actor, with a Polyak-averaged target critic) for 400 steps, then measures how well $Q(s, a)$ follows
# the reward $r(s, a)$ across the data. Pendulum's rewards vary a lot from state to state, so a critic that learned
# them correlates strongly with them (about 0.9); this one does not, and its values are nearly flat.

# %%
data = bugs.pendulum_transitions(n=2000, seed=0)
fit_bug = bugs.fit_critic(bugs.critic_loss, data, updates=400, seed=0)
print(fit_bug)
assert fit_bug["corr"] < 0.6

# %%
bugs.show(bugs.critic_loss)


# %%
def fixed_critic_loss(critic, critic_targ, actor_targ, batch, gamma):
    """DDPG critic loss mean_b (Q(s_b, a_b) - y_b)^2 with y = r + gamma (1 - terminated) Q'(s', mu'(s')).

    critic(obs, act) and critic_targ(obs, act) return (B, 1), as a network with one output unit does;
    actor_targ(obs) returns (B, act_dim).  batch: 'obs' (B, obs_dim), 'action' (B, act_dim), 'reward' (B,),
    'next_obs' (B, obs_dim), 'terminated' (B,) 0.0/1.0.  No gradient may flow through y.  Returns a scalar.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_fixed_critic_loss(fixed_critic_loss)

# %% [markdown]
# <details><summary>Hint</summary>
#
# Take a batch of 3 transitions from `data` (`{k: v[:3] for k, v in data.items()}`) and print the shapes of
# `next_q`, `y` and `q - y` inside the function. (`torch.nn.functional.mse_loss` would have warned you about this
# one; a hand-written square does not.)
# </details>

# %% tags=["uses-answer"]
fit_fix = bugs.fit_critic(fixed_critic_loss, data, updates=400, seed=0)
print(f"correlation of Q with the reward: {fit_bug['corr']:.2f} with the bug, {fit_fix['corr']:.2f} fixed; "
      f"spread of Q: {fit_bug['q_std']:.1f} vs {fit_fix['q_std']:.1f}")
assert fit_fix["corr"] > 0.8 and fit_fix["q_std"] > 2 * fit_bug["q_std"]

# %% [markdown]
# **Think about it.** With the bug, what target does each $Q(s_i, a_i)$ regress on, on average over the batch?
# Why does an actor trained on such a critic not learn to swing the pendulum up?
