"""A class of adversarial submissions of exercise 00, graded once (`--jobs 2`): each attack of issue 16 must leave its
own grade right, the other students' rows as they should be, the course checkout unchanged, and the grader alive.

Every attacker except `honest_*` either has a wrong answer (so a forged pass would show) or a right one plus
something that must not spill over (detached processes, files of others)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from lecturekit.course import authoring, grade

pytestmark = pytest.mark.sandbox  # skipped where bubblewrap cannot start a sandbox (tests/conftest.py)

EX = "ex00_discounted_returns"
ROOT = authoring.ROOT
MARK = "lk-attack-7f3e"  # in the command line of every process an attacker starts, to find survivors
WRONG = "def discounted_returns(rewards, gamma):\n    return np.zeros(len(rewards))\n"
CHECK = "check_discounted_returns(discounted_returns)"


def _solution():
    return nbformat.read(ROOT / "solutions" / f"{EX}.ipynb", as_version=4)


def _cell_index(nb, text):
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source)


def _wrong_with(before_check: str):
    """The solution with a wrong answer, and `before_check` as a cell just before the check cell."""
    nb = _solution()
    nb.cells[_cell_index(nb, "def discounted_returns")].source = WRONG
    nb.cells.insert(_cell_index(nb, CHECK), nbformat.v4.new_code_cell(before_check))
    return nb


def _right_with(before_check: str):
    nb = _solution()
    nb.cells.insert(_cell_index(nb, CHECK), nbformat.v4.new_code_cell(before_check))
    return nb


def _function_doing(body: str, right: bool = True):
    """The solution whose function runs `body` (indented) first, then answers right (or wrong)."""
    nb = _solution()
    cell = nb.cells[_cell_index(nb, "def discounted_returns")]
    lines = "".join("    " + line + "\n" for line in body.strip().splitlines())
    if right:
        cell.source = cell.source.replace("    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n" + lines)
    else:
        cell.source = "def discounted_returns(rewards, gamma):\n" + lines + "    return np.zeros(len(rewards))\n"
    return nb


def build(root: Path, csv_path: Path, instructor: Path) -> dict:
    subs = {}
    # the honest student who defines the function and checks it in one cell
    nb = _solution()
    i, j = _cell_index(nb, "def discounted_returns"), _cell_index(nb, CHECK)
    nb.cells[i].source += "\n\n\n" + CHECK + "\n"
    del nb.cells[j]
    subs["honest_same_cell"] = nb
    subs["honest_plain"] = _solution()
    subs["patch_checks"] = _wrong_with(
        "import lecturekit.checks, lecturekit.course.checks as C, lecturekit.course.checks.discounted_returns as D\n"
        "passed = lambda fn: print('✓ discounted_returns: all checks passed')\n"
        "lecturekit.checks.check_discounted_returns = C.check_discounted_returns = passed\n"
        "D.check_discounted_returns = check_discounted_returns = passed")
    subs["patch_failure"] = _wrong_with(
        "from lecturekit.course.checking import Check, CheckFailed\n"
        "Check.fail = lambda self, *a, **k: None\nCheckFailed.__init__ = lambda self, *a: None")
    subs["patch_traceback"] = _wrong_with(
        "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\nip._showtraceback = lambda *a, **k: None\n"
        "import sys\nsys.excepthook = lambda *a: None")
    subs["allclose"] = _function_doing("np.allclose = lambda *a, **k: True\nnp.isfinite = lambda x: np.ones(np.shape(x), bool)",
                                       right=False)
    checker_file = ROOT / "lecturekit" / "course" / "checks" / "discounted_returns.py"
    subs["overwrite_checker"] = _wrong_with(
        f"try:\n    open({str(checker_file)!r}, 'a').write('\\ncheck_discounted_returns = lambda fn: None\\n')\n"
        "except OSError as e:\n    print('could not:', e)")
    subs["detached_csv"] = _right_with(
        "import subprocess\n"
        f"subprocess.Popen(['/bin/sh', '-c', 'sleep 3; echo {MARK} > {csv_path}; echo {MARK} > {csv_path}.jsonl', "
        f"'{MARK}'], start_new_session=True)")
    subs["vandal"] = _right_with(
        "import os, shutil\n"
        f"for target in [{str(root / 'honest_plain' / (EX + '.ipynb'))!r}, {str(instructor / 'answers.txt')!r}, "
        f"{str(ROOT / 'exercises' / (EX + '.ipynb'))!r}, {str(ROOT / 'solutions' / (EX + '.py'))!r}]:\n"
        "    for action in (lambda: open(target, 'w').write('{}'), lambda: os.remove(target)):\n"
        "        try:\n            action()\n        except OSError as e:\n            print('could not:', e)\n"
        f"shutil.rmtree({str(instructor)!r}, ignore_errors=True)")
    subs["kill_parent"] = _function_doing(
        "import os, signal\n"
        f"for pid in (os.getppid(), 1, {os.getpid()}, -1):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass")
    subs["fifty_processes"] = _right_with(
        "import subprocess\n"
        f"procs = [subprocess.Popen(['/bin/sh', '-c', 'sleep 600', '{MARK}'], start_new_session=True) "
        "for _ in range(50)]\nprint(len(procs), 'started')")
    subs["big_allocation"] = _function_doing("hog = np.ones(3 * 2**30 // 8)\nhog[::4096] = 2.0")
    subs["much_output"] = _right_with(
        "import os\nblock = b'x' * (1 << 20)\nfor _ in range(800):\n    os.write(1, block)")
    subs["reference"] = _wrong_with("from lecturekit.returns import discounted_returns as reference")
    subs["reference"].cells[_cell_index(subs["reference"], "def discounted_returns")].source = (
        "def discounted_returns(rewards, gamma):\n    return reference(rewards, gamma)\n")
    for name, nb in subs.items():
        (root / name).mkdir()
        nbformat.write(nb, root / name / f"{EX}.ipynb")
    return subs


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                          text=True).stdout


def _survivors() -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if MARK.encode() in (d / "cmdline").read_bytes():
                    found.append(d.name)
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    out = tmp_path_factory.mktemp("out")
    instructor = tmp_path_factory.mktemp("instructor")
    (instructor / "answers.txt").write_text("the instructor's file\n")
    csv_path = out / "grades.csv"
    build(root, csv_path, instructor)
    honest_bytes = (root / "honest_plain" / f"{EX}.ipynb").read_bytes()
    status_before = _git_status()
    t0 = time.monotonic()
    code = grade.main([str(root), "--csv", str(csv_path), "--jobs", "2", "--timeout", "120", "--cell-timeout", "30",
                       "--quiet"])
    seconds = time.monotonic() - t0
    time.sleep(4)  # the detached writer would have struck by now
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    return {"code": code, "rows": rows, "by": {r["student"]: r for r in rows}, "csv": csv_path, "root": root,
            "instructor": instructor, "honest_bytes": honest_bytes, "status_before": status_before,
            "seconds": seconds}


def _row(run, student):
    return run["by"][student]["result"], run["by"][student]["detail"]


def _unharmed(run) -> None:
    """What every test also asserts: the grader finished, every student has exactly one row, the honest students
    passed, and the course checkout is as it was."""
    assert run["code"] == 0
    assert len(run["rows"]) == len(run["by"]) == 14, [r["student"] for r in run["rows"]]
    assert _row(run, "honest_plain") == ("passed", "")
    assert _git_status() == run["status_before"]


def test_honest_same_cell(run):
    _unharmed(run)
    assert _row(run, "honest_same_cell") == ("passed", "")


@pytest.mark.parametrize("student", ["patch_checks", "patch_failure", "patch_traceback", "allclose"])
def test_monkeypatching_the_student_kernel_changes_nothing(run, student):
    _unharmed(run)
    result, detail = _row(run, student)
    assert result == "failed" and detail.startswith("discounted_returns: wrong answer"), (result, detail)


def test_overwriting_the_checker_source(run):
    _unharmed(run)
    assert _row(run, "overwrite_checker")[0] == "failed"
    from lecturekit.course.checks import discounted_returns as module
    assert "lambda fn: None" not in Path(module.__file__).read_text()


def test_detached_process_cannot_rewrite_grades(run):
    _unharmed(run)
    assert _row(run, "detached_csv") == ("passed", "")
    assert MARK not in run["csv"].read_text()
    assert MARK not in run["csv"].with_suffix(".jsonl").read_text()
    assert not _survivors()


def test_other_students_and_instructor_files_untouched(run):
    _unharmed(run)
    assert _row(run, "vandal") == ("passed", "")
    assert (run["root"] / "honest_plain" / f"{EX}.ipynb").read_bytes() == run["honest_bytes"]
    assert (run["instructor"] / "answers.txt").read_text() == "the instructor's file\n"


def test_killing_the_parent(run):
    _unharmed(run)  # the grader (this process) is alive and wrote every row
    assert _row(run, "kill_parent") == ("passed", "")


def test_fifty_detached_processes_end_with_the_sandbox(run):
    _unharmed(run)
    assert _row(run, "fifty_processes") == ("passed", "")
    assert not _survivors()


def test_three_gigabytes(run):
    _unharmed(run)
    result, detail = _row(run, "big_allocation")
    assert result in ("failed", "crashed") and ("MemoryError" in detail or "memory" in detail), (result, detail)


def test_800_megabytes_of_output(run):
    _unharmed(run)
    result, detail = _row(run, "much_output")
    assert result == "crashed" and "more than 16 MB of output" in detail, (result, detail)


def test_reference_implementation(run):
    _unharmed(run)
    result, detail = _row(run, "reference")
    assert result == "failed" and "uses the reference implementation (lecturekit.returns.discounted_returns)" in \
        detail, (result, detail)


def test_rows_are_written_as_they_are_decided(run):
    jsonl = run["csv"].with_suffix(".jsonl").read_text().splitlines()
    assert len(jsonl) == 14
    print(f"graded 14 attack notebooks in {run['seconds']:.1f} s", file=sys.stderr)
