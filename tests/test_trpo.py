"""TRPO (lecturekit.algos.trpo) against independent computations: the surrogate's value and gradient at theta_k,
the update direction against an explicitly formed and solved Fisher system, the KL bound against
torch.distributions, plus smoke runs on Discrete and Box tasks and the benchmark solve."""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from lecturekit.algos import registry, trpo
from lecturekit.evaluation import Run
from lecturekit.nets import ActorCritic
from lecturekit.optim import flat_grad, get_flat_params

torch.set_num_threads(1)
CARTPOLE_OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def batch(discrete=True, n=48, seed=0):
    torch.manual_seed(seed)
    act_space = gym.spaces.Discrete(2) if discrete else gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    model = ActorCritic(CARTPOLE_OBS, act_space, hidden=(6,)).double()
    obs = torch.randn(n, 4, dtype=torch.float64)
    with torch.no_grad():
        act, logp, _ = model.act(obs)
    adv = torch.randn(n, dtype=torch.float64)
    return model, obs, act, logp, adv


def test_surrogate_at_theta_k_is_mean_advantage_and_its_gradient_is_the_policy_gradient():
    model, obs, act, logp_old, adv = batch()
    params = trpo.policy_params(model)
    surr = trpo.surrogate_objective(model.log_prob(obs, act), logp_old, adv)
    assert surr.item() == pytest.approx(adv.mean().item())  # all ratios are 1
    # policy gradient, one sample at a time: mean_i grad log pi(a_i|s_i) A_i
    pg = sum(flat_grad(model.log_prob(obs[i], act[i]), params) * adv[i] for i in range(len(adv))) / len(adv)
    torch.testing.assert_close(flat_grad(surr, params), pg)


def explicit_fisher(model, obs):
    """E_s sum_a pi(a|s) score score^T from per-(s, a) scores (Discrete, 2 actions)."""
    params = trpo.policy_params(model)
    n = sum(p.numel() for p in params)
    F = torch.zeros(n, n, dtype=torch.float64)
    for s in obs:
        for a in range(2):
            logp = model.log_prob(s, torch.tensor(a))
            score = flat_grad(logp, params)
            F += logp.exp().detach() * torch.outer(score, score)
    return F / len(obs)


def test_trpo_step_follows_the_damped_natural_gradient_and_respects_the_kl_bound():
    model, obs, act, logp_old, adv = batch()
    adv = 1e3 * adv  # a large gradient, so CG's absolute tolerance (1e-10) means a converged solve
    params = trpo.policy_params(model)
    cfg = trpo.Config(max_kl=0.01, damping=0.1, cg_iters=200)
    theta_k = get_flat_params(params)
    g = flat_grad(trpo.surrogate_objective(model.log_prob(obs, act), logp_old, adv), params)
    F = explicit_fisher(model, obs) + cfg.damping * torch.eye(len(theta_k), dtype=torch.float64)
    x = torch.linalg.solve(F, g)
    full = (2 * cfg.max_kl / (x @ F @ x)).sqrt() * x
    old_probs = torch.softmax(model.pi(obs), -1).detach()
    stats = trpo.trpo_step(model, obs, act, logp_old, adv, cfg)
    assert stats["accepted_j"] >= 0
    step = get_flat_params(params) - theta_k
    torch.testing.assert_close(step, cfg.backtrack ** stats["accepted_j"] * full, rtol=1e-5, atol=1e-9)
    d = torch.distributions
    with torch.no_grad():
        kl = d.kl_divergence(d.Categorical(probs=old_probs), d.Categorical(logits=model.pi(obs))).mean().item()
        new_surr = trpo.surrogate_objective(model.log_prob(obs, act), logp_old, adv).item()
    assert kl == pytest.approx(stats["kl"]) and kl <= cfg.max_kl
    assert new_surr - adv.mean().item() == pytest.approx(stats["surrogate_gain"]) and stats["surrogate_gain"] > 0


def test_trpo_step_for_a_gaussian_policy_respects_the_kl_bound():
    model, obs, act, logp_old, adv = batch(discrete=False)
    with torch.no_grad():
        mu0, ls0 = (t.clone() for t in model.dist_params(obs))
    stats = trpo.trpo_step(model, obs, act, logp_old, adv, trpo.Config(max_kl=0.02))
    d = torch.distributions
    with torch.no_grad():
        mu1, ls1 = model.dist_params(obs)
        kl = d.kl_divergence(d.Normal(mu0, ls0.exp()), d.Normal(mu1, ls1.exp())).sum(-1).mean().item()
    assert stats["accepted_j"] >= 0 and kl == pytest.approx(stats["kl"]) and 0 < kl <= 0.02
    assert model.log_std.detach().ne(ls0[0]).any()  # the log std is part of theta


def test_trpo_is_registered_for_bench_on_cartpole():
    algo = registry()["trpo"]
    assert algo.train is trpo.train and algo.config is trpo.Config
    assert (algo.bench_env, algo.bench_target) == ("CartPole-v1", 475.0)


def test_smoke_cartpole_logs_and_kl_bound_and_determinism():
    cfg = dataclasses.replace(trpo.Config(), n_envs=4, n_steps=64)
    runs = [trpo.train("CartPole-v1", cfg, Run(steps=2048, seed=3, eval_every=1024, eval_episodes=3)) for _ in range(2)]
    h = runs[0]
    assert len(h.logs["accepted_j"]) == 8 and set(h.logs) >= {"kl", "surrogate_gain", "value_loss", "entropy"}
    assert max(h.logs["kl"]) <= cfg.max_kl
    assert all(g > 0 for g, j in zip(h.logs["surrogate_gain"], h.logs["accepted_j"]) if j >= 0)
    assert h.evals == [] or [e[2] for e in h.evals] == [e[2] for e in runs[1].evals]
    assert h.logs["kl"] == runs[1].logs["kl"]


def test_smoke_pendulum_box_actions():
    cfg = dataclasses.replace(trpo.Config(), n_envs=2, n_steps=64)
    h = trpo.train("Pendulum-v1", cfg, Run(steps=256, seed=0, eval_episodes=2))
    assert len(h.logs["kl"]) == 2 and np.isfinite(h.final_return)


def test_solves_cartpole_seed_0():
    h = trpo.train("CartPole-v1", None, Run(steps=100_000, seed=0, target=475.0, eval_every=4096))
    assert h.solved and h.final_return >= 475.0


def test_vanilla_step_is_theta_plus_lr_times_gradient():
    model, obs, act, logp_old, adv = batch()
    params = trpo.policy_params(model)
    theta_k = get_flat_params(params)
    g = flat_grad(trpo.surrogate_objective(model.log_prob(obs, act), logp_old, adv), params)
    stats = trpo.vanilla_step(model, obs, act, logp_old, adv, trpo.Config(vanilla_lr=0.5))
    torch.testing.assert_close(get_flat_params(params), theta_k + 0.5 * g)
    assert stats["accepted_j"] == 0 and stats["kl"] > 0
