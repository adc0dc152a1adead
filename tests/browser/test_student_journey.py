"""The course as a student sees it, in JupyterLab in headless Chromium: run notebook 00 and move its slider, run an
exercise's check with the stub, watch a live demo update while its cell trains and stop it, press Train and watch
the rerun update and stop it, read the static site and follow its links.  One JupyterLab server for the module (conftest.py); notebooks are temporary copies.

`LECTUREKIT_SCREENSHOTS=1` (make screenshots) also saves the README's screenshots to docs/img/.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LECTUREKIT_CHROMIUM", "/usr/lib/chromium/chromium")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM} (run `make browser-deps`)",
                allow_module_level=True)
pytest.importorskip("playwright", reason="browser tests skipped: Playwright is not installed (run `make browser-deps`)")

SAVE_SCREENSHOTS = os.environ.get("LECTUREKIT_SCREENSHOTS") == "1"
RUN_TIMEOUT_MS = 240_000  # Run All on notebook 00 under load


def copy_notebook(src: Path, root: Path) -> None:
    shutil.copy(src, root / src.name)


def screenshot(page, name: str, locator=None) -> None:
    if not SAVE_SCREENSHOTS:
        return
    out = ROOT / "docs" / "img" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    (locator or page).screenshot(path=str(out))


def shutdown_kernels(lab) -> None:
    """Stop every kernel (an earlier test's kernel would only compete for the CPU)."""
    import json
    import urllib.request

    auth = {"Authorization": f"token {lab['token']}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab['url']}/api/kernels", headers=auth)) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(f"{lab['url']}/api/kernels/{k['id']}", method="DELETE", headers=auth)
        urllib.request.urlopen(req).close()


def open_notebook(page, lab, name: str) -> None:
    # ?reset: a fresh workspace, so the notebooks of earlier tests do not reopen in background tabs
    page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={lab['token']}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    # the kernel is connected and idle (the status bar reads "Python 3 (ipykernel) | Idle")
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for(timeout=120_000)


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def wait_until_idle(page, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """All queued cells have run: no '[*]' prompt is left and the kernel is idle."""
    deadline = time.monotonic() + timeout_ms / 1000
    prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt")
    while time.monotonic() < deadline:
        texts = prompts.all_inner_texts()
        started = any(re.search(r"\[(\d+|\*)\]", t) for t in texts)
        idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).count()
        if started and not any("[*]" in t for t in texts) and idle:
            return
        page.wait_for_timeout(250)
    raise AssertionError("the notebook was still running after the time limit")


def error_texts(page) -> list[str]:
    outs = page.locator('.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    return [t for t in outs.all_inner_texts() if "Error" in t or "Traceback" in t]


def test_notebook_00_runs_and_its_slider_works(page, lab):
    copy_notebook(ROOT / "notebooks" / "00_course_map.ipynb", lab["root"])
    open_notebook(page, lab, "00_course_map.ipynb")
    run_all(page)
    wait_until_idle(page)
    assert error_texts(page) == []
    prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert prompts and all(re.search(r"\[\d+\]", p) for p in prompts), f"cells that did not run: {prompts}"

    widget = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider")).filter(has_text="G_0")
    readout = widget.locator(".widget-html-content")
    widget.scroll_into_view_if_needed()
    assert page.locator(".jp-OutputArea-output", has_text="Loading widget").count() == 0
    before = readout.inner_text()
    assert before.startswith("G_0 = 2.000")  # the cell after the widget set gamma = 0.5
    handle = widget.locator(".widget-slider .noUi-handle")
    handle.focus()
    for _ in range(20):
        handle.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.innerText !== old", arg=[readout.element_handle(), before])
    after = readout.inner_text()
    assert after != before and after.startswith("G_0 = ")
    screenshot(page, "course-map-widget")


def test_exercise_stub_says_not_implemented(page, lab):
    copy_notebook(ROOT / "exercises" / "ex00_discounted_returns.ipynb", lab["root"])
    shutdown_kernels(lab)
    open_notebook(page, lab, "ex00_discounted_returns.ipynb")
    run_all(page)  # stops at the first failing cell: the check
    wait_until_idle(page)
    errors = error_texts(page)
    assert len(errors) == 1, errors
    assert "CheckFailed" in errors[0] and "not implemented yet" in errors[0]
    check = page.locator(".jp-NotebookPanel .jp-CodeCell", has_text="check_discounted_returns(discounted_returns)")
    check.last.scroll_into_view_if_needed()
    screenshot(page, "exercise-check")


DEMO_CELLS = [
    "import inspect\n\nimport lecturekit as lk\nfrom lecturekit.course import live\nfrom lecturekit.algos import reinforce\n"
    "from lecturekit.evaluation import Run\n"
    "lk.notebook_setup(seed=0)",
    "def train(callback, lr, n_episodes):\n"
    "    cfg = reinforce.Config(lr=lr, n_episodes=n_episodes)\n"
    "    opts = dict(steps=300_000, seed=0, eval_every=1000, eval_episodes=4, callback=callback)\n"
    "    if 'run' in inspect.signature(reinforce.train).parameters:  # train(env_id, cfg, run) (issue 14)\n"
    "        return reinforce.train('CartPole-v1', cfg, Run(**opts))\n"
    "    return reinforce.train('CartPole-v1', cfg, **opts)\n\n\n"
    "KNOBS = {'lr': (1e-3, 3e-2, 1e-3, 1e-2), 'n_episodes': (4, 32, 4, 8)}",
    # the default run trains inside the cell: Stop must work while the cell is still busy
    "first = live.demo(train, knobs=KNOBS, total_steps=300_000, target=475, title='the default run')",
    "print('first run:', first.stopped)",
    "demo = live.demo(train, knobs=KNOBS, total_steps=300_000, target=475, title='REINFORCE on CartPole-v1',\n"
    "                 run_default=False)",
]


def watch_training(page, area, min_steps: int = 0) -> None:
    """See the status line, the progress bar and the curve change while training runs."""
    status = area.locator(".widget-html-content").first
    bar = area.locator(".widget-hprogress .progress-bar")
    image = area.locator(".widget-image")
    steps, widths, images = set(), set(), set()
    deadline = time.monotonic() + 180
    enough = lambda: max(int(x.replace(",", "")) for x in steps) >= min_steps  # noqa: E731
    while (len(steps) < 3 or len(images) < 2 or not enough()) and time.monotonic() < deadline:
        text = status.inner_text()
        assert not text.startswith("done"), f"training ended before two updates were seen: {text}"
        m = re.search(r"step ([\d,]+) /", text)
        if m:
            steps.add(m.group(1))
            widths.add(bar.evaluate("el => el.style.width || getComputedStyle(el).width"))
            images.add(image.get_attribute("src"))
        page.wait_for_timeout(150)
    assert len(steps) >= 3, f"the status line showed only {steps}"
    assert len(widths) >= 2, f"the progress bar did not move: {widths}"
    assert len(images) >= 2, "the learning curve was not redrawn during training"


def press_stop(page, area) -> str:
    status = area.locator(".widget-html-content").first
    area.locator(".widget-button", has_text="Stop").click()
    page.wait_for_function("el => el.innerText.startsWith('done')", arg=status.element_handle(), timeout=60_000)
    return status.inner_text()


def test_training_demo_updates_live_and_stops(page, lab):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in DEMO_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab["root"] / "live_demo.ipynb")
    shutdown_kernels(lab)
    open_notebook(page, lab, "live_demo.ipynb")
    run_all(page)
    demos = page.locator(".jp-OutputArea-output", has=page.locator(".widget-button"))
    first = demos.first
    first.locator(".widget-image").wait_for()
    watch_training(page, first)  # the default run, while its cell is running
    assert "stopped by you" in press_stop(page, first)
    wait_until_idle(page)
    assert error_texts(page) == []
    assert page.locator(".jp-OutputArea-output", has_text="first run: user").count() == 1

    area = demos.nth(1)
    area.locator(".widget-button", has_text="Train").click()  # a rerun, in a background thread
    watch_training(page, area, min_steps=40_000 if SAVE_SCREENSHOTS else 0)  # the README's picture: a longer curve
    screenshot(page, "live-demo", area)
    assert "stopped by you" in press_stop(page, area)


def test_static_site_index_and_links(page, tmp_path):
    out = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "lecturekit.course.site", "00", "01", "ex00", "--no-execute",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    page.goto((out / "index.html").as_uri())
    links = page.locator("#lectures a")
    assert links.count() == 2
    links.first.click()
    page.wait_for_url(re.compile(r"notebooks/00_course_map\.html$"))
    assert "Course map" in page.locator("h1").first.inner_text()
    page.locator("a", has_text="01 Policy-based learning").first.click()
    page.wait_for_url(re.compile(r"notebooks/01_policy_based_learning\.html$"))
    assert page.locator("h1").first.inner_text().strip() != ""
    page.locator(".lk-nav a", has_text="course index").click()
    page.wait_for_url(re.compile(r"index\.html$"))
    assert page.locator("#exercises a").count() == 1
