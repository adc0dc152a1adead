"""`make lab` as the README says it, in headless Chromium: on a temporary copy of the course, `make lab LAB_PORT=...
LAB_TOKEN=...` copies the exercises into work/ and starts JupyterLab; the link it prints opens the course map; the file
browser reaches notebooks/, exercises/ and work/ from one root; the map's links open the lectures; an exercise opens from work/ through the file
browser, runs, and saving it writes the student's copy in work/ and never exercises/.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
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
CHROMIUM = os.environ.get("LECTUREKIT_CHROMIUM", "/usr/lib/chromium/chromium")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM} (run `make browser-deps`)",
                allow_module_level=True)
pytest.importorskip("playwright", reason="browser tests skipped: Playwright is not installed (run `make browser-deps`)")

COURSE_FILES = ("Makefile", "pyproject.toml", "jupytext.toml", ".gitignore", "lab", "lecturekit", "notebooks",
                "solutions", "exercises")
EX = "ex00_discounted_returns"


def copy_course(dest: Path) -> Path:
    """The course's files (not .git, .venv, work/), with a symlink to this test's .venv (already set up)."""
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.egg-info")
    for name in COURSE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)  # copy2 keeps the times: .venv's stamp stays newer than pyproject.toml
    (dest / ".venv").symlink_to(Path(sys.prefix))
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digests(*paths: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def make_lab(tmp_path_factory):
    """`make lab LAB_PORT=<free port> LAB_TOKEN=<random>` running in a temporary copy of the course:
    {'root', 'url' (the link it printed), 'log'}."""
    base = tmp_path_factory.mktemp("make_lab")
    root = copy_course(base / "course")
    if subprocess.run(["make", "-q", "setup"], cwd=root, capture_output=True).returncode != 0:
        pytest.fail("the .venv is not up to date (pyproject.toml is newer): run `make setup` first; this test must "
                    "not reinstall the course into it")
    home = base / "home"
    (home / "jupyter").mkdir(parents=True)
    # a student would see a browser tab open; here no browser may start from the server
    (home / "jupyter" / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"open_browser": False}}))
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                           "checkForUpdates": False}))
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "jupyter"),
               JUPYTERLAB_SETTINGS_DIR=str(base / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
               MPLCONFIGDIR=str(home / "mpl"), IPYTHONDIR=str(home / "ipython"))
    port, token = free_port(), uuid.uuid4().hex
    log_path = base / "make_lab.log"
    log = open(log_path, "w")
    # its own session: at the end the test stops make and the JupyterLab it started, and nothing else
    proc = subprocess.Popen(["make", "lab", f"LAB_PORT={port}", f"LAB_TOKEN={token}"], cwd=root, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # the link it prints (with the token masked as '...' when the token was given)
    link = re.compile(rf"http://127\.0\.0\.1:{port}/\S*\?token=(\.\.\.|{token})")
    deadline = time.monotonic() + 120
    while True:
        found = link.search(log_path.read_text())
        if found:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
            raise RuntimeError(f"`make lab` did not start JupyterLab:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.3)
    yield {"root": root, "url": found.group(0).replace("token=...", f"token={token}"), "log": log_path}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def open_from_file_browser(page, name: str) -> None:
    page.locator(".jp-DirListing-itemText", has_text=re.compile(rf"^{re.escape(name)}$")).dblclick()


def test_make_lab_serves_the_course_and_an_exercise_opens_from_work(page, make_lab):
    root = make_lab["root"]
    work, exercise = root / "work", root / "exercises" / f"{EX}.ipynb"
    assert (work / f"{EX}.ipynb").exists() and (work / f"{EX}.py").exists(), make_lab["log"].read_text()
    originals = digests(exercise, exercise.with_suffix(".py"))

    page.goto(make_lab["url"])  # the link `make lab` printed: the course map
    current = page.locator(".lm-TabBar-tab.lm-mod-current", has_text="00_course_map.ipynb")
    current.wait_for()
    page.locator(".jp-NotebookPanel:visible .jp-MarkdownCell", has_text="Course map").first.wait_for()
    # its links open the lecture notebooks
    page.locator(".jp-NotebookPanel:visible .jp-MarkdownCell a", has_text="01 Policy-based learning").first.click()
    page.locator(".lm-TabBar-tab.lm-mod-current", has_text="01_policy_based_learning.ipynb").wait_for()
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for()

    # the file browser starts in notebooks/; its root is the course folder, with the lectures and the exercises
    page.locator(".jp-BreadCrumbs-home").click()
    listing = page.locator(".jp-DirListing-content .jp-DirListing-itemText")
    page.wait_for_function("() => [...document.querySelectorAll('.jp-DirListing-itemText')]"
                           ".some(e => e.innerText.trim() === 'work')")
    names = {t.strip() for t in listing.all_inner_texts()}
    assert {"notebooks", "exercises", "work", "solutions"} <= names, names
    open_from_file_browser(page, "work")
    open_from_file_browser(page, f"{EX}.ipynb")
    page.locator(".lm-TabBar-tab.lm-mod-current", has_text=f"{EX}.ipynb").wait_for()
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.locator(".jp-CodeCell", has_text="def discounted_returns").wait_for()
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for(timeout=120_000)

    # run it: the check says "not implemented yet" (the stub), from the student's copy
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    panel.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
                  has_text="not implemented yet").first.wait_for(timeout=120_000)
    panel.locator(".jp-Notebook").click()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while "not implemented yet" not in (work / f"{EX}.ipynb").read_text() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "not implemented yet" in (work / f"{EX}.ipynb").read_text(), "saving did not write work/"
    assert digests(exercise, exercise.with_suffix(".py")) == originals, "the student's run changed exercises/"
