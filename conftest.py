"""Test session setup: one local server on the embedded model for the whole session.

It is started before any notebook kernel or test runs, and every kernel reaches it through
``OPENAI_BASE_URL`` / ``PERSONALAB_MODEL`` (the same path a workshop's shared server takes).
Set ``PERSONALAB_TEST_SERVER=0`` to run only the tests that need no server.

The from-scratch rebuild of the embedded model that ``test_a_rebuild_steers_like_the_reference`` checks runs
as ``personalab model build`` in the background, from the first test that drives no browser on, so its few
minutes overlap the rest of the suite instead of adding to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_server = None
REBUILD_TEST = "test_a_rebuild_steers_like_the_reference"
_rebuild: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    global _server
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["PERSONALAB_FORCE_CPU"] = "1"  # tests exercise the cpu profile even on a GPU machine
    os.environ.pop("OPENAI_API_KEY", None)  # never call a paid API from tests
    if os.environ.get("PERSONALAB_TEST_SERVER", "1") == "0" or os.environ.get("OPENAI_BASE_URL"):
        return
    from personalab.server import LocalServer

    _server = LocalServer().start()
    os.environ.update(OPENAI_BASE_URL=_server.base_url, PERSONALAB_MODEL=_server.model, PERSONALAB_BACKEND="remote")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _server is not None:
        _server.stop()
    proc = _rebuild.get("proc")
    if isinstance(proc, subprocess.Popen) and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _start_rebuild() -> None:
    out = Path(tempfile.mkdtemp(prefix="personalab-rebuild-")) / "rebuilt"
    log = out.with_name("build.log")
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "personalab.cli", "model", "build", "--out", str(out)],
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    _rebuild.update(proc=proc, out=out, log=log)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _rebuild.get("wanted") and "proc" not in _rebuild and "browser" not in item.keywords:
        _start_rebuild()


@pytest.fixture
def background_rebuild() -> Path:
    """The folder of the embedded model that ``personalab model build --out`` built from scratch in this run."""
    if "proc" not in _rebuild:
        _start_rebuild()
    proc, out, log = _rebuild["proc"], _rebuild["out"], _rebuild["log"]
    assert isinstance(proc, subprocess.Popen) and isinstance(out, Path) and isinstance(log, Path)
    rc = proc.wait(timeout=1800)
    if rc != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        pytest.fail(f"`personalab model build --out {out}` exited with {rc}:\n{tail}")
    return out


@pytest.fixture(scope="session")
def local_server():
    """The session's running LocalServer (skips when the run was started without one)."""
    if _server is None:
        pytest.skip("no local server in this run (PERSONALAB_TEST_SERVER=0)")
    return _server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tests marked after_lessons read the results the lessons' nbval run saves: run them last
    items.sort(key=lambda item: "after_lessons" in item.keywords)
    _rebuild["wanted"] = not config.option.collectonly and any(item.name == REBUILD_TEST for item in items)
    if _server is None and os.environ.get("PERSONALAB_TEST_SERVER", "1") == "0":
        skip = pytest.mark.skip(reason="PERSONALAB_TEST_SERVER=0")
        for item in items:
            if "server" in item.keywords or item.path.suffix == ".ipynb":
                item.add_marker(skip)
