# %% [markdown]
# # Exercise 04 · TRPO: the KL between softmax policies, conjugate gradient, the line search
#
# Lecture part 4, "Policy Optimization with Trust Region Constraints". Three functions, each followed by a check
# cell. A check either prints what passed or names the smallest input on which your answer is wrong, with the
# expected value, what came back, and a hint. At the end, your three functions make one TRPO update of a policy
# network together.
#
# All inputs are torch tensors. None of your functions may modify its inputs.

# %%
import torch

from lecturekit import optim
from lecturekit.checks import check_conjugate_gradient, check_kl_categorical, check_trpo_line_search

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
