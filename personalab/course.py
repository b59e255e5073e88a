"""``personalab run-course``: execute the lessons headless, in order, on one shared server.

Executed notebooks go to ``build/lessons/``; the run stops at the first failing cell and says which.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm.auto import tqdm

from .config import REPO_ROOT
from .io import atomic_write_text

LESSONS_DIR = REPO_ROOT / "lessons"
BUILD_DIR = REPO_ROOT / "build"


@dataclass
class NotebookRun:
    path: Path
    out: Path
    seconds: float
    error: str | None = None


def lesson_paths(selected: list[str] | None = None) -> list[Path]:
    paths = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if selected:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selected)]
    return paths


@contextmanager
def shared_backend_env():
    """Serve the embedded model once and point every kernel at it (unless a backend is already configured)."""
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("PERSONALAB_BACKEND"):
        yield None
        return
    from .server import LocalServer

    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "PERSONALAB_MODEL", "PERSONALAB_BACKEND")}
    with LocalServer() as server:
        os.environ.update(OPENAI_BASE_URL=server.base_url, PERSONALAB_MODEL=server.model, PERSONALAB_BACKEND="remote")
        try:
            yield server
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def execute(path: Path, out_dir: Path, timeout: int = 600) -> NotebookRun:
    """Execute one notebook in its own folder; write it (with outputs) to ``out_dir`` even when it fails."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = str(exc)
    out = out_dir / path.name
    atomic_write_text(out, nbformat.writes(nb))
    return NotebookRun(path, out, time.perf_counter() - start, error)


def run_course(selected: list[str] | None = None, out_dir: Path | None = None) -> list[NotebookRun]:
    """Run the lessons in order; stop at the first one with a failing cell."""
    out_dir = out_dir or BUILD_DIR / "lessons"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs: list[NotebookRun] = []
    paths = lesson_paths(selected)
    with shared_backend_env():
        for path in (bar := tqdm(paths, desc="lessons", unit="nb")):
            bar.set_postfix_str(path.name)
            run = execute(path, out_dir)
            runs.append(run)
            if run.error:
                break
    return runs
