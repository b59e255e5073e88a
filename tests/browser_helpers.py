"""Real-browser test support: Debian's Chromium driven by Playwright, a Jupyter server on 127.0.0.1 with a token.

Nothing here downloads a browser: Playwright drives the system Chromium (``apt-get install -y chromium``).
A missing Chromium is a test failure that says how to install it, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOLLARS = re.compile(r"\$[0-9][0-9,]*(?:\.[0-9]+)?")


def chromium_path() -> str:
    """The system Chromium, or a test failure naming the package to install."""
    for candidate in (os.environ.get("PERSONALAB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "Chromium is not installed: the browser tests need it. Install it with "
        "`apt-get update && apt-get install -y chromium` (Debian/Ubuntu; .ci/run does this), "
        "or set PERSONALAB_CHROMIUM=/path/to/chromium",
        pytrace=False,
    )


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``); fails with the reason when it cannot start."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # noqa: BLE001 - turned into a failure with the reason
            pytest.fail(f"Chromium at {path} did not start: {exc}", pytrace=False)
        try:
            yield b
        finally:
            b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_server(
    root: Path, *, app: str = "lab", python: str | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start ``jupyter lab`` (or the classic ``notebook``) on 127.0.0.1 with a random token; yield its base URL.

    JupyterLab's settings and workspaces live under ``root`` so the developer's own are never touched, and
    notebook windowing is off so every cell is in the page.
    """
    token = secrets.token_hex(16)
    port = free_port()
    python = python or sys.executable
    run_env = {**os.environ, **(env or {}), "JUPYTER_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    settings = root / ".lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    run_env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    run_env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / ".lab-workspaces")
    run_env["JUPYTER_RUNTIME_DIR"] = str(root / ".jupyter-runtime")
    if app == "lab":
        cmd = [python, "-m", "jupyter", "lab", f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
        cmd += [f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1", "--no-browser", "--allow-root"]
    else:  # classic notebook 6
        cmd = [python, "-m", "notebook", f"--NotebookApp.port={port}", "--NotebookApp.port_retries=0"]
        cmd += [f"--NotebookApp.notebook_dir={root}", "--NotebookApp.ip=127.0.0.1", "--no-browser", "--allow-root"]
        cmd += [f"--NotebookApp.token={token}"]
    log = open(root / f".{app}-server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=root, env=run_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter {app} exited ({proc.returncode}): {(root / f'.{app}-server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter {app} did not answer on {url} within 120 s")
                time.sleep(0.5)
        yield f"{url}|{token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under build/screenshots/ (git-ignored) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def dollars(text: str) -> list[str]:
    """Every dollar amount in ``text``, in order (what a reader compares)."""
    return DOLLARS.findall(text)


def wait_for(predicate: Any, timeout: float, what: str, page: Any = None, shot: str = "timeout") -> Any:
    """Poll ``predicate`` until it returns a truthy value; on timeout fail with ``what`` (and a screenshot)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            where = f" (screenshot {screenshot(page, shot)})" if page is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{where}", pytrace=False)
        time.sleep(0.25)
