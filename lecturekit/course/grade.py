"""Autograder for instructors: run filled-in exercise notebooks headless and report every exercise's verdict.

    python -m lecturekit grade submissions/ [--timeout 300] [--cell-timeout 120] [--csv grades.csv]

Each notebook runs in its own fresh kernel, cell by cell, under a time limit for the whole notebook and one for each
cell.  The expected exercises come from the course's own exercise notebook with the same `exNN` number (so a deleted
check cell is noticed); each check cell runs the course's checker (`check_<name>(<name>)` imported afresh, so a
student cannot shadow it).  One row per student and exercise, with one of these results:

    passed            the checker accepted the function
    not implemented   the stub is still there
    failed            the checker rejected the answer (detail: the checker's first message line)
    crashed           the check could not run (function missing, kernel died, ...)
    timed out         the check (or the notebook before it) ran past its time limit
    invalid notebook  the file cannot be read as a notebook (not JSON, not nbformat)

A submission that loops, raises at import, deletes cells or is not valid JSON gets its rows and grading goes on.
Student code runs with your permissions: grade in a container or a throw-away account if you do not trust it.
"""
from __future__ import annotations

import csv
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
EXERCISE_DIR = ROOT / "exercises"
CHECK_LINE = re.compile(r"^\s*(check_(\w+))\((\w+)\)", re.M)
EXERCISE_NUMBER = re.compile(r"ex(\d\d)", re.I)
RESULTS = ("passed", "not implemented", "failed", "crashed", "timed out", "invalid notebook")


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
    return [_Check(m.group(2), f"{m.group(1)}({m.group(3)})", m.group(3)) for m in CHECK_LINE.finditer(source)]


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


def _error(outputs) -> tuple[str, str] | None:
    for o in outputs:
        if o.get("output_type") == "error":
            return o.get("ename", "Error"), _first_line(o.get("evalue", ""))
    return None


def _verdict(check: _Check, outputs) -> tuple[str, str]:
    err = _error(outputs)
    if err is None:
        return "passed", ""
    ename, evalue = err
    if ename == "CheckFailed":
        if "not implemented yet" in evalue:
            return "not implemented", ""
        return "failed", evalue
    if ename == "NameError" and f"'{check.arg}'" in evalue:
        return "crashed", f"`{check.arg}` is not defined (its cell deleted, renamed, or failed?)"
    return "crashed", f"{ename}: {evalue}"


class _Runner:
    """A kernel for one notebook, with a deadline; runs one source at a time and says what happened."""

    def __init__(self, cwd: Path, timeout: float, cell_timeout: float):
        import nbformat
        from nbclient import NotebookClient

        self.deadline = time.monotonic() + timeout
        self.timeout, self.cell_timeout = timeout, cell_timeout
        self.dead: str | None = None  # why no more code can run
        # a scratch notebook of one cell: every source runs as its cell 0 (the student's notebook stays untouched)
        scratch = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
        self.client = NotebookClient(scratch, kernel_name="python3", allow_errors=True, interrupt_on_timeout=False,
                                     timeout=int(cell_timeout), resources={"metadata": {"path": str(cwd)}})

    def run(self, source: str, index: int) -> tuple[str, list, str]:
        """Run `source` (cell `index` of the student's notebook, for messages); returns (status, outputs, why) with
        status 'ok' (the outputs may hold an error), 'timeout' or 'dead'."""
        import nbformat
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        if self.dead:
            return "dead", [], self.dead
        left = self.deadline - time.monotonic()
        if left <= 0:
            return "timeout", [], f"the notebook's time limit ({self.timeout:g} s) was used up before this ran"
        limit = max(1, int(min(self.cell_timeout, left)))
        self.client.timeout = limit
        cell = nbformat.v4.new_code_cell(source)
        try:
            self.client.execute_cell(cell, 0)
            return "ok", cell.outputs, ""
        except CellTimeoutError:
            self._recover()
            return "timeout", cell.outputs, f"it ran longer than {limit} s (endless loop?)"
        except DeadKernelError:
            self.dead = f"the kernel died in cell {index}"
            return "dead", cell.outputs, self.dead

    def _recover(self) -> None:
        """Interrupt the looping cell; if the kernel does not answer a trivial cell soon, give it up."""
        import nbformat
        from jupyter_core.utils import run_sync
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        try:
            run_sync(self.client.km.interrupt_kernel)()
            self.client.timeout = 10
            self.client.execute_cell(nbformat.v4.new_code_cell("pass"), 0)
        except (CellTimeoutError, DeadKernelError, RuntimeError):
            self.dead = "the kernel did not stop after a time-out"
            try:
                run_sync(self.client.km.shutdown_kernel)(now=True)
            except Exception:
                pass


def _kernel_env() -> dict:
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _check_source(check: _Check) -> str:
    # imported afresh under its own name: a student's notebook cannot shadow the checker
    return f"from lecturekit.checks import check_{check.exercise}\n{check.call}"


def _run_cells(runner: _Runner, cells: list, wanted: list[_Check]) -> dict[str, tuple[str, str, float]]:
    """Run the notebook's cells in order, each check cell as the course's check, then the checks whose cells are
    missing; {exercise: (result, detail, seconds)}."""
    by_name = {c.exercise: c for c in wanted}
    verdicts: dict[str, tuple[str, str, float]] = {}
    first_error = ""

    def check(c: _Check, index: int, note: str = "") -> None:
        t0 = time.monotonic()
        status, out, why = runner.run(_check_source(c), index)
        if status == "ok":
            result, detail = _verdict(c, out)
            if result == "crashed" and first_error:
                detail += f" ({first_error})"
        else:
            result, detail = ("timed out" if status == "timeout" else "crashed"), why
        verdicts[c.exercise] = (result, "; ".join(filter(None, [detail, note])), round(time.monotonic() - t0, 2))

    for i, cell in enumerate(cells):
        source = cell.get("source", "") if cell.get("cell_type") == "code" else ""
        if not source.strip():
            continue
        here = [c.exercise for c in checks_in(source) if c.exercise in by_name]
        for name in here:
            check(by_name[name], i)
        if here:
            continue
        status, out, _ = runner.run(source, i)
        err = _error(out)
        if not first_error and (status == "timeout" or err):
            first_error = f"cell {i} ran past its time limit first" if status == "timeout" else \
                f"cell {i} raised {err[0]}: {err[1]} first"
    for c in wanted:
        if c.exercise not in verdicts:
            check(c, len(cells), note="its check cell is missing from the notebook (graded at the end)")
    return verdicts


def grade_notebook(path: Path, student: str, timeout: float = 300, cell_timeout: float = 120,
                   exercise_dir: Path = EXERCISE_DIR) -> list[Row]:
    """Run one submission in a fresh kernel and return one Row per expected exercise."""
    import nbformat

    path = Path(path)
    name = str(path)
    expected = expected_checks(path, exercise_dir)
    try:
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if isinstance(c, dict)]
    except Exception as e:
        why = f"cannot read the file as a notebook ({type(e).__name__}: {_first_line(e)})"
        names = [c.exercise for c in expected] if expected else ["(notebook)"]
        return [Row(student, name, n, "invalid notebook", why) for n in names]

    wanted = expected if expected is not None else [
        c for cell in cells if cell.get("cell_type") == "code" for c in checks_in(cell.get("source", ""))]
    if not wanted:
        return [Row(student, name, "(notebook)", "crashed",
                    "no check cell found and no course exercise matches the file name")]
    runner = _Runner(path.parent.resolve(), timeout, cell_timeout)
    try:
        # the kernel's own log lines (the student's output comes through the cells) would clutter the table
        with runner.client.setup_kernel(env=_kernel_env(), stderr=subprocess.DEVNULL):
            verdicts = _run_cells(runner, cells, wanted)
    except Exception as e:  # the grader's side failed (no kernel, ...): say so in every row, go on with the others
        why = f"the grader could not run this notebook ({type(e).__name__}: {_first_line(e)})"
        return [Row(student, name, c.exercise, "crashed", why) for c in wanted]
    return [Row(student, name, c.exercise, *verdicts[c.exercise]) for c in wanted]


def grade(paths: list[str | Path], timeout: float = 300, cell_timeout: float = 120,
          progress: Callable[[dict], None] | None = None, exercise_dir: Path = EXERCISE_DIR,
          jobs: int = 1) -> list[Row]:
    """Grade every notebook under `paths`, `jobs` notebooks at a time (each in its own process and kernel).

    `progress` gets {'student', 'notebook', 'index', 'total', 'rows'} as each notebook finishes.  The rows come
    back in the order of `find_notebooks` whatever the order of finishing."""
    from concurrent.futures import ProcessPoolExecutor

    subs = find_notebooks(paths)
    results: dict[int, list[Row]] = {}

    def done(k: int, got: list[Row]) -> None:
        results[k] = got
        if progress:
            student, nb = subs[k]
            progress({"student": student, "notebook": str(nb), "index": len(results), "total": len(subs),
                      "rows": got})

    if jobs <= 1:
        for k, (student, nb) in enumerate(subs):
            done(k, grade_notebook(nb, student, timeout, cell_timeout, exercise_dir))
    else:
        from concurrent.futures import as_completed

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_notebook, nb, student, timeout, cell_timeout, exercise_dir): k
                       for k, (student, nb) in enumerate(subs)}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
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
