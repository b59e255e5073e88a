"""Build the embedded chat model: a tiny Llama trained from scratch on CPU, offline and deterministically.

``build()`` writes a normal Hugging Face checkpoint (model, tokenizer, generation config) plus
``build_info.json``; ``build_timing.json`` holds the wall time and is the only file that differs between
two builds with the same seed on the same machine.

Builds differ slightly *between* machines (PyTorch picks other CPU kernels), so the course ships one
reference build in ``personalab/embedded/reference/`` and every machine serves those same weights.
Its ``build_info.json`` records :func:`source_hash` of the builder; a test fails when the builder changes
without ``personalab model build --reference``.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..config import models_dir
from ..io import atomic_write_json

#: Bump when the corpus, tokenizer or training recipe changes: ``ensure_built`` rebuilds older models.
BUILDER_VERSION = "embedded-v2.1"
EMBEDDED_DIR_NAME = "embedded-v1"
DEFAULT_STEPS = 600
INFO_FILE = "build_info.json"
TIMING_FILE = "build_timing.json"

#: Training recipe (hidden 128, 2 layers: ~0.5M parameters).
RECIPE: dict[str, Any] = {
    "corpus_size": 6000,
    "vocab_size": 2048,
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 1024,
    "max_len": 512,
    "batch_size": 32,
    "lr": 3e-3,
    "warmup": 30,
    "min_lr_ratio": 0.1,
    "weight_decay": 0.01,
    "threads": 2,
}
GENERATION = {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 96}


#: The shipped reference build (package data), the same weights on every machine.
REFERENCE_DIR = Path(__file__).resolve().with_name("reference")
#: The files whose contents decide what a build produces (besides the library versions it records).
SOURCE_FILES = ("embedded/build.py", "embedded/corpus.py", "embedded/tokenizer.py", "persona.py")


def source_hash() -> str:
    """sha256 of the builder's source files (line endings normalised), recorded in every build."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for name in SOURCE_FILES:
        h.update(name.encode() + b"\0" + (root / name).read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


def rebuild_dir() -> Path:
    """Where ``personalab model build`` writes a fresh build: ``models_dir() / EMBEDDED_DIR_NAME``."""
    return models_dir() / EMBEDDED_DIR_NAME


def default_model_dir() -> Path:
    """The model the course serves: the shipped reference build (a local rebuild only if it is missing)."""
    return REFERENCE_DIR if is_current(REFERENCE_DIR) else rebuild_dir()


def read_build_info(path: str | Path) -> dict[str, Any] | None:
    """The model's ``build_info.json`` or None when missing or unreadable."""
    import json

    try:
        return json.loads((Path(path) / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(path: str | Path) -> bool:
    """True when ``path`` holds a complete model made by this builder version."""
    info = read_build_info(path)
    return bool(info) and info.get("builder") == BUILDER_VERSION and (Path(path) / "model.safetensors").exists()


def ensure_built(path: str | Path | None = None, *, progress: bool = True) -> Path:
    """Return the model directory, building it first if missing or made by another builder version."""
    out = Path(path) if path is not None else default_model_dir()
    if not is_current(out):
        build(out, progress=progress)
    return out


def _encode(
    tokenizer: Any, conversations: list[list[dict[str, str]]], max_len: int
) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels (-100 outside assistant content) per conversation, truncated to ``max_len``."""
    from .tokenizer import render_chat

    rendered = [render_chat(c) for c in conversations]
    enc = tokenizer([t for t, _ in rendered], return_offsets_mapping=True, add_special_tokens=False)
    rows = []
    for (_, spans), ids, offs in zip(rendered, enc["input_ids"], enc["offset_mapping"], strict=True):
        labels = [
            tid if any(a <= s and e <= b for a, b in spans) else -100 for tid, (s, e) in zip(ids, offs, strict=True)
        ]
        rows.append((ids[:max_len], labels[:max_len]))
    return rows


def _batches(
    rows: list[tuple[list[int], list[int]]], batch_size: int, steps: int, rng: random.Random
) -> list[list[int]]:
    """Index batches for ``steps`` steps; similar lengths are grouped to limit padding."""
    out: list[list[int]] = []
    while len(out) < steps:
        idx = list(range(len(rows)))
        rng.shuffle(idx)
        chunk = batch_size * 16
        epoch: list[list[int]] = []
        for c in range(0, len(idx), chunk):
            group = sorted(idx[c : c + chunk], key=lambda i: len(rows[i][0]))
            epoch += [group[b : b + batch_size] for b in range(0, len(group) - batch_size + 1, batch_size)]
        rng.shuffle(epoch)
        out += epoch
    return out[:steps]


def _collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    n = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _assistant_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean next-token loss over assistant tokens; the LM head runs only where a label exists (faster)."""
    import torch

    hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    target = batch["labels"][:, 1:]
    keep = target != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), target[keep])


def _lr_factor(step: int, steps: int, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build(out_dir: str | Path | None = None, *, seed: int = 0, steps: int | None = None, progress: bool = True) -> Path:
    """Train the embedded model and save it to ``out_dir`` (default :func:`default_model_dir`).

    Same ``seed`` and ``steps`` on the same machine give byte-identical files (except ``build_timing.json``).
    The model is written to a temporary folder first and renamed into place, so it is never half written.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from .corpus import build_corpus, corpus_text
    from .tokenizer import IM_END, train_tokenizer

    out = Path(out_dir) if out_dir is not None else default_model_dir()
    steps = DEFAULT_STEPS if steps is None else steps
    r = RECIPE
    t0 = time.perf_counter()

    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(r["threads"])
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        corpus = build_corpus(r["corpus_size"], seed=seed)
        tokenizer = train_tokenizer(corpus_text(corpus), r["vocab_size"])
        rows = _encode(tokenizer, corpus, r["max_len"])
        eos_id, pad_id = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.pad_token_id

        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=r["hidden_size"],
            intermediate_size=r["intermediate_size"],
            num_hidden_layers=r["num_hidden_layers"],
            num_attention_heads=r["num_attention_heads"],
            num_key_value_heads=r["num_attention_heads"],
            max_position_embeddings=r["max_position_embeddings"],
            tie_word_embeddings=True,
            bos_token_id=None,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )
        model = LlamaForCausalLM(config)
        n_params = sum(p.numel() for p in model.parameters())
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": r["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=r["lr"],
            betas=(0.9, 0.95),
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps, r["warmup"], r["min_lr_ratio"]))
        batches = _batches(rows, r["batch_size"], steps, random.Random(seed))
        model.train()
        losses: list[float] = []
        bar = tqdm(batches, desc="building embedded model", unit="step", disable=not progress)
        for batch in bar:
            loss = _assistant_loss(model, _collate([rows[i] for i in batch], pad_id))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        model.eval()
        final_loss = sum(losses[-20:]) / len(losses[-20:]) if losses else float("nan")

        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        tmp.chmod(0o755)  # mkdtemp makes it private; models are shared read-only
        try:
            model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, **GENERATION)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            atomic_write_json(
                tmp / INFO_FILE,
                {
                    "builder": BUILDER_VERSION,
                    "source_sha256": source_hash(),
                    "seed": seed,
                    "steps": steps,
                    "final_loss": round(final_loss, 4),
                    "params": n_params,
                    "vocab_size": len(tokenizer),
                    "corpus_conversations": len(corpus),
                    "recipe": r,
                    "torch": torch.__version__,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "transformers": _dist_version("transformers"),
                    "tokenizers": _dist_version("tokenizers"),
                },
            )
            atomic_write_json(tmp / TIMING_FILE, {"wall_s": round(time.perf_counter() - t0, 2)})
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)
    return out


def _dist_version(dist: str) -> str:
    import importlib.metadata as md

    return md.version(dist)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` is swapped out first and then removed."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
