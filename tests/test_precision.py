"""The precision a GPU run trains and serves in, decided by compute capability (mocked: no GPU needed).

bf16 only where it is native (8.0+, Ampere or newer); a T4 (7.5) trains and serves in float16 even though
``torch.cuda.is_bf16_supported()`` says True there (it counts emulation); no CUDA: float32 training, no --dtype.
"""

from __future__ import annotations

import pytest
import torch

from personalab import config, server
from personalab.finetune import config as C
from personalab.finetune.machine import bf16_supported


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch):
    """Pretend a CUDA GPU of a given compute capability is here; ``is_bf16_supported()`` always says True."""
    def with_capability(capability: tuple[int, int] | None) -> None:
        monkeypatch.delenv("PERSONALAB_FORCE_CPU", raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: capability is not None)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        config.cuda_available.cache_clear()

    yield with_capability
    config.cuda_available.cache_clear()


def run_settings(cfg: C.FinetuneConfig) -> tuple[str, bool, bool]:
    """(weight dtype, SFTConfig bf16, SFTConfig fp16) a run with ``cfg`` gets on this machine."""
    cuda, bf16 = config.cuda_available(), bf16_supported()
    sft = C.sft_config_kwargs(cfg, backend="unsloth", cuda=cuda, bf16=bf16, output_dir="o")
    return C.torch_dtype_name(cfg, cuda=cuda, bf16=bf16), sft["bf16"], sft["fp16"]


@pytest.mark.parametrize("capability", [(8, 0), (8, 6), (9, 0)])
def test_ampere_and_newer_train_and_serve_in_bf16(gpu, capability):
    gpu(capability)
    assert bf16_supported() and config.cuda_bf16()
    assert run_settings(C.default_config("gpu")) == ("bfloat16", True, False)
    assert server.serve_dtype() == "bfloat16"


def test_a_t4_trains_and_serves_in_float16_though_torch_says_bf16(gpu):
    gpu((7, 5))
    assert torch.cuda.is_bf16_supported() and not bf16_supported()
    assert run_settings(C.default_config("gpu")) == ("float16", False, True)
    assert server.serve_dtype() == "float16"


def test_without_cuda_training_is_float32_and_the_server_keeps_the_checkpoints_dtype(gpu):
    gpu(None)
    assert not bf16_supported()
    assert run_settings(C.default_config("gpu", dtype=None)) == ("float32", False, False)
    assert run_settings(C.default_config("cpu")) == ("float32", False, False)
    assert server.serve_dtype() is None


def test_an_explicit_dtype_wins_and_mixed_precision_follows_it(gpu):
    gpu((9, 0))
    assert run_settings(C.default_config("gpu", dtype="float16")) == ("float16", False, True)
    assert run_settings(C.default_config("gpu", dtype="float32")) == ("float32", False, False)
    gpu((7, 5))
    assert run_settings(C.default_config("gpu", dtype="bfloat16")) == ("bfloat16", True, False)


def test_the_server_command_carries_the_dtype(gpu, monkeypatch, tmp_path):
    """The --dtype flag reaches ``transformers serve`` on a GPU and is left out on a CPU."""
    (tmp_path / "config.json").write_text("{}")
    seen: list[list[str]] = []

    class Stop(Exception):
        pass

    def fake_popen(cmd, **kw):
        seen.append(cmd)
        raise Stop

    monkeypatch.setattr(server.subprocess, "Popen", fake_popen)
    for capability, want in [((7, 5), ["--dtype", "float16"]), ((9, 0), ["--dtype", "bfloat16"]), (None, [])]:
        gpu(capability)
        with pytest.raises(Stop):
            server.LocalServer(tmp_path).start()
        cmd = seen[-1]
        assert (cmd[cmd.index("--dtype"):cmd.index("--dtype") + 2] if "--dtype" in cmd else []) == want
