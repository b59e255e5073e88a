"""The trainers a run uses: Unsloth's (imported only when it trains, before TRL / transformers / PEFT) and the plain
PEFT + TRL baseline, both built on TRL's ``SFTTrainer`` and computing the loss on assistant tokens only."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import config as C
from . import masking
from .config import FinetuneConfig
from .infer import resolve_model_path
from .meter import Meter


def import_unsloth() -> Any:
    """Import Unsloth (it must come before TRL/transformers/PEFT), with an install hint when it is missing."""
    if sys.modules.get("unsloth") is not None:
        return sys.modules["unsloth"]  # already imported (prepare() did it first): nothing to warn about
    early = [m for m in ("trl", "transformers", "peft") if m in sys.modules]
    try:
        import unsloth  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as exc:
        raise InputError(f"Unsloth is not installed ({exc})", field="backend",
                         fix="in Colab run the notebook's setup cell (it installs unsloth from locks/colab.txt); "
                         "elsewhere `python3 dev.py course` installs it (pip install --no-deps unsloth unsloth-zoo "
                         "at constraints.txt's versions), or train with plain PEFT + TRL: "
                         f"{C.TRAINER_ENV}=peft or backend='peft'") from None
    if early:
        print(f"note: {', '.join(early)} was imported before Unsloth; call personalab.finetune.prepare() "
              "first in a fresh kernel for all of Unsloth's speed-ups")
    return unsloth


def prepare(cfg: FinetuneConfig | None = None) -> str:
    """Pick the backend for ``cfg`` and import Unsloth now when it is the one (call it before loading models)."""
    backend = C.resolve_backend(cfg or C.default_config())
    if backend == "unsloth":
        import_unsloth()
    return backend


def drop_printer(trainer: Any) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)


def trl_class(cls: type) -> type:
    """The class as TRL defines it, beneath any subclass Unsloth put in its place (importing Unsloth replaces
    ``trl.SFTTrainer`` for the whole process): the PEFT + TRL baseline and the API-drift test use TRL's own."""
    def trl_own(c: type) -> bool:  # Unsloth's replacement keeps TRL's module name but is a local class
        return (c.__module__.split(".")[0] == "trl" and "<locals>" not in c.__qualname__
                and not c.__name__.startswith("Unsloth") and not any(k.startswith("_unsloth") for k in vars(c)))

    return next((c for c in cls.__mro__ if trl_own(c)), cls)


def fused_head_available(cuda: bool) -> bool:
    """Whether TRL's fused LM-head loss can run here: it is a Triton kernel, so it needs a GPU and Triton."""
    if not cuda:
        return False
    from trl.trainer import utils as trl_utils

    return getattr(trl_utils, "_ChunkedLogProbFunction", None) is not None


def plain_loss_trainer_class() -> type:
    """``SFTTrainer`` with the loss computed by transformers (plain PyTorch) instead of TRL's fused LM head.

    TRL 1.15's ``SFTTrainer.compute_loss`` always calls a Triton kernel, which does not exist on a CPU. This
    subclass keeps everything else of TRL (data preparation, assistant-only masking, logging) and hands the
    labels TRL built to the model's own causal-LM loss, as ``transformers.Trainer`` does.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class PlainLossSFTTrainer(trl_class(SFTTrainer)):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            inputs = {**inputs, "use_cache": False}
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return PlainLossSFTTrainer


def peft_trainer(cfg: FinetuneConfig, base: str, examples: list, eval_examples: list | None, out: Path, cuda: bool,
                  bf16: bool, meter: Meter, source: str | None) -> tuple[Any, Any, dict[str, Any]]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    path = resolve_model_path(base)
    tokenizer = AutoTokenizer.from_pretrained(path)
    # checked before the model is loaded: a template that marks nothing fails here, in a second
    stats = masking.check_masking(tokenizer, examples, backend="peft", max_length=cfg.max_seq_length, source=source)
    quantize = cuda and cfg.load_in_4bit
    dtype = getattr(torch, C.torch_dtype_name(cfg, cuda=cuda, bf16=bf16))
    model = AutoModelForCausalLM.from_pretrained(path, **C.hf_model_kwargs(cfg, cuda=cuda, quantize=quantize,
                                                                           dtype=dtype))
    if quantize:
        model = prepare_model_for_kbit_training(model, **C.kbit_prep_kwargs(cfg))
    elif cuda and cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    torch.manual_seed(cfg.seed)
    model = get_peft_model(model, LoraConfig(**C.lora_config_kwargs(cfg)))
    args = SFTConfig(**C.sft_config_kwargs(cfg, backend="peft", cuda=cuda, bf16=bf16, output_dir=out / "trainer"))
    train_ds = Dataset.from_list(examples)
    eval_ds = Dataset.from_list(eval_examples) if eval_examples else None
    trainer_cls = trl_class(SFTTrainer) if fused_head_available(cuda) else plain_loss_trainer_class()
    with _quiet_datasets(), _chat_template(tokenizer, masking.training_template(tokenizer)):
        trainer = trainer_cls(**C.sft_trainer_kwargs(model, args, tokenizer, train_ds, eval_ds, [meter.callback()]))
    drop_printer(trainer)
    return trainer, tokenizer, stats


def _render_texts(tokenizer: Any, examples: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat-template text per example for Unsloth's recipe (train on text, then mask with response parts).

    A trailing newline after the final end-of-turn token is dropped so TRL does not append a second one."""
    eos = tokenizer.eos_token or ""
    rows = []
    for ex in examples:
        text = tokenizer.apply_chat_template(ex["messages"], tokenize=False)
        if eos and text.rstrip("\n").endswith(eos):
            text = text.rstrip("\n")
        rows.append({"text": text})
    return rows


def unsloth_trainer(cfg: FinetuneConfig, base: str, examples: list, eval_examples: list | None, out: Path,
                     cuda: bool, bf16: bool, meter: Meter, source: str | None
                     ) -> tuple[Any, Any, dict[str, Any], tuple[str, str]]:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastLanguageModel  # type: ignore[import-not-found]
    from unsloth.chat_templates import train_on_responses_only  # type: ignore[import-not-found]

    # the masking is checked with the model's tokenizer before the model is loaded: bad data fails in a second
    path = resolve_model_path(base)
    plain_tokenizer = AutoTokenizer.from_pretrained(path)
    parts = (cfg.instruction_part, cfg.response_part)
    if None in parts:
        parts = masking.detect_response_parts(plain_tokenizer)
    stats = masking.check_masking(plain_tokenizer, examples, backend="unsloth", max_length=cfg.max_seq_length,
                                  parts=parts, source=source)
    # the course's choice, as for PEFT: bf16 on Ampere or newer, fp16 on older GPUs (a T4), float32 on a CPU
    dtype = getattr(torch, C.torch_dtype_name(cfg, cuda=cuda, bf16=bf16))
    model, tokenizer = FastLanguageModel.from_pretrained(**C.unsloth_load_kwargs(cfg, path, cuda=cuda, dtype=dtype))
    torch.manual_seed(cfg.seed)
    model = FastLanguageModel.get_peft_model(model, **C.unsloth_peft_kwargs(cfg, cuda=cuda))
    args = SFTConfig(**C.sft_config_kwargs(cfg, backend="unsloth", cuda=cuda, bf16=bf16, output_dir=out / "trainer"))
    train_ds = Dataset.from_list(_render_texts(tokenizer, examples))
    eval_ds = Dataset.from_list(_render_texts(tokenizer, eval_examples)) if eval_examples else None
    with _quiet_datasets():
        trainer = SFTTrainer(**C.sft_trainer_kwargs(model, args, tokenizer, train_ds, eval_ds, [meter.callback()]))
        trainer = train_on_responses_only(trainer, **C.responses_only_kwargs(*parts))
    drop_printer(trainer)
    return trainer, tokenizer, stats, parts


@contextmanager
def _chat_template(tokenizer: Any, template: str | None) -> Iterator[None]:
    """The training template (with generation markers) on the tokenizer while TRL prepares the data; the model's
    own template afterwards, so the saved adapter and merged model keep it."""
    own = tokenizer.chat_template
    if template is not None:
        tokenizer.chat_template = template
    try:
        yield
    finally:
        tokenizer.chat_template = own


class _quiet_datasets:
    """Hide datasets' per-map progress bars (our own bar shows the run)."""

    def __enter__(self) -> None:
        from datasets.utils import logging as dlog

        self.was = dlog.is_progress_bar_enabled()
        dlog.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        from datasets.utils import logging as dlog

        if self.was:
            dlog.enable_progress_bar()
