# %% [markdown]
# # 00 · Course map and environment check
#
# This course follows the lecture *Introduction to Policy Gradient Methods* section by section. Every notebook
# runs on a laptop CPU in a minute or two, and checks its own claims: when a notebook says "the estimate matches
# the exact gradient", a cell below it `assert`s exactly that. Every reference implementation lives in the
# `lecturekit` package, which the notebooks import; the exercises ask you to rebuild the important pieces, and a
# checker tells you precisely what is wrong with your answer.
#
# ## Where everything is
#
# | lecture section | notebook | exercise (section) |
# |---|---|---|
# | From value-based to policy-based learning; why policies are stochastic | [01 Policy-based learning](01_policy_based_learning.ipynb) | ex01 (1, 2) |
# | Gradient-free policy search (hill climbing, random search, ES, CEM, finite differences) | [02 Gradient-free search](02_gradient_free_search.ipynb) | ex01 (3, 4) |
# | Derivation of the policy gradient theorem; the log-derivative trick | [03 Policy gradient theorem](03_policy_gradient_theorem.ipynb) | ex01 (5) |
# | REINFORCE | [04 REINFORCE](04_reinforce.ipynb) | ex00, ex02 (1) |
# | Variance reduction by a baseline | [05 Baselines and variance](05_baselines_variance.ipynb) | ex02 (3, 4) |
# | Policy parametrizations (softmax, Gaussian) | [06 Policy parametrizations](06_policy_parametrizations.ipynb) | ex01 (1, 2), ex02 (2) |
# | Examples: dynamic pricing, inventory control | [07 Pricing and inventory](07_pricing_inventory.ipynb) | ex02 (2) |
# | Combinatorial actions (routing); Cliff Walking | [08 Routing and Cliff Walking](08_routing_cliffwalking.ipynb) | |
# | Deep policy gradients; actor-critic, A2C, A3C | [09 Actor-critic](09_actor_critic.ipynb) | ex03 |
# | Trust regions: KL, Fisher, natural gradient, TRPO | [10 Natural gradient and TRPO](10_natural_gradient_trpo.ipynb) | ex04 |
# | PPO: clipped surrogate, GAE, minibatch epochs | [11 PPO](11_ppo.ipynb) | ex05 |
# | Deterministic policy gradients: DDPG, TD3 | [12 DDPG and TD3](12_ddpg_td3.ipynb) | ex06 |
# | Score function vs pathwise gradients; reparameterization | [13 Pathwise gradients](13_pathwise_gradients.ipynb) | ex07 (6) |
# | Entropy regularisation | [14 Entropy](14_entropy.ipynb) | ex07 (4, 6) |
# | The tanh-squashed Gaussian | [15 Squashed Gaussian](15_squashed_gaussian.ipynb) | ex07 (1, 5) |
# | Soft actor-critic | [16 SAC](16_sac.ipynb) | ex07 (2-4) |
# | Which policy gradient algorithm to use? | [17 Which algorithm](17_which_algorithm.ipynb) | |
# | Debugging: bugs that run and learn badly (returns, on-policy and off-policy losses) | the notebooks above | ex08 |
#
# ## The exercises
#
# **Your exercises are in `work/`** (`work/ex00_discounted_returns.ipynb`, ...; in JupyterLab's file browser on the
# left, open the folder `work`). The first time `make lab` starts, it copies every exercise from `exercises/` into
# `work/`, and it never overwrites a file that is already there: what you write in `work/` stays yours (git ignores
# the folder). `exercises/` holds the blank originals, which the course authors regenerate: do not work there. For a
# fresh copy of an exercise, rename or delete both of its files in `work/` and start `make lab` again. The completed
# versions are in `solutions/`. Try the exercise first.
#
# The completed versions also hold the answers to every "Think about it" question. Each exercise notebook says at
# its top how long it should take a student who followed the lecture. These times are **estimates**, not
# measurements of students. They come from working each exercise from its stub and counting what that took: the
# text to read (at 100 words a minute), 2 minutes per function plus a minute per line of a working answer, 5 minutes
# per derivation on paper, one failed check per function (2 minutes: the checks name the mistake), 2 minutes per
# "Think about it", and in ex08 5 minutes to find each bug; the machine time of the checks and training runs,
# measured, is seconds (under a minute per exercise, most of it the Pendulum runs of ex06 and ex07). ex02, ex04,
# ex05, ex06 and ex07 are two sittings each: the build-it sections are the second. Tell us how long yours took.
#
# | exercise | what you write | time (estimate) | difficulty |
# |---|---|---|---|
# | ex00 Discounted returns | returns-to-go | 15 min | 1 of 5 |
# | ex01 Scores and search | softmax score, Gaussian log-density, finite differences, CEM update, the log-derivative trick | 60 min | 1 of 5 |
# | ex02 REINFORCE | REINFORCE loss, Gaussian policy gradient, the baseline's zero mean, gradient samples on the small MDP (variance with and without a baseline); build it: the episode collection and the whole update, trained on CartPole | 130 min: 70 + 60 | 2 of 5 |
# | ex03 Actor-critic | bootstrapped returns, A2C loss; build it: the whole A2C update, trained on CartPole | 55 min | 2 of 5 |
# | ex04 TRPO | KL of softmax policies, conjugate gradient, line search, tabular Fisher matrix, natural gradient step; build it: the Fisher-vector product and the TRPO step, trained on CartPole | 115 min: 65 + 50 | 3 of 5 |
# | ex05 PPO | GAE, clipped surrogate, n-step advantages (GAE's telescoping sum), the clipping table (optional); build it: the whole PPO update, trained on CartPole | 80 min: 50 + 30 (+15 optional) | 3 of 5 |
# | ex06 TD3 | clipped double-Q target, Polyak averaging, DPG actor loss; build it: the whole TD3 (and DDPG) update, trained on Pendulum | 65 min: 30 + 35 | 3 of 5 |
# | ex07 SAC | squashed-Gaussian log-density, soft target, actor and temperature losses, tanh density, reparameterised sample; build it: the whole SAC update, trained on Pendulum | 90 min: 60 + 30 | 4 of 5 |
# | ex08 Find the bug | three fixes: a return computation, an on-policy loss, an off-policy critic loss | 55 min | 4 of 5 |
#
# **Where the lecture and the computations disagree.** A few statements of the lecture do not survive an exact
# computation (TRPO's "guaranteed" improvement, the target A2C really uses, and others). Each is listed in
# [the errata](../docs/errata.md) with the notebook cell whose `assert` shows it.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

# %% [markdown]
# ## 1. Environment check
#
# The versions the course is tested with. If an import fails here, run `make setup` in a terminal at the top of
# the course folder, then restart the kernel.

# %%
import sys

import gymnasium as gym
import ipywidgets
import matplotlib
import numpy as np
import torch

versions = {"python": sys.version.split()[0], "numpy": np.__version__, "torch": torch.__version__,
            "gymnasium": gym.__version__, "matplotlib": matplotlib.__version__, "ipywidgets": ipywidgets.__version__,
            "lecturekit": lk.__version__}
for name, v in versions.items():
    print(f"{name:>11}: {v}")
assert sys.version_info >= (3, 11)
assert torch.__version__.startswith("2.13")

# %% [markdown]
# ### A Gymnasium rollout, drawn
#
# CartPole is the workhorse of the first half of the course: push a cart left or right (two discrete actions) to
# keep a pole upright; the reward is +1 per step, and an episode ends when the pole falls past 12 degrees, the cart
# leaves the track, or after 500 steps. Below, a policy that pushes at random keeps it up for only a couple of
# dozen steps. We draw a few frames from the state (cart position, pole angle).

# %%
import matplotlib.pyplot as plt


def draw_cartpole(ax, state, title=""):
    x, _, theta, _ = state
    ax.plot([-2.4, 2.4], [0, 0], color="0.5", lw=1)
    ax.add_patch(plt.Rectangle((x - 0.25, -0.1), 0.5, 0.2, color="C0"))
    ax.plot([x, x + np.sin(theta) * 1.0], [0.1, 0.1 + np.cos(theta) * 1.0], color="C3", lw=4)
    ax.set_xlim(-2.6, 2.6), ax.set_ylim(-0.3, 1.3), ax.set_aspect("equal"), ax.axis("off"), ax.set_title(title)


env = gym.make("CartPole-v1")
obs, _ = env.reset(seed=0)
rng = np.random.default_rng(0)
states, total = [obs], 0.0
while True:
    obs, r, terminated, truncated, _ = env.step(int(rng.integers(2)))
    states.append(obs)
    total += r
    if terminated or truncated:
        break
frames = np.linspace(0, len(states) - 1, 5).astype(int)
fig, axes = plt.subplots(1, 5, figsize=(12, 2.2))
for ax, i in zip(axes, frames):
    draw_cartpole(ax, states[i], f"step {i}")
plt.show()
print(f"random policy: episode return {total:.0f} after {len(states) - 1} steps")
assert 5 <= total < 100  # a random policy drops the pole quickly

# %% [markdown]
# ### A widget
#
# Many notebooks let you move a slider and watch a quantity change. Here: the discounted return of a constant
# reward of 1 per step for 100 steps, as a function of the discount factor. Move the slider; the text below it
# changes. (If you see "Loading widget..." instead of a slider, the widget extension is missing: run `make lab`.)

# %%
from lecturekit.returns import discounted_returns

gamma_slider = ipywidgets.FloatSlider(value=0.9, min=0.0, max=1.0, step=0.01, description="gamma")
readout = ipywidgets.HTML()


def show_return(change=None):
    g0 = discounted_returns(np.ones(100), gamma_slider.value)[0]
    readout.value = f"G_0 = {g0:.3f} &nbsp; (the infinite-horizon limit 1 / (1 - gamma) is " \
                    f"{1 / max(1e-9, 1 - gamma_slider.value):.3f})"


gamma_slider.observe(show_return, names="value")
show_return()
ipywidgets.VBox([gamma_slider, readout])

# %%
gamma_slider.value = 0.5  # what happens when you move the slider
assert readout.value.startswith("G_0 = 2.000")

# %% [markdown]
# ## 2. The first topic, end to end: discounted returns
#
# Every later notebook uses the **return-to-go** of a time step: the rewards from that step to the end of the
# episode, each discounted by how far in the future it arrives,
#
# $$G_t = \sum_{k=t}^{T-1} \gamma^{\,k-t} r_k, \qquad\text{equivalently}\qquad G_t = r_t + \gamma\, G_{t+1},\; G_T = 0.$$
#
# The recursion is how we compute it: walk backwards through the episode once. `lecturekit.returns` holds the
# reference implementation; here we check it against the definition, summed term by term.

# %%
rewards = [2.0, 0.0, 1.0]
G = discounted_returns(rewards, gamma=0.5)
print(G)
# by hand: G_2 = 1, G_1 = 0 + 0.5 * 1 = 0.5, G_0 = 2 + 0.5 * 0.5 = 2.25
assert G.tolist() == [2.25, 0.5, 1.0]
by_definition = [sum(0.5 ** (k - t) * rewards[k] for k in range(t, 3)) for t in range(3)]
assert np.allclose(G, by_definition)

# %% [markdown]
# ## 3. How exercises work, and how to read a checker's message
#
# Open `work/ex00_discounted_returns.ipynb`, your copy of the first exercise. Each exercise is a function with its
# docstring and a body that raises `NotImplementedError`; below it, a check cell calls `check_<name>(<name>)`. The
# checker runs your function on cases from the smallest to the largest and stops at the first one that fails. Its
# message names **the case**, **what was expected**, **what your function returned**, and a **hint**. It also
# notices answers that return `None`, the wrong type, shape or dtype, NaN, or that modify their inputs in place.
#
# Here is a typical wrong answer, one that loops backwards but forgets to reverse the list, and the message it gets:

# %%
from lecturekit.checks import CheckFailed, check_discounted_returns


def discounted_returns_wrong(rewards, gamma):
    out, g = [], 0.0
    for r in reversed(rewards):
        g = r + gamma * g
        out.append(g)
    return np.array(out)  # forgot to reverse


try:
    check_discounted_returns(discounted_returns_wrong)
except CheckFailed as e:
    message = str(e)
print(message)
assert "reverse order" in message and "expected" in message and "got" in message

# %% [markdown]
# The reference implementation passes, as does any correct answer, however it is written:

# %%
check_discounted_returns(discounted_returns)
check_discounted_returns(lambda r, g: np.array([sum(g ** (k - t) * r[k] for k in range(t, len(r)))
                                                for t in range(len(r))], dtype=float))

# %% [markdown]
# ## 4. Training from the command line
#
# Every algorithm of the course can also be trained from a terminal, which prints progress and ends with one line
# of JSON, for example
#
# ```
# python -m lecturekit train ppo --env CartPole-v1 --target 475 --seed 0
# python -m lecturekit bench ppo --seeds 5
# ```
#
# `python -m lecturekit --help` lists the algorithms. Next: [01 Policy-based learning](01_policy_based_learning.ipynb).

# %%
from lecturekit.algos import registry

print("algorithms:", ", ".join(registry()))
