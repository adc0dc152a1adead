"""lecturekit.optim against independent computations: brute-force sums, torch.distributions, full Hessians from
torch.autograd.functional, explicit Fisher matrices from per-sample scores, direct linear solves, hand-worked cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lecturekit.optim import (
    call_with_flat_params,
    conjugate_gradient,
    fisher_matrix_categorical,
    fisher_vector_product,
    flat_grad,
    get_flat_params,
    hessian_vector_product,
    kl_categorical,
    kl_gaussian,
    line_search,
    max_step_scale,
    set_flat_params,
    trpo_line_search,
)

torch.set_num_threads(1)


def small_policy(seed=0, obs_dim=3, n_actions=4, hidden=5):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions)).double()


# --- flat parameters ------------------------------------------------------------------------------------------------
def test_flat_params_round_trip():
    net = small_policy()
    theta = get_flat_params(net)
    assert theta.shape == (3 * 5 + 5 + 5 * 4 + 4,)
    set_flat_params(net, torch.arange(theta.numel(), dtype=torch.float64))
    # the first layer's weight is (5, 3), stored row by row
    assert net[0].weight[1, 0].item() == 3.0 and net[2].bias[-1].item() == theta.numel() - 1
    set_flat_params(net, theta)
    assert torch.equal(get_flat_params(net), theta)
    with pytest.raises(ValueError, match="parameter count"):
        set_flat_params(net, theta[:-1])


def test_flat_grad_matches_per_parameter_grads_and_fills_unused_with_zero():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([[3.0]], requires_grad=True)
    unused = torch.tensor([5.0, 6.0, 7.0], requires_grad=True)
    y = (a**2).sum() * b.sum()  # dy/da = 2 a b = [6, 12]; dy/db = |a|^2 = 5
    g = flat_grad(y, [a, b, unused])
    assert g.tolist() == [6.0, 12.0, 5.0, 0.0, 0.0, 0.0]


# --- KL -------------------------------------------------------------------------------------------------------------
def test_kl_categorical_matches_brute_force_sum():
    rng = np.random.default_rng(0)
    lp, lq = rng.normal(size=(2, 2, 3, 5)) * 2
    p = np.exp(lp) / np.exp(lp).sum(-1, keepdims=True)
    q = np.exp(lq) / np.exp(lq).sum(-1, keepdims=True)
    expected = (p * np.log(p / q)).sum(-1)
    got = kl_categorical(torch.tensor(lp), torch.tensor(lq))
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_kl_categorical_hand_worked_and_large_logits():
    # p = (1/2, 1/2), q = (1/4, 3/4) as logits log p, log q: KL = 1/2 log 2 + 1/2 log(2/3)
    lp = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    lq = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64))
    assert kl_categorical(lp, lq).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    # logits around 1000: same distributions as the shifted logits, so the same KL, and finite
    base_p, base_q = torch.tensor([0.0, -1.0, -3.0]), torch.tensor([-2.0, 0.0, -0.5])
    big = kl_categorical(base_p + 1000.0, base_q + 1000.0)
    assert torch.isfinite(big) and big.item() == pytest.approx(kl_categorical(base_p, base_q).item(), rel=1e-5)
    # a nearly deterministic p against a q that puts tiny mass on p's action: large but finite
    extreme = kl_categorical(torch.tensor([1000.0, 0.0]), torch.tensor([0.0, 1000.0]))
    assert extreme.item() == pytest.approx(1000.0)
    assert kl_categorical(base_p, base_p).item() == 0.0


def test_kl_gaussian_matches_torch_distributions():
    torch.manual_seed(0)
    mu_p, mu_q, ls_p, ls_q = torch.randn(4, 6, 2, dtype=torch.float64)
    d = torch.distributions
    expected = d.kl_divergence(d.Normal(mu_p, ls_p.exp()), d.Normal(mu_q, ls_q.exp())).sum(-1)
    torch.testing.assert_close(kl_gaussian(mu_p, ls_p, mu_q, ls_q), expected)


# --- Hessian- and Fisher-vector products ----------------------------------------------------------------------------
def test_hessian_vector_product_matches_full_hessian():
    torch.manual_seed(1)
    A = torch.randn(4, 4, dtype=torch.float64)

    def f(x):
        return torch.sin(x).sum() * (x @ A @ x) + x.pow(4).sum()

    x0 = torch.randn(4, dtype=torch.float64)
    H = torch.autograd.functional.hessian(f, x0)
    x = x0.clone().requires_grad_(True)
    hvp = hessian_vector_product(f(x), [x])
    for v in torch.eye(4, dtype=torch.float64):
        torch.testing.assert_close(hvp(v), H @ v)


def explicit_fisher(net, obs):
    """F = mean over states of sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T, from per-(s, a) autograd scores."""
    params = list(net.parameters())
    n = sum(p.numel() for p in params)
    F = torch.zeros(n, n, dtype=torch.float64)
    for s in obs:
        logp = torch.log_softmax(net(s), -1)
        for a in range(logp.shape[0]):
            score = flat_grad(logp[a], params, retain_graph=True)
            F += logp[a].exp().detach() * torch.outer(score, score)
    return F / len(obs)


def mean_kl_to_fixed(net, obs):
    old = net(obs).detach()
    return kl_categorical(old, net(obs)).mean()


def test_fisher_vector_product_equals_explicit_fisher_times_v():
    net = small_policy()
    obs = torch.randn(7, 3, dtype=torch.float64)
    F = explicit_fisher(net, obs)
    fvp = fisher_vector_product(mean_kl_to_fixed(net, obs), net.parameters(), damping=0.1)
    torch.manual_seed(2)
    for _ in range(3):
        v = torch.randn(F.shape[0], dtype=torch.float64)
        torch.testing.assert_close(fvp(v), F @ v + 0.1 * v)


def test_fisher_matrix_categorical_equals_the_per_sample_loop_and_flat_call_matches_the_module():
    net = small_policy(seed=5)
    obs = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(fisher_matrix_categorical(net, obs), explicit_fisher(net, obs))
    theta = get_flat_params(net)
    torch.testing.assert_close(call_with_flat_params(net, theta, obs), net(obs))
    shifted = call_with_flat_params(net, theta + 1.0, obs)  # the module itself is untouched
    assert not torch.allclose(shifted, net(obs)) and torch.equal(get_flat_params(net), theta)


def test_quadratic_kl_approximation_with_the_fisher_matrix():
    # KL(pi_theta || pi_theta+delta) / (1/2 delta^T F delta) -> 1 as delta -> 0
    net = small_policy()
    obs = torch.randn(7, 3, dtype=torch.float64)
    F = explicit_fisher(net, obs)
    theta = get_flat_params(net)
    old = net(obs).detach()
    torch.manual_seed(3)
    direction = torch.randn_like(theta)
    ratios = []
    for eps in [1e-1, 1e-2, 1e-3]:
        delta = eps * direction
        set_flat_params(net, theta + delta)
        with torch.no_grad():
            ratios.append(kl_categorical(old, net(obs)).mean().item() / (0.5 * delta @ F @ delta).item())
    set_flat_params(net, theta)
    errors = [abs(r - 1) for r in ratios]
    assert errors[2] < 1e-2 and errors[2] < errors[1] < errors[0]


# --- conjugate gradient ---------------------------------------------------------------------------------------------
def random_spd(n, cond=10.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eig = torch.logspace(0, math.log10(cond), n, dtype=torch.float64)
    return Q @ torch.diag(eig) @ Q.T


def test_conjugate_gradient_matches_direct_solve_and_keeps_b():
    A = random_spd(12, cond=50.0)
    b = torch.randn(12, dtype=torch.float64)
    b_copy = b.clone()
    x = conjugate_gradient(lambda v: A @ v, b, iters=40, tol=1e-20)
    torch.testing.assert_close(x, torch.linalg.solve(A, b))
    assert torch.equal(b, b_copy)


def test_conjugate_gradient_solves_n_by_n_in_n_iterations_and_counts_products():
    A = random_spd(6, cond=5.0, seed=1)
    b = torch.randn(6, dtype=torch.float64)
    calls = []

    def Avp(v):
        calls.append(1)
        return A @ v

    x = conjugate_gradient(Avp, b, iters=6, tol=0.0)
    torch.testing.assert_close(x, torch.linalg.solve(A, b))
    assert len(calls) == 6


def test_conjugate_gradient_first_iterate_is_the_exact_line_minimiser_along_b():
    # one CG step from 0: x1 = (b.b / b.A b) b
    A = random_spd(5, seed=2)
    b = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(conjugate_gradient(lambda v: A @ v, b, iters=1), (b @ b) / (b @ A @ b) * b)


def test_conjugate_gradient_stops_early_and_records_residuals():
    A = torch.diag(torch.tensor([2.0, 2.0, 2.0], dtype=torch.float64))  # one step solves a multiple of I
    b = torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    calls, res = [], []
    x = conjugate_gradient(lambda v: calls.append(1) or A @ v, b, iters=10, residuals=res)
    assert len(calls) == 1 and torch.allclose(x, b / 2)
    assert res[0] == 21.0 and res[1] < 1e-20
    zero = conjugate_gradient(lambda v: A @ v, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(zero, torch.zeros(3, dtype=torch.float64))


def test_conjugate_gradient_residuals_fall_on_an_ill_conditioned_system():
    A = random_spd(30, cond=1e3, seed=3)
    b = torch.randn(30, dtype=torch.float64)
    res = []
    # rounding destroys exact conjugacy, so n = 30 iterations are not quite enough; a few more are
    conjugate_gradient(lambda v: A @ v, b, iters=100, tol=1e-20 * float(b @ b), residuals=res)
    assert res[-1] < 1e-20 * res[0] and len(res) < 80


# --- the trust-region step ------------------------------------------------------------------------------------------
def test_max_step_scale_puts_the_quadratic_kl_on_the_boundary():
    A = random_spd(4, seed=4)
    x = torch.randn(4, dtype=torch.float64)
    beta = max_step_scale(x, A @ x, max_kl=0.01)
    assert 0.5 * (beta * x) @ A @ (beta * x) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="positive"):
        max_step_scale(x, -x, 0.01)


def test_line_search_hand_worked():
    # surrogate(t) = -(t - 1)^2, kl(t) = t^2 / 2, theta = 0, full step 4, max_kl 0.5:
    # j=0: t=4, kl 8 > 0.5;  j=1: t=2, kl 2;  j=2: t=1, kl 0.5 <= 0.5 and surrogate 0 > -1  -> accept j = 2
    theta, step = torch.tensor([0.0]), torch.tensor([4.0])
    res = line_search(theta, step, lambda t: -((t - 1) ** 2).item(), lambda t: 0.5 * t.pow(2).item(), 0.5)
    assert res.accepted_j == 2 and res.theta.tolist() == [1.0]
    assert res.improvement == 1.0 and res.kl == 0.5 and res.tried == 3
    assert trpo_line_search(theta, step, lambda t: -((t - 1) ** 2).item(), lambda t: 0.5 * t.pow(2).item(),
                            0.5).tolist() == [1.0]
    assert theta.tolist() == [0.0] and step.tolist() == [4.0]


def test_line_search_rejects_equal_surrogate_and_respects_max_steps():
    theta, step = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])
    flat = line_search(theta, step, lambda t: 3.0, lambda t: 0.0, 0.1)
    assert flat.accepted_j is None and flat.theta is theta and flat.tried == 10
    # only j = 3 (step 1/8) fits the KL bound, but max_steps = 3 tries j = 0, 1, 2: rejected
    kl = lambda t: float(t.abs().max() > 0.125)  # noqa: E731
    assert line_search(theta, step, lambda t: float(t.sum()), kl, 0.5, max_steps=3).accepted_j is None
    assert line_search(theta, step, lambda t: float(t.sum()), kl, 0.5, max_steps=4).accepted_j == 3
    # a NaN KL (a blown-up candidate) is never accepted
    nan = line_search(theta, step, lambda t: float(t.sum()), lambda t: float("nan"), 0.5)
    assert nan.accepted_j is None
