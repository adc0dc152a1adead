# %% [markdown]
# # Exercise 03 · Actor-critic: bootstrapped returns and the A2C loss
#
# Lecture: "Actor-Critic Architectures" and "Advantage Actor-Critic (A2C)"; notebook
# [09 Actor-critic](../notebooks/09_actor_critic.ipynb).
#
# A2C collects $T$ steps from $N$ environments running side by side, so its data come as $(T, N)$ arrays: row $t$
# is time step $t$, column $i$ is environment $i$. Two pieces turn such a rollout into a gradient step:
#
# 1. **Bootstrapped returns.** The rollout stops after $T$ steps, usually in the middle of episodes. What would have
#    come after is replaced by the critic's estimate $V_w(s_T)$ of the state reached, and an episode that
#    *terminated* inside the rollout adds nothing after its last step:
#
#    $$R_t = r_t + \gamma\,(1 - d_t)\,R_{t+1}, \qquad R_T = V_w(s_T),$$
#
#    where $d_t = 1$ if step $t$ ended its episode by termination.
#
# 2. **The A2C loss.** With the advantage $A_t = R_t - V_w(s_t)$, held constant in the policy term,
#
#    $$L = -\frac{1}{B}\sum_b \log\pi_\theta(a_b|s_b)\,A_b \;+\; c_v\,\frac{1}{B}\sum_b \big(R_b - V_w(s_b)\big)^2
#    \;-\; c_H\,\frac{1}{B}\sum_b H_b .$$
#
#    Minimising the first term climbs the policy gradient, the second fits the critic to the returns, and the third
#    rewards policies that keep exploring.
#
# Write each function, then run the check cell below it.

# %%
import numpy as np
import torch

import lecturekit as lk
from lecturekit.checks import check_a2c_loss, check_bootstrapped_returns

lk.notebook_setup(seed=0)


# %% [markdown]
# ## 1. Bootstrapped returns
#
# Work backwards from $R_T$ = `last_value`. All $N$ environments can be handled at once: `rewards[t]` is a row of
# $N$ rewards. `terminated` may arrive as a bool array; convert it to float before doing arithmetic with it.

# %%
def bootstrapped_returns(rewards, terminated, last_value, gamma):
    """n-step bootstrapped returns of a rollout of N parallel environments.

    rewards:    NumPy array (T, N), the reward of step t in environment i (may be ints).
    terminated: NumPy array (T, N), 1 / True where step t ended its episode by termination.
    last_value: NumPy array (N,), the critic's value V(s_T) of the observation after the last step.
    gamma:      discount factor.
    Returns a new float array R of shape (T, N) with R[t] = rewards[t] + gamma * (1 - terminated[t]) * R[t + 1]
    and R[T] = last_value.  Must not modify its inputs.
    """
    ### BEGIN SOLUTION
    r = np.asarray(rewards, dtype=float)
    cont = 1.0 - np.asarray(terminated, dtype=float)
    R = np.zeros_like(r)
    running = np.array(last_value, dtype=float)
    for t in reversed(range(r.shape[0])):
        running = r[t] + gamma * cont[t] * running
        R[t] = running
    return R
    ### END SOLUTION


# %%
check_bootstrapped_returns(bootstrapped_returns)

# %% [markdown]
# **Think about it.** Environment 0 terminates at step 1; environment 1 never does. Which of the six returns below
# use `last_value`? Predict them, then run the cell.

# %% tags=["uses-answer"]
print(bootstrapped_returns(np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]),
                           np.array([[False, False], [True, False], [False, False]]),
                           last_value=np.array([10.0, 10.0]), gamma=0.5))


# %% [markdown]
# ## 2. The A2C loss
#
# All arguments are torch tensors of shape (B,) (the valid steps of a rollout, flattened), except the two
# coefficients. The advantage must be a constant in the policy term: no gradient may flow from it into the critic
# (`.detach()`); the critic learns only from its own squared error.

# %%
def a2c_loss(log_probs, values, returns, entropy, value_coef, entropy_coef):
    """A2C loss: -mean(log_probs * A) + value_coef * mean((returns - values)^2) - entropy_coef * mean(entropy),
    with the advantage A = returns - values treated as a constant.

    log_probs: (B,) log pi_theta(a_b|s_b) of the actions taken (gradients flow into the actor).
    values:    (B,) V_w(s_b) (gradients flow into the critic).
    returns:   (B,) bootstrapped returns R_b (constants).
    entropy:   (B,) entropy of pi_theta(.|s_b).
    Returns a scalar tensor.
    """
    ### BEGIN SOLUTION
    adv = (returns - values).detach()
    policy_term = -(log_probs * adv).mean()
    value_term = ((returns - values) ** 2).mean()
    return policy_term + value_coef * value_term - entropy_coef * entropy.mean()
    ### END SOLUTION


# %%
check_a2c_loss(a2c_loss)

# %% [markdown]
# ## 3. Your functions train an agent
#
# The loop below is A2C with *your* two functions: collect a rollout of 16 CartPole environments for 16 steps
# (`lecturekit.rollout.collect`), compute the returns with your `bootstrapped_returns`, take one Adam step on your
# `a2c_loss`.
#
# One detail comes from the vector environment: after an episode ends, the next step of that environment only
# resets it (`valid` is False there) and the value stored on that step is $V_w$ of the episode's real final
# observation. Giving that step the "reward" $V_w(s_\text{final})$ and marking it terminal makes your function do
# the right thing on both kinds of episode end: a *truncated* step (time limit) gets
# $r_t + \gamma V_w(s_\text{final})$, because the pole was still up and the future is not zero, while a *terminated*
# step gets $r_t$ alone. `Rollout.rewards_and_dones()` in `lecturekit` does exactly this (and `Rollout.returns`
# uses it).

# %% tags=["uses-answer"]
from lecturekit.envs import make_vec
from lecturekit.evaluation import evaluate
from lecturekit.nets import ActorCritic
from lecturekit.rollout import collect, start

envs = make_vec("CartPole-v1", 16)
model = ActorCritic(envs.single_observation_space, envs.single_action_space)
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
state = start(envs, seed=0)
curve = []
for update in range(1, 101):
    ro = collect(envs, model, state, T=16)
    rewards, terminated = ro.rewards_and_dones()  # autoreset steps: reward V(final obs), terminal
    R = bootstrapped_returns(rewards, terminated, ro.last_value, 0.99)
    m = torch.as_tensor(ro.valid)
    obs, act = ro.obs[m], ro.actions[m]
    loss = a2c_loss(model.log_prob(obs, act), model.value(obs), torch.as_tensor(R, dtype=torch.float32)[m],
                    model.entropy(obs), value_coef=0.5, entropy_coef=0.0)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if update % 20 == 0:
        greedy = lambda o: model.act(torch.as_tensor(o), deterministic=True)[0].numpy()
        with torch.no_grad():
            curve.append((update * 256, evaluate(greedy, "CartPole-v1", episodes=10, seed=123)[0]))
        print(f"{update * 256:6d} steps: greedy return {curve[-1][1]:6.1f}")
envs.close()
best = max(r for _, r in curve)
assert best >= 300, f"with correct functions the greedy return passes 300 (best was {best:.0f})"
