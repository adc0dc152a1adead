"""Where the time of ONE SAC update goes (issue 18): `python bench/profile/sac_update.py [N_UPDATES]`.

Builds SAC's agent with the default `sac.Config()` on Pendulum-v1's sizes (obs 3, action 1), fills a replay buffer
with 5,000 random transitions and then measures, on one torch thread:

1. the time per update as the training loop calls it (replay sample + draw_noise + `sac.update`), wall and CPU;
2. a phase-by-phase stopwatch of the same update: `phased_update` below restates `sac.update` line by line with a
   clock between phases (it is checked to give the same parameters as `sac.update`, so it cannot drift from it);
3. cProfile's top functions and torch.profiler's top operators for the same updates.

Prints Markdown (bench/profile/sac_update.md keeps the before/after record).
"""
from __future__ import annotations

import copy
import cProfile
import io
import pstats
import sys
import time

import numpy as np
import torch

from lecturekit.algos import sac
from lecturekit.buffers import ReplayBuffer
from lecturekit.offpolicy import critic_loss, polyak_update

OBS_DIM, ACT_DIM = 3, 1


def make_setup(seed: int = 0):
    cfg = sac.Config()
    gen = torch.Generator().manual_seed(seed)
    low, high = torch.tensor([-2.0]), torch.tensor([2.0])
    agent = sac.Agent(OBS_DIM, ACT_DIM, low, high, cfg, gen)
    buf = ReplayBuffer(OBS_DIM, ACT_DIM, cfg.buffer_size)
    rng = np.random.default_rng(seed)
    n = 5_000
    buf.add(rng.normal(size=(n, OBS_DIM)), rng.uniform(-2, 2, (n, ACT_DIM)), -rng.uniform(0, 16, n),
            rng.normal(size=(n, OBS_DIM)), np.zeros(n), np.zeros(n))
    return cfg, agent, buf, gen


def one_update(agent, buf, gen, cfg, step):
    """What the training loop does per gradient step."""
    batch = buf.sample(cfg.batch_size, gen)
    return sac.update(agent, batch, step, sac.draw_noise(cfg.batch_size, ACT_DIM, gen))


PHASES = ["sample + noise", "target (no grad)", "critic forward + loss", "critic backward", "critic Adam",
          "actor forward + loss", "actor backward", "actor Adam", "temperature", "Polyak", ".item() diagnostics"]


def phased_update(agent, buf, gen, cfg, step, clock: dict):
    """`one_update`, restated phase by phase with a clock (the same operations in the same order)."""
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        clock[name] = clock.get(name, 0.0) + now - t
        t = now

    b = buf.sample(cfg.batch_size, gen)
    eps_next, eps_now = sac.draw_noise(cfg.batch_size, ACT_DIM, gen)
    lap("sample + noise")
    alpha = agent.log_alpha.exp().item()
    with torch.no_grad():
        a2, logp2 = agent.actor(b.next_obs, eps_next)
        y = sac.sac_critic_target(b.reward, b.terminated, *agent.critic_targ(b.next_obs, a2), logp2, alpha,
                                  cfg.gamma)
    lap("target (no grad)")
    q1, q2 = agent.critic(b.obs, b.action)
    loss_q = critic_loss(y, q1, q2)
    lap("critic forward + loss")
    agent.critic_opt.zero_grad()
    loss_q.backward()
    lap("critic backward")
    agent.critic_opt.step()
    lap("critic Adam")
    a, logp = agent.actor(b.obs, eps_now)
    loss_pi = sac.sac_actor_loss(*agent.critic(b.obs, a), logp, alpha)
    lap("actor forward + loss")
    agent.actor_opt.zero_grad()
    loss_pi.backward(inputs=list(agent.actor.parameters()))
    lap("actor backward")
    agent.actor_opt.step()
    lap("actor Adam")
    if agent.alpha_opt is not None:
        loss_alpha = sac.temperature_loss(agent.log_alpha, logp, agent.target_entropy)
        agent.alpha_opt.zero_grad()
        loss_alpha.backward()
        agent.alpha_opt.step()
    lap("temperature")
    polyak_update(agent.critic_targ, agent.critic, cfg.tau)
    lap("Polyak")
    logs = {"critic_loss": loss_q.item(), "actor_loss": loss_pi.item(), "q1": q1.mean().item(), "alpha": alpha,
            "entropy": -logp.mean().item()}
    lap(".item() diagnostics")
    return logs


def check_phased_is_update():
    """phased_update and the library's update move the parameters identically from the same state."""
    cfg, agent, buf, gen = make_setup()
    agent2, gen2 = copy.deepcopy(agent), copy.deepcopy(gen)
    for step in range(3):
        one_update(agent, buf, gen, cfg, step)
        phased_update(agent2, buf, gen2, cfg, step, {})
    for (k, p), p2 in zip(agent.model.state_dict().items(), agent2.model.state_dict().values()):
        assert torch.equal(p, p2), f"phased_update differs from sac.update in {k}"
    assert torch.equal(agent.log_alpha, agent2.log_alpha)


def timed(n: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per update, over n updates after 200 warm-up ones."""
    cfg, agent, buf, gen = make_setup()
    for step in range(200):
        one_update(agent, buf, gen, cfg, step)
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(200, 200 + n):
        one_update(agent, buf, gen, cfg, step)
    return (time.perf_counter() - wall) / n * 1e3, (time.process_time() - cpu) / n * 1e3


def main(n: int = 2000) -> None:
    torch.set_num_threads(1)
    check_phased_is_update()
    cfg = sac.Config()
    print(f"SAC update, hidden {cfg.hidden}, batch {cfg.batch_size}, torch {torch.__version__}, 1 thread, "
          f"{n} updates\n")
    runs = [timed(n) for _ in range(3)]
    best_wall, best_cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"time per update (sample + noise + update), best of 3: {best_wall:.3f} ms wall, {best_cpu:.3f} ms CPU\n")

    cfg, agent, buf, gen = make_setup()
    for step in range(200):
        one_update(agent, buf, gen, cfg, step)
    clock: dict = {}
    for step in range(200, 200 + n):
        phased_update(agent, buf, gen, cfg, step, clock)
    total = sum(clock.values())
    print("| phase | ms per update | share |\n|---|---|---|")
    for name in PHASES:
        if name in clock:
            print(f"| {name} | {clock[name] / n * 1e3:.3f} | {clock[name] / total:.0%} |")
    print(f"| total (stopwatch) | {total / n * 1e3:.3f} | 100% |\n")

    m = min(n, 500)
    prof = cProfile.Profile()
    prof.enable()
    for step in range(m):
        one_update(agent, buf, gen, cfg, step)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    text = out.getvalue()
    print(f"cProfile, {m} updates, top 15 by own time (profiling overhead inflates small Python calls):\n")
    print("```\n" + text[text.find("   ncalls"):].rstrip() + "\n```\n")

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as tp:
        for step in range(m):
            one_update(agent, buf, gen, cfg, step)
    print(f"torch.profiler, {m} updates, top 15 operators by own CPU time:\n")
    print("```\n" + tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=15) + "```")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
