"""Consistency of the course itself: notebook pairs in sync and without outputs, exercises generated from
solutions, and every exercise's check cells failing with the checker's 'not implemented yet' when run with stubs.
Also: the authoring commands never destroy work (an exercise edited by hand, an .ipynb edited outside jupytext, a
student's copy in work/), tested on a temporary copy of the course."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
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


# ------------------------------------------------------------------------------------ nothing overwrites work

COURSE_FILES = ("Makefile", "pyproject.toml", "jupytext.toml", ".gitignore", "lab", "lecturekit", "notebooks",
                "solutions", "exercises")
EX = "ex00_discounted_returns"
ANSWER = """    # my answer: the recursion G_t = r_t + gamma G_{t+1}, backwards
    G, g = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        g = rewards[t] + gamma * g
        G[t] = g
    return G
"""


@pytest.fixture
def course(tmp_path) -> Path:
    """A temporary copy of the course (package, notebooks, solutions, exercises, Makefile) with the test's .venv."""
    root = tmp_path / "course"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.egg-info")
    for name in COURSE_FILES:
        src = authoring.ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=ignore)
        else:
            shutil.copy2(src, root / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root


def make(root: Path, target: str) -> subprocess.CompletedProcess:
    """`make <target>` in the copy; -o: the .venv is the test's own, already set up (never reinstall it)."""
    return subprocess.run(["make", "-o", ".venv/.installed", target], cwd=root, capture_output=True, text=True,
                          timeout=300)


def fill_in(py: Path) -> None:
    """A student's answer in `py` and its .ipynb, as JupyterLab with jupytext saves them: both files, and the
    .ipynb with outputs and JupyterLab's own cell ids."""
    nb = jupytext.reads(py.read_text().replace(f"    {authoring.STUB}\n", ANSWER), fmt="py:percent")
    assert ANSWER in jupytext.writes(nb, fmt="py:percent"), "the exercise's stub line was not found"
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"student-{i}"
        if cell.source.startswith("check_"):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="check passed\n")]
            cell.execution_count = 3
    py.with_suffix(".ipynb").write_text(nbformat.writes(nb))
    py.write_text(jupytext.writes(nb, fmt="py:percent"))


def digests(*paths: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_generate_exercises_refuses_to_overwrite_an_edited_exercise(course):
    ex = course / "exercises" / f"{EX}.py"
    fill_in(ex)
    before = digests(ex, ex.with_suffix(".ipynb"))
    sol = course / "solutions" / "ex01_scores_and_search.py"
    sol.write_text(sol.read_text().replace("# %%", "# %%\n# an author's new comment", 1))  # an author's change

    written, refused = authoring.generate_exercises(course)
    assert digests(ex, ex.with_suffix(".ipynb")) == before
    assert len(refused) == 2 and all(f"exercises/{EX}." in m and "edited after `make exercises` wrote it" in m
                                     for m in refused), refused
    assert f"solutions/{EX}.py" in refused[0] and "work/" in refused[0]  # where the edits belong
    # the other exercises are still regenerated, the author's change included
    assert course / "exercises" / "ex01_scores_and_search.py" in written
    assert "an author's new comment" in (course / "exercises" / "ex01_scores_and_search.py").read_text()

    # once the edited file is out of the way, make exercises writes the stub again
    ex.rename(course / "answers.py")
    ex.with_suffix(".ipynb").unlink()
    written, refused = authoring.generate_exercises(course)
    assert refused == [] and ex in written and authoring.exercise_problems(course) == []


def test_generate_exercises_refuses_an_ipynb_edited_alone(course):
    ipynb = course / "exercises" / f"{EX}.ipynb"
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[0].source += "\n\nMy notes."
    nbformat.write(nb, ipynb)
    before = digests(ipynb)
    _, refused = authoring.generate_exercises(course)
    assert digests(ipynb) == before and len(refused) == 1 and f"exercises/{EX}.ipynb" in refused[0]


def test_sync_refuses_an_ipynb_whose_cells_its_py_lacks(course):
    py = course / "notebooks" / "01_policy_based_learning.py"
    ipynb = py.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"][1]
    nb.cells[code].source += "\nprint('edited in the .ipynb, outside jupytext')"  # keeps sync's cell id
    nbformat.write(nb, ipynb)
    before = digests(ipynb)
    changed, refused = authoring.sync([py], course)
    assert changed == [] and digests(ipynb) == before
    assert len(refused) == 1 and "notebooks/01_policy_based_learning.ipynb" in refused[0]
    assert f"cell {code}" in refused[0] and "outside jupytext" in refused[0]

    # an author's edit of the .py is what sync is for: the .ipynb's cells all came from an older .py
    ipynb.write_text(authoring.render(py.read_text())[1])
    py.write_text(py.read_text().replace("# %%", "# %%\n# a new line in the source", 1))
    changed, refused = authoring.sync([py], course)
    assert refused == [] and changed == [py] and "a new line in the source" in ipynb.read_text()


def test_students_work_survives_make_test_exercises_sync_and_lab(course, capsys):
    """A filled-in copy in work/ (where students work) and in exercises/ (where they should not, but may) are
    unchanged by every command: `make lab` (its copy step), `make exercises`, `make sync`, and the consistency
    check of `make test` (`make check`; the rest of `make test` only reads)."""
    assert authoring.main(["work"], root=course) == 0  # the first `make lab`
    mine = [course / "work" / f"{EX}.py", course / "exercises" / f"{EX}.py"]
    for py in mine:
        fill_in(py)
    files = [f for py in mine for f in (py, py.with_suffix(".ipynb"))]
    before = digests(*files[:2]), digests(*files[2:])

    assert authoring.copy_exercises_to_work(course) == []  # the next `make lab`
    res = make(course, "exercises")
    assert res.returncode != 0 and f"exercises/{EX}.py: `make exercises` will not overwrite it" in res.stderr, (
        res.stdout + res.stderr)
    res = make(course, "sync")
    assert res.returncode == 0, res.stdout + res.stderr
    assert authoring.main(["check"], root=course) == 1  # `make check`, what test_course.py asserts
    out = capsys.readouterr().out
    assert f"exercises/{EX}.py: `make exercises` will not overwrite it" in out and "work/" in out
    assert (digests(*files[:2]), digests(*files[2:])) == before
    assert ANSWER in files[0].read_text()


def test_make_lab_copies_each_exercise_once_and_never_half_a_pair(course):
    work = course / "work"
    copied = authoring.copy_exercises_to_work(course)
    assert {p.name for p in copied} == {p.name for e in EXERCISES for p in (e, e.with_suffix(".ipynb"))}
    (work / f"{EX}.py").unlink()  # the student kept only the .ipynb: a fresh .py would shadow it
    (work / "ex01_scores_and_search.py").unlink()
    (work / "ex01_scores_and_search.ipynb").unlink()  # deleted on purpose: a fresh copy next time
    copied = authoring.copy_exercises_to_work(course)
    assert [p.name for p in copied] == ["ex01_scores_and_search.ipynb", "ex01_scores_and_search.py"]
    assert not (work / f"{EX}.py").exists()
    assert "work/" in (course / ".gitignore").read_text().split()
