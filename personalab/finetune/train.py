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
:mod:`.run` (the measurements around the calls, the same ones lesson 04 makes itself: threads, timing, memory, the
label checks, the eval loss, saving and ``metrics.json``), :mod:`.meter` (progress and losses), :mod:`.machine`
(threads, device, versions), :mod:`.merging` (merged model).
"""

from __future__ import annotations

from typing import Any

from .config import FinetuneConfig
from .examples import load_examples
from .result import TrainResult
from .run import Run, count_params  # noqa: F401  (count_params: re-exported for callers of the old module)
from .trainers import peft_trainer, unsloth_trainer


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
    in ``metrics.json``). Lesson 04 makes the same calls itself, inside the same :class:`.run.Run`.
    """
    examples, source = load_examples(dataset)
    eval_examples = load_examples(eval_dataset)[0] if eval_dataset is not None else None
    run = Run(config, progress=progress)
    try:
        cfg, parts = run.config, None
        args = (examples, eval_examples, run.output_dir, run.cuda, run.bf16, run.meter, source)
        if run.backend == "unsloth":
            trainer, tokenizer, stats, parts = unsloth_trainer(cfg, cfg.base_model, *args)
        else:
            trainer, tokenizer, stats = peft_trainer(cfg, cfg.base_model, *args)
        run.check_labels(trainer, tokenizer, examples, parts=parts, source=source, mask_stats=stats)
        with run.measure(trainer):
            trainer.train()
        run.save_adapter(trainer.model, tokenizer)
        return run.finish(trainer, tokenizer)
    finally:
        run.close()
