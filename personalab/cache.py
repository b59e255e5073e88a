"""Model replies cached on disk, shared by the dataset teacher (lesson 03) and the evaluation runner (lesson 05).

One JSON line is appended per reply, keyed by a hash of model + messages + sampling settings, so that
re-running a notebook re-queries nothing. A torn last line (an interrupted run) is ignored on load.
The cache is safe to use from several threads at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Message = Mapping[str, str]


class ResponseCache:
    """Replies keyed by model + messages + sampling, stored as JSONL (``path=None``: in memory only)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        if self.path and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._data[row["key"]] = row["response"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    @staticmethod
    def key(model: str, messages: Sequence[Message], sampling: Mapping[str, Any]) -> str:
        blob = json.dumps(
            {"model": model, "messages": [dict(m) for m in messages], "sampling": dict(sampling)}, sort_keys=True
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def peek(self, key: str) -> str | None:
        """Like :meth:`get`, without counting a hit or a miss (for cost estimates)."""
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, model: str, response: str) -> None:
        with self._lock:
            self._data[key] = response
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": key, "model": model, "response": response}, ensure_ascii=False) + "\n")

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)


def retryable(exc: Exception) -> bool:
    """Whether an ``openai`` error is worth retrying: connection trouble, timeouts, rate limits, 5xx."""
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code == 429
    return False
