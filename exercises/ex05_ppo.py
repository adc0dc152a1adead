# %% [markdown]
# # Exercise 05 · PPO: GAE, the clipped surrogate, and its six cases
#
# *Time: about 80 minutes for a student who followed the lecture, best in two sittings: sections 1-4 (three
# functions, about 24 lines, one short derivation on paper: about 50 minutes, plus about 15 for the optional
# clipping table of section 3) and the build-it section 5 (the PPO update: about 20 lines around the given advantage
# preparation, about 30 minutes); an estimate from working it from the stub, see the course map. The checks and the
# CartPole run take about 15 s of machine time in all (the update's check trains CartPole for 2-4 s). Difficulty 3
# of 5.*
#
# Lecture part 5, "Proximal Policy Optimization (PPO)". Five functions (one of them optional), each followed by a
# check cell. A check either prints what passed or names the smallest input on which your answer is wrong, with the
# expected value, what came back, and a hint.
#
# Conventions (as in `lecturekit`): a rollout has T steps of N parallel environments, so per-step arrays have shape
# `(T, N)`; `terminated[t, n]` is True when the step t of environment n ended its episode in a terminal state.

# %%
import numpy as np
import torch

from lecturekit.checks import check_clipping_case, check_gae, check_ppo_clip_loss, check_ppo_update

# %% [markdown]
# ## 1. Generalised advantage estimation
#
# With the one-step TD error $\delta_t = r_t + \gamma (1 - d_t) V_{t+1} - V_t$ (where $d_t$ = `terminated[t]`
# and $V_T$ = `last_value`, the critic's value of the observation after the last step), GAE sums the TD errors
# ahead with weights $(\gamma\lambda)^l$, which you compute backwards in time:
#
# $$A_t = \delta_t + \gamma \lambda (1 - d_t) A_{t+1}, \qquad A_T = 0.$$
#
# A terminated step cuts both sums: nothing after it belongs to the same episode.

# %%
def gae(rewards, values, terminated, last_value, gamma, lam):
    """GAE(gamma, lambda) advantages of a rollout.

    rewards, values, terminated: NumPy arrays of shape (T, N) (terminated: bool or 0/1).
    last_value: NumPy array of shape (N,), V of the observation after step T - 1.
    Returns a new float array A of shape (T, N) with
        delta_t = r_t + gamma * (1 - terminated_t) * V_{t+1} - V_t      (V_T = last_value)
        A_t     = delta_t + gamma * lam * (1 - terminated_t) * A_{t+1}  (A_T = 0).
    Must not modify its inputs.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_gae(gae)

# %% [markdown]
# **Think about it.** Run the next cell: with $\lambda = 0$ you get the TD errors, with $\lambda = 1$ the discounted
# return (bootstrapped from `last_value`) minus $V$. Which of the two depends more on how good the critic is?

# %% tags=["uses-answer"]
r, v = np.array([[1.0], [1.0], [1.0]]), np.array([[2.0], [1.5], [1.0]])
d, last = np.zeros((3, 1), dtype=bool), np.array([0.5])
print("lambda = 0:", gae(r, v, d, last, 0.9, 0.0).ravel())
print("lambda = 1:", gae(r, v, d, last, 0.9, 1.0).ravel())

# %% [markdown]
# ## 2. The clipped surrogate loss
#
# With the probability ratio $r = \pi_\theta(a|s) / \pi_{\theta_k}(a|s) = \exp(\log\pi_\theta - \log\pi_{\theta_k})$,
# PPO maximises $\mathbb{E}[\min(r A, \operatorname{clip}(r, 1-\epsilon, 1+\epsilon) A)]$. Write the loss an
# optimizer minimises: minus that mean. `logp` carries the gradient; `logp_old` (recorded when the data was
# collected) and `adv` are constants: make sure no gradient flows into them.

# %%
def ppo_clip_loss(logp, logp_old, adv, clip_eps):
    """L^CLIP = -mean(min(r * adv, clip(r, 1 - clip_eps, 1 + clip_eps) * adv)),  r = exp(logp - logp_old).

    logp, logp_old, adv: torch tensors of shape (B,).  Returns a scalar tensor (shape ()).
    No gradient may flow into logp_old or adv.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_ppo_clip_loss(ppo_clip_loss)

# %% [markdown]
# ## 3. One row of the clipping table (optional)
#
# Skip this section if you are short of time (about 15 minutes): it spells out case by case what your
# `ppo_clip_loss` already does. For one sample, the objective is
# $f(r) = \min(r A, \operatorname{clip}(r, 1-\epsilon, 1+\epsilon) A)$. Return its value, whether the min picked the
# clipped term (and that term differs from $rA$), and $df/dr$. You may use torch autograd for the derivative or
# reason it out by hand.

# %%
def clipping_case(ratio, adv, clip_eps):
    """One case of the PPO clipping table.

    ratio, adv, clip_eps: floats.  Returns a dict with
        'value':    min(ratio * adv, clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv)   (a float)
        'clipped':  True if the min chose the clipped term and it differs from ratio * adv, else False
        'gradient': d value / d ratio   (a float)
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_clipping_case(clipping_case)

# %% [markdown]
# **Think about it.** Print the six cases with your function. In which two cases is the gradient zero? Is each of
# them a move that would make the objective better or worse if it continued? (Notebook 11 compares this with the
# lecture's bullet list.)

# %% tags=["uses-answer"]
eps = 0.2
for label, ratio in [("inside", 1.0), ("below 1 - eps", 0.6), ("above 1 + eps", 1.4)]:
    for adv in (1.0, -1.0):
        print(f"r {label:14s} A {adv:+.0f}:", clipping_case(ratio, adv, eps))

# %% [markdown]
# ## 4. A derivation with a numerical answer: GAE's telescoping sum
#
# Lecture: "Generalized Advantage Estimation". For one trajectory without episode ends, write
# $\delta_t = r_t + \gamma V_{t+1} - V_t$ ($V_T$ = `last_value`). Show on paper that the sum of the first $m$
# discounted TD errors **telescopes**: every $V_{t+l}$ in between appears once with $+$ and once with $-$, leaving
#
# $$A^{(n)}_t = \sum_{l=0}^{m-1} \gamma^l \delta_{t+l} = \sum_{l=0}^{m-1} \gamma^l r_{t+l} + \gamma^m V_{t+m} - V_t,
# \qquad m = \min(n, T - t),$$
#
# the $n$-step advantage (cut at the end of the rollout). Write it from the **right-hand side** (rewards, one
# bootstrap value, minus $V_t$; no TD errors): the checker compares it with the sum of TD errors.

# %%
from lecturekit.checks import check_n_step_advantage


def n_step_advantage(rewards, values, last_value, gamma, n):
    """n-step advantages of one trajectory without episode ends.

    rewards, values: NumPy arrays (T,); last_value: float, V of the observation after the last step; n >= 1.
    Returns a float NumPy array (T,): A_t = sum_{l < m} gamma^l r_{t+l} + gamma^m V_{t+m} - V_t with
    m = min(n, T - t) and V_T = last_value.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %%
check_n_step_advantage(n_step_advantage)

# %% [markdown]
# GAE is an exponentially weighted average of these $n$-step advantages: since
# $A^{(n)}_t = \sum_{l<n}\gamma^l\delta_{t+l}$, the weights $(1-\lambda)\lambda^{n-1}$ add up, term by term, to
# $(\gamma\lambda)^l$ on $\delta_{t+l}$, which is the GAE sum. In a rollout of finite length the last available
# $n$-step advantage takes all the remaining weight. Your function against the library's recursive GAE:

# %% tags=["uses-answer"]
rng = np.random.default_rng(0)
T, gamma, lam = 12, 0.95, 0.8
rewards, values, last_value = rng.normal(size=T), rng.normal(size=T), 0.7
A_n = np.stack([n_step_advantage(rewards, values, last_value, gamma, n) for n in range(1, T + 1)])  # (n, t)
mixture = np.zeros(T)
for t in range(T):
    m = T - t  # n-step advantages with n >= m are all the same, A^(m)
    w = (1 - lam) * lam ** np.arange(m - 1)
    mixture[t] = w @ A_n[: m - 1, t] + lam ** (m - 1) * A_n[m - 1, t]
from lecturekit.returns import gae as library_gae

from_gae = library_gae(rewards[:, None], values[:, None], np.zeros((T, 1)), np.array([last_value]), gamma, lam)[:, 0]
print("largest difference:", np.abs(mixture - from_gae).max())
assert np.allclose(mixture, from_gae)

# %% [markdown]
# **Think about it.** The weights $(1-\lambda)\lambda^{n-1}$ decay geometrically. With $\lambda = 0.95$, what is the
# "typical" $n$ (the mean of that distribution), and how does it compare with the horizon $1/(1-\gamma)$ for
# $\gamma = 0.99$?

# %% [markdown]
# ## 5. Build it: the whole PPO update
#
# Now the update step PPO takes after each rollout, which the course's training loop calls:
# `ppo.train("CartPole-v1", update=ppo_update)` collects $T$ steps of $N$ environments with the current policy
# $\pi_k$ (given) and hands the rollout to your function. The rollout `ro` (`lecturekit.rollout.Rollout`) holds
# $(T, N)$ arrays: `obs` (T, N, 4), `actions`, `logp` ($\log\pi_k(a|s)$, recorded while acting), `values` (torch
# tensors), `rewards`, `terminated`, `truncated`, `valid` (NumPy) and `last_value` (N,).
#
# 1. **Advantages and value targets** (written for you at the top of the function: read it) with your `gae`,
#    using the vector-environment detail of exercise 03: on an autoreset step (`valid` False) the "reward" is
#    $V(s_\text{final})$ (the value stored there) and the step counts as terminal; the value target is
#    $A_t + V_{\text{old}}(s_t)$. The valid steps are flattened in the order of `x[m]` with
#    `m = torch.as_tensor(ro.valid)`.
# 2. **Epochs of minibatches.** For each of `cfg.epochs` epochs draw one permutation
#    `torch.randperm(n, generator=gen)` of the $n$ valid steps and split it into minibatches of
#    `math.ceil(n / cfg.minibatches)` steps (`perm.split(size)`), taken in that order. The generator makes the
#    order reproducible (the checker follows your minibatches with it).
# 3. **On each minibatch:** standardise its advantages (if `cfg.normalize_adv`; per minibatch, not once for the
#    whole rollout), the loss $L^{CLIP} + c_v \overline{(V(s) - R)^2} - c_H \overline{H}$ with your `ppo_clip_loss`
#    and the log-probs stored in the rollout as $\log\pi_k$, then `zero_grad`, `backward`, clip the global gradient
#    norm to `cfg.max_grad_norm` (`max_grad_norm = 0` means no clipping), `step`.
# 4. **Diagnostics** from the minibatch's forward pass (before its step), with $\log r = \log\pi_\theta -
#    \log\pi_k$: the approximate KL $\overline{(r - 1) - \log r}$ and the clip fraction (share of steps with
#    $|r - 1| > \epsilon$). Append them with the three losses to `stats`, as the comment at the end of the
#    function says: the given last lines return the means over the last epoch's minibatches.
#
# The checker runs one update of yours and of the reference on identical networks, optimizer state, data and
# generator, compares the gradient of every minibatch step, names the usual silent bugs (old log-probs with
# gradient, one shuffle for all epochs, advantages normalised once, ...) and then trains CartPole with your update.

# %%
import math


def ppo_update(model, opt, ro, cfg, gen):
    """One PPO update: cfg.epochs passes of shuffled minibatches over the valid steps of a rollout.

    model: `lecturekit.nets.ActorCritic`: model.log_prob(obs, act), model.value(obs), model.entropy(obs), all (B,).
    opt:   torch optimizer over all of model.parameters().
    ro:    `lecturekit.rollout.Rollout`: obs (T, N, obs_dim), actions (T, N), logp (T, N) = log pi_k(a|s),
           values (T, N) tensors; rewards (T, N) float, terminated / truncated / valid (T, N) bool NumPy arrays;
           last_value (N,) NumPy.
    cfg:   `ppo.Config`: gamma, gae_lambda, epochs, minibatches, clip_eps, value_coef, entropy_coef, normalize_adv,
           max_grad_norm (ignore clip_vloss, target_kl, anneal_lr: left at their defaults here; reward_scale is not
           yours either: the training loop has already multiplied ro.rewards by it).
    gen:   torch.Generator for the minibatch order: per epoch, torch.randperm(n, generator=gen).split(ceil(n / M)).
    Returns a dict of floats, each the mean over the last epoch's minibatches: policy_loss, value_loss (without
    value_coef), entropy, approx_kl (mean of (r - 1) - log r), clip_frac (share of |r - 1| > clip_eps).
    Must not modify `ro`.
    """
    # 1. Given: advantages and value targets of the valid steps, flattened to (n,) (as in exercise 03).
    v_stored = ro.values.double().numpy()
    rewards = np.where(ro.valid, ro.rewards, v_stored)  # an autoreset step "returns" V(final observation)
    terminal = np.where(ro.valid, ro.terminated, True)
    adv_tn = torch.as_tensor(gae(rewards, v_stored, terminal, ro.last_value, cfg.gamma, cfg.gae_lambda),
                             dtype=torch.float32)
    m = torch.as_tensor(ro.valid)
    obs, act, logp_old, adv = ro.obs[m], ro.actions[m], ro.logp[m], adv_tn[m]  # (n, 4), (n,), (n,), (n,)
    ret = adv + ro.values[m]  # value targets R = A + V_old, (n,)
    n = len(obs)
    size = math.ceil(n / cfg.minibatches)  # minibatch size
    # 2.-4. Yours: the epochs of minibatches; per minibatch append
    #       [policy_loss, value_loss, entropy, approx_kl, clip_frac] (floats) to `stats`, emptied at each epoch.
    raise NotImplementedError("not implemented yet: replace this line with your code")
    means = np.mean(stats, axis=0)  # the last epoch's minibatches
    return dict(zip(["policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac"], map(float, means)))


# %%
check_ppo_update(ppo_update)

# %% [markdown]
# ### Your update trains CartPole, live
#
# The course's PPO loop with your update: 16 environments, 64 steps per rollout, 5 epochs of 4 minibatches, no
# gradient-norm clipping (`max_grad_norm = 0`). The curve is the greedy policy's return every 2,048 steps; Stop ends
# the run after the current update.

# %% tags=["uses-answer"]
from lecturekit.algos import ppo
from lecturekit.course import live
from lecturekit.evaluation import Run

yours = live.watch(lambda cb: ppo.train("CartPole-v1", ppo.Config(),
                                        Run(steps=60_000, seed=0, target=475, eval_every=2048, callback=cb),
                                        update=ppo_update),
                   total_steps=60_000, target=475, title="PPO with your update")
print(f"solved in {yours.solved_at_steps} environment steps ({yours.solved_at_s:.1f} s)")
assert yours.solved
