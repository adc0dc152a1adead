# %% [markdown]
# # Exercise 04 · TRPO: the KL between softmax policies, conjugate gradient, the line search
#
# *Time: about 115 minutes for a student who followed the lecture, best in two sittings: sections 1-5 (five
# functions, about 27 lines: about 65 minutes) and the build-it sections 6-7 (two functions, about 38 lines: about
# 50 minutes); an estimate from working it from the stub, see the course map. The checks and the CartPole run take
# about 6 s of machine time in all. Difficulty 3 of 5.*
#
# Lecture part 4, "Policy Optimization with Trust Region Constraints" and "Natural Policy Gradient". Each function
# is followed by a check cell. A check either prints what passed or names the smallest input on which your answer
# is wrong, with the expected value, what came back, and a hint. Sections 1-3: the KL, conjugate gradient and the
# line search, which section 4 puts together into one TRPO update of a policy network; section 5: the exact natural
# gradient on the small MDP; sections 6-7 (build it): the Fisher-vector product and the whole TRPO update, trained
# on CartPole.
#
# All inputs are torch tensors. None of your functions may modify its inputs.

# %%
import torch

from lecturekit import optim
from lecturekit.checks import (check_conjugate_gradient, check_fisher_vector_product, check_kl_categorical,
                               check_trpo_line_search, check_trpo_update)

torch.set_num_threads(1)


# %% [markdown]
# ## 1. The KL divergence between two softmax policies
#
# TRPO's constraint is the mean over states of $D_{\mathrm{KL}}(\pi_{\theta_k}(\cdot|s) \,\|\, \pi_\theta(\cdot|s))$.
# For policies given by logits $h^p$ and $h^q$ (one row per state, one column per action), with
# $p = \mathrm{softmax}(h^p)$ and $q = \mathrm{softmax}(h^q)$:
#
# $$D_{\mathrm{KL}}(p \,\|\, q) = \sum_a p(a)\,\big(\log p(a) - \log q(a)\big).$$
#
# Logits can be large (a confident policy has logits in the hundreds): your answer must stay finite and correct for
# logits as large as 1000. `torch.log_softmax` computes $\log p$ without ever forming $e^{1000}$.

# %%
def kl_categorical(logits_p, logits_q):
    """KL(p || q) between p = softmax(logits_p) and q = softmax(logits_q), over the last dimension.

    logits_p, logits_q: torch tensors of the same shape (..., A), unnormalized logits.
    Returns a tensor of shape (...): one KL per row. Finite and correct for logits as large as 1000.
    """
    ### BEGIN SOLUTION
    logp = torch.log_softmax(logits_p, dim=-1)
    logq = torch.log_softmax(logits_q, dim=-1)
    return (logp.exp() * (logp - logq)).sum(dim=-1)
    ### END SOLUTION


# %%
check_kl_categorical(kl_categorical)

# %% [markdown]
# **Think about it.** The next cell compares $D_{\mathrm{KL}}(p\|q)$ and $D_{\mathrm{KL}}(q\|p)$ for a confident
# $p$ and a uniform $q$. Why are they so different, and which one does TRPO bound?

# %% tags=["uses-answer"]
confident, uniform = torch.tensor([5.0, 0.0, 0.0]), torch.zeros(3)
print(f"KL(confident || uniform) = {kl_categorical(confident, uniform).item():.3f}")
print(f"KL(uniform || confident) = {kl_categorical(uniform, confident).item():.3f}")

# %% [markdown] tags=["answer"]
# **Answer.** About 1.02 and 2.25. $D_{\mathrm{KL}}(p\|q)$ averages $\log(p/q)$ under $p$, which sits almost entirely on
# the first action, where $p/q \approx 3$: about $\log 3$. $D_{\mathrm{KL}}(q\|p)$ averages under the uniform $q$,
# which puts a third of its mass on actions that $p$ gives probability 0.0067: each contributes
# $\tfrac13 \log(\tfrac13 / 0.0067) \approx 1.3$. The KL is large when the second distribution misses mass where the
# first one has it. TRPO bounds the mean over visited states of $D_{\mathrm{KL}}(\pi_{\theta_k} \| \pi_\theta)$, the
# old policy first: the expectation is over actions the old policy takes, which is what the collected data can
# estimate, and the new policy is kept from dropping the probability of any action the old one still uses.


# %% [markdown]
# ## 2. Conjugate gradient
#
# TRPO needs $x \approx F^{-1} g$ where $F$ (the Fisher matrix) is far too large to form. Conjugate gradient solves
# $A x = b$ for a symmetric positive definite $A$ using only a function `Avp(v)` that returns $A v$. Start from
# $x_0 = 0$, so the residual is $r_0 = b$, and take $p_0 = r_0$ as the first search direction. Each iteration:
#
# $$\alpha = \frac{r^\top r}{p^\top A p}, \quad x \leftarrow x + \alpha p, \quad r_{\text{new}} = r - \alpha A p, \quad
# p \leftarrow r_{\text{new}} + \frac{r_{\text{new}}^\top r_{\text{new}}}{r^\top r}\, p.$$
#
# Use one call of `Avp` per iteration, run at most `iters` iterations, and stop as soon as the squared residual
# $r^\top r$ is below `tol` (also before the first iteration: if $b = 0$, then $x = 0$ is exact). Without that check
# the next $\alpha$ is $0/0$.

# %%
def conjugate_gradient(Avp, b, iters=10, tol=1e-10):
    """Approximately solve A x = b, where A is symmetric positive definite and only available as Avp(v) = A v.

    Avp:   a function mapping a 1-D tensor v to the 1-D tensor A v (A is never given as a matrix).
    b:     a 1-D torch tensor.
    iters: the maximum number of iterations (one call of Avp each).
    tol:   stop early once the squared residual r.r = ||b - A x||^2 is below tol.
    Returns x (a new 1-D tensor, same shape and dtype as b). Must not modify b.
    """
    ### BEGIN SOLUTION
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr < tol:
            break
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x
    ### END SOLUTION


# %%
check_conjugate_gradient(conjugate_gradient)

# %% [markdown]
# **Think about it.** The next cell solves a $200 \times 200$ system whose matrix has only 5 distinct eigenvalues.
# How many iterations does your conjugate gradient need, and why?

# %% tags=["uses-answer"]
torch.manual_seed(0)
Q, _ = torch.linalg.qr(torch.randn(200, 200, dtype=torch.float64))
A5 = Q @ torch.diag(torch.tensor([1.0, 2.0, 5.0, 10.0, 50.0], dtype=torch.float64).repeat(40)) @ Q.T
b5 = torch.randn(200, dtype=torch.float64)
for k in [3, 4, 5, 6]:
    x5 = conjugate_gradient(lambda v: A5 @ v, b5, iters=k, tol=0.0)
    print(f"{k} iterations: residual norm {(b5 - A5 @ x5).norm().item():.2e}")

# %% [markdown] tags=["answer"]
# **Answer.** Five. After $k$ iterations conjugate gradient has the best solution in the Krylov space spanned by
# $b, Ab, \dots, A^{k-1}b$, which means it picks the best polynomial of degree $k$ to cancel the residual on
# every eigenvalue of $A$. With 5 distinct eigenvalues, a degree-5 polynomial with those 5 roots cancels it exactly,
# whatever the size of the matrix: the residual drops to rounding error at iteration 5. This is why TRPO gets away
# with about 10 iterations on a Fisher matrix with thousands of rows: its spectrum is dominated by a few large
# eigenvalues, and damping lifts the rest.


# %% [markdown]
# ## 3. The TRPO line search
#
# TRPO scales the conjugate-gradient direction $\hat x$ so that its quadratic KL model equals $\delta$, giving the
# full step $\beta \hat x$ with $\beta = \sqrt{2\delta / \hat x^\top F \hat x}$. Because the model is only
# approximate, the step is checked: try
#
# $$\theta_{k+1} = \theta_k + \alpha^j \beta\, \hat x, \qquad j = 0, 1, \dots, \text{max\_steps} - 1,$$
#
# and return the first candidate whose surrogate is **strictly** larger than at $\theta_k$ and whose KL is **at
# most** `max_kl`. If none qualifies, return $\theta_k$ unchanged (no update is better than a bad one).

# %%
def trpo_line_search(theta, full_step, surrogate, kl, max_kl, backtrack=0.5, max_steps=10):
    """Backtracking line search of TRPO.

    theta:     1-D torch tensor, the current parameters theta_k.
    full_step: 1-D torch tensor, the full step beta * x_hat.
    surrogate: function theta -> float, the surrogate objective L(theta).
    kl:        function theta -> float, the mean KL between pi_theta_k and pi_theta.
    Tries theta + backtrack**j * full_step for j = 0, 1, ..., max_steps - 1 and returns the first candidate with
    surrogate(candidate) > surrogate(theta) and kl(candidate) <= max_kl; if none qualifies, returns theta unchanged.
    Must not modify its inputs.
    """
    ### BEGIN SOLUTION
    base = surrogate(theta)
    for j in range(max_steps):
        candidate = theta + backtrack**j * full_step
        if surrogate(candidate) > base and kl(candidate) <= max_kl:
            return candidate
    return theta
    ### END SOLUTION


# %%
check_trpo_line_search(trpo_line_search)

# %% [markdown]
# ## 4. One TRPO update from your three functions
#
# A small softmax policy (4 inputs, 32 hidden units, 2 actions), a batch of 256 states with sampled actions and
# made-up advantages. `lecturekit.optim` provides the plumbing (flat parameter vectors, the gradient, the
# Fisher-vector product); the KL, the solve and the line search are yours. The step must improve the surrogate
# and keep the exact mean KL within $\delta = 0.01$.

# %% tags=["uses-answer"]
torch.manual_seed(1)
policy = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
states = torch.randn(256, 4)
with torch.no_grad():
    old_logits = policy(states)
    actions = torch.distributions.Categorical(logits=old_logits).sample()
advantages = torch.randn(256)
logp_old = torch.log_softmax(old_logits, -1).gather(1, actions[:, None]).squeeze(1)
theta_k = optim.get_flat_params(policy)


def surrogate(theta):
    logits = optim.call_with_flat_params(policy, theta, states)
    logp = torch.log_softmax(logits, -1).gather(1, actions[:, None]).squeeze(1)
    return (torch.exp(logp - logp_old) * advantages).mean()


def mean_kl(theta):
    return kl_categorical(old_logits, optim.call_with_flat_params(policy, theta, states)).mean()


g = optim.flat_grad(surrogate(theta_k.requires_grad_(True)), [theta_k])
kl_at_theta = mean_kl(theta_k)  # a function of theta_k with a graph: its Hessian at theta_k is the Fisher matrix
Fvp = optim.fisher_vector_product(kl_at_theta, [theta_k], damping=0.1)
theta_k = theta_k.detach()
x_hat = conjugate_gradient(Fvp, g, iters=10)
delta = 0.01
full_step = torch.sqrt(2 * delta / (x_hat @ Fvp(x_hat))) * x_hat
theta_new = trpo_line_search(theta_k, full_step, lambda t: surrogate(t).item(), lambda t: mean_kl(t).item(), delta)
gain, kl_new = (surrogate(theta_new) - surrogate(theta_k)).item(), mean_kl(theta_new).item()
print(f"surrogate gain {gain:+.4f}, mean KL of the step {kl_new:.4f} (delta = {delta})")
assert gain > 0 and kl_new <= delta

# %% [markdown]
# ## 5. The natural gradient on the small MDP, exactly
#
# Lecture: "Natural Policy Gradient". On the course's tabular MDP (notebook 03) everything is exact: $J(\theta)$, its
# gradient, and the discounted state visitation $d(s)$. For the tabular softmax policy $\pi(\cdot|s) =
# \mathrm{softmax}(\theta[s])$ the score of $(s, a)$ is $e_a - \pi_s$ in row $s$ and zero elsewhere, so the Fisher
# matrix $F = \sum_s d(s)\, \mathbb E_{a\sim\pi_s}[\nabla\log\pi\,\nabla\log\pi^\top]$ over the flattened
# $(S \cdot A)$ logits (index $s \cdot A + a$) is block-diagonal:
#
# $$F = \operatorname{blockdiag}_s\; d(s)\,\big(\operatorname{diag}(\pi_s) - \pi_s \pi_s^\top\big).$$
#
# Write it, then the natural step: the direction $x = F^{+} g$ that solves $F x = g$ (use the pseudo-inverse
# `torch.linalg.pinv` or `torch.linalg.lstsq`: $F$ is singular, since adding a constant to one state's logits does
# not change the policy), scaled so that the quadratic model of the KL, $\tfrac12 \delta^\top F \delta$, equals
# `max_kl`:
#
# $$\delta = \sqrt{\frac{2\,\text{max\_kl}}{x^\top F x}}\; x .$$

# %%
from lecturekit.checks import check_natural_gradient_step, check_tabular_fisher


def tabular_fisher(pi, d):
    """Fisher matrix of a tabular softmax policy over the flattened (S * A) logits.

    pi: torch tensor (S, A), pi[s] = softmax(theta[s]); d: torch tensor (S,), the discounted state visitation.
    Returns a tensor (S * A, S * A): block s is d[s] * (diag(pi[s]) - outer(pi[s], pi[s])), zero between states.
    """
    ### BEGIN SOLUTION
    return torch.block_diag(*[d[s] * (torch.diag(pi[s]) - torch.outer(pi[s], pi[s])) for s in range(len(d))])
    ### END SOLUTION


# %%
check_tabular_fisher(tabular_fisher)


# %%
def natural_gradient_step(grad, F, max_kl):
    """The natural-gradient step of quadratic KL max_kl.

    grad: 1-D tensor (n,), the gradient g of J; F: tensor (n, n), symmetric positive semi-definite (maybe singular).
    Returns step = sqrt(2 max_kl / (x^T F x)) x with x = F^+ g (pseudo-inverse or least squares). Must not modify
    its inputs.
    """
    ### BEGIN SOLUTION
    x = torch.linalg.pinv(F) @ grad
    return torch.sqrt(2 * max_kl / (x @ F @ x)) * x
    ### END SOLUTION


# %%
check_natural_gradient_step(natural_gradient_step)

# %% [markdown]
# ### Natural against vanilla, at the same KL
#
# From a bad start (a logit of 6 on the worst action of every state), compare the natural step with the vanilla
# step $\delta_v = \sqrt{2\,\text{max\_kl} / g^\top F g}\; g$, which has the same quadratic KL. The natural step
# maximises the first-order gain $g^\top \delta$ under that constraint, so it gains at least as much per step. Then
# both are iterated with steps of KL 0.05 until $J \ge 0.99\, J^*$.

# %% tags=["uses-answer"]
import matplotlib.pyplot as plt

from lecturekit.tabular.mdp import small_mdp

mdp = small_mdp()
S, A = mdp.n_states, mdp.n_actions
P_model, R_model, _ = mdp._model()
q_star = R_model + mdp.gamma * torch.einsum("sat,t->sa", P_model, torch.as_tensor(mdp.optimal_values()))
theta0 = torch.zeros(S, A, dtype=torch.float64)
theta0[torch.arange(S), q_star.argmin(1)] = 6.0


def step(theta, kind, max_kl):
    g = mdp.exact_gradient(theta).reshape(-1)
    F = tabular_fisher(mdp.policy(theta), mdp.discounted_state_visitation(theta))
    if kind == "natural":
        return natural_gradient_step(g, F, max_kl).reshape(S, A)
    return (torch.sqrt(2 * max_kl / (g @ F @ g)) * g).reshape(S, A)


gains = {k: (mdp.J(theta0 + step(theta0, k, 0.01)) - mdp.J(theta0)).item() for k in ("vanilla", "natural")}
print(f"one step of KL 0.01 from the bad start: J gains {gains['vanilla']:.4f} (vanilla), {gains['natural']:.4f} "
      "(natural)")
J_star, curves = mdp.optimal_J(), {}
for kind in ("vanilla", "natural"):
    theta, curves[kind] = theta0.clone(), []
    while mdp.J(theta) < 0.99 * J_star and len(curves[kind]) < 100:
        curves[kind].append(mdp.J(theta).item())
        theta = theta + step(theta, kind, 0.05)
    print(f"{kind}: {len(curves[kind])} steps of KL 0.05 to reach 0.99 J*")
plt.figure(figsize=(6, 3))
for kind, c in curves.items():
    plt.plot(c, label=kind)
plt.axhline(J_star, color="k", ls="--", lw=1, label="$J^*$")
plt.xlabel("step (each of quadratic KL 0.05)"), plt.ylabel("J"), plt.legend(), plt.show()
assert gains["natural"] > gains["vanilla"] > 0
assert len(curves["natural"]) < len(curves["vanilla"])

# %% [markdown]
# **Think about it.** The natural step wins, but only by about a third in steps. In notebook 10 the vanilla gradient
# with a *fixed step size* needed hundreds of times more iterations than the natural one from such starts. Where did
# most of that difference go?

# %% [markdown] tags=["answer"]
# **Answer.** Into the step length. Near a deterministic policy the vanilla gradient is tiny (each
# $\partial J / \partial\theta_{s,a}$ carries the factors $\pi(a|s)$ and $d(s)$), so a fixed step size crawls along the
# plateau. Scaling the vanilla step to a fixed KL, as here, makes the step long exactly when the gradient is small:
# most of the plateau problem is a problem of *how far* to step, and a KL budget solves it. What remains is the
# *direction*: the vanilla direction still spends part of its KL budget on logits that matter little, while the
# natural direction $F^{+} g$, which for a tabular softmax is the advantage $A(s,a)$ up to a constant per state,
# is the best direction per unit of KL. TRPO keeps both ideas: the natural direction and a step set by the KL radius.


# %% [markdown]
# ## 6. Build it: the Fisher-vector product
#
# Section 4 received the Fisher-vector product from `lecturekit.optim`. Write it yourself for the actor of a policy
# network. The Fisher matrix is the Hessian of the mean KL at $\theta = \theta_k$,
#
# $$F = \nabla^2_\theta\, \frac1B \sum_s D_{\mathrm{KL}}\big(\pi_{\theta_k}(\cdot|s)\,\|\,\pi_\theta(\cdot|s)\big)
# \Big|_{\theta = \theta_k},$$
#
# and $F v$ never needs $F$: with $\bar g(\theta) = \nabla_\theta \overline{\mathrm{KL}}$ (built with
# `create_graph=True`, so that it can be differentiated again), $F v = \nabla_\theta (\bar g^\top v)$, one more
# backward pass per product. $\pi_{\theta_k}$'s logits are constants (`.detach()`); otherwise the KL is
# $D(\pi_\theta \| \pi_\theta) = 0$ for every $\theta$. Conjugate gradient calls the product about ten times: keep
# the graph (`retain_graph=True`). Add the damping: the product is $(F + \text{damping}\, I)\, v$.

# %%
def fisher_vector_product(model, obs, damping):
    """Return fvp(v) = (F + damping I) v for the actor's parameters theta = list(model.pi.parameters()).

    model:   `lecturekit.nets.ActorCritic` with a softmax policy: model.pi(obs) are the logits (B, A).
    obs:     (B, obs_dim) tensor of states.  F = Hessian of mean_s KL(pi_k(.|s) || pi_theta(.|s)) at theta_k (the
             current parameters), pi_k's logits detached.
    damping: float.  fvp takes and returns 1-D tensors of P entries (P = number of actor parameters, flattened in
             the order of model.pi.parameters()) and can be called many times.
    """
    ### BEGIN SOLUTION
    params = list(model.pi.parameters())
    old_logits = model.pi(obs).detach()
    kl = kl_categorical(old_logits, model.pi(obs)).mean()
    grad_kl = torch.cat([g.reshape(-1) for g in torch.autograd.grad(kl, params, create_graph=True)])

    def fvp(v):
        hv = torch.autograd.grad(grad_kl @ v, params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]) + damping * v

    return fvp
    ### END SOLUTION


# %%
check_fisher_vector_product(fisher_vector_product)

# %% [markdown]
# ## 7. Build it: the whole TRPO update
#
# Now assemble the update that `lecturekit.algos.trpo` takes after each rollout, from your KL, conjugate gradient,
# line search and Fisher-vector product; the course's training loop then runs it:
# `trpo.train("CartPole-v1", update=trpo_update)`. The rollout `ro` (`lecturekit.rollout.Rollout`) holds $(T, N)$
# arrays; `ro.advantages(cfg.gamma, cfg.gae_lambda)` returns the GAE advantages and value targets (truncation and
# autoreset steps handled: exercise 05 has you write GAE). Keep the valid steps (`x[m]`,
# `m = torch.as_tensor(ro.valid)`). Then:
#
# 1. standardise the advantages if `cfg.normalize_adv` ($(A - \bar A) / (\operatorname{std}(A) + 10^{-8})$);
# 2. $g = \nabla_\theta L(\theta_k)$ of the surrogate $L(\theta) = \overline{\exp(\log\pi_\theta(a|s) -
#    \log\pi_k(a|s))\,A}$, with the log-probs stored in the rollout as $\log\pi_k$ (`optim.flat_grad` flattens it);
# 3. $x \approx (F + \text{damping}\,I)^{-1} g$ by `cfg.cg_iters` iterations of your conjugate gradient with your
#    Fisher-vector product;
# 4. the full step $\beta x$ with $\beta = \sqrt{2\delta / x^\top (F + \text{damping}\,I)\, x}$, $\delta$ =
#    `cfg.max_kl`;
# 5. your line search from $\theta_k$ (`cfg.backtrack`, `cfg.max_backtracks`): write the accepted parameters into
#    the actor (`optim.set_flat_params`; `optim.call_with_flat_params(model.pi, theta, obs)` evaluates the logits
#    at any $\theta$ without touching the network);
# 6. the critic: `cfg.vf_iters` Adam steps of `vf_opt` on $\overline{(V_w(s) - R)^2}$, step $i$ on the minibatch
#    `obs[i % k::k]` with `k = cfg.vf_minibatches` (each spans the whole rollout, no randomness needed).

# %%
def trpo_update(model, vf_opt, ro, cfg):
    """One TRPO update: the trust-region step on the actor (model.pi), then the critic (model.v).

    model:  `lecturekit.nets.ActorCritic` (softmax policy): model.log_prob(obs, act), model.value(obs), (B,).
    vf_opt: torch optimizer over model.v.parameters().
    ro:     `lecturekit.rollout.Rollout`: obs (T, N, obs_dim), actions (T, N), logp (T, N) = log pi_k(a|s), values
            (T, N) tensors; valid (T, N) bool NumPy array; ro.advantages(gamma, gae_lambda) -> (adv, ret), (T, N).
    cfg:    `trpo.Config`: gamma, gae_lambda, normalize_adv, cg_iters, damping, max_kl, backtrack, max_backtracks,
            vf_iters, vf_minibatches.
    Returns a dict of floats: kl (the exact mean KL(pi_k || pi_new) of the accepted step) and surrogate_gain
    (L(theta_new) - L(theta_k)), both 0.0 if the line search rejected every candidate; value_loss (the critic's
    loss on its last minibatch).  Must not modify `ro`.
    """
    ### BEGIN SOLUTION
    adv, ret = ro.advantages(cfg.gamma, cfg.gae_lambda)
    m = torch.as_tensor(ro.valid)
    obs, act, logp_old, adv, ret = ro.obs[m], ro.actions[m], ro.logp[m], adv[m], ret[m]
    if cfg.normalize_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    params = list(model.pi.parameters())
    old_logits = model.pi(obs).detach()

    def surrogate(theta):
        logits = optim.call_with_flat_params(model.pi, theta, obs)
        logp = torch.log_softmax(logits, -1).gather(1, act[:, None]).squeeze(1)
        return (torch.exp(logp - logp_old) * adv).mean()

    def mean_kl(theta):
        return kl_categorical(old_logits, optim.call_with_flat_params(model.pi, theta, obs)).mean()

    g = optim.flat_grad((torch.exp(model.log_prob(obs, act) - logp_old) * adv).mean(), params)
    fvp = fisher_vector_product(model, obs, cfg.damping)
    x = conjugate_gradient(fvp, g, iters=cfg.cg_iters)
    beta = torch.sqrt(2 * cfg.max_kl / (x @ fvp(x)))
    theta_k = optim.get_flat_params(params)
    with torch.no_grad():
        theta_new = trpo_line_search(theta_k, beta * x, lambda th: surrogate(th).item(),
                                     lambda th: mean_kl(th).item(), cfg.max_kl, cfg.backtrack, cfg.max_backtracks)
        kl, gain = mean_kl(theta_new).item(), (surrogate(theta_new) - surrogate(theta_k)).item()
    optim.set_flat_params(params, theta_new)
    k = max(1, min(cfg.vf_minibatches, len(obs)))
    for i in range(cfg.vf_iters):
        value_loss = ((model.value(obs[i % k::k]) - ret[i % k::k]) ** 2).mean()
        vf_opt.zero_grad()
        value_loss.backward()
        vf_opt.step()
    return {"kl": kl, "surrogate_gain": gain, "value_loss": value_loss.item()}
    ### END SOLUTION


# %%
check_trpo_update(trpo_update)

# %% [markdown]
# ### Your update trains CartPole, live
#
# The course's TRPO loop with your update: 8 environments, 128 steps per rollout, $\delta = 0.02$. The curve is the
# greedy policy's return every 4,096 steps; Stop ends the run after the current update.

# %% tags=["uses-answer"]
from lecturekit.algos import trpo
from lecturekit.course import live
from lecturekit.evaluation import Run

yours = live.watch(lambda cb: trpo.train("CartPole-v1", trpo.Config(),
                                         Run(steps=80_000, seed=0, target=475, eval_every=4096, callback=cb),
                                         update=trpo_update),
                   total_steps=80_000, target=475, title="TRPO with your update")
print(f"solved in {yours.solved_at_steps} environment steps ({yours.solved_at_s:.1f} s)")
assert yours.solved
