"""Merging: fold a LoRA adapter into the base weights and save a checkpoint the local server can load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import atomic_write_dir
from .infer import load_model, resolve_model_path
from .result import MERGED_DIR, TrainResult


def merge_adapter(base_model: str, adapter_dir: str | Path, out_dir: str | Path, *, dtype: Any = None) -> Path:
    """Fold a LoRA adapter into (unquantized) base weights and save a complete checkpoint at ``out_dir``:
    model, tokenizer (with its chat template) and the base model's generation config."""
    from transformers import AutoTokenizer, GenerationConfig

    base_path = resolve_model_path(base_model)
    model, _ = load_model(base_path, adapter=adapter_dir, dtype=dtype)
    merged = model.merge_and_unload()
    tok = AutoTokenizer.from_pretrained(adapter_dir)

    def write(tmp: Path) -> None:
        merged.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            GenerationConfig.from_pretrained(base_path).save_pretrained(tmp)
        except OSError:
            pass  # the base model has no generation_config.json: transformers' defaults apply

    return atomic_write_dir(Path(out_dir), write)


def merge(result: TrainResult) -> TrainResult:
    """Add a merged checkpoint to a finished run that was trained with ``merge=False``."""
    out = Path(result.output_dir) / MERGED_DIR
    merge_adapter(result.base_model, result.adapter_dir, out)
    result.merged_dir = str(out)
    result.save()
    return result
