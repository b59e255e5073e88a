"""Solution regions: the learner's part of a cell in ``solutions/NN_*.ipynb``, between two marker lines::

    ### BEGIN SOLUTION
    my_persona = {...}
    ### END SOLUTION

:mod:`.exercises` replaces each region by a placeholder; ``qN.solution()`` shows the regions of question
``qN`` (:func:`model_solution`): a region belongs to the first ``qN.check()`` call after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import InputError
from .layout import SOLUTIONS_DIR

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
FIX = f"every `{BEGIN}` line needs a matching `{END}` line below it, in the same cell"
CHECK_CALL = re.compile(r"\s*(q\d+)\.check\(")


@dataclass(frozen=True)
class Region:
    """One marked region of a cell: the line numbers (from 0) of its markers, their indentation, the text between."""

    begin: int
    end: int
    indent: str
    text: str


def find_regions(source: str, *, where: str = "<cell>") -> list[Region]:
    """The marked regions of a cell's source, in order; raises :class:`InputError` on unbalanced markers."""
    lines = source.splitlines()
    regions: list[Region] = []
    start: int | None = None  # line of the open BEGIN marker
    for n, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if start is not None:
                raise InputError(f"nested `{BEGIN}`", path=where, line=n + 1, fix=FIX)
            start = n
        elif marker == END:
            if start is None:
                raise InputError(f"`{END}` without a `{BEGIN}` above it", path=where, line=n + 1, fix=FIX)
            indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
            regions.append(Region(start, n, indent, "\n".join(lines[start + 1 : n])))
            start = None
    if start is not None:
        raise InputError(f"`{BEGIN}` is never closed", path=where, fix=FIX)
    return regions


def question_regions(nb: nbformat.NotebookNode, *, name: str = "<notebook>") -> dict[str, list[str]]:
    """The texts of a solution notebook's regions by question (``"q1"``): each region goes to the first
    ``qN.check()`` call after it; regions after the last call belong to no question."""
    out: dict[str, list[str]] = {}
    pending: list[str] = []
    for i, cell in enumerate(nb.cells):
        regions = find_regions(cell.source, where=f"{name}, cell {i} (id {cell.get('id', '?')})")
        lines = cell.source.splitlines() if cell.cell_type == "code" else []
        checks = [(n, m.group(1), "") for n, line in enumerate(lines) if (m := CHECK_CALL.match(line))]
        events = sorted([(r.begin, "", r.text) for r in regions] + checks)
        for _, question, text in events:
            if question:
                out.setdefault(question, []).extend(pending)
                pending = []
            else:
                pending.append(text)
    return out


def solution_notebook(exercise: str, solutions_dir: Path | None = None) -> Path | None:
    """``solutions/NN_*.ipynb`` of exercise ``NN``; None when there is none (a student release has no solutions/)."""
    found = sorted((solutions_dir or SOLUTIONS_DIR).glob(f"{exercise}_*.ipynb"))
    return found[0] if found else None


def model_solution(exercise: str, question: str, solutions_dir: Path | None = None) -> str | None:
    """The text of the solution regions of question ``question`` (``"q1"``) of exercise ``exercise``
    (``"01"``), regions separated by a blank line: ``""`` when it has none, None without a solution notebook."""
    path = solution_notebook(exercise, solutions_dir)
    if path is None:
        return None
    regions = question_regions(nbformat.read(path, as_version=4), name=f"solutions/{path.name}")
    return "\n\n".join(regions.get(question, []))
