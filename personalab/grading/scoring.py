"""Turning the values a notebook exported into points, outside the kernel, with reasons a learner can act on."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..checks import Exercise, Hidden, Question, Result
from .notebooks import cell_label, defined_names


def read_values(path: Path, nonce: str) -> dict[str, Any]:
    """Question id -> values exported to ``path``: the first line carrying ``nonce`` wins, others are ignored."""
    exported: dict[str, Any] = {}
    if not path.exists():
        return exported
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(Exception):
            rec = json.loads(line)
            if rec.get("nonce") == nonce and isinstance(rec.get("values"), dict):
                exported.setdefault(str(rec["question"]), rec["values"])
    return exported


def grade_questions(exercise: Exercise, exported: dict[str, Any], hidden: dict[str, Hidden], nb: Any,
                    status: dict[str, Any], cell_errors: list[dict[str, Any]]) -> list[Result]:
    """Every question's verdict from the ``exported`` values and the worker's ``status``. After a second run up
    to ``rerun_upto``, a question whose variables a later cell redefines, or an earlier one leaves unbound, is not
    graded. A question lost to the clock is "timed-out", never "not-attempted"."""
    results: list[Result] = []
    stopped = status.get("note") or "the notebook stopped before the grading step"
    lost = "timed-out" if status.get("timed_out") else "error"
    rerun_upto = status.get("rerun_upto")
    for q in exercise.questions:
        if q.id in exported and rerun_upto is not None and (_defined_from(nb, q.names, rerun_upto) or not
                                                            _defined_before(nb, q.names, rerun_upto)):
            results.append(Result(q.id, 0.0, float(q.points), lost, f"not graded: {stopped}"))
        elif q.id in exported:
            results.append(_grade_question(q, exported[q.id], hidden.get(q.id), nb, cell_errors))
        else:
            results.append(Result(q.id, 0.0, float(q.points), lost, f"not graded: {stopped}"))
    return results


def _defined_from(nb: Any, names: Sequence[str], first: int) -> bool:
    """Whether a code cell at index ``first`` or later (re)defines one of ``names``."""
    return any(c.get("cell_type") == "code" and set(names) & defined_names(c.source) for c in nb.cells[first:])


def _defined_before(nb: Any, names: Sequence[str], end: int) -> bool:
    """Whether every one of ``names`` is bound by some code cell before index ``end``."""
    bound = set().union(*(defined_names(c.source) for c in nb.cells[:end] if c.get("cell_type") == "code"))
    return set(names) <= bound


def _grade_question(q: Question, values: dict[str, Any], hidden: Hidden | None, nb: Any,
                    cell_errors: list[dict[str, Any]]) -> Result:
    """One question's verdict: with the grader's hidden check where it has one, and "not attempted" when the
    cells that define its variables still hold the exercise's ``NotImplementedError`` placeholder."""
    if hidden is not None and values.get("__hidden__") is True:
        result = q.grade(values, check_fn=hidden.check)
    elif hidden is not None and q.probe is not None and "__probe_error__" not in values and \
            not any(isinstance(v, dict) and set(v) == {"__missing__"} for v in values.values()):
        result = Result(q.id, 0.0, float(q.points), "error", "not graded: the hidden cases did not run")
    else:
        result = q.grade(values)
    if result.status == "not-attempted" and _placeholder_cell(nb, q.names) is None:
        status, reason = _explain_missing(values, nb, cell_errors)
        if status == "timed-out" or not _still_raises(cell_errors):  # else: an untouched cell it depends on
            result = Result(q.id, 0.0, float(q.points), status, reason or result.reason)
    elif result.status in ("incorrect", "error"):
        untouched = _placeholder_cell(nb, q.names)
        if untouched is not None:
            result = Result(q.id, 0.0, float(q.points), "not-attempted",
                            f"{cell_label(nb.cells, untouched)} still raises NotImplementedError: "
                            "fill in your code there")
    return result


def _still_raises(cell_errors: list[dict[str, Any]]) -> bool:
    return any(e["ename"] == "NotImplementedError" for e in cell_errors)


def _placeholder_cell(nb: Any, names: Sequence[str]) -> int | None:
    """The first code cell defining one of ``names`` that still contains a ``raise NotImplementedError``."""
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and set(names) & defined_names(cell.source) and \
                re.search(r"^\s*raise NotImplementedError\b", cell.source, re.MULTILINE):
            return i
    return None


def _explain_missing(values: dict[str, Any], nb: Any, cell_errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """(status, reason) for a variable the question reads that is missing although its cell is filled in: which
    cell should define it and what happened there. "timed-out" when that cell, or one before it, hit the time
    limit; "error" otherwise ("not attempted" is only for a placeholder left in place)."""
    missing = [k for k, v in values.items() if isinstance(v, dict) and set(v) == {"__missing__"}]
    if not missing:
        return "error", None
    name = missing[0]
    cells = [i for i, c in enumerate(nb.cells) if c.get("cell_type") == "code" and name in defined_names(c.source)]
    if not cells:
        return "error", f"`{name}` is not defined and no cell of the notebook defines it (was that cell deleted?)"
    errors = {e["cell"]: e for e in cell_errors}
    clock = [e for e in cell_errors if e["ename"] == "Timeout" and e["cell"] <= cells[-1]]
    if clock:
        e = clock[0]
        limit = e.get("limit_s")
        after = f" after {limit:g} s" if isinstance(limit, (int, float)) else ""
        chain = "which defines it" if e["cell"] in cells else "which runs before the cell that defines it"
        return "timed-out", (f"timed out{after}: {cell_label(nb.cells, e['cell'])}, {chain}, ran past the cell "
                             f"time limit and was interrupted, so `{name}` was never set and this question could "
                             "not be checked (the limit is the model solution's time with a margin: make that "
                             "cell faster, or ask your instructor to regrade with a longer --timeout)")
    failed = [i for i in cells if i in errors]
    if failed:
        e = errors[failed[0]]
        where = cell_label(nb.cells, failed[0])
        return "error", f"`{name}` is not defined: {where}, which defines it, raised {e['ename']}: {e['evalue'][:150]}"
    return "error", None
