# %% [markdown]
# # 12 · Deterministic policy gradients: DDPG and TD3
#
# Lecture part 6: "Differentiable Control for Continuous Actions", "Stochastic PG vs Deterministic PG",
# "Deep Deterministic Policy Gradient (DDPG)", "DDPG Architecture" and "TD3: Twin Delayed Deep Deterministic Policy
# Gradient".
#
# The policy-gradient methods so far sample an action from $\pi_\theta(a \mid s)$ and push up the log-probability of
# the good ones. With continuous actions there is a more direct route: let the actor *output* the action,
# $a = \mu_\theta(s)$, learn a critic $Q_\phi(s, a)$ that takes the action as an input, and move the actor in the
# direction in which the critic says $Q$ increases. Because the critic can be trained on old transitions from a
# replay buffer, this family (DDPG, TD3 and, in part 7, SAC) is off-policy.
#
# Plan: (1) the deterministic policy gradient is just the chain rule, checked on a critic we can see;
# (2) DDPG on Pendulum; (3) the critic's overestimation, measured against Monte Carlo returns;
# (4) TD3's three fixes, and what each one buys (ablation).

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

# %% jupyter={"source_hidden": true}
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.course import live
from lecturekit.algos import td3
from lecturekit.algos.td3 import dpg_actor_loss
from lecturekit.evaluation import Run, critic_bias
from lecturekit.nets import mlp

# %% [markdown]
# ## 1. The deterministic policy gradient is the chain rule
#
# The actor's objective is the critic's value of the actor's own actions, averaged over states $s$ from the
# replay buffer $D$:
#
# $$J(\theta) = \mathbb{E}_{s \sim D}\big[Q(s, \mu_\theta(s))\big], \qquad
#   \nabla_\theta J = \mathbb{E}_{s \sim D}\Big[\nabla_a Q(s, a)\big|_{a = \mu_\theta(s)}\;
#   \nabla_\theta \mu_\theta(s)\Big].$$
#
# No action is sampled and no log-probability appears: the critic's slope in the action, $\nabla_a Q$, tells the
# actor which way to turn its output in each state, and $\nabla_\theta \mu_\theta(s)$ translates that into a change
# of the weights. In code we never write the product ourselves: autograd computes it when we minimise
# `dpg_actor_loss` $= -\text{mean}_s\, Q(s, \mu_\theta(s))$.
#
# To see that this really is the formula, take a critic we can write down. States are numbers $s \in [-2, 2]$, the
# best action in state $s$ is $a^\star(s) = 1.5 \sin(1.5 s)$, and
#
# $$Q(s, a) = -\big(a - a^\star(s)\big)^2 - 0.3 s^2, \qquad \nabla_a Q(s, a) = -2\big(a - a^\star(s)\big).$$
#
# The actor is a small network (1 → 16 → 1). We compute $\nabla_\theta J$ twice: by autograd through the loss,
# and by the formula, state by state, as (slope of $Q$ at the actor's action) × (gradient of the actor's output).

# %%
def best_action(s):
    return 1.5 * torch.sin(1.5 * s)


def q_known(s, a):
    """A critic we can see: Q(s, a) = -(a - a*(s))^2 - 0.3 s^2.  s, a: (B, 1) -> (B,)."""
    return (-(a - best_action(s)) ** 2 - 0.3 * s ** 2).sum(-1)


def dq_da(s, a):
    return -2 * (a - best_action(s))


torch.manual_seed(0)
actor = mlp([1, 16, 1])
states = torch.linspace(-2, 2, 64).unsqueeze(-1)
params = list(actor.parameters())

# (a) autograd through -mean Q(s, mu(s)); the gradient of J is minus the loss gradient
grad_autograd = [-g for g in torch.autograd.grad(dpg_actor_loss(q_known, actor, states), params)]

# (b) the formula: mean over states of dQ/da (a number) times d mu(s) / d theta (one gradient per state)
grad_formula = [torch.zeros_like(p) for p in params]
for s in states:
    a = actor(s.unsqueeze(0))
    dmu_dtheta = torch.autograd.grad(a.sum(), params)
    slope = dq_da(s, a.detach()).item()
    for total, d in zip(grad_formula, dmu_dtheta):
        total += slope * d / len(states)

worst = max((ga - gf).abs().max().item() for ga, gf in zip(grad_autograd, grad_formula))
print(f"{sum(p.numel() for p in params)} parameters; largest difference autograd vs formula: {worst:.1e}")
assert all(torch.allclose(ga, gf, atol=1e-6) for ga, gf in zip(grad_autograd, grad_formula))

# %% [markdown]
# Now let the actor climb. Each Adam step on `dpg_actor_loss` nudges $\mu_\theta(s)$ up the slope of $Q$ in every
# state at once; the background shows $Q(s, a)$ (bright is high), the curves the actor after some steps.

# %%
opt = torch.optim.Adam(actor.parameters(), lr=1e-2)
snapshots, J = {}, []
for step in range(601):
    if step in (0, 25, 100, 600):
        with torch.no_grad():
            snapshots[step] = actor(states).squeeze(-1).numpy()
    loss = dpg_actor_loss(q_known, actor, states)
    J.append(-loss.item())
    opt.zero_grad()
    loss.backward()
    opt.step()

s_grid, a_grid = torch.meshgrid(torch.linspace(-2, 2, 200), torch.linspace(-2.5, 2.5, 200), indexing="xy")
q_grid = q_known(s_grid.reshape(-1, 1), a_grid.reshape(-1, 1)).reshape(200, 200)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
ax1.contourf(s_grid.numpy(), a_grid.numpy(), q_grid.numpy(), levels=30, cmap="viridis")
ax1.plot(states.squeeze(-1), best_action(states).squeeze(-1), "w--", lw=2, label=r"$a^\star(s) = \arg\max_a Q$")
for i, (step, a) in enumerate(snapshots.items()):
    ax1.plot(states.squeeze(-1), a, color=plt.cm.autumn(i / 3), lw=2, label=f"$\\mu_\\theta(s)$ after {step} steps")
ax1.set_xlabel("state s")
ax1.set_ylabel("action a")
ax1.legend(fontsize=7, loc="lower left")
ax1.set_title("the actor climbs the critic")
ax2.plot(J)
ax2.set_xlabel("Adam steps")
ax2.set_ylabel(r"$J(\theta) = $ mean$_s\, Q(s, \mu_\theta(s))$")
ax2.set_title("actor objective")
plt.tight_layout()
plt.show()
gap = np.abs(snapshots[600] - best_action(states).squeeze(-1).numpy()).max()
print(f"after 600 steps the actor is within {gap:.3f} of the best action in every state")
assert gap < 0.1 and J[-1] > J[0]

# %% [markdown]
# Everything the actor learns comes from $\nabla_a Q$: if the critic's slope is wrong, the actor follows it just as
# faithfully. That is the weak point the rest of this notebook is about.
#
# ## 2. DDPG on Pendulum
#
# **Task.** Pendulum-v1: swing a pendulum up and hold it upright. The observation is $(\cos\vartheta,
# \sin\vartheta, \dot\vartheta)$ with $\vartheta = 0$ upright; the action is a torque in $[-2, 2]$; the reward is
# $-(\vartheta^2 + 0.1\,\dot\vartheta^2 + 0.001\,a^2)$ per step, between about $-16.3$ and $0$. Every episode starts
# at a random angle and lasts 200 steps. That end is a time limit (*truncation*), not a terminal state, so the
# critic's target still bootstraps from the last state. A policy counts as good here when the mean return of 10
# evaluation episodes (deterministic actions $\mu_\theta(s)$) reaches **-200**; policies that never swing the
# pendulum up score between about -1000 and -1700.
#
# **DDPG** (`lecturekit.algos.td3` with `td3.DDPGConfig`, on the shared loop of `lecturekit.offpolicy`) puts five
# pieces together:
#
# | piece | what it does |
# |---|---|
# | actor $\mu_\theta(s)$ | an MLP whose tanh output is scaled to the torque range |
# | critic $Q_\phi(s, a)$ | an MLP on the concatenation $[s, a]$ |
# | replay buffer | the last 100 000 transitions $(s, a, r, s', \text{terminated})$; updates use random minibatches of 512 |
# | target networks $\mu', Q'$ | slow copies: after every update $\bar\phi \leftarrow \tau\phi + (1-\tau)\bar\phi$, $\tau = 0.02$ (Polyak averaging) |
# | exploration | the environment receives $\mu_\theta(s) + \mathcal N(0, \sigma^2)$, clipped to the range; the first 1000 steps are uniformly random |
#
# Each environment step is followed by one update: the critic regresses on
# $y = r + \gamma (1 - \text{terminated})\, Q'(s', \mu'(s'))$, then the actor takes one step on
# $-\text{mean}\,Q(s, \mu_\theta(s))$ (section 1), then the targets move.
#
# The demo below trains for a fixed budget of 8000 steps, without stopping at the target, so that we can also
# watch what the critic believes along the way (section 3). Every 1000 steps a *probe* asks the critic for
# $Q(s_0, \mu(s_0))$ on 10 fixed start states $s_0$ and compares it with the discounted return the current actor
# really collects from those states (`evaluation.critic_bias`: 600-step rollouts, so the cut-off tail, weighted
# $\gamma^{600}$, is negligible). For this experiment we use $\gamma = 0.98$ (the library default is 0.99) and
# $\tau = 0.02$ (the default): with fast targets and a shorter horizon the critics settle within the budget, and
# what remains of their error is the bias we want to see, not the slowness of learning.

# %% jupyter={"source_hidden": true}
BIAS_STEPS, PROBE_EVERY, GAMMA, TAU = 8000, 1000, 0.98, 0.02


def probed_run(records, seed, callback):
    """The course's update, plus a probe after each evaluation: the critic's mean estimate Q_1(s0, mu(s0)) and the
    mean true discounted return, appended to `records`.  The update is the seam `train(..., update=...)` offers;
    this one only keeps a handle on the agent it trains, for the probe to ask."""
    seen = {}

    def update(agent, batch, step, noise):
        seen["agent"] = agent
        return td3.update(agent, batch, step, noise)

    def probe_then_callback(event):
        agent = seen["agent"]
        q, g = critic_bias(agent.actor, agent.critic.q1, "Pendulum-v1", episodes=10, seed=2024, gamma=GAMMA,
                           horizon=600)
        records.append((event["env_steps"], float(q.mean()), float(g.mean())))
        return callback(event)

    return Run(steps=BIAS_STEPS, seed=seed, eval_every=PROBE_EVERY, eval_episodes=10,
               callback=probe_then_callback), update


ddpg_bias = []


def train_ddpg(callback, expl_noise, tau, seed):
    ddpg_bias.clear()
    cfg = td3.DDPGConfig(expl_noise=expl_noise, tau=tau, gamma=GAMMA)
    run, update = probed_run(ddpg_bias, seed, callback)
    return td3.train("Pendulum-v1", cfg, run, update=update)


# %%
ddpg_history = live.demo(train_ddpg, knobs={"expl_noise": (0.0, 0.5, 0.05, 0.1), "tau": (0.001, 0.05, 0.001, TAU),
                                            "seed": (0, 9, 1, 0)},
                         total_steps=BIAS_STEPS, target=-200, title="DDPG on Pendulum-v1 (fixed budget)")

# %%
print(ddpg_history.summary())  # 'solved' stays False: this run was given no target, so it never stops early
print("evaluations:", [(int(s), round(m)) for s, m in zip(ddpg_history.eval_steps, ddpg_history.eval_means)])
assert ddpg_history.eval_means[0] < -900          # the first evaluation: the pendulum mostly hangs
assert ddpg_history.best_return >= -200           # DDPG does learn to swing up and balance

# %% [markdown]
# ## 3. Overestimation, measured
#
# Two things feed errors back into DDPG's critic. Its target uses $\mu'(s')$, the action the actor picked *because*
# the critic rates it highly, so wherever the critic is too optimistic, the target copies that optimism. And the
# actor follows $\nabla_a Q$ into exactly the places where the critic errs upwards. Noise that averages to zero in the
# critic becomes a bias after a maximisation (exercise 06 shows the effect with plain random numbers).
#
# TD3 (`lecturekit.algos.td3`) keeps DDPG's loop and changes three things:
#
# 1. **Clipped double Q-learning.** Two critics $Q_1, Q_2$ are trained on the same target
#    $y = r + \gamma(1 - \text{terminated}) \min_{i=1,2} Q'_i(s', a')$: an error has to fool both critics to get in.
# 2. **Target policy smoothing.** $a' = \text{clip}\big(\mu'(s') + \text{clip}(\epsilon, -c, c)\big)$,
#    $\epsilon \sim \mathcal N(0, \sigma^2)$, here $\sigma = 0.2$ and $c = 0.5$ (in units of the half range of the
#    torque): the target averages $Q'$ over a small neighbourhood of the action, so a narrow spurious peak of $Q'$
#    is smoothed away.
# 3. **Delayed actor updates.** The actor and the targets move only every second critic update, so the critic
#    is closer to the current actor's value when the actor follows its slope.
#
# Same budget, same probe, TD3:

# %% jupyter={"source_hidden": true}
td3_bias = []


def train_td3_probe(callback, seed):
    td3_bias.clear()
    cfg = td3.Config(gamma=GAMMA, tau=TAU, expl_noise=0.1)  # the same exploration as the DDPG run
    run, update = probed_run(td3_bias, seed, callback)
    return td3.train("Pendulum-v1", cfg, run, update=update)


# %%
td3_probe_history = live.demo(train_td3_probe, knobs={"seed": (0, 9, 1, 0)}, total_steps=BIAS_STEPS, target=-200,
                              title="TD3 on Pendulum-v1 (fixed budget)")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
for name, rec, color in (("DDPG", ddpg_bias, "C3"), ("TD3", td3_bias, "C0")):
    steps_, q_, g_ = (np.array(v) for v in zip(*rec))
    ax1.plot(steps_, q_, "o-", color=color, label=f"{name}: critic $Q(s_0, \\mu(s_0))$")
    ax1.plot(steps_, g_, "x--", color=color, label=f"{name}: true discounted return")
    ax2.plot(steps_, q_ - g_, "o-", color=color, label=name)
ax1.set_xlabel("environment steps")
ax1.set_ylabel("value of the start states")
ax1.legend(fontsize=7)
ax2.axhline(0, color="k", lw=1)
ax2.set_xlabel("environment steps")
ax2.set_ylabel("critic minus truth (bias)")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()
bias_ddpg = np.mean([q - g for _, q, g in ddpg_bias[-3:]])
bias_td3 = np.mean([q - g for _, q, g in td3_bias[-3:]])
print(f"bias over the last 3 probes: DDPG {bias_ddpg:+.1f}, TD3 {bias_td3:+.1f}")
assert bias_td3 < bias_ddpg  # TD3's critic ends up less optimistic than DDPG's ...
assert bias_td3 < 0          # ... in fact pessimistic: it underestimates the start states' value

# %% [markdown]
# **Reading the plot.** At first both critics sit far above the truth: they start out predicting about 0, every
# reward is negative, and the values still have to be learnt. That early gap is slowness, not overestimation.
# Once the returns have settled, DDPG's estimate of the start states ends up close to the truth while TD3's ends up
# clearly *below* it: the minimum of two critics errs on the pessimistic side. That is the trade TD3 makes on
# purpose. An action the critic underrates is simply not chosen, whereas an action it overrates attracts the actor
# (section 1: the actor follows $\nabla_a Q$ wherever it points) and the error then returns through the targets of
# every later update. On Pendulum we do not see DDPG overestimate by much: the task is short and easy, and a small
# critic fits it well. The TD3 paper measured far larger overestimation by DDPG on harder MuJoCo tasks.
#
# ## 4. TD3 to the target, and what each fix buys
#
# The library's TD3 defaults ($\gamma = 0.99$, $\tau = 0.02$, exploration noise 0.2, 64×64 networks, learning
# rate $10^{-3}$, 500 random warm-up steps) reach a mean evaluation return of -200 on Pendulum within 15 000 steps
# on every seed we tried (within 6,000 on seeds 0-4).
# The seeded run below stops as soon as that happens (evaluation: 10 episodes every 500 steps). The knobs switch
# the three fixes off one at a time: `twin` (clipped double Q), `target_noise` = 0 (no smoothing),
# `policy_delay` = 1 (no delay).

# %%
from lecturekit.evaluation import Run

td3_history = live.demo(td3.train, "Pendulum-v1", td3.Config(),
                        knobs={"twin": None, "target_noise": (0.0, 0.5, 0.05), "policy_delay": (1, 4), "seed": (0, 9)},
                        run=Run(steps=15_000, seed=0, target=-200, eval_every=500, eval_episodes=10),
                        title="TD3 on Pendulum-v1")

# %%
print(td3_history.summary())
assert td3_history.solved and td3_history.final_return >= -200  # mean of 10 deterministic evaluation episodes
assert td3_history.solved_at_steps <= 15_000

# %% [markdown]
# ### Ablation: remove one fix at a time
#
# One seed says little about an RL algorithm. The table below comes from a recorded run of every variant with 5
# seeds, each trained for the full 15 000 steps (no early stop) and evaluated every 500 steps. It was produced
# with
#
# ```
# python -m lecturekit.algos.td3 notebooks/data/12_td3_ablation.json 5 15000 2
# ```
#
# (arguments: output file, seeds, steps, worker processes; 25 runs of 15 000 steps, 13.5 minutes of CPU time in
# all when it was recorded with today's defaults on 2026-12-05, so about 7 minutes with two workers; the file keeps
# the configuration). "Steps to target" is the first evaluation with a mean return of at least -200; "final" is the
# mean of the last three evaluations, which shows whether a variant also *stays* good.

# %% jupyter={"source_hidden": true}
ABLATION_FILE = Path(lk.__file__).resolve().parent.parent / "notebooks" / "data" / "12_td3_ablation.json"
recorded = json.loads(ABLATION_FILE.read_text())
variants = list(dict.fromkeys(r["variant"] for r in recorded["runs"]))
rows = {}
for v in variants:
    runs = [r for r in recorded["runs"] if r["variant"] == v]
    reached = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
    finals = np.array([r["final_return"] for r in runs])
    rows[v] = dict(solved=len(reached), seeds=len(runs),
                   median_steps=np.median([r["steps_to_target"] or np.inf for r in runs]),
                   worst_steps=max(r["steps_to_target"] or np.inf for r in runs),
                   median_final=np.median(finals), worst_final=finals.min(), runs=runs)

# %%
print(f"{'variant':<24}{'reached -200':>14}{'median steps':>14}{'worst steps':>13}{'median final':>14}"
      f"{'worst final':>13}")
for v, r in rows.items():
    fmt = lambda x: "never" if not np.isfinite(x) else f"{x:,.0f}"
    print(f"{v:<24}{r['solved']:>10}/{r['seeds']:<3}{fmt(r['median_steps']):>14}{fmt(r['worst_steps']):>13}"
          f"{r['median_final']:>14.0f}{r['worst_final']:>13.0f}")

fig, axes = plt.subplots(1, len(rows), figsize=(15, 3), sharey=True)
for ax, (v, r) in zip(axes, rows.items()):
    for run in r["runs"]:
        x, y = np.array(run["evals"]).T
        ax.plot(x, y, lw=1, alpha=0.8)
    ax.axhline(-200, color="k", ls="--", lw=1)
    ax.set_title(v, fontsize=9)
    ax.set_xlabel("environment steps")
axes[0].set_ylabel("eval return (5 seeds)")
plt.tight_layout()
plt.show()
assert all(r["solved"] == r["seeds"] == 5 for r in rows.values())  # every variant, every seed reaches -200
assert rows["no delayed actor"]["median_steps"] < rows["TD3 (all three fixes)"]["median_steps"]

# %%
# the lowest evaluation of each run after its first one at -200: does the variant stay good?
low_after = {v: [min(y for x, y in run["evals"] if x >= run["steps_to_target"]) for run in r["runs"]]
             for v, r in rows.items()}
for v, lows in low_after.items():
    print(f"{v:<24} lowest evaluation after the first hit: {', '.join(f'{y:.0f}' for y in lows)}")
dips = {v: sum(y < -400 for y in lows) for v, lows in low_after.items()}
assert dips["TD3 (all three fixes)"] == 0 and min(low_after["TD3 (all three fixes)"]) > -250
assert sum(dips.values()) == 3  # three runs of the weaker variants dipped below -400 after reaching -200

# %% [markdown]
# **What the ablation says, and what it does not.** On Pendulum every variant, including the one without any of
# the three fixes (DDPG with TD3's hyperparameters), reaches -200 on all 5 seeds, and the fixes do not make learning
# faster. The delayed actor even costs time: the actor takes only half as many steps, and the variants without the
# delay reach the target sooner (median 2000 and 2500 against 4500 environment steps here). The final returns of
# all variants are close. What differs is what happens on the way: after reaching -200, three of the 20 runs of the
# weaker variants fell below -400 at a later evaluation (one each without clipped double Q, without target smoothing
# and without any fix), while full TD3 never went below about -206. That fits the lecture's story of fixes that buy
# stability, but three runs out of twenty against none out of five is too few to call evidence.
#
# This is an honest negative result, not a contradiction of the lecture. Pendulum is short, its value function is
# smooth and small networks fit it well, so the critic's errors stay small (section 3: even DDPG's critic ended close
# to the truth) and there is little overestimation to fix. The TD3 fixes are insurance against critic errors that
# feed on themselves; they pay off on larger tasks with long horizons, such as the MuJoCo benchmarks of the TD3
# paper, where DDPG's value estimates drifted far above the real returns. A fix that costs little on an easy task
# and prevents a collapse on a hard one is still worth having: that is why SAC (part 7) keeps twin critics and
# target networks.

# %% [markdown]
# ## 5. Where the fixes do matter: a task built for overestimation (recorded runs)
#
# Pendulum did not show the problem the fixes are for, so here is a task that has nothing else in it.
# `lecturekit/OverestimationTrap-v0` asks for one decision: the first action $a$ sets a risk $x = (1 - a)/2$ in
# $[0, 1]$, and each of the next 10 steps pays $x \cdot \mathcal{N}(-0.05, 2^2)$, whatever the action. Risk only
# costs: the best policy takes $x = 0$ (return exactly 0), full risk costs $0.05 \cdot 10 = 0.5$ in expectation.
#
# In the risky states the critic has to fit pure noise. Its fit has random bumps along the action axis, and the
# deterministic actor climbs whatever bump is there, so $Q(s', \mu(s'))$ is an upward-biased estimate of the value
# of $s'$, more so the noisier $s'$ is. The target $y = r + \gamma Q'(s', \mu'(s'))$ passes that excess back, step by
# step, to the first decision: with one critic, risk looks profitable. With the minimum of two critics (clipped
# double Q), an excess has to appear in both at once to survive.
#
# `make bench-hard` (`bench/hard.py`) trained four variants for 6,000 steps each with 5 seeds, all with the course's
# TD3 defaults: DDPG is TD3 with the three fixes switched off, as in the ablation above. After training we read
# off the risk the actor chose at the start, the true expected return of that choice, and the critic's error at the
# start state, $Q(s_0, \mu(s_0))$ minus the true discounted value of that decision (TD3: its first critic).

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import lecturekit as lk

HARD_FILE = Path(lk.__file__).resolve().parent.parent / "bench" / "hard" / "results.json"
hard = json.loads(HARD_FILE.read_text())
trap_runs = [r for r in hard["runs"] if r["experiment"] == "overestimation"]
variants = list(dict.fromkeys(r["variant"] for r in trap_runs))
by_variant = {v: [r for r in trap_runs if r["variant"] == v] for v in variants}
print(f"recorded {hard['meta']['date']} on {hard['meta']['machine']} (commit {hard['meta']['commit']})")
print(f"{'variant':<30} {'seeds':>5} {'risk x per seed':>28} {'E[return]':>10} {'critic error at s0':>19}")
for v, rs in by_variant.items():
    risks = " ".join(f"{r['risk']:.2f}" for r in rs)
    print(f"{v:<30} {len(rs):>5} {risks:>28} {np.mean([r['expected_return'] for r in rs]):>10.3f} "
          f"{np.mean([r['q_bias'] for r in rs]):>+19.2f}")

fig, ax = plt.subplots(figsize=(7, 3.5))
for i, (v, rs) in enumerate(by_variant.items()):
    ax.scatter([r["q_bias"] for r in rs], [r["risk"] for r in rs], s=40, label=v, marker="os^D"[i % 4])
ax.axvline(0, color="k", lw=1)
ax.set_xlabel(r"critic error at the start, $Q(s_0, \mu(s_0))$ - true value")
ax.set_ylabel("risk x chosen (0 is best)")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

risk = {v: np.mean([r["risk"] for r in rs]) for v, rs in by_variant.items()}
bias = {v: np.mean([r["q_bias"] for r in rs]) for v, rs in by_variant.items()}
DDPG, TD3 = "DDPG (TD3 without fixes)", "TD3 (all three fixes)"
assert sum(r["q_bias"] > 0.5 for r in by_variant[DDPG]) >= 4       # four of five DDPG critics overestimate s0
assert bias[DDPG] > 0.5 and all(abs(r["q_bias"]) < 0.3 for r in by_variant[TD3])  # TD3's stay close to the truth
assert abs(bias[TD3]) < 0.3 < bias[DDPG] - bias[TD3]
assert bias[TD3] < bias["TD3 without clipped double Q"] < bias[DDPG]  # smoothing and delay alone: in between
assert bias["DDPG + clipped double Q"] > 0.5                          # clipped double Q alone: still overestimates
assert risk[TD3] < risk[DDPG] - 0.1                                   # TD3's actor takes less risk, on average ...
assert all(r["risk"] > 0.99 for r in trap_runs if r["seed"] == 4)     # ... but seed 4 takes all of it in every variant

# %% [markdown]
# **What the runs show.** The overestimation the lecture describes is there in the critic: on four of five seeds
# DDPG's critic overestimates its first decision by 0.7 to 1.2 (on a true value between 0 and -0.5), +0.77 on
# average, while with all three fixes the error at the start stays within 0.25 of the truth on every seed (+0.08 on
# average). What it does to the policy is less clear-cut than the lecture's story: DDPG's actor takes a risk of 0.51
# on average, TD3's 0.36, and seed 4 takes the full risk in all four variants. Five seeds settle the direction of the
# critic's bias; the difference in the risk taken is small enough that five more seeds might reverse it.
#
# Two honest qualifications. First, an unbiased critic of a noisy task is still noisy: TD3 does not stay out of the
# risk on every seed within 6,000 steps. Second, no single fix is enough for the critic: clipped double Q *alone*
# (DDPG + clipped double Q) still overestimates at the start state (+0.55 on average: the actor climbs the bumps of
# the first critic, and the minimum only enters the target), and TD3 without clipped double Q (smoothing and delay
# only) sits in between (+0.35). Target smoothing averages the target over a neighbourhood of $\mu'(s')$, which
# flattens exactly the narrow bumps the actor climbs; the delay gives the critic time to average the noise before the
# actor moves. Five seeds show the direction of each effect on the critic, not its size to the second digit.
#
# To rerun one case: `python -m lecturekit train td3 --env lecturekit/OverestimationTrap-v0 --steps 6000 --seed 1
# --set twin=false --set target_noise=0 --set policy_delay=1` (about 15 CPU seconds per run).
