"""Autograder for instructors: run submitted exercise notebooks in sandboxes and report every exercise's verdict.

    python -m lecturekit grade submissions/ [--timeout 300] [--cell-timeout 120] [--csv grades.csv] [--jobs 2]
    python -m lecturekit grade submissions/ --cluster tcp://scheduler:8786   (each notebook a Dask task: cluster.py)

Each notebook runs in its own bubblewrap sandbox (`lecturekit.course.sandbox`: the course read-only, a private copy
of the notebook, no network, its own process namespace, caps on memory, processes, CPU time and output), cell by
cell, under a time limit for the whole notebook and one for each cell.  The verdicts are decided here, outside the
student's code: after a check cell, the course's checker runs in this process (which no submission touches) on a
proxy of the student's function that calls the function in the sandbox; `check_*` calls inside the sandbox do
nothing.  Monkeypatching anything in the notebook therefore changes nothing, and a reference implementation the
checker blocks (`sandbox.REFERENCES`) answers with an error while the student's function runs.

The expected exercises come from the course's own exercise notebook with the same `exNN` number (so a deleted
check cell is noticed).  One row per student and exercise, with one of these results:

    passed            the checker accepted the function
    not implemented   the stub is still there
    failed            the checker rejected the answer (detail: the checker's first message line), or the function
                      used the reference implementation (detail: "uses the reference implementation (...)")
    crashed           the check could not run (function missing, the sandbox died, printed too much, grader error)
    timed out         the check (or the notebook before it) ran past its time limit
    invalid notebook  the file cannot be read as a notebook (not JSON, not nbformat)

Each row is appended to the CSV (and a JSON-lines file next to it) as soon as it is decided, so a stopped run
(Ctrl-C) keeps every row so far.  Without bubblewrap `grade` refuses to run unless told `--unsafe`.
"""
from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import queue
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from lecturekit.course import sandbox as sb

ROOT = Path(__file__).resolve().parents[2]
EXERCISE_DIR = ROOT / "exercises"
# a check call anywhere in a cell: on its own line, after a `;`, or in the cell that defines the function
CHECK_LINE = re.compile(r"(?<![\w.])(check_(\w+))\(\s*(\w+)\s*\)")
EXERCISE_NUMBER = re.compile(r"ex(\d\d)", re.I)
RESULTS = ("passed", "not implemented", "failed", "crashed", "timed out", "invalid notebook")
FIELDS = ("student", "notebook", "exercise", "result", "detail", "seconds")


@dataclass
class Row:
    """One verdict: `result` is one of RESULTS; `detail` says why in one line."""
    student: str
    notebook: str
    exercise: str
    result: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class _Check:
    exercise: str  # 'discounted_returns'
    call: str      # 'check_discounted_returns(discounted_returns)'
    arg: str       # 'discounted_returns'


# -- finding submissions and what they should contain -----------------------------------------------------------
def find_notebooks(paths: list[str | Path]) -> list[tuple[str, Path]]:
    """(student, notebook) for every .ipynb under `paths` (files or folders), sorted by student then file.

    The student is the first sub-folder below a given folder (`subs/alice/ex00.ipynb` -> alice), else the part of
    the file name before `exNN` (`alice_ex00_returns.ipynb` -> alice), else the file name itself."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            for nb in sorted(p.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in nb.parts:
                    continue
                rel = nb.relative_to(p)
                found.append((rel.parts[0] if len(rel.parts) > 1 else _student_from_name(nb), nb))
        elif p.exists():
            found.append((_student_from_name(p), p))
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return sorted(found, key=lambda sn: (sn[0], str(sn[1])))


def _student_from_name(nb: Path) -> str:
    m = EXERCISE_NUMBER.search(nb.stem)
    if m and m.start() > 0:
        prefix = nb.stem[: m.start()].strip("_-. ")
        if prefix:
            return prefix
    if m and nb.parent.name:
        return nb.parent.name
    return nb.stem


def checks_in(source: str) -> list[_Check]:
    code = re.sub(r"#[^\n]*", "", source)  # a check mentioned in a comment is not a check
    return [_Check(m.group(2), f"{m.group(1)}({m.group(3)})", m.group(3)) for m in CHECK_LINE.finditer(code)]


def expected_checks(notebook: Path, exercise_dir: Path = EXERCISE_DIR) -> list[_Check] | None:
    """The checks of the course's exercise with the same number as `notebook` (None if there is none)."""
    import nbformat

    m = EXERCISE_NUMBER.search(notebook.name)
    if not m:
        return None
    refs = sorted(exercise_dir.glob(f"ex{m.group(1)}_*.ipynb"))
    if not refs:
        return None
    nb = nbformat.read(refs[0], as_version=4)
    return [c for cell in nb.cells if cell.cell_type == "code" for c in checks_in(cell.source)]


# -- running one notebook ---------------------------------------------------------------------------------------
def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    return text.splitlines()[0] if text else ""


def _failure_detail(e: BaseException) -> str:
    """The checker's first line, plus what the function raised when that is the failure (MemoryError, ...)."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    got = next((ln.strip()[len("got:"):].strip() for ln in lines[1:] if ln.strip().startswith("got:")), "")
    raised = re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", got)
    return lines[0] + (f" (raised {got[:150]})" if raised else "") if lines else ""


class _Live:
    """The sandboxes running now, so that Ctrl-C can end them all."""

    def __init__(self):
        self.boxes: set = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, box) -> None:
        with self.lock:
            self.boxes.add(box)
        if self.stop.is_set():
            box.kill()

    def remove(self, box) -> None:
        with self.lock:
            self.boxes.discard(box)

    def kill_all(self) -> None:
        self.stop.set()
        with self.lock:
            boxes = list(self.boxes)
        for box in boxes:
            box.kill()


_LIVE = _Live()


class _Notebook:
    """Grades one notebook in one sandbox: runs its cells, and after each check cell runs the course's checker here
    on a proxy of the student's function."""

    def __init__(self, box, student: str, name: str, wanted: list[_Check], timeout: float, cell_timeout: float,
                 emit: Callable[[Row], None]):
        self.box, self.student, self.name = box, student, name
        self.by_name = {c.exercise: c for c in wanted}
        self.timeout, self.cell_timeout = timeout, cell_timeout
        self.deadline = time.monotonic() + timeout
        self.emit = emit
        self.rows: dict[str, Row] = {}
        self.first_error = ""

    def run(self, cells: list) -> None:
        for i, cell in enumerate(cells):
            source = cell.get("source", "") if cell.get("cell_type") == "code" else ""
            if not isinstance(source, str) or not source.strip():
                continue
            here = [c.exercise for c in checks_in(source) if c.exercise in self.by_name]
            self.cell(source, i)
            for name in dict.fromkeys(here):
                if name not in self.rows:
                    self.check(self.by_name[name])
        for c in self.by_name.values():
            if c.exercise not in self.rows:
                self.check(c, note="its check cell is missing from the notebook (graded at the end)")

    def cell(self, source: str, i: int) -> None:
        if self.box.dead or _LIVE.stop.is_set():
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            return
        try:
            err = self.box.run_cell(source, min(self.cell_timeout, left))
        except sb.SandboxTimeout:
            err = ("time-out", "")
        except sb.SandboxDied as e:
            err = ("died", str(e))
        if err and not self.first_error:
            kind, text = err
            self.first_error = (f"cell {i} ran past its time limit first" if kind == "time-out" else
                                f"{text} in cell {i}" if kind == "died" else f"cell {i} raised {kind}: {text} first")

    def check(self, c: _Check, note: str = "") -> None:
        t0 = time.monotonic()
        result, detail = self.verdict(c)
        if result == "crashed" and self.first_error and detail not in self.first_error:
            detail += f" ({self.first_error})"
        if _LIVE.stop.is_set():  # stopped by Ctrl-C: no verdict, no row
            return
        row = Row(self.student, self.name, c.exercise, result, "; ".join(filter(None, [detail, note])),
                  round(time.monotonic() - t0, 2))
        self.rows[c.exercise] = row
        self.emit(row)

    def verdict(self, c: _Check) -> tuple[str, str]:
        from lecturekit.course import checks
        from lecturekit.course.checking import NOT_IMPLEMENTED, CheckFailed

        if self.box.dead:
            return "crashed", self.box.dead
        left = self.deadline - time.monotonic()
        if left <= 0:
            return "timed out", f"the notebook's time limit ({self.timeout:g} s) was used up before this ran"
        limit = min(self.cell_timeout, left)
        checker = getattr(checks, f"check_{c.exercise}", None)
        if checker is None:
            return "crashed", f"grader error: the course has no checker check_{c.exercise}"
        try:
            if not self.box.begin(c.arg, timeout=limit):
                return "crashed", f"`{c.arg}` is not defined (its cell deleted, renamed, or failed?)"
            # build-it checkers: one update against the reference and the named silent bugs; their training layer
            # (thousands of updates, each a round trip into the sandbox) runs in the student's notebook, not here
            options = {"train": False} if "train" in inspect.signature(checker).parameters else {}
            checker(self.box.proxy(c.arg, sb.REFERENCES.get(c.exercise, []), time.monotonic() + limit), **options)
            return "passed", ""
        except CheckFailed as e:
            if NOT_IMPLEMENTED in str(e):
                return "not implemented", ""
            return "failed", _failure_detail(e)
        except sb.UsesReference as e:
            return "failed", f"uses the reference implementation ({e})"
        except sb.SandboxTimeout:
            return "timed out", f"it ran longer than {limit:g} s (endless loop?)"
        except sb.SandboxDied as e:
            return "crashed", str(e)
        except Exception as e:  # the grader's own side failed: say so, and go on with the other checks
            return "crashed", f"grader error: {type(e).__name__}: {_first_line(e)}"


def grade_notebook(path: Path, student: str, timeout: float = 300, cell_timeout: float = 120,
                   exercise_dir: Path = EXERCISE_DIR, *, limits: sb.Limits | None = None, unsafe: bool = False,
                   emit: Callable[[Row], None] | None = None, data: bytes | None = None) -> list[Row]:
    """Run one submission in its own sandbox and return one Row per expected exercise (each also given to `emit`
    as soon as it is decided).  `data`: the file's bytes, when `path` names a file of another machine (a notebook
    sent to a cluster's worker, `lecturekit.course.cluster`)."""
    import nbformat

    path = Path(path)
    name = str(path)
    emit = emit or (lambda row: None)
    expected = expected_checks(path, exercise_dir)

    def all_rows(result: str, why: str, names: list[str]) -> list[Row]:
        rows = [Row(student, name, n, result, why) for n in names]
        for r in rows:
            emit(r)
        return rows

    try:
        data = path.read_bytes() if data is None else data
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        cells = [c for c in nb.cells if isinstance(c, dict)]
    except Exception as e:
        why = f"cannot read the file as a notebook ({type(e).__name__}: {_first_line(e)})"
        return all_rows("invalid notebook", why, [c.exercise for c in expected] if expected else ["(notebook)"])
    wanted = expected if expected is not None else list({
        c.exercise: c for cell in cells if cell.get("cell_type") == "code"
        for c in checks_in(cell.get("source", ""))}.values())
    if not wanted:
        return all_rows("crashed", "no check cell found and no course exercise matches the file name", ["(notebook)"])
    references = sorted({q for c in wanted for q in sb.REFERENCES.get(c.exercise, [])})
    try:
        box = sb.Sandbox(references, limits, unsafe=unsafe, notebook=(path.name, data),
                         startup_timeout=max(60.0, min(timeout, 300.0)))
    except BaseException as e:  # noqa: BLE001 - no sandbox, no grading of this notebook; the others go on
        if isinstance(e, KeyboardInterrupt):
            raise
        return all_rows("crashed", f"grader error: could not start the sandbox ({type(e).__name__}: "
                        f"{_first_line(e)})", [c.exercise for c in wanted])
    _LIVE.add(box)
    graded = _Notebook(box, student, name, wanted, timeout, cell_timeout, emit)
    try:
        graded.run(cells)
    except Exception as e:  # a bug of ours must not lose the rows decided so far
        for c in wanted:
            if c.exercise not in graded.rows:
                graded.rows[c.exercise] = row = Row(student, name, c.exercise, "crashed",
                                                    f"grader error: {type(e).__name__}: {_first_line(e)}")
                emit(row)
    finally:
        _LIVE.remove(box)
        box.close()
    return [graded.rows[c.exercise] for c in wanted if c.exercise in graded.rows]


class _QuietThreads:
    """stdout that drops what other threads print (the checkers' "✓ passed" lines while grading)."""

    def __init__(self, out):
        self.out, self.main = out, threading.main_thread()

    def write(self, text):
        return self.out.write(text) if threading.current_thread() is self.main else len(text)

    def flush(self):
        self.out.flush()

    def __getattr__(self, name):
        return getattr(self.out, name)


def grade(paths: list[str | Path], timeout: float = 300, cell_timeout: float = 120,
          progress: Callable[[dict], None] | None = None, exercise_dir: Path = EXERCISE_DIR,
          jobs: int = 1, *, limits: sb.Limits | None = None, unsafe: bool = False,
          on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Grade every notebook under `paths`, `jobs` notebooks at a time (each in its own sandbox).

    `on_row(row)` gets each row as soon as it is decided; `progress` gets {'student', 'notebook', 'index', 'total',
    'rows'} as each notebook finishes.  The rows come back in the order of `find_notebooks` whatever the order of
    finishing.  Ctrl-C ends every sandbox and raises KeyboardInterrupt after the rows so far went to `on_row`."""
    subs = find_notebooks(paths)
    tasks: queue.Queue = queue.Queue()
    for k, (student, nb) in enumerate(subs):
        tasks.put((k, student, nb))
    events: queue.Queue = queue.Queue()
    _LIVE.stop.clear()

    def worker() -> None:
        while not _LIVE.stop.is_set():
            try:
                k, student, nb = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                got = grade_notebook(nb, student, timeout, cell_timeout, exercise_dir, limits=limits, unsafe=unsafe,
                                     emit=lambda row: events.put(("row", k, row)))
            except BaseException as e:  # noqa: BLE001
                got = [Row(student, str(nb), "(notebook)", "crashed", f"grader error: {type(e).__name__}: {e}")]
                events.put(("row", k, got[0]))
            events.put(("done", k, got))

    threads = [threading.Thread(target=worker, daemon=True, name=f"grade-{i}") for i in range(max(1, jobs))]
    results: dict[int, list[Row]] = {}
    stdout = sys.stdout
    sys.stdout = _QuietThreads(stdout)
    try:
        for t in threads:
            t.start()
        while len(results) < len(subs):
            kind, k, got = events.get()
            if kind == "row":
                if on_row:
                    on_row(got)
                continue
            results[k] = got
            if progress:
                student, nb = subs[k]
                progress({"student": student, "notebook": str(nb), "index": len(results), "total": len(subs),
                          "rows": got})
    except KeyboardInterrupt:
        _LIVE.kill_all()
        for t in threads:
            t.join(timeout=10)
        while True:  # rows decided while stopping
            try:
                kind, k, got = events.get_nowait()
            except queue.Empty:
                break
            if kind == "row" and on_row:
                on_row(got)
        raise
    finally:
        sys.stdout = stdout
    return [row for k in range(len(subs)) for row in results[k]]


# -- reporting --------------------------------------------------------------------------------------------------
def table(rows: list[Row], width: int = 70) -> str:
    """A plain-text table per student and exercise, with each student's count of passed exercises."""
    if not rows:
        return "no submissions"
    cols = ["student", "exercise", "result", "detail"]
    cut = [[r.student, r.exercise, r.result, r.detail if len(r.detail) <= width else r.detail[: width - 3] + "..."]
           for r in rows]
    w = [max(len(c), *(len(x[i]) for x in cut)) for i, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.ljust(w[i]) for i, x in enumerate(xs)).rstrip()  # noqa: E731
    out = [line(cols), line(["-" * n for n in w])]
    last = None
    for r, x in zip(rows, cut):
        if last is not None and r.student != last:
            out.append("")
        out.append(line(x))
        last = r.student
    out.append("")
    for s in dict.fromkeys(r.student for r in rows):
        mine = [r for r in rows if r.student == s]
        out.append(f"{s}: {sum(r.result == 'passed' for r in mine)}/{len(mine)} passed")
    return "\n".join(out)


def write_csv(rows: list[Row], path: str | Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*asdict(Row("", "", "", "")).keys()])
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))


class RowWriter:
    """Appends each row to the CSV and the JSON-lines file as it comes (flushed: a killed grader loses nothing)."""

    def __init__(self, csv_path: str | Path | None, jsonl_path: str | Path | None):
        self.files = []
        self.csv = self.jsonl = None
        if csv_path:
            f = open(csv_path, "w", newline="")
            self.files.append(f)
            self.csv = csv.DictWriter(f, fieldnames=list(FIELDS))
            self.csv.writeheader()
            f.flush()
        if jsonl_path:
            self.jsonl = open(jsonl_path, "w")
            self.files.append(self.jsonl)

    def __call__(self, row: Row) -> None:
        if self.csv:
            self.csv.writerow(asdict(row))
        if self.jsonl:
            self.jsonl.write(json.dumps(asdict(row)) + "\n")
        for f in self.files:
            f.flush()

    def close(self) -> None:
        for f in self.files:
            f.close()


# -- the command line -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lecturekit grade",
        description="Run submitted exercise notebooks, each in a sandbox, and report every exercise's result.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="notebooks, or folders of them (one sub-folder per "
                   "student, or files named like alice_ex00_discounted_returns.ipynb)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per notebook (default 300)")
    p.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell and per check (default 120)")
    p.add_argument("--csv", default="grades.csv", help="write the rows here as they are decided (default "
                   "grades.csv; '' for none)")
    p.add_argument("--jsonl", default=None, help="JSON-lines copy of the rows (default: the CSV's name with "
                   ".jsonl; '' for none)")
    p.add_argument("--jobs", type=int, default=1, help="notebooks graded at the same time (default 1)")
    p.add_argument("--cluster", metavar="ADDRESS", default=None, help="grade each notebook as a task on this Dask "
                   "scheduler (tcp://host:8786, or a scheduler file) instead of here; each worker needs the course, "
                   "bubblewrap and Dask (see the instructor guide)")
    p.add_argument("--memory", type=int, default=sb.Limits.memory_mb, metavar="MB",
                   help=f"memory per submission (default {sb.Limits.memory_mb})")
    p.add_argument("--output-limit", type=int, default=sb.Limits.output_mb, metavar="MB",
                   help=f"output a submission may print before it is stopped (default {sb.Limits.output_mb})")
    p.add_argument("--unsafe", action="store_true", help="run submissions WITHOUT a sandbox (with your "
                   "permissions), when bubblewrap is not available")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _usage_problem(args) -> str | None:
    for flag, v in (("--timeout", args.timeout), ("--cell-timeout", args.cell_timeout)):
        if not (math.isfinite(v) and v > 0):
            return f"{flag} must be a positive number of seconds, got {v:g}"
    if args.jobs < 1 or args.jobs > 256:
        return f"--jobs must be between 1 and 256, got {args.jobs}"
    if args.memory < 256:
        return f"--memory must be at least 256 (MB), got {args.memory}"
    if args.output_limit < 1:
        return f"--output-limit must be at least 1 (MB), got {args.output_limit}"
    return None


def main(argv: list[str] | None = None) -> int:
    """`python -m lecturekit grade ...`; returns the exit status (2 for usage errors, 130 after Ctrl-C)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already said what is wrong
        return int(e.code or 0)
    problem = _usage_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        subs = find_notebooks(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not subs:
        print(f"error: no .ipynb notebooks found in {', '.join(args.paths)}", file=sys.stderr)
        return 2
    jsonl = args.jsonl if args.jsonl is not None else (str(Path(args.csv).with_suffix(".jsonl")) if args.csv else "")
    for out in filter(None, (args.csv, jsonl)):
        try:  # writable? (appending changes nothing yet)
            open(out, "a").close()
        except OSError as e:
            print(f"error: cannot write the results: {e}", file=sys.stderr)
            return 2
    if not args.unsafe and not args.cluster:  # on a cluster the workers need bubblewrap, checked there
        why = sb.bwrap_problem()
        if why:
            print(f"error: {why}. Each submission is graded in a bubblewrap sandbox, so that its code cannot change "
                  "grades, the course or other submissions, nor outlive the grading. Install it with `make "
                  "grade-deps` (or: sudo apt-get install bubblewrap), or pass --unsafe to run the submissions with "
                  "your own permissions.", file=sys.stderr)
            return 2
    client = None
    if args.cluster:  # reachable, and every worker fit (the course's version, bubblewrap), before any file is touched
        from lecturekit.course import cluster
        try:
            client = cluster.open_client(args.cluster, sandbox=not args.unsafe)
        except cluster.ClusterError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    try:
        writer = RowWriter(args.csv, jsonl)
    except OSError as e:
        print(f"error: cannot write the results: {e}", file=sys.stderr)
        if client is not None:
            client.close()
        return 2
    if not args.quiet:
        where = f"on the Dask cluster {args.cluster}" if args.cluster else f"{args.jobs} at a time"
        print(f"grading {len(subs)} notebook(s), at most {args.timeout:g} s each, {where}"
              + (" WITHOUT a sandbox (--unsafe)" if args.unsafe else ""), file=sys.stderr, flush=True)

    def progress(ev: dict) -> None:
        verdicts = ", ".join(f"{r.exercise} {r.result}" for r in ev["rows"])
        print(f"  [{ev['index']}/{ev['total']}] {ev['student']} ({ev['notebook']}): {verdicts}", file=sys.stderr,
              flush=True)

    kept: list[Row] = []

    def on_row(row: Row) -> None:
        kept.append(row)
        writer(row)

    limits = sb.Limits(memory_mb=args.memory, output_mb=args.output_limit,
                       cpu_seconds=int(min(args.timeout, 10 ** 6)) + 60)
    try:
        if client is not None:
            rows = cluster.grade(client, args.paths, timeout=args.timeout, cell_timeout=args.cell_timeout,
                                 progress=None if args.quiet else progress, limits=limits, unsafe=args.unsafe,
                                 on_row=on_row, log=None if args.quiet else cluster.stderr_log)
        else:
            rows = grade(args.paths, timeout=args.timeout, cell_timeout=args.cell_timeout,
                         progress=None if args.quiet else progress, jobs=args.jobs, limits=limits,
                         unsafe=args.unsafe, on_row=on_row)
    except KeyboardInterrupt:
        writer.close()
        print(table(kept))
        print(f"interrupted: the {len(kept)} row(s) decided so far are in {args.csv or jsonl or '(no file)'}",
              file=sys.stderr)
        return 130
    except Exception as e:  # a worker found unfit once grading began
        if client is None or not isinstance(e, cluster.ClusterError):
            raise
        writer.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    writer.close()
    print(table(rows))
    if args.csv:
        print(f"wrote {args.csv}" + (f" and {jsonl}" if jsonl else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
