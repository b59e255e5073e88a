"""dev.py's install step: the lock goes in with uv (pinned in the lock), and with pip when uv can't do it."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dev(monkeypatch):
    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls: list[tuple[str, ...]] = []

    def fake(rc_pip: int = 0, rc_uv: int = 0):
        def pip(*args, check=True):
            calls.append(("pip", *map(str, args)))
            return subprocess.CompletedProcess(args, rc_pip)

        def sh(*cmd, **kw):
            calls.append(tuple(map(str, cmd)))
            module.last_env = kw.get("env")
            return subprocess.CompletedProcess(cmd, rc_uv)

        monkeypatch.setattr(module, "_pip", pip)
        monkeypatch.setattr(module, "sh", sh)
        monkeypatch.setattr(module, "pip_find_links", lambda: ["/opt/wheels"])

    module.fake, module.calls = fake, calls
    return module


def test_the_lock_is_installed_with_the_uv_it_pins(dev):
    dev.fake()
    assert dev.install_with_uv("req.txt", ["numpy==2.3.0", "uv==0.13.9 ; python_version >= '3.11'"])
    assert dev.calls[0] == ("pip", "--no-deps", "uv==0.13.9")
    uv = dev.calls[1]
    assert uv[0].endswith("/uv") and "--no-deps" in uv and uv[-2:] == ("-r", "req.txt")
    assert dev.last_env["UV_FIND_LINKS"] == "/opt/wheels" and dev.last_env["UV_PYTHON_DOWNLOADS"] == "never"


@pytest.mark.parametrize(("lines", "rc_pip", "rc_uv"), [
    (["numpy==2.3.0"], 0, 0),  # no uv in the lock
    (["uv==0.13.9"], 1, 0),  # uv itself does not install
    (["uv==0.13.9"], 0, 2),  # uv fails on the lock
])
def test_pip_takes_over_when_uv_cannot(dev, lines, rc_pip, rc_uv):
    dev.fake(rc_pip, rc_uv)
    assert dev.install_with_uv("req.txt", lines) is False


def test_only_existing_local_wheel_folders_are_passed_on(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("dev_links", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("PIP_FIND_LINKS", f"{tmp_path} file://{tmp_path} /no/such/folder")
    links = module.pip_find_links()
    assert str(tmp_path) in links and "/no/such/folder" not in links and len(links) == len(set(links))
