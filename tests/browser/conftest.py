"""Fixtures of the browser suite: one JupyterLab server for the whole module, on a free local port, serving a
temporary copy of the notebooks, with its own HOME and settings; one headless Chromium; a fresh page per test that
leaves a screenshot in tests/browser/artifacts/ when the test fails.

The test module skips itself (with a reason) when Debian's Chromium or Playwright is missing: `make browser-deps`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("LECTUREKIT_CHROMIUM", "/usr/lib/chromium/chromium")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A private HOME, settings and a folder of notebooks that the tests may change freely."""
    base = tmp_path_factory.mktemp("lab")
    (base / "home").mkdir()
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                           "checkForUpdates": False}))
    # start the notebook's kernel without asking; attach every cell to the page so locators see all of them
    tracker = base / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"autoStartDefaultKernel": True,
                                                                     "windowingMode": "none"}))
    nbs = base / "course"
    nbs.mkdir()
    return base


@pytest.fixture(scope="module")
def lab(workdir):
    """A running JupyterLab: {'url', 'token', 'root'} (the root is workdir/course)."""
    port, token = _free_port(), uuid.uuid4().hex
    env = dict(os.environ, HOME=str(workdir / "home"), JUPYTERLAB_SETTINGS_DIR=str(workdir / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"), MPLCONFIGDIR=str(workdir / "home" / "mpl"),
               IPYTHONDIR=str(workdir / "home" / "ipython"), JUPYTER_CONFIG_DIR=str(workdir / "home" / "jupyter"),
               OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    jupyter = Path(sys.executable).with_name("jupyter")
    log = open(workdir / "jupyterlab.log", "w")
    proc = subprocess.Popen([str(jupyter), "lab", "--no-browser", "--allow-root", f"--port={port}",
                             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={workdir / 'course'}", "--ServerApp.port_retries=0",
                             "--LabApp.news_url=", "--ServerApp.open_browser=False"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"JupyterLab did not start: see {workdir / 'jupyterlab.log'}:\n"
                                   + (workdir / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.3)
    yield {"url": url, "token": token, "root": workdir / "course"}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)  # generous: CI shares its cores with the rest of `make test`
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        try:
            pg.screenshot(path=str(shot), full_page=False)
            print(f"screenshot of the failure: {shot}")
        except Exception as e:  # a crashed page must not hide the test's own failure
            print(f"could not take a screenshot: {e}")
    ctx.close()
