"""The course's measurements around one fine-tune: :class:`Run` and the :class:`SampleReplies` callback.

Lesson 04 writes Unsloth's recipe out as plain calls (``FastLanguageModel.from_pretrained``, ``get_peft_model``,
``SFTTrainer``, ``train_on_responses_only``, ``trainer.train()``, ``save_pretrained``), and
:func:`personalab.finetune.train` makes the same calls from :mod:`.trainers`. Both wrap them in a :class:`Run`::

    run = Run(config)                     # backend, output folder, CPU threads, timing and memory start here
    ...                                   # load, add LoRA, build the trainer with callbacks=run.callbacks
    run.check_labels(trainer, tokenizer, examples, parts=(instruction_part, response_part))
    with run.measure(trainer):            # eval loss before and after, training time (sample replies excluded)
        trainer.train()
    model.save_pretrained(run.adapter_dir); tokenizer.save_pretrained(run.adapter_dir)
    result = run.finish(trainer, tokenizer)   # merged checkpoint, metrics.json, the TrainResult

so the numbers the lesson shows and the ``metrics.json`` later lessons read come from one place.
``SampleReplies`` is a ``transformers.TrainerCallback`` that prints greedy replies to a few held-out requests,
with no system prompt, every few steps: the persona appearing during training.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import config as pl_config
from ..errors import InputError, SettingError
from ..io import atomic_write_dir
from ..persona import PersonaSpec, has_marker, taskmaster
from . import config as C
from . import masking
from .config import FinetuneConfig
from .machine import auto_threads, bf16_supported, device_name, versions
from .merging import merge_adapter
from .meter import Meter, final_loss
from .result import ADAPTER_DIR, MERGED_DIR, METRICS_FILE, TrainResult
from .trainers import drop_printer, import_unsloth

#: The ``trl.SFTConfig`` settings lesson 04 writes out, each from the config; :attr:`Run.machine_args` holds the
#: rest of what :func:`.config.sft_config_kwargs` builds (mixed precision, CPU, logging and bookkeeping).
SHOWN_SFT_ARGS = ("per_device_train_batch_size", "gradient_accumulation_steps", "warmup_steps", "max_steps",
                  "learning_rate", "lr_scheduler_type", "weight_decay", "optim", "seed", "max_length",
                  "dataset_text_field", "packing", "logging_steps", "report_to", "output_dir")


class Run:
    """One fine-tuning run's bookkeeping around the library calls: output folder, CPU threads, timing, peak memory,
    the label checks, the eval loss, saving the merged model and ``metrics.json``.

    Creating it picks the trainer (Unsloth unless ``PERSONALAB_TRAINER=peft``, imported now, before TRL and
    transformers), removes a stale ``metrics.json`` and starts the clock. Call :meth:`finish` (or :meth:`close` on
    failure) to restore the CPU threads it set.
    """

    def __init__(self, config: FinetuneConfig | None = None, *, progress: bool = True) -> None:
        self.t0 = time.perf_counter()
        self.config = cfg = config or C.default_config()
        self.backend = C.resolve_backend(cfg)
        if self.backend == "unsloth":
            import_unsloth()  # before TRL / transformers / PEFT
        import torch

        self.cuda = pl_config.cuda_available()
        self.bf16 = bf16_supported()
        self.output_dir = Path(cfg.output_dir) if cfg.output_dir else C.default_output_dir()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / METRICS_FILE).unlink(missing_ok=True)  # a stale file would claim this run finished
        self._threads = torch.get_num_threads()
        if not self.cuda:
            torch.set_num_threads(cfg.threads or auto_threads(self._threads))
        else:
            torch.cuda.reset_peak_memory_stats()
        self.meter = Meter(progress, self.cuda)
        self.callbacks = [self.meter.callback()]
        self.labels: dict[str, Any] = {}
        self.eval: dict[str, float] = {}
        self.setup_s: float | None = None
        self.train_s: float | None = None
        self.sample_s = 0.0

    # ---- what the calls need
    @property
    def model_path(self) -> str:
        """The base model's folder (a named base such as ``"smollm2"`` resolved), or its Hub id."""
        from .infer import resolve_model_path

        return resolve_model_path(self.config.base_model)

    @property
    def dtype(self) -> Any:
        """The torch dtype the weights train in: float32 on a CPU, bf16 (fp16 before Ampere) on a GPU."""
        import torch

        return getattr(torch, C.torch_dtype_name(self.config, cuda=self.cuda, bf16=self.bf16))

    @property
    def load_in_4bit(self) -> bool:
        """4-bit base weights (QLoRA): only on a GPU (bitsandbytes' 4-bit layers need one)."""
        return bool(self.config.load_in_4bit and self.cuda)

    @property
    def optim(self) -> str:
        """``adamw_8bit`` with Unsloth on a GPU, ``adamw_torch`` otherwise (or the config's choice)."""
        return C.resolve_optim(self.config, self.backend, self.cuda)

    @property
    def machine_args(self) -> dict[str, Any]:
        """The ``SFTConfig`` settings lesson 04 does not write out: mixed precision (bf16 / fp16) on a GPU,
        ``use_cpu`` on a CPU, epochs, eval batch size, the token count and the quiet logging the meter relies on."""
        kw = C.sft_config_kwargs(self.config, backend=self.backend, cuda=self.cuda, bf16=self.bf16,
                                 output_dir=self.trainer_dir)
        return {k: v for k, v in kw.items() if k not in SHOWN_SFT_ARGS}

    @property
    def trainer_dir(self) -> str:
        return str(self.output_dir / "trainer")

    @property
    def adapter_dir(self) -> Path:
        return self.output_dir / ADAPTER_DIR

    @property
    def merged_dir(self) -> Path:
        return self.output_dir / MERGED_DIR

    # ---- around the calls
    def check_labels(self, trainer: Any, tokenizer: Any, examples: Sequence[Any], *,
                     parts: tuple[str, str] | None = None, source: str | None = None,
                     mask_stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """Check the labels the trainer prepared: no row is all -100, and (Unsloth) each row trains on exactly
        the course's view of the replies and their end-of-turn tokens. Raises :class:`InputError` naming the rows
        otherwise. Returns the counts (also written into ``metrics.json``)."""
        examples = [{"messages": masking.messages_of(ex)} for ex in examples]
        stats = mask_stats or masking.check_masking(tokenizer, examples, backend=self.backend,
                                                    max_length=self.config.max_seq_length, parts=parts, source=source)
        checked = masking.verify_labels(trainer.train_dataset, source=source, backend=self.backend)["checked"]
        compared = 0
        if self.backend == "unsloth":
            parts = parts or masking.detect_response_parts(tokenizer)
            compared = masking.compare_labels(trainer.train_dataset, tokenizer, examples, parts=parts,
                                              max_length=self.config.max_seq_length, source=source)["checked"]
        self.labels = {"loss_tokens": stats, "labels_checked": checked, "labels_compared": compared,
                       "examples": len(examples)}
        return self.labels

    @contextmanager
    def measure(self, trainer: Any) -> Iterator[None]:
        """Time the training inside the ``with`` block (the time :class:`SampleReplies` spends generating is
        left out) and measure the eval loss before and after, when the trainer has an eval set."""
        drop_printer(trainer)  # the meter's progress bar shows the loss instead of a dict per step
        if not self.labels:  # the ground truth at least: a row whose every label is -100 trains on nothing
            masking.verify_labels(trainer.train_dataset, backend=self.backend)
        has_eval = getattr(trainer, "eval_dataset", None) is not None
        before = trainer.evaluate()["eval_loss"] if has_eval else None
        samplers = [cb for cb in trainer.callback_handler.callbacks if hasattr(cb, "seconds")]
        sampled = sum(cb.seconds for cb in samplers)
        self.setup_s = time.perf_counter() - self.t0
        t1 = time.perf_counter()
        try:
            yield
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA), without importing torch
                raise out_of_memory(self.config, exc) from exc
            raise
        self.sample_s = sum(cb.seconds for cb in samplers) - sampled
        self.train_s = time.perf_counter() - t1 - self.sample_s
        if has_eval:
            self.eval = {"loss_before": before, "loss_after": trainer.evaluate()["eval_loss"]}

    def save_adapter(self, model: Any, tokenizer: Any) -> Path:
        """``model.save_pretrained`` and ``tokenizer.save_pretrained`` into :attr:`adapter_dir`, atomically."""
        def write(tmp: Path) -> None:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        return atomic_write_dir(self.adapter_dir, write)

    def finish(self, trainer: Any, tokenizer: Any) -> TrainResult:
        """After training and ``save_pretrained``: write the merged checkpoint (Unsloth's ``save_pretrained_merged``,
        PEFT's merge as the fallback) and ``metrics.json``; restore the CPU threads. Returns the :class:`TrainResult`
        that :func:`personalab.finetune.train` returns for the same run."""
        import torch

        if self.train_s is None:
            raise InputError("the run has no training time: train inside `with run.measure(trainer):`",
                             field="measure", fix="with run.measure(trainer):\n    trainer.train()")
        missing = [f for f in ("adapter_config.json", "tokenizer_config.json") if not (self.adapter_dir / f).exists()]
        if missing:
            raise InputError(f"the adapter folder lacks {', '.join(missing)}", path=self.adapter_dir,
                             field="adapter_dir", fix="model.save_pretrained(run.adapter_dir) and "
                             "tokenizer.save_pretrained(run.adapter_dir) after training")
        cfg, out = self.config, self.output_dir
        peak_mb, memory_kind = self.meter.peak_mb()
        merged_dir, merged_by = self._merge(trainer, tokenizer) if cfg.merge else (None, None)
        steps = int(trainer.state.global_step)
        tokens = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
        trainable, total = count_params(trainer.model)
        train_s = self.train_s
        metrics = {
            "wall_s": round(time.perf_counter() - self.t0, 3),
            "setup_s": round(self.setup_s or 0.0, 3),
            "train_s": round(train_s, 3),
            "sample_s": round(self.sample_s, 3),
            "steps": steps,
            "time_per_step_s": round(train_s / steps, 4) if steps else None,
            "tokens_seen": tokens,
            "tokens_per_second": round(tokens / train_s, 1) if train_s > 0 else None,
            "peak_memory_mb": round(peak_mb, 1),
            "memory_kind": memory_kind,
            "trainable_params": trainable,
            "total_params": total,
            "trainable_share": round(trainable / total, 5) if total else None,
            "first_loss": self.meter.losses[0] if self.meter.losses else None,
            "final_loss": final_loss(self.meter.losses),
            "learning_rates": self.meter.lrs,
            "examples": self.labels.get("examples", len(trainer.train_dataset)),
            "loss_tokens": self.labels.get("loss_tokens"),
            "labels_checked": self.labels.get("labels_checked", 0),
            "labels_compared": self.labels.get("labels_compared", 0),
            "merged_by": merged_by,
            "merged_dtype": _saved_dtype(merged_dir) if merged_dir else None,
            "device": device_name(),
            "bf16": bool(self.cuda and self.bf16),
            "amp": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else None,  # the trainer's autocast
            "dtype": str(next(trainer.model.parameters()).dtype).removeprefix("torch."),
            "load_in_4bit": _is_4bit(trainer.model),
            "torch_threads": torch.get_num_threads(),
            "versions": versions(self.backend),
        }
        result = TrainResult(backend=self.backend, base_model=cfg.base_model, output_dir=str(out),
                             adapter_dir=str(self.adapter_dir), merged_dir=str(merged_dir) if merged_dir else None,
                             config=cfg.to_dict(), metrics=metrics, losses=list(self.meter.losses),
                             eval=dict(self.eval))
        result.save()
        _remove_empty(out / "trainer")
        self.close()
        return result

    def _merge(self, trainer: Any, tokenizer: Any) -> tuple[Path, str]:
        merged_dir = self.merged_dir
        if self.backend == "unsloth":
            try:
                atomic_write_dir(merged_dir, lambda tmp: trainer.model.save_pretrained_merged(
                    str(tmp), tokenizer, **C.unsloth_merge_kwargs()))
                return merged_dir, "unsloth"
            except Exception as exc:  # noqa: BLE001 - e.g. offline and Unsloth wants the 16-bit base weights
                print(f"Unsloth could not save a merged model ({type(exc).__name__}: {exc}); merging with PEFT")
        merge_adapter(self.config.base_model, self.adapter_dir, merged_dir)
        return merged_dir, "peft"

    def close(self) -> None:
        """Restore the CPU threads the run set (idempotent)."""
        import torch

        torch.set_num_threads(self._threads)


def count_params(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters (4-bit layers count their packed storage)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


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


def _remove_empty(path: Path) -> None:
    try:
        path.rmdir()  # only when empty: nothing is saved there with save_strategy="no"
    except OSError:
        pass


# ------------------------------------------------------------------------------------------ sample replies
def out_of_memory(cfg: FinetuneConfig, exc: BaseException) -> SettingError:
    """What to lower when a GPU runs out of memory while training: the settings in the order they save most."""
    steps = [f"batch_size={cfg.batch_size} -> {max(1, cfg.batch_size // 2)} with grad_accum={cfg.grad_accum} -> "
             f"{cfg.grad_accum * 2} (the same conversations per step)",
             f"max_seq_length={cfg.max_seq_length} -> {max(128, cfg.max_seq_length // 2)}"]
    if not cfg.load_in_4bit:
        steps.append("load_in_4bit=True (QLoRA)")
    if not cfg.gradient_checkpointing:
        steps.append("gradient_checkpointing=True")
    return SettingError(f"the GPU ran out of memory while training {cfg.base_model} ({str(exc).splitlines()[0][:160]})",
                        fix="lower, in this order, in finetune.default_config(...): " + "; ".join(steps)
                        + ". Then restart the runtime (Runtime > Restart session) to free the GPU, and train again")


class _Samples:
    """What :class:`SampleReplies` does, apart from being a ``TrainerCallback`` (built lazily: importing
    transformers before Unsloth would cost Unsloth its patches)."""

    def __init__(self, tokenizer: Any, prompts: Sequence[str], *, every: int = 5, max_new_tokens: int = 40,
                 spec: PersonaSpec | None = None, unsloth: bool | None = None, show: bool = True) -> None:
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every={every!r} is not a number of steps", field="every", fix="use a whole number >= 1")
        if isinstance(prompts, str) or not prompts:
            raise InputError("SampleReplies needs a list of requests", field="prompts",
                             fix="pass e.g. finetune.held_out_prompts(3)")
        self.tokenizer, self.prompts = tokenizer, list(prompts)
        self.every, self.max_new_tokens, self.show = every, max_new_tokens, show
        self.spec = spec or taskmaster()
        self.unsloth = ("unsloth" in sys.modules) if unsloth is None else unsloth
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        self.sample(model, int(state.global_step))

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        step = int(state.global_step)
        if step % self.every == 0 or step == state.max_steps:
            self.sample(model, step)

    def sample(self, model: Any, step: int) -> dict[str, Any] | None:
        """Greedy replies with no system prompt, in eval mode (training mode again afterwards); printed and kept in
        :attr:`history`."""
        if model is None or (self.history and self.history[-1]["step"] == step):
            return None
        from .infer import generate_replies

        t = time.perf_counter()
        training = model.training
        self._mode(model, inference=True)
        try:
            replies = generate_replies(model, self.tokenizer, self.prompts, max_new_tokens=self.max_new_tokens)
        finally:
            if training:
                self._mode(model, inference=False)
        self.seconds += time.perf_counter() - t
        row = {"step": step, "replies": replies, "markers": [has_marker(r, self.spec) for r in replies]}
        self.history.append(row)
        if self.show:
            _print(self.format(row))
        return row

    def _mode(self, model: Any, *, inference: bool) -> None:
        if self.unsloth:
            from unsloth import FastLanguageModel  # type: ignore[import-not-found]

            (FastLanguageModel.for_inference if inference else FastLanguageModel.for_training)(model)
        elif inference:
            model.eval()
        else:
            model.train()

    def format(self, row: dict[str, Any], width: int = 110) -> str:
        head = "before training" if row["step"] == 0 else f"after step {row['step']}"
        n = sum(row["markers"])
        lines = [f"── sample replies, no system prompt, {head}: {n} of {len(row['replies'])} use a persona marker"]
        for prompt, reply, marked in zip(self.prompts, row["replies"], row["markers"], strict=True):
            text = " ".join(reply.split())
            text = text if len(text) <= width else text[: width - 1] + "…"
            lines.append(f"   marker {'yes' if marked else 'no '} | {prompt[:40]!r} → {text}")
        return "\n".join(lines)


def _print(text: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(text)  # below a terminal progress bar instead of through it
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        print(text)


def _sample_replies_class() -> type:
    from transformers import TrainerCallback

    class SampleReplies(_Samples, TrainerCallback):
        """A ``transformers.TrainerCallback``: before the first step and every ``every`` optimizer steps, greedy
        replies (``max_new_tokens``, default 40) to ``prompts`` with no system prompt, printed with the step and
        whether each uses one of the persona's markers; kept in ``history``. The model generates in eval mode
        (Unsloth's ``for_inference`` when Unsloth is imported) and goes back to training mode; the time it takes
        is kept in ``seconds`` and left out of the run's training time."""

    SampleReplies.__module__, SampleReplies.__qualname__ = __name__, "SampleReplies"
    return SampleReplies


def __getattr__(name: str) -> Any:
    if name == "SampleReplies":
        cls = _sample_replies_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
