"""Second-order tools for trust-region policy optimisation.  Lecture: "Policy Optimization with Trust Region
Constraints" (KL and the Fisher matrix, natural gradient, TRPO: conjugate gradient and line search).

Everything here is a pure function of tensors (or of functions returning tensors or floats):

- flat parameter vectors: `get_flat_params`, `set_flat_params`, `flat_grad`
- KL divergences between policies: `kl_categorical`, `kl_gaussian`
- curvature without matrices: `hessian_vector_product`, `fisher_vector_product`, `conjugate_gradient`
- the trust-region step: `max_step_scale` (sqrt(2 delta / x^T H x)) and the backtracking `line_search`
  (`trpo_line_search` is the same search with the exercise's signature: it returns only the accepted parameters)
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

Params = Sequence[nn.Parameter] | Sequence[Tensor]


# --- flat parameter vectors -----------------------------------------------------------------------------------------
def _as_list(params: Iterable[Tensor] | nn.Module) -> list[Tensor]:
    return list(params.parameters()) if isinstance(params, nn.Module) else list(params)


def get_flat_params(params: Iterable[Tensor] | nn.Module) -> Tensor:
    """theta as one 1-D tensor (a detached copy): the parameters' entries concatenated in order."""
    return torch.cat([p.detach().reshape(-1) for p in _as_list(params)])


def set_flat_params(params: Iterable[Tensor] | nn.Module, flat: Tensor) -> None:
    """Write the 1-D tensor `flat` back into the parameters (in place, without recording autograd history)."""
    ps = _as_list(params)
    n = sum(p.numel() for p in ps)
    if flat.ndim != 1 or flat.numel() != n:
        raise ValueError(f"flat must be 1-D with {n} entries (the parameter count), got shape {tuple(flat.shape)}")
    i = 0
    with torch.no_grad():
        for p in ps:
            p.copy_(flat[i : i + p.numel()].view_as(p))
            i += p.numel()


def flat_grad(y: Tensor, params: Iterable[Tensor] | nn.Module, retain_graph: bool = False,
              create_graph: bool = False) -> Tensor:
    """d y / d theta as one 1-D tensor, for a scalar y.  Parameters y does not depend on get zero gradient.

    With create_graph=True the result is itself differentiable (needed for Hessian-vector products).
    """
    ps = _as_list(params)
    if y.numel() != 1:
        raise ValueError(f"flat_grad needs a scalar, got shape {tuple(y.shape)}")
    grads = torch.autograd.grad(y, ps, retain_graph=retain_graph or create_graph, create_graph=create_graph,
                                allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, ps)])


def call_with_flat_params(module: nn.Module, flat: Tensor, *args):
    """module(*args) computed with the parameters taken from the 1-D tensor `flat` (differentiable w.r.t. flat).

    The module's own parameters are not changed: this is what autograd needs to differentiate through theta.
    """
    names_params = list(module.named_parameters())
    n = sum(p.numel() for _, p in names_params)
    if flat.ndim != 1 or flat.numel() != n:
        raise ValueError(f"flat must be 1-D with {n} entries (the parameter count), got shape {tuple(flat.shape)}")
    values, i = {}, 0
    for name, p in names_params:
        values[name] = flat[i : i + p.numel()].view_as(p)
        i += p.numel()
    return torch.func.functional_call(module, values, args)


def fisher_matrix_categorical(logits_net: nn.Module, obs: Tensor) -> Tensor:
    """The explicit Fisher matrix F = mean_s sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T  (P x P).

    Lecture: "KL Divergence and the Fisher Matrix".  `logits_net` maps obs (B, obs_dim) to logits (B, A).
    Costs P^2 memory and one Jacobian of all B x A log-probabilities: for teaching and testing only; TRPO never
    forms F (see `fisher_vector_product`).
    """
    theta = get_flat_params(logits_net)
    scores = torch.func.jacrev(lambda th: torch.log_softmax(call_with_flat_params(logits_net, th, obs), -1))(theta)
    with torch.no_grad():
        pi = torch.softmax(logits_net(obs), -1)
    return torch.einsum("ba,bap,baq->pq", pi, scores, scores) / obs.shape[0]


# --- KL divergences between policies --------------------------------------------------------------------------------
def kl_categorical(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p || q) = sum_a p(a) (log p(a) - log q(a)),  p = softmax(logits_p), q = softmax(logits_q).

    Shapes: logits (..., A) -> (...).  Works in log space (log_softmax), so logits of size 1000 stay finite.
    """
    logp = torch.log_softmax(logits_p, dim=-1)
    logq = torch.log_softmax(logits_q, dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def kl_gaussian(mu_p: Tensor, log_std_p: Tensor, mu_q: Tensor, log_std_q: Tensor) -> Tensor:
    """KL(N(mu_p, s_p^2) || N(mu_q, s_q^2)) for diagonal Gaussians, summed over the last dimension:

    sum_d [log s_q - log s_p + (s_p^2 + (mu_p - mu_q)^2) / (2 s_q^2) - 1/2].   Shapes: (..., D) -> (...).
    """
    var_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    mean_term = ((mu_p - mu_q) * torch.exp(-log_std_q)).pow(2)
    return (log_std_q - log_std_p + 0.5 * (var_ratio + mean_term) - 0.5).sum(-1)


# --- curvature-vector products and conjugate gradient ---------------------------------------------------------------
def hessian_vector_product(f: Tensor, params: Iterable[Tensor] | nn.Module) -> Callable[[Tensor], Tensor]:
    """Return v -> H v with H = d^2 f / d theta^2 at the current parameters, never forming H.

    Differentiates once with create_graph=True, then each product is one more backward pass:
    H v = d/d theta (grad f . v).   `f` is a scalar built from `params`; v is 1-D with one entry per parameter.
    """
    ps = _as_list(params)
    g = flat_grad(f, ps, create_graph=True)

    def hvp(v: Tensor) -> Tensor:
        return flat_grad(g @ v.detach(), ps, retain_graph=True)

    return hvp


def fisher_vector_product(kl: Tensor, params: Iterable[Tensor] | nn.Module,
                          damping: float = 0.0) -> Callable[[Tensor], Tensor]:
    """Return v -> (F + damping I) v, where F is the Fisher matrix of the policy.

    F equals the Hessian of the mean KL(pi_old || pi_theta) at theta = theta_old (the KL's gradient there is zero,
    and its curvature is E[score score^T]).  `kl` must be that mean KL, computed with the old distribution detached
    at the current parameters.  A small damping keeps conjugate gradient stable when F is nearly singular.
    """
    hvp = hessian_vector_product(kl, params)
    return (lambda v: hvp(v) + damping * v) if damping else hvp


def conjugate_gradient(Avp: Callable[[Tensor], Tensor], b: Tensor, iters: int = 10, tol: float = 1e-10, *,
                       residuals: list[float] | None = None) -> Tensor:
    """Approximately solve A x = b for symmetric positive definite A, given only v -> A v.

    Starts from x = 0 and stops after `iters` products or once the squared residual ||b - A x||^2 is below `tol`.
    One product A p per iteration; in exact arithmetic an n x n system is solved in n iterations.
    If a list is passed as `residuals`, the squared residual before the first and after every iteration is
    appended to it.  `b` (1-D) is not modified.
    """
    x = torch.zeros_like(b)
    r = b.clone()  # residual b - A x at x = 0
    p = b.clone()  # search direction, A-conjugate to the previous ones
    rr = torch.dot(r, r)
    if residuals is not None:
        residuals.append(float(rr))
    for _ in range(iters):
        if rr < tol:
            break
        Ap = Avp(p)
        alpha = rr / torch.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.dot(r, r)
        if residuals is not None:
            residuals.append(float(rr_new))
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


# --- the trust-region step ------------------------------------------------------------------------------------------
def max_step_scale(x: Tensor, Hx: Tensor, max_kl: float) -> float:
    """beta = sqrt(2 delta / (x^T H x)): the step beta x has quadratic KL 1/2 beta^2 x^T H x = delta exactly.

    Lecture: TRPO line search update rule, theta_{k+1} = theta_k + alpha^j sqrt(2 delta / (x^T H x)) x.
    """
    xHx = float(torch.dot(x, Hx))
    if not xHx > 0.0:
        raise ValueError(f"x^T H x must be positive (H positive definite), got {xHx}")
    return (2.0 * max_kl / xHx) ** 0.5


@dataclass
class LineSearchResult:
    """Outcome of a backtracking line search."""

    theta: Tensor           # accepted parameters (theta itself if nothing qualified)
    accepted_j: int | None  # the accepted backtracking exponent j, None if every candidate was rejected
    improvement: float      # surrogate(accepted) - surrogate(theta); 0.0 if rejected
    kl: float               # kl(accepted); 0.0 if rejected
    tried: int              # number of candidates evaluated


def line_search(theta: Tensor, full_step: Tensor, surrogate: Callable[[Tensor], float],
                kl: Callable[[Tensor], float], max_kl: float, backtrack: float = 0.5,
                max_steps: int = 10) -> LineSearchResult:
    """Backtracking line search of TRPO.  Lecture: "TRPO Line Search: Procedure".

    Tries theta + backtrack^j * full_step for j = 0, 1, ..., max_steps - 1 and accepts the first candidate that
    improves the surrogate strictly (surrogate(candidate) > surrogate(theta)) and keeps kl(candidate) <= max_kl.
    Shapes: theta, full_step (P,).  Neither input is modified.
    """
    base = float(surrogate(theta))
    for j in range(max_steps):
        cand = theta + backtrack**j * full_step
        # kl first: an overshooting candidate can make the surrogate meaningless
        d_kl = float(kl(cand))
        if d_kl <= max_kl:
            gain = float(surrogate(cand)) - base
            if gain > 0.0:
                return LineSearchResult(cand, j, gain, d_kl, j + 1)
    return LineSearchResult(theta, None, 0.0, 0.0, max_steps)


def trpo_line_search(theta: Tensor, full_step: Tensor, surrogate: Callable[[Tensor], float],
                     kl: Callable[[Tensor], float], max_kl: float, backtrack: float = 0.5,
                     max_steps: int = 10) -> Tensor:
    """`line_search` returning only the accepted parameters (theta unchanged if no candidate qualifies)."""
    return line_search(theta, full_step, surrogate, kl, max_kl, backtrack, max_steps).theta
