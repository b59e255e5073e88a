"""The Drive opt-in of the setup cell, with a stand-in for Colab's ``google.colab`` module."""

from __future__ import annotations

import sys
import types

import pytest

from personalab import colab, config, notebook


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """``google.colab.drive`` whose ``mount`` records its calls and does what ``behaviour`` says."""
    mounts: list[str] = []
    state = {"error": None}

    def mount(point: str) -> None:
        mounts.append(point)
        if state["error"] is not None:
            raise state["error"]

    google = types.ModuleType("google")
    google_colab = types.ModuleType("google.colab")
    google_colab.drive = types.SimpleNamespace(mount=mount)
    google.colab = google_colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google_colab)
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path / "runtime-home"))
    monkeypatch.delenv("PERSONALAB_MODELS", raising=False)
    return types.SimpleNamespace(mounts=mounts, state=state, root=tmp_path)


def test_drive_becomes_the_home_and_models_stay_on_the_runtime(fake_colab, capsys):
    point = fake_colab.root / "drive"
    path = colab.use_drive(mount_point=str(point))
    assert fake_colab.mounts == [str(point)]
    assert path == point / colab.DRIVE_FOLDER and path.is_dir() and not any(path.iterdir())
    assert config.home() == path
    assert config.models_dir() == fake_colab.root / "runtime-home" / "models"
    assert str(path) in capsys.readouterr().out


def test_a_learner_who_declines_keeps_a_working_home(fake_colab, capsys):
    fake_colab.state["error"] = RuntimeError("Error: credential propagation was unsuccessful")
    assert colab.use_drive(mount_point=str(fake_colab.root / "drive")) is None
    assert config.home() == fake_colab.root / "runtime-home"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "not used" in out[0] and "credential propagation" in out[0]


def test_a_drive_that_cannot_be_written_keeps_a_working_home(fake_colab, capsys):
    blocked = fake_colab.root / "drive"
    blocked.write_text("a file where the folder should be")  # mkdir fails as on a full or read-only Drive
    assert colab.use_drive(mount_point=str(blocked)) is None
    assert config.home() == fake_colab.root / "runtime-home"
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_outside_colab_nothing_is_mounted(monkeypatch, tmp_path, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path))
    assert colab.use_drive(mount_point=str(tmp_path / "drive")) is None
    assert config.home() == tmp_path and not (tmp_path / "drive").exists()
    assert "only in Colab" in capsys.readouterr().out


def test_setup_mounts_only_when_asked(fake_colab, monkeypatch, capsys):
    monkeypatch.setattr(colab, "DRIVE_MOUNT", str(fake_colab.root / "unused"))
    monkeypatch.setattr(colab.use_drive, "__defaults__", (colab.DRIVE_FOLDER,))
    monkeypatch.setattr(colab.use_drive, "__kwdefaults__", {"mount_point": str(fake_colab.root / "drive")})
    notebook.setup(quiet=True)
    assert fake_colab.mounts == []
    notebook.setup(quiet=True, use_drive=True)
    assert fake_colab.mounts == [str(fake_colab.root / "drive")]
