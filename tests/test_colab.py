"""The Colab install: the lock never touches Colab's runtime, and it is what a resolution for Colab gives."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from personalab import colab
from personalab.authoring.notebooks import SETUP_CELL

ROOT = Path(__file__).resolve().parent.parent


def test_plan_installs_missing_and_moved_but_never_protected():
    lock = {"torch": "2.11.0", "numpy": "2.1.3", "certifi": "2026.10.19", "unsloth": "2026.10.9", "peft": "0.20.0"}
    have = {"torch": "2.12.0+cu128", "numpy": "2.2.0", "certifi": "2026.7.22", "unsloth": None, "peft": "0.20.0"}
    steps = colab.plan(lock, have)
    assert [str(s) for s in steps] == ["certifi 2026.7.22 -> 2026.10.19", "unsloth 2026.10.9"]


def test_plan_ignores_local_build_tags():
    assert colab.plan({"xformers": "0.0.35"}, {"xformers": "0.0.35+cu128"}) == []


def test_protected_names_are_normalized():
    assert colab.is_protected("jupyter_client") and colab.is_protected("Jupyter-Core")
    assert colab.is_protected("nvidia-cublas-cu12") and not colab.is_protected("transformers")


def test_drift_names_moved_protected_packages_only():
    tested = {"torch": "2.11.0+cu128", "ipykernel": "6.17.1", "datasets": "4.0.0", "google-colab": "file:///x"}
    have = {"torch": "2.11.0", "ipykernel": "7.0.0", "datasets": "4.8.5"}
    assert colab.drift(tested, have) == [("ipykernel", "6.17.1", "7.0.0")]


def test_read_pins_names_file_and_line(tmp_path):
    bad = tmp_path / "lock.txt"
    bad.write_text("# header\nfoo==1.0\nbar>=2\n")
    with pytest.raises(ValueError, match=r"lock\.txt:3: 'bar>=2'"):
        colab.read_pins(bad)


def test_shipped_lock_leaves_colab_runtime_alone():
    lock = colab.read_pins(colab.LOCK)
    tested = colab.read_pins(colab.RUNTIME_LIST)
    assert not [n for n in lock if colab.is_protected(n)]
    assert {"unsloth", "unsloth-zoo", "trl", "bitsandbytes"} <= set(lock)
    assert tested["torch"].startswith("2.11.0") and tested["ipywidgets"] == "7.7.1"
    commit = re.search(r"[0-9a-f]{40}", (ROOT / "locks" / "README.md").read_text()).group(0)
    assert commit in colab.lock_source()
    moved = sorted(n for n in lock if n in tested and colab.public(tested[n]) != lock[n])
    assert len(moved) <= 6, f"the lock moves {len(moved)} of Colab's packages: {moved}"


def test_setup_cell_installs_with_the_colab_lock_only():
    assert "from personalab.colab import install" in SETUP_CELL
    assert "pip install" not in SETUP_CELL  # no resolver run in Colab: the lock, with --no-deps


@pytest.mark.slow
def test_colab_lock_is_what_a_resolution_for_colab_gives():
    """uv pip compile with Colab's protected versions as constraints (about 5 s; needs PyPI)."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        pytest.skip("uv is not installed (the dev extra has it)")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "colab_lock.py"), "--check", "--uv", uv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_doctor_in_colab_lists_protected_versions_and_drift(monkeypatch):
    from personalab import doctor

    monkeypatch.setattr(doctor, "_version", lambda name: {"ipykernel": "7.0.0"}.get(name, None))
    checks = {c.name: c for c in doctor.colab_runtime_checks()}
    assert checks["colab: ipywidgets"].value == "absent (tested: 7.7.1)"
    image = checks["Colab image"]
    assert not image.ok and "ipykernel 6.17.1 -> 7.0.0" in image.value and "a72407924822" in image.value


def _fake_runtime(monkeypatch, tmp_path, versions, pip_rc=0):
    """A runtime with ``versions`` installed and a pip that records its calls (and fails when ``pip_rc``)."""
    lock = tmp_path / "colab.txt"
    lock.write_text("# source: test\ncertifi==2026.10.19\nunsloth==2026.10.9\n")
    runtime = tmp_path / "freeze.txt"
    runtime.write_text("certifi==2026.7.22\nnumpy==2.1.3\n")
    calls = []

    def pip(args):
        calls.append(args)
        req = args[args.index("-r") + 1] if "-r" in args else None
        if req:
            calls.append(Path(req).read_text())
        return subprocess.CompletedProcess(args, pip_rc, "", "ERROR: No matching distribution found for unsloth")

    monkeypatch.setattr(colab, "_pip", pip)
    monkeypatch.setattr(colab, "installed", lambda n: versions.get(n))
    monkeypatch.setattr(colab, "_personalab_is_editable_from", lambda repo: True)
    return lock, runtime, calls


def test_install_adds_only_missing_pins_and_a_rerun_is_a_no_op(monkeypatch, tmp_path, capsys):
    versions = {"certifi": "2026.7.22", "numpy": "2.1.3"}
    lock, runtime, calls = _fake_runtime(monkeypatch, tmp_path, versions)
    steps = colab.install(tmp_path, lock, runtime)
    assert [str(s) for s in steps] == ["certifi 2026.7.22 -> 2026.10.19", "unsloth 2026.10.9"]
    assert calls[1] == "certifi==2026.10.19\nunsloth==2026.10.9\n"
    assert "installed 2 packages" in capsys.readouterr().out
    versions.update(certifi="2026.10.19", unsloth="2026.10.9")
    calls.clear()
    assert colab.install(tmp_path, lock, runtime) == [] and calls == []
    assert "nothing to install" in capsys.readouterr().out


def test_failed_install_stops_with_pips_message_and_what_to_do(monkeypatch, tmp_path, capsys):
    lock, runtime, _ = _fake_runtime(monkeypatch, tmp_path, {"numpy": "2.1.3"}, pip_rc=1)
    with pytest.raises(RuntimeError, match="pip's message is printed above. What to do: Runtime > Disconnect"):
        colab.install(tmp_path, lock, runtime)
    assert "No matching distribution found for unsloth" in capsys.readouterr().out


def test_replacing_an_imported_compiled_package_asks_for_a_restart(monkeypatch, tmp_path):
    lock, runtime, _ = _fake_runtime(monkeypatch, tmp_path, {"numpy": "2.1.3"})
    monkeypatch.setattr(colab, "_restart_needed", lambda names: ["certifi"] if "certifi" in names else [])
    with pytest.raises(RuntimeError, match="Restart needed: .*certifi.*run this cell again: it will install nothing"):
        colab.install(tmp_path, lock, runtime)


def test_restart_is_needed_only_for_loaded_compiled_code():
    import yaml  # noqa: F401  (PyYAML ships a compiled extension and is imported here)

    assert colab._restart_needed(["pyyaml", "certifi"]) == ["pyyaml"]
