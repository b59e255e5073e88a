"""Does a system prompt steer the model? Ask the same requests with and without it and count markers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import openai
from tqdm.auto import tqdm

from . import backends
from .config import DATA_DIR
from .persona import PersonaSpec, has_marker

HELDOUT_FILE = DATA_DIR / "requests" / "heldout_steering.txt"


def heldout_requests() -> list[str]:
    """Hand-written requests, worded unlike the fine-tuning data of lesson 03 (held out from it)."""
    lines = HELDOUT_FILE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


@dataclass
class Comparison:
    """Replies to the same requests under several system prompts (``None`` = no system prompt)."""

    requests: list[str]
    replies: dict[str, list[str]] = field(default_factory=dict)

    def marker_rates(self, spec: PersonaSpec) -> dict[str, float]:
        return {label: sum(has_marker(r, spec) for r in rs) / len(rs) for label, rs in self.replies.items()}

    def rows(self) -> list[dict[str, str]]:
        return [
            {"request": q, **{label: rs[i] for label, rs in self.replies.items()}} for i, q in enumerate(self.requests)
        ]

    def to_html(self) -> str:
        import html

        labels = list(self.replies)
        head = "".join(f"<th>{html.escape(x)}</th>" for x in ["request", *labels])
        body = "".join(
            "<tr>"
            + "".join(f"<td style='text-align:left'>{html.escape(row[c])}</td>" for c in ["request", *labels])
            + "</tr>"
            for row in self.rows()
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    def _repr_html_(self) -> str:
        return self.to_html()


def compare(
    requests: list[str],
    prompts: dict[str, str | None],
    *,
    client: openai.OpenAI | None = None,
    model: str | None = None,
    temperature: float = 0.2,
    max_tokens: int = 80,
    seed: int = 0,
    progress: bool = True,
    concurrency: int = 8,
) -> Comparison:
    """Ask every request once under every labelled system prompt, ``concurrency`` requests at a time (the local
    server batches them); the replies come back in the order of ``requests``. Without ``client``: the prompted side,
    the profile's base model (:func:`personalab.backends.prompted_side`), whether or not an API key is set."""
    if client is None:
        side = backends.prompted_side()
        client, model = side.client, model or side.model
    model = model or backends.default_model()
    result = Comparison(list(requests))
    jobs = [(label, q) for label in prompts for q in requests]

    def ask(job: tuple[str, str]) -> str:
        prompt = prompts[job[0]]
        messages = ([{"role": "system", "content": prompt}] if prompt else []) + [{"role": "user", "content": job[1]}]
        return backends.chat(messages, model=model, client_=client, temperature=temperature, max_tokens=max_tokens,
                             seed=seed)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        replies = list(tqdm(pool.map(ask, jobs), total=len(jobs), desc="asking", disable=not progress))
    for i, label in enumerate(prompts):
        result.replies[label] = replies[i * len(requests) : (i + 1) * len(requests)]
    return result


def compare_reference(requests: list[str], system_prompt: str, **kwargs: Any) -> Comparison | None:
    """``requests`` with ``system_prompt`` on the reference model (an API key, or a shared server serving another
    model: :func:`personalab.backends.reference_side`), in one column labelled 'reference: ...'; None without one.

    A reference is another base model, never the prompted side: it shows what the same prompt does on a larger
    model, beside (not instead of) the base model that lesson 04 fine-tunes."""
    ref = backends.reference_side()
    if ref is None:
        return None
    return compare(requests, {ref.label: system_prompt}, client=ref.client, model=ref.model, **kwargs)
