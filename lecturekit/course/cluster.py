"""Grading and benchmark sweeps on a Dask cluster: one notebook (one benchmark run) per task.

    python -m lecturekit grade submissions/ --cluster tcp://scheduler:8786
    python -m lecturekit bench cem reinforce --seeds 5 --cluster tcp://scheduler:8786

ADDRESS is what `distributed.Client` takes (`tcp://host:8786`) or a scheduler file (`dask scheduler
--scheduler-file FILE`); from Python, `grade` and `bench` also take a `Client` (Dask Gateway, dask-jobqueue).
Without `--cluster` nothing here runs and nothing needs Dask.

A task's body is the local one: `grade.grade_notebook` for a notebook, so each worker runs the submission in the
same bubblewrap sandbox and decides the verdicts with the same checkers; `cli.bench_one` for a run.  The notebook's
bytes travel with its task (the workers need not see the instructor's files) and its rows come back when the task
ends, and are handed on at once (`grade` writes them to the CSV and JSON lines as they arrive).  Dask itself runs a
task again when its worker is lost, up to the scheduler's `distributed.scheduler.allowed-failures` times; when Dask
gives up (`KilledWorker`) or the task fails on the grader's side, it is submitted once more, and a second failure
makes its rows "crashed" with the detail "grader error: ...".  A lost worker costs only its own tasks.

Every worker needs the course at the same version as this machine (same `lecturekit` sources, same exercise
checks, same Python, torch and NumPy), bubblewrap for grading, and this package's `cluster` extra.  The workers
present when a run starts are checked before the first task (`check_workers`), and each task checks its worker
again (workers may join later), so a worker that would decide differently grades nothing.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import re
import sys
import uuid
from pathlib import Path
from typing import Any, Callable

from lecturekit.course import grade as gr

PACKAGE = Path(__file__).resolve().parents[1]  # lecturekit/
INSTALL = "pip install -e '.[cluster]' (or: make cluster-deps)"


class ClusterError(Exception):
    """The cluster cannot be used: Dask missing, scheduler unreachable, or a worker unfit (said in one message)."""


class WorkerUnfit(Exception):
    """Raised by a task on a worker that would not decide the way this machine does."""


# -- the course's fingerprint: what a worker must share with this machine --------------------------------------
@functools.lru_cache(maxsize=None)
def fingerprint(exercise_dir: Path = gr.EXERCISE_DIR) -> str:
    """A hash of everything that decides a verdict or a run: the `lecturekit` sources, the checks each course
    exercise expects, and the Python, torch and NumPy versions."""
    h = hashlib.sha256()
    for f in sorted(PACKAGE.rglob("*.py")):
        h.update(f.relative_to(PACKAGE).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    for nb in sorted(exercise_dir.glob("ex*.ipynb")):
        h.update(nb.name.encode() + b"\0" + repr([c.call for c in gr.expected_checks(nb, exercise_dir)]).encode())
    for dist in ("torch", "numpy"):
        try:
            h.update(f"{dist}=={importlib.metadata.version(dist)}".encode())
        except importlib.metadata.PackageNotFoundError:
            pass
    h.update(platform.python_version().encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def worker_problem(course: str, sandbox: bool) -> str | None:
    """None if this machine (a worker) decides as the one whose fingerprint is `course`, else why not."""
    from lecturekit.course import sandbox as sb

    mine = fingerprint()
    if mine != course:
        return (f"its course differs from the grader's (fingerprint {mine} on the worker, {course} on the grader's "
                "machine: another version of lecturekit, of the exercises, or of Python, torch or NumPy)")
    return sb.bwrap_problem() if sandbox else None


def check_workers(client, course: str, sandbox: bool) -> int:
    """The number of workers now; ClusterError naming each worker that is unfit (see `worker_problem`)."""
    answers = client.run(worker_problem, course, sandbox, on_error="return")
    bad = [f"{w}: {why if not isinstance(why, BaseException) else f'{type(why).__name__}: {why}'}"
           for w, why in sorted(answers.items()) if why]
    if bad:
        raise ClusterError(f"{len(bad)} of {len(answers)} worker(s) cannot be used:\n  " + "\n  ".join(bad)
                           + "\nEach worker needs the course at this version, bubblewrap (make grade-deps) and Dask "
                           f"({INSTALL}).")
    return len(answers)


def connect(cluster):
    """(client, owned): a `Client` as given, or one connected to an address or scheduler file (owned: close it).
    A mistyped address is reported first, whether Dask is installed or not."""
    if isinstance(cluster, (str, os.PathLike)):
        cluster = str(cluster)
        if not os.path.isfile(cluster) and not re.fullmatch(r"[a-z]+://\S+|[^\s/:]+:\d+", cluster):
            raise ClusterError(f"'{cluster}' is neither a scheduler's address (tcp://host:8786) nor a scheduler file")
    try:
        from dask.distributed import Client
    except ImportError:
        raise ClusterError(f"--cluster needs Dask, which is not installed here: {INSTALL}") from None
    if isinstance(cluster, Client):
        return cluster, False
    cluster = str(cluster)
    try:
        if os.path.isfile(cluster):
            return Client(scheduler_file=cluster, timeout=30, set_as_default=False), True
        return Client(cluster, timeout=30, set_as_default=False), True
    except (OSError, TimeoutError, ValueError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {cluster} ({type(e).__name__}: "
                           f"{gr._first_line(e)})") from None


def open_client(cluster, sandbox: bool = True):
    """A client of `cluster` whose present workers are all fit (`check_workers`); ClusterError otherwise."""
    client, owned = connect(cluster)
    try:
        check_workers(client, fingerprint(), sandbox)
    except BaseException:
        if owned:
            client.close()
        raise
    return client


# -- submitting, gathering as they finish, one retry ---------------------------------------------------------
def _why(exc: BaseException) -> str:
    from dask.distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return "its worker was lost (KilledWorker)"
    return f"{type(exc).__name__}: {gr._first_line(exc)[:200]}"


def run_tasks(client, fn: Callable, calls: list[tuple], done: Callable[[int, Any, str | None], None],
              log: Callable[[str], None] | None = None, retries: int = 1,
              label: Callable[[int], str] = lambda k: f"task {k + 1}") -> None:
    """Submit `fn(*calls[k])` for every k; `done(k, result, None)` as each one finishes (in any order), or
    `done(k, None, why)` once the task failed 1 + `retries` times (`log` says so at each retry, naming the task
    `label(k)`).  Ctrl-C cancels what is left and raises KeyboardInterrupt."""
    from dask.distributed import as_completed

    run = uuid.uuid4().hex[:8]
    attempts: dict[int, int] = {}
    index: dict[str, int] = {}

    def submit(k: int):
        attempts[k] = attempts.get(k, 0) + 1
        key = f"{getattr(fn, '__name__', 'task')}-{run}-{k}-{attempts[k]}"
        index[key] = k
        return client.submit(fn, *calls[k], key=key, pure=False)

    pending = as_completed([submit(k) for k in range(len(calls))], loop=client.loop)
    try:
        for fut in pending:
            k = index[fut.key]
            try:
                result, why = fut.result(), None
            except BaseException as e:  # noqa: BLE001 - a failed task (or a cancelled one), never Ctrl-C here
                if isinstance(e, KeyboardInterrupt):
                    raise
                result, why = None, _why(e)
            fut.release()
            if why and attempts[k] <= retries:
                if log:
                    log(f"  {label(k)} failed ({why}); submitting it once more")
                pending.add(submit(k))
                continue
            done(k, result, why)
    except KeyboardInterrupt:
        client.cancel(list(pending.futures))
        raise


def _check_here(course: str, sandbox: bool) -> None:
    problem = worker_problem(course, sandbox)
    if problem:
        from dask.distributed import get_worker

        raise WorkerUnfit(f"worker {get_worker().address}: {problem}")


# -- grading ------------------------------------------------------------------------------------------------
def _grade_task(name: str, data: bytes, student: str, timeout: float, cell_timeout: float, limits, unsafe: bool,
                course: str) -> list:
    """A task: check this worker, then `grade.grade_notebook` on the notebook's bytes."""
    _check_here(course, not unsafe)
    if not isinstance(sys.stdout, gr._QuietThreads):  # the checkers' "✓ passed" lines: dropped, as in local grading
        sys.stdout = gr._QuietThreads(sys.stdout)
    return gr.grade_notebook(Path(name), student, timeout, cell_timeout, limits=limits, unsafe=unsafe, data=data)


def grade(cluster, paths: list[str | Path], timeout: float = 300, cell_timeout: float = 120,
          progress: Callable[[dict], None] | None = None, *, limits=None, unsafe: bool = False,
          on_row: Callable | None = None, log: Callable[[str], None] | None = None) -> list:
    """`grade.grade` with each notebook a task on the Dask cluster `cluster` (address, scheduler file or Client).

    `on_row` gets a notebook's rows when its task ends, `progress` the same events as in `grade.grade`, `log` a
    line when a task is submitted again.  The rows come back in the order of `find_notebooks`."""
    subs = gr.find_notebooks(paths)
    client, owned = connect(cluster)
    try:
        course = fingerprint()
        if check_workers(client, course, not unsafe) == 0 and log:
            log("  no worker yet: the tasks wait for the first one")
        results: dict[int, list] = {}

        def finish(k: int, rows: list | None, why: str | None) -> None:
            student, nb = subs[k]
            if why:  # lost twice: every expected exercise gets a row saying so
                wanted = gr.expected_checks(nb) or []
                rows = [gr.Row(student, str(nb), name, "crashed", f"grader error: {why} (tried twice)")
                        for name in [c.exercise for c in wanted] or ["(notebook)"]]
            results[k] = rows
            for row in rows:
                if on_row:
                    on_row(row)
            if progress:
                progress({"student": student, "notebook": str(nb), "index": len(results), "total": len(subs),
                          "rows": rows})

        todo, calls = [], []
        for k, (student, nb) in enumerate(subs):
            try:
                data = nb.read_bytes()
            except OSError:  # unreadable here: decided here, the same way (no sandbox is started for it)
                finish(k, gr.grade_notebook(nb, student, timeout, cell_timeout, limits=limits, unsafe=unsafe), None)
                continue
            todo.append(k)
            calls.append((str(nb), data, student, timeout, cell_timeout, limits, unsafe, course))
        run_tasks(client, _grade_task, calls, lambda j, rows, why: finish(todo[j], rows, why), log,
                  label=lambda j: f"{subs[todo[j]][0]} ({subs[todo[j]][1]})")
    finally:
        if owned:
            client.close()
    return [row for k in range(len(subs)) for row in results[k]]


# -- benchmark runs -----------------------------------------------------------------------------------------
def _bench_task(algo, seed: int, course: str) -> dict:
    """A task: check this worker, then `cli.bench_one`."""
    from lecturekit.course.cli import bench_one

    _check_here(course, False)
    return bench_one(algo, seed)


def bench(cluster, algos: list, seeds: int, log: Callable[[str], None] | None = None) -> list[dict]:
    """The summaries of `cli.bench_one(algo, seed)` for every algorithm and seed 0..seeds-1, each run a task on
    the Dask cluster `cluster`; in that order whatever the order of finishing.  A run lost twice counts as not
    solved, with its reason under "error".  `log` gets one line per finished run."""
    client, owned = connect(cluster)
    calls = [(algo, seed) for algo in algos for seed in range(seeds)]
    results: dict[int, dict] = {}

    def finish(k: int, summary: dict | None, why: str | None) -> None:
        algo, seed = calls[k]
        if why:
            summary = {"algo": algo.name, "env": algo.bench_env, "seed": seed, "solved": False,
                       "solved_at_steps": None, "solved_at_s": None, "still_solved": False,
                       "solved_for_good_at_steps": None, "solved_for_good_at_s": None, "target": algo.bench_target,
                       "error": f"{why} (tried twice)"}
        results[k] = summary
        if log:
            log(f"  {algo.name} seed {seed}: solved={summary['solved']} steps={summary.get('solved_at_steps')} "
                f"s={summary.get('solved_at_s')}")

    try:
        course = fingerprint()
        check_workers(client, course, False)
        run_tasks(client, _bench_task, [(algo, seed, course) for algo, seed in calls], finish, log,
                  label=lambda k: f"{calls[k][0].name} seed {calls[k][1]}")
    finally:
        if owned:
            client.close()
    return [results[k] for k in range(len(calls))]


def stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
