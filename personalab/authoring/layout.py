"""Where the course's notebooks live, how they are named, and how a generated notebook is written."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ..config import REPO_ROOT
from ..io import atomic_write_text

REPO_SLUG = "persona-lab/persona-lab"
SRC_DIR = REPO_ROOT / "notebooks_src"
SOLUTIONS_DIR = REPO_ROOT / "solutions"
EXERCISES_DIR = REPO_ROOT / "exercises"


def exercise_number(path: str | Path) -> str | None:
    """``01`` for ``01_system_prompt_persona.ipynb``; None when the name has no ``NN_`` prefix."""
    m = re.match(r"(\d{2})_", Path(path).name)
    return m.group(1) if m else None


def colab_badge(kind: str, filename: str) -> str:
    """The "Open in Colab" badge of notebook ``kind/filename`` (kind: lessons, solutions or exercises)."""
    url = f"https://colab.research.google.com/github/{REPO_SLUG}/blob/main/{kind}/{filename}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def dumps(nb: nbformat.NotebookNode) -> str:
    """A generated notebook's text, byte for byte (what the staleness checks compare)."""
    return nbformat.writes(nb) + "\n"


def write_changed(wanted: dict[Path, str]) -> list[Path]:
    """Write each file whose text differs from ``wanted``. Returns the files written."""
    changed = differing(wanted)
    for path in changed:
        atomic_write_text(path, wanted[path])
    return changed


def differing(wanted: dict[Path, str]) -> list[Path]:
    """The files that are missing or whose text differs from ``wanted``."""
    return [path for path, text in wanted.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
