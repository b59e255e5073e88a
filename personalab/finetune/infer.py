"""Inference for lesson 04: load a base or fine-tuned model, answer held-out requests, measure the persona.

``persona_eval`` answers the first user message of every held-out request (the eval split of
:func:`personalab.dataset.load_requests`) **without a system prompt** and returns the replies with their
persona-marker rate: the number that shows whether the persona moved into the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..persona import PersonaSpec, has_marker, marker_rate, taskmaster


def resolve_model_path(name: str | Path) -> str:
    """A named base model (``"smollm2"``, ``"embedded"``) or a folder → its folder; a Hub id as it is."""
    from ..models import local_path

    return local_path(name)


def load_tokenizer(name: str | Path) -> Any:
    """The tokenizer (with its chat template) of a model folder, Hub id or named base model (``"smollm2"``)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(name))


def load_model(path: str | Path, *, adapter: str | Path | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode; with ``adapter``, the LoRA adapter on top of the base model at ``path``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .. import config
    from .config import hf_inference_kwargs

    path = resolve_model_path(path)
    cuda = config.cuda_available()
    tok = AutoTokenizer.from_pretrained(adapter or path)
    dtype = dtype or ((torch.bfloat16 if config.cuda_bf16() else torch.float16) if cuda else torch.float32)
    model = AutoModelForCausalLM.from_pretrained(path, **hf_inference_kwargs(cuda=cuda, dtype=dtype))
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    return model.eval(), tok


#: Held-out requests lesson 04 and exercise 04 ask on a CPU (all of them on a GPU): three evaluations of 48
#: replies of up to 64 tokens took 142 s on 2 cores, every request over twice as long. 32 keep the gaps the lesson
#: shows (markers 0 % vs 100 %, task facts 13 % vs 65 %) far beyond what sampling 32 can move.
CPU_HELDOUT = 32
#: Eval conversations whose loss lesson 04 measures before and after training on a CPU (all 72 on a GPU): the
#: two measurements of all 72 took about 50 s of the training cell on 2 cores.
CPU_EVAL = 32
#: Tokens per held-out reply, the same caps as lesson 05's suites (``evaluate.CPU_REPLY_TOKENS`` and
#: ``evaluate.GPU_REPLY_TOKENS``, kept equal by tests/test_reply_cap.py): 48 on a CPU (the base model's replies run to
#: the limit, and two evaluations of 32 of them at 64 tokens took 70 s of the cold course), 72 on a GPU (48 cut off
#: a real model's closing next step, which the marker and task-fact checks would then judge).
CPU_EVAL_TOKENS, GPU_EVAL_TOKENS = 48, 72


def eval_tokens(cpu: bool | None = None) -> int:
    """Tokens per reply :func:`persona_eval` generates by default: :data:`CPU_EVAL_TOKENS` on a CPU, else
    :data:`GPU_EVAL_TOKENS`."""
    from .. import config

    cpu = not config.cuda_available() if cpu is None else cpu
    return CPU_EVAL_TOKENS if cpu else GPU_EVAL_TOKENS


def held_out_prompts(n: int | None = None) -> list[str]:
    """The first user message of each held-out (eval split) request, in file order: the first ``n``, by default
    :data:`CPU_HELDOUT` on a CPU and all of them on a GPU."""
    from .. import config
    from ..dataset import load_requests

    prompts = [r.turns[0].user for r in load_requests("eval")]
    if n is None and not config.cuda_available():
        n = CPU_HELDOUT
    return prompts[:n] if n is not None else prompts


def eval_sample(examples: Sequence[dict[str, Any]], n: int | None = None) -> list[dict[str, Any]]:
    """The eval conversations whose loss a run measures: the first ``n``, by default :data:`CPU_EVAL` on a CPU and
    all of them on a GPU."""
    from .. import config

    if n is None and not config.cuda_available():
        n = CPU_EVAL
    return list(examples)[:n] if n is not None else list(examples)


def generate_replies(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    system: str | None = None,
    max_new_tokens: int = 48,
    batch_size: int = 32,
    progress: bool = False,
) -> list[str]:
    """Greedy replies to single-turn ``prompts`` (with ``system`` as system prompt when given), batched."""
    import torch
    from tqdm.auto import tqdm

    from .config import generate_kwargs
    from .machine import auto_threads

    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    threads = torch.get_num_threads()
    if device.type == "cpu":  # a tiny model generates faster on one thread (no synchronisation between threads)
        small = sum(p.numel() for p in model.parameters()) < 50_000_000
        torch.set_num_threads(1 if small else auto_threads(threads))
    out: list[str] = []
    try:
        for i in tqdm(range(0, len(prompts), batch_size), desc="generating", unit="batch", disable=not progress):
            chats = [([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p}]
                     for p in prompts[i : i + batch_size]]
            texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                gen = model.generate(**enc, **generate_kwargs(max_new_tokens=max_new_tokens,
                                                              pad_token_id=tokenizer.pad_token_id))
            new = gen[:, enc["input_ids"].shape[1] :]
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
        torch.set_num_threads(threads)
    return out


def persona_eval(
    model: Any,
    tokenizer: Any = None,
    *,
    prompts: Sequence[str] | None = None,
    spec: PersonaSpec | None = None,
    system: str | None = None,
    label: str = "",
    max_new_tokens: int | None = None,
    progress: bool = True,
    quality: bool = True,
) -> dict[str, Any]:
    """Persona-marker rate of ``model`` on held-out requests (no system prompt unless ``system`` is given), and
    whether it is still a working assistant: fluency and task facts (:mod:`personalab.quality`), judged
    under the profile's base model, on the held-out requests (``quality=False`` or own ``prompts``: skipped).

    ``model`` is a loaded model (with ``tokenizer``) or a model folder / named base model. Returns plain data:
    ``label``, ``system_prompt``, ``requests``, ``replies``, ``has_marker`` per reply, ``rate`` and ``n``; with
    quality also ``fluent``, ``fluency_reason``, ``perplexity``, ``task_facts`` per reply and ``fluent_rate``,
    ``task_fact_rate``, ``median_perplexity``.
    """
    if tokenizer is None:
        model, tokenizer = load_model(model)
    if max_new_tokens is None:
        max_new_tokens = eval_tokens()
    spec = spec or taskmaster()
    own = prompts is not None
    prompts = list(prompts) if own else held_out_prompts()
    replies = generate_replies(model, tokenizer, prompts, system=system, max_new_tokens=max_new_tokens,
                               progress=progress)
    out = {
        "label": label,
        "system_prompt": system,
        "requests": prompts,
        "replies": replies,
        "has_marker": [has_marker(r, spec) for r in replies],
        "rate": marker_rate(replies, spec),
        "n": len(replies),
    }
    if quality and not own:
        out |= reply_quality(replies, spec)
    return out


def reply_quality(replies: Sequence[str], spec: PersonaSpec | None = None) -> dict[str, Any]:
    """Fluency and task facts of replies to the held-out requests, judged under the profile's base model."""
    from .. import config
    from ..dataset import load_requests
    from ..models import model_dir
    from ..quality import score_replies, summarize

    rows = score_replies(replies, load_requests("eval")[: len(replies)], model_dir(config.base_model()), spec=spec)
    return {"fluent": [r["fluent"] for r in rows], "fluency_reason": [r["reason"] for r in rows],
            "perplexity": [r["ppl"] for r in rows], "task_facts": [r["facts"]["all"] for r in rows],
            **summarize(rows)}


def quality_table(evals: Sequence[dict[str, Any]]) -> str:
    """One line per evaluation: marker, fluent and task-fact rates, median perplexity, n."""
    lines = [f"{'':26} {'markers':>8} {'fluent':>7} {'task facts':>10} {'median ppl':>10} {'n':>4}"]
    for e in evals:
        fl, tf, pp = e.get("fluent_rate"), e.get("task_fact_rate"), e.get("median_perplexity")
        lines.append(f"{e.get('label', '')[:26]:26} {e['rate']:8.0%} {_pct(fl):>7} {_pct(tf):>10} "
                     f"{'' if pp is None else f'{pp:.1f}':>10} {e['n']:4}")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "" if x is None or x != x else f"{x:.0%}"


def compare_answers(before: dict[str, Any], after: dict[str, Any], k: int = 5) -> str:
    """The first ``k`` requests with both replies, as text (✓ marks a reply with a persona marker)."""
    lines = []
    for q, a, b, ma, mb in list(zip(before["requests"], before["replies"], after["replies"], before["has_marker"],
                                    after["has_marker"], strict=True))[:k]:
        lines += [f"user: {q}", f"  {'✓' if ma else ' '} before: {a}", f"  {'✓' if mb else ' '} after:  {b}", ""]
    lines.append(f"persona-marker rate without a system prompt: {before['rate']:.0%} before, {after['rate']:.0%} after "
                 f"({before['n']} held-out requests)")
    return "\n".join(lines)


def plot_rates(evals: Sequence[dict[str, Any]], ax: Any = None) -> Any:
    """Bar chart of persona-marker rates (one bar per evaluation, labelled by its ``label``)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    labels = [e.get("label") or f"model {i + 1}" for i, e in enumerate(evals)]
    bars = ax.bar(labels, [e["rate"] for e in evals], color=["#9e9e9e", "#2e7d32", "#1565c0", "#b26a00"][: len(evals)])
    ax.bar_label(bars, labels=[f"{e['rate']:.0%}" for e in evals])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("replies with a persona marker")
    ax.set_title(f"held-out requests, no system prompt (n={evals[0]['n']})" if evals else "")
    return ax
