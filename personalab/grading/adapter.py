"""Exercise 04 graded from the learner's saved LoRA adapter, without retraining.

Training takes minutes per submission on 2 CPU cores, so the grader never runs the training cell. A learner
hands in ``STUDENT/04_finetune_unsloth.ipynb`` and, next to it, ``STUDENT/adapter/`` (``adapter_config.json`` and
``adapter_model.safetensors``, what ``model.save_pretrained("adapter")`` writes). For each submission the grader

1. checks the adapter folder here, reading JSON only (no pickle, no code): the files, the size, a LoRA config for
   the course base with a sane rank, scale and target modules, and every tensor's name, dtype and shape in the
   safetensors header against the base model's own dimensions (:func:`check_adapter`);
2. runs the notebook up to the training cell, without the cells that call ``persona_eval`` (question 1 is
   graded from its ``my_config`` as usual);
3. in a separate sandboxed process where no learner code runs (``python -m personalab.grading --adapter JOB``),
   loads the base model plus the adapter with PEFT and answers a fixed sample of held-out requests (greedy, no
   system prompt), and measures the loss on a sample of training replies with and without the adapter
   (:func:`evaluate_adapter`);
4. recomputes questions 2–4 from those numbers and replies only (:func:`adapter_results`): the loss must fall
   (base → adapter), the marker rate must rise over the base's replies to the same requests, fluency and task
   facts must hold. Nothing the notebook printed, nor its ``metrics.json``, is read.
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..checks import Incorrect, Result

#: The folder a learner hands in next to the notebook.
ADAPTER_DIR = "adapter"
CONFIG_FILE, WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"
#: A rank-64 adapter on every linear layer of SmolLM2-135M is about 80 MB in float32.
MAX_ADAPTER_MB = 100
#: Held-out requests answered per submission (the first ones, in file order), and training replies scored.
SAMPLE_REQUESTS, SAMPLE_TRAIN = 16, 16
#: Files that may carry pickled code: never loaded, and their presence is refused.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
LINEAR = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
          "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
_TENSOR = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_(A|B)\.weight$")
SAVE_HINT = ("after training, save it next to the notebook: `model.save_pretrained('adapter')` (or copy "
             "`my_result.adapter_dir` to `adapter/`), and hand in the folder with the notebook")


class AdapterProblem(Exception):
    """Why a submitted adapter cannot be graded (the message is the learner's reason)."""


def adapter_folder(notebook: Path) -> Path:
    return notebook.parent / ADAPTER_DIR


def _dims(base_dir: Path) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of every LoRA-able linear layer of the base (Llama layout), from config.json."""
    cfg = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    hidden, inter = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    heads = int(cfg["num_attention_heads"])
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    kv = int(cfg.get("num_key_value_heads") or heads) * head_dim
    return {"q_proj": (hidden, heads * head_dim), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
            "o_proj": (heads * head_dim, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
            "down_proj": (inter, hidden), "layers": (int(cfg["num_hidden_layers"]), 0)}


def _safetensors_header(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise AdapterProblem(f"{ADAPTER_DIR}/{WEIGHTS_FILE} is not a safetensors file (too short)")
        n = struct.unpack("<Q", raw)[0]
        if n > min(size - 8, 10_000_000):
            raise AdapterProblem(f"{ADAPTER_DIR}/{WEIGHTS_FILE} is not a safetensors file (bad header length)")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise AdapterProblem(f"{ADAPTER_DIR}/{WEIGHTS_FILE} is not a safetensors file (unreadable header)") \
                from None
    if not isinstance(header, dict):
        raise AdapterProblem(f"{ADAPTER_DIR}/{WEIGHTS_FILE} is not a safetensors file")
    header.pop("__metadata__", None)
    for name, t in header.items():
        off = t.get("data_offsets") if isinstance(t, dict) else None
        if not (isinstance(off, list) and len(off) == 2 and all(isinstance(x, int) for x in off)
                and 0 <= off[0] <= off[1] <= size - 8 - n):
            raise AdapterProblem(f"{ADAPTER_DIR}/{WEIGHTS_FILE}: tensor {name!r} points outside the file "
                                 "(truncated upload?)")
    return header


def check_adapter(folder: Path, base_dir: Path, *, base_name: str = "smollm2-135m-instruct",
                  max_mb: float = MAX_ADAPTER_MB) -> dict[str, Any]:
    """Check a submitted adapter folder without loading it; returns {"r", "lora_alpha", "modules", "mb"}.

    Raises :class:`AdapterProblem` with a reason a learner can act on: missing files, pickle files, too large,
    not a LoRA for the course base (``base_name``, and every tensor's shape against ``base_dir/config.json``),
    rank or scale out of the exercise's ranges, other target modules, extra trained layers."""
    from ..checks.ex04 import R_RANGE, SCALE_RANGE

    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise AdapterProblem(f"`{ADAPTER_DIR}` must be a folder, not a link or a file: {SAVE_HINT}")
    if not folder.is_dir():
        raise AdapterProblem(f"no `{ADAPTER_DIR}/` folder next to the notebook, so the fine-tuned model could not "
                             f"be checked: {SAVE_HINT}")
    files = [p for p in folder.rglob("*")]
    if any(p.is_symlink() for p in files):
        raise AdapterProblem(f"`{ADAPTER_DIR}/` contains links: hand in the files themselves ({SAVE_HINT})")
    pickles = sorted(p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise AdapterProblem(f"`{ADAPTER_DIR}/` holds {', '.join(pickles[:3])}: pickle files are never loaded; "
                             "save with safetensors (the default of `save_pretrained`) and leave them out")
    mb = sum(p.stat().st_size for p in files if p.is_file()) / 1e6
    if mb > max_mb:
        raise AdapterProblem(f"`{ADAPTER_DIR}/` is {mb:.0f} MB, over the {max_mb:g} MB limit: hand in the LoRA "
                             "adapter only (not the merged model); a rank of 64 or less fits")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise AdapterProblem(f"`{ADAPTER_DIR}/{name}` is missing: {SAVE_HINT}")
    try:
        cfg = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdapterProblem(f"`{ADAPTER_DIR}/{CONFIG_FILE}` is not valid JSON ({exc}): save the adapter again") \
            from None
    if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA":
        raise AdapterProblem(f"`{ADAPTER_DIR}/{CONFIG_FILE}` is not a LoRA adapter (peft_type "
                             f"{cfg.get('peft_type') if isinstance(cfg, dict) else None!r}, expected 'LORA')")
    base = str(cfg.get("base_model_name_or_path") or "")
    if base.rstrip("/").rsplit("/", 1)[-1].lower() != base_name.lower():
        raise AdapterProblem(f"the adapter was trained on {base or 'an unnamed model'!r}, not on the course base "
                             f"({base_name}): train it with the exercise's `my_config`")
    r, alpha = cfg.get("r"), cfg.get("lora_alpha")
    if not isinstance(r, int) or not R_RANGE[0] <= r <= R_RANGE[1] or not isinstance(alpha, (int, float)) or \
            not SCALE_RANGE[0] <= alpha / r <= SCALE_RANGE[1]:
        raise AdapterProblem(f"the adapter has r={r!r}, lora_alpha={alpha!r}: the exercise allows r from "
                             f"{R_RANGE[0]} to {R_RANGE[1]} and lora_alpha/r from {SCALE_RANGE[0]:g} to "
                             f"{SCALE_RANGE[1]:g}")
    for key in ("rank_pattern", "alpha_pattern"):
        if cfg.get(key):
            raise AdapterProblem(f"the adapter sets {key}: use one rank and alpha for every layer (the exercise's "
                                 "config does)")
    for key in ("modules_to_save", "megatron_config", "auto_mapping", "trainable_token_indices", "layer_replication"):
        if cfg.get(key):
            raise AdapterProblem(f"the adapter sets {key}: the exercise trains LoRA matrices only; train it with "
                                 "`finetune.train(my_config, ...)`")
    targets = cfg.get("target_modules")
    targets = [targets] if isinstance(targets, str) else targets
    if not isinstance(targets, list) or not targets or not set(targets) <= set(LINEAR):
        raise AdapterProblem(f"target_modules {targets!r}: LoRA on the base's linear layers only "
                             f"({', '.join(LINEAR)})")
    dims = _dims(base_dir)
    header = _safetensors_header(folder / WEIGHTS_FILE)
    if not header:
        raise AdapterProblem(f"`{ADAPTER_DIR}/{WEIGHTS_FILE}` holds no tensors: save the adapter after training")
    seen: set[tuple[int, str, str]] = set()
    for name, t in header.items():
        m = _TENSOR.match(name)
        if not m or LINEAR.get(m.group(3)) != m.group(2) or int(m.group(1)) >= dims["layers"][0]:
            raise AdapterProblem(f"tensor {name!r} is not a LoRA weight of the course base: was the adapter "
                                 f"trained on another model? {SAVE_HINT}")
        if m.group(3) not in targets:
            raise AdapterProblem(f"tensor {name!r} is not in the config's target_modules: save the adapter again")
        if t.get("dtype") not in ("F32", "F16", "BF16"):
            raise AdapterProblem(f"tensor {name!r} has dtype {t.get('dtype')!r}: expected float32/16 or bfloat16")
        fan_in, fan_out = dims[m.group(3)]
        want = [r, fan_in] if m.group(4) == "A" else [fan_out, r]
        if t.get("shape") != want:
            raise AdapterProblem(f"tensor {name!r} has shape {t.get('shape')}, the course base needs {want}: the "
                                 "adapter does not fit the course base (trained on another model, or another r?)")
        seen.add((int(m.group(1)), m.group(3), m.group(4)))
    pairs = {(layer, mod) for layer, mod, _ in seen}
    if any((layer, mod, ab) not in seen for layer, mod in pairs for ab in "AB"):
        raise AdapterProblem(f"`{ADAPTER_DIR}/{WEIGHTS_FILE}` has lora_A without lora_B (or the reverse): save "
                             "the adapter again")
    return {"r": r, "lora_alpha": alpha, "modules": sorted(targets), "mb": round(mb, 1), "tensors": len(header)}


# ------------------------------------------------------------------------------- in the sandbox: measure it
def _reply_loss(model: Any, tok: Any, conversations: Sequence[Sequence[Mapping[str, str]]]) -> float:
    """Mean cross-entropy of each conversation's last assistant reply given the turns before it."""
    import torch

    total, count = 0.0, 0
    for msgs in conversations:
        prompt = tok.apply_chat_template(list(msgs[:-1]), tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(list(msgs), tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = tok(full, add_special_tokens=False, return_tensors="pt")["input_ids"][:, :1024]
        labels = ids.clone()
        labels[:, : len(p_ids)] = -100
        if int((labels != -100).sum()) < 2:
            continue
        with torch.no_grad():
            out = model(input_ids=ids, labels=labels)
        n = int((labels[:, 1:] != -100).sum())
        total += float(out.loss) * n
        count += n
    return total / count if count else math.nan


def evaluate_adapter(job: Mapping[str, Any]) -> dict[str, Any]:
    """Load the base (``job["base"]``) plus the adapter (``job["adapter"]``) and return plain data: replies to
    ``job["prompts"]`` (greedy, no system prompt) and the loss on ``job["train"]`` with the adapter (the base's own
    loss is measured once per run, by :func:`base_reference`). Runs in the sandbox; a load failure becomes
    {"error": reason}."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..finetune.infer import eval_tokens, generate_replies

    torch.set_num_threads(int(job.get("threads", 1)))
    tok = AutoTokenizer.from_pretrained(job["base"])
    model = AutoModelForCausalLM.from_pretrained(job["base"], dtype=torch.float32).eval()
    try:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, job["adapter"], is_trainable=False).eval()
    except Exception as exc:  # noqa: BLE001 - the learner's file: its failure is the reason
        first = str(exc).splitlines()[0][:240] if str(exc) else type(exc).__name__
        return {"error": f"the adapter could not be loaded on the course base ({type(exc).__name__}: {first})"}
    tuned_loss = _reply_loss(model, tok, job["train"])
    tokens = int(job.get("max_new_tokens") or eval_tokens())  # as persona_eval (tests ask for fewer)
    replies = generate_replies(model, tok, job["prompts"], max_new_tokens=tokens)
    torch.set_num_threads(int(job.get("threads", 1)))
    return {"replies": replies, "tuned_loss": tuned_loss}


def work(job_path: str) -> int:
    """``python -m personalab.grading --adapter JOB``: evaluate, write ``job["out"]`` (JSON) and ``status``."""
    import os

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    os.environ.update({k: v for k, v in job.get("env", {}).items() if isinstance(v, str)})
    try:
        out = evaluate_adapter(job)
    except Exception as exc:  # noqa: BLE001
        out = {"error": f"the adapter could not be evaluated ({type(exc).__name__}: {str(exc)[:240]})"}
    Path(job["out"]).write_text(json.dumps(out), encoding="utf-8")
    Path(job["status"]).write_text(json.dumps({"note": None}), encoding="utf-8")
    return 0


# ------------------------------------------------------------------------------ in the grader: the verdicts
_BASE_LOCK = threading.Lock()
_BASE_CACHE: dict[str, tuple[list[str], float]] = {}
_QUALITY_CACHE: dict[str, Mapping[str, Any]] = {}


def base_reference(base_dir: Path, prompts: Sequence[str], train: Sequence[Sequence[Mapping[str, str]]]
                   ) -> tuple[list[str], float]:
    """The base model's greedy replies to ``prompts`` (no system prompt) and its loss on ``train``: what every
    adapter is compared with, measured once per grading run (here, in the grader: no learner file is involved)."""
    key = json.dumps([str(base_dir), list(prompts), [list(c) for c in train]])
    with _BASE_LOCK:
        if key not in _BASE_CACHE:
            import torch

            from ..finetune.infer import eval_tokens, generate_replies, load_model

            model, tok = load_model(base_dir, dtype=torch.float32)
            replies = generate_replies(model, tok, list(prompts), max_new_tokens=eval_tokens())  # as persona_eval
            _BASE_CACHE[key] = (replies, _reply_loss(model, tok, train))
        return _BASE_CACHE[key]


def _quality(replies: Sequence[str]) -> Mapping[str, Any]:
    """:func:`personalab.finetune.infer.reply_quality`, remembered for the base's replies (the same for everyone)."""
    from ..finetune.infer import reply_quality

    key = json.dumps(list(replies))
    with _BASE_LOCK:
        if key in _QUALITY_CACHE:
            return _QUALITY_CACHE[key]
    out = reply_quality(list(replies))
    with _BASE_LOCK:
        if len(_QUALITY_CACHE) < 4:
            _QUALITY_CACHE[key] = out
    return out


def sample(n_requests: int = SAMPLE_REQUESTS, n_train: int = SAMPLE_TRAIN) -> tuple[list[str], list[list[dict]]]:
    """The fixed held-out requests every adapter answers, and the training conversations its loss is measured on."""
    from ..finetune.examples import dataset_paths, load_examples
    from ..finetune.infer import held_out_prompts

    prompts = held_out_prompts(n_requests)
    examples, _ = load_examples(dataset_paths(verbose=False).train)
    return prompts, [ex["messages"] for ex in examples[:n_train]]


def adapter_results(exercise: Any, measured: Mapping[str, Any], base: Sequence[str],
                    my_config: Any = None, info: Mapping[str, Any] | None = None) -> dict[str, Result]:
    """Questions 2–4 from what the grader measured (``measured``: the adapter's replies, ``tuned_loss`` and the
    base's ``base_loss``; ``base``: the base model's replies to the same requests), never from the notebook."""
    from ..checks import ex04

    qs = {q.id: q for q in exercise.questions}
    out: dict[str, Result] = {}

    def q2() -> str:
        if isinstance(my_config, Mapping) and info:
            diff = [f"{k}={info[k]!r} in the adapter, {my_config.get(k)!r} in my_config" for k in ("r", "lora_alpha")
                    if my_config.get(k) != info[k]]
            if diff:
                raise Incorrect(f"the adapter was not trained with `my_config` ({'; '.join(diff)}): train again and "
                                "save the new adapter")
        return ex04.loss_verdict(measured["base_loss"], measured["tuned_loss"],
                                 what=f"the loss on {SAMPLE_TRAIN} training replies, base model → your adapter")

    replies = [str(r) for r in measured["replies"]]
    out["q2"] = qs["q2"].grade({}, check_fn=q2)
    out["q3"] = qs["q3"].grade({}, check_fn=lambda: ex04.marker_verdict(list(base), replies))
    out["q4"] = qs["q4"].grade({}, check_fn=lambda: ex04.quality_verdict(list(base), replies, score=_quality))
    return out


def drop_training(nb: Any) -> tuple[Any, list[int]]:
    """The notebook up to (not including) its first code cell that trains, less the cells that call
    ``persona_eval``: what question 1 needs, without minutes of training or generation. Returns (nb, dropped)."""
    import copy

    out = copy.deepcopy(nb)
    keep, dropped = [], []
    stop = False
    for i, cell in enumerate(out.cells):
        src = cell.get("source", "") if cell.get("cell_type") == "code" else ""
        stop = stop or bool(re.search(r"\btrain\s*\(", src))
        if stop or "persona_eval(" in src:
            dropped.append(i)
            if cell.get("cell_type") == "code":
                continue
        keep.append(cell)
    out.cells = keep
    return out, dropped


def skipped_definition(nb: Any, dropped: Sequence[int], name: str) -> str | None:
    """Why ``name`` is undefined when only a cell the grader skipped (see :func:`drop_training`) defines it."""
    from .notebooks import cell_label, defined_names

    cells = [i for i, c in enumerate(nb.cells) if c.get("cell_type") == "code" and name in defined_names(c.source)]
    if not cells or not set(cells) <= set(dropped):
        return None
    return (f"`{name}` is defined only in {cell_label(nb.cells, cells[0])}, which trains or calls persona_eval: the "
            "grader does not run those cells (it grades your saved adapter instead), so define it in a cell of its "
            "own before training, as the exercise does")


__all__ = ["ADAPTER_DIR", "MAX_ADAPTER_MB", "SAMPLE_REQUESTS", "AdapterProblem", "adapter_folder",
           "adapter_results", "base_reference", "check_adapter", "drop_training", "evaluate_adapter", "sample",
           "skipped_definition"]
