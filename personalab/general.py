"""General ability before and after fine-tuning: a few questions with checkable answers, asked without a prompt.

The articles warn that a fine-tuned model can become a scalpel: excellent at its persona, worse at everything
else. ``data/evaluate/general.jsonl`` holds short questions (arithmetic, capitals, simple facts) with the
accepted answers as case-insensitive regular expressions; ``ask`` answers them greedily with each model and
``GeneralResult`` reports the accuracy of each, with every answer shown so a learner can check the checker.
"""

from __future__ import annotations

import json
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

    def accuracy(self) -> dict[str, float]:
        return {label: sum(q.correct(r) for q, r in zip(self.questions, rs, strict=True)) / len(rs)
                for label, rs in self.replies.items()}

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

        acc = self.accuracy()
        fig, ax = plt.subplots(figsize=(5, 3))
        bars = ax.bar(range(len(acc)), list(acc.values()), color=[f"C{i}" for i in range(len(acc))])
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in acc.values()], fontsize=9)
        ax.set_xticks(range(len(acc)))
        ax.set_xticklabels(list(acc), fontsize=9)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("questions answered correctly")
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
