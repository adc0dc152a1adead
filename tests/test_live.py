"""Live demo widgets: the callback draws and honours Stop; demo() runs the default synchronously; Train reruns in a
thread with the knobs' values."""
import random
from dataclasses import dataclass

import ipywidgets as W
import numpy as np
import pytest
import torch

from lecturekit.course import live
from lecturekit.evaluation import History, Run


def fake_train(callback, lr=0.1, n=3):
    h = History("fake", "E", 0, target=1.0)
    for i in range(1, n + 1):
        h.evals.append((i * 10, 0.01 * i, lr * i, 0.0))
        if callback({"env_steps": i * 10, "wall_s": 0.01 * i, "eval_mean": lr * i, "eval_std": 0.0,
                     "target": 1.0, "total_steps": 10 * n}) is False:
            h.stopped = "user"
            break
    h.env_steps, h.solved = h.evals[-1][0], h.evals[-1][2] >= 1.0
    h.stopped = h.stopped or ("target" if h.solved else "budget")
    return h


def test_liveplot_updates_and_stop():
    p = live.LivePlot(100, target=1.0, title="t")
    blank = p.image.value
    assert p.callback({"env_steps": 50, "wall_s": 1.0, "eval_mean": 0.5, "eval_std": 0.1}) is True
    assert p.progress.value == 50 and "0.5" in p.status.value and p.image.value != blank
    p.stop_button.click()
    assert p.callback({"env_steps": 60, "wall_s": 1.1, "eval_mean": 0.6, "eval_std": 0.1}) is False


def test_demo_runs_default_and_reruns_with_knobs():
    h = live.demo(fake_train, knobs={"lr": (0.1, 1.0, 0.1, 0.2), "n": (1, 10, 1, 5)}, total_steps=50, target=1.0)
    assert h.final_return == 1.0 and h.solved and "done" in h.demo.plot.status.value
    d = h.demo
    d.knobs["lr"].value = 0.5
    d.train_button.click()  # Train: background thread
    d.wait(10)
    assert d.history.final_return == 2.5


def test_knob_specs():
    assert isinstance(live.knob_widget("lr", (1e-4, 1e-2, 1e-4)), W.FloatSlider)
    assert isinstance(live.knob_widget("n", (1, 16, 1, 8)), W.IntSlider)
    assert isinstance(live.knob_widget("opt", ["adam", "sgd"]), W.Dropdown)
    assert isinstance(live.knob_widget("norm", True), W.Checkbox)


def test_sweep_runs_every_run_and_stop_skips_the_rest(monkeypatch):
    res = live.sweep({("a", 0): lambda cb: fake_train(cb, lr=0.5), ("b", 0): lambda cb: fake_train(cb, lr=0.2)},
                     steps_per_run=30, target=1.0, title="t")
    assert list(res) == [("a", 0), ("b", 0)] and res["a", 0].final_return == 1.5

    shown = []
    monkeypatch.setattr(live, "display", shown.append)
    started = []

    def press_stop_then_train(cb):
        started.append("x")
        plot_widget = shown[-1]
        stop_button = plot_widget.children[0].children[1]
        stop_button.click()  # Stop pressed during the first run
        return fake_train(cb)

    def never(cb):
        started.append("y")
        return fake_train(cb)

    res = live.sweep({"x": press_stop_then_train, "y": never}, steps_per_run=30)
    assert started == ["x"] and list(res) == ["x"] and res["x"].stopped == "user"
    assert "stopped by you after 1 of 2 runs" in shown[-1].children[1].value


def test_watch_shows_one_run_and_returns_its_history():
    h = live.watch(lambda cb: fake_train(cb, lr=0.5), total_steps=30, target=1.0, title="t")
    assert h.final_return == 1.5 and h.solved


# -- demos from a Config: the knobs start at the Config's (and the Run's) values -----------------------------------
@dataclass
class FakeConfig:
    lr: float = 0.2        # step size
    n: int = 3             # evaluations
    norm: bool = True      # a switch
    hidden: tuple = (8, 8)  # sizes


def train_fake(env_id, cfg=None, run=None):
    """An algorithm's train(env_id, cfg, run): records what it was given, one evaluation per n."""
    train_fake.calls.append((env_id, cfg, run))
    h = fake_train(run.callback, lr=cfg.lr, n=cfg.n)
    h.seed = run.seed
    return h


train_fake.calls = []


def test_demo_from_a_config_starts_the_knobs_at_its_values():
    train_fake.calls.clear()
    cfg = FakeConfig(lr=0.5)
    h = live.demo(train_fake, "E-v0", cfg, knobs={"lr": (0.1, 1.0), "n": (1, 10), "norm": None,
                                                       "hidden": [(4, 4), (16, 16)], "seed": (0, 9)},
                  run=Run(steps=30, target=1.0, seed=2))
    d = h.demo
    assert {k: w.value for k, w in d.knobs.items()} == {"lr": 0.5, "n": 3, "norm": True, "hidden": (8, 8), "seed": 2}
    assert isinstance(d.knobs["n"], W.IntSlider) and isinstance(d.knobs["lr"], W.FloatSlider)
    assert isinstance(d.knobs["norm"], W.Checkbox) and d.knobs["hidden"].options[0] == ("(8, 8)", (8, 8))
    env_id, got_cfg, got_run = train_fake.calls[-1]
    assert (env_id, got_cfg, got_run.steps, got_run.target, got_run.seed) == ("E-v0", cfg, 30, 1.0, 2)
    assert h.final_return == 1.5 and d.plot.total_steps == 30 and d.plot.title == "fake on E-v0"
    d.knobs["lr"].value, d.knobs["n"].value, d.knobs["seed"].value = 0.25, 4, 7
    d.knobs["hidden"].value = (16, 16)
    d.train_button.click()  # Train: a background thread, with the knobs' values
    d.wait(10)
    _, got_cfg, got_run = train_fake.calls[-1]
    assert got_cfg == FakeConfig(lr=0.25, n=4, hidden=(16, 16)) and got_run.seed == 7
    assert d.history.final_return == 1.0


def test_demo_knobs_must_be_fields_and_their_values_in_range():
    with pytest.raises(ValueError, match="knob 'nope' is neither a field of FakeConfig"):
        live.demo(train_fake, "E-v0", FakeConfig(), knobs={"nope": (0, 1)}, run=Run(steps=30))
    with pytest.raises(ValueError, match=r"knob 'lr': its value 0.2 is outside the range \(0.5, 1.0\)"):
        live.demo(train_fake, "E-v0", FakeConfig(), knobs={"lr": (0.5, 1.0)}, run=Run(steps=30))


def test_watch_an_algorithm_under_a_run():
    train_fake.calls.clear()
    h = live.watch(train_fake, "E-v0", FakeConfig(lr=0.5), Run(steps=30, target=1.0))
    assert h.solved and train_fake.calls[-1][2].steps == 30


def test_a_demo_in_a_thread_is_unaffected_by_the_notebook_drawing_random_numbers():
    from lecturekit.algos import gradient_free as gf

    run = Run(steps=1_500, seed=3, eval_every=500, eval_episodes=2)
    first = live.demo(gf.train_cem, "CartPole-v1", gf.CEMConfig(population=16), knobs={"elite_frac": (0.1, 0.5)},
                      run=run)
    d = first.demo
    d.train_button.click()  # the same run again, in a background thread...
    while d._thread.is_alive():  # ...while the notebook draws from every global generator
        torch.rand(100)
        np.random.rand(100)
        random.random()
        d._thread.join(0.001)
    again = d.history
    assert again is not first and d.error is None
    assert [e[:1] + e[2:] for e in again.evals] == [e[:1] + e[2:] for e in first.evals]  # all but the wall time


def test_a_fixed_budget_demo_can_draw_a_target_line():
    h = live.demo(train_fake, "E-v0", FakeConfig(), run=Run(steps=30), target=1.0)
    assert h.demo.plot.target == 1.0 and train_fake.calls[-1][2].target is None  # drawn, not stopped at
