"""Finding the submitted notebooks, and telling which exercise each one is."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import checks
from ..checks import Exercise, load_exercise, module_name
from ..errors import InputError
from .notebooks import defined_names


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path
    exercise: str | None  # "01"; None when it cannot be told from the name or the metadata
    folder: Path | None = None  # the student's own folder (copied as the working directory), if any


def _exercise_of(path: Path, forced: str | None) -> str | None:
    if forced:
        return forced
    from ..authoring.layout import exercise_number

    number = exercise_number(path)
    if number:
        return number
    with contextlib.suppress(Exception):
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("personalab", {})
        if isinstance(meta, dict) and isinstance(meta.get("exercise"), str):
            return meta["exercise"]
    return None


def find_submissions(root: str | Path, *, exercise: str | None = None) -> list[Submission]:
    """Notebooks under ``root``: ``root/STUDENT.ipynb`` or ``root/STUDENT/*.ipynb`` (one folder per student)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("submissions folder not found", path=root, fix="pass the folder that holds the notebooks")
    subs: list[Submission] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix == ".ipynb":
            subs.append(Submission(path.stem, path, _exercise_of(path, exercise)))
        elif path.is_dir():
            for nb in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in nb.parts:
                    subs.append(Submission(path.name, nb, _exercise_of(nb, exercise), folder=path))
    return subs


def exercise_names(exercise: Exercise) -> set[str]:
    return {n for q in exercise.questions for n in q.names}


def other_exercise(nb: Any, expected: str) -> str | None:
    """The exercise a notebook really is when it is not ``expected`` ("03"), from its metadata, else from
    which exercise's variables its cells define; None when it looks like ``expected`` (or like nothing)."""
    meta = nb.get("metadata", {}).get("personalab", {})
    claimed = meta.get("exercise") if isinstance(meta, dict) else None
    want = module_name(expected)
    number = want.rsplit(".", 1)[-1].removeprefix("ex")
    if isinstance(claimed, str) and claimed.isdigit() and claimed.lstrip("0") != number.lstrip("0"):
        return claimed
    if not want.startswith("personalab.checks."):
        return None
    defined = set().union(*(defined_names(c.source) for c in nb.cells if c.get("cell_type") == "code"))
    own = exercise_names(load_exercise(expected))
    if own & defined:
        return None
    for path in sorted(Path(checks.__file__).parent.glob("ex[0-9][0-9].py")):
        number = path.stem[2:]
        with contextlib.suppress(Exception):
            names = exercise_names(load_exercise(number))
            if number != expected.removeprefix("ex") and len(names & defined) * 2 >= len(names):
                return number
    return None


def exercise_label(number: str) -> str:
    with contextlib.suppress(Exception):
        return f"exercise {number} ({load_exercise(number).title})"
    return f"exercise {number}"
