"""The REINFORCE build-it checkers (episode collection, update): correct variants accepted (per-step loop or
vectorised, pieces in another order), each realistic bug rejected with its own message, a stub reported as not
implemented, and CartPole trained with a correct collection and update.  Written independently of the checker's
own variants."""
import numpy as np
import pytest
import torch

from lecturekit.algos import reinforce as R
from lecturekit.checks import check_collect_episodes, check_reinforce_update
from lecturekit.course.checking import CheckFailed
from lecturekit.returns import discounted_returns


def rejects(check, fn, *fragments, **kw):
    with pytest.raises(CheckFailed) as e:
        check(fn, **kw)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"expected {f!r} in:\n{msg}"
    return msg


# --- collect_episodes ------------------------------------------------------------------------------------------------
def collect_impl(envs, policy, bufs, t_max, *, bug=None, style="vector"):
    n = envs.num_envs
    obs, _ = envs.reset()
    running = np.ones(n, dtype=bool)
    T = 0
    for t in range(t_max):
        if bug != "no_clear":
            for k in ("valid", "ends", "rewards"):
                bufs[k][t] = 0
        bufs["obs"][t] = obs
        u = policy.greedy(obs) if bug == "greedy" else policy.sample(obs)
        bufs["actions"][t] = u
        obs2, r, term, trunc, _ = envs.step(policy.to_env(u))
        if style == "per_copy":
            for i in range(n):
                if running[i]:
                    bufs["valid"][t, i] = True
                    bufs["rewards"][t, i] = r[i]
                    if term[i] or trunc[i] or t == t_max - 1:
                        bufs["ends"][t, i] = True
                        running[i] = False
        else:
            ends = running & (term | (trunc if bug != "term_only" else False) | (t == t_max - 1))
            if bug == "no_clear":
                bufs["valid"][t][running] = True
                bufs["rewards"][t][running] = r[running]
                bufs["ends"][t][ends] = True
            else:
                bufs["valid"][t] = running & ~ends if bug == "valid_late" else running
                bufs["rewards"][t] = r if bug == "all_rewards" else np.where(running, r, 0)
                bufs["ends"][t] = ends
            running = running & ~ends
        obs = obs2
        T = t + 1
        if (not running.all()) if bug == "first" else (not running.any()):
            break
    T = t_max if bug == "untrimmed" else T
    return R.Batch(*(bufs[k][:T] for k in ("obs", "actions", "rewards", "valid", "ends")))


@pytest.mark.parametrize("style", ["vector", "per_copy"])
def test_collect_accepts_correct_code(style, capsys):
    check_collect_episodes(lambda *a: collect_impl(*a, style=style))
    check_collect_episodes(R.collect_episodes)
    assert capsys.readouterr().out.count("all checks passed") == 2


@pytest.mark.parametrize("bug, fragments", [
    ("valid_late", ["off by one"]),
    ("all_rewards", ["rewards of copies whose episode has already ended must be 0"]),
    ("first", ["until *every* copy has finished"]),
    ("untrimmed", ["return only the T steps you ran"]),
    ("greedy", ["actions", "policy.sample(obs)"]),
    ("no_clear", ["the buffers still hold the previous batch"]),
])
def test_collect_rejects_each_bug(bug, fragments):
    rejects(check_collect_episodes, lambda *a: collect_impl(*a, bug=bug), *fragments)


def test_collect_stub():
    def stub(envs, policy, bufs, t_max):
        raise NotImplementedError

    rejects(check_collect_episodes, stub, "not implemented yet")
    rejects(check_collect_episodes, lambda *a: None, "returned None")


# --- reinforce_update ------------------------------------------------------------------------------------------------
def update_impl(model, opt, vf_opt, batch, cfg, *, bug=None, returns="per_episode", unbiased=True):
    T, N = batch.rewards.shape
    if returns == "per_episode":  # each column is one episode: discounted_returns of its valid rewards
        G = np.zeros((T, N))
        for i in range(N):
            n_i = int(batch.valid[:, i].sum())
            g = 1.0 if bug == "no_gamma" else cfg.gamma
            G[:n_i, i] = discounted_returns(batch.rewards[:n_i, i], g)
            if bug == "whole":
                G[:n_i, i] = G[0, i]
            if bug == "shift":
                G[:n_i, i] = np.append(G[1:n_i, i], 0.0)
    else:
        disc = cfg.gamma ** np.arange(T)[:, None]
        G = np.cumsum((batch.rewards * disc)[::-1], 0)[::-1] / disc
    m = torch.as_tensor(batch.valid if bug != "pad" else np.ones_like(batch.valid))
    obs, act = torch.as_tensor(batch.obs)[m], torch.as_tensor(batch.actions)[m]
    ret = torch.as_tensor(G, dtype=torch.float32)[m]
    if cfg.baseline == "value":
        b = model.value(obs).detach()
    elif cfg.baseline == "mean":
        b = torch.as_tensor(G, dtype=torch.float32).mean() if bug == "mean_all" else ret.mean()
    else:
        b = 0.0
    adv = ret - b
    if cfg.normalize_adv and bug != "no_norm":
        adv = (adv - adv.mean()) / adv.std() if bug == "centred" else adv / (adv.std(unbiased=unbiased) + 1e-8)
    logp = model.log_prob(obs, act)
    ent = model.entropy(obs).mean()
    loss = -(logp * adv).mean() - cfg.entropy_coef * ent
    if bug != "no_zero_grad":
        opt.zero_grad()
    loss.backward()
    opt.step()
    out = {"episode_return": float(batch.rewards.sum(0).mean()), "loss": loss.item()}
    if vf_opt is not None:
        for _ in range(1 if bug == "one_vf_step" else cfg.vf_iters):
            vl = torch.nn.functional.mse_loss(model.value(obs), ret)
            vf_opt.zero_grad()
            vl.backward()
            vf_opt.step()
        out["value_loss"] = vl.item()
    return out


@pytest.mark.parametrize("fn", [lambda *a: update_impl(*a), lambda *a: update_impl(*a, returns="cumsum"),
                                lambda *a: update_impl(*a, unbiased=False), R.update],
                         ids=["per-episode", "cumsum", "population-std", "library"])
def test_update_accepts_correct_code(fn, capsys):
    check_reinforce_update(fn, train=False)
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("bug, fragments", [
    ("no_zero_grad", ["opt.zero_grad()"]),
    ("whole", ["whole episode's return"]),
    ("shift", ["off by one"]),
    ("no_gamma", ["discount the reward-to-go"]),
    ("pad", ["padding steps"]),
    ("mean_all", ["not over all T x N entries (the padding zeros"]),
    ("no_norm", ["cfg.normalize_adv is True"]),
    ("centred", ["do not subtract its mean"]),
    ("one_vf_step", ["cfg.vf_iters steps"]),
])
def test_update_rejects_each_bug(bug, fragments):
    rejects(check_reinforce_update, lambda *a: update_impl(*a, bug=bug), *fragments, train=False)


def test_update_rejects_a_baseline_fitted_first():
    def fitted_first(model, opt, vf_opt, batch, cfg):
        if vf_opt is not None:  # fit V on this batch, then use it as the baseline
            m = torch.as_tensor(batch.valid)
            obs = torch.as_tensor(batch.obs)[m]
            G = np.zeros(batch.rewards.shape)
            for i in range(G.shape[1]):
                G[:, i] = discounted_returns(batch.rewards[:, i], cfg.gamma)
            ret = torch.as_tensor(G, dtype=torch.float32)[m]
            for _ in range(cfg.vf_iters):
                vl = ((model.value(obs) - ret) ** 2).mean()
                vf_opt.zero_grad()
                vl.backward()
                vf_opt.step()
            out = update_impl(model, opt, None, batch, cfg)
            out["value_loss"] = vl.item()
            return out
        return update_impl(model, opt, vf_opt, batch, cfg)

    rejects(check_reinforce_update, fitted_first, "*before* fitting the value network", train=False)


def test_update_stub():
    def stub(model, opt, vf_opt, batch, cfg):
        raise NotImplementedError

    rejects(check_reinforce_update, stub, "not implemented yet", train=False)


def test_training_layer_with_correct_collection_and_update(capsys):
    check_reinforce_update(lambda *a: update_impl(*a), collect=lambda *a: collect_impl(*a, style="per_copy"))
    assert "trained CartPole-v1 to" in capsys.readouterr().out
