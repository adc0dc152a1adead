# %% [markdown]
# # Exercise 07 · The pieces of Soft Actor-Critic
#
# *Time: about 90 minutes for a student who followed the lecture, best in two sittings: sections 1-6 (six functions
# of one to four lines, about 18 lines in all, one short derivation on paper: about 60 minutes) and the build-it
# section 7 (the SAC update, about 23 lines: about 30 minutes); an estimate from working it from the stub, see the
# course map. The checks and training runs take about 15 s of machine time in all (the whole solution notebook
# under nbval, idle machine): the update's check trains Pendulum for about 5 s (two to three times that on a busy
# machine), the live run about as long. Difficulty 4 of 5.*
#
# Lecture part 7: "SAC: Critic Loss", "SAC: Policy Loss (Actor)", "SAC: Entropy Temperature Loss", and the
# squashed Gaussian of notebook 15. You write the four functions that make SAC different from TD3 (parts 1-4; the
# course's `lecturekit.algos.sac` uses the same signatures), the density of a tanh-squashed Gaussian (part 5, a
# derivation), the reparameterised sample (part 6), and then the whole SAC update from them (part 7), which trains
# Pendulum live. The SAC functions take and return torch tensors, and each check also tests **where gradients
# flow**, because SAC's worst bugs give the right numbers with the wrong gradients.
#
# Shapes: B is the batch size, D the action dimension.

# %%
import math

import torch
import torch.nn.functional as F

from lecturekit.checks import (
    check_sac_actor_loss,
    check_sac_critic_target,
    check_squashed_gaussian_log_prob,
    check_temperature_loss,
)

LOG_2PI = math.log(2 * math.pi)

# %% [markdown]
# ## 1. The log-probability of a tanh-squashed Gaussian
#
# With $u \sim \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$ and $a = \tanh(u)$:
#
# $$\log\pi(a) = \sum_{d=1}^{D}\Big[-\frac{(u_d-\mu_d)^2}{2\sigma_d^2} - \log\sigma_d - \tfrac12\log 2\pi\Big] -
# \sum_{d=1}^{D}\log\big(1-\tanh(u_d)^2\big).$$
#
# It must stay finite for $|u|$ up to 20, where $\tanh(u)$ rounds to exactly 1 in float32. Use
# $\log(1-\tanh(u)^2) = 2\,(\log 2 - u - \operatorname{softplus}(-2u))$ (`F.softplus`).

# %%
def squashed_gaussian_log_prob(u, mu, log_std):
    """log pi(tanh(u)) for u ~ N(mu, diag(exp(log_std))^2).

    u, mu, log_std: tensors of shape (..., D); u is the pre-tanh sample.
    Returns a tensor of shape (...): the Gaussian log-density of u minus sum over D of log(1 - tanh(u)^2),
    finite for |u| up to 20 and differentiable in u, mu and log_std.
    """
    ### BEGIN SOLUTION
    gauss = -0.5 * ((u - mu) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * LOG_2PI
    log_det = 2 * (math.log(2) - u - F.softplus(-2 * u))
    return (gauss - log_det).sum(-1)
    ### END SOLUTION


# %%
check_squashed_gaussian_log_prob(squashed_gaussian_log_prob)

# %% [markdown]
# ## 2. The critic's soft target
#
# $$y = r + \gamma\,(1 - \text{terminated})\,\big(\min(\bar Q_1(s', a'), \bar Q_2(s', a')) - \alpha\log\pi(a'|s')\big),
# \qquad a' \sim \pi(\cdot|s').$$
#
# Both critics regress on $y$; no gradient may flow through it.

# %%
def sac_critic_target(reward, terminated, next_q1, next_q2, next_logp, alpha, gamma):
    """Soft TD target of SAC's critics.

    reward, terminated, next_q1, next_q2, next_logp: tensors of shape (B,) (terminated is 0.0 or 1.0);
    alpha, gamma: floats.  Returns y of shape (B,), with no gradient flowing through it.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        soft_value = torch.min(next_q1, next_q2) - alpha * next_logp
        return reward + gamma * (1.0 - terminated) * soft_value
    ### END SOLUTION


# %%
check_sac_critic_target(sac_critic_target)

# %% [markdown]
# ## 3. The actor's loss
#
# With $a = f_\theta(s, \epsilon)$ reparameterized, `q1`, `q2`, `logp` are $Q_1(s,a)$, $Q_2(s,a)$, $\log\pi(a|s)$
# and all carry gradients back to $\theta$:
#
# $$\mathcal{L}_\pi = \operatorname{mean}\big(\alpha\log\pi(a|s) - \min(Q_1(s,a), Q_2(s,a))\big).$$
#
# The temperature has its own loss: no gradient may flow into `alpha` here.

# %%
def sac_actor_loss(q1, q2, logp, alpha):
    """SAC policy loss.

    q1, q2, logp: tensors of shape (B,) evaluated at reparameterized actions;
    alpha: a float or a 0-d tensor.  Returns a scalar tensor; no gradient flows into alpha.
    """
    ### BEGIN SOLUTION
    if torch.is_tensor(alpha):
        alpha = alpha.detach()
    return (alpha * logp - torch.min(q1, q2)).mean()
    ### END SOLUTION


# %%
check_sac_actor_loss(sac_actor_loss)

# %% [markdown]
# ## 4. The temperature's loss
#
# $$\mathcal{L}_\alpha = \operatorname{mean}\big(e^{\log\alpha}\,(-\log\pi(a|s) - \mathcal{H}_\text{target})\big),$$
#
# with $\log\pi$ a constant here (the policy has its own loss). We learn $\log\alpha$ rather than $\alpha$ so that
# $\alpha = e^{\log\alpha}$ stays positive.

# %%
def temperature_loss(log_alpha, logp, target_entropy):
    """SAC temperature loss.

    log_alpha: a 0-d tensor that requires grad; logp: a tensor of shape (B,); target_entropy: a float.
    Returns a scalar tensor whose gradient reaches log_alpha but not logp.
    """
    ### BEGIN SOLUTION
    return (torch.exp(log_alpha) * (-logp.detach() - target_entropy)).mean()
    ### END SOLUTION


# %%
check_temperature_loss(temperature_loss)

# %% [markdown]
# ## Your temperature loss at work
#
# A policy whose log-probabilities are fixed at $\log\pi = 0.5$ has entropy estimate $-0.5$. With the target
# $\mathcal{H}_\text{target} = -1$ the entropy is *above* the target, so gradient descent on your loss should shrink
# $\alpha$; with the target $0$ it is *below*, and $\alpha$ should grow.

# %% tags=["uses-answer"]
for target in (-1.0, 0.0):
    log_alpha = torch.tensor(0.0, requires_grad=True)
    opt = torch.optim.Adam([log_alpha], lr=0.05)
    for _ in range(50):
        loss = temperature_loss(log_alpha, torch.full((64,), 0.5), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"target entropy {target:+.0f}: alpha 1.00 -> {log_alpha.exp().item():.2f}")
    assert (log_alpha.item() < 0) == (target < -0.5)

# %% [markdown]
# **Think about it.** In `sac_actor_loss`, what would happen over many updates if the gradient *did* flow into
# $\alpha$? (Hint: minimising $\alpha\log\pi$ over $\alpha$ when $\log\pi < 0$ on average.)

# %% [markdown] tags=["answer"]
# **Answer.** The actor loss would also train $\alpha$, with gradient
# $\partial L_\pi / \partial\alpha = \mathbb E[\log\pi]$. When $\log\pi < 0$ on average (a spread-out policy,
# positive entropy), descending that gradient *raises* $\alpha$ at every update, without limit: the entropy bonus
# grows until it dominates $Q$, and the policy becomes as random as it can, whatever the task. (When
# $\log\pi > 0$, as for a narrow Gaussian, it drives $\alpha$ to 0 instead and the exploration bonus vanishes.)
# Either way $\alpha$ no longer tracks the target entropy: only the temperature loss should move it, and only the
# actor loss should move the policy.

# %% [markdown]
# ## 5. A derivation with a numerical answer: the tanh change of variables
#
# Lecture: "Squashed Gaussian" (notebook 15). If $u \sim \mathcal N(\mu, \sigma^2)$ in one dimension and
# $a = \tanh(u)$, then for $a \in (-1, 1)$, with $u = \operatorname{atanh}(a)$ and
# $\frac{da}{du} = 1 - \tanh(u)^2 = 1 - a^2$,
#
# $$p_A(a) = p_U\big(\operatorname{atanh}(a)\big) \left|\frac{du}{da}\right|
#          = \frac{\mathcal N(\operatorname{atanh}(a);\, \mu, \sigma^2)}{1 - a^2}.$$
#
# Derive it from $P(A \le a) = P(U \le \operatorname{atanh} a)$, then write the density (not its logarithm). Here
# $a$ is given, so invert the tanh with `np.arctanh`; SAC never does that, for the reason in section 1.

# %%
import numpy as np

from lecturekit.checks import check_tanh_density


def tanh_density(a, mu, sigma):
    """Density of a = tanh(u), u ~ N(mu, sigma^2), at the points a.

    a: NumPy array (K,) of points in (-1, 1); mu, sigma: floats (sigma > 0).
    Returns a float NumPy array (K,).
    """
    ### BEGIN SOLUTION
    a = np.asarray(a, dtype=float)
    u = np.arctanh(a)
    gauss = np.exp(-0.5 * ((u - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    return gauss / (1 - a ** 2)
    ### END SOLUTION


# %%
check_tanh_density(tanh_density)

# %% [markdown]
# Your density against a histogram of squashed samples, and its integral over $(-1, 1)$: with $\sigma = 1.5$ most
# of the mass piles up near $\pm 1$, and the density there exceeds the Gaussian's peak although $|a| < 1$.

# %% tags=["uses-answer"]
import matplotlib.pyplot as plt

mu, sigma = 0.3, 1.5
samples = np.tanh(mu + sigma * np.random.default_rng(0).standard_normal(200_000))
grid = np.linspace(-0.999, 0.999, 2001)
density = tanh_density(grid, mu, sigma)
hist, edges = np.histogram(samples, bins=50, range=(-1, 1), density=True)
plt.figure(figsize=(6, 3))
plt.stairs(hist, edges, label="histogram of tanh(u)")
plt.plot(grid, density, label="your density")
plt.ylim(0, 3), plt.xlabel("a"), plt.legend(), plt.show()
print(f"integral over (-0.999, 0.999): {np.trapezoid(density, grid):.4f}")
centres = (edges[:-1] + edges[1:]) / 2
inner = np.abs(centres) < 0.9
assert np.allclose(hist[inner], tanh_density(centres[inner], mu, sigma), rtol=0.1)
assert abs(np.trapezoid(density, grid) - np.mean(np.abs(samples) < 0.999)) < 0.01

# %% [markdown]
# ## 6. The reparameterised sample and its log-probability
#
# Lecture: "Reparameterization Trick" and "SAC: Policy Loss". SAC's actor needs an action whose value is a
# **differentiable function of the policy's parameters**: draw the noise first, $\epsilon \sim \mathcal N(0, I)$,
# then
#
# $$u = \mu + e^{\log\sigma} \odot \epsilon, \qquad a = \tanh(u), \qquad
# \log\pi(a) = \log\mathcal N(u; \mu, \sigma^2) - \sum_d \log\big(1 - \tanh(u_d)^2\big).$$
#
# The noise is an input here (the SAC update of the course hands it in), so the result is reproducible. Gradients
# must reach `mu` and `log_std` through both `a` and `logp`: `torch.distributions.Normal(...).sample()`, or any
# `.detach()`, would cut them. Compute $\log\pi$ from $u$ (section 1's stable formula), never from
# $\operatorname{atanh}(a)$.

# %%
from lecturekit.checks import check_reparameterized_sample


def reparameterized_sample(mu, log_std, eps):
    """Reparameterised tanh-Gaussian action and its log-probability.

    mu, log_std, eps: tensors of shape (..., D) (eps: standard normal noise).
    Returns (a, logp): a = tanh(mu + exp(log_std) * eps) of shape (..., D) and logp of shape (...), both
    differentiable in mu and log_std; logp finite for |u| up to 20.
    """
    ### BEGIN SOLUTION
    u = mu + torch.exp(log_std) * eps
    gauss = -0.5 * eps ** 2 - log_std - 0.5 * LOG_2PI  # log N(u; mu, sigma^2) with (u - mu) / sigma = eps
    log_det = 2 * (math.log(2) - u - F.softplus(-2 * u))
    return torch.tanh(u), (gauss - log_det).sum(-1)
    ### END SOLUTION


# %%
check_reparameterized_sample(reparameterized_sample)

# %% [markdown]
# ### The pathwise gradient at work
#
# Maximise $\mathbb E[-(a - 0.5)^2] + \alpha\,\mathcal H$ over $(\mu, \log\sigma)$ of a one-dimensional squashed
# Gaussian, with the entropy estimated as $-\log\pi$ of the same samples (SAC's actor loss without a critic). The
# gradient flows through your sample: the mean action should settle near 0.5, and $\sigma$ should stay away from 0
# because of the entropy term.

# %% tags=["uses-answer"]
gen = torch.Generator().manual_seed(0)
mu, log_std = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
opt = torch.optim.Adam([mu, log_std], lr=0.05)
for _ in range(400):
    a, logp = reparameterized_sample(mu.expand(256, 1), log_std.expand(256, 1), torch.randn(256, 1, generator=gen))
    loss = ((a.squeeze(-1) - 0.5) ** 2 + 0.01 * logp).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    eps = torch.randn(10_000, 1, generator=gen)
    a, _ = reparameterized_sample(mu.expand(10_000, 1), log_std.expand(10_000, 1), eps)
print(f"mean action {a.mean().item():.3f}, sigma {log_std.exp().item():.3f}")
assert abs(a.mean().item() - 0.5) < 0.05 and 0.02 < log_std.exp().item() < 1.0

# %% [markdown]
# **Think about it.** Replace the reparameterised sample by a score-function estimate (sample $a$ without
# gradient and weight $\nabla\log\pi(a)$ by the objective). Both are unbiased. Which one would you expect to need
# more samples here, and why does SAC's actor use the pathwise one?

# %% [markdown] tags=["answer"]
# **Answer.** The score-function estimate would need many more. It uses only the *value* of the objective at each
# sample, correlated with the score, so its variance grows with the spread of the objective values (notebook 13
# measures this). The pathwise estimate uses the *derivative* of the objective along the sample, $\partial a /
# \partial\mu \cdot \partial f / \partial a$, which already points the right way for every single sample, and its
# variance stays small when $f$ is smooth. SAC's objective is $Q(s, a)$, a differentiable critic, so the pathwise
# gradient is available and much cheaper in samples; the price is that the policy must be reparameterisable (a
# Gaussian pushed through tanh is) and that the actor trusts $\nabla_a Q$ of a learned critic.

# %% [markdown]
# ## 7. Build it: the whole SAC update
#
# Now the step that the course's SAC runs after every environment step, from a replay minibatch to moved networks,
# built from your four functions. The course provides the networks, the replay buffer and the loop, and calls your
# function through its seam, `update(agent, batch, step, noise)`, with `noise = (eps_next, eps_now)`: two tensors of
# standard normals of shape (B, D), all the randomness one update needs. One update does:
#
# 1. **the soft target** with a *fresh* next action $a' = f_\theta(s', \epsilon_\text{next})$ of the current policy
#    (not the action stored in the buffer): $y = r + \gamma\,(1 - \text{terminated})\,\big(\min(\bar Q_1(s', a'),
#    \bar Q_2(s', a')) - \alpha\log\pi(a'|s')\big)$ from the target critics, with no gradient;
# 2. **the critic step**: both critics regress on $y$;
# 3. **the actor step** with the reparameterised action $a = f_\theta(s, \epsilon_\text{now})$:
#    $L_\pi = \operatorname{mean}(\alpha\log\pi(a|s) - \min(Q_1(s,a), Q_2(s,a)))$, $\alpha$ a constant here;
# 4. **the temperature step** on $L_\alpha$ with the same $\log\pi(a|s)$ (only when `agent.alpha_opt` is not
#    `None`; with `autotune=False` the temperature stays fixed);
# 5. **the Polyak update** of the target critics.
#
# The course's actor makes the reparameterised sample for you from the noise you pass it: `a, logp =
# agent.actor(obs, eps)` is $a = c + h\tanh(u)$, $u = \mu_\theta(s) + \sigma_\theta(s)\,\epsilon$, with
# $\log\pi(a|s)$ computed as in your `squashed_gaussian_log_prob` (part 1), both differentiable in $\theta$. Which
# noise goes where is your job. The checker accepts the critic step before or after the actor and temperature steps;
# Polyak comes last.

# %%
from lecturekit.checks import check_sac_update
from lecturekit.offpolicy import polyak_update


def sac_update(agent, batch, step, noise):
    """One SAC update.

    agent: the course's SAC agent, with
        actor                 actor(obs, eps) -> (a, logp): the reparameterised action (B, D) in the action box
                              and log pi(a|s) (B,), from standard normals eps (B, D); both carry gradients
        critic, critic_targ   twin critics: critic(obs, act) -> q1, q2, each (B,)
        log_alpha             0-d tensor, alpha = log_alpha.exp(); target_entropy a float (-D)
        actor_opt, critic_opt, alpha_opt   Adam optimizers (alpha_opt is None when the temperature is fixed)
        cfg                   gamma, tau, ...
    batch: a replay minibatch with obs, next_obs (B, obs_dim), action (B, D), reward, terminated, truncated (B,);
        only `terminated` stops the bootstrap.
    step: how many updates came before this one (unused by SAC).
    noise: (eps_next, eps_now), standard normals of shape (B, D): eps_next for a' at s', eps_now for a at s.
    Returns a dict of floats with at least "critic_loss" and "actor_loss".
    """
    ### BEGIN SOLUTION
    cfg, b = agent.cfg, batch
    eps_next, eps_now = noise
    alpha = agent.log_alpha.exp().item()
    with torch.no_grad():
        a2, logp2 = agent.actor(b.next_obs, eps_next)
        y = sac_critic_target(b.reward, b.terminated, *agent.critic_targ(b.next_obs, a2), logp2, alpha, cfg.gamma)
    q1, q2 = agent.critic(b.obs, b.action)
    critic_loss = ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean()
    agent.critic_opt.zero_grad()
    critic_loss.backward()
    agent.critic_opt.step()

    a, logp = agent.actor(b.obs, eps_now)
    actor_loss = sac_actor_loss(*agent.critic(b.obs, a), logp, alpha)
    agent.actor_opt.zero_grad()
    actor_loss.backward()
    agent.actor_opt.step()

    if agent.alpha_opt is not None:
        alpha_loss = temperature_loss(agent.log_alpha, logp, agent.target_entropy)
        agent.alpha_opt.zero_grad()
        alpha_loss.backward()
        agent.alpha_opt.step()
    polyak_update(agent.critic_targ, agent.critic, cfg.tau)
    return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), "alpha": alpha}
    ### END SOLUTION


# %%
check_sac_update(sac_update)

# %% [markdown]
# ### Your SAC on Pendulum, live
#
# The course's loop with your update: 1,000 random warm-up steps, then one update per environment step, an
# evaluation (10 episodes, the policy's mean action) every 500 steps; training stops at the target of -200. Press
# Stop to end it early. The reference needs 2,000 to 2,500 steps.

# %% tags=["uses-answer"]
from lecturekit.algos import sac
from lecturekit.course import live
from lecturekit.evaluation import Run

budget = 10_000
history = live.watch(lambda cb: sac.train("Pendulum-v1", sac.Config(),
                                           Run(steps=budget, seed=0, target=-200, eval_every=500, eval_episodes=10,
                                               callback=cb),
                                           update=sac_update),
                     total_steps=budget, target=-200, title="SAC on Pendulum-v1 with your update")
assert history.solved, f"best evaluation return {history.best_return:.0f}"
