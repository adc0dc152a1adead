"""Checkers of part 6 (DDPG, TD3): `td3_target` and `polyak_update`."""
from __future__ import annotations

import copy

import torch
from torch import nn

from lecturekit.course.checking import Check, CheckFailed, checker, describe
from lecturekit.algos.td3 import clipped_double_q_target as _td3_target
from lecturekit.offpolicy import polyak_update as _polyak_update


# --- td3_target ---------------------------------------------------------------------------------------------------
def _target_cases():
    g = torch.Generator().manual_seed(6)

    def rand(b, p_term=0.2):
        return (torch.randn(b, generator=g), (torch.rand(b, generator=g) < p_term).float(),
                torch.randn(b, generator=g) * 5, torch.randn(b, generator=g) * 5)

    t = torch.tensor
    return [
        ("B = 1, not terminated", (t([1.0]), t([0.0]), t([2.0]), t([3.0])), 0.9),
        ("B = 1, terminated", (t([1.0]), t([1.0]), t([2.0]), t([3.0])), 0.9),
        ("B = 3, by hand", (t([1.0, 0.0, -1.0]), t([0.0, 1.0, 0.0]), t([2.0, 5.0, -4.0]), t([4.0, 1.0, -2.0])), 0.5),
        ("B = 8, gamma = 0", rand(8), 0.0),
        ("B = 8, gamma = 1", rand(8), 1.0),
        ("B = 256, gamma = 0.99 (a replay minibatch)", rand(256), 0.99),
    ]


def _target_mistakes(r, d, q1, q2, gamma) -> dict:
    q_min, q_max = torch.minimum(q1, q2), torch.maximum(q1, q2)
    return {
        "max": (r + gamma * (1 - d) * q_max,
                "you took the larger of the two estimates. Clipped double Q-learning uses the SMALLER one, "
                "min(next_q1, next_q2): taking the max makes the overestimation worse."),
        "ddpg": (r + gamma * (1 - d) * q1, "only next_q1 is used (DDPG's target): take min(next_q1, next_q2)."),
        "mean": (r + gamma * (1 - d) * (q1 + q2) / 2,
                 "you averaged the two critics; TD3 takes their minimum, min(next_q1, next_q2)."),
        "no_done": (r + gamma * q_min, "terminated is ignored: a terminal transition has no future, "
                                       "y = r + gamma * (1 - terminated) * min(...)."),
        "done_flipped": (r + gamma * d * q_min, "the mask is flipped: multiply by (1 - terminated), not terminated."),
        "no_gamma": (r + (1 - d) * q_min, "the future value is not discounted: multiply it by gamma."),
        "gamma_on_reward": (gamma * (r + (1 - d) * q_min), "gamma multiplies the whole sum; only the next state's "
                                                           "value is discounted: y = r + gamma * (...)."),
    }


def _with_grad(x: torch.Tensor) -> torch.Tensor:
    """x as the output of a network: a non-leaf tensor that requires grad (what the target critics return)."""
    w = torch.ones((), requires_grad=True)
    return x * w


@checker("td3_target")
def check_td3_target(fn) -> None:
    """Check `fn(reward, terminated, next_q1, next_q2, gamma)` against y = r + gamma (1 - terminated) min(q1, q2),
    shape (B,), carrying no gradient; cases from B = 1 to a minibatch of 256."""
    c = Check("td3_target")
    cases = _target_cases()
    for name, (r, d, q1, q2), gamma in cases:
        case = (f"{name}: reward={r.tolist()}, terminated={d.tolist()}, next_q1={q1.tolist()}, "
                f"next_q2={q2.tolist()}, gamma={gamma}" if len(r) <= 3 else f"{name}")
        # next_q1, next_q2 come out of the target critics: they require grad, the target must not
        got = c.call(fn, r, d, _with_grad(q1), _with_grad(q2), gamma, case=case)
        expected = _td3_target(r, d, q1, q2, gamma)
        c.expect_tensor(got, expected, case=case, mistakes=_target_mistakes(r, d, q1, q2, gamma),
                        hint="y has shape (B,), one target per transition.")
        if got.requires_grad:
            c.fail(case, expected, got,
                   hint="the target carries a gradient (requires_grad=True). y is a fixed regression target: "
                        "compute it under `with torch.no_grad():` or return `.detach()`ed values, otherwise the "
                        "critic loss would also push the target networks.")
    c.passed(f"{len(cases)} cases: terminal and non-terminal transitions, gamma in [0, 1], B up to 256, no gradient")


# --- polyak_update ------------------------------------------------------------------------------------------------
def _net(seed: int, sizes=(3, 8, 8, 1), requires_grad=True) -> nn.Module:
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(requires_grad)
    return net


def _linear(w: float, b: float, requires_grad=True) -> nn.Module:
    m = nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.fill_(w)
        m.bias.fill_(b)
    for p in m.parameters():
        p.requires_grad_(requires_grad)
    return m


def _polyak_cases():
    return [
        ("a Linear(2, 1) with weights 0 and bias 10 (target), weights 1 and bias 0 (source), tau = 0.1",
         lambda: (_linear(0.0, 10.0), _linear(1.0, 0.0)), 0.1),
        ("the same Linear layers, tau = 1 (copy the source)", lambda: (_linear(0.0, 10.0), _linear(1.0, 0.0)), 1.0),
        ("the same Linear layers, tau = 0 (keep the target)", lambda: (_linear(0.0, 10.0), _linear(1.0, 0.0)), 0.0),
        ("an MLP 3-8-8-1 whose target has requires_grad=False (as in DDPG/TD3), tau = 0.005",
         lambda: (_net(1, requires_grad=False), _net(2)), 0.005),
        ("an MLP 3-8-8-1 whose parameters require grad, tau = 0.3", lambda: (_net(3), _net(4)), 0.3),
    ]


def _snapshot(m: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in m.named_parameters()}


@checker("polyak_update")
def check_polyak_update(fn) -> None:
    """Check `fn(target, source, tau)`: every parameter of target becomes tau * source + (1 - tau) * target, in
    place (same Parameter objects, still leaves without a graph), source unchanged; on Linear layers and MLPs."""
    c = Check("polyak_update")
    cases = _polyak_cases()
    for name, make, tau in cases:
        target, source = make()
        expected_net = copy.deepcopy(target)
        _polyak_update(expected_net, source, tau)
        expected = _snapshot(expected_net)
        before_t, before_s = _snapshot(target), _snapshot(source)
        swapped = {k: tau * before_t[k] + (1 - tau) * before_s[k] for k in before_t}
        ids = {k: id(p) for k, p in target.named_parameters()}
        try:
            out = c.call(fn, target, source, tau, case=name)
        except CheckFailed as e:
            if "leaf Variable" in str(e) or "requires grad" in str(e):
                msg = "\n".join(line for line in str(e).splitlines() if not line.startswith("  hint:"))
                raise CheckFailed(f"{msg}\n  hint: the parameters require grad, so autograd forbids changing them in "
                                  "place while it is recording. Do the update under `with torch.no_grad():` "
                                  "(e.g. p_targ.mul_(1 - tau).add_(tau * p)).") from None
            raise
        for k, p in source.named_parameters():
            if not torch.equal(p.detach(), before_s[k]):
                c.fail(name, expected=f"source.{k} unchanged: {describe(before_s[k])}",
                       got=f"source.{k} became {describe(p.detach())}",
                       hint="your update changed the SOURCE network. Only the target moves: write the result into "
                            "the target's parameters, e.g. p_targ.mul_(1 - tau).add_(tau * p_src), "
                            "not p_src.mul_(tau).")
        for k, p in target.named_parameters():
            if ids[k] != id(p):
                c.fail(name, expected=f"target.{k} updated in place", got="a new Parameter object",
                       hint="the target's parameters were replaced by new tensors. Update them in place "
                            "(p.copy_(...), p.mul_(...).add_(...) or p.lerp_(...) under torch.no_grad()).")
            if p.grad_fn is not None:
                c.fail(name, expected=f"target.{k} without autograd history", got=f"grad_fn={p.grad_fn}",
                       hint="the update was recorded by autograd: do it under `with torch.no_grad():`.")
        stale = [k for k, p in target.named_parameters()
                 if torch.equal(p.detach(), before_t[k]) and not torch.equal(expected[k], before_t[k])]
        for k, p in target.named_parameters():
            got_k = p.detach()
            if k in stale and len(stale) == len(expected):
                hint = ("the target did not change. Assigning to the loop variable (p_targ = tau * p + ...) only "
                        "rebinds the name; change the tensor itself in place: p_targ.copy_(tau * p + (1 - tau) * "
                        "p_targ) under torch.no_grad().")
                if isinstance(out, nn.Module):
                    hint = ("the target did not change: you returned a new network instead. The caller keeps its "
                            "own `target`, so update its parameters in place (and return None).")
                c.fail(f"{name}, parameter {k}", expected[k], got_k, hint=hint)
            if k in stale:
                c.fail(f"{name}, parameter {k}", expected[k], got_k,
                       hint=f"`{k}` was not updated while other parameters were: update EVERY parameter (weights and "
                            "biases), e.g. zip(target.parameters(), source.parameters()).")
            c.expect_tensor(got_k, expected[k], case=f"{name}, parameter {k}", rtol=1e-5, atol=1e-6,
                            mistakes={"swapped": (swapped[k], "tau and 1 - tau are swapped: the target moves only a "
                                                              "small step tau towards the source, new = tau * source "
                                                              "+ (1 - tau) * target.")},
                            hint="new target = tau * source + (1 - tau) * old target, for every parameter.")
    c.passed(f"{len(cases)} cases: Linear layers and MLPs, tau in [0, 1], in place, source untouched, no graph")


# --- dpg_actor_loss -----------------------------------------------------------------------------------------------
def _dpg_nets(obs_dim: int, act_dim: int, seed: int):
    from lecturekit.offpolicy import DeterministicActor, QCritic

    torch.manual_seed(seed)  # the checker's own networks; the student's code never sees this seed
    return DeterministicActor(obs_dim, act_dim, -2.0 * torch.ones(act_dim), 2.0 * torch.ones(act_dim), (16, 16)), \
        QCritic(obs_dim, act_dim, (16, 16))


def _actor_grads(loss: torch.Tensor, actor: nn.Module) -> list:
    return list(torch.autograd.grad(loss, list(actor.parameters()), allow_unused=True, retain_graph=True))


@checker("dpg_actor_loss")
def check_dpg_actor_loss(fn) -> None:
    """Check `fn(q, actor, obs)` = -mean_s Q(s, mu(s)): value, scalar shape, and its gradient in the actor's weights
    (the deterministic policy gradient), compared with autograd of the reference."""
    from lecturekit.offpolicy import dpg_actor_loss as ref_loss

    c = Check("dpg_actor_loss")
    cases = [("one state (obs_dim 3, act_dim 1)", 3, 1, 1), ("a batch of 5 states (obs_dim 3, act_dim 1)", 3, 1, 5),
             ("a batch of 64 states (obs_dim 4, act_dim 2)", 4, 2, 64)]
    for i, (case, od, ad, B) in enumerate(cases):
        state = torch.random.get_rng_state()
        actor, critic = _dpg_nets(od, ad, seed=100 + i)
        torch.random.set_rng_state(state)
        obs = torch.randn(B, od, generator=torch.Generator().manual_seed(i))
        got = c.call(fn, critic, actor, obs.clone(), case=case, check_inputs=False)
        ref = ref_loss(critic, actor, obs)
        with torch.no_grad():
            a = actor(obs)
            mistakes = {"sign": (critic(obs, a).mean(), "the sign is flipped: the actor MAXIMISES Q, so the loss to "
                                                        "minimise is -mean(Q(s, mu(s)))."),
                        "sum": (-critic(obs, a).sum(), "average over the batch (.mean()), do not sum.")}
        c.expect_tensor(got, ref.detach(), case=case, mistakes=mistakes)
        if not got.requires_grad:
            c.fail(case, expected="a loss whose gradient reaches the actor", got="a tensor with no gradient",
                   hint="the loss is cut off from the actor: call q(obs, actor(obs)) without torch.no_grad(), "
                        ".detach() or .item(): the deterministic policy gradient flows from Q through the action.")
        for name, g, r in zip([n for n, _ in actor.named_parameters()], _actor_grads(got, actor),
                              _actor_grads(ref, actor)):
            if g is None or not torch.any(g != 0):
                c.fail(case + f" (gradient with respect to the actor's `{name}`)", expected=r, got="no gradient",
                       hint="no gradient reaches the actor: the action must be actor(obs) itself, not detached and "
                            "not an action from the replay batch, so that grad_a Q flows into mu_theta.")
            c.expect_tensor(g, r, case=case + f" (gradient with respect to the actor's `{name}`)", rtol=1e-4, atol=1e-6,
                            hint="the value is right but the gradient is not: is part of the computation detached?")
    c.passed(f"{len(cases)} batches from 1 to 64 states: value and the actor's gradient")
