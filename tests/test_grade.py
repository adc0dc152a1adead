"""The autograder on a folder of submissions of exercise 01 (five checked functions), built here from the course's
own solution and exercise notebooks: every kind of submission gets the right row and none stops the others."""
from __future__ import annotations

import contextlib
import csv
import io
import json

import nbformat
import pytest

from lecturekit.course import authoring, cli, grade
from lecturekit.course import sandbox as sb

EX = "ex01_scores_and_search"
EXERCISES = ("softmax_score", "gaussian_log_prob", "finite_difference_gradient", "cem_update",
             "log_derivative_gradient")


def _notebook(folder: str):
    return nbformat.read(authoring.ROOT / folder / f"{EX}.ipynb", as_version=4)


def _cell(nb, text: str) -> int:
    hits = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    assert len(hits) == 1, f"expected one cell with {text!r}, found {len(hits)}"
    return hits[0]


def _edit(nb, text: str, old: str, new: str) -> None:
    cell = nb.cells[_cell(nb, text)]
    assert old in cell.source
    cell.source = cell.source.replace(old, new)


def build_submissions(root):
    """alice correct; bob partly wrong (one sign error, one stub, one check cell deleted); carol empty (the
    untouched exercise); dave loops forever in one function; erin is truncated JSON; frank's import cell raises,
    one function cell is deleted and one function kills the kernel."""
    sol, stub = _notebook("solutions"), _notebook("exercises")
    students = {}

    students["alice"] = sol

    bob = _notebook("solutions")
    _edit(bob, "def gaussian_log_prob", "- log_std -", "+ log_std -")
    bob.cells[_cell(bob, "def cem_update")] = stub.cells[_cell(stub, "def cem_update")]
    del bob.cells[_cell(bob, "check_finite_difference_gradient(finite")]
    students["bob"] = bob

    students["carol"] = stub

    dave = _notebook("solutions")
    _edit(dave, "def softmax_score", "    h = np.asarray", "    while True:\n        pass\n    h = np.asarray")
    students["dave"] = dave

    frank = _notebook("solutions")
    _edit(frank, "import numpy as np", "import numpy as np", "import numpy_which_does_not_exist\nimport numpy as np")
    del frank.cells[_cell(frank, "def softmax_score")]
    _edit(frank, "def cem_update", "    ### BEGIN SOLUTION", "    import os\n    os._exit(3)\n    ### BEGIN SOLUTION")
    students["frank"] = frank

    for name, nb in students.items():
        (root / name).mkdir()
        nbformat.write(nb, root / name / f"{EX}.ipynb")
    text = (root / "alice" / f"{EX}.ipynb").read_text()
    (root / "erin").mkdir()
    (root / "erin" / f"{EX}.ipynb").write_text(text[: len(text) // 3])
    with pytest.raises(json.JSONDecodeError):
        json.loads((root / "erin" / f"{EX}.ipynb").read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    build_submissions(root)
    out_csv = root / "grades.csv"
    stdout, stderr = io.StringIO(), io.StringIO()
    # These submissions test the grading (rows, verdicts, time limits, broken notebooks), not the sandbox
    # (tests/test_grade_sandbox.py, test_grade_attacks.py): where bubblewrap is missing, as on a fresh machine before
    # `make grade-deps`, they are graded without it (--unsafe), so `make test` checks the grading there too.
    unsafe = ["--unsafe"] if sb.bwrap_problem() is not None else []
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(["grade", str(root), "--timeout", "120", "--cell-timeout", "20", "--csv", str(out_csv),
                           "--jobs", "2", *unsafe])
    assert status == 0, stderr.getvalue()
    with open(out_csv) as f:
        rows = list(csv.DictReader(f))
    return {(r["student"], r["exercise"]): r for r in rows}, stdout.getvalue(), rows


def result(graded, student, exercise):
    row = graded[0][(student, exercise)]
    return row["result"], row["detail"]


def test_one_row_per_student_and_exercise(graded):
    table, text, rows = graded
    assert len(rows) == 6 * len(EXERCISES)
    assert sorted(table) == sorted((s, e) for s in ("alice", "bob", "carol", "dave", "erin", "frank")
                                   for e in EXERCISES)
    assert "alice: 5/5 passed" in text and "carol: 0/5 passed" in text


def test_correct_submission_passes(graded):
    assert [result(graded, "alice", e)[0] for e in EXERCISES] == ["passed"] * len(EXERCISES)


def test_partly_wrong_submission(graded):
    assert result(graded, "bob", "softmax_score") == ("passed", "")
    res, detail = result(graded, "bob", "gaussian_log_prob")
    # the checker's first message line, as the student would see it
    assert res == "failed" and detail.startswith("gaussian_log_prob: wrong answer for"), detail
    assert result(graded, "bob", "cem_update")[0] == "not implemented"
    res, detail = result(graded, "bob", "finite_difference_gradient")
    assert res == "passed" and "check cell is missing" in detail


def test_empty_submission_is_not_implemented(graded):
    assert [result(graded, "carol", e)[0] for e in EXERCISES] == ["not implemented"] * len(EXERCISES)


def test_endless_loop_times_out_and_the_rest_is_graded(graded):
    res, detail = result(graded, "dave", "softmax_score")
    assert res == "timed out" and "20 s" in detail, detail
    assert [result(graded, "dave", e)[0] for e in EXERCISES[1:]] == ["passed"] * (len(EXERCISES) - 1)


def test_corrupt_notebook(graded):
    for e in EXERCISES:
        res, detail = result(graded, "erin", e)
        assert res == "invalid notebook" and "JSON" in detail, detail


def test_import_error_deleted_cell_and_dead_kernel(graded):
    res, detail = result(graded, "frank", "softmax_score")
    assert res == "crashed" and "`softmax_score` is not defined" in detail, detail
    assert "numpy_which_does_not_exist" in detail  # the earlier failure that may explain it
    # torch was never imported: the checker reports the student's NameError as a wrong answer
    assert result(graded, "frank", "gaussian_log_prob")[0] == "failed"
    res, detail = result(graded, "frank", "cem_update")
    assert res == "crashed" and "process" in detail, detail


def test_student_names_from_files(tmp_path):
    (tmp_path / "alice").mkdir()
    for p in ("alice/ex00_discounted_returns.ipynb", "bob_ex00_discounted_returns.ipynb", "carol.ipynb"):
        (tmp_path / p).write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "x.ipynb").write_text("{}")
    assert [s for s, _ in grade.find_notebooks([tmp_path])] == ["alice", "bob", "carol"]


def test_cli_reports_usage_errors(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "nowhere")]) == 2
    assert cli.main(["grade", str(tmp_path)]) == 2
    assert "no .ipynb notebooks" in capsys.readouterr().err
