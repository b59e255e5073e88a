"""The fine-tuning settings (:class:`FinetuneConfig`) and the keyword arguments they become.

Every keyword argument that :mod:`personalab.finetune` passes to Unsloth, TRL, PEFT or transformers is
built by one function here, so the API-drift test (``tests/test_finetune_api.py``) checks exactly what
the training code sends: :func:`api_calls` lists them per backend.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config as pl_config
from ..config import EMBEDDED, GPU_BASE_MODEL, SMOLLM2  # noqa: F401  (the profiles' base models; tests import them here)
from ..errors import InputError

BACKENDS = ("auto", "unsloth", "peft")
#: Environment variable that picks the trainer when ``FinetuneConfig.backend`` is "auto": the documented fallback
#: switch ``PERSONALAB_TRAINER=peft`` trains with plain PEFT + TRL (the benchmark's baseline) instead of Unsloth.
TRAINER_ENV = "PERSONALAB_TRAINER"
DTYPES = ("float32", "bfloat16", "float16")
#: Every linear layer of a Llama / Qwen / Mistral block: attention and MLP.
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FIX_FIELDS = "see `help(personalab.finetune.FinetuneConfig)` for every field and its range"


@dataclass
class FinetuneConfig:
    """One LoRA fine-tuning run. The same settings drive Unsloth (the default trainer, on a GPU or a CPU) and the
    plain PEFT + TRL baseline.

    ``r`` is the LoRA rank (size of the update matrices), ``lora_alpha`` scales the update (the effective
    scale is ``lora_alpha / r``), ``max_steps`` (or ``num_epochs`` when ``max_steps`` is None) sets the
    length of the run, and one optimizer step sees ``batch_size * grad_accum`` conversations.
    """

    base_model: str = SMOLLM2
    r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(LLAMA_TARGETS))
    learning_rate: float = 2e-4
    max_steps: int | None = 60
    num_epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    max_seq_length: int = 512
    seed: int = 0
    output_dir: str | None = None
    warmup_steps: int = 5
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    #: "auto": Unsloth on every machine, unless the environment sets PERSONALAB_TRAINER=peft (the fallback).
    #: "peft" is the plain PEFT + TRL baseline the benchmarks compare Unsloth with.
    backend: str = "auto"
    #: Weight dtype for training: None means bf16 on a GPU that computes in it natively (compute capability 8.0+),
    #: fp16 on older GPUs (a T4), and float32 on a CPU (Unsloth's own choice there is bf16 on CPUs with
    #: AVX512-BF16, slower on ours). Mixed precision (SFTConfig's bf16/fp16) follows it.
    dtype: str | None = None
    #: GPU only (ignored on a CPU): load the base model in 4 bit (QLoRA) and use gradient checkpointing.
    load_in_4bit: bool = True
    gradient_checkpointing: bool = True
    #: None: "adamw_8bit" with Unsloth, "adamw_torch" otherwise.
    optim: str | None = None
    #: Save a merged checkpoint (adapter folded into the weights) that the local server can load.
    merge: bool = True
    #: Unsloth's train_on_responses_only markers; None: detected from the chat template.
    instruction_part: str | None = None
    response_part: str | None = None
    #: CPU threads for training. None: one per idle core (measured when training starts). On cores that other
    #: processes keep busy, threads wait on each other: 2 threads can be many times slower than 1.
    threads: int | None = None

    def __post_init__(self) -> None:
        self.target_modules = list(self.target_modules)
        checks: list[tuple[bool, str, str]] = [
            (isinstance(self.r, int) and 1 <= self.r <= 512, "r", "a whole number from 1 to 512 (8-64 is usual)"),
            (self.lora_alpha > 0, "lora_alpha", "a positive number (often r or 2*r)"),
            (0 <= self.lora_dropout < 1, "lora_dropout", "a number in [0, 1)"),
            (0 < self.learning_rate <= 1, "learning_rate", "a positive number such as 2e-4"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", "a whole number >= 1, or None"),
            (self.num_epochs > 0, "num_epochs", "a positive number"),
            (self.batch_size >= 1, "batch_size", "a whole number >= 1"),
            (self.grad_accum >= 1, "grad_accum", "a whole number >= 1"),
            (self.max_seq_length >= 16, "max_seq_length", "at least 16 tokens"),
            (bool(self.target_modules), "target_modules", "at least one module name, e.g. ['q_proj', 'v_proj']"),
            (self.backend in BACKENDS, "backend", "one of " + ", ".join(BACKENDS)),
            (self.dtype is None or self.dtype in DTYPES, "dtype", "None or one of " + ", ".join(DTYPES)),
            (self.threads is None or self.threads >= 1, "threads", "None or a whole number >= 1"),
        ]
        for ok, name, want in checks:
            if not ok:
                raise InputError(f"{name}={getattr(self, name)!r} is not valid", field=name, fix=f"use {want}")

    def replace(self, **changes: Any) -> FinetuneConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def scale(self) -> float:
        """LoRA's scaling factor ``lora_alpha / r``."""
        return self.lora_alpha / self.r


def default_output_dir(name: str = "finetune") -> Path:
    """``personalab.config.home()/runs/NAME``."""
    return pl_config.home() / "runs" / name


#: Settings that fit each profile; the trainer is Unsloth in both, the profile chooses its dtype, 4-bit loading and
#: gradient checkpointing. On a CPU (SmolLM2-135M-Instruct): float32 weights (measured faster than bf16 here, and
#: never a silent switch), no 4-bit (bitsandbytes' 4-bit needs a GPU), no checkpointing, and a short run with a
#: high learning rate: 24 steps of 8 conversations (2 per batch, 4 accumulated: a third less peak memory than 4 x 2,
#: 2.3 GB) at 1.5e-3 move the persona into the weights in about 2.5 minutes on 2 cores; chosen from the variants in
#: benchmarks/RESULTS.md ("Choosing lesson 04's CPU preset").
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"base_model": SMOLLM2, "r": 16, "lora_alpha": 32, "learning_rate": 1.5e-3,
            "max_steps": 24, "batch_size": 2, "grad_accum": 4, "warmup_steps": 3, "max_seq_length": 512,
            "dtype": "float32", "load_in_4bit": False, "gradient_checkpointing": False},
    "gpu": {"base_model": GPU_BASE_MODEL, "r": 16, "lora_alpha": 16, "learning_rate": 2e-4,
            "max_steps": 60, "batch_size": 8, "grad_accum": 1, "warmup_steps": 5, "max_seq_length": 1024,
            "dtype": None, "load_in_4bit": True, "gradient_checkpointing": True},
}


def default_config(profile: str | None = None, **changes: Any) -> FinetuneConfig:
    """The preset for ``profile`` ('cpu' or 'gpu'; default: CUDA decides) with ``changes`` applied."""
    if profile is None:
        profile = "gpu" if pl_config.cuda_available() else "cpu"
    profile = "gpu" if profile in ("gpu", "colab-gpu") else profile
    if profile not in PRESETS:
        raise InputError(f"unknown profile {profile!r}", field="profile", fix="use 'cpu' or 'gpu'")
    return FinetuneConfig(**{**PRESETS[profile], "base_model": pl_config.base_model(profile), **changes})


def resolve_backend(cfg: FinetuneConfig) -> str:
    """'unsloth' or 'peft' for this config: the config's own choice, else ``PERSONALAB_TRAINER``, else Unsloth
    (on a GPU and, since Unsloth 2026.10.9, on a CPU: the same code path everywhere)."""
    if cfg.backend != "auto":
        return cfg.backend
    chosen = os.environ.get(TRAINER_ENV, "").strip().lower()
    if chosen and chosen not in BACKENDS[1:]:
        raise InputError(f"{TRAINER_ENV}={chosen!r} is not a trainer", field=TRAINER_ENV,
                         fix=f"set {TRAINER_ENV} to 'unsloth' (the default) or 'peft' (plain PEFT + TRL), or unset it")
    return chosen or "unsloth"


def torch_dtype_name(cfg: FinetuneConfig, *, cuda: bool, bf16: bool) -> str:
    """The weight dtype a run trains in: ``cfg.dtype``, else on a GPU bf16 where ``bf16`` (native bf16, see
    :func:`personalab.config.cuda_bf16`) and fp16 below it, and float32 on a CPU."""
    if cfg.dtype:
        return cfg.dtype
    if cuda:
        return "bfloat16" if bf16 else "float16"
    return "float32"


def resolve_optim(cfg: FinetuneConfig, backend: str, cuda: bool) -> str:
    if cfg.optim:
        return cfg.optim
    return "adamw_8bit" if backend == "unsloth" and cuda else "adamw_torch"


# ----------------------------------------------------------------------------------- keyword arguments
# One builder per third-party call. Names follow the callee: "module.Callable".


def lora_config_kwargs(cfg: FinetuneConfig) -> dict[str, Any]:
    """``peft.LoraConfig(**...)``."""
    return {"r": cfg.r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout,
            "target_modules": list(cfg.target_modules), "bias": "none", "task_type": "CAUSAL_LM"}


def hf_model_kwargs(cfg: FinetuneConfig, *, cuda: bool, quantize: bool, dtype: Any = None) -> dict[str, Any]:
    """``transformers.AutoModelForCausalLM.from_pretrained(path, **...)`` (base model for PEFT + TRL)."""
    kw: dict[str, Any] = {"dtype": dtype if dtype is not None else (cfg.dtype or ("auto" if cuda else "float32"))}
    if cuda:
        kw["device_map"] = {"": 0}
    if quantize:
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(**bnb_kwargs(dtype))
    return kw


def bnb_kwargs(compute_dtype: Any = None) -> dict[str, Any]:
    """``transformers.BitsAndBytesConfig(**...)``: 4-bit NF4, as Unsloth's 4-bit loading does."""
    return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": compute_dtype if compute_dtype is not None else "float16"}


def kbit_prep_kwargs(cfg: FinetuneConfig) -> dict[str, Any]:
    """``peft.prepare_model_for_kbit_training(model, **...)``."""
    return {"use_gradient_checkpointing": cfg.gradient_checkpointing}


def unsloth_load_kwargs(cfg: FinetuneConfig, model_name: str, *, cuda: bool, dtype: Any = None) -> dict[str, Any]:
    """``unsloth.FastLanguageModel.from_pretrained(**...)``. ``dtype`` (a torch dtype) is passed as given (the
    run passes :func:`torch_dtype_name`'s; None would let Unsloth choose). 4-bit only on a GPU: on a CPU Unsloth
    would switch it on by itself wherever bitsandbytes happens to be installed. ``random_state`` only on a GPU: the
    CPU mode's loader does not take it (the seed reaches ``get_peft_model`` on both)."""
    kw = {"model_name": model_name, "max_seq_length": cfg.max_seq_length, "dtype": dtype,
          "load_in_4bit": bool(cfg.load_in_4bit and cuda)}
    return kw | {"random_state": cfg.seed} if cuda else kw


def unsloth_peft_kwargs(cfg: FinetuneConfig, *, cuda: bool) -> dict[str, Any]:
    """``unsloth.FastLanguageModel.get_peft_model(model, **...)``."""
    return {"r": cfg.r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout,
            "target_modules": list(cfg.target_modules), "bias": "none",
            "use_gradient_checkpointing": "unsloth" if cfg.gradient_checkpointing and cuda else False,
            "random_state": cfg.seed, "max_seq_length": cfg.max_seq_length}


def responses_only_kwargs(instruction_part: str, response_part: str) -> dict[str, Any]:
    """``unsloth.chat_templates.train_on_responses_only(trainer, **...)``."""
    return {"instruction_part": instruction_part, "response_part": response_part}


def unsloth_merge_kwargs() -> dict[str, Any]:
    """``model.save_pretrained_merged(dir, tokenizer, **...)`` (Unsloth): 16-bit weights a server can load.

    On a CPU too: Unsloth's CPU mode writes bf16 (fp16 where the CPU lacks bf16) even after float32 training, the
    same "merged_16bit" checkpoint as on a GPU; the run records the dtype it wrote (``metrics["merged_dtype"]``)."""
    return {"save_method": "merged_16bit"}


def sft_config_kwargs(
    cfg: FinetuneConfig, *, backend: str, cuda: bool, bf16: bool, output_dir: str | Path
) -> dict[str, Any]:
    """``trl.SFTConfig(**...)``. PEFT + TRL masks the loss with the chat template's generation markers
    (``assistant_only_loss``); Unsloth trains on rendered text and masks with ``train_on_responses_only``. Mixed
    precision follows the weight dtype (:func:`torch_dtype_name`): bf16 or fp16 on a GPU, neither on a CPU."""
    dtype = torch_dtype_name(cfg, cuda=cuda, bf16=bf16)
    kw: dict[str, Any] = {
        "output_dir": str(output_dir),
        "max_steps": cfg.max_steps if cfg.max_steps is not None else -1,
        "num_train_epochs": cfg.num_epochs,
        "per_device_train_batch_size": cfg.batch_size,
        "per_device_eval_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler,
        "warmup_steps": cfg.warmup_steps,
        "weight_decay": cfg.weight_decay,
        "optim": resolve_optim(cfg, backend, cuda),
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "max_length": cfg.max_seq_length,
        "packing": False,
        "logging_steps": 1,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,  # personalab's own progress bar shows the loss
        "include_num_input_tokens_seen": "non_padding",
        "bf16": cuda and dtype == "bfloat16",
        "fp16": cuda and dtype == "float16",  # e.g. a T4: no native bf16
        "use_cpu": not cuda,
        "dataloader_pin_memory": cuda,
        # Unsloth applies its own checkpointing in get_peft_model
        "gradient_checkpointing": bool(cuda and cfg.gradient_checkpointing and backend == "peft"),
    }
    if backend == "unsloth":
        kw.update(assistant_only_loss=False, dataset_text_field="text")
    else:
        kw.update(assistant_only_loss=True)
    return kw


def sft_trainer_kwargs(model: Any, args: Any, tokenizer: Any, train: Any, eval: Any = None,  # noqa: A002
                       callbacks: list[Any] | None = None) -> dict[str, Any]:
    """``trl.SFTTrainer(**...)``."""
    kw = {"model": model, "args": args, "processing_class": tokenizer, "train_dataset": train,
          "callbacks": callbacks or []}
    if eval is not None:
        kw["eval_dataset"] = eval
    return kw


def hf_inference_kwargs(*, cuda: bool, dtype: Any) -> dict[str, Any]:
    """``transformers.AutoModelForCausalLM.from_pretrained(path, **...)`` for inference (evaluation, merging)."""
    return {"dtype": dtype, "device_map": {"": 0}} if cuda else {"dtype": dtype}


def generate_kwargs(*, max_new_tokens: int, pad_token_id: int | None) -> dict[str, Any]:
    """``model.generate(**inputs, **...)``: greedy decoding (the sampling settings of the checkpoint are unset)."""
    return {"max_new_tokens": max_new_tokens, "do_sample": False, "temperature": None, "top_p": None,
            "top_k": None, "pad_token_id": pad_token_id}


def api_calls(cfg: FinetuneConfig, backend: str, *, cuda: bool, bf16: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """Every third-party call of a run with these settings, with the keyword arguments it gets.

    Callees are named ``"package.Callable"``; the drift test checks each against the pinned package.
    """
    sft = sft_config_kwargs(cfg, backend=backend, cuda=cuda, bf16=bf16, output_dir="out")
    out: list[tuple[str, dict[str, Any]]] = [
        ("trl.SFTConfig", sft),
        ("trl.SFTTrainer", sft_trainer_kwargs(None, None, None, None, None, [])),
        ("transformers.AutoModelForCausalLM.from_pretrained", hf_inference_kwargs(cuda=cuda, dtype="float32")),
        ("transformers.GenerationMixin.generate", generate_kwargs(max_new_tokens=8, pad_token_id=0)),
    ]
    if backend == "unsloth":
        out += [
            ("unsloth.FastLanguageModel.from_pretrained", unsloth_load_kwargs(cfg, "model", cuda=cuda)),
            ("unsloth.FastLanguageModel.get_peft_model", unsloth_peft_kwargs(cfg, cuda=cuda)),
            ("unsloth.chat_templates.train_on_responses_only", responses_only_kwargs("a", "b")),
            ("unsloth.save_pretrained_merged", unsloth_merge_kwargs()),
        ]
    else:
        quantize = cuda and cfg.load_in_4bit
        model_kw = hf_model_kwargs(cfg, cuda=cuda, quantize=False) | ({"quantization_config": None} if quantize else {})
        out += [("peft.LoraConfig", lora_config_kwargs(cfg)),
                ("transformers.AutoModelForCausalLM.from_pretrained", model_kw)]
        if quantize:
            out += [("transformers.BitsAndBytesConfig", bnb_kwargs()),
                    ("peft.prepare_model_for_kbit_training", kbit_prep_kwargs(cfg))]
    return out


#: The builders by callee, for readers and the drift test.
BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "peft.LoraConfig": lora_config_kwargs,
    "transformers.AutoModelForCausalLM.from_pretrained": hf_model_kwargs,
    "transformers.AutoModelForCausalLM.from_pretrained (inference)": hf_inference_kwargs,
    "transformers.BitsAndBytesConfig": bnb_kwargs,
    "peft.prepare_model_for_kbit_training": kbit_prep_kwargs,
    "unsloth.FastLanguageModel.from_pretrained": unsloth_load_kwargs,
    "unsloth.FastLanguageModel.get_peft_model": unsloth_peft_kwargs,
    "unsloth.chat_templates.train_on_responses_only": responses_only_kwargs,
    "unsloth.save_pretrained_merged": unsloth_merge_kwargs,
    "trl.SFTConfig": sft_config_kwargs,
    "trl.SFTTrainer": sft_trainer_kwargs,
    "transformers.GenerationMixin.generate": generate_kwargs,
}
