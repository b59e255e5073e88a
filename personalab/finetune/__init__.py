"""LoRA fine-tuning of a persona into the weights with Unsloth, on a GPU or a CPU; plain PEFT + TRL as the baseline.

    cfg = finetune.default_config()            # preset for this machine (SmolLM2-135M-Instruct, float32 on CPU)
    result = finetune.train(cfg, "train.jsonl") # progress bar + loss; adapter, merged model, metrics.json
    before = finetune.persona_eval("smollm2")  # persona-marker rate on held-out requests, no system prompt
    after = finetune.persona_eval(*result.load())

``PERSONALAB_TRAINER=peft`` (or ``backend='peft'``) trains with plain PEFT + TRL instead of Unsloth.

Lesson 04 makes Unsloth's calls itself inside a :class:`Run` (timing, memory, label checks, ``metrics.json``) with
:class:`SampleReplies` (a ``transformers.TrainerCallback``) printing replies every few steps; ``train`` runs the same.
"""

from typing import Any

from .bench import Comparison, recorded_comparison
from .config import (
    EMBEDDED,
    GPU_BASE_MODEL,
    LLAMA_TARGETS,
    PRESETS,
    FinetuneConfig,
    api_calls,
    default_config,
    default_output_dir,
    resolve_backend,
)
from .examples import dataset_paths, load_examples
from .infer import (
    compare_answers,
    eval_sample,
    generate_replies,
    held_out_prompts,
    load_model,
    load_tokenizer,
    persona_eval,
    plot_rates,
    quality_table,
    reply_quality,
)
from .masking import (
    LossView,
    check_masking,
    compare_labels,
    detect_response_parts,
    loss_view,
    training_template,
    verify_labels,
)
from .merging import merge, merge_adapter
from .result import TrainResult, finetuned_model_dir, load_result, serve_finetuned
from .run import Run
from .train import train
from .trainers import import_unsloth, prepare

__all__ = [
    "EMBEDDED",
    "GPU_BASE_MODEL",
    "LLAMA_TARGETS",
    "PRESETS",
    "FinetuneConfig",
    "Run",
    "SampleReplies",
    "LossView",
    "TrainResult",
    "api_calls",
    "Comparison",
    "check_masking",
    "compare_labels",
    "compare_answers",
    "dataset_paths",
    "default_config",
    "default_output_dir",
    "detect_response_parts",
    "finetuned_model_dir",
    "generate_replies",
    "eval_sample",
    "held_out_prompts",
    "import_unsloth",
    "load_examples",
    "load_model",
    "load_tokenizer",
    "load_result",
    "loss_view",
    "merge",
    "merge_adapter",
    "persona_eval",
    "quality_table",
    "reply_quality",
    "plot_rates",
    "prepare",
    "recorded_comparison",
    "resolve_backend",
    "serve_finetuned",
    "train",
    "training_template",
    "verify_labels",
]


def __getattr__(name: str) -> Any:
    """``SampleReplies`` is built on first use: it subclasses ``transformers.TrainerCallback``, and importing
    transformers before Unsloth would cost Unsloth its patches."""
    if name == "SampleReplies":
        from . import run

        return run.SampleReplies
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
