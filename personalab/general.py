"""General ability before and after fine-tuning: a few questions with checkable answers, asked without a prompt.

The articles warn that a fine-tuned model can become a scalpel: excellent at its persona, worse at everything
else. ``data/evaluate/general.jsonl`` holds short questions (arithmetic, capitals, simple facts) with the
accepted answers as case-insensitive regular expressions; ``ask`` answers them greedily with each model and
``GeneralResult`` reports the accuracy of each with its 95 % Wilson interval (a dozen questions measure a rate
only roughly), with every answer shown so a learner can check the checker.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import DATA_DIR
from .errors import InputError

GENERAL_FILE = DATA_DIR / "evaluate" / "general.jsonl"
FIX = 'one JSON object per line: {"id": "g01", "question": "...", "answers": ["regex", ...]}'


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % for ``z=1.96``) of a rate of ``k`` successes in ``n`` trials.

    With a dozen answers the plain ``p +- z*sqrt(p(1-p)/n)`` is wrong at the edges (0 of 12 would give [0, 0]);
    Wilson's interval stays inside [0, 1] and is never empty: 0 of 12 gives 0-24 %, 4 of 12 gives 14-61 %.
    """
    for value, name in ((k, "k"), (n, "n")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{name} must be a whole number, got {value!r}", field=name)
    if n < 1 or not 0 <= k <= n:
        raise InputError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}", field="k")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def count_summary(k: int, n: int) -> str:
    """'4 of 12 (33 %, 95 % interval 14-61 %)': a small count with its rate and Wilson interval."""
    low, high = wilson_interval(k, n)
    return f"{k} of {n} ({100 * k / n:.0f} %, 95 % interval {100 * low:.0f}-{100 * high:.0f} %)"


class GeneralQuestion(BaseModel):
    """One question and the answers accepted (regular expressions, matched case-insensitively anywhere)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answers: list[str] = Field(min_length=1)

    @field_validator("answers")
    @classmethod
    def _compile(cls, v: list[str]) -> list[str]:
        for pattern in v:
            if not pattern.strip():
                raise ValueError("an accepted answer must not be empty")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return v

    def correct(self, reply: str) -> bool:
        """True when any accepted answer occurs in the reply (case-insensitive)."""
        return any(re.search(p, reply, flags=re.IGNORECASE) for p in self.answers)


def load_questions(path: str | Path = GENERAL_FILE) -> list[GeneralQuestion]:
    """The questions of a JSONL file; a bad line names the file, line and field."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path, fix=f"pass an existing file; the course's is {GENERAL_FILE}")
    out: list[GeneralQuestion] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", path=path, line=n, fix=FIX) from None
        try:
            q = GeneralQuestion.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field_name = ".".join(str(p) for p in err["loc"]) or None
            raise InputError(err["msg"], path=path, line=n, field=field_name, fix=FIX) from None
        if q.id in seen:
            raise InputError(f"id {q.id!r} is used twice", path=path, line=n, field="id",
                             fix="give each line its own id")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise InputError("no questions in the file", path=path, fix=FIX)
    return out


@dataclass
class GeneralResult:
    """Each model's answers to the same questions, graded."""

    questions: list[GeneralQuestion]
    replies: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for label, replies in self.replies.items():
            if len(replies) != len(self.questions):
                raise InputError(f"{label!r} has {len(replies)} replies for {len(self.questions)} questions",
                                 field="replies")

    def correct_counts(self) -> dict[str, int]:
        """How many questions each model answered correctly."""
        return {label: sum(q.correct(r) for q, r in zip(self.questions, rs, strict=True))
                for label, rs in self.replies.items()}

    def accuracy(self) -> dict[str, float]:
        return {label: k / len(self.questions) for label, k in self.correct_counts().items()}

    def intervals(self) -> dict[str, tuple[float, float]]:
        """Each model's 95 % Wilson interval for its accuracy (see :func:`wilson_interval`)."""
        return {label: wilson_interval(k, len(self.questions)) for label, k in self.correct_counts().items()}

    def summary(self) -> str:
        """One line per model: 'base: 9 of 12 answered correctly (75 %, 95 % interval 47-91 %)'."""
        width = max(map(len, self.replies), default=0)
        return "\n".join(f"{label:{width}}: {count_summary(k, len(self.questions))} answered correctly"
                         for label, k in self.correct_counts().items())

    def rows(self, width: int = 70) -> list[dict[str, str]]:
        """One row per question: each model's answer, marked ✓ or ✗ (cut to ``width`` characters)."""
        rows = []
        for i, q in enumerate(self.questions):
            row = {"question": q.question}
            for label, rs in self.replies.items():
                text = " ".join(rs[i].split())
                text = text if len(text) <= width else text[: width - 1] + "…"
                row[label] = f"{'✓' if q.correct(rs[i]) else '✗'} {text}"
            rows.append(row)
        return rows

    def changed(self) -> list[str]:
        """Questions one model gets right and another wrong."""
        return [q.question for i, q in enumerate(self.questions)
                if len({q.correct(rs[i]) for rs in self.replies.values()}) > 1]

    def plot(self) -> Any:
        import matplotlib.pyplot as plt

        acc, ci = self.accuracy(), self.intervals()
        fig, ax = plt.subplots(figsize=(5, 3))
        errors = [[acc[k] - ci[k][0] for k in acc], [ci[k][1] - acc[k] for k in acc]]
        bars = ax.bar(range(len(acc)), list(acc.values()), color=[f"C{i}" for i in range(len(acc))],
                      yerr=errors, capsize=4, error_kw={"linewidth": 1})
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in acc.values()], fontsize=9, padding=2)
        ax.set_xticks(range(len(acc)))
        ax.set_xticklabels(list(acc), fontsize=9)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("answered correctly (95 % interval)")
        ax.set_title(f"general ability, {len(self.questions)} questions, no system prompt", fontsize=10)
        fig.tight_layout()
        return fig


def ask(models: Mapping[str, tuple[Any, Any]], questions: Sequence[GeneralQuestion] | None = None, *,
        max_new_tokens: int = 40) -> GeneralResult:
    """Answer every question greedily with each ``label -> (model, tokenizer)``, without a system prompt."""
    from .finetune.infer import generate_replies

    qs = list(questions) if questions is not None else load_questions()
    prompts = [q.question for q in qs]
    return GeneralResult(qs, {label: generate_replies(model, tok, prompts, max_new_tokens=max_new_tokens)
                              for label, (model, tok) in models.items()})
