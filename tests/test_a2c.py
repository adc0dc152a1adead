"""A2C and A3C: losses against hand-worked numbers and autograd, the update against the exercise's loss, smoke runs."""
import json

import numpy as np
import pytest
import torch

from lecturekit.course import cli
from lecturekit.algos import a2c, a3c, registry
from lecturekit.envs import make_unit_vec, make_vec
from lecturekit.evaluation import Run
from lecturekit.losses import actor_critic_loss, policy_gradient_loss
from lecturekit.nets import ActorCritic, greedy_act_fn
from lecturekit.returns import nstep_returns
from lecturekit.rollout import collect, start

torch.set_num_threads(1)


def test_a2c_loss_hand_worked():
    # B = 2: log_probs [-1, -2], values [1, 0], returns [3, -1], entropy [0.5, 1.5], c_v = 0.5, c_H = 0.1
    # advantages [2, -1];  policy term -mean([-2, 2]) = 0;  critic term 0.5 * mean([4, 1]) = 1.25;
    # entropy term 0.1 * mean([0.5, 1.5]) = 0.1;  L = 0 + 1.25 - 0.1 = 1.15
    lp = torch.tensor([-1.0, -2.0], requires_grad=True)
    v = torch.tensor([1.0, 0.0], requires_grad=True)
    h = torch.tensor([0.5, 1.5], requires_grad=True)
    loss = a2c.a2c_loss(lp, v, torch.tensor([3.0, -1.0]), h, 0.5, 0.1)
    assert loss.item() == pytest.approx(1.15)
    loss.backward()
    # dL/dlogp = -A / B;  dL/dv = c_v * 2 (v - R) / B (nothing through the detached advantage);  dL/dH = -c_H / B
    np.testing.assert_allclose(lp.grad.numpy(), [-1.0, 0.5])
    np.testing.assert_allclose(v.grad.numpy(), [-1.0, 0.5])
    np.testing.assert_allclose(h.grad.numpy(), [-0.05, -0.05])


def test_policy_loss_gradient_is_minus_the_policy_gradient_estimate():
    # for a softmax policy over 3 actions with logits theta, grad log pi(a) = onehot(a) - pi; the estimate is
    # mean_b (onehot(a_b) - pi) A_b, and the loss gradient must be its negative
    theta = torch.tensor([0.2, -0.1, 0.4], requires_grad=True)
    acts, adv = torch.tensor([0, 2, 2, 1]), torch.tensor([1.0, -0.5, 2.0, 0.3])
    logp = torch.log_softmax(theta, -1)[acts]
    policy_gradient_loss(logp, adv).backward()
    pi = torch.softmax(theta.detach(), -1)
    estimate = ((torch.eye(3)[acts] - pi) * adv[:, None]).mean(0)
    np.testing.assert_allclose(theta.grad.numpy(), -estimate.numpy(), rtol=1e-6, atol=1e-7)


def rollout(env_id="CartPole-v1", n=4, T=32, seed=0, **kw):
    gen = torch.Generator().manual_seed(seed)
    envs = make_unit_vec(env_id, n)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space, hidden=(16,), generator=gen)
    ro = collect(envs, model, start(envs, seed), T, gen)
    envs.close()
    return model, ro


def test_update_without_normalisation_is_a_step_on_the_exercise_loss():
    model, ro = rollout()
    cfg = a2c.A2CConfig(normalize_adv=False, max_grad_norm=0.0, entropy_coef=0.01)
    loss, _ = actor_critic_loss(model, ro.steps(cfg.gamma, cfg.gae_lambda), cfg)
    m = torch.as_tensor(ro.valid)
    ret = ro.returns(cfg.gamma)[m]
    obs, act = ro.obs[m], ro.actions[m]
    expected = a2c.a2c_loss(model.log_prob(obs, act), model.value(obs), ret, model.entropy(obs), cfg.value_coef,
                            cfg.entropy_coef)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    # and the step it takes is Adam's first step on that loss: every parameter moves by about lr
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    a2c.update(model, opt, ro, cfg)
    moved = [(p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before)]
    assert max(moved) == pytest.approx(1e-3, rel=1e-3)


def test_targets_lambda_one_is_nstep_return_minus_value_and_gae_otherwise():
    _, ro = rollout()
    adv, ret = ro.advantages(0.99, a2c.A2CConfig().gae_lambda)
    m = torch.as_tensor(ro.valid)
    torch.testing.assert_close(ret[m], ro.returns(0.99)[m], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(adv[m], (ro.returns(0.99) - ro.values)[m], rtol=1e-5, atol=1e-4)
    adv2, ret2 = ro.advantages(0.99, 0.0)
    # lambda = 0: one-step TD error r + gamma V(s') - V(s) on steps inside an episode
    t, i = np.argwhere(ro.valid[:-1] & ro.valid[1:] & ~ro.terminated[:-1])[0]
    td = ro.rewards[t, i] + 0.99 * ro.values[t + 1, i].item() - ro.values[t, i].item()
    assert adv2[t, i].item() == pytest.approx(td, rel=1e-5, abs=1e-5)


def test_box_actions_are_rescaled_and_evaluation_maps_back():
    model, ro = rollout("lecturekit/DynamicPricing-v0", n=3, T=8)
    assert ro.actions.shape == (8, 3, 1)
    envs = make_vec("lecturekit/DynamicPricing-v0", 1)
    act_fn = greedy_act_fn(model, envs.single_action_space)
    envs.close()
    with torch.no_grad():
        model.pi[-1].bias.fill_(0.0)
        model.pi[-1].weight.fill_(0.0)
    # mean 0 in [-1, 1] units is the middle of the price range [0, 4]
    np.testing.assert_allclose(act_fn(np.zeros((2, 2), np.float32)), [[2.0], [2.0]])
    with torch.no_grad():
        model.pi[-1].bias.fill_(5.0)  # far outside [-1, 1]: clipped to the highest price
    np.testing.assert_allclose(act_fn(np.zeros((1, 2), np.float32)), [[4.0]])


def test_registered_with_documented_config():
    algos = registry()
    assert algos["a2c"].config is a2c.A2CConfig and algos["a3c"].config is a3c.A3CConfig
    with pytest.raises(ValueError, match="gae_lambda"):
        a2c.A2CConfig(gae_lambda=1.5)
    with pytest.raises(ValueError, match="gae_lambda"):
        a3c.A3CConfig(gae_lambda=1.5)


def test_a2c_solves_cartpole_and_is_repeatable():
    h = a2c.train("CartPole-v1", None, Run(steps=100_000, seed=0, target=475, eval_every=2048))
    assert h.solved and h.stopped == "target", h.summary()
    assert h.solved_at_steps <= 60_000
    for key in ("policy_loss", "value_loss", "entropy", "explained_var", "grad_norm"):
        assert len(h.logs[key]) == len(h.logs["env_steps"])
    h2 = a2c.train("CartPole-v1", None, Run(steps=4096, seed=0, eval_every=2048))
    assert [e[2] for e in h2.evals] == [e[2] for e in h.evals[:2]]


def test_a2c_learns_inventory_control_box_actions():
    # measured: the initial policy (order 6 per period) loses 21.4 per period, the best base-stock rule 6.8;
    # A2C's defaults reach about 7.0 within 10k steps
    from lecturekit.envs.inventory import simulate_inventory

    h = a2c.train("lecturekit/InventoryControl-v0", None, Run(steps=20_480, seed=0, eval_every=10_240, eval_episodes=10))
    envs = make_vec("lecturekit/InventoryControl-v0", 1)
    act_fn = greedy_act_fn(h.model, envs.single_action_space)
    envs.close()
    assert simulate_inventory(act_fn, episodes=1000, seed=1).mean() > -7.5


def test_cli_train_a2c_prints_a_summary(capsys):
    assert cli.main(["train", "a2c", "--steps", "512", "--seed", "1", "--quiet", "--set", "n_envs=4"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["algo"] == "a2c" and out["env_steps"] >= 512


def test_a3c_workers_share_parameters_and_learn():
    cfg = a3c.A3CConfig(n_workers=2)
    h = a3c.train("CartPole-v1", cfg, Run(steps=60_000, seed=0, target=300, eval_every=4096))
    assert h.best_return >= 150, h.summary()
    workers = set(h.logs["worker"])
    assert workers == {0, 1}, "both worker processes must have updated the shared parameters"
    assert max(h.logs["staleness"]) >= 1, "asynchronous updates: some gradients are computed on stale parameters"


def test_nstep_returns_limits_and_hand_worked():
    from lecturekit.returns import bootstrapped_returns

    rng = np.random.default_rng(0)
    T, N, gamma = 7, 3, 0.9
    r, v, last = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=N)
    d = rng.random((T, N)) < 0.25
    np.testing.assert_allclose(nstep_returns(r, v, d, last, gamma, T), bootstrapped_returns(r, d, last, gamma))
    next_v = np.vstack([v[1:], last[None]])
    np.testing.assert_allclose(nstep_returns(r, v, d, last, gamma, 1), r + gamma * (1 - d) * next_v)
    # n = 2, one environment, no termination: G_0 = r0 + g r1 + g^2 V2 = 1 + 0.5 * 2 + 0.25 * 8 = 4
    g = nstep_returns(np.array([[1.0], [2.0], [3.0]]), np.array([[0.0], [0.0], [8.0]]), np.zeros((3, 1)),
                          np.array([4.0]), 0.5, 2)
    assert g[0, 0] == pytest.approx(4.0)
    assert g[2, 0] == pytest.approx(3.0 + 0.5 * 4.0)  # only one step left in the rollout: bootstrap from last_value
