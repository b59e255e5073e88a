"""Test session setup: one local server on the embedded model for the whole session.

It is started before any notebook kernel or test runs, and every kernel reaches it through
``OPENAI_BASE_URL`` / ``PERSONALAB_MODEL`` (the same path a workshop's shared server takes).
Set ``PERSONALAB_TEST_SERVER=0`` to run only the tests that need no server.
"""

from __future__ import annotations

import os

import pytest

_server = None


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


#: Settings a test may change only for itself: restored after every test. (A test once left PERSONALAB_MODELS set
#: by colab.use_drive's setdefault, which monkeypatch.delenv of an unset name does not undo; the grading tests
#: after it then converted a second base model and started a second server beside the session's.)
GUARDED_ENV = ("PERSONALAB_", "OPENAI_")


@pytest.fixture(autouse=True)
def _course_settings_restored():
    before = {k: v for k, v in os.environ.items() if k.startswith(GUARDED_ENV)}
    yield
    for key in [k for k in os.environ if k.startswith(GUARDED_ENV) and k not in before]:
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture(scope="session")
def local_server():
    """The session's running LocalServer (skips when the run was started without one)."""
    if _server is None:
        pytest.skip("no local server in this run (PERSONALAB_TEST_SERVER=0)")
    return _server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tests marked after_lessons read the results the lessons' nbval run saves: run them last
    items.sort(key=lambda item: "after_lessons" in item.keywords)
    if _server is None and os.environ.get("PERSONALAB_TEST_SERVER", "1") == "0":
        skip = pytest.mark.skip(reason="PERSONALAB_TEST_SERVER=0")
        for item in items:
            if "server" in item.keywords or item.path.suffix == ".ipynb":
                item.add_marker(skip)
