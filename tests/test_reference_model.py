"""The shipped reference build of the embedded model, the tests' fast stand-in for a chat model: it is current.

No lesson, exercise or report uses it any more (the course's CPU base is SmolLM2-135M-Instruct), so no test
asserts how it behaves: tests that use it check machinery (masking, training, merging, serving), never what
the model says, which would depend on one CPU's floating-point results.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from personalab.embedded.build import (
    BUILDER_VERSION,
    REFERENCE_DIR,
    default_model_dir,
    read_build_info,
    source_hash,
)


def test_reference_build_is_current() -> None:
    info = read_build_info(REFERENCE_DIR)
    assert info, f"{REFERENCE_DIR}/build_info.json is missing"
    assert info["builder"] == BUILDER_VERSION
    assert info["source_sha256"] == source_hash(), (
        "the embedded model's builder changed since the shipped reference was built: "
        "run `personalab model build --reference --force` and commit personalab/embedded/reference/"
    )
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (REFERENCE_DIR / name).is_file(), name


def test_source_hash_tracks_the_builder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    build_mod = importlib.import_module("personalab.embedded.build")
    before = source_hash()
    fake = tmp_path / "personalab"
    for name in build_mod.SOURCE_FILES:
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_bytes((Path(build_mod.__file__).parent.parent / name).read_bytes())
    (fake / "embedded" / "corpus.py").write_text("# changed\n", encoding="utf-8")
    monkeypatch.setattr(build_mod, "__file__", str(fake / "embedded" / "build.py"))
    assert build_mod.source_hash() != before


def test_the_stand_in_is_the_shipped_reference() -> None:
    assert default_model_dir() == REFERENCE_DIR
