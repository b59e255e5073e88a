"""``train(config, dataset)``: one LoRA fine-tune with Unsloth, on a GPU or a CPU; plain PEFT + TRL as the baseline.

Unsloth is the trainer on every machine (on a CPU, Unsloth 2026.10.9 runs its CPU mode: transformers + PEFT + TRL
under Unsloth's API); ``backend='peft'`` or ``PERSONALAB_TRAINER=peft`` trains with plain PEFT + TRL instead, the
baseline the benchmarks compare with. Both paths use TRL's ``SFTTrainer`` and compute the loss on assistant tokens
only; both are checked for the "all labels are -100" failure before the first step, and the labels Unsloth's
``train_on_responses_only`` builds are compared with the course's own masking, row by row. The run shows a
progress bar with the loss, measures wall time, setup time, time per step, tokens per second and peak memory,
and writes::

    OUTPUT_DIR/adapter/       the LoRA adapter (save_pretrained) and the tokenizer
    OUTPUT_DIR/merged/        adapter merged into the base weights: a normal checkpoint the local server loads
    OUTPUT_DIR/metrics.json   the TrainResult (written last, atomically: its presence means the run finished)

Unsloth is imported only when a run trains with it (importing it patches transformers and TRL for the whole
process), and before TRL/transformers/PEFT where possible, as it asks.

The pieces live beside it: :mod:`.examples` (the data), :mod:`.trainers` (Unsloth's and the PEFT + TRL trainers),
:mod:`.meter` (progress and losses), :mod:`.machine` (threads, device, versions), :mod:`.merging` (merged model).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .. import config as pl_config
from ..io import atomic_write_dir
from . import config as C
from . import masking
from .config import FinetuneConfig
from .examples import load_examples
from .machine import auto_threads, bf16_supported, device_name, versions
from .merging import merge_adapter
from .meter import Meter, final_loss
from .result import ADAPTER_DIR, MERGED_DIR, TrainResult
from .trainers import import_unsloth, peft_trainer, unsloth_trainer


def train(
    config: FinetuneConfig | None = None,
    dataset: Any = None,
    *,
    eval_dataset: Any = None,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune ``config.base_model`` with LoRA on ``dataset`` (examples, a JSONL path, or None for lesson
    03's ``train.jsonl``); with ``eval_dataset`` the eval loss is measured before and after training.

    Unsloth by default (GPU or CPU), plain PEFT + TRL with ``backend='peft'`` or ``PERSONALAB_TRAINER=peft``; the
    loss is computed on assistant tokens only and checked before training. Returns the :class:`TrainResult` (also
    in ``metrics.json``).
    """
    t0 = time.perf_counter()
    cfg = config or C.default_config()
    cuda = pl_config.cuda_available()
    backend = C.resolve_backend(cfg)
    if backend == "unsloth":
        import_unsloth()  # before TRL / transformers / PEFT
    examples, source = load_examples(dataset)
    eval_examples = load_examples(eval_dataset)[0] if eval_dataset is not None else None
    out = Path(cfg.output_dir) if cfg.output_dir else C.default_output_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").unlink(missing_ok=True)  # a stale file would claim this run finished

    import torch

    prev_threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(cfg.threads or auto_threads(prev_threads))
    try:
        return _train(cfg, backend, cuda, examples, eval_examples, source, out, t0, progress)
    finally:
        torch.set_num_threads(prev_threads)


def _train(cfg: FinetuneConfig, backend: str, cuda: bool, examples: list, eval_examples: list | None,
           source: str | None, out: Path, t0: float, progress: bool) -> TrainResult:
    import torch

    base = cfg.base_model
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    meter = Meter(progress, cuda)
    bf16 = bf16_supported()
    if backend == "unsloth":
        trainer, tokenizer, mask_stats, parts = unsloth_trainer(cfg, base, examples, eval_examples, out, cuda, bf16,
                                                                 meter, source)
    else:
        trainer, tokenizer, mask_stats = peft_trainer(cfg, base, examples, eval_examples, out, cuda, bf16, meter,
                                                       source)
    trainable, total = count_params(trainer.model)
    labels_checked = masking.verify_labels(trainer.train_dataset, source=source, backend=backend)["checked"]
    labels_compared = 0
    if backend == "unsloth":  # Unsloth's train_on_responses_only against the course's own masking, row by row
        labels_compared = masking.compare_labels(trainer.train_dataset, tokenizer, examples, parts=parts,
                                                 max_length=cfg.max_seq_length, source=source)["checked"]

    eval_before = trainer.evaluate()["eval_loss"] if eval_examples else None
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t1
    eval_after = trainer.evaluate()["eval_loss"] if eval_examples else None
    peak_mb, memory_kind = meter.peak_mb()

    steps = int(trainer.state.global_step)
    tokens = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
    adapter_dir = out / ADAPTER_DIR

    def write_adapter(tmp: Path) -> None:
        trainer.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    atomic_write_dir(adapter_dir, write_adapter)
    merged_dir, merged_by = None, None
    if cfg.merge:
        merged_dir, merged_by = out / MERGED_DIR, backend
        if backend == "unsloth":
            try:
                atomic_write_dir(merged_dir, lambda tmp: trainer.model.save_pretrained_merged(str(tmp), tokenizer,
                                                                                         **C.unsloth_merge_kwargs()))
            except Exception as exc:  # noqa: BLE001 - e.g. offline and Unsloth wants the 16-bit base weights
                print(f"Unsloth could not save a merged model ({type(exc).__name__}: {exc}); merging with PEFT")
                merge_adapter(base, adapter_dir, merged_dir)
                merged_by = "peft"
        else:
            merge_adapter(base, adapter_dir, merged_dir)
    metrics = {
        "wall_s": round(time.perf_counter() - t0, 3),
        "setup_s": round(setup_s, 3),
        "train_s": round(train_s, 3),
        "steps": steps,
        "time_per_step_s": round(train_s / steps, 4) if steps else None,
        "tokens_seen": tokens,
        "tokens_per_second": round(tokens / train_s, 1) if train_s > 0 else None,
        "peak_memory_mb": round(peak_mb, 1),
        "memory_kind": memory_kind,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_share": round(trainable / total, 5) if total else None,
        "first_loss": meter.losses[0] if meter.losses else None,
        "final_loss": final_loss(meter.losses),
        "learning_rates": meter.lrs,
        "examples": len(examples),
        "loss_tokens": mask_stats,
        "labels_checked": labels_checked,
        "labels_compared": labels_compared,
        "merged_by": merged_by,
        "merged_dtype": _saved_dtype(merged_dir) if merged_dir else None,
        "device": device_name(),
        "bf16": bool(cuda and bf16),
        "amp": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else None,  # the trainer's autocast
        "dtype": str(next(trainer.model.parameters()).dtype).removeprefix("torch."),
        "load_in_4bit": _is_4bit(trainer.model),
        "torch_threads": torch.get_num_threads(),
        "versions": versions(backend),
    }
    ev = {"loss_before": eval_before, "loss_after": eval_after} if eval_examples else {}
    result = TrainResult(backend=backend, base_model=base, output_dir=str(out), adapter_dir=str(adapter_dir),
                         merged_dir=str(merged_dir) if merged_dir else None, config=cfg.to_dict(), metrics=metrics,
                         losses=meter.losses, eval=ev)
    result.save()
    _remove_empty(out / "trainer")
    return result


def _saved_dtype(model_dir: Path) -> str | None:
    """The weight dtype a checkpoint's config.json records."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cfg.get("dtype") or cfg.get("torch_dtype")


def _is_4bit(model: Any) -> bool:
    """Whether any layer holds 4-bit weights (bitsandbytes' Linear4bit), whatever the config asked for."""
    return any(type(m).__name__ == "Linear4bit" for m in model.modules())


def count_params(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters (4-bit layers count their packed storage)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _remove_empty(path: Path) -> None:
    try:
        path.rmdir()  # only when empty: nothing is saved there with save_strategy="no"
    except OSError:
        pass
