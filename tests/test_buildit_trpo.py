"""The TRPO build-it checkers (Fisher-vector product, whole update): correct variants accepted (two conjugate-gradient
codes, the pieces in another order, the critic before the actor), each realistic bug rejected with its own message,
a stub reported as not implemented, and CartPole trained with a correct update.  Written independently of the
checker's own variants."""
import math

import pytest
import torch

from lecturekit import optim
from lecturekit.checks import check_fisher_vector_product, check_trpo_update
from lecturekit.course.checking import CheckFailed


# --- Fisher-vector products -----------------------------------------------------------------------------------------
def fvp_double_backprop(model, obs, damping, *, bug=None):
    params = list(model.pi.parameters())
    with torch.no_grad():
        old = torch.log_softmax(model.pi(obs), -1)
    if bug == "old_grad":
        old = torch.log_softmax(model.pi(obs), -1)
    new = torch.log_softmax(model.pi(obs), -1)
    kl = (old.exp() * (old - new)).sum(-1)
    kl = kl.sum() if bug == "sum" else kl.mean()
    g = optim.flat_grad(kl, params, create_graph=True)

    def fvp(v):
        out = optim.flat_grad(g @ v, params, retain_graph=True)
        return out if bug == "no_damping" else out + damping * v

    return fvp


def fvp_jvp(model, obs, damping):
    # another correct route: F v = J^T M J v with the softmax's Fisher M = diag(p) - p p^T (Gauss-Newton form)
    params = list(model.pi.parameters())
    theta = optim.get_flat_params(params)
    with torch.no_grad():
        p = torch.softmax(model.pi(obs), -1)

    def logits(th):
        return optim.call_with_flat_params(model.pi, th, obs)

    def fvp(v):
        _, jv = torch.func.jvp(logits, (theta,), (v,))
        mjv = p * jv - p * (p * jv).sum(-1, keepdim=True)
        _, vjp = torch.func.vjp(logits, theta)
        return vjp(mjv / obs.shape[0])[0] + damping * v

    return fvp


def fvp_reversed_kl(model, obs, damping):
    # KL(pi_theta || pi_k) has the same Hessian at theta_k as KL(pi_k || pi_theta): also right
    params = list(model.pi.parameters())
    old = model.pi(obs).detach()
    g = optim.flat_grad(optim.kl_categorical(model.pi(obs), old).mean(), params, create_graph=True)
    return lambda v: optim.flat_grad(g @ v, params, retain_graph=True) + damping * v


@pytest.mark.parametrize("fn", [fvp_double_backprop, fvp_jvp, fvp_reversed_kl],
                         ids=["double-backprop", "jvp-gauss-newton", "reversed-kl"])
def test_fvp_accepts_correct_products(fn, capsys):
    check_fisher_vector_product(fn)
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("bug, fragment", [("no_damping", "add damping * v"), ("sum", "average the KL over the states"),
                                           ("old_grad", "must be constants")])
def test_fvp_rejects_each_bug(bug, fragment):
    with pytest.raises(CheckFailed) as e:
        check_fisher_vector_product(lambda m, o, d: fvp_double_backprop(m, o, d, bug=bug))
    assert fragment in str(e.value)


def test_fvp_rejects_a_value_instead_of_a_function_and_a_lost_graph():
    with pytest.raises(CheckFailed, match="return the function"):
        check_fisher_vector_product(lambda m, o, d: torch.zeros(3))

    def no_retain(model, obs, damping):
        params = list(model.pi.parameters())
        old = model.pi(obs).detach()
        kl = optim.kl_categorical(old, model.pi(obs)).mean()
        g = optim.flat_grad(kl, params, create_graph=True)
        return lambda v: optim.flat_grad(g @ v, params) + damping * v  # frees the graph after one product

    with pytest.raises(CheckFailed, match="product number 2"):
        check_fisher_vector_product(no_retain)


def test_fvp_rejects_other_wrong_products():
    def damping_twice(model, obs, damping):
        f = fvp_double_backprop(model, obs, damping)
        return lambda v: f(v) + damping * v

    with pytest.raises(CheckFailed, match="damping=0.1") as e:
        check_fisher_vector_product(damping_twice)
    assert "d/dtheta (grad KL . v) + damping v" in str(e.value)

    def in_place(model, obs, damping):
        f = fvp_double_backprop(model, obs, 0.0)
        return lambda v: f(v) + v.mul_(damping)

    with pytest.raises(CheckFailed, match="modified its input"):
        check_fisher_vector_product(in_place)

    def column(model, obs, damping):
        f = fvp_double_backprop(model, obs, damping)
        return lambda v: f(v)[:, None]

    with pytest.raises(CheckFailed, match="shape"):
        check_fisher_vector_product(column)

    def reversed_params(model, obs, damping):
        params = list(model.pi.parameters())[::-1]  # flattened in another order than model.pi.parameters()
        old = model.pi(obs).detach()
        g = optim.flat_grad(optim.kl_categorical(old, model.pi(obs)).mean(), params, create_graph=True)
        return lambda v: optim.flat_grad(g @ v, params, retain_graph=True) + damping * v

    with pytest.raises(CheckFailed, match="wrong answer"):
        check_fisher_vector_product(reversed_params)


# --- the whole update -----------------------------------------------------------------------------------------------
def cg_textbook(Avp, b, iters):
    """Conjugate gradient written from the textbook, with the residual recomputed from its definition."""
    x = torch.zeros_like(b)
    r = b.clone()  # b - A x at x = 0
    d = r.clone()
    for _ in range(iters):
        rr = r @ r
        if rr < 1e-10:
            break
        Ad = Avp(d)
        alpha = rr / (d @ Ad)
        x = x + alpha * d
        r = r - alpha * Ad
        d = r + (r @ r) / rr * d
    return x


def trpo_impl(model, vf_opt, ro, cfg, *, bug=None, cg="library", critic_first=False, unbiased=True):
    adv, ret = ro.advantages(cfg.gamma, cfg.gae_lambda)
    m = torch.as_tensor(ro.valid)
    obs, act, logp_old, adv, ret = ro.obs[m], ro.actions[m], ro.logp[m], adv[m], ret[m]
    if cfg.normalize_adv and bug != "no_norm":
        adv = (adv - adv.mean()) / (adv.std(unbiased=unbiased) + 1e-8)

    def fit_critic():
        k = max(1, min(cfg.vf_minibatches, len(obs)))
        for i in range(cfg.vf_iters):
            idx = torch.arange(i % k, len(obs), k)
            loss = (model.value(obs[idx]) - ret[idx]).pow(2).mean()
            if bug != "vf_no_zero_grad":
                vf_opt.zero_grad()
            loss.backward()
            vf_opt.step()
        return loss.item()

    if critic_first:  # the critic does not touch the actor, and the advantages come from the stored values
        value_loss = fit_critic()
    params = list(model.pi.parameters())
    old = model.pi(obs).detach()

    def surr(th):
        lp = torch.log_softmax(optim.call_with_flat_params(model.pi, th, obs), -1).gather(1, act[:, None])[:, 0]
        return (torch.exp(lp - logp_old) * adv).mean()

    def kl(th):
        return optim.kl_categorical(old, optim.call_with_flat_params(model.pi, th, obs)).mean()

    theta = optim.get_flat_params(params)
    g = optim.flat_grad((torch.exp(model.log_prob(obs, act) - logp_old) * adv).mean(), params)
    fvp = fvp_double_backprop(model, obs, cfg.damping, bug="no_damping" if bug == "no_damping" else None)
    if bug == "vanilla":
        x = g
    else:
        x = cg_textbook(fvp, g, cfg.cg_iters) if cg == "textbook" else optim.conjugate_gradient(fvp, g, cfg.cg_iters)
    scale = math.sqrt((cfg.max_kl if bug == "no_two" else 2 * cfg.max_kl) / float(x @ fvp(x)))
    step = -scale * x if bug == "minus" else scale * x
    with torch.no_grad():
        base, new = surr(theta).item(), theta
        for j in range(1 if bug == "no_ls" else cfg.max_backtracks):
            cand = theta + cfg.backtrack ** j * step
            if bug == "no_ls" or (kl(cand).item() <= cfg.max_kl or bug == "ls_no_kl") and surr(cand).item() > base:
                new = cand
                break
        d_kl, gain = (kl(new).item(), surr(new).item() - base) if new is not theta else (0.0, 0.0)
    optim.set_flat_params(params, new)
    if not critic_first:
        value_loss = fit_critic()
    return {"kl": d_kl, "surrogate_gain": gain, "value_loss": value_loss}


def rejects(fn, *fragments):
    with pytest.raises(CheckFailed) as e:
        check_trpo_update(fn, train=False)
    msg = str(e.value)
    for f in fragments:
        assert f in msg, f"expected {f!r} in:\n{msg}"
    return msg


@pytest.mark.parametrize("variant", [dict(cg="library"), dict(cg="textbook"), dict(cg="textbook", critic_first=True),
                                     dict(unbiased=False)],
                         ids=["cg-library", "cg-textbook", "critic-first", "population-std"])
def test_accepts_correct_updates(variant, capsys):
    check_trpo_update(lambda *a: trpo_impl(*a, **variant), train=False)
    assert "all checks passed" in capsys.readouterr().out


def test_accepts_the_library_update(capsys):
    from lecturekit.algos import trpo

    check_trpo_update(trpo.update, train=False)
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("bug, fragments", [
    ("vanilla", ["plain gradient g"]),
    ("no_two", ["the 2 belongs there"]),
    ("no_ls", ["try theta + backtrack^j"]),
    ("ls_no_kl", ["exact mean KL"]),
    ("no_damping", ["pass the damping"]),
    ("no_norm", ["cfg.normalize_adv is True"]),
    ("minus", ["step uphill"]),
    ("vf_no_zero_grad", ["vf_opt.zero_grad()"]),
])
def test_rejects_each_bug_with_its_message(bug, fragments):
    rejects(lambda *a: trpo_impl(*a, bug=bug), *fragments)


def test_rejects_a_critic_on_the_whole_batch():
    def critic_whole_batch(model, vf_opt, ro, cfg):
        return trpo_impl(model, vf_opt, ro, type(cfg)(**{**cfg.__dict__, "vf_minibatches": 1}))

    rejects(critic_whole_batch, "cycling through them")


def test_stub(capsys):
    def stub(model, vf_opt, ro, cfg):
        raise NotImplementedError

    rejects(stub, "not implemented yet")


def test_training_layer_with_a_correct_update(capsys):
    check_trpo_update(lambda *a: trpo_impl(*a, cg="textbook"))
    assert "trained CartPole-v1 to" in capsys.readouterr().out
