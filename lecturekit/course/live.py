"""Live training demos for the classroom: a learning curve that redraws while training runs, a progress bar with
steps, return and elapsed time, a Stop button, and the demo's knobs as widgets with a Train button.

    history = live.demo(ppo.train, "CartPole-v1", ppo.Config(), knobs={"lr": (1e-4, 1e-2), "epochs": (1, 20)},
                        run=Run(steps=50_000, target=475))

Every knob is a field of the Config (or an option of the Run, such as `seed`) and starts at the value it has there,
so a notebook states no default twice; the knob gives only the range.  The seeded default run happens at once
(synchronously, so nbval can assert on the returned History); pressing Train reruns with the knobs' values in a
background thread, so the kernel stays responsive and Stop works.  Stop also works during the default run: its
clicks are handled by a kernel subshell (ipykernel 7) while the cell trains.  Training code reports through the
Run's callback; this module only draws, and draws no random numbers: a run depends on its Config and Run (its seed)
only, whatever the notebook does meanwhile.

For training that is not an algorithm's `train(env_id, cfg, run)`, `demo(fn, knobs=..., total_steps=...)` takes
`fn(callback, **knob_values) -> History` and knobs with their defaults (`knob_widget`).
"""
from __future__ import annotations

import dataclasses
import io
import math
import threading
import time
from typing import Any, Callable

import ipywidgets as W
import numpy as np
from IPython.display import display
from matplotlib.figure import Figure


def _axes_png(draw, target: float | None, title: str, total_steps: int) -> bytes:
    """A learning-curve figure as PNG bytes: `draw(ax)` plots the curves; target line, labels and legend here."""
    fig = Figure(figsize=(6.4, 3.2), dpi=80)
    ax = fig.add_subplot()
    draw(ax)
    if target is not None:
        ax.axhline(target, color="C2", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlim(0, total_steps)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _curve_png(points: list, target: float | None, title: str, total_steps: int) -> bytes:
    """One run: mean evaluation return with a +- std band."""

    def draw(ax):
        if points:
            x, m, s = (np.array(v, dtype=float) for v in zip(*points))
            ax.plot(x, m, "o-", ms=3, color="C0", label="eval return (mean)")
            ax.fill_between(x, m - s, m + s, color="C0", alpha=0.2)

    return _axes_png(draw, target, title, total_steps)


# --- in-cell Stop (studentwork, issue 16): relies on ipykernel internals, so pyproject.toml pins ipykernel and
# jupyter_client to the tested versions; tests/test_live_stop.py clicks Stop in a real kernel through its comm.
_STOP_SUBSHELL: list = []  # the kernel subshell that hears Stop clicks (created once per kernel)
STOP_NOTE = ("<small>Stop acts only when this cell ends: this kernel cannot take a click while a cell runs (that "
             "needs the course's ipykernel: run <code>make setup</code>). To stop now: Kernel, Interrupt "
             "Kernel.</small>")


def _route_to_subshell(widget: W.Widget) -> bool:
    """Let clicks on `widget` be handled while the cell that trains is still running; True if they will be.

    A kernel handles one shell message at a time, so a click on Stop during the default run (which trains in the
    cell itself) would wait until training ends.  ipykernel 7 can route a comm's messages to a *subshell*, a
    second shell thread; we route the Stop button's comm there, and the click sets the flag that the training
    loop's callback reads.  This uses ipykernel internals (`_supports_kernel_subshells`, the subshell manager,
    the comm's `_reply_subshell_id`, tested with the pinned ipykernel 7.4.0).  Without such a kernel (plain
    Python, another ipykernel) it returns False: Stop then works for Train reruns, which run in a background
    thread, and LivePlot shows STOP_NOTE during in-cell runs.
    """
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        channel = getattr(kernel, "shell_channel_thread", None)
        comm = getattr(widget, "comm", None)
        if channel is None or comm is None or not getattr(kernel, "_supports_kernel_subshells", False):
            return False
        if not _STOP_SUBSHELL:
            made, done = [], threading.Event()

            def create():  # subshells are created on the shell channel's own thread
                try:
                    made.append(channel.manager._create_subshell())
                finally:
                    done.set()

            channel.io_loop.add_callback(create)
            if not done.wait(5) or not made:
                return False
            _STOP_SUBSHELL.append(made[0])
        # set again on every call: ipykernel resets it whenever the button's comm sends from the main shell
        comm._reply_subshell_id = _STOP_SUBSHELL[0]
        return True
    except Exception:  # an optional convenience: never let it break a demo
        return False


class LivePlot:
    """Learning curve + progress bar + Stop button.  Pass `plot.callback` as a Monitor callback."""

    def __init__(self, total_steps: int, target: float | None = None, title: str = "", min_redraw_s: float = 0.25):
        self.total_steps, self.target, self.title = int(total_steps), target, title
        self.min_redraw_s = min_redraw_s
        self.image = W.Image(format="png", layout=W.Layout(width="520px"))
        self.progress = W.IntProgress(min=0, max=self.total_steps, description="steps",
                                      layout=W.Layout(width="360px"))
        self.status = W.HTML("ready")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop",
                                    layout=W.Layout(width="90px"))
        self.stop_button.on_click(lambda _: self.request_stop())
        self.note = W.HTML("", layout=W.Layout(display="none"))  # shown when Stop cannot act during the cell
        self.widget = W.VBox([W.HBox([self.progress, self.stop_button]), self.status, self.note, self.image])
        self.reset()

    def reset(self) -> None:
        self.points: list = []
        self.stop_requested = False
        self._last_draw = 0.0
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.status.value = "training..."
        self.image.value = _curve_png([], self.target, self.title, self.total_steps)

    def request_stop(self) -> None:
        self.stop_requested = True
        self.status.value = "stopping after the current update..."

    def enable_in_cell_stop(self) -> None:
        """In a cell's own run (the main thread), make Stop clickable while the cell trains, or say why not."""
        if threading.current_thread() is not threading.main_thread():
            return  # a Train rerun: the kernel is free to handle the click
        if not _route_to_subshell(self.stop_button) and not self.note.value:
            self.note.value, self.note.layout.display = STOP_NOTE, None

    def callback(self, event: dict) -> bool:
        """Monitor callback: record the evaluation, redraw (at most every min_redraw_s), False if Stop was pressed."""
        self.enable_in_cell_stop()
        self.points.append((event["env_steps"], event["eval_mean"], event["eval_std"]))
        self.progress.value = min(int(event["env_steps"]), self.total_steps)
        self.status.value = (f"step {event['env_steps']:,} / {self.total_steps:,} &nbsp;·&nbsp; eval return "
                             f"{event['eval_mean']:.1f} ± {event['eval_std']:.1f} &nbsp;·&nbsp; "
                             f"{event['wall_s']:.1f} s")
        now = time.perf_counter()
        if now - self._last_draw >= self.min_redraw_s:
            self._redraw()
            self._last_draw = now
        return not self.stop_requested

    def _redraw(self) -> None:
        self.image.value = _curve_png(self.points, self.target, self.title, self.total_steps)

    def finish(self, history) -> None:
        self._redraw()
        how = {"target": "target reached", "budget": "step budget used", "user": "stopped by you"}.get(
            history.stopped, history.stopped)
        self.progress.bar_style = "success" if history.solved else "warning"
        self.status.value = (f"done ({how}): {history.env_steps:,} steps, {history.wall_s:.1f} s, "
                             f"final eval return {history.final_return:.1f}")


def knob_widget(name: str, spec: Any) -> W.Widget:
    """A widget from a short spec: a widget as is; (min, max, step) -> slider; list -> dropdown; bool -> checkbox;
    a number or string -> a text box.  The first entry of a list, and the middle of nothing, is the default:
    for sliders give (min, max, step, default)."""
    style = {"description_width": "initial"}
    if isinstance(spec, W.Widget):
        return spec
    if isinstance(spec, tuple) and len(spec) in (3, 4):
        lo, hi, step = spec[:3]
        value = spec[3] if len(spec) == 4 else lo
        cls = W.IntSlider if all(isinstance(v, int) for v in (lo, hi, step, value)) else W.FloatSlider
        extra = {} if cls is W.IntSlider else {"readout_format": ".4g"}
        return cls(min=lo, max=hi, step=step, value=value, description=name, style=style, continuous_update=False,
                   **extra)
    if isinstance(spec, list):
        return W.Dropdown(options=spec, value=spec[0], description=name, style=style)
    if isinstance(spec, bool):
        return W.Checkbox(value=spec, description=name, style=style)
    if isinstance(spec, int):
        return W.IntText(value=spec, description=name, style=style)
    if isinstance(spec, float):
        return W.FloatText(value=spec, description=name, style=style)
    if isinstance(spec, str):
        return W.Text(value=spec, description=name, style=style)
    raise ValueError(f"knob '{name}': cannot make a widget from {spec!r}")


class Demo:
    """Knobs + Train button + LivePlot around a `train_fn(callback=..., **knobs) -> History`."""

    def __init__(self, train_fn: Callable, knobs: dict, total_steps: int, target: float | None = None,
                 title: str = ""):
        self.train_fn = train_fn
        self.knobs = {k: knob_widget(k, v) for k, v in knobs.items()}
        self.plot = LivePlot(total_steps, target, title)
        self.train_button = W.Button(description="Train", button_style="success", icon="play")
        self.train_button.on_click(lambda _: self.start())
        self.history = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        rows = [W.HBox(list(self.knobs.values())[i:i + 3]) for i in range(0, len(self.knobs), 3)]
        self.widget = W.VBox([*rows, self.train_button, self.plot.widget])

    def values(self) -> dict:
        return {k: w.value for k, w in self.knobs.items()}

    def run(self):
        """Train with the knobs' current values in this thread; returns the History."""
        self.plot.reset()
        self.train_button.disabled = True
        try:
            self.history = self.train_fn(callback=self.plot.callback, **self.values())
            self.plot.finish(self.history)
        except Exception as e:  # shown in the widget: a failed rerun must not kill the demo
            self.error = f"{type(e).__name__}: {e}"
            self.plot.status.value = f"<b>training failed</b>: {self.error}"
            self.plot.progress.bar_style = "danger"
            raise
        finally:
            self.train_button.disabled = False
        return self.history

    def start(self) -> None:
        """Rerun in a background thread (the Train button), so Stop stays clickable."""
        if self._thread is not None and self._thread.is_alive():
            return

        def target():
            try:
                self.run()
            except Exception:
                pass  # already shown in the status line

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def _nice_step(lo: float, hi: float) -> float:
    """A power of ten giving about 100 to 1000 slider positions between lo and hi."""
    return 10.0 ** math.floor(math.log10((hi - lo) / 100)) if hi > lo else 1.0


def field_knob(name: str, spec: Any, value: Any) -> W.Widget:
    """A widget for a Config field (or Run option) whose current value is `value`:
    (lo, hi) or (lo, hi, step) -> a slider (integer if the field is), list -> a dropdown of those values,
    None -> a checkbox for a bool, a text box otherwise; a widget as is."""
    style = {"description_width": "initial"}
    if isinstance(spec, W.Widget):
        return spec
    if spec is None:
        return knob_widget(name, value)
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        lo, hi = spec[:2]
        if not lo <= value <= hi:
            raise ValueError(f"knob '{name}': its value {value!r} is outside the range ({lo}, {hi})")
        if isinstance(value, int) and not isinstance(value, bool):
            step = int(spec[2]) if len(spec) == 3 else 1
            return W.IntSlider(min=int(lo), max=int(hi), step=step, value=value, description=name, style=style,
                               continuous_update=False)
        step = spec[2] if len(spec) == 3 else _nice_step(lo, hi)
        return W.FloatSlider(min=lo, max=hi, step=step, value=value, description=name, style=style,
                             continuous_update=False, readout_format=".4g")
    if isinstance(spec, list):
        options = spec if value in spec else [value, *spec]
        # (label, value) pairs: ipywidgets would read a tuple value, e.g. hidden sizes (64, 64), as such a pair
        return W.Dropdown(options=[(str(v), v) for v in options], value=value, description=name, style=style)
    raise ValueError(f"knob '{name}': give a range (lo, hi), a list of values or None, not {spec!r}")


def _algo_name(train: Callable) -> str:
    name = getattr(train, "__name__", "")
    return name[len("train_"):] if name.startswith("train_") else train.__module__.rsplit(".", 1)[-1]


def config_trainer(train: Callable, env_id: str, cfg: Any, run: Any, knobs: dict) -> tuple[Callable, dict]:
    """`fn(callback, **knob_values) -> History` that trains with `cfg` and `run` changed by the knobs' values, and
    the knobs as widgets, each starting at the value its field has in `cfg` (or `run`)."""
    from lecturekit.algos import call_train

    run_options = {f.name for f in dataclasses.fields(run)} - {"callback"}
    fields = {f.name for f in dataclasses.fields(cfg)}
    for name in knobs:
        if name not in fields and name not in run_options:
            raise ValueError(f"knob '{name}' is neither a field of {type(cfg).__qualname__} "
                             f"({', '.join(sorted(fields))}) nor a run option ({', '.join(sorted(run_options))})")
    widgets = {k: field_knob(k, spec, getattr(cfg if k in fields else run, k)) for k, spec in knobs.items()}

    def fn(callback, **values):
        def typed(source, k):  # a slider hands back 3.0 for an int field, or 3 for a float one
            old = getattr(source, k)
            return type(old)(values[k]) if type(old) in (int, float) else values[k]

        c = dataclasses.replace(cfg, **{k: typed(cfg, k) for k in values if k in fields})
        r = dataclasses.replace(run, callback=callback, **{k: typed(run, k) for k in values if k not in fields})
        return call_train(train, env_id, c, r)

    return fn, widgets


def demo(train: Callable, env_id: str | None = None, cfg: Any = None, knobs: dict | None = None, run: Any = None, *,
         title: str = "", run_default: bool = True, total_steps: int | None = None, target: float | None = None):
    """Show a training demo and (by default) run it once with the knobs at their defaults; returns that History.

    The usual form, `demo(algo.train, env_id, algo.Config(...), knobs={field: range}, run=Run(...))`: the knobs'
    defaults are the Config's (and the Run's) values, the curve's length and target line the Run's (`target=` draws
    a line for a run that has no target to stop at).
    The general form, `demo(fn, knobs={name: spec}, total_steps=..., target=...)`, trains with
    `fn(callback=..., **knob_values)`; a spec is as `knob_widget` takes it, with its default.
    The Demo object is available as `history.demo` so a notebook can rerun it (`history.demo.run()`).
    """
    if isinstance(env_id, str):
        from lecturekit.evaluation import Run

        run = run if run is not None else Run()
        if cfg is None:
            raise ValueError("demo(train, env_id, cfg, ...): give the Config whose values the knobs start from")
        title = title or f"{_algo_name(train)} on {env_id}"
        train, knobs = config_trainer(train, env_id, cfg, run, knobs or {})
        total_steps, target = run.steps, run.target if run.target is not None else target
    d = Demo(train, knobs or {}, total_steps or 100_000, target, title)
    display(d.widget)
    if not run_default:
        return d
    history = d.run()
    history.demo = d
    return history


def _sweep_png(curves: dict, target: float | None, title: str, total_steps: int) -> bytes:
    """Several runs: one line each, one colour per first element of the run's key (e.g. the method)."""

    def draw(ax):
        colors: dict = {}
        for key, points in curves.items():
            group = key[0] if isinstance(key, tuple) else key
            color = colors.setdefault(group, f"C{len(colors) % 10}")
            if points:
                x, m = zip(*points)
                first = str(group) not in ax.get_legend_handles_labels()[1]
                ax.plot(x, m, "-", color=color, alpha=0.8, label=str(group) if first else None)

    return _axes_png(draw, target, title, total_steps)


def sweep(runs: dict, steps_per_run: int, target: float | None = None, title: str = "") -> dict:
    """Several training runs one after the other (seeds, ablations), shown live: one progress bar over all of them,
    a learning curve per run (one colour per first element of the run's key), and a Stop button that ends the
    current run and skips the rest.

    runs: {key: fn(callback) -> History}, e.g. {("A2C", 0): lambda cb: a2c.train(..., seed=0, callback=cb)}.
    Returns {key: History} for the runs that ran, in order.
    """
    total = steps_per_run * len(runs)
    plot = LivePlot(total, target, title)  # its progress bar, status line, Stop button and image
    plot.progress.max = total
    display(plot.widget)
    curves: dict = {key: [] for key in runs}
    results: dict = {}
    for i, (key, fn) in enumerate(runs.items()):
        if plot.stop_requested:
            break

        def callback(event, key=key, offset=i * steps_per_run):
            curves[key].append((event["env_steps"], event["eval_mean"]))
            plot.progress.value = min(offset + int(event["env_steps"]), total)
            plot.status.value = (f"run {len(results) + 1} of {len(runs)} ({key}): step {event['env_steps']:,}, "
                                 f"eval return {event['eval_mean']:.1f} &nbsp;·&nbsp; {event['wall_s']:.1f} s")
            now = time.perf_counter()
            if now - plot._last_draw >= plot.min_redraw_s:
                plot.image.value = _sweep_png(curves, target, title, steps_per_run)
                plot._last_draw = now
            return not plot.stop_requested

        plot.enable_in_cell_stop()
        results[key] = fn(callback)
        plot.progress.value = (i + 1) * steps_per_run
    plot.image.value = _sweep_png(curves, target, title, steps_per_run)
    plot.progress.bar_style = "warning" if plot.stop_requested else "success"
    plot.status.value = (f"stopped by you after {len(results)} of {len(runs)} runs" if plot.stop_requested
                         else f"done: {len(results)} runs")
    return results


def watch(train: Callable, env_id: str | None = None, cfg: Any = None, run: Any = None, *, title: str = "",
          total_steps: int | None = None, target: float | None = None):
    """One run shown live (curve, progress bar, Stop) without knobs.

    `watch(algo.train, env_id, cfg, run)` trains `cfg` under `run` (its callback replaced by the plot's);
    `watch(fn, total_steps=..., target=..., title=...)` calls `fn(callback) -> History`.
    """
    fn = train
    if env_id is not None:
        from lecturekit.algos import call_train
        from lecturekit.evaluation import Run

        run = run if run is not None else Run()
        title = title or f"{_algo_name(train)} on {env_id}"
        fn = lambda callback: call_train(train, env_id, cfg, dataclasses.replace(run, callback=callback))  # noqa
        total_steps, target = run.steps, run.target
    plot = LivePlot(total_steps, target, title)
    display(plot.widget)
    history = fn(plot.callback)
    plot.finish(history)
    return history
