"""Issue 15, item 4: the find-the-bug exercises.  The buggy implementations in `lecturekit.course.bugs` are rejected
with "the bug is still there"; fixes written in different ways pass; a fix that breaks something else is named."""
import numpy as np
import pytest
import torch

from lecturekit.checks import CheckFailed, check_fixed_critic_loss, check_fixed_policy_loss, check_fixed_reward_to_go
from lecturekit.course import bugs


def accepts(check, fn, capsys):
    check(fn)
    assert "all checks passed" in capsys.readouterr().out


def rejects(check, fn, *words):
    with pytest.raises(CheckFailed) as info:
        check(fn)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg
    return msg


# --- bug 1: reward_to_go ------------------------------------------------------------------------------------------
def rtg_mask(rewards, dones, gamma):
    G, run = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        run = rewards[t] + gamma * (1 - dones[t]) * run
        G[t] = run
    return G


def rtg_if_reset(rewards, dones, gamma):
    G, run = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        if dones[t]:
            run = 0.0
        run = rewards[t] + gamma * run
        G[t] = run
    return G


def rtg_per_episode(rewards, dones, gamma):
    ends = np.flatnonzero(dones)
    out, start = [], 0
    for e in ends:
        r = np.asarray(rewards[start:e + 1], dtype=float)
        out.append(np.array([r[t:] @ gamma ** np.arange(len(r) - t) for t in range(len(r))]))
        start = e + 1
    return np.concatenate(out)


def rtg_reset_after(rewards, dones, gamma):  # resets after step t when step t - 1 ended an episode: also right
    G, run = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        run = rewards[t] + gamma * run
        G[t] = run
        if t > 0 and dones[t - 1]:
            run = 0.0
    return G


@pytest.mark.parametrize("fn", [rtg_mask, rtg_if_reset, rtg_per_episode, rtg_reset_after])
def test_rtg_accepts_fixes(fn, capsys):
    accepts(check_fixed_reward_to_go, fn, capsys)


def rtg_shifted(rewards, dones, gamma):  # cuts where the NEXT step ends its episode
    n = len(rewards)
    G, run = np.zeros(n), 0.0
    for t in reversed(range(n)):
        if t + 1 < n and dones[t + 1]:
            run = 0.0
        run = rewards[t] + gamma * run
        G[t] = run
    return G


def rtg_store_then_reset(rewards, dones, gamma):  # resets after storing G_t: the cut lands one step early
    G, run = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        run = rewards[t] + gamma * run
        G[t] = run
        if dones[t]:
            run = 0.0
    return G


@pytest.mark.parametrize("fn, words", [
    (bugs.reward_to_go, ["the bug is still there"]),
    (rtg_shifted, ["off by one"]),
    (rtg_store_then_reset, ["off by one"]),
    (lambda r, d, g: rtg_mask(r, d, 1.0), ["lost the discount"]),
    (lambda r, d, g: list(rtg_mask(r, d, g)), ["NumPy array"]),
])
def test_rtg_rejects(fn, words):
    rejects(check_fixed_reward_to_go, fn, *words)


# --- bug 2: policy_loss -------------------------------------------------------------------------------------------
def pl_squeeze(logits, actions, weights):
    return -(torch.distributions.Categorical(logits=logits).log_prob(actions.squeeze(-1)) * weights).mean()


def pl_gather(logits, actions, weights):
    return -(torch.log_softmax(logits, -1).gather(1, actions).squeeze(1) * weights).mean()


def pl_index(logits, actions, weights):
    logp = torch.log_softmax(logits, -1)[torch.arange(len(logits)), actions.view(-1)]
    return -(logp * weights.detach()).mean()


@pytest.mark.parametrize("fn", [pl_squeeze, pl_gather, pl_index])
def test_policy_loss_accepts_fixes(fn, capsys):
    accepts(check_fixed_policy_loss, fn, capsys)


@pytest.mark.parametrize("fn, words", [
    (bugs.policy_loss, ["the bug is still there", "shape"]),
    (lambda lg, a, w: -pl_squeeze(lg, a, w), ["sign is flipped"]),
    (lambda lg, a, w: pl_squeeze(lg, a, w) * len(w), [".mean()"]),
    (lambda lg, a, w: -(torch.softmax(lg, -1).gather(1, a).squeeze(1) * w).mean(), ["not probabilities"]),
    (lambda lg, a, w: pl_squeeze(lg.detach(), a, w), ["no gradient"]),
    (lambda lg, a, w: pl_squeeze(lg, a, w)[None], ["scalar"]),
    (lambda lg, a, w: -(torch.log_softmax(lg, 0).gather(1, a).squeeze(1) * w).mean(), ["over the batch (dim 0)"]),
])
def test_policy_loss_rejects(fn, words):
    rejects(check_fixed_policy_loss, fn, *words)


# --- bug 3: critic_loss -------------------------------------------------------------------------------------------
def cl_squeeze(critic, critic_targ, actor_targ, b, gamma):
    with torch.no_grad():
        y = b["reward"] + gamma * (1 - b["terminated"]) * critic_targ(b["next_obs"], actor_targ(b["next_obs"])).squeeze(-1)
    return ((critic(b["obs"], b["action"]).squeeze(-1) - y) ** 2).mean()


def cl_unsqueeze_rewards(critic, critic_targ, actor_targ, b, gamma):
    # the other way round: make everything (B, 1)
    with torch.no_grad():
        y = b["reward"][:, None] + gamma * (1 - b["terminated"][:, None]) * critic_targ(b["next_obs"],
                                                                                      actor_targ(b["next_obs"]))
    return torch.nn.functional.mse_loss(critic(b["obs"], b["action"]), y)


def cl_detach(critic, critic_targ, actor_targ, b, gamma):
    nq = critic_targ(b["next_obs"], actor_targ(b["next_obs"])).view(-1)
    y = (b["reward"] + gamma * (1 - b["terminated"]) * nq).detach()
    return (critic(b["obs"], b["action"]).view(-1) - y).pow(2).mean()


@pytest.mark.parametrize("fn", [cl_squeeze, cl_unsqueeze_rewards, cl_detach])
def test_critic_loss_accepts_fixes(fn, capsys):
    accepts(check_fixed_critic_loss, fn, capsys)


def cl_half(critic, critic_targ, actor_targ, b, gamma):
    with torch.no_grad():
        y = b["reward"] + gamma * (1 - b["terminated"]) * critic_targ(b["next_obs"], actor_targ(b["next_obs"])).squeeze(-1)
    return ((critic(b["obs"], b["action"]) - y) ** 2).mean()


def cl_squeeze_q_only(critic, critic_targ, actor_targ, b, gamma):  # the other half-fix: next_q stays (B, 1)
    with torch.no_grad():
        y = b["reward"] + gamma * (1 - b["terminated"]) * critic_targ(b["next_obs"], actor_targ(b["next_obs"]))
    return ((critic(b["obs"], b["action"]).squeeze(-1) - y) ** 2).mean()


def cl_grad_target(critic, critic_targ, actor_targ, b, gamma):
    y = b["reward"] + gamma * (1 - b["terminated"]) * critic_targ(b["next_obs"], actor_targ(b["next_obs"])).squeeze(-1)
    return ((critic(b["obs"], b["action"]).squeeze(-1) - y) ** 2).mean()


def cl_online(critic, critic_targ, actor_targ, b, gamma):
    return cl_squeeze(critic, critic, actor_targ, b, gamma)


def cl_no_done(critic, critic_targ, actor_targ, b, gamma):
    return cl_squeeze(critic, critic_targ, actor_targ, dict(b, terminated=torch.zeros_like(b["terminated"])), gamma)


def cl_obs(critic, critic_targ, actor_targ, b, gamma):
    with torch.no_grad():
        y = b["reward"] + gamma * (1 - b["terminated"]) * critic_targ(b["next_obs"], actor_targ(b["obs"])).squeeze(-1)
    return ((critic(b["obs"], b["action"]).squeeze(-1) - y) ** 2).mean()


@pytest.mark.parametrize("fn, words", [
    (bugs.critic_loss, ["the bug is still there", "shapes"]),
    (cl_half, ["Squeeze both"]),
    (cl_squeeze_q_only, ["Squeeze next_q too"]),
    (lambda *a: 0.5 * cl_squeeze(*a), ["factor 1/2"]),
    (cl_grad_target, ["torch.no_grad()"]),
    (cl_online, ["online critic"]),
    (cl_no_done, ["(1 - terminated)"]),
    (cl_obs, ["NEXT observation"]),
    (lambda *a: cl_squeeze(*a) * 128, None),
])
def test_critic_loss_rejects(fn, words):
    rejects(check_fixed_critic_loss, fn, *(words or ["critic_loss"]))


@pytest.mark.parametrize("check", [check_fixed_reward_to_go, check_fixed_policy_loss, check_fixed_critic_loss])
def test_stub(check):
    def stub(*args):
        raise NotImplementedError
    rejects(check, stub, "not implemented yet")


def test_policy_loss_that_ignores_the_logits_is_told_so():
    w = torch.ones(1, requires_grad=True)

    def ignores_logits(logits, actions, weights):  # right value, but through a detached copy and a dummy leaf
        return pl_gather(logits.detach(), actions, weights) + 0 * w.sum()

    rejects(check_fixed_policy_loss, ignores_logits, "does not depend on the logits")
