"""Exercise notebooks, generated from the solution notebooks (the single source of truth).

In ``solutions/NN_*.ipynb`` the learner's part of a code cell sits between two marker lines::

    ### BEGIN SOLUTION
    my_persona = {...}
    ### END SOLUTION

``exercises/NN_*.ipynb`` gets ``raise NotImplementedError("your code here")`` instead, at the marker's
indentation (markdown cells get "*Write your answer here.*"). Cells tagged ``instructor`` or ``hidden`` are
left out, outputs are cleared and the Colab badge points at the exercise. The output is deterministic, so
a test can tell when ``exercises/`` is stale (:func:`stale`).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from .config import REPO_ROOT
from .errors import InputError
from .io import atomic_write_text

SOLUTIONS_DIR = REPO_ROOT / "solutions"
EXERCISES_DIR = REPO_ROOT / "exercises"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = 'raise NotImplementedError("your code here")'
MARKDOWN_PLACEHOLDER = "*Write your answer here.*"
REMOVED_TAGS = frozenset({"instructor", "hidden"})
#: tag added to every cell whose solution was replaced (these are the cells expected to raise when run as is)
EXERCISE_TAG = "exercise"
FIX = f"every `{BEGIN}` line needs a matching `{END}` line below it, in the same cell"


def exercise_number(path: str | Path) -> str | None:
    """``01`` for ``01_system_prompt_persona.ipynb``; None when the name has no ``NN_`` prefix."""
    m = re.match(r"(\d{2})_", Path(path).name)
    return m.group(1) if m else None


def strip_solutions(source: str, *, markdown: bool = False, where: str = "<cell>") -> tuple[str, bool]:
    """Replace each marked solution region by the placeholder. Returns (new source, whether any was replaced)."""
    out: list[str] = []
    inside: str | None = None  # indentation of the open BEGIN marker
    replaced = False
    for n, line in enumerate(source.splitlines(), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside is not None:
                raise InputError(f"nested `{BEGIN}`", path=where, line=n, fix=FIX)
            inside = line[: len(line) - len(line.lstrip())]
            out.append(inside + (MARKDOWN_PLACEHOLDER if markdown else PLACEHOLDER))
            replaced = True
        elif marker == END:
            if inside is None:
                raise InputError(f"`{END}` without a `{BEGIN}` above it", path=where, line=n, fix=FIX)
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise InputError(f"`{BEGIN}` is never closed", path=where, fix=FIX)
    return "\n".join(out), replaced


def _badge(kind: str, filename: str) -> str:
    from .notebooks import colab_badge

    return colab_badge(kind, filename)


def render(solution: nbformat.NotebookNode, filename: str) -> nbformat.NotebookNode:
    """The exercise notebook for one solution notebook (the input is not modified)."""
    nb = nbformat.from_dict(solution)
    cells = []
    for i, cell in enumerate(nb.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        if REMOVED_TAGS & set(tags):
            continue
        where = f"solutions/{filename}, cell {i} (id {cell.get('id', '?')})"
        if cell.cell_type in ("code", "markdown"):
            cell.source, replaced = strip_solutions(cell.source, markdown=cell.cell_type == "markdown", where=where)
            if replaced and cell.cell_type == "code" and EXERCISE_TAG not in tags:
                cell.metadata["tags"] = tags + [EXERCISE_TAG]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if cell.cell_type == "markdown" and cell.source == _badge("solutions", filename):
            cell.source = _badge("exercises", filename)
        cells.append(cell)
    nb.cells = cells
    nb.metadata["personalab"] = {"exercise": exercise_number(filename), "generated_from": f"solutions/{filename}"}
    return nb


def targets(solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR) -> dict[Path, str]:
    """Map of exercise notebook path -> its text, for every numbered solution notebook."""
    from .notebooks import dumps

    out: dict[Path, str] = {}
    for src in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        out[exercises_dir / src.name] = dumps(render(nb, src.name))
    return out


def build(solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR) -> list[Path]:
    """Regenerate ``exercises/`` from ``solutions/`` (and delete exercises whose solution is gone).

    Returns the files that changed or were deleted."""
    wanted = targets(solutions_dir, exercises_dir)
    changed = []
    for path, text in wanted.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
            changed.append(path)
    for path in sorted(exercises_dir.glob("[0-9][0-9]_*.ipynb")):
        if path not in wanted:
            path.unlink()
            changed.append(path)
    return changed


def stale(solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR) -> list[Path]:
    """Exercise notebooks that are missing or differ from what their solutions produce, plus orphans."""
    wanted = targets(solutions_dir, exercises_dir)
    out = [p for p, t in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != t]
    orphans = [p for p in sorted(exercises_dir.glob("[0-9][0-9]_*.ipynb")) if p not in wanted]
    return out + orphans
