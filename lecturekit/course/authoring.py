"""Course authoring tools: notebook pairs, output stripping, exercise generation, consistency checks.

    python -m lecturekit.course.authoring sync [FILE.py ...]   write each .py's .ipynb pair (no outputs, stable cell ids)
    python -m lecturekit.course.authoring exercises            regenerate exercises/ from solutions/
    python -m lecturekit.course.authoring check                report stale pairs or exercises (exit 1 if any)

The percent-format `.py` file is the source of truth; the `.ipynb` is derived from it.
"""
from __future__ import annotations

import difflib
import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIRS = ("notebooks", "solutions", "exercises")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("not implemented yet: replace this line with your code")'
ANSWER_TAG = '"answer"'  # a Markdown cell with this tag is an answer: in solutions/ only


def _normalise(nb) -> None:
    """No outputs, no execution counts, stable cell ids derived from position and content, a kernelspec."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("language_info", {"name": "python"})
    for i, cell in enumerate(nb.cells):
        digest = hashlib.sha1(f"{i}:{cell.cell_type}:{cell.source}".encode()).hexdigest()[:8]
        cell["id"] = f"c{i:03d}-{digest}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)


def sync_file(py: Path) -> bool:
    """Rewrite `py` canonically and write its .ipynb pair.  Returns True if either file changed."""
    text = py.read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    _normalise(nb)
    new_py = jupytext.writes(nb, fmt="py:percent")
    ipynb = py.with_suffix(".ipynb")
    new_ipynb = nbformat.writes(nb, version=4) + "\n"
    changed = False
    if new_py != text:
        py.write_text(new_py)
        changed = True
    if not ipynb.exists() or ipynb.read_text() != new_ipynb:
        ipynb.write_text(new_ipynb)
        changed = True
    return changed


def notebook_sources(dirs=NOTEBOOK_DIRS) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).glob("*.py") if not p.name.startswith("_"))


def make_exercise(solution_text: str) -> str:
    """Replace every `### BEGIN SOLUTION` ... `### END SOLUTION` block (markers included) by a stub that raises
    NotImplementedError, indented like the BEGIN marker, and drop every Markdown cell tagged "answer" (the answer
    key of a "Think about it" question: `# %% [markdown] tags=["answer"]`), which only the solution keeps."""
    out, inside, in_answer = [], False, False
    for line in solution_text.splitlines(keepends=True):
        stripped = line.strip()
        if line.startswith("# %%"):
            in_answer = "[markdown]" in line and ANSWER_TAG in line
        if in_answer:
            continue
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested '### BEGIN SOLUTION'")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}\n")
        elif stripped == END:
            if not inside:
                raise ValueError("'### END SOLUTION' without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("'### BEGIN SOLUTION' without END")
    return "".join(out).rstrip("\n") + "\n"


def exercise_path(solution: Path) -> Path:
    return ROOT / "exercises" / solution.name


def generate_exercises() -> list[Path]:
    """Write exercises/<name>.py (+ .ipynb) for every solutions/<name>.py; remove exercises without a solution."""
    written = []
    solutions = notebook_sources(("solutions",))
    (ROOT / "exercises").mkdir(exist_ok=True)
    for sol in solutions:
        sync_file(sol)
        target = exercise_path(sol)
        text = make_exercise(sol.read_text())
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        if sync_file(target):
            written.append(target)
    names = {s.stem for s in solutions}
    for stale in (ROOT / "exercises").glob("*"):
        if stale.suffix in (".py", ".ipynb") and stale.stem not in names:
            stale.unlink()
            written.append(stale)
    return written


def pair_problems(py: Path) -> list[str]:
    """Differences between a .py and its .ipynb (as percent text), plus outputs left in the .ipynb."""
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.exists():
        return [f"{ipynb.relative_to(ROOT)} is missing: run `make sync`"]
    problems = []
    nb_ipynb = jupytext.read(ipynb)
    a = jupytext.writes(jupytext.read(py), fmt="py:percent")
    b = jupytext.writes(nb_ipynb, fmt="py:percent")
    if a != b:
        diff = "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), str(py.name), str(ipynb.name), n=1))
        problems.append(f"{py.relative_to(ROOT)} and its .ipynb differ (run `make sync`):\n{diff[:3000]}")
    for cell in nb_ipynb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{ipynb.relative_to(ROOT)} carries outputs: run `make sync`")
            break
    return problems


def exercise_problems() -> list[str]:
    problems = []
    solutions = notebook_sources(("solutions",))
    for sol in solutions:
        text = sol.read_text()
        if BEGIN not in text:
            problems.append(f"{sol.relative_to(ROOT)} has no '{BEGIN}' marker")
        target = exercise_path(sol)
        if not target.exists() or target.read_text() != make_exercise(text):
            problems.append(f"{target.relative_to(ROOT)} is stale: run `make exercises`")
    names = {s.stem for s in solutions}
    for ex in notebook_sources(("exercises",)):
        if ex.stem not in names:
            problems.append(f"{ex.relative_to(ROOT)} has no solution in solutions/")
    return problems


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd, rest = (argv[0], argv[1:]) if argv else ("check", [])
    if cmd == "sync":
        files = [Path(f).resolve() for f in rest] or notebook_sources(("notebooks", "solutions"))
        for f in files:
            if f.suffix == ".ipynb":
                f = f.with_suffix(".py")
            if sync_file(f):
                print(f"synced {f.relative_to(ROOT)}")
        return 0
    if cmd == "exercises":
        for p in generate_exercises():
            print(f"wrote {p.relative_to(ROOT)}")
        return 0
    if cmd == "check":
        problems = [p for f in notebook_sources() for p in pair_problems(f)] + exercise_problems()
        print("\n".join(problems) or "all notebook pairs and exercises are up to date")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
