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
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import config as pl_config
from ..errors import InputError
from . import config as C
from . import masking
from .config import FinetuneConfig
from .result import ADAPTER_DIR, MERGED_DIR, TrainResult

DATASET_FIX = ("generate it in lesson 03 or with `personalab data generate`, "
               "or pass a list of {'messages': [...]} examples")


# ------------------------------------------------------------------------------------------- data
def load_examples(dataset: Any) -> tuple[list[dict[str, Any]], str | None]:
    """(examples with only role/content, source name) from a list, a JSONL path, or a ``datasets.Dataset``."""
    source = None
    if dataset is None:
        from ..dataset import default_dataset_paths

        dataset = default_dataset_paths().train
    if isinstance(dataset, (str, Path)):
        from ..dataset import read_examples

        source = str(dataset)
        if not Path(dataset).exists():
            raise InputError("training data not found", path=dataset, fix=DATASET_FIX)
        dataset = read_examples(dataset)
    rows = list(dataset)
    if not rows:
        raise InputError("the training data is empty", path=source, fix=DATASET_FIX)
    out = []
    for n, ex in enumerate(rows, 1):
        try:
            msgs = masking.messages_of(ex)
            out.append({"messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in msgs]})
        except (KeyError, TypeError):
            raise InputError("a message needs 'role' and 'content'", path=source, line=n, field="messages",
                             fix="validate the file with `personalab data validate FILE`") from None
    return out, source


def dataset_paths(*, verbose: bool = True) -> Any:
    """Lesson 03's ``train.jsonl`` / ``eval.jsonl``; written with the offline generator when missing."""
    from ..dataset import build_default_datasets, default_dataset_paths

    paths = default_dataset_paths()
    if not (paths.train.exists() and paths.eval.exists()):
        if verbose:
            print("lesson 03's dataset is missing: writing it with the offline generator")
        build_default_datasets(paths=paths, progress=False)
    return paths


# ------------------------------------------------------------------------------------------- unsloth
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


def auto_threads(default: int) -> int:
    """CPU threads for training when the config leaves it open: as many as there are idle cores (at most
    ``default``), measured over half a second. Threads on cores that other processes keep busy wait on each other at
    every operation: two threads on a shared 2-core machine can be several times slower than one."""
    try:
        import psutil

        cores, me = os.cpu_count() or 1, psutil.Process()
        psutil.cpu_percent(None), me.cpu_percent(None)
        time.sleep(0.5)
        busy = psutil.cpu_percent(None) / 100 * cores - me.cpu_percent(None) / 100  # other processes only
    except Exception:  # noqa: BLE001 - no measurement: keep PyTorch's choice
        return default
    return max(1, min(default, int(cores - busy + 0.5)))


def bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


# ------------------------------------------------------------------------------------------- metrics
class _Meter:
    """Progress bar with the loss, per-step losses, peak memory (CUDA max allocated or sampled RSS)."""

    def __init__(self, show: bool, cuda: bool) -> None:
        self.show, self.cuda = show, cuda
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.peak_rss = 0
        self.bar: Any = None
        self.t_first_step: float | None = None
        self.sample()

    def sample(self) -> None:
        if not self.cuda:
            import psutil

            self.peak_rss = max(self.peak_rss, psutil.Process().memory_info().rss)

    def callback(self) -> Any:
        from transformers import TrainerCallback

        meter = self

        class ProgressCallback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
                from tqdm.auto import tqdm

                meter.bar = tqdm(total=state.max_steps, desc="fine-tuning", unit="step", disable=not meter.show)

            def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
                if meter.t_first_step is None:
                    meter.t_first_step = time.perf_counter()
                meter.sample()
                if meter.bar is not None:
                    meter.bar.update(1)

            def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
                if logs and "loss" in logs:
                    meter.losses.append(float(logs["loss"]))
                    meter.lrs.append(float(logs.get("learning_rate", math.nan)))
                    if meter.bar is not None:
                        meter.bar.set_postfix(loss=f"{meter.losses[-1]:.3f}")

            def on_train_end(self, args, state, control, **kw):  # noqa: ANN001
                if meter.bar is not None:
                    meter.bar.close()

        return ProgressCallback()

    def peak_mb(self) -> tuple[float, str]:
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
        self.sample()
        return self.peak_rss / 2**20, "process_rss"


def _final(losses: list[float]) -> float:
    """Mean of the last tenth of the logged losses (at least one): less noisy than the last step."""
    if not losses:
        return math.nan
    k = max(1, len(losses) // 10)
    return sum(losses[-k:]) / k


def count_params(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters (4-bit layers count their packed storage)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


# ------------------------------------------------------------------------------------------- files
def _write_dir(dst: Path, write: Callable[[Path], None]) -> Path:
    """Write a folder via a temporary sibling and a rename: never half written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp-"))
    tmp.chmod(0o755)
    try:
        write(tmp)
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def merge_adapter(base_model: str, adapter_dir: str | Path, out_dir: str | Path, *, dtype: Any = None) -> Path:
    """Fold a LoRA adapter into (unquantized) base weights and save a complete checkpoint at ``out_dir``:
    model, tokenizer (with its chat template) and the base model's generation config."""
    from transformers import AutoTokenizer, GenerationConfig

    from .infer import load_model, resolve_model_path

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

    return _write_dir(Path(out_dir), write)


def merge(result: TrainResult) -> TrainResult:
    """Add a merged checkpoint to a finished run that was trained with ``merge=False``."""
    out = Path(result.output_dir) / MERGED_DIR
    merge_adapter(result.base_model, result.adapter_dir, out)
    result.merged_dir = str(out)
    result.save()
    return result


# ------------------------------------------------------------------------------------------- training
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
    meter = _Meter(progress, cuda)
    bf16 = bf16_supported()
    if backend == "unsloth":
        trainer, tokenizer, mask_stats, parts = _unsloth_trainer(cfg, base, examples, eval_examples, out, cuda, bf16,
                                                                 meter, source)
    else:
        trainer, tokenizer, mask_stats = _peft_trainer(cfg, base, examples, eval_examples, out, cuda, bf16, meter,
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

    _write_dir(adapter_dir, write_adapter)
    merged_dir, merged_by = None, None
    if cfg.merge:
        merged_dir, merged_by = out / MERGED_DIR, backend
        if backend == "unsloth":
            try:
                _write_dir(merged_dir, lambda tmp: trainer.model.save_pretrained_merged(str(tmp), tokenizer,
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
        "final_loss": _final(meter.losses),
        "learning_rates": meter.lrs,
        "examples": len(examples),
        "loss_tokens": mask_stats,
        "labels_checked": labels_checked,
        "labels_compared": labels_compared,
        "merged_by": merged_by,
        "merged_dtype": _saved_dtype(merged_dir) if merged_dir else None,
        "device": _device_name(cuda),
        "bf16": bool(cuda and bf16),
        "dtype": str(next(trainer.model.parameters()).dtype).removeprefix("torch."),
        "load_in_4bit": _is_4bit(trainer.model),
        "torch_threads": torch.get_num_threads(),
        "versions": _versions(backend),
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


def _remove_empty(path: Path) -> None:
    try:
        path.rmdir()  # only when empty: nothing is saved there with save_strategy="no"
    except OSError:
        pass


def _device_name(cuda: bool) -> str:
    from ..results import hardware

    return hardware()


def _versions(backend: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["torch", "transformers", "trl", "peft", "datasets"] + (["unsloth", "unsloth_zoo", "bitsandbytes"]
                                                                   if backend == "unsloth" else [])
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def _drop_printer(trainer: Any) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)


def trl_class(cls: type) -> type:
    """The class as TRL defines it, beneath any subclass Unsloth put in its place (importing Unsloth replaces
    ``trl.SFTTrainer`` for the whole process): the PEFT + TRL baseline and the drift test use TRL's own."""
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


def _peft_trainer(cfg: FinetuneConfig, base: str, examples: list, eval_examples: list | None, out: Path, cuda: bool,
                  bf16: bool, meter: _Meter, source: str | None) -> tuple[Any, Any, dict[str, Any]]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from .infer import resolve_model_path

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
    with _quiet_datasets():
        trainer = trainer_cls(**C.sft_trainer_kwargs(model, args, tokenizer, train_ds, eval_ds, [meter.callback()]))
    _drop_printer(trainer)
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


def _unsloth_trainer(cfg: FinetuneConfig, base: str, examples: list, eval_examples: list | None, out: Path,
                     cuda: bool, bf16: bool, meter: _Meter, source: str | None
                     ) -> tuple[Any, Any, dict[str, Any], tuple[str, str]]:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastLanguageModel  # type: ignore[import-not-found]
    from unsloth.chat_templates import train_on_responses_only  # type: ignore[import-not-found]

    from .infer import resolve_model_path

    # the masking is checked with the model's tokenizer before the model is loaded: bad data fails in a second
    path = resolve_model_path(base)
    plain_tokenizer = AutoTokenizer.from_pretrained(path)
    parts = (cfg.instruction_part, cfg.response_part)
    if None in parts:
        parts = masking.detect_response_parts(plain_tokenizer)
    stats = masking.check_masking(plain_tokenizer, examples, backend="unsloth", max_length=cfg.max_seq_length,
                                  parts=parts, source=source)
    # on a GPU dtype=None lets Unsloth choose (bf16 or fp16); on a CPU the profile's float32 unless set otherwise
    dtype = getattr(torch, C.torch_dtype_name(cfg, cuda=cuda, bf16=bf16)) if cfg.dtype or not cuda else None
    model, tokenizer = FastLanguageModel.from_pretrained(**C.unsloth_load_kwargs(cfg, path, cuda=cuda, dtype=dtype))
    torch.manual_seed(cfg.seed)
    model = FastLanguageModel.get_peft_model(model, **C.unsloth_peft_kwargs(cfg, cuda=cuda))
    args = SFTConfig(**C.sft_config_kwargs(cfg, backend="unsloth", cuda=cuda, bf16=bf16, output_dir=out / "trainer"))
    train_ds = Dataset.from_list(_render_texts(tokenizer, examples))
    eval_ds = Dataset.from_list(_render_texts(tokenizer, eval_examples)) if eval_examples else None
    with _quiet_datasets():
        trainer = SFTTrainer(**C.sft_trainer_kwargs(model, args, tokenizer, train_ds, eval_ds, [meter.callback()]))
        trainer = train_on_responses_only(trainer, **C.responses_only_kwargs(*parts))
    _drop_printer(trainer)
    return trainer, tokenizer, stats, parts


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


def read_metrics(output_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(output_dir) / "metrics.json").read_text(encoding="utf-8"))
