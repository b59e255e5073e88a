"""Reading a submitted notebook, and what its cells define (pure functions, no kernel)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_notebook(path: Path) -> Any:
    """The notebook at ``path``; ValueError with a short, learner-readable reason when it is not one."""
    import nbformat

    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise ValueError("the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
                         "(was it truncated or edited by hand?)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
        raise ValueError("it is JSON but not a Jupyter notebook (no 'cells' list or 'nbformat' version)")
    nb = nbformat.reads(text, as_version=4)
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError(f"cell {i} is not a notebook cell")
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        if not isinstance(cell.get("source"), str):
            raise ValueError(f"cell {i} has no source text")
        cell.setdefault("metadata", {})
    return nb


def cell_label(cells: Sequence[Any], i: int) -> str:
    """How messages name a cell: 1-based, as a learner counts, with its first line of code."""
    src = cells[i].get("source", "") if 0 <= i < len(cells) else ""
    first = next((ln.strip() for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")), "")
    first = first.replace("`", "'")
    snippet = first if len(first) <= 40 else first[:37] + "..."
    return f"cell {i + 1}" + (f" (`{snippet}`)" if snippet else "")


def defined_names(source: str) -> set[str]:
    """Names a cell's code binds at top level (assignments, defs, imports, for targets)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names
