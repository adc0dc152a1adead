"""Issue 15, items 3, 6 and 8: the answer key is in the solutions and out of the exercises, every exercise notebook
states its time, and the course map lists exactly the exercises that exist."""
import re

import jupytext
import pytest

from lecturekit.course import authoring

ROOT = authoring.ROOT
SOLUTIONS = authoring.notebook_sources(("solutions",))


def test_make_exercise_drops_answer_cells_only():
    src = ('# %% [markdown]\n# **Think about it.** Why?\n\n# %% [markdown] tags=["answer"]\n# **Answer.** Because.\n\n'
           '# %% tags=["uses-answer"]\nprint(1)\n\n# %% [markdown] tags=["answer"]\n# **Answer.** Last.\n')
    out = authoring.make_exercise(src)
    assert "Because" not in out and "Last" not in out
    assert "Think about it" in out and "print(1)" in out and 'tags=["uses-answer"]' in out
    nb = jupytext.reads(out, fmt="py:percent")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]


@pytest.mark.parametrize("py", SOLUTIONS, ids=lambda p: p.name)
def test_every_think_about_it_has_an_answer(py):
    cells = jupytext.read(py).cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and "**Think about it.**" in cell.source:
            rest = cells[i + 1:]
            following = next((c for c in rest if c.cell_type == "markdown"), None)
            assert following is not None and "answer" in following.metadata.get("tags", []), (
                f"{py.name}: the question in cell {i} has no answer cell (a Markdown cell tagged 'answer') after it")


@pytest.mark.parametrize("py", SOLUTIONS, ids=lambda p: p.name)
def test_exercise_states_its_time(py):
    first = next(c for c in jupytext.read(py).cells if c.cell_type == "markdown")
    assert re.search(r"\*Time: about \d+ minutes", first.source), f"{py.name}: no time estimate in its first cell"
    assert "estimate" in first.source


def test_course_map_lists_exactly_the_exercises_that_exist():
    text = (ROOT / "notebooks" / "00_course_map.py").read_text()
    listed = set(re.findall(r"\bex(\d\d)\b", text))
    existing = {p.name[2:4] for p in SOLUTIONS}
    assert listed <= existing, f"the course map names exercises that do not exist: {sorted(listed - existing)}"
    assert existing <= listed, f"the course map misses exercises: {sorted(existing - listed)}"
    for name in re.findall(r"\(\.\./exercises/(ex\d\d_\w+)\.ipynb\)", text):
        assert (ROOT / "solutions" / f"{name}.py").exists(), name


def test_every_check_cell_names_a_checker_that_exists():
    import lecturekit.checks as checks

    for py in SOLUTIONS:
        for name, arg in re.findall(r"^check_(\w+)\((\w+)\)", py.read_text(), re.M):
            assert hasattr(checks, f"check_{name}"), f"{py.name}: check_{name} is not in lecturekit.checks"
            assert name == arg, f"{py.name}: check_{name}({arg}): the grader expects check_<name>(<name>)"
