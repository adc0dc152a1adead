"""Checkers of part 6 (DDPG, TD3): `td3_target`, `polyak_update`, and the build-it `td3_update`."""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from lecturekit.algos import td3 as _td3
from lecturekit.buffers import Batch
from lecturekit.course.checking import Check, CheckFailed, checker, describe
from lecturekit.algos.td3 import clipped_double_q_target as _td3_target
from lecturekit.course.updatecheck import Mistake, Trial, check_training, check_update, trained
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
class _QCritic(nn.Module):
    """Q(s, a): one MLP on [s, a] -> (B,), the single critic the DPG actor loss climbs."""

    def __init__(self, obs_dim: int, act_dim: int, hidden, generator):
        super().__init__()
        from lecturekit.nets import mlp

        self.net = mlp([obs_dim + act_dim, *hidden, 1], activation=nn.ReLU, generator=generator)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


def _dpg_nets(obs_dim: int, act_dim: int, seed: int):
    from lecturekit.nets import DeterministicActor

    gen = torch.Generator().manual_seed(seed)  # the checker's own networks; the student's code never sees this seed
    return DeterministicActor(obs_dim, act_dim, -2.0 * torch.ones(act_dim), 2.0 * torch.ones(act_dim), (16, 16),
                              generator=gen), _QCritic(obs_dim, act_dim, (16, 16), gen)


def _actor_grads(loss: torch.Tensor, actor: nn.Module) -> list:
    return list(torch.autograd.grad(loss, list(actor.parameters()), allow_unused=True, retain_graph=True))


@checker("dpg_actor_loss")
def check_dpg_actor_loss(fn) -> None:
    """Check `fn(q, actor, obs)` = -mean_s Q(s, mu(s)): value, scalar shape, and its gradient in the actor's weights
    (the deterministic policy gradient), compared with autograd of the reference."""
    from lecturekit.algos.td3 import dpg_actor_loss as ref_loss

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


# =====================================================================================================================
# Build-it: the whole TD3 update (DDPG is the case twin=False, target_noise=0, policy_delay=1)
#
# Three layers, on the machinery of `lecturekit.course.updatecheck`.  (1) One update on a fixed batch with fixed
# smoothing noise, from an agent that has trained a little (warm Adam state, the last update's gradients still in
# .grad, target networks that differ from the online ones): the gradients each optimizer sees, the parameter and
# target-parameter changes and the optimizer states must equal the reference's within rtol 1e-4 (relative to the
# size of each change).  The critic step may come before or after the actor step.  (2) Before that comparison, what
# the update did is watched: the networks it called on s' and the target action a' it gave the target critics, and
# whether the critic loss reached the target networks (the fixture's targets require grad so that it shows); after
# it, a catalogue of silent bugs, each re-enacted on the same agent, names the one the update matches.  (3) The
# update trains Pendulum-v1 through the seam.  The fixtures and the recorder are shared with `checks/sac.py`.
# =====================================================================================================================
def _fixture_spaces(act_dim: int = 2):
    """A Pendulum-like task: 3-D observations, a 2-D action box with different half-ranges (2 and 1)."""
    obs = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    act = gym.spaces.Box(np.array([-2.0, -1.0][:act_dim], np.float32), np.array([2.0, 1.0][:act_dim], np.float32))
    return obs, act


def _fixture_batch(seed: int, b: int = 32, act_dim: int = 2) -> Batch:
    """B transitions: a few terminated, a few truncated (time limit: must still bootstrap), actions inside the box."""
    g = torch.Generator().manual_seed(seed)
    terminated, truncated = torch.zeros(b), torch.zeros(b)
    terminated[[1, 5, 9]] = 1.0
    truncated[[2, 6, 10, 14]] = 1.0
    half = torch.tensor([2.0, 1.0][:act_dim])
    return Batch(obs=torch.randn(b, 3, generator=g), action=(2 * torch.rand(b, act_dim, generator=g) - 1) * half,
                 reward=torch.randn(b, generator=g) - 1.0, next_obs=torch.randn(b, 3, generator=g),
                 terminated=terminated, truncated=truncated)


def _fixture_noise(seed: int, b: int = 32, act_dim: int = 2) -> torch.Tensor:
    """Standard normals with a few large entries, so that clipping the smoothing noise and the action box matters."""
    noise = torch.randn(b, act_dim, generator=torch.Generator().manual_seed(seed))
    noise[:6] = torch.tensor([[3.5, -3.5], [-4.0, 3.0], [4.5, 4.0], [-3.0, -4.5], [3.2, 0.1], [0.2, -3.8]])[:, :act_dim]
    return noise


def _box(actor: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(center, half_range) of an actor's action box (kept on the actor or on its `squash` module)."""
    sq = getattr(actor, "squash", actor)
    return sq.center, sq.half_range


def _make_agent(mod, cfg, seed: int):
    """The course's agent of algorithm module `mod` on the fixture task, its weights drawn from `seed`."""
    _, act_space = _fixture_spaces()
    return mod.Agent(3, act_space.shape[0], torch.as_tensor(act_space.low), torch.as_tensor(act_space.high), cfg,
                     torch.Generator().manual_seed(seed))


def _critic_modules(prefix: str, critic: nn.Module) -> dict:
    """The modules whose calls show a critic at work: the twin critic and, where it has them, its two halves."""
    mods = {prefix: critic}
    for k in ("q1", "q2"):
        if isinstance(getattr(critic, k, None), nn.Module):
            mods[f"{prefix}.{k}"] = getattr(critic, k)
    return mods


def _randomize(module: nn.Module, seed: int) -> None:
    """Perturb the weights (target networks that differ from the online ones, as after some training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


class _Recorder:
    """Forward hooks that record which network an update called, and on which inputs."""

    def __init__(self, modules: dict):
        self.calls, self.handles = [], []
        for name, m in modules.items():
            if m is not None:
                self.handles.append(m.register_forward_hook(self._hook(name), with_kwargs=True))

    def _hook(self, name):
        def hook(module, args, kwargs, output):
            self.calls.append((name, [a.detach().clone() for a in (*args, *kwargs.values())
                                      if isinstance(a, torch.Tensor)]))
        return hook

    def on(self, name: str, x: torch.Tensor) -> list:
        """The inputs of the calls of network `name` whose first input is x (e.g. the batch's next observations)."""
        return [ins for n, ins in self.calls if n.split(".")[0] == name and ins and ins[0].shape == x.shape
                and torch.equal(ins[0], x)]

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _grads_in(modules) -> bool:
    return any(p.grad is not None and bool(torch.any(p.grad != 0)) for m in modules for p in m.parameters())


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def _with_variant(reference, **kw):
    def fn(agent, batch, step, noise):
        return reference(agent, batch, step, noise, **kw)
    return fn


def _update_trial(make_agent, groups, optimizers, batch, step, noise) -> Trial:
    agent = make_agent()
    return Trial(args=(agent, batch, step, noise), groups={g: getattr(agent, g) for g in groups},
                 optimizers={o: getattr(agent, o) for o in optimizers if getattr(agent, o) is not None},
                 inputs={"batch": batch, "noise": noise})


# --- td3_update: the reference, with the silent bugs it can re-enact ------------------------------------------------
TD3_GROUPS = ["actor", "critic", "actor_targ", "critic_targ"]


def _td3_target_action(agent, next_obs: torch.Tensor, noise: torch.Tensor, bugs=()) -> torch.Tensor:
    """a' = clip(mu'(s') + clip(sigma * noise, -c, c) * half_range, low, high)   (sigma, c in half-range units)."""
    cfg = agent.cfg
    actor = agent.actor if "online_actor_target" in bugs else agent.actor_targ
    a2 = actor(next_obs)
    if cfg.target_noise <= 0 or "noise_ignored" in bugs:
        return a2
    center, half = _box(actor)
    eps = noise if "sigma_missing" in bugs else cfg.target_noise * noise
    if "noise_unclipped" not in bugs:
        eps = eps.clamp(-cfg.noise_clip, cfg.noise_clip)
    if "no_half_range" not in bugs:
        eps = eps * half
    a2 = a2 + eps
    if "no_box_clip" in bugs:
        return a2
    return torch.max(torch.min(a2, center + half), center - half)


def _td3_reference(agent, b: Batch, step: int, noise: torch.Tensor, order: str = "critic_first", bugs=()) -> dict:
    """The TD3 update (DDPG when twin=False, target_noise=0, policy_delay=1), optionally with named bugs."""
    cfg, critic = agent.cfg, agent.critic
    with torch.no_grad():
        a2 = _td3_target_action(agent, b.next_obs, noise, bugs)
        qt = agent.critic if "online_critic_target" in bugs else agent.critic_targ
        nq1, nq2 = qt(b.next_obs, a2)
        if "max_target" in bugs:
            next_v = torch.max(nq1, nq2)
        elif "mean_target" in bugs:
            next_v = (nq1 + nq2) / 2
        elif (cfg.twin and "q1_target" not in bugs) or "min_without_twin" in bugs:
            next_v = torch.min(nq1, nq2)
        else:
            next_v = nq1
        done = {"truncated_done": b.truncated, "either_done": torch.clamp(b.terminated + b.truncated, max=1.0),
                "no_done": torch.zeros_like(b.terminated), "done_flipped": 1.0 - b.terminated}
        done = next((done[k] for k in done if k in bugs), b.terminated)
        y = b.reward + cfg.gamma * (1.0 - done) * next_v
    out = {}
    actor_moves = step % cfg.policy_delay == 0 or "every_step" in bugs
    tau = 1.0 - cfg.tau if "tau_swapped" in bugs else cfg.tau

    def polyak():
        if "no_polyak" not in bugs:
            _polyak_update(agent.actor_targ, agent.actor, tau)
            _polyak_update(agent.critic_targ, agent.critic, tau)

    def critic_step():
        q1, q2 = critic(b.obs, b.action)
        loss = (q1 - y).pow(2).mean()
        if cfg.twin and "q1_only_loss" not in bugs:
            loss = loss + (q2 - y).pow(2).mean()
        if "no_zero_grad_critic" not in bugs:
            agent.critic_opt.zero_grad()
        loss.backward()
        agent.critic_opt.step()
        out.update(critic_loss=loss.item(), q1=q1.mean().item())

    def actor_step():
        a = agent.actor(b.obs)
        q1, q2 = critic(b.obs, a)
        q = torch.min(q1, q2) if "actor_min" in bugs else q1
        loss = q.mean() if "actor_sign" in bugs else -q.mean()
        if "no_zero_grad_actor" not in bugs:
            agent.actor_opt.zero_grad()
        loss.backward(inputs=list(agent.actor.parameters()))
        agent.actor_opt.step()
        out.update(actor_loss=loss.item())

    if "polyak_first" in bugs and actor_moves:
        polyak()
    steps = [critic_step, actor_step] if order == "critic_first" else [actor_step, critic_step]
    for fn in steps:
        if fn is critic_step or actor_moves:
            fn()
    if "polyak_first" not in bugs and (actor_moves or "targets_every_step" in bugs):
        polyak()
    return out


def reference_td3_update(agent, batch: Batch, step: int, noise: torch.Tensor) -> dict:
    """The checker's reference TD3 update (critic step first), the seam's signature."""
    return _td3_reference(agent, batch, step, noise)


TD3_BUGS = {  # name -> what the student is told (each re-enacted by `_td3_reference` and compared)
    "every_step": "the actor moved in an update where step % policy_delay != 0. TD3 delays the actor: it (and the "
                  "target networks) move only when step % cfg.policy_delay == 0; the critics move every update.",
    "targets_every_step": "the target networks moved in an update where the actor does not: TD3 moves the targets "
                          "together with the actor, only when step % cfg.policy_delay == 0.",
    "actor_min": "the actor climbs min(Q1, Q2). TD3's actor climbs Q1 alone: actor loss = -critic.q1(s, actor(s))"
                 ".mean(); the minimum belongs to the critics' target.",
    "actor_sign": "the actor loss has the wrong sign: minimise -Q1(s, mu(s)) (the actor climbs Q), not +Q1.",
    "no_zero_grad_critic": "the critic's gradient includes the previous update's: call critic_opt.zero_grad() "
                           "before loss.backward() (PyTorch adds new gradients to the ones stored in .grad).",
    "no_zero_grad_actor": "the actor's gradient includes the previous update's: call actor_opt.zero_grad() before "
                          "the actor loss's backward() (PyTorch adds new gradients to the ones stored in .grad).",
    "tau_swapped": "the target networks jumped almost onto the online ones: tau and 1 - tau are swapped. "
                   "target <- tau * online + (1 - tau) * target, with tau small (cfg.tau).",
    "no_polyak": "the target networks did not move: after the actor step, move both targets by Polyak averaging "
                 "(polyak_update(agent.actor_targ, agent.actor, cfg.tau), and the same for the critics).",
    "polyak_first": "the target networks moved towards the networks as they were BEFORE this update's gradient "
                    "steps: do the Polyak updates last.",
    "truncated_done": "the target uses batch.truncated as the end of the episode. A time limit (truncated) does not "
                      "end the MDP: bootstrap there; only batch.terminated stops the bootstrap.",
    "either_done": "the target stops bootstrapping at truncated transitions too. Only batch.terminated ends the MDP; "
                   "a time limit (truncated) still has a future: y = r + gamma * (1 - terminated) * min(...).",
    "no_done": "terminated is ignored: y = r + gamma * (1 - terminated) * next value (no future after the end).",
    "done_flipped": "the mask is flipped: multiply by (1 - terminated), not terminated.",
    "max_target": "the target takes the larger of the two target critics; clipped double Q takes the smaller.",
    "mean_target": "the target averages the two target critics; clipped double Q takes their minimum.",
    "q1_target": "the target uses only the first target critic although cfg.twin is True: y uses min(Q1', Q2').",
    "min_without_twin": "with cfg.twin = False (DDPG) there is one critic: the target is Q1'(s', a') alone, and the "
                        "critic loss regresses Q1 only.",
    "q1_only_loss": "only the first critic is trained: with cfg.twin both critics regress on the same y, "
                    "loss = mean((Q1 - y)^2) + mean((Q2 - y)^2).",
    "online_actor_target": "the target action comes from the online actor: a' = mu'(s') uses agent.actor_targ.",
    "online_critic_target": "the target uses the online critics: y uses agent.critic_targ (the slow copies).",
    "noise_unclipped": "the smoothing noise is not clipped: eps = clip(cfg.target_noise * noise, -cfg.noise_clip, "
                       "cfg.noise_clip), then times the box's half-range (agent.high - agent.low) / 2.",
    "sigma_missing": "the smoothing noise is not scaled by cfg.target_noise (noise is standard normal).",
    "no_half_range": "the smoothing noise is in half-range units: multiply it by the action box's half-range, "
                     "(agent.high - agent.low) / 2.",
    "no_box_clip": "the smoothed target action leaves the action box: clip a' to [agent.low, agent.high].",
    "noise_ignored": "the target action is not smoothed: add the clipped noise (cfg.target_noise > 0).",
}
_POLYAK_HINT = ("The targets move after the gradient steps, in the updates where the actor moves: "
                "polyak_update(agent.actor_targ, agent.actor, cfg.tau) and the same for the critics, i.e. "
                "target <- tau * online + (1 - tau) * target.")
TD3_HINTS = {  # updatecheck's group hints: what each piece computes
    "critic": "The critic step: y = r + gamma * (1 - terminated) * min(Q1'(s', a'), Q2'(s', a')) (Q1' alone when "
              "cfg.twin is False), from the target networks under no_grad; loss = mean((Q1 - y)^2) + "
              "mean((Q2 - y)^2) at the batch's (s, a); critic_opt.zero_grad(), backward(), critic_opt.step().",
    "actor": "The actor step, only when step % cfg.policy_delay == 0: loss = -Q1(s, actor(s)).mean(); "
             "actor_opt.zero_grad(), backward(), actor_opt.step().",
    "actor_targ": _POLYAK_HINT,
    "critic_targ": _POLYAK_HINT,
    "steps": "one critic_opt.step() per update; one actor_opt.step() when step % cfg.policy_delay == 0, else none.",
}
TARGET_ACTION_BUGS = ["noise_unclipped", "sigma_missing", "no_half_range", "no_box_clip", "noise_ignored"]
TARGET_GRAD = ("the target y carries a gradient: the critic loss's backward() reached the target networks (their "
               "parameters now have a .grad). Compute a' and y under `with torch.no_grad():`.")


def _td3_fixture(cfg, seed: int = 0):
    """A TD3 agent on the fixture task that has trained a little: warm optimizers, gradients left in .grad by its
    last update, target networks that differ from the online ones (and require grad, so that a target computed with
    autograd on leaves a .grad there), and a target actor near the box's edges (so that clipping a' matters)."""
    agent = _make_agent(_td3, cfg, seed)
    _randomize(agent.actor_targ, seed + 1)
    _randomize(agent.critic_targ, seed + 2)
    with torch.no_grad():
        agent.actor_targ.net[-1].bias.add_(torch.tensor([1.5, -1.5]))
    for p in [*agent.actor_targ.parameters(), *agent.critic_targ.parameters()]:
        p.requires_grad_(True)
    _td3_reference(agent, _fixture_batch(seed + 10), 0, _fixture_noise(seed + 11))
    return agent


def _td3_cases():
    td3_cfg = _td3.Config(hidden=(16, 16), tau=0.05)
    ddpg_cfg = _td3.Config(hidden=(16, 16), tau=0.05, twin=False, target_noise=0.0, policy_delay=1)
    return [("TD3 (twin, target_noise=0.2, noise_clip=0.5, policy_delay=2)", td3_cfg, [1, 2]),
            ("DDPG (twin=False, target_noise=0, policy_delay=1)", ddpg_cfg, [1])]


def _td3_watch(c: Check, update, case: str):
    """The student's update, watched: the networks it calls on s', the target action a' it hands the target
    critics, and whether the critic loss reached the target networks."""

    def watched(agent, batch, step, noise):
        with torch.no_grad():
            expected_a2 = _td3_target_action(agent, batch.next_obs, noise)
            wrong_a2 = {bug: _td3_target_action(agent, batch.next_obs, noise, (bug,)) for bug in TARGET_ACTION_BUGS}
        rec = _Recorder({"actor": agent.actor, "actor_targ": agent.actor_targ,
                         **_critic_modules("critic", agent.critic),
                         **_critic_modules("critic_targ", agent.critic_targ)})
        try:
            out = update(agent, batch, step, noise)
        finally:
            rec.close()
        s2 = batch.next_obs
        targ_calls = rec.on("critic_targ", s2)
        if not targ_calls and rec.on("critic", s2):
            c.fail(case, hint=TD3_BUGS["online_critic_target"])
        if rec.on("actor", s2) and not rec.on("actor_targ", s2):
            c.fail(case, hint=TD3_BUGS["online_actor_target"])
        if targ_calls and len(targ_calls[0]) >= 2 and not _close(targ_calls[0][1], expected_a2):
            got_a2 = targ_calls[0][1]
            hint = next((TD3_BUGS[bug] for bug, a2 in wrong_a2.items()
                         if _close(got_a2, a2) and not _close(a2, expected_a2)),
                        "a' = clip(mu'(s') + clip(cfg.target_noise * noise, -cfg.noise_clip, cfg.noise_clip) * h, "
                        "agent.low, agent.high), with mu' = agent.actor_targ, h = (agent.high - agent.low) / 2 and "
                        "`noise` the given standard normals.")
            c.fail(f"{case}: the target action a' given to the target critics", expected_a2, got_a2, hint=hint)
        if _grads_in([agent.actor_targ, agent.critic_targ]):
            c.fail(case, hint=TARGET_GRAD)
        return out

    return watched


@checker("td3_update")
def check_td3_update(update, *, train: bool = True, seeds=(0, 1), budget: int = 9_000) -> None:
    """Check `update(agent, batch, step, noise) -> dict`, the whole TD3 update (DDPG: twin=False, target_noise=0,
    policy_delay=1), in three layers:

    1. one update on a fixed batch of 32 transitions (some terminated, some truncated) with fixed smoothing noise,
       at step 1 of TD3 (the critics move, the actor and the targets do not), at step 2 (all move) and in DDPG, lands
       where the reference does: gradients, parameter and target changes, Adam states (rtol 1e-4); the critic step
       may come before or after the actor step;
    2. if not, the message names the piece or the silent bug (no zero_grad, a target that carries gradient or uses
       the online networks, the actor updated every step, the actor on min(Q1, Q2), unclipped smoothing noise,
       tau and 1 - tau swapped, truncated treated as terminated, ...);
    3. with `train=True`: the update trains Pendulum-v1 to an evaluation return of -200 (10 episodes, every 500
       steps) within `budget` environment steps, on the first of `seeds` that makes it.
    """
    c = Check("td3_update")
    n = 0
    for name, cfg, steps in _td3_cases():
        for step in steps:
            batch, noise = _fixture_batch(100 + step), _fixture_noise(200 + step)
            moves = "critic, actor and targets" if step % cfg.policy_delay == 0 else "critic only"
            case = f"{name}, one update at step={step} ({moves}) on a batch of 32 transitions"

            def make(cfg=cfg, batch=batch, step=step, noise=noise):
                return _update_trial(lambda: _td3_fixture(cfg), TD3_GROUPS, ["actor_opt", "critic_opt"], batch,
                                     step, noise)

            check_update(c, _td3_watch(c, update, case), reference_td3_update, make, case=case,
                         accepted=[_with_variant(_td3_reference, order="actor_first")],
                         mistakes=[Mistake(bug, _with_variant(_td3_reference, bugs=(bug,)), hint)
                                   for bug, hint in TD3_BUGS.items()],
                         stats_keys=("critic_loss",), group_hints=TD3_HINTS)
            n += 1
    summary = f"{n} updates (TD3 at steps 1 and 2, DDPG) land where the reference does"
    if train:
        summary += "; " + _train_layer(c, "td3", update, seeds, budget)
    c.passed(summary)


# --- layer 3: training Pendulum-v1 through the seam ----------------------------------------------------------------
TRAIN_ENV, TRAIN_TARGET, TRAIN_EVAL_EVERY, TRAIN_EVAL_EPISODES = "Pendulum-v1", -200.0, 500, 10


def train_with_update(algo: str, update, cfg=None, *, steps: int, seed: int = 0, target: float | None = TRAIN_TARGET,
                      callback=None, env_id: str = TRAIN_ENV):
    """Train `algo` ('td3' or 'sac') on `env_id` with `update` in place of the course's update; returns the History.

    The noise the seam hands over comes from the run's generator: for TD3 a (B, act_dim) standard normal for the
    target smoothing, for SAC a pair (eps_next, eps_now) of them.
    """
    from lecturekit.algos import sac as _sac
    from lecturekit.evaluation import Run

    mod = {"td3": _td3, "sac": _sac}[algo]
    run = Run(steps=steps, seed=seed, target=target, eval_every=TRAIN_EVAL_EVERY, eval_episodes=TRAIN_EVAL_EPISODES,
              callback=callback)
    return mod.train(env_id, cfg or mod.Config(), run, update=update)


def _train_layer(c: Check, algo: str, update, seeds, budget: int) -> str:
    result = check_training(c, lambda seed: train_with_update(algo, update, steps=budget, seed=seed),
                            seeds=seeds, budget=budget, target=TRAIN_TARGET, task=TRAIN_ENV)
    return trained(result, TRAIN_ENV) + f"; budget {budget:,} steps"
