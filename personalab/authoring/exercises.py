"""Exercise notebooks, generated from the solution notebooks (the single source of truth).

``exercises/NN_*.ipynb`` is ``solutions/NN_*.ipynb`` with each solution region (:mod:`.regions`) replaced by
``raise NotImplementedError("your code here")`` at the marker's indentation (markdown cells get "*Write your
answer here.*"). Cells tagged ``instructor`` or ``hidden`` are left out, outputs are cleared and the Colab
badge points at the exercise. The output is deterministic, so a test can tell when ``exercises/`` is stale
(:func:`stale`).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .layout import EXERCISES_DIR, SOLUTIONS_DIR, colab_badge, differing, dumps, exercise_number, write_changed
from .regions import find_regions

PLACEHOLDER = 'raise NotImplementedError("your code here")'
MARKDOWN_PLACEHOLDER = "*Write your answer here.*"
REMOVED_TAGS = frozenset({"instructor", "hidden"})
#: tag added to every cell whose solution was replaced (these are the cells expected to raise when run as is)
EXERCISE_TAG = "exercise"


def strip_solutions(source: str, *, markdown: bool = False, where: str = "<cell>") -> tuple[str, bool]:
    """Replace each marked solution region by the placeholder. Returns (new source, whether any was replaced)."""
    lines = source.splitlines()
    regions = find_regions(source, where=where)
    out: list[str] = []
    pos = 0
    for region in regions:
        out += lines[pos : region.begin] + [region.indent + (MARKDOWN_PLACEHOLDER if markdown else PLACEHOLDER)]
        pos = region.end + 1
    return "\n".join(out + lines[pos:]), bool(regions)


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
        if cell.cell_type == "markdown" and cell.source == colab_badge("solutions", filename):
            cell.source = colab_badge("exercises", filename)
        cells.append(cell)
    nb.cells = cells
    nb.metadata["personalab"] = {"exercise": exercise_number(filename), "generated_from": f"solutions/{filename}"}
    return nb


def targets(solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR) -> dict[Path, str]:
    """Map of exercise notebook path -> its text, for every numbered solution notebook."""
    out: dict[Path, str] = {}
    for src in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        out[exercises_dir / src.name] = dumps(render(nb, src.name))
    return out


def _orphans(wanted: dict[Path, str], exercises_dir: Path) -> list[Path]:
    return [p for p in sorted(exercises_dir.glob("[0-9][0-9]_*.ipynb")) if p not in wanted]


def build(solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR) -> list[Path]:
    """Regenerate ``exercises/`` from ``solutions/`` (and delete exercises whose solution is gone).

    Returns the files that changed or were deleted."""
    wanted = targets(solutions_dir, exercises_dir)
    orphans = _orphans(wanted, exercises_dir)
    for path in orphans:
        path.unlink()
    return write_changed(wanted) + orphans


def stale(solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR) -> list[Path]:
    """Exercise notebooks that are missing or differ from what their solutions produce, plus orphans."""
    wanted = targets(solutions_dir, exercises_dir)
    return differing(wanted) + _orphans(wanted, exercises_dir)
