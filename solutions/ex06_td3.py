# %% [markdown]
# # Exercise 06 · The TD3 target and Polyak averaging
#
# *Time: about 65 minutes for a student who followed the lecture, best in two sittings: sections 1-3 (three
# functions, about 6 lines, and the demonstrations of overestimation and of the slow targets: about 30 minutes) and
# the build-it section 4 (the TD3 and DDPG update, about 27 lines: about 35 minutes); an estimate from working it
# from the stub, see the course map. The checks and training runs take about 15 s of machine time in all (the
# whole solution notebook under nbval, idle machine): the update's check trains Pendulum for about 4 s, the live run
# about as long. Difficulty 3 of 5.*
#
# Lecture part 6: "Deep Deterministic Policy Gradient (DDPG)" and "TD3: Twin Delayed Deep Deterministic Policy
# Gradient". Notebook [12 DDPG and TD3](../notebooks/12_ddpg_td3.ipynb) tells the story; here you write three small
# pieces that every update of DDPG and TD3 relies on, then the whole update from them.
#
# 1. `td3_target`: the regression target of TD3's critics (clipped double Q-learning).
# 2. `polyak_update`: the slow "soft" update that makes the target networks trail the trained ones (SAC uses it too).
# 3. `dpg_actor_loss`: the deterministic policy gradient as a loss.
# 4. `td3_update`: the whole TD3 (and DDPG) update, which then trains Pendulum live.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from lecturekit.checks import check_polyak_update, check_td3_target

# %% [markdown]
# ## 1. The clipped double-Q target
#
# A critic learns $Q(s, a)$ by regression on a target built from the next state $s'$ of a replayed transition
# $(s, a, r, s', \text{terminated})$. DDPG uses one target critic $Q'$ at the target actor's action $a' = \mu'(s')$:
#
# $$y = r + \gamma\,(1 - \text{terminated})\,Q'(s', a').$$
#
# TD3 trains **two** critics and builds the target from the more pessimistic of their two target copies:
#
# $$y = r + \gamma\,(1 - \text{terminated})\,\min\big(Q'_1(s', a'),\; Q'_2(s', a')\big).$$
#
# Three details decide whether the result is right:
# - `terminated` is 1.0 when $s'$ ends the episode for good (no future reward), 0.0 otherwise. A transition cut by a
#   time limit (truncated) has `terminated = 0`: its state still has a future, so the target still bootstraps.
# - The minimum is taken per transition (element-wise over the batch), not over the whole batch.
# - $y$ is a fixed regression target: no gradient may flow through it into the target critics. `next_q1` and
#   `next_q2` come straight out of a network, so they usually require grad.

# %%
def td3_target(reward, terminated, next_q1, next_q2, gamma):
    """y = reward + gamma * (1 - terminated) * min(next_q1, next_q2), with no gradient flowing through it.

    reward, terminated, next_q1, next_q2: torch tensors of shape (B,) (terminated holds 0.0 / 1.0).
    gamma: float discount factor.
    Returns a tensor of shape (B,) that does not require grad. Do not modify the inputs.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        return reward + gamma * (1.0 - terminated) * torch.minimum(next_q1, next_q2)
    ### END SOLUTION


# %%
check_td3_target(td3_target)

# %% [markdown]
# ### Why the minimum helps: a critic that is only noisy still overestimates
#
# Take a state whose true value is 0 for each of 10 actions, and two critics whose estimates are the truth plus
# independent noise of standard deviation 1. The actor picks the action that looks best to critic 1, which makes
# critic 1's estimate of that action a maximum of 10 noisy numbers: about +1.5 on average, although every action is
# worth 0. This is the overestimation the lecture warns about, and it needs no bias in the critic, only noise plus a
# maximisation. Critic 2's noise is independent of that choice, so the minimum of the two is no longer pushed up.
# Below, each of 10 000 transitions has reward 0, gamma = 1 and terminated = 0, so the target is just the estimated
# value of the chosen action.

# %% tags=["uses-answer"]
g = torch.Generator().manual_seed(0)
n, n_actions = 10_000, 10
q1_all = torch.randn(n, n_actions, generator=g)  # critic 1's estimates (true values are all 0)
q2_all = torch.randn(n, n_actions, generator=g)  # critic 2's, independent noise
chosen = q1_all.argmax(dim=1, keepdim=True)      # the actor maximises critic 1
q1_next, q2_next = q1_all.gather(1, chosen).squeeze(1), q2_all.gather(1, chosen).squeeze(1)
zeros = torch.zeros(n)
y_single = zeros + 1.0 * q1_next                 # DDPG: the single critic's estimate
y_td3 = td3_target(zeros, zeros, q1_next, q2_next, 1.0)

plt.figure(figsize=(6, 3))
plt.hist(y_single.numpy(), bins=60, alpha=0.6, label=f"single critic (mean {y_single.mean():.2f})")
plt.hist(y_td3.numpy(), bins=60, alpha=0.6, label=f"min of two (mean {y_td3.mean():.2f})")
plt.axvline(0, color="k", lw=1, label="true value 0")
plt.xlabel("target y")
plt.legend(fontsize=8)
plt.show()
assert y_single.mean() > 1.3                       # a max of 10 standard normals averages about 1.54
assert abs(y_td3.mean()) < 0.5 * y_single.mean()   # the clipped target is much closer to the truth

# %% [markdown]
# The minimum is not exact either: it slightly *under*estimates on average here. TD3 accepts that trade, because an
# underestimated action is not what the actor climbs towards, while an overestimated one is, and the error then
# grows from update to update through the bootstrapped targets.
#
# ## 2. Polyak averaging of the target networks
#
# The target networks $\mu'$ and $Q'$ are copies of the actor and critic that follow them slowly. After each update
# every target parameter moves a small step $\tau$ towards the trained one:
#
# $$\bar\phi \leftarrow \tau\,\phi + (1 - \tau)\,\bar\phi, \qquad \tau \ll 1 \;(\text{e.g. } 0.005).$$
#
# Write it for two `nn.Module`s of the same architecture. It must change the target's parameter tensors *in place*
# (the caller keeps using the same `target` object), leave `source` alone, and not be recorded by autograd.

# %%
def polyak_update(target, source, tau):
    """Update every parameter of `target` in place to tau * source + (1 - tau) * target.

    target, source: torch.nn.Module objects with the same architecture. tau: float in [0, 1].
    Does not track gradients and does not change `source`. Returns None.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        for p_targ, p in zip(target.parameters(), source.parameters()):
            p_targ.mul_(1.0 - tau).add_(tau * p)
    ### END SOLUTION


# %%
check_polyak_update(polyak_update)

# %% [markdown]
# ### How slowly does the target follow?
#
# Hold the source fixed and repeat the update. The gap between the two shrinks by the factor $(1 - \tau)$ each time,
# so after $k$ updates it is $(1 - \tau)^k$ of where it started: with $\tau = 0.005$ it halves only every
# $\ln 2 / \tau \approx 138$ updates. The targets therefore change little between consecutive updates, which keeps
# the regression target $y$ from chasing the critic it is supposed to train.

# %% tags=["uses-answer"]
torch.manual_seed(0)
source, target = nn.Linear(4, 4), nn.Linear(4, 4)


def gap(a, b):
    return torch.cat([(p - q).flatten() for p, q in zip(a.parameters(), b.parameters())]).norm().item()


start, gaps = gap(target, source), []
for k in range(600):
    polyak_update(target, source, 0.005)
    gaps.append(gap(target, source))

ks = np.arange(1, 601)
plt.figure(figsize=(6, 3))
plt.semilogy(ks, gaps, label="your polyak_update")
plt.semilogy(ks, start * 0.995 ** ks, "k--", lw=1, label=r"$(1-\tau)^k \times$ initial gap")
plt.xlabel("updates k")
plt.ylabel("distance target - source")
plt.legend(fontsize=8)
plt.show()
assert np.allclose(gaps, start * 0.995 ** ks, rtol=1e-3)
assert abs(gaps[137] / start - 0.5) < 0.01  # half the gap is gone after about 138 updates

# %% [markdown]
# ## 3. The deterministic policy gradient: the actor's loss
#
# Lecture: "Deterministic Policy Gradient" and "DDPG: Actor". A deterministic actor $\mu_\theta(s)$ is improved by
# climbing the critic: maximise $\mathbb E_s[Q(s, \mu_\theta(s))]$ over the replayed states. By the chain rule its
# gradient is the deterministic policy gradient
#
# $$\nabla_\theta J = \mathbb E_s\big[\nabla_a Q(s, a)\big|_{a = \mu_\theta(s)}\, \nabla_\theta \mu_\theta(s)\big],$$
#
# which autograd computes for us if the loss is $L(\theta) = -\frac1B \sum_b Q(s_b, \mu_\theta(s_b))$ and the action
# **stays connected** to the actor: no `.detach()`, no `torch.no_grad()`, and not the action stored in the replay
# batch (that one does not depend on $\theta$ at all). In TD3, `q` is the first critic, $Q_1$.

# %%
from lecturekit.checks import check_dpg_actor_loss


def dpg_actor_loss(q, actor, obs):
    """L = -mean_b Q(s_b, mu(s_b)): its gradient in the actor's weights is minus the deterministic policy gradient.

    q: a function or module, q(obs, act) -> (B,) critic values.  actor: a module, actor(obs) -> (B, act_dim).
    obs: tensor (B, obs_dim) of replayed states.  Returns a scalar tensor.
    """
    ### BEGIN SOLUTION
    return -q(obs, actor(obs)).mean()
    ### END SOLUTION


# %%
check_dpg_actor_loss(dpg_actor_loss)

# %% [markdown]
# ### Your loss climbs a known critic
#
# A critic whose value we know exactly: $Q(s, a) = -(a - \sin 3s)^2$, best at $a^\star(s) = \sin 3s$ (1-D states
# and actions). An actor trained on your loss alone, with this fixed critic, must learn $\mu(s) \approx \sin 3s$.

# %% tags=["uses-answer"]
torch.manual_seed(0)
actor = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 1))
opt = torch.optim.Adam(actor.parameters(), lr=2e-2)
gen = torch.Generator().manual_seed(0)


def known_q(obs, act):
    return -((act - torch.sin(3 * obs)) ** 2).squeeze(-1)


for _ in range(800):
    states = 2 * torch.rand(128, 1, generator=gen) - 1
    loss = dpg_actor_loss(known_q, actor, states)
    opt.zero_grad()
    loss.backward()
    opt.step()
grid = torch.linspace(-1, 1, 101)[:, None]
with torch.no_grad():
    err = (actor(grid) - torch.sin(3 * grid)).abs().max().item()
    plt.figure(figsize=(6, 3))
    plt.plot(grid, torch.sin(3 * grid), "k--", label=r"best action $\sin 3s$")
    plt.plot(grid, actor(grid), label="your actor")
    plt.xlabel("state s"), plt.ylabel("action"), plt.legend(), plt.show()
print(f"largest distance to the best action: {err:.3f}")
assert err < 0.1

# %% [markdown]
# **Think about it.** In the training loop above the critic was exact. In DDPG it is learned, and the actor
# follows $\nabla_a Q$ wherever it points. What happens to the actor where the critic has a spurious narrow peak in
# $a$, and which of TD3's three fixes is aimed at exactly that?

# %% [markdown] tags=["answer"]
# **Answer.** The actor climbs $\nabla_a Q$ blindly, so it moves towards the spurious peak and stays there: the
# action it then takes is the one the critic overestimates most, and since the critic's target bootstraps from
# $Q'(s', \mu'(s'))$, the overestimate feeds into the next targets. TD3's target policy smoothing is aimed at exactly
# this: it evaluates the target at $\mu'(s') + $ clipped noise, so a value only counts if it holds on a neighbourhood
# of actions, which flattens narrow peaks; the twin critics' minimum removes the upward bias that creates them, and
# the delayed actor updates let the critic settle before the actor follows it.

# %% [markdown]
# ## 4. Build it: the whole TD3 update
#
# You now write the step that the course's TD3 runs after every environment step: everything between "here is a
# minibatch from the replay buffer" and "the networks have moved". The course provides the rest (the networks, the
# replay buffer, the loop that acts, stores and evaluates) and calls your function through its seam,
# `update(agent, batch, step, noise)`. One update does, in this order:
#
# 1. **the smoothed target action** $a' = \operatorname{clip}\big(\mu'(s') + \operatorname{clip}(\sigma\,\xi, -c, c)
#    \cdot h,\ \text{low},\ \text{high}\big)$, where $\xi$ is the `noise` you are given (standard normals, one per
#    transition and action dimension), $\sigma$ = `cfg.target_noise`, $c$ = `cfg.noise_clip` (both in half-range
#    units), $h$ = `(agent.high - agent.low) / 2` the action box's half-range, and low, high = `agent.low`,
#    `agent.high`;
# 2. **the clipped double-Q target** $y = r + \gamma\,(1 - \text{terminated})\,\min(Q'_1(s', a'), Q'_2(s', a'))$
#    from the *target* networks, with no gradient (your `td3_target` from part 1);
# 3. **the critic step**: both critics regress on $y$, $L = \operatorname{mean}(Q_1(s,a) - y)^2 +
#    \operatorname{mean}(Q_2(s,a) - y)^2$: `zero_grad`, `backward`, `step`;
# 4. **the delayed actor step**, only when `step % cfg.policy_delay == 0`: the actor climbs the *first* critic,
#    $L_\mu = -\operatorname{mean}\,Q_1(s, \mu(s))$;
# 5. **the Polyak updates** of both target networks (your `polyak_update` from part 2), in the same updates as the
#    actor step.
#
# DDPG is the same function with `cfg.twin = False` (one critic: the target uses $Q'_1$ alone and only $Q_1$
# regresses), `cfg.target_noise = 0` (no smoothing) and `cfg.policy_delay = 1` (the actor moves every update);
# write it so that both work. The checker runs one update of yours and of the reference on identical copies of an
# agent and compares where every parameter, target parameter and optimizer state lands; then it trains Pendulum
# with your update. Whether the critic step comes before or after the actor step is up to you (both are accepted).

# %%
from lecturekit.checks import check_td3_update


def td3_update(agent, batch, step, noise):
    """One TD3 update (DDPG when agent.cfg.twin is False, target_noise is 0 and policy_delay is 1).

    agent: the course's TD3 agent, with
        actor, actor_targ    mu(s): (B, obs_dim) -> (B, act_dim), inside the action box
        low, high            the action box, (act_dim,) each; its half-range is (high - low) / 2
        critic, critic_targ  twin critics: critic(obs, act) -> q1, q2, each (B,); critic.q1(obs, act) alone
        actor_opt, critic_opt  their Adam optimizers
        cfg                  gamma, tau, target_noise, noise_clip, policy_delay, twin
    batch: a replay minibatch with obs, next_obs (B, obs_dim), action (B, act_dim), reward, terminated,
        truncated (B,); only `terminated` stops the bootstrap (a time limit does not end the MDP).
    step: how many updates came before this one (0, 1, 2, ...).
    noise: (B, act_dim) standard normals for the target smoothing.
    Returns a dict of floats with at least "critic_loss" (and "actor_loss" in updates where the actor moves).
    """
    ### BEGIN SOLUTION
    cfg, b = agent.cfg, batch
    low, high = torch.as_tensor(agent.low), torch.as_tensor(agent.high)
    with torch.no_grad():
        eps = (cfg.target_noise * noise).clamp(-cfg.noise_clip, cfg.noise_clip) * (high - low) / 2
        a2 = torch.max(torch.min(agent.actor_targ(b.next_obs) + eps, high), low)
        next_q1, next_q2 = agent.critic_targ(b.next_obs, a2)
        if cfg.twin:
            y = td3_target(b.reward, b.terminated, next_q1, next_q2, cfg.gamma)
        else:
            y = b.reward + cfg.gamma * (1 - b.terminated) * next_q1
    q1, q2 = agent.critic(b.obs, b.action)
    critic_loss = ((q1 - y) ** 2).mean()
    if cfg.twin:
        critic_loss = critic_loss + ((q2 - y) ** 2).mean()
    agent.critic_opt.zero_grad()
    critic_loss.backward()
    agent.critic_opt.step()
    info = {"critic_loss": critic_loss.item(), "q1": q1.mean().item()}
    if step % cfg.policy_delay == 0:
        actor_loss = -agent.critic.q1(b.obs, agent.actor(b.obs)).mean()
        agent.actor_opt.zero_grad()
        actor_loss.backward()
        agent.actor_opt.step()
        polyak_update(agent.actor_targ, agent.actor, cfg.tau)
        polyak_update(agent.critic_targ, agent.critic, cfg.tau)
        info["actor_loss"] = actor_loss.item()
    return info
    ### END SOLUTION


# %%
check_td3_update(td3_update)

# %% [markdown]
# ### Your TD3 on Pendulum, live
#
# The course's loop with your update: 500 random warm-up steps, then one update per environment step, an
# evaluation (10 episodes, deterministic actor) every 500 steps; training stops at the target of -200. Press Stop to
# end it early. The reference needs 2,500 to 6,000 steps, depending on the seed.

# %% tags=["uses-answer"]
from lecturekit.algos import td3
from lecturekit.course import live
from lecturekit.evaluation import Run

budget = 15_000
history = live.watch(lambda cb: td3.train("Pendulum-v1", td3.Config(),
                                           Run(steps=budget, seed=0, target=-200, eval_every=500, eval_episodes=10,
                                               callback=cb),
                                           update=td3_update),
                     total_steps=budget, target=-200, title="TD3 on Pendulum-v1 with your update")
assert history.solved, f"best evaluation return {history.best_return:.0f}"
