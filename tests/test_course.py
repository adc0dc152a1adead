"""Consistency of the course itself: notebook pairs in sync and without outputs, exercises generated from
solutions, and every exercise's check cells failing with the checker's 'not implemented yet' when run with stubs."""
from __future__ import annotations

import re

import pytest

from lecturekit.course import authoring

SOURCES = authoring.notebook_sources()
EXERCISES = authoring.notebook_sources(("exercises",))


def test_there_is_a_course():
    assert any(p.parent.name == "notebooks" and p.name.startswith("00_") for p in SOURCES)
    assert EXERCISES, "no exercises found"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pair_in_sync_and_stripped(py):
    problems = authoring.pair_problems(py)
    assert not problems, "\n".join(problems)


def test_exercises_generated_from_solutions():
    problems = authoring.exercise_problems()
    assert not problems, "\n".join(problems)


def test_make_exercise_replaces_marked_blocks():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    out = authoring.make_exercise(src)
    assert "return x + y" not in out and "y = 1" in out
    assert "    raise NotImplementedError(" in out
    with pytest.raises(ValueError):
        authoring.make_exercise("### BEGIN SOLUTION\nx = 1\n")


def _run_notebook(path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.mark.parametrize("py", EXERCISES, ids=lambda p: p.name)
def test_exercise_stubs_report_not_implemented(py):
    nb = _run_notebook(py.with_suffix(".ipynb"))
    checks = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        is_check = re.search(r"^\s*check_\w+\(", cell.source, re.M) is not None
        tags = cell.metadata.get("tags", [])
        if is_check:
            checks += 1
            assert errors, f"cell {i} is a check cell but did not fail with the stub:\n{cell.source}"
            e = errors[0]
            assert e.ename == "CheckFailed" and "not implemented yet" in e.evalue, (
                f"cell {i} should report 'not implemented yet' through the checker, got {e.ename}: {e.evalue}")
        elif errors and "uses-answer" not in tags:
            e = errors[0]
            pytest.fail(f"cell {i} of {py.name} failed with the stubs ({e.ename}: {e.evalue}); only check cells "
                        f"and cells tagged 'uses-answer' may fail:\n{cell.source}")
    assert checks, f"{py.name} has no check cell"
