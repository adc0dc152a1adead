"""PPO: the clipped surrogate and its six cases against hand-worked numbers and analytic gradients; the training loop
on CartPole (discrete) and Pendulum (Box)."""
import copy
import math

import numpy as np
import pytest
import torch

from lecturekit.algos import ppo, registry
from lecturekit.algos.trpo import surrogate_objective
from lecturekit.evaluation import Run
from lecturekit.rollout import actor_critic_setup, collect, start


def test_clip_loss_hand_worked():
    # r = (e^0.1, e^-0.5, 1, e^0.4) = (1.105, 0.607, 1, 1.492); eps = 0.2; A = (1, 1, -2, -1)
    # min terms: min(1.105, 1.105) = 1.105; min(0.607, 0.8) = 0.607; -2; min(-1.492, -1.2) = -1.492
    logp_old = torch.tensor([-1.0, -1.0, -1.0, -1.0])
    logp = logp_old + torch.tensor([0.1, -0.5, 0.0, 0.4])
    adv = torch.tensor([1.0, 1.0, -2.0, -1.0])
    expected = -(math.exp(0.1) + math.exp(-0.5) - 2.0 - math.exp(0.4)) / 4
    assert ppo.ppo_clip_loss(logp, logp_old, adv, 0.2).item() == pytest.approx(expected, rel=1e-6)


def test_clip_loss_gradient_is_zero_exactly_where_the_min_picks_the_clipped_term():
    g = torch.Generator().manual_seed(0)
    logp_old = -torch.rand(200, generator=g, dtype=torch.float64) * 2
    logp = (logp_old + torch.randn(200, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
    adv = torch.randn(200, generator=g, dtype=torch.float64)
    eps = 0.2
    ppo.ppo_clip_loss(logp, logp_old, adv, eps).backward()
    r = torch.exp(logp - logp_old).detach()
    clipped = ((adv > 0) & (r > 1 + eps)) | ((adv < 0) & (r < 1 - eps))
    # d/dlogp of -(1/B) r A = -(1/B) r A  (dr/dlogp = r) on unclipped samples, 0 on clipped ones
    analytic = torch.where(clipped, torch.zeros_like(r), -r * adv / len(r))
    assert clipped.any() and (~clipped).any()
    torch.testing.assert_close(logp.grad, analytic)


def test_clip_loss_with_infinite_eps_is_the_plain_surrogate():
    g = torch.Generator().manual_seed(1)
    logp_old = -torch.rand(50, generator=g)
    logp, adv = logp_old + torch.randn(50, generator=g), torch.randn(50, generator=g)
    torch.testing.assert_close(ppo.ppo_clip_loss(logp, logp_old, adv, math.inf), -surrogate_objective(logp, logp_old, adv))


def test_clip_loss_no_gradient_into_old_logp_or_advantages():
    logp = torch.tensor([-0.3, -1.0], requires_grad=True)
    logp_old = torch.tensor([-0.5, -0.9], requires_grad=True)
    adv = torch.tensor([1.0, -1.0], requires_grad=True)
    ppo.ppo_clip_loss(logp, logp_old, adv, 0.2).backward()
    assert logp_old.grad is None and adv.grad is None and logp.grad is not None


# The lecture's table "PPO Clipping Per Case": (ratio region, sign of A) -> (value of min, clipped?, sign, gradient?)
LECTURE_TABLE = [
    ("inside", "+", "rA", False, "+", True),
    ("inside", "-", "rA", False, "-", True),
    ("below", "+", "rA", False, "+", True),
    ("below", "-", "(1-eps)A", True, "-", False),
    ("above", "+", "(1+eps)A", True, "+", False),
    ("above", "-", "rA", False, "-", True),
]


@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
def test_clipping_table_matches_the_lecture(eps):
    rows = ppo.clipping_table(eps)
    got = [(r["ratio"], r["A"], r["value_of_min"], r["clipped"], r["sign"], r["gradient"]) for r in rows]
    assert got == LECTURE_TABLE


@pytest.mark.parametrize("ratio, adv, value, clipped, grad", [
    (1.0, 2.0, 2.0, False, 2.0),       # inside: r A, gradient A
    (0.5, 2.0, 1.0, False, 2.0),       # below, A > 0: r A = 1.0 < 0.8 * 2 = 1.6
    (0.5, -2.0, -1.6, True, 0.0),      # below, A < 0: (1 - eps) A = -1.6 < r A = -1.0
    (1.5, 2.0, 2.4, True, 0.0),        # above, A > 0: (1 + eps) A = 2.4 < 3.0
    (1.5, -2.0, -3.0, False, -2.0),    # above, A < 0: r A = -3.0 < -2.4
    (3.0, 0.0, 0.0, False, 0.0),       # A = 0: nothing to gain or lose
])
def test_clipping_case_hand_worked(ratio, adv, value, clipped, grad):
    out = ppo.clipping_case(ratio, adv, 0.2)
    assert out == {"value": pytest.approx(value), "clipped": clipped, "gradient": pytest.approx(grad)}


def test_value_loss_clipping_hand_worked():
    v, v_old, ret = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.1])
    # unclipped errors (2-3)^2 = 1, (0-0.1)^2 = 0.01; clipped V: 1 + clip(1, -.2, .2) = 1.2 -> (1.2-3)^2 = 3.24; 0 -> 0.01
    assert ppo.clipped_value_loss(v, v_old, ret).item() == pytest.approx((1 + 0.01) / 2)
    assert ppo.clipped_value_loss(v, v_old, ret, 0.2).item() == pytest.approx((3.24 + 0.01) / 2)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="gae_lambda"):
        ppo.Config(gae_lambda=1.5)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.Config(clip_eps=0.0)


def test_registered():
    algo = registry()["ppo"]
    assert algo.train is ppo.train and algo.config is ppo.Config and algo.bench_target == 475.0


def test_cartpole_logs_and_repeatability():
    cfg = ppo.Config(n_envs=4, n_steps=32)
    h1 = ppo.train("CartPole-v1", cfg, Run(steps=512, seed=3, eval_every=256, eval_episodes=3))
    h2 = ppo.train("CartPole-v1", cfg, Run(steps=512, seed=3, eval_every=256, eval_episodes=3))
    assert h1.evals and [e[2] for e in h1.evals] == [e[2] for e in h2.evals]
    assert h1.logs["policy_loss"] == h2.logs["policy_loss"]
    for key in ("approx_kl", "clip_frac", "explained_var", "entropy", "value_loss", "epochs_run", "lr"):
        assert len(h1.logs[key]) == 4, key
    assert all(k >= 0 for k in h1.logs["approx_kl"]) and all(0 <= c <= 1 for c in h1.logs["clip_frac"])
    assert h1.logs["epochs_run"] == [float(cfg.epochs)] * 4


def test_target_kl_stops_epochs_early():
    cfg = ppo.Config(n_envs=4, n_steps=64, epochs=20, lr=2e-2, target_kl=1e-4)
    h = ppo.train("CartPole-v1", cfg, Run(steps=1024, seed=0, eval_every=1024, eval_episodes=2))
    assert min(h.logs["epochs_run"]) < 20


def test_cartpole_solves():
    h = ppo.train("CartPole-v1", None, Run(steps=60_000, seed=0, target=475, eval_every=2048))
    assert h.solved, h.summary()


def test_pendulum_box_actions_smoke():
    cfg = ppo.Config(n_envs=2, n_steps=64, epochs=2, minibatches=2)
    h = ppo.train("Pendulum-v1", cfg, Run(steps=256, seed=0, eval_every=256, eval_episodes=2))
    assert h.model.log_std.shape == (1,) and np.isfinite(h.final_return)
    assert h.env_steps == 256


@pytest.mark.parametrize("opts", [dict(clip_eps=math.inf), dict(normalize_adv=False), dict(clip_vloss=True),
                                 dict(anneal_lr=True, entropy_coef=0.01)])
def test_options_run(opts):
    cfg = ppo.Config(n_envs=2, n_steps=32, **opts)
    h = ppo.train("CartPole-v1", cfg, Run(steps=128, seed=0, eval_every=128, eval_episodes=2))
    assert h.env_steps == 128


def test_update_leaves_the_rollout_unchanged():
    from lecturekit.envs import make_unit_vec as make_envs
    from lecturekit.nets import ActorCritic
    from lecturekit.rollout import collect, start

    cfg = ppo.Config(n_envs=2, n_steps=16)
    envs = make_envs("CartPole-v1", cfg.n_envs)
    torch.manual_seed(0)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space)
    ro = collect(envs, model, start(envs, 0), cfg.n_steps)
    rewards = ro.rewards.copy()
    stats = ppo.update(model, torch.optim.Adam(model.parameters(), lr=1e-3), ro, cfg, torch.Generator().manual_seed(0))
    assert np.array_equal(ro.rewards, rewards) and stats["epochs_run"] == cfg.epochs


def test_the_loop_scales_the_rewards_the_update_sees_not_the_returns():
    seen = []

    def spy(model, opt, ro, cfg, gen):
        seen.append(ro.rewards[ro.valid])
        return ppo.update(model, opt, ro, cfg, gen)

    cfg = ppo.Config(n_envs=2, n_steps=16, reward_scale=0.1)
    h = ppo.train("CartPole-v1", cfg, Run(steps=64, seed=0, eval_every=64, eval_episodes=2), update=spy)
    # CartPole pays 1 per step: the update sees 0.1 per step, the evaluation counts whole steps (an episode lasts
    # at least 8 steps, so a mean below 8 would mean scaled returns)
    assert len(seen) == 2 and all(np.allclose(r, 0.1) for r in seen)
    assert h.final_return >= 8


def test_entropy_left_out_of_the_step_when_unused_gives_the_same_update():
    # entropy_coef = 0: the step computes no entropy when no diagnostics are asked for; the parameters it reaches
    # must equal those of the step that computes it (and multiplies it by 0)
    cfg = ppo.Config(n_envs=2, n_steps=16, entropy_coef=0.0)
    envs, model, _, gen = actor_critic_setup("CartPole-v1", cfg, seed=3)
    ro = collect(envs, model, start(envs, 3), cfg.n_steps, gen)
    mb = ro.steps(cfg.gamma, cfg.gae_lambda)
    twin = copy.deepcopy(model)
    for m, diagnostics in ((model, False), (twin, True)):
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        ppo.minibatch_step(m, opt, mb, cfg, diagnostics)
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)
