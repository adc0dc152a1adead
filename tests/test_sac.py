"""SAC and the tanh-squashed Gaussian: against torch.distributions, hand-worked numbers, autograd and integration."""
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from lecturekit.algos import registry
from lecturekit.algos.sac import (Agent, Config, draw_noise, sac_actor_loss, sac_critic_target, temperature_loss, train,
                                  update)
from lecturekit.buffers import Batch
from lecturekit.evaluation import Run
from lecturekit.nets import SquashedGaussianActor
from lecturekit.distributions import (
    squashed_gaussian_log_prob,
    squashed_gaussian_sample,
    tanh_log_abs_det_jacobian,
)

D = torch.distributions


# ------------------------------------------------------------------------------------------ squashed Gaussian
def test_squashed_log_prob_matches_torch_transformed_distribution():
    g = torch.Generator().manual_seed(0)
    mu, log_std = torch.randn(5, 3, generator=g, dtype=torch.float64), 0.5 * torch.randn(5, 3, generator=g,
                                                                                        dtype=torch.float64)
    u = mu + log_std.exp() * torch.randn(5, 3, generator=g, dtype=torch.float64)
    ref = D.TransformedDistribution(D.Normal(mu, log_std.exp()), [D.TanhTransform()])
    expected = ref.log_prob(torch.tanh(u)).sum(-1)
    assert torch.allclose(squashed_gaussian_log_prob(u, mu, log_std), expected, atol=1e-9)


def test_tanh_jacobian_hand_worked():
    # u = 0: tanh'(0) = 1, log 1 = 0.  u = atanh(0.6): 1 - 0.36 = 0.64 -> log 0.64 per dimension.
    assert tanh_log_abs_det_jacobian(torch.zeros(1, 4)).item() == 0.0
    u = torch.full((2,), math.atanh(0.6), dtype=torch.float64)
    assert math.isclose(tanh_log_abs_det_jacobian(u).item(), 2 * math.log(0.64), rel_tol=1e-12)


@pytest.mark.parametrize("u", [9.0, 20.0, -20.0, 40.0])
def test_squashed_log_prob_is_finite_and_exact_near_the_bounds(u):
    # log(1 - tanh(u)^2) = -2 log cosh(u) = -2 (|u| + log(1 + exp(-2|u|)) - log 2): exact where tanh(u) rounds to 1
    x = torch.tensor([u], dtype=torch.float32)
    got = tanh_log_abs_det_jacobian(x).item()
    exact = -2.0 * (abs(u) + math.log1p(math.exp(-2 * abs(u))) - math.log(2.0))
    assert math.isfinite(got) and math.isclose(got, exact, rel_tol=1e-6)
    naive = torch.log(1 - torch.tanh(x) ** 2).item()  # what the stable form avoids
    assert naive == -math.inf or abs(u) < 10
    lp = squashed_gaussian_log_prob(x, torch.zeros(1), torch.zeros(1))
    assert torch.isfinite(lp).all()


def test_squashed_density_integrates_to_one():
    # p(a) = exp(log pi(tanh(u))) with u = atanh(a); integrate over a in (-1, 1) by the trapezoid rule
    mu, log_std = torch.tensor([0.7], dtype=torch.float64), torch.tensor([math.log(0.8)], dtype=torch.float64)
    a = torch.linspace(-1 + 1e-9, 1 - 1e-9, 400_001, dtype=torch.float64)
    dens = squashed_gaussian_log_prob(torch.atanh(a)[:, None], mu, log_std).exp()
    assert abs(torch.trapezoid(dens, a).item() - 1.0) < 1e-4


def test_squashed_sample_is_reparameterized():
    mu = torch.zeros(1000, 2, requires_grad=True)
    log_std = torch.zeros(1000, 2, requires_grad=True)
    a, u = squashed_gaussian_sample(mu, log_std, generator=torch.Generator().manual_seed(0))
    assert a.shape == u.shape == (1000, 2) and (a.abs() < 1).all()
    assert torch.allclose(a, torch.tanh(u))
    a.sum().backward()
    # d tanh(mu + sigma eps) / d mu = 1 - tanh(u)^2
    assert torch.allclose(mu.grad, 1 - torch.tanh(u.detach()) ** 2)


# ------------------------------------------------------------------------------------------------- losses
def test_sac_critic_target_hand_worked():
    # y0 = 1 + 0.5 * (min(3, 2) - 0.1 * (-1)) = 1 + 0.5 * 2.1 = 2.05;  y1 terminal: y1 = r = -1
    r, term = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])
    q1 = torch.tensor([3.0, 5.0], requires_grad=True)
    q2 = torch.tensor([2.0, 7.0], requires_grad=True)
    logp = torch.tensor([-1.0, 0.0], requires_grad=True)
    y = sac_critic_target(r, term, q1, q2, logp, alpha=0.1, gamma=0.5)
    assert torch.allclose(y, torch.tensor([2.05, -1.0]))
    assert not y.requires_grad


def test_sac_actor_loss_hand_worked_and_gradients():
    # mean(0.5 * [-1, 2] - min([1, 4], [2, 3])) = mean([-0.5 - 1, 1 - 3]) = -1.75
    q1 = torch.tensor([1.0, 4.0], requires_grad=True)
    q2 = torch.tensor([2.0, 3.0], requires_grad=True)
    logp = torch.tensor([-1.0, 2.0], requires_grad=True)
    alpha = torch.tensor(0.5, requires_grad=True)
    loss = sac_actor_loss(q1, q2, logp, alpha)
    assert math.isclose(loss.item(), -1.75)
    loss.backward()
    assert alpha.grad is None  # the temperature has its own loss
    assert torch.allclose(logp.grad, torch.tensor([0.25, 0.25]))
    assert torch.allclose(q1.grad, torch.tensor([-0.5, 0.0])) and torch.allclose(q2.grad, torch.tensor([0.0, -0.5]))
    assert math.isclose(sac_actor_loss(q1, q2, logp, 0.5).item(), -1.75)  # a float alpha too


def test_temperature_loss_gradient_sign():
    # alpha = 2, H_estimate = -mean(logp) = 0.5, H_target = -1: L = 2 * (0.5 + 1) = 3; dL/dlog_alpha = 3
    log_alpha = torch.tensor(math.log(2.0), requires_grad=True)
    logp = torch.tensor([-1.0, 0.0], requires_grad=True)
    loss = temperature_loss(log_alpha, logp, target_entropy=-1.0)
    assert math.isclose(loss.item(), 3.0, rel_tol=1e-6)
    loss.backward()
    assert math.isclose(log_alpha.grad.item(), 3.0, rel_tol=1e-6)  # entropy above target: descent lowers alpha
    assert logp.grad is None
    log_alpha.grad = None
    temperature_loss(log_alpha, torch.tensor([3.0, 3.0]), -1.0).backward()  # entropy -3 < -1: alpha goes up
    assert log_alpha.grad.item() < 0


# ------------------------------------------------------------------------------------------- actor and agent
def test_actor_actions_in_box_and_log_prob_consistent():
    g = torch.Generator().manual_seed(0)
    actor = SquashedGaussianActor(3, 2, low=np.array([-2.0, 0.0]), high=np.array([2.0, 1.0]), generator=g)
    obs = torch.randn(500, 3, generator=g)
    eps = torch.randn(500, 2, generator=g)
    a, logp = actor(obs, eps)
    assert a.shape == (500, 2) and logp.shape == (500,)
    assert (a[:, 0].abs() < 2).all() and (a[:, 1] > 0).all() and (a[:, 1] < 1).all()
    mu, log_std = actor.dist_params(obs)
    sq = actor.squash
    assert torch.allclose(a, sq.center + sq.half_range * torch.tanh(mu + log_std.exp() * eps))  # the sample is eps's
    u = torch.atanh((a.detach() - sq.center) / sq.half_range).double()
    expected = squashed_gaussian_log_prob(u, mu.double(), log_std.double())
    assert torch.allclose(logp.double(), expected, atol=1e-3)
    a_det, _ = actor(obs)
    assert torch.allclose(a_det, sq.center + sq.half_range * torch.tanh(mu))
    # reparameterized: the action's gradient reaches the actor's weights
    a.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in actor.parameters())


PEND_BOX = (3, 1, torch.tensor([-2.0]), torch.tensor([2.0]))


def _agent(cfg=None, seed=0):
    return Agent(*PEND_BOX, cfg or Config(), torch.Generator().manual_seed(seed))


def _batch(b=32, obs_dim=3, act_dim=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(b, obs_dim, generator=g), 2 * torch.rand(b, act_dim, generator=g) - 1,
                 torch.randn(b, generator=g), torch.randn(b, obs_dim, generator=g), torch.zeros(b), torch.zeros(b))


def test_update_moves_everything_it_should():
    agent = _agent()
    targ_before = [p.clone() for p in agent.critic_targ.parameters()]
    crit_before = [p.clone() for p in agent.critic.parameters()]
    alpha_before = agent.log_alpha.item()
    logs = update(agent, _batch(), 0, draw_noise(32, 1, torch.Generator().manual_seed(1)))
    assert set(logs) >= {"critic_loss", "actor_loss", "alpha", "entropy", "q1"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in logs.values())
    assert agent.log_alpha.item() != alpha_before
    for pt, pb, pc, pcb in zip(agent.critic_targ.parameters(), targ_before, agent.critic.parameters(), crit_before):
        # Polyak: target = pb + tau (critic_new - pb)
        assert torch.allclose(pt, pb + agent.cfg.tau * (pc - pb), atol=1e-7)
    assert any(not torch.equal(p, q) for p, q in zip(agent.critic.parameters(), crit_before))


def test_update_uses_the_noise_it_is_given():
    # same agent, batch and noise: the same result; other noise: another actor step
    noise = draw_noise(32, 1, torch.Generator().manual_seed(1))
    assert len(noise) == 2 and noise[0].shape == noise[1].shape == (32, 1)
    a, b, c = _agent(), _agent(), _agent()
    la, lb = update(a, _batch(), 0, noise), update(b, _batch(), 0, noise)
    lc = update(c, _batch(), 0, draw_noise(32, 1, torch.Generator().manual_seed(2)))
    assert la == lb and la["actor_loss"] != lc["actor_loss"]


def test_actor_step_leaves_critic_gradients_alone():
    agent = _agent(Config(autotune=False, alpha_init=0.2))
    b = _batch()
    a, logp = agent.actor(b.obs, torch.randn(32, 1))
    loss = sac_actor_loss(*agent.critic(b.obs, a), logp, 0.2)
    loss.backward(inputs=list(agent.actor.parameters()))
    assert all(p.grad is None for p in agent.critic.parameters())
    assert not agent.log_alpha.requires_grad and agent.alpha_opt is None


def test_actions_respect_pendulum_bounds():
    agent = _agent()
    obs = torch.randn(64, 3) * 5
    with torch.no_grad():
        for a in (agent.act(obs), agent.explore(obs, torch.randn(64, 1) * 3)):
            assert a.shape == (64, 1) and a.dtype == torch.float32 and torch.all(a.abs() <= 2.0)


# ------------------------------------------------------------------------------------------- training (smoke)
def test_registered_for_train_and_bench():
    algo = registry()["sac"]
    assert algo.bench_env == "Pendulum-v1" and algo.bench_target == -200.0 and algo.train is train


def test_short_run_is_seeded_and_logs_temperature_and_entropy():
    cfg = Config(warmup=200, batch_size=64, log_every=100)
    runs = []
    for callback in (None, lambda ev: (torch.rand(10), np.random.rand(10))):  # global draws change nothing
        runs.append(train("Pendulum-v1", cfg, Run(steps=400, seed=3, eval_every=200, eval_episodes=2,
                                                   callback=callback)))
    h = runs[0]
    assert h.algo == "sac" and h.env_steps == 400 and h.stopped == "budget" and len(h.evals) == 2
    assert len(h.logs["alpha"]) == len(h.logs["entropy"]) >= 2
    assert h.logs["alpha"][-1] < cfg.alpha_init  # the initial entropy is far above -1: the temperature falls
    assert runs[0].logs == runs[1].logs and runs[0].evals[-1][2] == runs[1].evals[-1][2]  # same seed, same result
