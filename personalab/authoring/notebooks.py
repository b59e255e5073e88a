"""Lessons, solutions and the express notebook: every course notebook is written as a percent-format script
under ``notebooks_src/`` and turned into ``lessons/``, ``solutions/`` and ``express/`` here, with the same header
("Open in Colab" badge, setup cell) on every one. ``exercises/`` is generated from ``solutions/``
by :mod:`.exercises`. Run ``personalab notebooks build`` after editing a source.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ..config import REPO_ROOT
from .layout import REPO_SLUG, SRC_DIR, colab_badge, differing, dumps, write_changed

#: Folders of notebooks, each generated from ``notebooks_src/<kind>/``. ``express/`` holds one notebook that runs
#: every lesson's measurements in one runtime; it is not a lesson (run-course and the nbval suite leave it out).
KINDS = ("lessons", "solutions", "express")

SETUP_CELL = """\
# Setup. In Colab this adds what the course needs to Colab's own runtime (its torch, numpy, ipykernel and
# ipywidgets are kept): locks/colab.txt, installed once per runtime; a rerun installs nothing.
# Elsewhere it only checks the install: run `python3 dev.py course` once from the repository root.
# Each Colab badge opens a new runtime. USE_DRIVE = True keeps lesson 04's model and every lesson's results on your
# Google Drive (Colab asks once), so a later lesson finds them; without it, a lesson recomputes what it needs.
USE_DRIVE = False
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/persona-lab"):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "https://github.com/{slug}", "/content/persona-lab"],
                       check=True)
    sys.path.insert(0, "/content/persona-lab")
    os.chdir("/content/persona-lab")
    from personalab.colab import install
    install()
from personalab.notebook import setup
profile = setup(use_drive=USE_DRIVE)"""


def header_cells(kind: str, filename: str) -> list[nbformat.NotebookNode]:
    return [
        nbformat.v4.new_markdown_cell(colab_badge(kind, filename)),
        nbformat.v4.new_code_cell(SETUP_CELL.format(slug=REPO_SLUG), metadata={"tags": ["setup"]}),
    ]


def render(src: Path, kind: str) -> nbformat.NotebookNode:
    """Build the notebook for one source script: header cells, then the script's cells, stable ids."""
    import jupytext  # dev dependency: only needed to regenerate notebooks

    body = jupytext.reads(src.read_text(encoding="utf-8"), fmt="py:percent")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    filename = src.with_suffix(".ipynb").name
    nb.cells = header_cells(kind, filename) + list(body.cells)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
        cell.metadata.pop("lines_to_next_cell", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def targets() -> dict[Path, str]:
    """Map of generated notebook path -> its text, for every source script."""
    out: dict[Path, str] = {}
    for kind in KINDS:
        for src in sorted((SRC_DIR / kind).glob("*.py")):
            out[REPO_ROOT / kind / src.with_suffix(".ipynb").name] = dumps(render(src, kind))
    return out


def build() -> list[Path]:
    """Regenerate lessons/, solutions/ and express/. Returns the files that changed."""
    return write_changed(targets())


def stale() -> list[Path]:
    """Generated notebooks that differ from what their sources produce."""
    return differing(targets())
