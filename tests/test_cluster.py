"""Grading and benchmark runs on a Dask cluster (`lecturekit.course.cluster`): a local cluster of two worker
processes, started here, gives the same rows as grading here and the same steps as a local benchmark, and a worker
killed mid-run loses no row."""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import operator
import os
import signal
import sys
import threading
import time

import nbformat
import pytest

from lecturekit.algos import get
from lecturekit.course import authoring, cli, cluster, grade

try:
    import distributed
except ImportError:
    distributed = None

needs_dask = pytest.mark.skipif(distributed is None, reason="Dask is not installed: `make cluster-deps` (pip install "
                                "-e '.[cluster]') installs it")
SOLUTIONS = sorted((authoring.ROOT / "solutions").glob("ex*.ipynb"))
LIMITS = ["--timeout", "120", "--cell-timeout", "60"]


@pytest.fixture(scope="module")
def address():
    """A scheduler with two worker processes of one thread each.  Dask gives up on a task at its first lost worker
    (allowed-failures 0), so that the retry seen here is the grader's own."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                      dashboard_address=None) as lc:
            yield lc.scheduler_address


def _stub(name: str):
    return nbformat.read(authoring.ROOT / "exercises" / name, as_version=4)


def _edit(nb, text: str, old: str, new: str):
    cells = [c for c in nb.cells if c.cell_type == "code" and text in c.source and old in c.source]
    assert len(cells) == 1, f"expected one cell with {text!r} and {old!r}"
    cells[0].source = cells[0].source.replace(old, new)
    return nb


def build_submissions(root):
    """key: the course's own solutions; bob: the untouched ex00 stub; carol: ex01 with a sign error; dave: ex00
    whose function kills the sandbox's process; erin: truncated JSON."""
    (root / "key").mkdir()
    for nb in SOLUTIONS:
        (root / "key" / nb.name).write_bytes(nb.read_bytes())
    ex00, ex01 = "ex00_discounted_returns.ipynb", "ex01_scores_and_search.ipynb"
    for student, nb, name in (
            ("bob", _stub(ex00), ex00),
            ("carol", _edit(nbformat.read(root / "key" / ex01, as_version=4), "def gaussian_log_prob",
                            "- log_std -", "+ log_std -"), ex01),
            ("dave", _edit(nbformat.read(root / "key" / ex00, as_version=4), "def discounted_returns",
                           "### BEGIN SOLUTION", "import os\n    os._exit(3)\n    ### BEGIN SOLUTION"), ex00)):
        (root / student).mkdir()
        nbformat.write(nb, root / student / name)
    (root / "erin").mkdir()
    text = (root / "key" / ex00).read_text()
    (root / "erin" / ex00).write_text(text[: len(text) // 3])


def _grade_cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = grade.main(args)
    return status, err.getvalue()


def _rows(csv_path) -> list[tuple]:
    """The CSV's rows without the seconds, in the order written."""
    with open(csv_path) as f:
        return [(r["student"], r["notebook"], r["exercise"], r["result"], r["detail"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    build_submissions(root)
    return root


@pytest.fixture(scope="module")
def local_rows(submissions, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "grades.csv"
    status, err = _grade_cli([str(submissions), *LIMITS, "--jobs", "2", "--csv", str(out)])
    assert status == 0, err
    return _rows(out)


@needs_dask
@pytest.mark.sandbox
def test_cluster_grades_like_local(address, submissions, local_rows, tmp_path):
    out = tmp_path / "grades.csv"
    status, err = _grade_cli([str(submissions), *LIMITS, "--cluster", address, "--csv", str(out)])
    assert status == 0, err
    assert "on the Dask cluster" in err
    rows = _rows(out)
    # written as the notebooks finish (any order); the same rows as grading here
    assert sorted(rows) == sorted(local_rows)
    assert [json.loads(x)["result"] for x in (tmp_path / "grades.jsonl").read_text().splitlines()] == \
        [r[3] for r in rows]
    results = {(s, e): res for s, _, e, res, _ in rows}
    assert len([k for k in results if k[0] == "key"]) >= 30  # every checked function of every exercise
    # whether every solution passes is tests/test_grade*.py's business; the two the wrong submissions come from do
    key = {e: res for (s, e), res in results.items() if s == "key"}
    assert key["discounted_returns"] == key["gaussian_log_prob"] == key["softmax_score"] == "passed"
    assert results["bob", "discounted_returns"] == "not implemented"
    assert results["carol", "gaussian_log_prob"] == "failed" and results["carol", "softmax_score"] == "passed"
    assert results["dave", "discounted_returns"] == "crashed"
    assert results["erin", "discounted_returns"] == "invalid notebook"


def _kill_when_running(address: str, suffix: str, killed: list) -> None:
    """Kill the worker process that runs the task whose key ends with `suffix` (first attempt), once it does."""
    with distributed.Client(address, set_as_default=False) as c:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            for worker, keys in c.processing().items():
                if any(str(k).endswith(suffix) for k in keys):
                    time.sleep(1.0)  # the sandbox is starting or running the notebook's cells
                    pid = c.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.1)


@needs_dask
@pytest.mark.sandbox
def test_a_killed_worker_loses_no_row(address, submissions, local_rows, tmp_path):
    # a notebook that sleeps a little, so that its worker is surely killed while grading it
    slow = tmp_path / "a_slow"
    slow.mkdir()
    nb = nbformat.read(submissions / "key" / "ex00_discounted_returns.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import time\ntime.sleep(6)"))
    nbformat.write(nb, slow / "ex00_discounted_returns.ipynb")
    for name in ("key/ex01_scores_and_search.ipynb", "bob/ex00_discounted_returns.ipynb"):
        (tmp_path / name.split("/")[0]).mkdir()
        (tmp_path / name).write_bytes((submissions / name).read_bytes())
    killed, log = [], []
    killer = threading.Thread(target=_kill_when_running, args=(address, "-0-1", killed))  # a_slow: task 0
    killer.start()
    got = []
    rows = cluster.grade(address, [tmp_path], timeout=120, cell_timeout=60, on_row=got.append, log=log.append)
    killer.join()
    assert killed, "the slow notebook's worker was never seen running it"
    assert any(line.startswith("  a_slow (") and "failed (its worker was lost (KilledWorker)); submitting it once "
               "more" in line for line in log), log
    assert sorted(map(id, got)) == sorted(map(id, rows))  # every row handed on as its notebook finished
    seen = {(r.student, r.exercise): (r.result, r.detail) for r in rows}
    want = {(s, e): (res, d) for s, nb_, e, res, d in local_rows
            if (s, nb_.rsplit("/", 1)[-1]) in {("key", "ex00_discounted_returns.ipynb"),
                                               ("key", "ex01_scores_and_search.ipynb"),
                                               ("bob", "ex00_discounted_returns.ipynb")}}
    want = {("a_slow" if (s, e) == ("key", "discounted_returns") else s, e): v for (s, e), v in want.items()}
    assert seen == want


@needs_dask
def test_a_task_failing_twice_is_reported(address):
    done, log = {}, []
    client = distributed.Client(address, set_as_default=False)
    try:
        cluster.run_tasks(client, operator.truediv, [(1, 0), (6, 3)], lambda k, r, why: done.update({k: (r, why)}),
                          log.append)
    finally:
        client.close()
    assert done == {0: (None, "ZeroDivisionError: division by zero"), 1: (2.0, None)}
    assert log == ["  task 1 failed (ZeroDivisionError: division by zero); submitting it once more"]


@needs_dask
def test_an_unfit_worker_is_refused_before_grading(address, submissions, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "fingerprint", lambda: "not-this-course")
    out = tmp_path / "grades.csv"
    status, err = _grade_cli([str(submissions / "bob"), "--cluster", address, "--csv", str(out)])
    assert status == 2 and "2 of 2 worker(s) cannot be used" in err and "course differs" in err, err
    assert not out.exists() or out.read_text() == ""  # nothing written


@needs_dask
def test_bench_on_the_cluster_gives_the_local_steps(address, tmp_path, monkeypatch, capsys):
    # two algorithms x two seeds, on budgets that take a second: the same runs, so the same steps
    def small(name):
        return dataclasses.replace(get(name), bench_steps=20_000, bench_target=100.0, eval_every=1_000,
                                   eval_episodes=5)

    monkeypatch.setattr(cli, "get_algo", small)
    runs = {}
    for where, extra in (("local", []), ("cluster", ["--cluster", address])):
        assert cli.main(["bench", "cem", "reinforce", "--seeds", "2", "--out", str(tmp_path / where), *extra]) == 0
        runs[where] = json.loads((tmp_path / where / "results.json").read_text())["runs"]
    steps = {w: [(r["algo"], r["seed"], r["solved"], r["solved_at_steps"], r["env_steps"], r["eval_return_mean"])
                 for r in rs] for w, rs in runs.items()}
    assert steps["cluster"] == steps["local"]
    assert [s[:2] for s in steps["local"]] == [("cem", 0), ("cem", 1), ("reinforce", 0), ("reinforce", 1)]
    assert all(s[2] for s in steps["local"])
    assert "cem seed 1: solved=True" in capsys.readouterr().err


def test_without_dask_or_with_a_wrong_address_grade_says_what_to_do(monkeypatch, tmp_path):
    (tmp_path / "ex00_discounted_returns.ipynb").write_text("{}")
    status, err = _grade_cli([str(tmp_path), "--cluster", "nowhere.json", "--csv", ""])
    assert status == 2 and "'nowhere.json' is neither a scheduler's address" in err, err
    for module in ("distributed", "dask.distributed"):  # importing them raises ImportError
        monkeypatch.setitem(sys.modules, module, None)
    status, err = _grade_cli([str(tmp_path), "--cluster", "tcp://127.0.0.1:8786", "--csv", ""])
    assert status == 2 and "--cluster needs Dask" in err and "make cluster-deps" in err, err
