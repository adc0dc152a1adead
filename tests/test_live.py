"""Live demo widgets: the callback draws and honours Stop; demo() runs the default synchronously; Train reruns in a
thread with the knobs' values."""
import ipywidgets as W

from lecturekit.course import live
from lecturekit.evaluation import History


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
