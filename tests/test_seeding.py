"""One seeding path: a run's generators come from run.seed only.  The same seed gives the same History, and nothing
the process draws from the global torch / NumPy generators meanwhile (a notebook cell, a callback, another thread)
changes a run."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from lecturekit.algos import a2c, ppo, reinforce, trpo
from lecturekit.evaluation import Run

torch.set_num_threads(1)

SMALL = {  # (module, config): a few updates each, enough to exercise sampling, init and minibatch order
    "reinforce": (reinforce, reinforce.Config(n_episodes=4, hidden=(16,))),
    "a2c": (a2c, a2c.A2CConfig(n_envs=4, n_steps=16, hidden=(16,))),
    "ppo": (ppo, ppo.Config(n_envs=4, n_steps=32, hidden=(16,))),
    "trpo": (trpo, trpo.Config(n_envs=4, n_steps=32, hidden=(16,))),
}


def draw_global_numbers(_event=None) -> None:
    torch.rand(7)
    torch.randn(3, 3)
    np.random.random(5)
    np.random.randint(0, 10, size=3)


def fingerprint(h) -> tuple:
    params = torch.cat([p.detach().flatten() for p in h.model.parameters()])
    return [e[2] for e in h.evals], {k: v for k, v in h.logs.items()}, params.numpy().tobytes()


def run(name: str, env_id: str = "CartPole-v1", callback=None):
    module, cfg = SMALL[name]
    return module.train(env_id, cfg, Run(steps=768, seed=5, eval_every=256, eval_episodes=2, callback=callback))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_history_whatever_the_global_generators_do(name):
    torch.manual_seed(0), np.random.seed(0)
    plain = fingerprint(run(name))
    torch.manual_seed(123), np.random.seed(321)  # a different global state before the run ...
    noisy = fingerprint(run(name, callback=draw_global_numbers))  # ... and global draws at every evaluation
    assert noisy[0] == plain[0] and noisy[1] == plain[1] and noisy[2] == plain[2]
    assert len(plain[0]) == 3


@pytest.mark.parametrize("name", ["reinforce", "ppo"])
def test_box_actions_same_seed_same_history(name):
    torch.manual_seed(1)
    h1 = fingerprint(run(name, "Pendulum-v1"))
    torch.manual_seed(2)
    h2 = fingerprint(run(name, "Pendulum-v1", callback=draw_global_numbers))
    assert h1 == h2


def test_training_in_a_background_thread_is_unaffected_by_the_main_thread_drawing():
    # what a live demo does: train in a thread while the notebook keeps computing with the global generators
    expected = fingerprint(run("a2c"))
    result = {}
    worker = threading.Thread(target=lambda: result.update(h=run("a2c")))
    worker.start()
    while worker.is_alive():
        draw_global_numbers()
    worker.join()
    assert fingerprint(result["h"]) == expected


def test_different_seeds_differ():
    module, cfg = SMALL["a2c"]
    h0 = module.train("CartPole-v1", cfg, Run(steps=256, seed=0, eval_episodes=2))
    h1 = module.train("CartPole-v1", cfg, Run(steps=256, seed=1, eval_episodes=2))
    assert fingerprint(h0)[2] != fingerprint(h1)[2]


def test_routing_same_seed_same_history():
    from lecturekit.applications import routing

    cfg = routing.RoutingConfig(n_cities=5, d=16, batch=8, samples=2, eval_instances=8)
    torch.manual_seed(0)
    h1 = routing.train(cfg, Run(steps=48, seed=2, eval_every=16))
    torch.manual_seed(9)
    h2 = routing.train(cfg, Run(steps=48, seed=2, eval_every=16, callback=draw_global_numbers))
    assert fingerprint(h1) == fingerprint(h2) and len(h1.evals) == 3

