"""Part-6 checkers (td3_target, polyak_update) reject the real mistakes with their hints and accept right answers."""
import copy

import pytest
import torch

from lecturekit.checks import CheckFailed, check_polyak_update, check_td3_target


# --- td3_target: right answers ------------------------------------------------------------------------------------
def target_no_grad(reward, terminated, next_q1, next_q2, gamma):
    with torch.no_grad():
        return reward + gamma * (1 - terminated) * torch.min(next_q1, next_q2)


def target_detach_where(reward, terminated, next_q1, next_q2, gamma):
    q = torch.where(next_q1 < next_q2, next_q1, next_q2).detach()
    return reward + gamma * (1.0 - terminated) * q


def target_stack(reward, terminated, next_q1, next_q2, gamma):
    q = torch.stack([next_q1, next_q2]).min(dim=0).values
    return (reward + gamma * torch.logical_not(terminated.bool()).float() * q).detach()


@pytest.mark.parametrize("fn", [target_no_grad, target_detach_where, target_stack])
def test_td3_target_accepts(fn, capsys):
    check_td3_target(fn)
    assert "all checks passed" in capsys.readouterr().out


# --- td3_target: wrong answers ------------------------------------------------------------------------------------
def t_max(r, d, q1, q2, g):
    return (r + g * (1 - d) * torch.max(q1, q2)).detach()


def t_ddpg(r, d, q1, q2, g):
    return (r + g * (1 - d) * q1).detach()


def t_mean(r, d, q1, q2, g):
    return (r + g * (1 - d) * (q1 + q2) / 2).detach()


def t_no_done(r, d, q1, q2, g):
    return (r + g * torch.min(q1, q2)).detach()


def t_flipped(r, d, q1, q2, g):
    return (r + g * d * torch.min(q1, q2)).detach()


def t_no_gamma(r, d, q1, q2, g):
    return (r + (1 - d) * torch.min(q1, q2)).detach()


def t_with_grad(r, d, q1, q2, g):
    return r + g * (1 - d) * torch.min(q1, q2)


def t_column(r, d, q1, q2, g):
    return (r + g * (1 - d) * torch.min(q1, q2)).detach().unsqueeze(-1)


def t_numpy(r, d, q1, q2, g):
    return (r + g * (1 - d) * torch.min(q1, q2)).detach().numpy()


def t_none(r, d, q1, q2, g):
    y = (r + g * (1 - d) * torch.min(q1, q2)).detach()  # noqa: F841  (forgot to return it)


def t_mutates(r, d, q1, q2, g):
    with torch.no_grad():
        r += g * (1 - d) * torch.min(q1, q2)
    return r


def t_stub(r, d, q1, q2, g):
    raise NotImplementedError("write td3_target")


@pytest.mark.parametrize("fn, words", [
    (t_max, "SMALLER"), (t_ddpg, "only next_q1"), (t_mean, "averaged"), (t_no_done, "terminated is ignored"),
    (t_flipped, "flipped"), (t_no_gamma, "not discounted"), (t_with_grad, "no_grad"), (t_column, "shape (1, 1)"),
    (t_numpy, "torch tensor"), (t_none, "return"), (t_mutates, "modified its input"), (t_stub, "not implemented yet"),
])
def test_td3_target_rejects(fn, words):
    with pytest.raises(CheckFailed) as e:
        check_td3_target(fn)
    assert words in str(e.value), str(e.value)


def test_td3_target_column_fails_on_the_first_case():
    def column(r, d, q1, q2, g):
        return t_column(r, d, q1, q2, g)
    with pytest.raises(CheckFailed, match=r"B = 1, not terminated"):
        check_td3_target(column)


# --- polyak_update: right answers ---------------------------------------------------------------------------------
def polyak_loop(target, source, tau):
    with torch.no_grad():
        for p_t, p in zip(target.parameters(), source.parameters()):
            p_t.mul_(1 - tau).add_(tau * p)


def polyak_copy(target, source, tau):
    with torch.no_grad():
        for p_t, p in zip(target.parameters(), source.parameters()):
            p_t.copy_(tau * p + (1 - tau) * p_t)


def polyak_data(target, source, tau):
    for p_t, p in zip(target.parameters(), source.parameters()):
        p_t.data.copy_(tau * p.data + (1 - tau) * p_t.data)


def polyak_state_dict(target, source, tau):
    src = source.state_dict()
    with torch.no_grad():
        for k, v in target.state_dict().items():
            v.lerp_(src[k], tau)


@pytest.mark.parametrize("fn", [polyak_loop, polyak_copy, polyak_data, polyak_state_dict])
def test_polyak_accepts(fn, capsys):
    check_polyak_update(fn)
    assert "all checks passed" in capsys.readouterr().out


# --- polyak_update: wrong answers ---------------------------------------------------------------------------------
def p_swapped(target, source, tau):
    with torch.no_grad():
        for p_t, p in zip(target.parameters(), source.parameters()):
            p_t.copy_((1 - tau) * p + tau * p_t)


def p_rebind(target, source, tau):
    for p_t, p in zip(target.parameters(), source.parameters()):
        p_t = tau * p + (1 - tau) * p_t  # noqa: F841  (only rebinds the name)


def p_returns_new(target, source, tau):
    new = copy.deepcopy(target)
    with torch.no_grad():
        for p_t, p in zip(new.parameters(), source.parameters()):
            p_t.copy_(tau * p + (1 - tau) * p_t)
    return new


def p_mutates_source(target, source, tau):
    with torch.no_grad():
        for p_t, p in zip(target.parameters(), source.parameters()):
            p.mul_(tau).add_((1 - tau) * p_t)
            p_t.copy_(p)


def p_no_no_grad(target, source, tau):
    for p_t, p in zip(target.parameters(), source.parameters()):
        p_t.mul_(1 - tau).add_(tau * p)


def p_new_parameters(target, source, tau):
    for (name, p_t), p in zip(list(target.named_parameters()), source.parameters()):
        mod, attr = target, name
        if "." in name:
            path, attr = name.rsplit(".", 1)
            mod = target.get_submodule(path)
        setattr(mod, attr, torch.nn.Parameter((tau * p + (1 - tau) * p_t).detach()))


def p_weights_only(target, source, tau):
    with torch.no_grad():
        for (name, p_t), p in zip(target.named_parameters(), source.parameters()):
            if name.endswith("weight"):
                p_t.lerp_(p, tau)


@pytest.mark.parametrize("fn, words", [
    (p_swapped, "swapped"), (p_rebind, "rebinds"), (p_returns_new, "returned a new network"),
    (p_mutates_source, "SOURCE"), (p_no_no_grad, "torch.no_grad()"), (p_new_parameters, "replaced"),
    (p_weights_only, "bias"),
])
def test_polyak_rejects(fn, words):
    with pytest.raises(CheckFailed) as e:
        check_polyak_update(fn)
    assert words in str(e.value), str(e.value)


def test_polyak_stub_says_not_implemented():
    def stub(target, source, tau):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="not implemented yet"):
        check_polyak_update(stub)
