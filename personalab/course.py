"""``personalab run-course``: execute the lessons headless, in order, on one shared server.

Executed notebooks go to ``build/lessons/``; the run stops at the first failing cell and says which.
Afterwards the comparison report (``personalab.report``) is written from the saved results to
``build/report.md`` and ``build/report.html``.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from tqdm.auto import tqdm

from .config import REPO_ROOT, environment
from .io import atomic_write_text

LESSONS_DIR = REPO_ROOT / "lessons"
BUILD_DIR = REPO_ROOT / "build"


@dataclass
class NotebookRun:
    path: Path
    out: Path
    seconds: float
    error: str | None = None


class Runs(list):
    """The :class:`NotebookRun` s in order, plus where the report went (``report_paths``) or why it failed."""

    report_paths: tuple[Path, ...] = ()
    report_error: str | None = None


def lesson_paths(selected: list[str] | None = None, lessons_dir: Path | None = None) -> list[Path]:
    paths = sorted((lessons_dir or LESSONS_DIR).glob("[0-9][0-9]_*.ipynb"))
    if selected:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selected)]
    return paths


@contextmanager
def shared_backend_env():
    """Serve the base model once and point every kernel at it (unless a backend is already configured)."""
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("PERSONALAB_BACKEND"):
        yield None
        return
    from .server import LocalServer

    with LocalServer() as server, environment(OPENAI_BASE_URL=server.base_url, PERSONALAB_MODEL=server.model,
                                              PERSONALAB_BACKEND="remote"):
        yield server


def local_kernel_manager(socket_dir: Path) -> KernelManager:
    """A python3 kernel reached over IPC sockets in ``socket_dir`` (POSIX), not plain-text TCP on a port."""
    km = KernelManager(kernel_name="python3")
    if os.name == "posix":
        km.transport, km.ip = "ipc", str(socket_dir / "kernel")
    return km


#: Seconds one cell may run, per profile: lesson 05's suites on a GPU send about a thousand requests.
CELL_TIMEOUT_S = {"cpu": 1200, "gpu": 3600, "colab-gpu": 3600}


def cell_timeout(profile: str | None = None) -> int:
    """The per-cell limit for ``profile`` (default: the active one)."""
    from .config import detect

    return CELL_TIMEOUT_S.get(profile or detect().name, 1200)


def execute(path: Path, out_dir: Path, timeout: int | None = None) -> NotebookRun:
    """Execute one notebook in its own folder; write it (with outputs) to ``out_dir`` even when it fails.

    Every way a run can end early (a cell error, a cell over ``timeout`` seconds, a kernel that died, e.g. out of
    memory) becomes ``NotebookRun.error``, naming the lesson, so the runs after it and the report still happen."""
    nb = nbformat.read(path, as_version=4)
    timeout = timeout or cell_timeout()
    with tempfile.TemporaryDirectory(prefix="personalab-kernel-") as sockets:
        km = local_kernel_manager(Path(sockets))
        client = NotebookClient(nb, timeout=timeout, km=km, resources={"metadata": {"path": str(path.parent)}})
        start, error = time.perf_counter(), None
        try:
            client.execute()
        except CellExecutionError as exc:
            error = f"{path.name}: a cell failed: {exc}"
        except CellTimeoutError:
            error = f"{path.name}: a cell ran longer than {timeout} s (the profile's limit) and was stopped"
        except DeadKernelError as exc:
            error = f"{path.name}: the kernel died ({exc}); out of memory? lower batch sizes or suite sizes"
        finally:  # nbclient leaves a kernel it was handed running: lesson 04's alone holds about 3 GB
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    out = out_dir / path.name
    atomic_write_text(out, nbformat.writes(nb))
    return NotebookRun(path, out, time.perf_counter() - start, error)


def write_report(build_dir: Path | None = None) -> tuple[Path, ...]:
    """The comparison report from every saved result, as ``report.md`` and ``report.html`` in ``build_dir``."""
    from . import report

    return report.build().write(build_dir or BUILD_DIR)


def run_course(
    selected: list[str] | None = None,
    out_dir: Path | None = None,
    *,
    lessons_dir: Path | None = None,
    report_dir: Path | None = None,
    report: bool = True,
    timeout: int | None = None,
) -> Runs:
    """Run the lessons in order; stop at the first one with a failing cell; then write the report.

    The report is written even when a lesson failed (its cells then say which lessons to run); a report
    that cannot be written never hides the lessons' outcome (``Runs.report_error``).
    """
    out_dir = out_dir or BUILD_DIR / "lessons"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = Runs()
    paths = lesson_paths(selected, lessons_dir)
    with shared_backend_env():
        for path in (bar := tqdm(paths, desc="lessons", unit="nb")):
            bar.set_postfix_str(path.name)
            run = execute(path, out_dir, timeout)
            runs.append(run)
            if run.error:
                break
    if report:
        try:
            runs.report_paths = write_report(report_dir or out_dir.parent)
        except Exception as exc:  # noqa: BLE001 - the lessons' result matters more than the report
            runs.report_error = f"{type(exc).__name__}: {exc}"
    return runs
