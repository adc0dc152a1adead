# %% [markdown]
# # 16 · Soft Actor-Critic on Pendulum
#
# Lecture part 7: "Soft Actor-Critic (SAC): Overview", "SAC: Critic Loss", "SAC: Policy Loss (Actor)", "SAC: Entropy
# Temperature Loss", "SAC: Implementation Tricks and Stability Mechanisms".
#
# SAC puts the pieces of notebooks 12-15 together:
#
# | piece | where it comes from | in `lecturekit` |
# |---|---|---|
# | replay buffer, off-policy loop with random warm-up | DDPG (notebook 12) | `buffers.ReplayBuffer`, `offpolicy.train_off_policy` |
# | twin critics, min of the two in the target | TD3 (notebook 12) | `nets.TwinQ` |
# | target critics moved by Polyak averaging, $\bar\phi \leftarrow \tau\phi + (1-\tau)\bar\phi$ | DDPG/TD3 | `offpolicy.polyak_update` |
# | stochastic actor, reparameterized: $a = \tanh(\mu_\theta(s) + \sigma_\theta(s)\epsilon)$ | notebooks 13, 15 | `nets.SquashedGaussianActor` |
# | entropy bonus in the critic target and the actor loss | notebook 14 | `sac.sac_critic_target`, `sac.sac_actor_loss` |
# | temperature $\alpha$ learned to hold the entropy near $\mathcal{H}_\text{target} = -\dim(A)$ | this notebook | `sac.temperature_loss` |
#
# One update on a replay minibatch $(s, a, r, s', \text{term})$:
#
# 1. **critics:** sample $a' \sim \pi(\cdot|s')$ from the *current* policy, form $y = r + \gamma(1-\text{term})
#    (\min_j \bar Q_j(s', a') - \alpha\log\pi(a'|s'))$ and regress both $Q_1, Q_2$ on it;
# 2. **actor:** sample a fresh reparameterized $a = f_\theta(s, \epsilon)$ and step on $\operatorname{mean}(\alpha
#    \log\pi(a|s) - \min_j Q_j(s, a))$; the gradient reaches $\theta$ through $\nabla_a Q$ (pathwise) and through
#    $\log\pi$;
# 3. **temperature:** step on $\operatorname{mean}(\alpha(-\log\pi(a|s) - \mathcal{H}_\text{target}))$: $\alpha$
#    shrinks while the policy is more random than the target and grows when it is less;
# 4. **targets:** Polyak-average the critics into their target copies.
#
# Unlike TD3, there is no hand-set exploration noise, no target-policy smoothing and no delayed actor: the policy's
# own, learned randomness does the exploring, and sampling $a'$ in the target already smooths it.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.course import live
from lecturekit.algos import sac
from lecturekit.evaluation import Run

# %% [markdown]
# ## Training, live
#
# The defaults (`sac.Config`): 64x64 networks, Adam with step size $2 \cdot 10^{-3}$ for actor, critics and
# $\log\alpha$, batch 256, one update per environment step after 1000 uniformly random warm-up steps,
# $\gamma = 0.99$, $\tau = 0.02$, initial temperature $\alpha_0 = 0.2$. Evaluation: every 500 steps, 10 episodes with the
# deterministic action $\tanh(\mu_\theta(s))$; training stops at a mean return of $-200$ (a random policy scores about $-1200$).
# Change the knobs and press **Train** to rerun; **Stop** ends a run early.

# %%
def train_sac(callback, lr=2e-3, alpha_init=0.2, autotune=True, seed=0):
    cfg = sac.Config(actor_lr=lr, critic_lr=lr, alpha_lr=lr, alpha_init=alpha_init, autotune=autotune, log_every=100)
    return sac.train("Pendulum-v1", cfg, Run(steps=10_000, seed=seed, target=-200, eval_every=500, eval_episodes=10,
                                             callback=callback))


history = live.demo(train_sac, knobs=dict(lr=(1e-4, 3e-3, 1e-4, 2e-3), alpha_init=(0.01, 2.0, 0.01, 0.2),
                                          autotune=True, seed=0),
                    total_steps=10_000, target=-200, title="SAC on Pendulum-v1")

# %%
print(history.summary())
assert history.solved and history.final_return >= -200
assert history.solved_at_steps <= 10_000

# %% [markdown]
# ## What the temperature and the entropy did
#
# `History.logs` holds the diagnostics of the updates: the temperature $\alpha$ and the batch estimate of the
# policy's entropy $-\operatorname{mean}\log\pi(a|s)$ (of the squashed action in $[-1, 1]$ units), among others.

# %%
logs = {k: np.array(v) for k, v in history.logs.items()}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
axes[0].plot(history.eval_steps, history.eval_means, "o-")
axes[0].axhline(-200, color="C2", ls="--", label="target -200")
axes[0].set(xlabel="environment steps", ylabel="eval return", title="learning curve")
axes[0].legend(fontsize=8)
axes[1].plot(logs["env_steps"], logs["alpha"], color="C1")
axes[1].set(xlabel="environment steps", ylabel="α", yscale="log", title="temperature")
axes[2].plot(logs["env_steps"], logs["entropy"], color="C3", label="policy entropy (batch estimate)")
axes[2].axhline(-1.0, color="gray", ls=":", label="target entropy -dim(A) = -1")
axes[2].set(xlabel="environment steps", title="entropy")
axes[2].legend(fontsize=8)
for ax in axes:
    ax.axvspan(0, 1000, color="gray", alpha=0.1)  # random warm-up: no updates yet
plt.tight_layout()
plt.show()

# %%
# after the warm-up, alpha first falls (the wide initial policy is more random than the target) ...
alpha, entropy = logs["alpha"], logs["entropy"]
assert abs(alpha[0] - 0.2) < 1e-6 and alpha.min() < 0.7 * alpha[0] and entropy[0] > -1.0
# ... the entropy then drops below the target -1 and alpha rises again to push it back up
assert entropy.min() < -1.0 and alpha[-1] > 1.5 * alpha.min()
# in general: alpha moves against the entropy surplus H - H_target (the temperature loss's gradient is alpha times it)
surplus, change = entropy[4:-1] - (-1.0), np.diff(alpha[4:])
assert np.corrcoef(surplus, change)[0, 1] < -0.5
print(f"alpha: {logs['alpha'][0]:.3f} -> {logs['alpha'][-1]:.3f};  entropy: {logs['entropy'][0]:.2f} -> "
      f"{logs['entropy'][-1]:.2f}")

# %% [markdown]
# The temperature works like a thermostat for randomness. Right after the warm-up the policy is wide and its
# entropy is above the target of $-1$, so every temperature step lowers $\alpha$ (the gradient of the temperature
# loss in $\log\alpha$ is $\alpha$ times the entropy surplus $\mathcal{H} - \mathcal{H}_\text{target}$). With a
# smaller entropy bonus, the actor trades randomness for return and the entropy falls, and overshoots below the
# target; from then on the surplus is negative and $\alpha$ climbs again, pushing the entropy back up towards
# $-1$. With `autotune` off and a fixed $\alpha$ you can see the trade-off of notebook 14 directly: too large and the
# policy stays too random to balance the pendulum, too small and exploration relies on luck.
#
# ## The learned policy
#
# The observation is $(\cos\theta, \sin\theta, \dot\theta)$ with $\theta = 0$ upright. Below: the mean torque
# $2\tanh(\mu_\theta(s))$ and the policy's standard deviation $\sigma_\theta(s)$ (before squashing) over angle and
# angular velocity.

# %%
actor = history.model["actor"]
th, thdot = np.meshgrid(np.linspace(-np.pi, np.pi, 121), np.linspace(-8, 8, 81))
obs = torch.as_tensor(np.stack([np.cos(th), np.sin(th), thdot], -1), dtype=torch.float32)
with torch.no_grad():
    mu, log_std = actor.dist_params(obs)
    torque = actor.squash(mu).squeeze(-1).numpy()  # center + half_range * tanh(mu)
    std = log_std.exp().squeeze(-1).numpy()
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, val, title, cmap in ((axes[0], torque, "mean torque", "coolwarm"), (axes[1], std, "σ (pre-tanh)", "viridis")):
    im = ax.pcolormesh(th, thdot, val, cmap=cmap, shading="auto")
    ax.set(xlabel="angle θ (0 = upright)", ylabel="angular velocity", title=title)
    fig.colorbar(im, ax=ax)
plt.tight_layout()
plt.show()

# %%
# near upright and at rest, the policy pushes back against a small tilt (antisymmetric torque)
with torch.no_grad():
    tilt = torch.tensor([[np.cos(0.2), np.sin(0.2), 0.0], [np.cos(-0.2), np.sin(-0.2), 0.0]], dtype=torch.float32)
    a_tilt = actor(tilt)[0].squeeze(-1).numpy()  # no eps: the deterministic action
print("torque at tilt +0.2 and -0.2 rad:", np.round(a_tilt, 2))
assert a_tilt[0] < 0 < a_tilt[1]

# %% [markdown]
# **Think about it.** SAC evaluates with the deterministic action $\tanh(\mu_\theta(s))$ but trains with samples.
# Why is the entropy target stated per action dimension ($-\dim A$), and what would a target of $0$ mean for a
# squashed Gaussian in $[-1, 1]$ (compare with the uniform distribution's entropy $\log 2$ per dimension, notebook
# 15)?
