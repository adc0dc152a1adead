"""Course authoring tools: notebook pairs, output stripping, exercise generation, consistency checks, and the
students' own copies of the exercises.

    python -m lecturekit.course.authoring sync [FILE.py ...]   write each .py's .ipynb pair (no outputs, stable cell ids)
    python -m lecturekit.course.authoring exercises            regenerate exercises/ from solutions/
    python -m lecturekit.course.authoring check                report stale pairs or exercises (exit 1 if any)
    python -m lecturekit.course.authoring work                 copy new exercises into work/ (make lab does this)

The percent-format `.py` file is the source of truth; the `.ipynb` is derived from it.  Nothing here overwrites work
that only exists in the file it would write:
- `sync` refuses to overwrite an .ipynb holding a cell its .py lacks (edited in the .ipynb outside jupytext);
- `exercises` refuses to overwrite an exercise that differs from what it last wrote (recorded, as SHA-256 hashes, in
  solutions/generated_exercises.json, committed with the exercises);
- `work` copies an exercise into work/ (git-ignored: the students' answers) only when work/ has neither of its files.
Every function takes the course folder as `root` (default: the checkout this module is in), so tests run them on a
temporary copy.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import shutil
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIRS = ("notebooks", "solutions", "exercises")
WORK = "work"  # the students' own copies of the exercises (git-ignored; `make lab` fills it)
MANIFEST = Path("solutions") / "generated_exercises.json"  # what `make exercises` last wrote, by hash
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("not implemented yet: replace this line with your code")'
ANSWER_TAG = '"answer"'  # a Markdown cell with this tag is an answer: in solutions/ only


class Refused(Exception):
    """A file was left alone because writing it would lose content that exists nowhere else."""


def _normalise(nb) -> None:
    """No outputs, no execution counts, stable cell ids derived from position and content, a kernelspec."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("language_info", {"name": "python"})
    for i, cell in enumerate(nb.cells):
        cell["id"] = _cell_id(i, cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)


def _cell_id(i: int, cell) -> str:
    digest = hashlib.sha1(f"{i}:{cell.cell_type}:{cell.source}".encode()).hexdigest()[:8]
    return f"c{i:03d}-{digest}"


def _written_by_sync(cell) -> bool:
    """True if the cell is unchanged since `sync` wrote it: its id is the hash of its position and content."""
    cid = str(cell.get("id", ""))
    return cid[:1] == "c" and cid[1:4].isdigit() and cid == _cell_id(int(cid[1:4]), cell)


def _key(cell) -> tuple:
    return cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ()))


def render(text: str) -> tuple[str, str]:
    """The canonical percent text and the .ipynb text (no outputs, stable ids) of a notebook given as percent text."""
    nb = jupytext.reads(text, fmt="py:percent")
    _normalise(nb)
    return jupytext.writes(nb, fmt="py:percent"), nbformat.writes(nb, version=4) + "\n"


def _label(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def cells_only_in_ipynb(py: Path) -> list[int]:
    """Indices of the .ipynb's cells whose content the .py lacks, not counting cells that `sync` wrote from an older
    version of the .py (their ids say so): cells edited or added in the .ipynb outside jupytext."""
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.exists():
        return []
    nb_ipynb = jupytext.read(ipynb)
    in_py = {_key(c) for c in jupytext.reads(py.read_text(), fmt="py:percent").cells}
    return [i for i, c in enumerate(nb_ipynb.cells) if _key(c) not in in_py and not _written_by_sync(c)]


def sync_file(py: Path, root: Path = ROOT) -> bool:
    """Rewrite `py` canonically and write its .ipynb pair.  Returns True if either file changed.

    Raises Refused, writing nothing, if the .ipynb holds a cell the .py lacks."""
    text = py.read_text()
    lost = cells_only_in_ipynb(py)
    if lost:
        nb = jupytext.read(py.with_suffix(".ipynb"))
        first = nb.cells[lost[0]].source.strip().splitlines() or [""]
        raise Refused(
            f"{_label(py.with_suffix('.ipynb'), root)}: not overwritten: its cell {lost[0]}"
            f"{f' (and {len(lost) - 1} more)' if len(lost) > 1 else ''} is not in {py.name} (starts "
            f"{first[0][:60]!r}); it was edited in the .ipynb outside jupytext. Copy what you want to keep into "
            f"{py.name} (or delete the .ipynb if nothing), then run `make sync` again.")
    new_py, new_ipynb = render(text)
    ipynb = py.with_suffix(".ipynb")
    changed = False
    if new_py != text:
        py.write_text(new_py)
        changed = True
    if not ipynb.exists() or ipynb.read_text() != new_ipynb:
        ipynb.write_text(new_ipynb)
        changed = True
    return changed


def sync(files: list[Path], root: Path = ROOT) -> tuple[list[Path], list[str]]:
    """sync_file over `files`: (files that changed, messages about the pairs left alone)."""
    changed, refused = [], []
    for f in files:
        try:
            if sync_file(f, root):
                changed.append(f)
        except Refused as e:
            refused.append(str(e))
    return changed, refused


def notebook_sources(dirs=NOTEBOOK_DIRS, root: Path = ROOT) -> list[Path]:
    return sorted(p for d in dirs for p in (root / d).glob("*.py") if not p.name.startswith("_"))


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


def exercise_path(solution: Path, root: Path = ROOT) -> Path:
    return root / "exercises" / solution.name


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def read_manifest(root: Path = ROOT) -> dict[str, str]:
    """{exercise file name: SHA-256 of the content `make exercises` last wrote}."""
    path = root / MANIFEST
    return json.loads(path.read_text())["files"] if path.exists() else {}


def _write_manifest(record: dict[str, str], root: Path) -> None:
    doc = {"about": "written by `make exercises`: the SHA-256 of each file it last wrote into exercises/, so that it "
                    "never overwrites a file edited since (lecturekit/course/authoring.py)",
           "files": dict(sorted(record.items()))}
    text = json.dumps(doc, indent=1) + "\n"
    if not (root / MANIFEST).exists() or (root / MANIFEST).read_text() != text:
        (root / MANIFEST).write_text(text)


def _edited_since_generated(path: Path, new_text: str | None, record: dict[str, str]) -> bool:
    """The file exists, is not what we would write, and is not what we wrote last time: someone edited it."""
    current = _sha(path)
    if current is None or (new_text is not None and path.read_text() == new_text):
        return False
    return current != record.get(path.name)


def _edited_message(path: Path, solution: Path, root: Path, verb: str) -> str:
    """Why `make exercises` leaves `path` alone (verb: 'overwrite' or 'remove'), and what a course author does."""
    return (f"{_label(path, root)}: `make exercises` will not {verb} it: it was edited after `make exercises` wrote it "
            f"(it differs from what {MANIFEST} records), and those edits would be lost. exercises/ is generated from "
            f"solutions/: move a change to the exercise into {_label(solution, root)}; if these are a student's "
            f"answers, keep a copy (students work in {WORK}/, which no command overwrites). Then delete {_label(path, root)} and run `make exercises` again.")


def generate_exercises(root: Path = ROOT) -> tuple[list[Path], list[str]]:
    """Write exercises/<name>.py (+ .ipynb) for every solutions/<name>.py; remove exercises without a solution.

    Returns (files written or removed, messages about files left alone because they were edited by hand)."""
    written, refused = [], []
    record = read_manifest(root)
    solutions = notebook_sources(("solutions",), root)
    (root / "exercises").mkdir(exist_ok=True)
    for sol in solutions:
        try:
            sync_file(sol, root)
        except Refused as e:
            refused.append(str(e))
            continue
        new = dict(zip((".py", ".ipynb"), render(make_exercise(sol.read_text()))))
        targets = {suffix: exercise_path(sol, root).with_suffix(suffix) for suffix in new}
        edited = [t for s, t in targets.items() if _edited_since_generated(t, new[s], record)]
        if edited:
            refused += [_edited_message(t, sol, root, "overwrite") for t in edited]
            continue
        for suffix, target in targets.items():
            if not target.exists() or target.read_text() != new[suffix]:
                target.write_text(new[suffix])
                written.append(target)
            record[target.name] = _sha(target)
    names = {s.stem for s in solutions}
    for stale in sorted((root / "exercises").glob("*")):
        if stale.suffix in (".py", ".ipynb") and stale.stem not in names:
            if _edited_since_generated(stale, None, record):
                refused.append(_edited_message(stale, root / "solutions" / stale.name, root, "remove"))
                continue
            stale.unlink()
            record.pop(stale.name, None)
            written.append(stale)
    _write_manifest({k: v for k, v in record.items() if (root / "exercises" / k).exists()}, root)
    return written, refused


def pair_problems(py: Path, root: Path = ROOT) -> list[str]:
    """Differences between a .py and its .ipynb (as percent text), plus outputs left in the .ipynb."""
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.exists():
        return [f"{_label(ipynb, root)} is missing: run `make sync`"]
    problems = []
    nb_ipynb = jupytext.read(ipynb)
    a = jupytext.writes(jupytext.read(py), fmt="py:percent")
    b = jupytext.writes(nb_ipynb, fmt="py:percent")
    if a != b:
        diff = "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), str(py.name), str(ipynb.name), n=1))
        how = ("`make exercises` (exercises are generated from solutions/)" if py.parent.name == "exercises"
               else "`make sync` (the .py is the source; `make sync` refuses if the .ipynb has cells the .py lacks)")
        problems.append(f"{_label(py, root)} and its .ipynb differ; run {how}:\n{diff[:3000]}")
    for cell in nb_ipynb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{_label(ipynb, root)} carries outputs: run `make sync`")
            break
    return problems


def exercise_problems(root: Path = ROOT) -> list[str]:
    """What a course author must fix so that exercises/ is exactly what `make exercises` generates from solutions/."""
    problems = []
    record = read_manifest(root)
    solutions = notebook_sources(("solutions",), root)
    for sol in solutions:
        text = sol.read_text()
        if BEGIN not in text:
            problems.append(f"{_label(sol, root)} has no '{BEGIN}' marker: an exercise needs at least one gap")
        new = dict(zip((".py", ".ipynb"), render(make_exercise(text))))
        for suffix, content in new.items():
            target = exercise_path(sol, root).with_suffix(suffix)
            if not target.exists():
                problems.append(f"{_label(target, root)} is missing: run `make exercises`")
            elif _edited_since_generated(target, content, record):
                problems.append(_edited_message(target, sol, root, "overwrite"))
            elif target.read_text() != content:
                problems.append(f"{_label(target, root)} is older than {_label(sol, root)}: run `make exercises`")
            elif record.get(target.name) != _sha(target):
                problems.append(f"{MANIFEST} does not record {_label(target, root)}: run `make exercises` (and "
                                f"commit {MANIFEST} with exercises/)")
    names = {s.stem for s in solutions}
    for ex in notebook_sources(("exercises",), root):
        if ex.stem not in names:
            problems.append(f"{_label(ex, root)} has no solution in solutions/: add one, or delete the exercise")
    return problems


def copy_exercises_to_work(root: Path = ROOT) -> list[Path]:
    """Copy each exercise (.ipynb and .py) into work/ unless work/ already has either file; returns what was copied.

    A pair is copied whole or not at all: a fresh .py next to a student's .ipynb would be the newer file of the
    jupytext pair, and Jupyter would open the stub instead of the student's answers."""
    work = root / WORK
    work.mkdir(exist_ok=True)
    copied = []
    for ex in notebook_sources(("exercises",), root):
        pair = [ex.with_suffix(".ipynb"), ex]  # the .py last: the newer file of the pair
        if any((work / p.name).exists() for p in pair) or not all(p.exists() for p in pair):
            continue
        for p in pair:
            shutil.copyfile(p, work / p.name)
            copied.append(work / p.name)
    return copied


def main(argv=None, root: Path = ROOT) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd, rest = (argv[0], argv[1:]) if argv else ("check", [])
    if cmd == "sync":
        files = [Path(f).resolve() for f in rest] or notebook_sources(("notebooks", "solutions"), root)
        changed, refused = sync([f.with_suffix(".py") for f in files], root)
        for f in changed:
            print(f"synced {_label(f, root)}")
        if refused:
            print("\n".join(refused), file=sys.stderr)
        return 1 if refused else 0
    if cmd == "exercises":
        written, refused = generate_exercises(root)
        for p in written:
            print(f"wrote {_label(p, root)}" if p.exists() else f"removed {_label(p, root)}")
        if refused:
            print("\n".join(refused), file=sys.stderr)
        return 1 if refused else 0
    if cmd == "check":
        problems = [p for f in notebook_sources(root=root) for p in pair_problems(f, root)] + exercise_problems(root)
        print("\n".join(problems) or "all notebook pairs and exercises are up to date")
        return 1 if problems else 0
    if cmd == "work":
        copied = copy_exercises_to_work(root)
        names = sorted({p.stem for p in copied})
        if names:
            print(f"copied into {WORK}/ (your own copies; `make exercises` never touches them): {', '.join(names)}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
