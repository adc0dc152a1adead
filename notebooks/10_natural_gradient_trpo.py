# %% [markdown]
# # 10 · Natural policy gradient and TRPO
#
# Lecture part 4, "Policy Optimization with Trust Region Constraints": parameter space versus policy space, the KL
# divergence and the Fisher matrix, the natural gradient and where it falls short, and TRPO (conjugate gradient,
# the importance-sampled surrogate, the backtracking line search).
#
# **What you will see.**
# 1. The same step in $\theta$ can move the policy a little or a lot, depending on how the policy is parametrized.
# 2. The KL divergence between nearby policies is a quadratic form in the step, and its matrix is the Fisher matrix
#    (checked numerically, and against autograd).
# 3. Natural-gradient ascent on the small MDP of part 1: no plateau from a bad start, and the same path in policy
#    space whatever the parametrization.
# 4. Conjugate gradient solves $F x = g$ with Fisher-vector products only, never forming $F$.
# 5. TRPO on CartPole, its line search in action, and what happens to a plain gradient step that is too large.

# %%
import lecturekit as lk

lk.notebook_setup(seed=0)

# %% jupyter={"source_hidden": true}
import time

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

from lecturekit.course import live
from lecturekit import optim
from lecturekit.algos import a2c, trpo
from lecturekit.envs import make_unit_vec
from lecturekit.evaluation import Run
from lecturekit.tabular.mdp import small_mdp
from lecturekit.nets import ActorCritic, mlp
from lecturekit.rollout import collect, start

# %% [markdown]
# ## 1. Why distance in parameter space is the wrong distance
#
# Vanilla policy gradient takes the step $\theta_{k+1} = \theta_k + \alpha \nabla_\theta J(\theta_k)$. The step size
# $\alpha$ controls $\|\theta_{k+1} - \theta_k\|$, a Euclidean distance between *parameter vectors*. What we care
# about is how different the *policies* are, and the two are only loosely related: the same parameter step can
# leave the policy almost unchanged in one direction and turn it upside down in another.
#
# A policy-space distance that does not depend on how the policy is written down is the KL divergence
#
# $$D_{\mathrm{KL}}(\pi_\theta \,\|\, \pi_{\theta+\delta}) = \sum_a \pi_\theta(a) \log \frac{\pi_\theta(a)}{\pi_{\theta+\delta}(a)}.$$
#
# Below, one softmax policy over three actions is written in two ways. **A** uses the logits
# $h = (\theta_1, \theta_2, 0)$. **B** uses $h = (10\,\varphi_1,\ 0.1\,\varphi_2,\ 0)$. Both describe exactly the same
# set of policies ($\varphi = (\theta_1/10,\ 10\,\theta_2)$ is the same policy as $\theta$). Starting from the same
# policy, take a step of fixed Euclidean length $\varepsilon$ in the direction at angle $\psi$ and measure the KL.

# %%
def kl_of_step(logits_fn, params, step):
    """KL(pi_params || pi_params+step) of a 3-action softmax policy with logits logits_fn(params)."""
    return optim.kl_categorical(logits_fn(params), logits_fn(params + step)).item()


logits_A = lambda th: torch.stack([th[0], th[1], torch.zeros((), dtype=th.dtype)])  # noqa: E731
logits_B = lambda ph: torch.stack([10 * ph[0], 0.1 * ph[1], torch.zeros((), dtype=ph.dtype)])  # noqa: E731
theta0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
phi0 = torch.tensor([theta0[0] / 10, theta0[1] * 10], dtype=torch.float64)
assert torch.allclose(logits_A(theta0), logits_B(phi0))  # the same policy
angles = np.linspace(0, 2 * np.pi, 181)


def kl_by_direction(eps):
    dirs = [torch.tensor([np.cos(a), np.sin(a)], dtype=torch.float64) for a in angles]
    return (np.array([kl_of_step(logits_A, theta0, eps * d) for d in dirs]),
            np.array([kl_of_step(logits_B, phi0, eps * d) for d in dirs]))


def step_figure(eps=0.1, angle_deg=45.0):
    kl_A, kl_B = kl_by_direction(eps)
    d = eps * torch.tensor([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))], dtype=torch.float64)
    here = kl_of_step(logits_A, theta0, d), kl_of_step(logits_B, phi0, d)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.semilogy(np.degrees(angles), kl_A, label="parametrization A")
    ax.semilogy(np.degrees(angles), kl_B, label="parametrization B")
    ax.plot([angle_deg] * 2, here, "ko")
    ax.set_xlabel("direction of the step (degrees)")
    ax.set_ylabel("KL(old || new)")
    ax.set_title(f"one step of Euclidean length {eps:g} from the same policy")
    ax.legend()
    plt.show()
    print(f"step at {angle_deg:.0f} degrees: KL = {here[0]:.2e} in A, {here[1]:.2e} in B")
    return here


W.interact(step_figure, eps=W.FloatLogSlider(value=0.1, base=10, min=-3, max=0.5, step=0.1, description="step ε"),
           angle_deg=W.FloatSlider(value=45.0, min=0.0, max=360.0, step=5.0, description="direction ψ"));

# %% [markdown]
# In A, the KL of a step of length 0.1 changes with the direction by a modest factor. In B it changes by a factor of
# more than $10^4$: along $\varphi_1$ every unit of parameter is ten logit units, along $\varphi_2$ it is a tenth of one.
# Whatever single step size $\alpha$ we pick, it is too large in some direction of B or too small in another. And
# the KL itself only depends on the two policies: the step $\delta\varphi$ in B and the step that reaches the same
# policy in A, $\delta\theta = (10\,\delta\varphi_1,\ 0.1\,\delta\varphi_2)$, have identical KL.

# %%
kl_A, kl_B = kl_by_direction(0.1)
spread_A, spread_B = kl_A.max() / kl_A.min(), kl_B.max() / kl_B.min()
print(f"max/min KL over directions, step 0.1: A {spread_A:.1f}, B {spread_B:.0f}")
assert spread_A < 20 and spread_B > 1000
rng = np.random.default_rng(0)
for _ in range(5):
    dphi = torch.as_tensor(rng.normal(size=2))
    dtheta = torch.stack([10 * dphi[0], 0.1 * dphi[1]])
    assert abs(kl_of_step(logits_B, phi0, dphi) - kl_of_step(logits_A, theta0, dtheta)) < 1e-12

# %% [markdown]
# ## 2. The KL divergence and the Fisher matrix
#
# Around $\delta = 0$ the KL is zero and has zero gradient (it is minimal there), so its Taylor expansion starts
# with the quadratic term:
#
# $$D_{\mathrm{KL}}(\pi_\theta \,\|\, \pi_{\theta+\delta}) \approx \tfrac12\, \delta^\top F(\theta)\, \delta, \qquad
# F(\theta) = \mathbb{E}_{s,\ a \sim \pi_\theta}\big[\nabla_\theta \log \pi_\theta(a|s)\ \nabla_\theta \log \pi_\theta(a|s)^\top\big].$$
#
# $F$ is the Fisher information matrix: the covariance of the score. It is the Hessian of the KL at $\delta = 0$,
# and it is the local metric of policy space. We check both statements on a small softmax policy network
# (4 inputs, 16 hidden units, 3 actions, 131 parameters), averaging over a batch of 64 states. Here $F$ is formed
# explicitly from the scores of every state and action (`optim.fisher_matrix_categorical`), which is fine at this size.

# %%
torch.manual_seed(0)
net = mlp([4, 16, 3]).double()
states = torch.randn(64, 4, dtype=torch.float64)
theta = optim.get_flat_params(net)
F = optim.fisher_matrix_categorical(net, states)
old_logits = net(states).detach()


def mean_kl_at(step):
    """E_s KL(pi_theta(.|s) || pi_theta+step(.|s)), exactly."""
    return optim.kl_categorical(old_logits, optim.call_with_flat_params(net, theta + step, states)).mean()


u = torch.randn(len(theta), dtype=torch.float64)
u /= u.norm()
eps_grid = np.logspace(-4, 0.5, 10)  # below 1e-4 the KL (~1e-10) drowns in float64 rounding
exact = np.array([mean_kl_at(e * u).item() for e in eps_grid])
quadratic = np.array([0.5 * e**2 * (u @ F @ u).item() for e in eps_grid])
ratio = exact / quadratic

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].loglog(eps_grid, exact, "o-", label="exact KL")
axes[0].loglog(eps_grid, quadratic, "--", label="½ δᵀFδ")
axes[0].set_xlabel("step length ε (δ = ε u)")
axes[0].set_title("KL of a step and its quadratic model")
axes[0].legend()
axes[1].loglog(eps_grid, np.abs(ratio - 1), "o-")
axes[1].set_xlabel("step length ε")
axes[1].set_title("|exact / quadratic − 1|")
plt.tight_layout()
plt.show()
print("ratio exact/quadratic:", np.round(ratio, 5))
assert abs(ratio[0] - 1) < 1e-4 and abs(ratio[-1] - 1) > 10 * abs(ratio[0] - 1)
assert np.all(np.diff(np.abs(ratio - 1)) > 0)  # the ratio tends to 1 as the step shrinks

# %% [markdown]
# The relative error of the quadratic model shrinks in proportion to $\varepsilon$ (the next Taylor term is cubic),
# and for steps of length around one the model is off by tens of percent. This is the first limitation of the
# natural gradient listed in the lecture: the KL it controls is a local approximation.
#
# Now the Hessian of the KL at $\delta = 0$, by autograd, against $F$ built from the scores:

# %%
H = torch.autograd.functional.hessian(mean_kl_at, torch.zeros_like(theta), vectorize=True)
print(f"max |H - F| = {(H - F).abs().max():.2e},  max |F| = {F.abs().max():.2e}")
assert torch.allclose(H, F, atol=1e-10, rtol=1e-8)
eig = torch.linalg.eigvalsh(F)
print(f"eigenvalues of F: min {eig.min():.1e}, max {eig.max():.1e}; "
      f"{int((eig > 1e-10 * eig.max()).sum())} of {len(eig)} clearly positive")
assert eig.min() > -1e-10  # F is positive semi-definite (a covariance)

# %% [markdown]
# $F$ is positive semi-definite but singular: at most $64 \times (3 - 1) = 128$ directions change any of the 64
# policies (shifting all logits of a state by the same amount changes nothing), so some directions cost no KL at
# all. This is why TRPO adds a small damping, $F + \lambda I$, before solving with it.
#
# ## 3. The natural gradient on the small MDP of part 1
#
# The steepest ascent direction *per unit of KL* solves
# $\max_\delta \nabla J^\top \delta$ subject to $\tfrac12 \delta^\top F \delta \le \epsilon$, whose solution points along
#
# $$\tilde\nabla_\theta J = F(\theta)^{-1} \nabla_\theta J(\theta) \qquad \text{(the natural gradient)}.$$
#
# On the tabular MDP of part 1 everything is exact: $J(\theta)$, its gradient, and the Fisher matrix of a tabular
# softmax policy, $F = \sum_s d(s)\, (\mathrm{diag}(\pi_s) - \pi_s \pi_s^\top)$ with the discounted state visitation
# $d$. $F$ is singular (adding a constant to one state's logits changes nothing), so we use its pseudo-inverse. A
# classic result follows: for a tabular softmax policy the natural gradient is the advantage function, up to a
# constant per state.

# %%
mdp = small_mdp()
S, A = mdp.n_states, mdp.n_actions
J_star = mdp.optimal_J()


def tabular_fisher(theta):
    """F = sum_s d(s) (diag(pi_s) - pi_s pi_s^T) over the flattened (S * A) logits."""
    pi = mdp.policy(theta).detach()
    d = mdp.discounted_state_visitation(theta).detach()
    return torch.block_diag(*[d[s] * (torch.diag(pi[s]) - torch.outer(pi[s], pi[s])) for s in range(S)])


def natural_gradient(theta):
    g = mdp.exact_gradient(theta).reshape(-1)
    return (torch.linalg.pinv(tabular_fisher(theta)) @ g).reshape(S, A)


theta_u = torch.zeros(S, A, dtype=torch.float64)
adv = mdp.advantages(theta_u)
live_states = ~torch.as_tensor(mdp.terminal)
diff = natural_gradient(theta_u) - (adv - adv.mean(1, keepdim=True))
print(f"max |natural gradient - (A - mean_a A)| = {diff[live_states].abs().max():.1e}")
assert diff[live_states].abs().max() < 1e-10

# %% [markdown]
# ### No plateau from a bad start
#
# Start from a policy that puts a logit of $c$ on the *worst* action of every state (the larger $c$, the more
# deterministic and the worse the start) and count the iterations until $J(\theta) \ge 0.99\, J^*$. The step sizes
# (10 for the vanilla gradient, 1 for the natural gradient) are chosen so that both need about the same number of
# iterations from the uniform policy ($c = 0$).

# %%
q_star = torch.as_tensor(mdp.optimal_q_values())
worst = q_star.argmin(1)


def ascend(direction, lr, theta, max_iter=3000):
    """theta <- theta + lr * direction(theta) until J >= 0.99 J*; returns (iterations, J per iteration)."""
    Js = []
    for k in range(max_iter):
        Js.append(mdp.J(theta).item())
        if Js[-1] >= 0.99 * J_star:
            return k, Js
        theta = theta + lr * direction(theta)
    return None, Js


assert J_star > 0
iters, curves = {}, {}
for c in [0, 2, 4, 6, 8]:
    theta_c = torch.zeros(S, A, dtype=torch.float64)
    theta_c[torch.arange(S), worst] = float(c)
    (iters[c, "vanilla"], curves[c, "vanilla"]) = ascend(mdp.exact_gradient, 10.0, theta_c)
    (iters[c, "natural"], curves[c, "natural"]) = ascend(natural_gradient, 1.0, theta_c)
    print(f"c = {c}: J(start) = {curves[c, 'vanilla'][0]:6.3f};  iterations to 0.99 J*: vanilla "
          f"{iters[c, 'vanilla']:4d}, natural {iters[c, 'natural']:3d}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
cs = [0, 2, 4, 6, 8]
axes[0].semilogy(cs, [iters[c, "vanilla"] for c in cs], "o-", label="vanilla gradient (step 10)")
axes[0].semilogy(cs, [iters[c, "natural"] for c in cs], "o-", label="natural gradient (step 1)")
axes[0].set_xlabel("logit c on the worst action at the start")
axes[0].set_ylabel("iterations to 0.99 J*")
axes[0].legend()
for name in ["vanilla", "natural"]:
    axes[1].plot(curves[6, name], label=name)
axes[1].axhline(0.99 * J_star, color="k", ls="--", lw=1, label="0.99 J*")
axes[1].set_xlabel("iteration")
axes[1].set_ylabel("J(θ)")
axes[1].set_title("start with c = 6")
axes[1].legend()
plt.tight_layout()
plt.show()
assert iters[0, "vanilla"] < 2 * iters[0, "natural"] + 5
assert iters[8, "vanilla"] > 10 * iters[8, "natural"]
assert iters[8, "natural"] < 4 * iters[0, "natural"] and iters[8, "vanilla"] > 10 * iters[0, "vanilla"]

# %% [markdown]
# The vanilla gradient of a nearly deterministic softmax is tiny (it carries a factor $\pi(a|s)$ of the actions
# that should be tried), so it crawls along a plateau whose length grows quickly with $c$. The natural gradient
# divides that factor out again: each step moves the logits by the advantages, whatever the current probabilities.
#
# ### Invariance to the parametrization
#
# Write the same tabular policies as logits $h = c \odot \varphi$ with a fixed positive scale per entry (between
# 0.2 and 5). By the chain rule the gradient becomes $c \odot \nabla_h J$ and the Fisher matrix $C F C$ with
# $C = \mathrm{diag}(c)$. Run both methods in both parametrizations from the same policy and compare the policies
# they visit.

# %%
scale = torch.as_tensor(np.exp(np.random.default_rng(1).uniform(np.log(0.2), np.log(5.0), size=(S, A))))


def grad_phi(phi):
    return scale * mdp.exact_gradient(scale * phi)


def natural_phi(phi):
    C = torch.diag(scale.reshape(-1))
    F_phi = C @ tabular_fisher(scale * phi) @ C
    return (torch.linalg.pinv(F_phi) @ grad_phi(phi).reshape(-1)).reshape(S, A)


def policy_path(direction, lr, params, to_logits, n=15):
    path = []
    for _ in range(n):
        path.append(mdp.policy(to_logits(params)))
        params = params + lr * direction(params)
    return torch.stack(path)


start_theta = torch.zeros(S, A, dtype=torch.float64)
paths = {
    ("natural", "θ"): policy_path(natural_gradient, 0.5, start_theta, lambda t: t),
    ("natural", "φ"): policy_path(natural_phi, 0.5, start_theta / scale, lambda p: scale * p),
    ("vanilla", "θ"): policy_path(mdp.exact_gradient, 5.0, start_theta, lambda t: t),
    ("vanilla", "φ"): policy_path(grad_phi, 5.0, start_theta / scale, lambda p: scale * p),
}
gap_nat = (paths["natural", "θ"] - paths["natural", "φ"])[:, live_states].abs().max().item()
gap_van = (paths["vanilla", "θ"] - paths["vanilla", "φ"])[:, live_states].abs().max().item()
print(f"largest difference in pi between the two parametrizations: natural {gap_nat:.1e}, vanilla {gap_van:.2f}")

fig, ax = plt.subplots(figsize=(5, 4))
for (method, par), path in paths.items():
    ax.plot(path[:, 0, 0], path[:, 0, 1], "o-" if par == "θ" else "x--", ms=4,
            color="C0" if method == "natural" else "C1", label=f"{method}, logits {par}")
ax.set_xlabel("π(a=0 | s=0)")
ax.set_ylabel("π(a=1 | s=0)")
ax.set_title("paths in policy space (state 0)")
ax.legend(fontsize=8)
plt.show()
assert gap_nat < 1e-8 and gap_van > 0.05

# %% [markdown]
# The natural-gradient paths lie on top of each other: the update is defined by the policies, not by how they are
# written. The vanilla paths part ways after the first step.
#
# **How far the invariance goes (erratum E4).** The scaling $h = c \odot \varphi$ is *linear*, and for linear
# reparametrisations the natural step is exactly the same policy step, whatever its size. For a non-linear
# reparametrisation the natural gradient is invariant only to first order: it is defined through the local
# linearisation of $\varphi \mapsto h$, and a finite step in $\varphi$ follows the curve $h(\varphi)$ rather than
# its tangent. Take $h = \varphi + \varphi^3/3$ (monotone, Jacobian $\mathrm{diag}(1 + \varphi^2)$), one natural
# step of size $\alpha$ from the same policy in both parametrisations, and compare the policies: the gap shrinks
# like $\alpha^2$, the signature of a second-order effect.

# %%
def cubic(phi):
    return phi + phi ** 3 / 3


def natural_phi_cubic(phi):
    jac = torch.diag((1 + phi ** 2).reshape(-1))
    g_phi = jac @ mdp.exact_gradient(cubic(phi)).reshape(-1)
    return (torch.linalg.pinv(jac @ tabular_fisher(cubic(phi)) @ jac) @ g_phi).reshape(S, A)


phi_0 = torch.as_tensor(np.random.default_rng(2).uniform(0.3, 1.0, size=(S, A)))
step_sizes = np.array([0.4, 0.2, 0.1, 0.05, 0.025])
gaps_cubic, gaps_linear = [], []
for lr in step_sizes:
    pi_theta = mdp.policy(cubic(phi_0) + lr * natural_gradient(cubic(phi_0)))
    pi_cubic = mdp.policy(cubic(phi_0 + lr * natural_phi_cubic(phi_0)))
    pi_linear = mdp.policy(scale * (phi_0 + lr * natural_phi(phi_0)))
    gaps_cubic.append((pi_theta - pi_cubic)[live_states].abs().max().item())
    pi_theta_lin = mdp.policy(scale * phi_0 + lr * natural_gradient(scale * phi_0))
    gaps_linear.append((pi_theta_lin - pi_linear)[live_states].abs().max().item())
order = np.polyfit(np.log(step_sizes), np.log(gaps_cubic), 1)[0]
for lr, gc, gl in zip(step_sizes, gaps_cubic, gaps_linear):
    print(f"step {lr:5.3f}: policy gap, cubic reparametrisation {gc:.1e}, linear one {gl:.0e}")
print(f"the cubic gap falls like step^{order:.2f}")
assert max(gaps_linear) < 1e-8                 # linear: exactly invariant at every step size
assert 1.8 < order < 2.2 and gaps_cubic[0] > 1e-3  # non-linear: invariant to first order only

# %% [markdown]
# What the natural gradient does not give us (the lecture's list): the KL it controls is only the quadratic
# model (section 2); nothing checks that the new policy is actually better; and $F^{-1}$ costs $O(n^3)$ for $n$
# parameters. TRPO fixes the first and the third: its line search measures the real KL, and conjugate gradient
# never forms $F^{-1}$. It only *partly* answers the second: the line search checks that a *sampled surrogate*
# improves, which is not the same as the true return improving. Section 6 computes the difference exactly.
#
# ## 4. Conjugate gradient with Fisher-vector products
#
# TRPO needs $x \approx F^{-1} g$, not $F^{-1}$ itself. Conjugate gradient (CG) solves $F x = g$ for a symmetric
# positive definite $F$ using only products $F v$, and each product is one extra backward pass through the gradient
# of the mean KL: $F v = \nabla_\theta\big((\nabla_\theta \overline{\mathrm{KL}})^\top v\big)$
# (`optim.fisher_vector_product`). $F$ is never formed.
#
# On a small network (4 inputs, 32 hidden, 2 actions; 226 parameters) with a batch of 256 states, sampled actions
# and made-up advantages, CG agrees with a direct solve of the explicitly formed (damped) system:

# %%
def policy_gradient_problem(hidden, damping=0.1, seed=0):
    """A policy net, its surrogate gradient g on a random batch, and v -> (F + damping I) v."""
    torch.manual_seed(seed)
    net = mlp([4, hidden, 2], out_gain=1.0)
    obs = torch.randn(256, 4)
    with torch.no_grad():
        logits = net(obs)
        act = torch.distributions.Categorical(logits=logits).sample()
    adv = torch.randn(256)
    logp = torch.log_softmax(net(obs), -1).gather(1, act[:, None]).squeeze(1)
    g = optim.flat_grad(trpo.surrogate_objective(logp, logp.detach(), adv), net)
    fvp = optim.fisher_vector_product(optim.kl_categorical(logits, net(obs)).mean(), net, damping)
    return net, obs, g, fvp


damping = 0.1
net_s, obs_s, g_s, fvp_s = policy_gradient_problem(32, damping)
F_s = optim.fisher_matrix_categorical(net_s, obs_s) + damping * torch.eye(len(g_s))
x_direct = torch.linalg.solve(F_s, g_s)
residuals = []
x_cg = optim.conjugate_gradient(fvp_s, g_s, iters=25, tol=1e-14, residuals=residuals)
rel_err = ((x_cg - x_direct).norm() / x_direct.norm()).item()
print(f"{len(g_s)} parameters; CG used {len(residuals) - 1} Fisher-vector products; relative difference from the "
      f"direct solve {rel_err:.1e}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(residuals, "o-")
ax.set_xlabel("CG iteration")
ax.set_ylabel("‖g − F x‖²")
ax.set_title("residual of conjugate gradient")
plt.show()
assert rel_err < 1e-3
assert len(residuals) <= 12 and residuals[-1] < 1e-6 * residuals[0]

# %% [markdown]
# The residual falls by many orders of magnitude in about ten iterations, which is why TRPO implementations use
# around 10 CG steps. Now the cost as the network grows: forming $F$ needs the score of every state-action pair for
# every parameter and $n^2$ numbers of memory, and solving costs $O(n^3)$; ten CG iterations cost ten products,
# each about two backward passes through the policy.

# %%
jac_warmup = optim.fisher_matrix_categorical(mlp([4, 4, 2]), torch.randn(4, 4))  # first call sets up torch.func
rows = []
for hidden in [8, 32, 128, 256]:
    net_h, obs_h, g_h, fvp_h = policy_gradient_problem(hidden, damping)
    t0 = time.perf_counter()
    x_d = torch.linalg.solve(optim.fisher_matrix_categorical(net_h, obs_h) + damping * torch.eye(len(g_h)), g_h)
    t_direct = time.perf_counter() - t0
    t_cg = float("inf")
    for _ in range(3):  # best of three: a busy machine can pause any single short measurement
        t0 = time.perf_counter()
        x_c = optim.conjugate_gradient(fvp_h, g_h, iters=10)
        t_cg = min(t_cg, time.perf_counter() - t0)
    rows.append((len(g_h), t_direct, t_cg, ((x_c - x_d).norm() / x_d.norm()).item()))
    print(f"n = {len(g_h):5d} parameters: form F and solve {t_direct * 1e3:7.1f} ms ({len(g_h) ** 2 * 4 / 1e6:5.1f} MB "
          f"for F), 10 CG steps {t_cg * 1e3:6.1f} ms, relative difference {rows[-1][3]:.1e}")
n_params, t_direct_all, t_cg_all, errs = map(np.array, zip(*rows))
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(n_params, t_direct_all, "o-", label="form F and solve")
ax.loglog(n_params, t_cg_all, "o-", label="10 CG iterations")
ax.set_xlabel("number of parameters n")
ax.set_ylabel("seconds (measured here, 1 thread)")
ax.legend()
plt.show()
assert np.all(errs < 1e-2)  # ten CG iterations agree with the direct solve to well within 1 %
assert t_direct_all[-1] > 5 * t_cg_all[-1]
print(f"the 64x64 CartPole actor of TRPO has 4610 parameters: F would hold {4610 ** 2 / 1e6:.0f} million numbers")

# %% [markdown]
# ## 5. TRPO
#
# TRPO turns the natural gradient into a checked step. With data from $\pi_{\theta_k}$ it maximises the
# importance-sampled surrogate inside a KL ball:
#
# $$\max_\theta\ L(\theta) = \mathbb{E}_{s,a \sim \pi_{\theta_k}}\Big[\frac{\pi_\theta(a|s)}{\pi_{\theta_k}(a|s)}\, A^{\pi_{\theta_k}}(s,a)\Big]
# \quad \text{s.t.} \quad \mathbb{E}_s\big[D_{\mathrm{KL}}(\pi_{\theta_k}(\cdot|s) \,\|\, \pi_\theta(\cdot|s))\big] \le \delta.$$
#
# The ratio re-weights actions sampled by the old policy to estimate how the new policy would do; at
# $\theta = \theta_k$ the ratio is 1 and $\nabla L$ is the ordinary policy gradient $g$. One update
# (`trpo.trpo_step`):
# 1. $\hat x \approx F^{-1} g$ by 10 CG iterations with Fisher-vector products (damping 0.1);
# 2. the step whose quadratic KL model equals $\delta$: $\beta = \sqrt{2\delta / \hat x^\top F \hat x}$;
# 3. backtracking: try $\theta_k + \alpha^j \beta\, \hat x$ for $j = 0, 1, \dots$ with $\alpha = 0.5$ and accept the
#    first candidate whose surrogate improves, $L(\theta) > L(\theta_k)$, and whose *exact* mean KL is at most
#    $\delta$ (`optim.line_search`). If none qualifies, the policy stays where it is.
#
# The critic is fitted as in A2C (squared error to the value targets), and the advantages come from GAE on the
# shared rollout code. First, one update by hand on a fresh policy, with the default radius $\delta = 0.02$, exactly
# as in the lecture's formula (no damping), and then with the damping $F + 0.1\,I$ that `trpo.Config` uses:

# %%
envs = make_unit_vec("CartPole-v1", 8)
torch.manual_seed(0)
model = ActorCritic(envs.single_observation_space, envs.single_action_space)
ro = collect(envs, model, start(envs, seed=0), 128)
envs.close()
adv_ro, _ = ro.advantages(trpo.Config().gamma, trpo.Config().gae_lambda)
m = torch.as_tensor(ro.valid)
obs_b, act_b, logp_old_b = ro.obs[m], ro.actions[m], ro.logp[m]
adv_b = (adv_ro[m] - adv_ro[m].mean()) / adv_ro[m].std()
old_logits_b = model.pi(obs_b).detach()
params = trpo.policy_params(model)
theta_k = optim.get_flat_params(params)
g = optim.flat_grad(trpo.surrogate_objective(model.log_prob(obs_b, act_b), logp_old_b, adv_b), params)
delta = 0.02


def surrogate_at(th):
    logp = torch.log_softmax(optim.call_with_flat_params(model.pi, th, obs_b), -1).gather(1, act_b[:, None]).squeeze(1)
    return trpo.surrogate_objective(logp, logp_old_b, adv_b).item()


def kl_at(th):
    return optim.kl_categorical(old_logits_b, optim.call_with_flat_params(model.pi, th, obs_b)).mean().item()


def one_update(damping):
    """CG direction, the step scale beta = sqrt(2 delta / x^T H x), and the backtracking line search."""
    fvp = optim.fisher_vector_product(optim.kl_categorical(old_logits_b, model.pi(obs_b)).mean(), params, damping)
    x_hat = optim.conjugate_gradient(fvp, g, iters=10)
    beta = optim.max_step_scale(x_hat, fvp(x_hat), delta)
    base = surrogate_at(theta_k)
    print(f"damping {damping}: beta = {beta:.3f}\n  j  alpha^j  surrogate gain  exact KL (delta = {delta})")
    for j in range(5):
        cand = theta_k + 0.5**j * beta * x_hat
        print(f"  {j}  {0.5 ** j:6.4f}     {surrogate_at(cand) - base:+.4f}      {kl_at(cand):8.4f}")
    res = optim.line_search(theta_k, beta * x_hat, surrogate_at, kl_at, delta)
    print(f"  accepted j = {res.accepted_j}: KL {res.kl:.4f}, surrogate gain {res.improvement:+.4f}\n")
    return res, kl_at(theta_k + beta * x_hat)


res_plain, kl_full_plain = one_update(0.0)
res_damped, kl_full_damped = one_update(0.1)
print(f"full step without damping: exact KL {kl_full_plain:.3f} = {kl_full_plain / delta:.1f} x the promised delta")
assert kl_full_plain > delta  # the quadratic model promised KL = delta for the full step
assert res_plain.accepted_j > 0 and res_plain.kl <= delta and res_plain.improvement > 0
assert res_damped.accepted_j == 0 and res_damped.kl <= delta and res_damped.improvement > 0

# %% [markdown]
# Without damping, ten CG iterations on a nearly singular $F$ produce a direction that leans into directions the
# quadratic model considers almost free. The full step promised KL $= \delta$ and delivers more (here about twelve
# times more); the line search halves it until the exact KL fits. With damping, the quadratic model errs on the safe side (its
# $x^\top (F + \lambda I) x$ overstates the KL) and the full step is accepted. Either way the accepted step
# respects the trust region: that is the check the plain natural gradient never makes.
#
# ### TRPO on CartPole-v1
#
# The default configuration (`trpo.Config`): 8 environments × 128 steps per update, $\delta = 0.02$, 10 CG
# iterations, damping 0.1, $\alpha = 0.5$, up to 10 backtracking steps, GAE $\lambda = 0.97$, 20 Adam
# steps on the critic per update. Training stops when
# the mean return of 20 deterministic evaluation episodes reaches 475. Change the knobs and press Train to rerun.

# %%
from lecturekit.evaluation import Run

hist_trpo = live.demo(trpo.train, "CartPole-v1", trpo.Config(),
                      knobs={"max_kl": (0.005, 0.2, 0.005), "n_steps": [64, 256]},
                      run=Run(steps=100_000, seed=0, target=475.0, eval_every=2048), title="TRPO, CartPole-v1")

# %%
logs = hist_trpo.logs
print(f"solved: {hist_trpo.solved} after {hist_trpo.solved_at_steps} steps ({hist_trpo.solved_at_s:.1f} s, "
      f"measured here); {len(logs['kl'])} updates")
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
axes[0].plot(logs["env_steps"], logs["accepted_j"], "o")
axes[0].set_yticks(range(-1, max(3, max(logs["accepted_j"])) + 1))
axes[0].set_title("accepted j (−1: step rejected)")
axes[1].plot(logs["env_steps"], logs["kl"], "o-", label="mean KL of the step")
axes[1].axhline(0.02, color="k", ls="--", lw=1, label="δ = 0.02")
axes[1].set_ylim(0, 1.25 * 0.02)
axes[1].set_title("KL(π_k ‖ π_k+1)")
axes[1].legend(fontsize=8)
axes[2].plot(logs["env_steps"], logs["surrogate_gain"], "o-")
axes[2].set_title("surrogate improvement L(θ_k+1) − L(θ_k)")
for ax in axes:
    ax.set_xlabel("environment steps")
plt.tight_layout()
plt.show()
assert hist_trpo.solved and hist_trpo.final_return >= 475.0
assert max(logs["kl"]) <= 0.02  # every accepted step respects the trust region
assert all(gain > 0 for gain, j in zip(logs["surrogate_gain"], logs["accepted_j"]) if j >= 0)

# %% [markdown]
# With damping the full step ($j = 0$) is accepted in almost every update and its exact KL lands a little under
# the radius; the line search is the safety net (as in the undamped update above, where it was needed).
#
# ### Compared with A2C and with a plain gradient step that is too large
#
# A2C (part 3, its default configuration) takes one Adam step per rollout. The third run uses exactly TRPO's data,
# advantages and critic but replaces the trust-region step by the vanilla step $\theta_{k+1} = \theta_k + \alpha g$
# with $\alpha = 10$ (`trpo.Config(vanilla_lr=10)`), for a fixed budget of 30 000 steps.

# %%
hist_a2c = live.demo(a2c.train, "CartPole-v1", a2c.A2CConfig(lr=1e-3), knobs={"lr": (1e-4, 1e-2, 1e-4)},
                     run=Run(steps=100_000, seed=0, target=475.0, eval_every=2048), title="A2C, CartPole-v1")


# %%
hist_van = live.demo(trpo.train, "CartPole-v1", trpo.Config(vanilla_lr=10.0),
                     knobs={"vanilla_lr": (0.1, 30.0, 0.1)},
                     run=Run(steps=30_000, seed=0, eval_every=2048), target=475.0,
                     title="vanilla gradient step, α = 10 (no early stop)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for h, name in [(hist_trpo, "TRPO (δ = 0.02)"), (hist_a2c, "A2C"), (hist_van, "vanilla step α = 10")]:
    axes[0].plot(h.eval_steps, h.eval_means, "o-", ms=3, label=name)
    if "kl" in h.logs:  # A2C does not measure it
        axes[1].semilogy(h.logs["env_steps"], h.logs["kl"], ".", label=name)
axes[0].axhline(475, color="k", ls="--", lw=1)
axes[0].set_xlabel("environment steps")
axes[0].set_ylabel("mean eval return")
axes[0].legend(fontsize=8)
axes[1].axhline(0.02, color="k", ls="--", lw=1)
axes[1].set_xlabel("environment steps")
axes[1].set_title("KL(π_k ‖ π_k+1) of each update")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()
van = hist_van.eval_means
drawdown = np.maximum.accumulate(van) - van  # how far each evaluation lies below the best one before it
print(f"TRPO solved at {hist_trpo.solved_at_steps} steps, A2C at {hist_a2c.solved_at_steps}; vanilla: best eval "
      f"{van.max():.0f}, final {van[-1]:.0f}, largest fall below an earlier best {drawdown.max():.0f}, median KL "
      f"per update {np.median(hist_van.logs['kl']):.2f}")
assert hist_a2c.solved
assert drawdown.max() > 150  # returns collapse after improving
assert np.median(hist_van.logs["kl"]) > 10 * 0.02  # because the policy jumps far further than δ each update

# %% [markdown]
# The too-large vanilla step moves the policy by a KL of order one per update, tens of times TRPO's radius: returns
# jump up and then collapse again and again, and the run never settles. TRPO pays for its stability with the
# second-order machinery (CG, Fisher-vector products, a line search), which is what PPO (next notebook) replaces
# with a first-order clipped objective.

# %% [markdown]
# ## 6. What TRPO's guarantee says, and what the practical algorithm gives up (erratum E1)
#
# The lecture says TRPO "guarantees monotonic improvement". The guarantee is a theorem about a *different*
# optimisation problem. Write $L_\pi(\pi') = J(\pi) + \sum_s d_\pi(s) \sum_a \pi'(a|s) A_\pi(s,a)$ for the
# surrogate (its expectation under the *old* policy's discounted visitation $d_\pi$). Schulman et al. (2015, Theorem 1)
# prove the lower bound
#
# $$J(\pi') \;\ge\; L_\pi(\pi') - C\, \max_s D_{\mathrm{KL}}\big(\pi(\cdot|s)\,\|\,\pi'(\cdot|s)\big),
# \qquad C = \frac{4\,\epsilon\,\gamma}{(1-\gamma)^2},\quad \epsilon = \max_{s,a} |A_\pi(s,a)|.$$
#
# Maximising the right-hand side at every iteration never lowers $J$ (at $\pi' = \pi$ it equals $J(\pi)$). The
# practical algorithm changes three things: the *maximum* KL becomes the *mean* KL under $d_\pi$; the penalty
# becomes a fixed radius $\delta$; and $L$ is estimated from samples. On the small MDP all of it is exact, so we
# can check the theorem and then each relaxation.

# %%
def trust_region_terms(theta, theta_new):
    """Exact J(new) - J(old), surrogate gain L(new) - J(old), max and mean KL over the live states (mean under the
    normalised visitation of the old policy), and the penalty C * max KL of the lower bound."""
    pi_old, pi_new = mdp.policy(theta).detach(), mdp.policy(theta_new).detach()
    d = mdp.discounted_state_visitation(theta).detach()
    adv_old = mdp.advantages(theta).detach()
    kl = (pi_old * (pi_old.log() - pi_new.log())).sum(-1)[live_states]
    weight = d[live_states] / d[live_states].sum()
    C = 4 * adv_old[live_states].abs().max().item() * mdp.gamma / (1 - mdp.gamma) ** 2
    return {"gain": (mdp.J(theta_new) - mdp.J(theta)).item(),
            "surrogate_gain": (d * (pi_new * adv_old).sum(1)).sum().item(),
            "max_kl": kl.max().item(), "mean_kl": (weight * kl).sum().item(), "penalty": C * kl.max().item()}


rng_tr = np.random.default_rng(0)
theta_a = torch.as_tensor(rng_tr.normal(size=(S, A)))
terms = [trust_region_terms(theta_a, theta_a + size * torch.as_tensor(rng_tr.normal(size=(S, A))))
         for size in rng_tr.uniform(0.01, 3.0, 100)]
slack = min(t["gain"] - (t["surrogate_gain"] - t["penalty"]) for t in terms)
print(f"100 random steps: the lower bound holds with smallest slack {slack:.3f}")
assert slack >= -1e-12  # the theorem: J(pi') - J(pi) >= (L - J) - C max KL, for every step

# %% [markdown]
# The theorem holds. Now a step of the size TRPO takes: the radius $\delta = 0.02$ in *mean* KL (the quadratic
# model, step 2 of section 5), along a direction in which the exact surrogate improves. Searching random policies
# and directions on this MDP finds cases (seed 1277 below) where such a step passes both of TRPO's checks and still
# lowers the true return:

# %%
def mean_kl_fisher(theta):
    """The Fisher matrix of the mean KL under the normalised visitation: the quadratic model of TRPO's constraint."""
    pi = mdp.policy(theta).detach()
    d = mdp.discounted_state_visitation(theta).detach()
    w = torch.where(live_states, d, torch.zeros_like(d))
    w = w / w.sum()
    return torch.block_diag(*[w[s] * (torch.diag(pi[s]) - torch.outer(pi[s], pi[s])) for s in range(S)])


rng_ex = np.random.default_rng(1277)
theta_b = torch.as_tensor(rng_ex.normal(size=(S, A)) * 1.5)
direction = torch.as_tensor(rng_ex.normal(size=(S, A)))
x_dir = direction.reshape(-1)
trpo_sized = (2 * 0.02 / (x_dir @ mean_kl_fisher(theta_b) @ x_dir)).sqrt() * direction
ex = trust_region_terms(theta_b, theta_b + trpo_sized)
print(f"mean KL {ex['mean_kl']:.4f} (radius 0.02), max KL {ex['max_kl']:.4f}; surrogate gain "
      f"{ex['surrogate_gain']:+.4f}; true change of J {ex['gain']:+.4f}; the bound's penalty {ex['penalty']:.1f}")
assert ex["mean_kl"] <= 0.02 and ex["surrogate_gain"] > 0  # TRPO's line search accepts this step ...
assert ex["gain"] < 0                                      # ... and the true return goes down
assert ex["surrogate_gain"] - ex["penalty"] < 0            # the theorem promised nothing for it

# %% [markdown]
# Three things broke the promise, and each is one of the practical changes:
# - **Mean instead of max KL.** The step's largest per-state KL is several times its mean: states the old policy
#   rarely visits can change a lot while barely moving the average, and the surrogate, which weights states by
#   the *old* visitation, does not see that the new policy visits them more.
# - **A fixed radius instead of the penalty.** At $\delta = 0.02$ the bound's penalty $C \max \mathrm{KL}$ is
#   thousands of times the surrogate gain: with $\gamma = 0.9$, $C = 4\epsilon\gamma/(1-\gamma)^2 = 360\,\epsilon$.
#   The step sizes that the theorem certifies are far too small to learn with, which is why TRPO uses a radius.
# - **A sampled surrogate.** On CartPole (section 5) $L$ and the KL are averages over a batch; a noisy estimate can
#   accept a step that the exact surrogate would reject.
#
# So TRPO is a careful *heuristic* inspired by a monotonic-improvement theorem, not an algorithm with that
# guarantee. In practice its steps rarely hurt (on CartPole its returns rise steadily, section 5); the line search
# makes bad steps unlikely, not impossible. See `docs/errata.md`, E1.
