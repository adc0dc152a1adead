"""The A2C build-it checker: accepts correctly written updates (loop or vectorised, any order of the pieces), rejects
each realistic bug with its own message, reports a stub as not implemented, and trains CartPole with a correct one.

The implementations here are written independently of the checker's own variants (returns by a per-environment
loop over Python floats, or by `bootstrapped_returns` on the masked arrays)."""
import numpy as np
import pytest
import torch

from lecturekit.checks import check_a2c_update
from lecturekit.course.checking import CheckFailed
from lecturekit.returns import bootstrapped_returns


def returns_per_env(ro, gamma, *, trunc_as_term=False, ignore_autoreset=False, shift=False):
    """R_t column by column with Python floats: restart at V(final obs) after an episode, cut at termination."""
    T, N = ro.rewards.shape
    v = ro.values.double().numpy()
    out = np.zeros((T, N))
    for i in range(N):
        R = float(ro.last_value[i])
        for t in range(T - 1, -1, -1):
            if not ro.valid[t, i] and not ignore_autoreset:
                R = v[t, i]  # the autoreset step holds V(final observation of the episode before it)
            else:
                ended = ro.terminated[t, i] or (trunc_as_term and ro.truncated[t, i])
                if shift:
                    ended = t > 0 and ro.terminated[t - 1, i]
                R = ro.rewards[t, i] + gamma * (0.0 if ended else R)
            out[t, i] = R
    return out


def a2c_impl(model, opt, ro, cfg, *, bug=None, returns="loop", critic_first=False, unbiased=True):
    if returns == "loop" or bug in ("trunc_as_term", "ignore_autoreset", "shift"):
        R = returns_per_env(ro, cfg.gamma, trunc_as_term=bug == "trunc_as_term",
                            ignore_autoreset=bug == "ignore_autoreset", shift=bug == "shift")
    else:  # vectorised, through the library's bootstrapped_returns with the autoreset trick
        v = ro.values.double().numpy()
        R = bootstrapped_returns(np.where(ro.valid, ro.rewards, v), np.where(ro.valid, ro.terminated, True),
                                 ro.last_value, cfg.gamma)
    R = torch.as_tensor(R, dtype=torch.float32)
    m = torch.as_tensor(ro.valid) if bug != "no_mask" else torch.ones(ro.valid.shape, dtype=torch.bool)
    obs, act, ret = ro.obs[m], ro.actions[m], R[m]
    if critic_first:
        v = model.value(obs)
        value_loss = (ret - v).pow(2).sum() / len(ret)
    v_now = model.value(obs)
    adv = ret - (v_now if bug == "adv_grad" else v_now.detach())
    if cfg.normalize_adv and bug != "no_norm":
        adv = (adv - adv.mean()) / (adv.std(unbiased=unbiased) + 1e-8)
    logp = model.log_prob(obs, act)
    ent = model.entropy(obs).mean()
    policy_loss = -(logp * adv).mean()
    if not critic_first:
        value_loss = ((v_now - ret) ** 2).mean()
    c_h = 0.0 if bug == "no_entropy" else -cfg.entropy_coef if bug == "ent_sign" else cfg.entropy_coef
    loss = policy_loss + (1.0 if bug == "no_value_coef" else cfg.value_coef) * value_loss - c_h * ent
    if bug == "sign":
        loss = -policy_loss + cfg.value_coef * value_loss - c_h * ent
    if bug != "no_zero_grad":
        model.zero_grad()  # the model's zero_grad is as good as the optimizer's here
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
    if cfg.max_grad_norm and bug != "no_clip":
        if bug == "clip_after":
            opt.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            return {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": ent.item(),
                    "grad_norm": norm}
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    opt.step()
    out = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": ent.item(),
           "grad_norm": norm}
    if bug == "tensor_stat":
        out["value_loss"] = value_loss
    if bug == "missing_key":
        del out["grad_norm"]
    return out


def rejects(fn, *fragments):
    with pytest.raises(CheckFailed) as e:
        check_a2c_update(fn, train=False)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"expected {f!r} in:\n{msg}"
    return msg


@pytest.mark.parametrize("variant", [dict(returns="loop"), dict(returns="vectorised"),
                                     dict(returns="loop", critic_first=True), dict(unbiased=False)],
                         ids=["loop", "vectorised", "reordered", "population-std"])
def test_accepts_correct_updates(variant, capsys):
    check_a2c_update(lambda *a: a2c_impl(*a, **variant), train=False)
    assert "all checks passed" in capsys.readouterr().out


def test_accepts_the_library_update(capsys):
    from lecturekit.algos import a2c

    check_a2c_update(a2c.update, train=False)
    assert "all checks passed" in capsys.readouterr().out


def test_the_checkers_own_variant_is_the_library_update(capsys):
    from lecturekit.course.checks.actor_critic import _a2c_variant

    check_a2c_update(_a2c_variant, train=False)
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("bug, fragments", [
    ("no_zero_grad", ["zero_grad"]),
    ("trunc_as_term", ["truncated episode (time limit) was treated as terminated"]),
    ("ignore_autoreset", ["an autoreset step (valid == False) was treated as an ordinary step"]),
    ("shift", ["off by one"]),
    ("no_mask", ["autoreset steps (valid == False) are in your losses"]),
    ("adv_grad", ["advantage carries gradient into the critic"]),
    ("no_norm", ["cfg.normalize_adv is True"]),
    ("no_entropy", ["entropy bonus is missing"]),
    ("ent_sign", ["entropy bonus has the wrong sign"]),
    ("no_value_coef", ["cfg.value_coef"]),
    ("sign", ["policy loss has the wrong sign"]),
    ("no_clip", ["not clipped"]),
    ("clip_after", ["not clipped", "clipping after step() does nothing"]),
])
def test_rejects_each_bug_with_its_message(bug, fragments):
    rejects(lambda *a: a2c_impl(*a, bug=bug), *fragments)


def test_rejects_bad_diagnostics():
    rejects(lambda *a: a2c_impl(*a, bug="missing_key"), "add 'grad_norm'")
    rejects(lambda *a: a2c_impl(*a, bug="tensor_stat"), "store `value_loss` as a number")

    def wrong_norm(*a):
        out = a2c_impl(*a)
        out["grad_norm"] = min(out["grad_norm"], 0.5)  # the norm after clipping
        return out

    rejects(wrong_norm, "'grad_norm'", "*before* clipping")


def test_names_the_group_for_an_unknown_bug():
    def critic_on_advantages(model, opt, ro, cfg):
        # an unusual mistake no variant models: the critic regresses on half the returns
        m = torch.as_tensor(ro.valid)
        R = torch.as_tensor(returns_per_env(ro, cfg.gamma), dtype=torch.float32)[m]
        obs, act = ro.obs[m], ro.actions[m]
        adv = R - ro.values[m]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pl = -(model.log_prob(obs, act) * adv).mean()
        vl = ((model.value(obs) - 0.5 * R) ** 2).mean()
        ent = model.entropy(obs).mean()
        opt.zero_grad()
        (pl + cfg.value_coef * vl - cfg.entropy_coef * ent).backward()
        n = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm or float("inf"))
        opt.step()
        return {"policy_loss": pl.item(), "value_loss": vl.item(), "entropy": ent.item(), "grad_norm": n.item()}

    msg = rejects(critic_on_advantages, "critic")
    assert "The critic's gradient comes from" in msg


def test_stub_mutation_and_exceptions():
    def stub(model, opt, ro, cfg):
        raise NotImplementedError

    rejects(stub, "not implemented yet")

    def mutates(model, opt, ro, cfg):
        ro.rewards *= 2.0
        return a2c_impl(model, opt, ro, cfg)

    rejects(mutates, "ro.rewards", "work on copies")

    def crashes(model, opt, ro, cfg):
        return model.value(ro.obs[ro.valid.T])  # a wrong-shaped mask

    rejects(crashes, "IndexError")


def test_training_layer_with_a_correct_update(capsys):
    check_a2c_update(lambda *a: a2c_impl(*a, returns="vectorised"))
    assert "trained CartPole-v1 to" in capsys.readouterr().out


def test_names_a_new_optimizer_and_leaves_the_global_generators_alone():
    def own_optimizer(model, opt, ro, cfg):
        return a2c_impl(model, torch.optim.Adam(model.parameters(), lr=cfg.lr), ro, cfg)

    rejects(own_optimizer, "never called step() of the optimizer `opt`")
    torch.manual_seed(123)
    np.random.seed(123)
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(123)
    np.random.seed(123)
    check_a2c_update(lambda *a: a2c_impl(*a), train=False)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
