"""Tests of lecturekit.policies against autograd and hand-worked numbers."""
import numpy as np
import torch

from lecturekit.policies import (GaussianPolicy, LinearAgent, LinearPolicy, SoftmaxPolicy, gaussian_score, softmax,
                                 softmax_score)


def test_softmax_hand_worked_and_stable():
    # softmax([0, ln 3]) = [1/4, 3/4]; shifting all logits by 1000 changes nothing
    np.testing.assert_allclose(softmax([0.0, np.log(3.0)]), [0.25, 0.75])
    np.testing.assert_allclose(softmax([1000.0, 1000.0 + np.log(3.0)]), [0.25, 0.75])


def test_softmax_score_matches_autograd_and_survives_large_logits():
    logits = np.array([0.5, -1.0, 2.0, 0.0])
    for a in range(4):
        h = torch.tensor(logits, requires_grad=True)
        torch.log_softmax(h, -1)[a].backward()
        np.testing.assert_allclose(softmax_score(logits, a), h.grad.numpy(), atol=1e-12)
    g = softmax_score(np.array([1000.0, 0.0, -1000.0]), 1)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [-1.0, 1.0, 0.0], atol=1e-12)
    assert abs(softmax_score(logits, 2).sum()) < 1e-12  # E_a[score] = 0 componentwise sums to zero


def test_gaussian_score_matches_autograd():
    x, mu, log_std = 1.3, 0.2, -0.4
    m = torch.tensor(mu, requires_grad=True)
    ls = torch.tensor(log_std, requires_grad=True)
    logp = -0.5 * ((x - m) / ls.exp()) ** 2 - ls - 0.5 * np.log(2 * np.pi)
    logp.backward()
    d_mu, d_ls = gaussian_score(x, mu, log_std)
    assert np.isclose(d_mu, m.grad.item()) and np.isclose(d_ls, ls.grad.item())


def test_linear_policy_acts_per_member():
    pol = LinearPolicy(obs_dim=2, n_out=2)
    assert pol.n_params == 6
    # member 0: W = [[1, 0], [0, 1]], b = 0 -> argmax(s); member 1: W = -I -> argmax(-s)
    params = np.array([[1, 0, 0, 1, 0, 0], [-1, 0, 0, -1, 0, 0]], dtype=float)
    obs = np.array([[0.3, 0.1], [0.3, 0.1]])
    assert pol.act(params, obs).tolist() == [0, 1]
    assert LinearAgent(pol, params[1])(obs).tolist() == [1, 1]
    box = LinearPolicy(obs_dim=1, n_out=1, discrete=False, low=-2.0, high=2.0)
    assert box.act(np.array([[3.0, 0.5]]), np.array([[1.0]])).tolist() == [[2.0]]


def test_torch_policies_log_probs_and_shapes():
    torch.manual_seed(0)
    obs = torch.randn(5, 3)
    sp = SoftmaxPolicy(3, 4, hidden=(8,))
    a = sp.sample(obs)
    assert a.shape == (5,) and sp.log_prob(obs, a).shape == (5,)
    probs = torch.softmax(sp.logits(obs), -1)
    torch.testing.assert_close(sp.log_prob(obs, a), probs[range(5), a].log())
    assert sp.entropy(obs).shape == (5,)
    gp = GaussianPolicy(3, 2, log_std_init=-0.5)
    act = gp.sample(obs)
    ref = torch.distributions.Normal(gp.mean(obs), gp.log_std.exp()).log_prob(act).sum(-1)
    torch.testing.assert_close(gp.log_prob(obs, act), ref)
    torch.testing.assert_close(gp.entropy(obs), torch.distributions.Normal(gp.mean(obs), gp.log_std.exp()).entropy().sum(-1))
    lin = SoftmaxPolicy(3, 2)  # hidden=() is a linear policy
    assert sum(p.numel() for p in lin.parameters()) == 3 * 2 + 2
