"""Checkers of the find-the-bug exercises (exercise notebook ex08, buggy code in `lecturekit.course.bugs`).

Each checker runs the student's fixed function on inputs where the original bug shows (the smallest first) and
compares it with an independent reference.  When the answer is wrong it says which bug class the answer still has:
the original bug ("the bug is still there"), or another one the fix introduced (a wrong sign, a missing discount,
a target that carries gradient, ...).
"""
from __future__ import annotations

import numpy as np
import torch

from lecturekit.course import bugs
from lecturekit.course.checking import Check, checker


# --------------------------------------------------------------------------------------------- fixed_reward_to_go
def _rtg(rewards, dones, gamma, *, reset=True, shift=False, discount=True) -> np.ndarray:
    r, d = np.asarray(rewards, dtype=np.float64), np.asarray(dones, dtype=np.float64)
    n = len(r)
    G, running = np.zeros(n), 0.0
    for t in reversed(range(n)):
        cut = (d[t + 1] if t + 1 < n else 1.0) if shift else d[t]
        running = r[t] + (gamma if discount else 1.0) * ((1.0 - cut) if reset else 1.0) * running
        G[t] = running
    return G


def _rtg_mistakes(rewards, dones, gamma) -> dict:
    return {
        "bug": (_rtg(rewards, dones, gamma, reset=False),
                "the bug is still there (your answer is what the buggy version computes). Work this input out by "
                "hand: which returns-to-go belong to which episode?"),
        "shift": (_rtg(rewards, dones, gamma, shift=True),
                  "off by one: the cut belongs to the step that ENDS the episode (dones[t] = 1 gives G_t = r_t); you "
                  "cut one step early (by testing dones[t + 1], or by resetting after storing G_t)."),
        "no_discount": (_rtg(rewards, dones, gamma, discount=False),
                        "you fixed the reset but lost the discount: G_t = r_t + gamma * (1 - dones[t]) * G_{t+1}."),
    }


@checker("fixed_reward_to_go")
def check_fixed_reward_to_go(fn) -> None:
    """Check `fn(rewards, dones, gamma)` on batches of concatenated episodes, smallest first."""
    c = Check("fixed_reward_to_go")
    rng = np.random.default_rng(15)
    f = np.array
    cases = [
        (f([1.0, 1.0]), f([1.0, 1.0]), 0.5),                        # two one-step episodes
        (f([1.0, 2.0, 3.0]), f([0.0, 1.0, 1.0]), 0.5),              # an episode of 2 steps, then one of 1
        (f([1.0, 1.0, 1.0, 1.0]), f([0.0, 0.0, 0.0, 1.0]), 0.9),    # one episode: nothing to reset
        (f([0.0, 1.0, 0.0, 2.0, 1.0]), f([0.0, 1.0, 0.0, 0.0, 1.0]), 0.99),
        (rng.normal(size=200), (rng.random(200) < 0.05).astype(float), 0.99),
    ]
    cases[-1][1][-1] = 1.0
    for rewards, dones, gamma in cases:
        case = f"rewards={rewards.tolist()}, dones={dones.tolist()}, gamma={gamma}" if len(rewards) <= 5 else \
            f"a batch of {len(rewards)} steps with {int(dones.sum())} episode ends, gamma={gamma}"
        got = c.call(fn, rewards, dones, gamma, case=case)
        c.expect_close(got, bugs._reward_to_go_ref(rewards, dones, gamma), case=case,
                       mistakes=_rtg_mistakes(rewards, dones, gamma))
    c.passed(f"{len(cases)} batches of concatenated episodes: episode ends reset the return")


# ----------------------------------------------------------------------------------------------- fixed_policy_loss
def _policy_loss_variants(logits: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor) -> dict:
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, actions.reshape(-1, 1)).squeeze(-1)
    return {
        "bug": (bugs.policy_loss(logits, actions, weights),
                "the bug is still there (your loss equals the buggy version's). Print the shape of every intermediate "
                "tensor for this batch of B=2: how many log-probabilities should there be?"),
        "sign": ((logp * weights).mean(), "the sign is flipped: the loss is -mean(log pi(a|s) * w), its gradient is minus "
                                          "the policy-gradient estimate."),
        "sum": (-(logp * weights).sum(), "average over the batch (.mean()), do not sum."),
        "probs": (-(logp.exp() * weights).mean(), "use log-probabilities, not probabilities: the score function is "
                                                  "grad log pi."),
        "all_actions": (-(logp_all * weights[:, None]).mean(), "only the action taken counts: pick log pi(a_b|s_b) "
                                                               "(gather or Categorical.log_prob), not every action's."),
        "batch_softmax": (-(torch.log_softmax(logits, 0).gather(-1, actions.reshape(-1, 1)).squeeze(-1) * weights)
                          .mean(), "the softmax normalises over the batch (dim 0): each state's action probabilities "
                                   "must sum to 1, so normalise over the actions (dim=-1)."),
    }


def _grad(loss_fn, logits):
    x = logits.detach().clone().requires_grad_(True)
    out = loss_fn(x)
    if not isinstance(out, torch.Tensor) or not out.requires_grad or out.numel() != 1:
        return None
    (g,) = torch.autograd.grad(out, x)
    return g


@checker("fixed_policy_loss")
def check_fixed_policy_loss(fn) -> None:
    """Check `fn(logits, actions, weights)`: value and gradient in the logits, on batches where the broadcast shows."""
    c = Check("fixed_policy_loss")
    g = torch.Generator().manual_seed(8)
    t = torch.tensor
    cases = [
        ("a batch of B=2 states, 2 actions (actions of shape (2, 1))", t([[0.0, 0.0], [1.0, -1.0]]), t([[0], [1]]),
         t([1.0, -0.5])),
        ("a batch of B=3 states, 3 actions", t([[0.5, 0.0, -0.5], [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]), t([[2], [0], [1]]),
         t([0.3, 1.0, -1.2])),
        ("a batch of B=64 states, 2 actions", torch.randn(64, 2, generator=g), torch.randint(0, 2, (64, 1), generator=g),
         torch.randn(64, generator=g)),
    ]
    for case, logits, actions, weights in cases:
        x = logits.clone().requires_grad_(True)
        got = c.call(fn, x, actions.clone(), weights.clone(), case=case)
        ref = bugs._policy_loss_ref(logits, actions, weights)
        variants = _policy_loss_variants(logits, actions, weights)
        c.expect_tensor(got, ref.detach(), case=case, mistakes={k: (v.detach(), h) for k, (v, h) in variants.items()})
        if not got.requires_grad:
            c.fail(case, "a loss with a gradient in the logits", "a tensor with no gradient",
                   hint="keep the computation in torch (no .item(), .numpy() or .detach() on the logits).")
        (gg,) = torch.autograd.grad(got, x, allow_unused=True)
        if gg is None:
            c.fail(case + " (gradient with respect to the logits)", "a gradient", "no gradient",
                   hint="the loss does not depend on the logits it was given: compute the log-probabilities from "
                        "`logits`, not from a copy or from new network outputs.")
        ref_g = _grad(lambda z: bugs._policy_loss_ref(z, actions, weights), logits)
        wrong_g = {}
        for k, (_, h) in variants.items():
            wg = _grad(lambda z, k=k: _policy_loss_variants(z, actions, weights)[k][0], logits)
            if wg is not None:
                wrong_g[k] = (wg, h)
        c.expect_tensor(gg, ref_g, case=case + " (gradient with respect to the logits)", mistakes=wrong_g,
                        hint="the value is right but the gradient is not: are the weights or part of the log-prob "
                             "detached or recomputed?")
    c.passed(f"{len(cases)} batches from B=2 to B=64: value and gradient in the logits")


# ----------------------------------------------------------------------------------------------- fixed_critic_loss
def _nets(seed: int):
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the checker's own small networks; the global generator is left as it was
        critic, critic_targ, actor_targ = bugs.Critic(16), bugs.Critic(16), bugs.Actor(16)
    return critic, critic_targ, actor_targ


def _critic_variants(critic, critic_targ, actor_targ, b, gamma) -> dict:
    """name -> (loss as a tensor with the critic's graph, hint): what each wrong fix computes."""
    r, d = b["reward"], b["terminated"]
    q = critic(b["obs"], b["action"]).reshape(-1)
    nq = critic_targ(b["next_obs"], actor_targ(b["next_obs"])).reshape(-1)
    online = critic(b["next_obs"], actor_targ(b["next_obs"])).reshape(-1).detach()
    y = (r + gamma * (1 - d) * nq).detach()
    return {
        "bug": (bugs.critic_loss(critic, critic_targ, actor_targ, b, gamma),
                "the bug is still there (your loss equals the buggy version's). Print the shapes of next_q, y and "
                "q - y for this batch of B=2: how many squared errors should there be?"),
        "half_fixed": (((q[:, None] - y[None, :]) ** 2).mean(),
                       "q is still (B, 1) while y is now (B,): q - y broadcasts to (B, B). Squeeze both."),
        "half_fixed_target": (((q[None, :] - (r[None, :] + gamma * (1 - d)[None, :] * nq[:, None]).detach()) ** 2)
                              .mean(), "q is (B,) now, but next_q is still (B, 1), so y = r + gamma (1 - d) next_q "
                                       "broadcasts to (B, B). Squeeze next_q too."),
        "half_factor": (0.5 * ((q - y) ** 2).mean(),
                        "a factor 1/2: the loss here is the plain mean of squared errors, mean_b (Q - y)^2."),
        "no_done": (((q - (r + gamma * nq).detach()) ** 2).mean(),
                    "the (1 - terminated) factor is missing: a terminal transition must not bootstrap."),
        "online_critic": (((q - (r + gamma * (1 - d) * online)) ** 2).mean(),
                          "the target uses the online critic: y must come from the target critic critic_targ."),
        "obs_not_next": (((q - (r + gamma * (1 - d) * critic_targ(b["next_obs"], actor_targ(b["obs"]))
                                .reshape(-1)).detach()) ** 2).mean(),
                         "the target action is mu'(s'), the target actor at the NEXT observation."),
        "sum": (((q - y) ** 2).sum(), "average over the batch (.mean()), do not sum."),
    }


def _batch(B: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(B, 3, generator=g), "action": 2 * torch.rand(B, 1, generator=g) - 1,
            "reward": torch.randn(B, generator=g) - 3.0, "next_obs": torch.randn(B, 3, generator=g),
            "terminated": (torch.rand(B, generator=g) < 0.3).float()}


@checker("fixed_critic_loss")
def check_fixed_critic_loss(fn) -> None:
    """Check `fn(critic, critic_targ, actor_targ, batch, gamma)`: value, the critic's gradient, and no gradient into
    the target networks."""
    c = Check("fixed_critic_loss")
    cases = [("a batch of B=2 transitions (the second terminal)", 2, 0), ("a batch of B=5 transitions", 5, 1),
             ("a batch of B=128 transitions", 128, 2)]
    for case, B, seed in cases:
        b = _batch(B, seed)
        if B == 2:
            b["terminated"] = torch.tensor([0.0, 1.0])
        critic, critic_targ, actor_targ = _nets(seed)
        got = c.call(fn, critic, critic_targ, actor_targ, {k: v.clone() for k, v in b.items()}, 0.9, case=case,
                     check_inputs=False)
        ref = bugs._critic_loss_ref(critic, critic_targ, actor_targ, b, 0.9)
        variants = _critic_variants(critic, critic_targ, actor_targ, b, 0.9)
        c.expect_tensor(got, ref.detach(), case=case, mistakes={k: (v.detach(), h) for k, (v, h) in variants.items()})
        if not got.requires_grad:
            c.fail(case, "a loss with a gradient in the critic", "a tensor with no gradient",
                   hint="only the target y is computed without gradient; Q(s, a) of the online critic must keep it.")
        targ_params = list(critic_targ.parameters()) + list(actor_targ.parameters())
        leaks = torch.autograd.grad(got, targ_params, allow_unused=True, retain_graph=True)
        if any(g_ is not None and torch.any(g_ != 0) for g_ in leaks):
            c.fail(case + " (gradient into the target networks)", expected="no gradient", got="a gradient",
                   hint="the target y carries gradient into critic_targ / actor_targ: compute it under "
                        "torch.no_grad() (a regression target is a constant).")
        params = list(critic.parameters())
        got_g = torch.autograd.grad(got, params, allow_unused=True)
        ref_g = torch.autograd.grad(ref, params)
        for (name, _), gg, rg in zip(critic.named_parameters(), got_g, ref_g):
            if gg is None:
                c.fail(case + f" (gradient with respect to the critic's `{name}`)", expected=rg, got="no gradient",
                       hint="Q(s, a) must stay connected to the critic's weights.")
            c.expect_tensor(gg, rg, case=case + f" (gradient with respect to the critic's `{name}`)", rtol=1e-4,
                            atol=1e-6, hint="the value is right but the gradient is not: is Q(s, a) detached, or does "
                                            "the target depend on the online critic?")
    c.passed(f"{len(cases)} batches from B=2 to B=128: value, the critic's gradient, none into the targets")


__all__ = ["check_fixed_reward_to_go", "check_fixed_policy_loss", "check_fixed_critic_loss"]
