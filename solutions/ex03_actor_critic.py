# %% [markdown]
# # Exercise 03 · Actor-critic: bootstrapped returns and the A2C loss
#
# *Time: about 55 minutes for a student who followed the lecture (three functions, about 31 lines, the build-it update
# the longest; an estimate from working it from the stub, see the course map). The checks and the two CartPole runs
# take about 7 s of machine time in all. Difficulty 2 of 5.*
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
from lecturekit.checks import check_a2c_loss, check_a2c_update, check_bootstrapped_returns

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

# %% [markdown] tags=["answer"]
# **Answer.** Four of the six. Environment 1 never terminates, so all three of its returns reach $R_T$ = 10:
# $R_2 = 1 + 0.5 \cdot 10 = 6$, $R_1 = 1 + 0.5 \cdot 6 = 4$, $R_0 = 1 + 0.5 \cdot 4 = 3$. Environment 0 terminates at
# step 1, which cuts the sum there: $R_1 = 1$ and $R_0 = 1 + 0.5 \cdot 1 = 1.5$ never see `last_value`; but step 2
# belongs to the *next* episode of environment 0, which is still running at the end of the rollout, so
# $R_2 = 1 + 0.5 \cdot 10 = 6$ does use it.


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


# %% [markdown]
# ## 4. Build it: the whole A2C update
#
# Section 3 put your two functions into a loop written in this notebook. Now you write the update step itself, the
# function `lecturekit.algos.a2c` calls once per rollout, and the course's own training loop runs it:
# `a2c.train("CartPole-v1", update=a2c_update)` collects $T$ steps of $N$ environments with the current policy
# (that part is given) and hands each rollout to your function.
#
# The rollout `ro` (`lecturekit.rollout.Rollout`) holds $(T, N)$ arrays: `obs` (T, N, 4), `actions`, `logp`,
# `values` (torch tensors, recorded while acting), `rewards`, `terminated`, `truncated`, `valid` (NumPy) and
# `last_value` (N,) $= V_w$ of the observation after the last step. The update, in order:
#
# 1. **Targets.** The n-step returns $R_t$ with your `bootstrapped_returns`, with the two vector-environment details
#    of section 3: on an autoreset step (`valid` False) put the "reward" $V_w(s_\text{final})$ (the value stored on
#    that step) and mark it terminal. Then a *truncated* step bootstraps from the value of its final observation and
#    a *terminated* one does not.
# 2. **Advantages** $A_t = R_t - V_w(s_t)$ on the valid steps only (flatten them with the boolean mask: `x[m]` with
#    `m = torch.as_tensor(ro.valid)`), constants for the actor, standardised over those steps if `cfg.normalize_adv`:
#    $(A - \bar A) / (\operatorname{std}(A) + 10^{-8})$ (torch's `.std()`).
# 3. **Loss** $L = -\overline{\log\pi_\theta(a|s)\,A} + c_v\,\overline{(V_w(s) - R)^2} - c_H\,\overline{H}$ with
#    `cfg.value_coef`, `cfg.entropy_coef`, means over the valid steps.
# 4. **Step.** `opt.zero_grad()`, `backward()`, clip the global gradient norm of all the model's parameters to
#    `cfg.max_grad_norm` (`torch.nn.utils.clip_grad_norm_`; 0 means no clipping), `opt.step()`.
#
# The checker compares one update of yours with the reference's on identical networks, optimizer state and data
# (down to the gradient each parameter group receives), names the usual silent bugs (a truncated episode treated as
# terminated, an advantage that carries gradient, a forgotten `zero_grad`, ...) and then trains CartPole with your
# function.

# %%
def a2c_update(model, opt, ro, cfg):
    """One A2C update (one optimizer step) on a rollout of T steps in N environments.

    model: `lecturekit.nets.ActorCritic`: model.log_prob(obs, act), model.value(obs), model.entropy(obs), all (B,)
           for obs (B, obs_dim); model.parameters() are the actor's and the critic's.
    opt:   torch optimizer over all of model.parameters().
    ro:    `lecturekit.rollout.Rollout`: obs (T, N, obs_dim), actions (T, N), logp (T, N), values (T, N) tensors;
           rewards (T, N) float, terminated / truncated / valid (T, N) bool NumPy arrays; last_value (N,) NumPy.
    cfg:   `a2c.A2CConfig`: gamma, value_coef, entropy_coef, normalize_adv, max_grad_norm (gae_lambda is 1 here).
    Returns a dict of floats: policy_loss (with the standardised advantages), value_loss (without value_coef),
    entropy (mean over the valid steps), grad_norm (the global gradient norm *before* clipping).
    Must not modify `ro`.
    """
    ### BEGIN SOLUTION
    v_stored = ro.values.double().numpy()
    rewards = np.where(ro.valid, ro.rewards, v_stored)  # an autoreset step "returns" V(final observation)
    terminal = np.where(ro.valid, ro.terminated, True)
    R = torch.as_tensor(bootstrapped_returns(rewards, terminal, ro.last_value, cfg.gamma), dtype=torch.float32)
    m = torch.as_tensor(ro.valid)
    obs, act, ret = ro.obs[m], ro.actions[m], R[m]
    adv = ret - ro.values[m]
    if cfg.normalize_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    logp, v, ent = model.log_prob(obs, act), model.value(obs), model.entropy(obs).mean()
    policy_loss = -(logp * adv).mean()
    value_loss = ((v - ret) ** 2).mean()
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * ent
    opt.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm or float("inf"))
    opt.step()
    return {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": ent.item(),
            "grad_norm": grad_norm.item()}
    ### END SOLUTION


# %%
check_a2c_update(a2c_update)

# %% [markdown]
# ### Your update trains CartPole, live
#
# The course's A2C loop with your update: 16 environments, 16 steps per rollout, one Adam step per rollout. The curve
# is the greedy policy's return every 2,048 steps; Stop ends the run after the current update.

# %% tags=["uses-answer"]
from lecturekit.algos import a2c
from lecturekit.course import live
from lecturekit.evaluation import Run

yours = live.watch(lambda cb: a2c.train("CartPole-v1", a2c.A2CConfig(),
                                        Run(steps=100_000, seed=0, target=475, eval_every=2048, callback=cb),
                                        update=a2c_update),
                   total_steps=100_000, target=475, title="A2C with your update")
print(f"solved in {yours.solved_at_steps} environment steps ({yours.solved_at_s:.1f} s)")
assert yours.solved
