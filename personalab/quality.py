"""Is the fine-tuned model still a working assistant? Reply-quality measures under a real language model.

* :func:`perplexity` — how surprised the base model (SmolLM2-135M-Instruct on CPU) is by each reply, per token,
  optionally given the user's message as the chat prompt;
* :func:`fluent` — a verdict: perplexity under a calibrated threshold and a sane shape (not empty, no loop);
* :func:`task_facts` — whether the reply keeps the task name and the due date the user gave;
* :func:`quality_summary` — marker rate, fluent rate, task-fact rate and median perplexity of a set of replies.

The threshold is calibrated on ``data/evaluate/fluency_calibration.jsonl`` (see the README next to it):
fluent replies written by SmolLM2 itself, short and non-English fluent replies, and word salad built from real
words. :func:`calibration` re-checks it.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .config import DATA_DIR
from .errors import InputError

CALIBRATION_PATH = DATA_DIR / "evaluate" / "fluency_calibration.jsonl"
#: Replies (and contexts) longer than this many tokens are cut: the verdict needs the start, not the whole.
MAX_TOKENS = 256
#: Per-token perplexity (given the user's message) at or above which a reply is not fluent. On the calibration
#: set every cut from 150 to 350 classifies >= 97 % right (best 268: 98 %); fluent median 5, salad median 2500.
PPL_THRESHOLD = 250.0
#: A reply that says one word or phrase this many times in a row is a loop ("a a a a").
LOOP_REPEATS = 4


Context = str | Sequence[Mapping[str, str]] | None


# ------------------------------------------------------------------------------------------------ perplexity
@cache
def load_scorer(model_dir_or_name: str) -> tuple[Any, Any]:
    """``(tokenizer, model)`` for a causal LM folder or cached Hub name: float32, CPU, eval mode; once per process."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir_or_name)
        model = AutoModelForCausalLM.from_pretrained(model_dir_or_name, dtype=torch.float32)
    except OSError as exc:
        raise InputError(f"cannot load a language model from {model_dir_or_name!r} ({exc})", field="model_dir",
                         fix="pass the folder of a transformers checkpoint, e.g. personalab.smollm.convert_smollm2()"
                         ) from None
    return tokenizer, model.eval()


def _messages(context: Context) -> list[dict[str, str]]:
    if context is None:
        return []
    if isinstance(context, str):
        return [{"role": "user", "content": context}]
    return [dict(m) for m in context]


def _encode(tokenizer: Any, reply: str, context: Context) -> tuple[list[int], int]:
    """Token ids of the prompt + reply and where the reply starts. Without a context the prompt is the bare
    assistant header, so the reply's first token is scored too; with one, the chat template renders it."""
    messages = _messages(context)
    if messages and tokenizer.chat_template:
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        prompt = "<|im_start|>assistant\n" if tokenizer.chat_template else (tokenizer.bos_token or "")
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids[-MAX_TOKENS:]
    reply_ids = tokenizer(reply, add_special_tokens=False).input_ids[:MAX_TOKENS]
    return prompt_ids + reply_ids, len(prompt_ids)


def _batch_nll(model: Any, batch: list[tuple[list[int], int]], pad_id: int) -> list[float]:
    """Summed negative log-likelihood of each sequence's reply tokens (right-padded, one forward pass)."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    scored = torch.zeros((len(batch), width), dtype=torch.bool)  # positions whose *next* token is a reply token
    for i, (seq, start) in enumerate(batch):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        scored[i, max(start - 1, 0) : len(seq) - 1] = True
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    rows, cols = scored.nonzero(as_tuple=True)
    logits = model.get_output_embeddings()(hidden[rows, cols]).float()  # the LM head on reply positions only
    nll = torch.nn.functional.cross_entropy(logits, ids[rows, cols + 1], reduction="none")
    return torch.zeros(len(batch)).index_add_(0, rows, nll).tolist()


def reply_nll(replies: Sequence[str], model_dir_or_name: str | Path, *, contexts: Sequence[Context] | None = None,
              batch_size: int = 16) -> list[tuple[float, int]]:
    """``(summed NLL in nats, reply tokens)`` per reply; ``(inf, 0)`` for an empty reply."""
    import torch

    if contexts is not None and len(contexts) != len(replies):
        raise InputError(f"{len(contexts)} contexts for {len(replies)} replies", field="contexts",
                         fix="pass one context (the user's message, or None) per reply")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}", field="batch_size", fix="use e.g. 16")
    out: list[tuple[float, int]] = [(math.inf, 0)] * len(replies)
    if not any(r.strip() for r in replies):
        return out  # nothing to score: no model load
    tokenizer, model = load_scorer(str(model_dir_or_name))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    todo = []
    for i, reply in enumerate(replies):
        if reply.strip():
            seq, start = _encode(tokenizer, reply, contexts[i] if contexts is not None else None)
            todo.append((i, seq, start))
    todo.sort(key=lambda t: len(t[1]))  # similar lengths share a batch: little padding
    with torch.inference_mode():
        for b in range(0, len(todo), batch_size):
            chunk = todo[b : b + batch_size]
            nlls = _batch_nll(model, [(s, p) for _, s, p in chunk], pad_id)
            for (i, seq, start), nll in zip(chunk, nlls, strict=True):
                out[i] = (nll, len(seq) - start)
    return out


def perplexity(replies: Sequence[str], model_dir_or_name: str | Path, *, contexts: Sequence[Context] | None = None,
               batch_size: int = 16) -> list[float]:
    """Per-token perplexity of each reply under the model (``inf`` for an empty reply).

    ``contexts`` (optional, one per reply): the user's message, or a list of chat messages, rendered with the
    model's chat template as the prompt; the reply is scored as the assistant's turn, its own tokens only.
    """
    return [math.exp(min(nll / n, 700.0)) if n else math.inf  # 700: exp() stays finite for any reply
            for nll, n in reply_nll(replies, model_dir_or_name, contexts=contexts, batch_size=batch_size)]


# ------------------------------------------------------------------------------------------------ fluency
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def runs(text: str, max_n: int = 12) -> dict[str, int]:
    """For every word n-gram (n = 1..max_n words and punctuation marks) said back to back at least twice: the
    most times in a row it occurs."""
    toks = _TOKEN.findall(text.lower())
    out: dict[str, int] = {}
    for n in range(1, max_n + 1):
        for start in range(n):  # every phase of the n-gram grid
            run = 1
            for i in range(start + n, len(toks) - n + 1, n):
                run = run + 1 if toks[i : i + n] == toks[i - n : i] else 1
                gram = toks[i : i + n]
                if run > 1 and any(t[0].isalnum() for t in gram):
                    key = " ".join(gram)
                    out[key] = max(out.get(key, 0), run)
    return out


def find_loop(text: str, repeats: int = LOOP_REPEATS) -> str | None:
    """The worst loop in ``text``: a word or phrase ``repeats`` times in a row ("a a a a"), a phrase of three
    or more tokens three times in a row ("Great choice! Great choice! Great choice!"); None when there is none.
    A sentence that comes round again after others is no loop: SmolLM2's own fluent replies do that often."""
    found = [(k, g) for g, k in runs(text).items() if k >= repeats or (k >= 3 and len(g.split()) >= 3)]
    if not found:
        return None
    k, gram = max(found, key=lambda kg: (kg[0] * len(kg[1].split()), kg[0]))
    return f"{gram!r} {k} times in a row"


@dataclass(frozen=True)
class Verdict:
    """Whether a reply reads as fluent text, and why not."""

    ok: bool
    reason: str
    ppl: float

    def __bool__(self) -> bool:
        return self.ok


def fluent(reply: str, ppl: float, *, threshold: float = PPL_THRESHOLD, loop_repeats: int = LOOP_REPEATS) -> Verdict:
    """Fluent when the reply is not empty, loops no n-gram ``loop_repeats`` times in a row, and its perplexity
    (from :func:`perplexity`, same settings as the calibration) is below ``threshold``."""
    if not reply.strip():
        return Verdict(False, "empty", ppl)
    loop = find_loop(reply, loop_repeats)
    if loop:
        return Verdict(False, f"loop: {loop}", ppl)
    if not ppl < threshold:
        return Verdict(False, f"perplexity {ppl:.0f} >= {threshold:.0f}", ppl)
    return Verdict(True, "fluent", ppl)


# ------------------------------------------------------------------------------------------------ task facts
#: Words a fact may gain, lose or swap in a reply ("the end of the sprint" ~ "end of this sprint").
_FILLER = frozenset("the a an my your our this that these those his her their its of for to at on by in".split())
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_ORDINAL_WORDS = {w: str(i) for i, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split())}


def fact_words(text: str) -> list[str]:
    """Normalised words of a text: lower case, quotes and possessive 's dropped, ordinals as digits
    ("2nd", "second" -> "2"), "2 June" / "the 2nd of June" -> "june 2"."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    t = re.sub(r"'s\b", "", t)
    t = re.sub(r"\b(\d{1,2})(?:st|nd|rd|th)\b", r"\1", t)
    t = re.sub(r"\b(\d{1,2})(?: of)? (" + _MONTHS + r")\b", r"\2 \1", t)
    return [_ORDINAL_WORDS.get(w, w) for w in re.findall(r"[a-z0-9]+", t)]


def same_word(a: str, b: str) -> bool:
    """Equal, or the same stem for words of 4+ letters ("submit" ~ "submitted", "organise" ~ "organize")."""
    if a == b:
        return True
    if not (a.isalpha() and b.isalpha()) or min(len(a), len(b)) < 4:
        return False
    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return common >= max(4, min(len(a), len(b)) - 2)


def mentions(reply: str, fact: str, *, drop_verb: bool = False) -> bool:
    """Whether ``reply`` states ``fact``: every word of it that is not filler ("the", "of", "for", ...) occurs
    in the reply within a window a little wider than the fact, in any order. ``drop_verb``: the fact's first
    word may be missing when others remain (a task "submit the timesheet" is kept by "the timesheet is done")."""
    need = [w for w in fact_words(fact) if w not in _FILLER] or fact_words(fact)
    if not need:
        return True
    have = fact_words(reply)
    options = [need, need[1:]] if drop_verb and len(need) > 1 else [need]
    for words in options:
        width = 2 * len(words) + 2
        for start, first in enumerate(have):
            window = have[start : start + width]
            if any(same_word(first, w) for w in words) and all(any(same_word(h, w) for h in window) for w in words):
                return True
    return False


def task_facts(reply: str, slots: Mapping[str, Any]) -> dict[str, bool | None]:
    """Whether ``reply`` keeps the task name and the due date of a request's slots (``None``: the request gave
    none). A reschedule's new date (``slots['new']``) counts as its due date. ``all``: every given fact kept."""
    facts = {"task": slots.get("task"), "due": slots.get("due") or slots.get("new")}
    out: dict[str, bool | None] = {k: (mentions(reply, v, drop_verb=k == "task") if isinstance(v, str) and v.strip()
                                       else None) for k, v in facts.items()}
    given = [v for v in out.values() if v is not None]
    out["all"] = all(given) if given else None
    return out


# ------------------------------------------------------------------------------------------------ summary
def _first_turn(request: Any) -> tuple[str, Mapping[str, Any]]:
    """The first user message and its slots of a :class:`~personalab.dataset.Request` or its dict."""
    turn = request["turns"][0] if isinstance(request, Mapping) else request.turns[0]
    if isinstance(turn, Mapping):
        return turn["user"], turn.get("slots") or {}
    return turn.user, turn.slots or {}


def score_replies(replies: Sequence[str], requests: Sequence[Any], model_dir: str | Path, *,
                  spec: Any = None, threshold: float = PPL_THRESHOLD) -> list[dict[str, Any]]:
    """One row per reply: perplexity (given the request's first user message), fluent verdict and reason,
    marker, task facts. ``replies[i]`` answers the first turn of ``requests[i]``; ``spec``: TaskMaster."""
    from .persona import has_marker, taskmaster

    if len(replies) != len(requests):
        raise InputError(f"{len(replies)} replies for {len(requests)} requests", field="replies",
                         fix="pass one reply per request, in the same order")
    spec = spec if spec is not None else taskmaster()
    turns = [_first_turn(r) for r in requests]
    ppls = perplexity(replies, model_dir, contexts=[user for user, _ in turns])
    rows = []
    for reply, (_, slots), ppl in zip(replies, turns, ppls, strict=True):
        verdict = fluent(reply, ppl, threshold=threshold)
        rows.append({"reply": reply, "ppl": ppl, "fluent": verdict.ok, "reason": verdict.reason,
                     "marker": has_marker(reply, spec), "facts": task_facts(reply, slots)})
    return rows


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | int]:
    """Marker, fluent and task-fact rates (the last over the requests that give a task or due date;
    ``task_fact_n`` of them), median perplexity and ``n`` of :func:`score_replies` rows."""
    facts = [r["facts"]["all"] for r in rows if r["facts"]["all"] is not None]
    n = len(rows)
    return {
        "n": n,
        "marker_rate": sum(r["marker"] for r in rows) / n if n else 0.0,
        "fluent_rate": sum(r["fluent"] for r in rows) / n if n else 0.0,
        "task_fact_rate": sum(facts) / len(facts) if facts else math.nan,
        "task_fact_n": len(facts),
        "median_perplexity": statistics.median(r["ppl"] for r in rows) if n else math.nan,
    }


def quality_summary(replies: Sequence[str], requests: Sequence[Any], model_dir: str | Path, *,
                    spec: Any = None, threshold: float = PPL_THRESHOLD) -> dict[str, float | int]:
    """:func:`summarize` of the replies to ``requests`` (see :func:`score_replies`)."""
    return summarize(score_replies(replies, requests, model_dir, spec=spec, threshold=threshold))


# ------------------------------------------------------------------------------------------------ calibration
def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random positive item scores higher than a random negative one (ties count half)."""
    if not positive or not negative:
        return math.nan
    wins = sum((p > q) + 0.5 * (p == q) for p in positive for q in negative)
    return wins / (len(positive) * len(negative))


def load_calibration(path: str | Path = CALIBRATION_PATH) -> list[dict[str, Any]]:
    """The calibration rows: ``text``, ``fluent`` (bool), ``kind``, ``source`` and the ``user`` message."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"text", "fluent", "kind", "source", "user"} - set(row)
        if missing or not isinstance(row.get("fluent"), bool):
            raise InputError(f"not a calibration row (missing {sorted(missing)} or a non-bool 'fluent')", path=path,
                             line=n, fix="see data/evaluate/README.md for the fields")
        rows.append(row)
    return rows


def best_threshold(fluent_ppl: Sequence[float], salad_ppl: Sequence[float]) -> tuple[float, float]:
    """The perplexity cut that classifies most rows right (fluent below it) and that accuracy."""
    cuts = sorted({*fluent_ppl, *salad_ppl} - {math.inf})
    n = len(fluent_ppl) + len(salad_ppl)
    best = (math.inf, -1.0)
    for cut in cuts:
        acc = (sum(p < cut for p in fluent_ppl) + sum(p >= cut for p in salad_ppl)) / n
        if acc > best[1]:
            best = (cut, acc)
    return best


def calibration(model_dir: str | Path, *, path: str | Path = CALIBRATION_PATH, contexts: bool = True,
                threshold: float = PPL_THRESHOLD) -> dict[str, Any]:
    """Re-check the threshold on the calibration set: perplexity AUC (fluent vs not, loops excluded: the shape
    check catches those), the best cut and its accuracy, the :func:`fluent` verdict's accuracy at
    ``threshold`` on every row, medians and n per kind. ``contexts``: condition on each row's user message."""
    rows = load_calibration(path)
    texts = [r["text"] for r in rows]
    ppl = perplexity(texts, model_dir, contexts=[r["user"] for r in rows] if contexts else None)
    ok = [fluent(t, p, threshold=threshold).ok for t, p in zip(texts, ppl, strict=True)]
    shaped = [find_loop(t) is None and bool(t.strip()) for t in texts]
    pos = [p for r, p, s in zip(rows, ppl, shaped, strict=True) if r["fluent"] and s]
    neg = [p for r, p, s in zip(rows, ppl, shaped, strict=True) if not r["fluent"] and s]
    kinds: dict[str, list[tuple[float, bool]]] = {}
    for r, p, o in zip(rows, ppl, ok, strict=True):
        kinds.setdefault(r["kind"], []).append((p, o))
    cut, cut_acc = best_threshold(pos, neg)
    return {
        "n": len(rows),
        "auc": auc([-p for p in pos], [-p for p in neg]),
        "best_threshold": cut,
        "best_accuracy": cut_acc,
        "threshold": threshold,
        "accuracy": sum(o == r["fluent"] for o, r in zip(ok, rows, strict=True)) / len(rows),
        "median_fluent": statistics.median(pos),
        "median_not_fluent": statistics.median(neg),
        "kinds": {k: {"n": len(v), "median": statistics.median(x for x, _ in v), "fluent": sum(o for _, o in v)}
                  for k, v in kinds.items()},
        "wrong": [(r["kind"], r["text"], round(p, 1))
                  for r, p, o in zip(rows, ppl, ok, strict=True) if o != r["fluent"]],
    }
