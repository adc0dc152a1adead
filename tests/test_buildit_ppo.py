"""The PPO build-it checker: accepts correctly written updates (GAE by a loop or by the library, pieces in any
order), rejects each realistic bug with its own message, reports a stub as not implemented, and trains CartPole with
a correct one.  The implementations here are written independently of the checker's own variants."""
import math

import numpy as np
import pytest
import torch

from lecturekit.checks import check_ppo_update
from lecturekit.course.checking import CheckFailed

KEYS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")


def gae_loop(ro, gamma, lam, bug=None):
    """GAE per environment with Python floats; an autoreset step restarts from V(final observation)."""
    T, N = ro.rewards.shape
    v = ro.values.double().numpy()
    adv = np.zeros((T, N))
    for i in range(N):
        a, next_v = 0.0, float(ro.last_value[i])
        for t in range(T - 1, -1, -1):
            if not ro.valid[t, i] and bug != "autoreset":
                a, next_v = 0.0, v[t, i]
                continue
            ended = ro.terminated[t, i] or (bug == "trunc" and ro.truncated[t, i])
            nonterminal = 0.0 if ended else 1.0
            delta = ro.rewards[t, i] + gamma * nonterminal * next_v - v[t, i]
            a = delta + gamma * lam * nonterminal * a
            adv[t, i], next_v = a, v[t, i]
    return torch.as_tensor(adv, dtype=torch.float32)


def ppo_impl(model, opt, ro, cfg, gen, *, bug=None, gae="loop", order="plain", unbiased=True):
    if gae == "loop":
        adv_tn = gae_loop(ro, cfg.gamma, cfg.gae_lambda, {"gae_trunc": "trunc", "gae_autoreset": "autoreset"}.get(bug))
        ret_tn = adv_tn + ro.values
    else:
        adv_tn, ret_tn = ro.advantages(cfg.gamma, cfg.gae_lambda)
    m = torch.as_tensor(ro.valid) if bug != "no_mask" else torch.ones(ro.valid.shape, dtype=torch.bool)
    obs, act, logp_old, adv = ro.obs[m], ro.actions[m], ro.logp[m], adv_tn[m]
    ret = adv if bug == "ret_adv" else ret_tn[m]
    if bug == "norm_batch":
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    n = len(obs)
    size = n // cfg.minibatches if bug == "floor" else math.ceil(n / cfg.minibatches)
    perm0 = torch.randperm(n, generator=gen)
    for epoch in range(cfg.epochs):
        perm = perm0 if bug == "one_perm" else torch.randperm(n) if bug == "global" else \
            (perm0 if epoch == 0 else torch.randperm(n, generator=gen))
        rows = []
        for start in range(0, n, size):
            idx = perm[start:start + size]
            a = adv[idx]
            if cfg.normalize_adv and bug not in ("no_norm", "norm_batch"):
                a = (a - a.mean()) / (a.std(unbiased=unbiased) + 1e-8)
            if order == "value_first":
                value_loss = (model.value(obs[idx]) - ret[idx]).square().mean()
            logp = model.log_prob(obs[idx], act[idx])
            old = model.log_prob(obs[idx], act[idx]) if bug == "old_grad" else logp_old[idx]
            ratio = (old - logp).exp() if bug == "inverted" else (logp - old).exp()
            lo, hi = 1 - cfg.clip_eps, 1 + cfg.clip_eps
            if bug == "no_min":
                surr = ratio.clamp(lo, hi) * a
            else:
                surr = torch.minimum(ratio * a, ratio.clamp(lo, hi) * a)
            policy_loss = -surr.mean()
            if order != "value_first":
                v = model.value(obs[idx])
                target = adv[idx] + model.value(obs[idx]) if bug == "target_grad" else ret[idx]
                value_loss = (0.5 if bug == "half_value" else 1.0) * (v - target).square().mean()
            ent = model.entropy(obs[idx]).mean()
            c_h = -cfg.entropy_coef if bug == "ent_sign" else cfg.entropy_coef
            loss = policy_loss + cfg.value_coef * value_loss - c_h * ent
            if bug != "no_zero_grad":
                opt.zero_grad()
            loss.backward()
            if (cfg.max_grad_norm or bug == "clip_at_zero") and bug != "no_clip":
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            lr = (logp - old).detach()
            kl = (-lr).mean() if bug == "kl_k1" else (lr.exp() - 1 - lr).mean()
            cf = ((lr.exp() - 1).abs() > cfg.clip_eps).float().mean()
            if bug == "clip_frac_count":
                cf = ((lr.exp() - 1).abs() > cfg.clip_eps).float().sum()
            rows.append([policy_loss.item(), value_loss.item(), ent.item(), kl.item(), cf.item()])
    return {k: float(v) for k, v in zip(KEYS, np.mean(rows, axis=0))}


def rejects(fn, *fragments):
    with pytest.raises(CheckFailed) as e:
        check_ppo_update(fn, train=False)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"expected {f!r} in:\n{msg}"
    return msg


@pytest.mark.parametrize("variant", [dict(gae="loop"), dict(gae="library"), dict(gae="loop", order="value_first"),
                                     dict(unbiased=False)],
                         ids=["gae-loop", "gae-library", "reordered", "population-std"])
def test_accepts_correct_updates(variant, capsys):
    check_ppo_update(lambda *a: ppo_impl(*a, **variant), train=False)
    assert "all checks passed" in capsys.readouterr().out


def test_accepts_the_library_update_and_the_checkers_variant(capsys):
    from lecturekit.algos import ppo
    from lecturekit.course.checks.ppo import _ppo_variant

    check_ppo_update(ppo.update, train=False)
    check_ppo_update(_ppo_variant, train=False)
    assert capsys.readouterr().out.count("all checks passed") == 2


@pytest.mark.parametrize("bug, fragments", [
    ("no_zero_grad", ["zero_grad"]),
    ("global", ["generator=gen"]),
    ("one_perm", ["reshuffle every epoch"]),
    ("floor", ["math.ceil"]),
    ("no_mask", ["autoreset steps"]),
    ("norm_batch", ["per minibatch"]),
    ("no_norm", ["cfg.normalize_adv is True"]),
    ("old_grad", ["old log-probabilities carry gradient"]),
    ("inverted", ["exp(logp - logp_old)"]),
    ("no_min", ["the min with the unclipped term is missing"]),
    ("ret_adv", ["value target is A_t + V(s_t)"]),
    ("ent_sign", ["entropy bonus has the wrong sign"]),
    ("target_grad", ["value target carries gradient"]),
    ("gae_trunc", ["truncated episode (time limit) was treated as terminated in GAE"]),
    ("gae_autoreset", ["autoreset step (valid == False) was treated as an ordinary step in GAE"]),
    ("no_clip", ["not clipped"]),
    ("clip_at_zero", ["max_grad_norm = 0 means no clipping"]),
    ("half_value", ["without the factor 1/2"]),
    ("kl_k1", ["approx_kl is mean((r - 1) - log r)"]),
    ("clip_frac_count", ["'clip_frac'", "fraction of steps"]),
])
def test_rejects_each_bug_with_its_message(bug, fragments):
    rejects(lambda *a: ppo_impl(*a, bug=bug), *fragments)


def test_rejects_old_logp_from_the_current_network():
    def current_old(model, opt, ro, cfg, gen):
        with torch.no_grad():
            logp_now = model.log_prob(ro.obs, ro.actions)
        ro2 = type(ro)(**{**ro.__dict__, "logp": logp_now})
        return ppo_impl(model, opt, ro2, cfg, gen)

    rejects(current_old, "those of the policy that collected the data (ro.logp)")


def test_stub_and_mutation():
    def stub(model, opt, ro, cfg, gen):
        raise NotImplementedError

    rejects(stub, "not implemented yet")

    def mutates(model, opt, ro, cfg, gen):
        ro.logp.sub_(0.0).mul_(1.0)  # harmless
        ro.values.add_(1.0)
        return ppo_impl(model, opt, ro, cfg, gen)

    rejects(mutates, "ro.values")


def test_training_layer_with_a_correct_update(capsys):
    check_ppo_update(lambda *a: ppo_impl(*a, gae="library"))
    assert "trained CartPole-v1 to" in capsys.readouterr().out
