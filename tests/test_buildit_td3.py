"""The build-it checker `check_td3_update`: right updates (three ways of writing them) pass; each silent bug is
rejected with its own message; a stub reports "not implemented yet".  Layer 3 (training) runs once, on the first
correct variant; all other tests skip it (`train=False`)."""
import pytest
import torch
import torch.nn.functional as F

from lecturekit.checks import CheckFailed, check_td3_update


# --- an update written the way a student would, with one switch per mistake ----------------------------------------
def student_update(agent, batch, step, noise, bug=None):
    cfg, b = agent.cfg, batch
    grad_ctx = torch.enable_grad() if bug == "target_grad" else torch.no_grad()
    with grad_ctx:
        actor_targ = agent.actor if bug == "online_actor_target" else agent.actor_targ
        low, high = torch.as_tensor(agent.low), torch.as_tensor(agent.high)
        eps = cfg.target_noise * noise
        if bug != "noise_unclipped":
            eps = eps.clamp(-cfg.noise_clip, cfg.noise_clip)
        a2 = actor_targ(b.next_obs) + eps * (high - low) / 2
        if bug != "no_box_clip":
            a2 = torch.max(torch.min(a2, high), low)
        targ = agent.critic if bug == "online_critic_target" else agent.critic_targ
        next_q1, next_q2 = targ(b.next_obs, a2)
        next_q = torch.min(next_q1, next_q2) if (cfg.twin or bug == "min_in_ddpg") else next_q1
        done = b.truncated if bug == "truncated_done" else b.terminated
        y = b.reward + cfg.gamma * (1 - done) * next_q
    q1, q2 = agent.critic(b.obs, b.action)
    loss_q = ((q1 - y) ** 2).mean()
    if cfg.twin and bug != "q1_only_loss":
        loss_q = loss_q + ((q2 - y) ** 2).mean()
    if bug != "no_zero_grad":
        agent.critic_opt.zero_grad()
    loss_q.backward()
    agent.critic_opt.step()
    info = {"critic_loss": loss_q.item()}
    if bug == "delay_ignored" or step % cfg.policy_delay == 0:
        a = agent.actor(b.obs)
        q = torch.min(*agent.critic(b.obs, a)) if bug == "actor_min" else agent.critic.q1(b.obs, a)
        loss_pi = q.mean() if bug == "actor_sign" else -q.mean()
        agent.actor_opt.zero_grad()
        loss_pi.backward()
        agent.actor_opt.step()
        tau = 1 - cfg.tau if bug == "tau_swapped" else cfg.tau
        with torch.no_grad():
            for net, targ_net in [(agent.actor, agent.actor_targ), (agent.critic, agent.critic_targ)]:
                for p, p_targ in zip(net.parameters(), targ_net.parameters()):
                    p_targ.mul_(1 - tau).add_(tau * p)
        info["actor_loss"] = loss_pi.item()
    return info


# --- three correct ways --------------------------------------------------------------------------------------------
def update_plain(agent, batch, step, noise):
    return student_update(agent, batch, step, noise)


def update_actor_first(agent, batch, step, noise):
    """Actor step before the critic step (the lecture allows either), lerp_ for Polyak, a stacked min."""
    cfg, b = agent.cfg, batch
    info = {}
    if step % cfg.policy_delay == 0:
        loss_pi = -agent.critic.q1(b.obs, agent.actor(b.obs)).mean()
        agent.actor_opt.zero_grad()
        loss_pi.backward(inputs=list(agent.actor.parameters()))
        agent.actor_opt.step()
        info["actor_loss"] = float(loss_pi.detach())
    with torch.no_grad():
        low, high = torch.as_tensor(agent.low), torch.as_tensor(agent.high)
        a2 = agent.actor_targ(b.next_obs)
        a2 = a2 + (noise * cfg.target_noise).clamp(-cfg.noise_clip, cfg.noise_clip) * (high - low) / 2
        a2 = a2.clamp(min=low, max=high)
        qs = torch.stack(tuple(agent.critic_targ(b.next_obs, a2)))
        next_q = qs.min(dim=0).values if cfg.twin else qs[0]
        y = b.reward + cfg.gamma * torch.logical_not(b.terminated.bool()).float() * next_q
    q1, q2 = agent.critic(b.obs, b.action)
    loss_q = F.mse_loss(q1, y) + (F.mse_loss(q2, y) if cfg.twin else 0.0)
    agent.critic_opt.zero_grad(set_to_none=True)
    loss_q.backward()
    agent.critic_opt.step()
    if step % cfg.policy_delay == 0:
        with torch.no_grad():
            for p_t, p in zip([*agent.actor_targ.parameters(), *agent.critic_targ.parameters()],
                              [*agent.actor.parameters(), *agent.critic.parameters()]):
                p_t.lerp_(p, cfg.tau)
    info["critic_loss"] = float(loss_q.detach())
    return info


def update_per_critic_loop(agent, batch, step, noise):
    """A loop over the critics with detach() instead of no_grad, library helpers for the target and Polyak."""
    from lecturekit.offpolicy import polyak_update, td_target

    cfg, b = agent.cfg, batch
    low, high = torch.as_tensor(agent.low), torch.as_tensor(agent.high)
    a2 = agent.actor_targ(b.next_obs).detach()
    if cfg.target_noise > 0:
        a2 = a2 + torch.clamp(noise * cfg.target_noise, -cfg.noise_clip, cfg.noise_clip) * (high - low) / 2
        a2 = torch.maximum(torch.minimum(a2, high), low)
    n = 2 if cfg.twin else 1
    next_q = torch.stack(tuple(agent.critic_targ(b.next_obs, a2))[:n]).amin(0).detach()
    y = td_target(b.reward, b.terminated, next_q, cfg.gamma)
    agent.critic_opt.zero_grad()
    loss_q = sum(((q - y) ** 2).mean() for q in tuple(agent.critic(b.obs, b.action))[:n])
    loss_q.backward()
    agent.critic_opt.step()
    if step % cfg.policy_delay == 0:
        agent.actor_opt.zero_grad()
        (-agent.critic.q1(b.obs, agent.actor(b.obs)).mean()).backward()
        agent.actor_opt.step()
        polyak_update(agent.actor_targ, agent.actor, cfg.tau)
        polyak_update(agent.critic_targ, agent.critic, cfg.tau)
    return {"critic_loss": loss_q.item()}


@pytest.mark.parametrize("update", [update_actor_first, update_per_critic_loop])
def test_accepts_correct_updates(update, capsys):
    check_td3_update(update, train=False)
    assert "all checks passed" in capsys.readouterr().out


def test_accepts_and_trains(capsys):
    """All three layers, training included (seed 0, budget 9,000 steps)."""
    check_td3_update(update_plain)
    out = capsys.readouterr().out
    assert "all checks passed" in out and "trained Pendulum-v1" in out


# --- wrong updates, each with its own message -----------------------------------------------------------------------
WRONG = {
    "no_zero_grad": "critic_opt.zero_grad()",
    "target_grad": "the target y carries a gradient",
    "online_critic_target": "the target uses the online critics",
    "online_actor_target": "the target action comes from the online actor",
    "delay_ignored": "TD3 delays the actor",
    "actor_min": "TD3's actor climbs Q1 alone",
    "actor_sign": "the actor loss has the wrong sign",
    "noise_unclipped": "the smoothing noise is not clipped",
    "no_box_clip": "leaves the action box",
    "tau_swapped": "tau and 1 - tau are swapped",
    "truncated_done": "uses batch.truncated as the end of the episode",
    "q1_only_loss": "only the first critic is trained",
    "min_in_ddpg": "with cfg.twin = False (DDPG) there is one critic",
}


@pytest.mark.parametrize("bug", list(WRONG))
def test_rejects_silent_bug(bug):
    def update(agent, batch, step, noise):
        return student_update(agent, batch, step, noise, bug=bug)

    with pytest.raises(CheckFailed) as e:
        check_td3_update(update, train=False)
    assert WRONG[bug] in str(e.value), str(e.value)


def test_messages_are_distinct():
    assert len(set(WRONG.values())) == len(WRONG)


def test_stub_is_not_implemented():
    def td3_update(agent, batch, step, noise):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check_td3_update(td3_update)


def test_returns_no_dict():
    def update(agent, batch, step, noise):
        student_update(agent, batch, step, noise)

    with pytest.raises(CheckFailed, match="return the diagnostics dict"):
        check_td3_update(update, train=False)


def test_batch_changed_in_place():
    def update(agent, batch, step, noise):
        batch.reward.mul_(2)
        return student_update(agent, batch, step, noise)

    with pytest.raises(CheckFailed, match="your update modified batch"):
        check_td3_update(update, train=False)


def test_the_course_update_passes(capsys):
    """The library's own TD3 update (the seam's default) is what the checker's reference does."""
    from lecturekit.algos import td3

    if not hasattr(td3, "update"):
        pytest.skip("the off-policy seam (module-level td3.update) is not merged yet")
    check_td3_update(td3.update, train=False)
    assert "all checks passed" in capsys.readouterr().out
