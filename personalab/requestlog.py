"""What a request log holds: capture the JSON bodies the ``openai`` client sends, and what a persona change costs.

A prompted persona travels inside every request, so anything that logs requests (a proxy, an API gateway,
the provider's own logs) stores the whole system prompt again and again. A fine-tuned persona sends none.
``logged_client`` wraps a real client with an httpx event hook that keeps each request body, exactly as sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import InputError
from .results import model_name


def _start(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[:n] + "…"


@dataclass
class RequestLog:
    """The bodies of the requests a client sent, in order (what a logging proxy would store)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def hook(self, request: httpx.Request) -> None:
        """httpx ``request`` event hook: keep the URL path and the parsed JSON body."""
        raw = request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")}
        self.entries.append({"path": request.url.path, "body": body})

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [e["body"] for e in self.entries if e["path"].endswith("/chat/completions")]

    def system_prompts(self) -> list[str | None]:
        """Per chat request, the system message it carried (None when it had none)."""
        out = []
        for body in self.chat_bodies():
            system = [m.get("content") for m in body.get("messages", []) if m.get("role") == "system"]
            out.append("\n".join(str(s) for s in system) if system else None)
        return out

    def rows(self, labels: list[str] | None = None) -> list[dict[str, Any]]:
        """One row per chat request: its label, model, the system prompt's characters and its start."""
        bodies = self.chat_bodies()
        labels = labels or [f"request {i + 1}" for i in range(len(bodies))]
        if len(labels) != len(bodies):
            raise InputError(f"{len(labels)} labels for {len(bodies)} logged requests", field="labels")
        rows = []
        for label, body, system in zip(labels, bodies, self.system_prompts(), strict=True):
            users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
            rows.append({"request": label, "model": str(body.get("model", "?")),
                         "system prompt chars in the log": len(system) if system else 0,
                         "system prompt starts": _start(system) if system else "(none)",
                         "user message": users[-1] if users else ""})
        return rows

    def logged_bytes(self) -> int:
        """Bytes of all logged chat bodies as JSON (what the log stores)."""
        return sum(len(json.dumps(b)) for b in self.chat_bodies())


def logged_client(client: Any, log: RequestLog, *, transport: httpx.BaseTransport | None = None) -> Any:
    """A copy of an ``openai.OpenAI`` client that records every request body in ``log`` (``transport``: tests)."""
    return client.with_options(http_client=httpx.Client(event_hooks={"request": [log.hook]}, transport=transport))


def _origin(record: dict[str, Any]) -> str:
    return f"{model_name(record.get('model'))} · {record.get('hardware', '?')}"


def change_cost(prompt_change: dict[str, Any] | None, training: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Time to put a changed persona into service, both ways, from saved records (``results.load``).

    ``prompt_change`` is lesson 06's ``06/change`` record, ``training`` lesson 04's ``04/training`` record;
    a missing record gives a row that says which lesson to run instead of a number.
    """
    rows: list[dict[str, Any]] = []
    if prompt_change:
        d = prompt_change.get("data", {})
        rows.append({"approach": "edit the system prompt", "training s": 0.0,
                     "until the new voice answers, s": d.get("total_s"),
                     "measured on": _origin(prompt_change),
                     "note": "edit, render, one request (lesson 06)"})
    else:
        rows.append({"approach": "edit the system prompt", "training s": 0.0, "until the new voice answers, s": None,
                     "measured on": "missing", "note": "run section 1 of lesson 06"})
    if training:
        d = training.get("data", {})
        train_s = d.get("train_s") if d.get("train_s") is not None else d.get("wall_s")
        wall = d.get("wall_s")
        rows.append({"approach": "fine-tune again", "training s": train_s, "until the new voice answers, s": wall,
                     "measured on": _origin(training),
                     "note": f"lesson 04's run, {d.get('train_examples', '?')} examples; plus regenerating the "
                             "dataset, evaluating and redeploying"})
    else:
        rows.append({"approach": "fine-tune again", "training s": None, "until the new voice answers, s": None,
                     "measured on": "missing", "note": "lesson 04 has not been run: no training time recorded"})
    return rows
