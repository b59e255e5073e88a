"""Validate a chat fine-tuning dataset (JSONL) and report every problem with its line and field.

Format checks follow OpenAI's chat fine-tuning data-preparation recipe (cookbook "Data preparation and
analysis for chat model fine-tuning"): a line that is not a JSON object, no ``messages`` list, unknown
keys, unrecognised roles, missing or empty content, no assistant message. On top: persona checks (a
marker in every example, no avoided phrase), token length against ``max_seq_length``, exact and near
duplicates, and leakage of eval conversations into training.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..persona import PersonaSpec, has_marker, uses_avoided
from .counting import TokenCounter

#: Keys a line may have (OpenAI also accepts tool definitions next to the messages).
TOP_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")
#: Keys a message may have (the cookbook's list, plus the tool-calling fields of the current API).
MESSAGE_KEYS = ("role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id")
ROLES = ("system", "user", "assistant", "function", "tool")

#: Every problem kind: what it means and how to fix it.
KINDS: dict[str, tuple[str, str]] = {
    "json": ("line is not valid JSON", "write one JSON object per line; check quotes, commas and brackets"),
    "data_type": ("line is not a JSON object", 'wrap it as {"messages": [...]}'),
    "missing_messages_list": ("no 'messages' list", 'put the conversation in a list under "messages"'),
    "unknown_key": ("unknown key on the line", "keep only 'messages' (move metadata to a separate file)"),
    "message_not_dict": ("a message is not a JSON object", 'write each message as {"role": ..., "content": ...}'),
    "message_missing_key": ("a message lacks 'role' or 'content'", "give every message a role and a content"),
    "message_unrecognized_key": ("a message has a key OpenAI does not accept", f"keep only {', '.join(MESSAGE_KEYS)}"),
    "unrecognized_role": ("unrecognised role", f"use one of {', '.join(ROLES)}"),
    "missing_content": ("content is empty or not text", "write the message text as a non-empty string"),
    "bad_weight": ("weight must be 0 or 1, and only on assistant messages", "use 0 or 1 on assistant messages"),
    "example_missing_assistant_message": ("no assistant message", "add the reply the model should learn"),
    "persona_marker_missing": ("no assistant message carries a persona marker",
                               "let at least one reply use the persona's 'use' vocabulary"),
    "avoided_vocabulary": ("a reply uses a phrase the persona avoids", "rewrite the reply without that phrase"),
    "too_long": ("example longer than max_seq_length", "shorten it or split it (it would be truncated in training)"),
    "duplicate": ("exact duplicate of an earlier example", "delete the repeated line"),
    "near_duplicate": ("near duplicate of an earlier example", "delete it or make it genuinely different"),
    "eval_leak": ("training example repeats an eval conversation", "delete it from training: eval must stay unseen"),
    "too_few_examples": ("not enough examples", "add examples (OpenAI requires at least 10)"),
}


@dataclass
class Problem:
    """One problem: where (line, field), what kind, and a message with the fix."""

    kind: str
    line: int | None
    field: str | None
    message: str
    fix: str

    def render(self, path: str | None = None) -> str:
        err = InputError(self.message, path=path, line=self.line, field=self.field, fix=self.fix)
        return f"[{self.kind}] {err}"


@dataclass
class ValidationReport:
    """The result of :func:`validate_file`: problems, counts and token lengths of the good examples."""

    path: str | None
    n_lines: int
    n_examples: int
    problems: list[Problem] = field(default_factory=list)
    tokenizer: str | None = None
    lengths: list[int] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def lines(self, kind: str) -> list[int | None]:
        return [p.line for p in self.problems if p.kind == kind]

    def format(self, limit: int | None = 50) -> str:
        head = (f"{self.path or '<dataset>'}: {self.n_examples} well-formed example(s) in {self.n_lines} line(s); "
                + ("no problems" if self.ok else f"{len(self.problems)} problem(s): "
                   + ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind().items()))))
        shown = self.problems if limit is None else self.problems[:limit]
        body = [p.render(self.path) for p in shown]
        if limit is not None and len(self.problems) > limit:
            body.append(f"... and {len(self.problems) - limit} more")
        return "\n".join([head, *body])

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "n_lines": self.n_lines, "n_examples": self.n_examples, "ok": self.ok,
                "by_kind": self.by_kind(), "tokenizer": self.tokenizer,
                "problems": [asdict(p) for p in self.problems]}


def _problem(kind: str, line: int | None, fld: str | None, detail: str | None = None) -> Problem:
    what, fix = KINDS[kind]
    return Problem(kind, line, fld, f"{what}: {detail}" if detail else what, fix)


# --------------------------------------------------------------------------------------- format checks
def check_example(obj: Any, line: int | None = None) -> list[Problem]:
    """The cookbook's format checks for one parsed line."""
    if not isinstance(obj, dict):
        return [_problem("data_type", line, None, f"got {type(obj).__name__}")]
    out = [_problem("unknown_key", line, k) for k in obj if k not in TOP_KEYS]
    messages = obj.get("messages")
    if not messages or not isinstance(messages, list):
        return out + [_problem("missing_messages_list", line, "messages",
                               "missing" if messages is None else f"got {type(messages).__name__}"
                               if not isinstance(messages, list) else "empty list")]
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            out.append(_problem("message_not_dict", line, where, f"got {type(m).__name__}"))
            continue
        missing = [k for k in ("role", "content") if k not in m]
        if missing:
            out.append(_problem("message_missing_key", line, where, f"no {' or '.join(repr(k) for k in missing)}"))
        out += [_problem("message_unrecognized_key", line, f"{where}.{k}") for k in m if k not in MESSAGE_KEYS]
        role = m.get("role")
        if "role" in m and role not in ROLES:
            out.append(_problem("unrecognized_role", line, f"{where}.role", repr(role)))
        content = m.get("content")
        if "content" in m and (not isinstance(content, str) or not content.strip()) and not m.get("function_call"):
            out.append(_problem("missing_content", line, f"{where}.content",
                                "empty" if isinstance(content, str) else f"got {type(content).__name__}"))
        weight = m.get("weight")
        if "weight" in m and (weight not in (0, 1) or isinstance(weight, bool) or role != "assistant"):
            out.append(_problem("bad_weight", line, f"{where}.weight", repr(weight)))
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        out.append(_problem("example_missing_assistant_message", line, "messages"))
    return out


def check_persona(example: dict[str, Any], spec: PersonaSpec, line: int | None = None) -> list[Problem]:
    """A marker in at least one reply; no avoided phrase in any reply."""
    replies = [
        (i, m["content"])
        for i, m in enumerate(example["messages"])
        if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), str)
    ]
    out = []
    if replies and not any(has_marker(text, spec) for _, text in replies):
        out.append(_problem("persona_marker_missing", line, f"messages[{replies[-1][0]}].content",
                            f"none of {', '.join(repr(m) for m in spec.markers)}"))
    for i, text in replies:
        for phrase in uses_avoided(text, spec):
            out.append(_problem("avoided_vocabulary", line, f"messages[{i}].content", repr(phrase)))
    return out


# ------------------------------------------------------------------------------------------ similarity
def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower().replace("\u2019", "'"))).strip()


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Word n-grams of the normalized text (the whole text when it has fewer than n words)."""
    words = normalize(text).split()
    if len(words) < n:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def similar_pairs(left: Sequence[frozenset[str]], threshold: float,
                  right: Sequence[frozenset[str]] | None = None) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) with Jaccard ≥ ``threshold``: within ``left`` (j < i), or left[i] vs right[j].

    Exact, and fast on thousands of sets: a prefix filter (sets whose Jaccard reaches t must share one of
    their rarest ``|s| - ceil(t|s|) + 1`` shingles) keeps the number of compared pairs small.
    """
    if not 0 < threshold <= 1:
        raise InputError(f"threshold must be in (0, 1], got {threshold}", field="threshold")
    pool = list(left) + list(right or [])
    freq = Counter(s for st in pool for s in st)

    def prefix(st: frozenset[str]) -> list[str]:
        ordered = sorted(st, key=lambda s: (freq[s], s))
        return ordered[: len(st) - math.ceil(threshold * len(st)) + 1]

    index: dict[str, list[int]] = {}
    targets = right if right is not None else None
    if targets is not None:
        for j, st in enumerate(targets):
            for s in prefix(st):
                index.setdefault(s, []).append(j)
    out = []
    for i, st in enumerate(left):
        if not st:
            continue
        seen: set[int] = set()
        for s in prefix(st):
            for j in index.get(s, ()):
                if j in seen:
                    continue
                seen.add(j)
                other = targets[j] if targets is not None else left[j]
                sim = jaccard(st, other)
                if sim >= threshold:
                    out.append((i, j, sim))
            if targets is None:
                index.setdefault(s, []).append(i)
    return sorted(out)


def conversation_text(example: dict[str, Any], roles: Sequence[str] = ("user", "assistant")) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in example["messages"] if m.get("role") in roles)


# --------------------------------------------------------------------------------------------- reading
def parse_lines(text: str) -> list[tuple[int, Any, str | None]]:
    """(line number, parsed object or None, JSON error or None) for every non-blank line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line), None))
        except json.JSONDecodeError as exc:
            out.append((n, None, f"{exc.msg} at column {exc.colno}"))
    return out


def _well_formed(parsed: list[tuple[int, Any, str | None]]) -> list[tuple[int, dict[str, Any]]]:
    return [(n, obj) for n, obj, err in parsed if err is None and not check_example(obj, n)]


def validate_text(
    text: str,
    *,
    path: str | None = None,
    spec: PersonaSpec | None = None,
    max_seq_length: int | None = None,
    counter: TokenCounter | None = None,
    eval_text: str | None = None,
    near_threshold: float = 0.8,
    leak_threshold: float = 0.8,
    min_examples: int = 1,
) -> ValidationReport:
    """Validate JSONL ``text``; see :func:`validate_file`."""
    parsed = parse_lines(text)
    problems: list[Problem] = []
    for n, obj, err in parsed:
        if err:
            problems.append(_problem("json", n, None, err))
            continue
        problems += check_example(obj, n)
        if spec is not None and isinstance(obj, dict) and isinstance(obj.get("messages"), list):
            problems += check_persona(obj, spec, n)  # every problem of a line, format errors or not
    good = _well_formed(parsed)
    lengths: list[int] = []
    if max_seq_length is not None or counter is not None:
        if counter is None:
            from .counting import token_counter

            counter = token_counter()
        for n, ex in good:
            length = counter(ex["messages"])
            lengths.append(length)
            if max_seq_length is not None and length > max_seq_length:
                problems.append(_problem("too_long", n, "messages",
                                         f"{length} tokens > max_seq_length {max_seq_length} ({counter.name})"))
    # exact and near duplicates (system messages ignored: a shared prompt is not duplication)
    texts = [normalize(conversation_text(ex)) for _, ex in good]
    first_at: dict[str, int] = {}
    exact: set[int] = set()
    for k, ((n, _), t) in enumerate(zip(good, texts, strict=True)):
        if t in first_at:
            exact.add(k)
            problems.append(_problem("duplicate", n, "messages", f"same as line {good[first_at[t]][0]}"))
        else:
            first_at[t] = k
    sets = [shingles(conversation_text(ex)) for _, ex in good]
    flagged = set(exact)
    for i, j, sim in similar_pairs(sets, near_threshold):
        if i in flagged or j in exact:
            continue
        flagged.add(i)
        problems.append(_problem("near_duplicate", good[i][0], "messages",
                                 f"Jaccard {sim:.2f} with line {good[j][0]} (threshold {near_threshold})"))
    if eval_text is not None:
        eval_good = _well_formed(parse_lines(eval_text))
        user_sets = [shingles(conversation_text(ex, ("user",))) for _, ex in good]
        eval_sets = [shingles(conversation_text(ex, ("user",))) for _, ex in eval_good]
        leaked: set[int] = set()
        for i, j, sim in similar_pairs(user_sets, leak_threshold, eval_sets):
            if i not in leaked:
                leaked.add(i)
                problems.append(_problem("eval_leak", good[i][0], "messages",
                                         f"user messages match eval line {eval_good[j][0]} (Jaccard {sim:.2f})"))
    if len(good) < min_examples:
        problems.append(_problem("too_few_examples", None, None, f"{len(good)} well-formed, need {min_examples}"))
    problems.sort(key=lambda p: (p.line or 0, p.field or "", p.kind))
    return ValidationReport(path=path, n_lines=len(parsed), n_examples=len(good), problems=problems,
                            tokenizer=counter.name if counter else None, lengths=lengths,
                            examples=[ex for _, ex in good])


def validate_file(
    path: str | Path,
    *,
    spec: PersonaSpec | None = None,
    max_seq_length: int | None = None,
    counter: TokenCounter | None = None,
    eval_path: str | Path | None = None,
    near_threshold: float = 0.8,
    leak_threshold: float = 0.8,
    min_examples: int = 1,
) -> ValidationReport:
    """Check a JSONL dataset; returns a report (``report.ok``, ``report.problems``), never raises on bad lines.

    ``spec``: persona to check markers and avoided phrases against (None skips the persona checks).
    ``max_seq_length``: token limit per example, counted with ``counter`` (default: gpt-4o-mini's tokenizer).
    ``eval_path``: eval dataset whose user conversations must not reappear (Jaccard ≥ ``leak_threshold``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("dataset file not found", path=path, fix="check the path, or run `personalab data generate`")
    eval_text = None
    if eval_path is not None:
        eval_path = Path(eval_path)
        if not eval_path.exists():
            raise InputError("eval file not found", path=eval_path, fix="check the path given to --eval")
        eval_text = eval_path.read_text(encoding="utf-8")
    return validate_text(path.read_text(encoding="utf-8"), path=str(path), spec=spec, max_seq_length=max_seq_length,
                         counter=counter, eval_text=eval_text, near_threshold=near_threshold,
                         leak_threshold=leak_threshold, min_examples=min_examples)


def validate_examples(examples: Sequence[Any], *, eval_examples: Sequence[Any] | None = None,
                      **kwargs: Any) -> ValidationReport:
    """Validate examples held in memory (line numbers are their 1-based positions); keyword arguments as
    for :func:`validate_file`, with ``eval_examples`` instead of ``eval_path``."""
    text = "\n".join(json.dumps(e, ensure_ascii=False) for e in examples)
    if eval_examples is not None:
        kwargs["eval_text"] = "\n".join(json.dumps(e, ensure_ascii=False) for e in eval_examples)
    return validate_text(text, **kwargs)


def drop_problems(examples: Sequence[Any], report: ValidationReport, kinds: Sequence[str] | None = None) -> list[Any]:
    """``examples`` without those ``report`` flagged (of the given ``kinds``; default all).

    ``report`` must come from :func:`validate_examples` on this same list: its line numbers are positions.
    File-level problems (no line) drop nothing.
    """
    flagged = {p.line for p in report.problems if p.line is not None and (kinds is None or p.kind in kinds)}
    if report.n_lines != len(examples):
        raise InputError(f"the report covers {report.n_lines} lines but there are {len(examples)} examples",
                         field="report", fix="validate this exact list with validate_examples() first")
    return [ex for n, ex in enumerate(examples, 1) if n not in flagged]
