"""Build chat fine-tuning examples (OpenAI format: one ``{"messages": [...]}`` per line) from requests.

Two generators share one interface: the offline one (:mod:`personalab.dataset.offline`, no model) and a
teacher model called through any OpenAI-compatible backend with the persona's system prompt, with
retries and a response cache. The examples carry **no** system message by default: the persona is meant
to go into the weights. ``system="persona"`` keeps the full prompt, ``system="overlay:NAME"`` keeps only a
department overlay (the hybrid variant: fine-tuned persona plus a short context prompt).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .. import config
from ..cache import ResponseCache
from ..cache import retryable as _retryable
from ..errors import BackendError, InputError
from ..io import atomic_write_jsonl
from ..persona import Overlay, PersonaSpec, has_marker, load_overlay, render_overlay, render_system_prompt, taskmaster
from .offline import offline_conversation, offline_reply
from .requests import Request, load_requests

Message = dict[str, str]
Example = dict[str, list[Message]]
METHODS = ("offline", "teacher")
SYSTEM_FIX = "use 'none' (default), 'persona' or 'overlay:NAME' (NAME from data/personas/overlays)"


class DatasetPaths(NamedTuple):
    """Where lesson 03 writes the dataset and lesson 04 reads it."""

    train: Path
    eval: Path


def default_dataset_paths() -> DatasetPaths:
    """``personalab.config.home()/data/{train,eval}.jsonl``."""
    root = config.home() / "data"
    return DatasetPaths(root / "train.jsonl", root / "eval.jsonl")


# ------------------------------------------------------------------------------------------ system mode
def _overlay(system: str) -> Overlay | None:
    if system.startswith("overlay:"):
        name = system.split(":", 1)[1].strip()
        if not name:
            raise InputError("overlay name missing", field="system", fix=SYSTEM_FIX)
        return load_overlay(name)
    if system not in ("none", "persona"):
        raise InputError(f"unknown system mode {system!r}", field="system", fix=SYSTEM_FIX)
    return None


def system_message(spec: PersonaSpec, system: str = "none") -> str | None:
    """The system message the training examples carry: None, the persona prompt, or an overlay alone."""
    overlay = _overlay(system)
    if system == "none":
        return None
    if system == "persona":
        return render_system_prompt(spec)
    assert overlay is not None
    return render_overlay(overlay)


def teacher_system_prompt(spec: PersonaSpec, system: str = "none") -> str:
    """What the teacher sees: the full persona prompt (plus the overlay in the hybrid variant)."""
    return render_system_prompt(spec, _overlay(system))


# ----------------------------------------------------------------------------------------------- cache
def default_cache_path() -> Path:
    return config.home() / "cache" / "teacher_responses.jsonl"


# --------------------------------------------------------------------------------------------- teacher
@dataclass
class Teacher:
    """A teacher model behind an OpenAI-compatible client, with retries and a response cache."""

    client: Any = None
    model: str | None = None
    temperature: float = 0.7
    max_tokens: int = 200
    retries: int = 4
    backoff_s: float = 1.0
    cache: ResponseCache = field(default_factory=lambda: ResponseCache(default_cache_path()))
    calls: int = 0
    cache_hits: int = 0
    sleep: Callable[[float], None] = time.sleep
    #: Conversations asked at the same time by :func:`generate` (the local server batches them; 1: one by one).
    concurrency: int = 8
    _count: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.client is None or self.model is None:
            try:
                from .. import backends
            except ImportError as exc:  # pragma: no cover - until the backends module exists
                raise BackendError(f"no chat backend available ({exc}); use method='offline'") from None
            self.client = self.client or backends.client()
            self.model = self.model or backends.default_model()

    @property
    def sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def complete(self, messages: Sequence[Message]) -> str:
        """The teacher's reply to ``messages`` (from the cache when it has it)."""
        assert self.model is not None
        key = ResponseCache.key(self.model, messages, self.sampling)
        cached = self.cache.get(key)
        if cached is not None:
            with self._count:
                self.cache_hits += 1
            return cached
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                with self._count:
                    self.calls += 1
                resp = self.client.chat.completions.create(model=self.model, messages=list(messages), **self.sampling)
                text = (resp.choices[0].message.content or "").strip()
                if text:
                    self.cache.put(key, self.model, text)
                    return text
                last = BackendError("the teacher returned an empty reply")
            except Exception as exc:  # noqa: BLE001 - classified below
                if not _retryable(exc):
                    raise BackendError(f"teacher model {self.model!r} failed: {type(exc).__name__}: {exc}") from None
                last = exc
            if attempt < self.retries:
                self.sleep(self.backoff_s * 2**attempt)
        raise BackendError(f"teacher model {self.model!r} failed after {self.retries + 1} attempts: {last}")

    def conversation(self, spec: PersonaSpec, request: Request, system: str = "none", *,
                     on_off_persona: str = "keep") -> list[Message]:
        """User and assistant messages for every turn; the teacher sees the persona prompt and the history.

        ``on_off_persona``: what to do with a reply that lacks every marker — 'keep' it (validation will
        flag it), or replace it by the 'offline' generator's reply.
        """
        history: list[Message] = [{"role": "system", "content": teacher_system_prompt(spec, system)}]
        for i, turn in enumerate(request.turns):
            history.append({"role": "user", "content": turn.user})
            reply = self.complete(history)
            if on_off_persona == "offline" and not has_marker(reply, spec):
                reply = offline_reply(spec, turn, f"{request.id}/{i}")
            history.append({"role": "assistant", "content": reply})
        return history[1:]


# ------------------------------------------------------------------------------------------- selection
def _order_key(request_id: str) -> str:
    return hashlib.sha256(("order:" + request_id).encode("utf-8")).hexdigest()


def select_requests(requests: Sequence[Request], injection_ratio: float = 0.0) -> list[Request]:
    """Ordinary requests plus injection ones making up about ``injection_ratio`` of the result,
    in a fixed pseudo-random order (so training does not see one category after another)."""
    if not 0.0 <= injection_ratio < 1.0:
        raise InputError(f"injection_ratio must be in [0, 1), got {injection_ratio}", field="injection_ratio",
                         fix="use e.g. 0.1 for one injection example in ten")
    base = [r for r in requests if r.category != "injection"]
    attacks = sorted((r for r in requests if r.category == "injection"), key=lambda r: _order_key(r.id))
    n = round(injection_ratio / (1 - injection_ratio) * len(base)) if injection_ratio else 0
    return sorted(base + attacks[:n], key=lambda r: _order_key(r.id))


def generate(
    requests: Sequence[Request] | str = "train",
    spec: PersonaSpec | None = None,
    *,
    method: str = "offline",
    system: str = "none",
    injection_ratio: float = 0.0,
    teacher: Teacher | None = None,
    on_off_persona: str = "keep",
    progress: bool = True,
) -> list[Example]:
    """Chat fine-tuning examples for ``requests`` (a list, or a split name: 'train' / 'eval').

    ``method``: 'offline' (deterministic, no model) or 'teacher' (a model through the backend).
    ``system``: 'none' (default), 'persona' or 'overlay:NAME' — the system message the examples keep.
    ``injection_ratio``: share of prompt-injection requests answered in persona.
    """
    from tqdm.auto import tqdm

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", field="method", fix="use 'offline' or 'teacher'")
    if on_off_persona not in ("keep", "offline"):
        raise InputError(f"unknown on_off_persona {on_off_persona!r}", field="on_off_persona",
                         fix="use 'keep' or 'offline'")
    spec = spec or taskmaster()
    reqs = load_requests(requests) if isinstance(requests, str) else list(requests)
    chosen = select_requests(reqs, injection_ratio)
    sys_text = system_message(spec, system)
    if method == "teacher" and teacher is None:
        teacher = Teacher()
    bar = tqdm(total=len(chosen), desc=f"{method} examples", unit="conv", disable=not progress)

    def one(req: Request) -> Example:
        if method == "offline":
            msgs = offline_conversation(spec, req)
        else:
            assert teacher is not None
            msgs = teacher.conversation(spec, req, system, on_off_persona=on_off_persona)
            bar.set_postfix(calls=teacher.calls, cached=teacher.cache_hits, refresh=False)
        bar.update()
        return {"messages": [{"role": "system", "content": sys_text}, *msgs] if sys_text else msgs}

    with bar:
        if method == "offline" or teacher is None or teacher.concurrency <= 1:
            return [one(req) for req in chosen]
        # Conversations are independent (only the turns inside one depend on each other): the teacher answers
        # several at once, and a local server batches them. The examples keep the order of ``chosen``.
        with ThreadPoolExecutor(max_workers=teacher.concurrency) as pool:
            return list(pool.map(one, chosen))


def write_examples(path: str | Path, examples: Sequence[Example]) -> Path:
    """Write examples as JSONL, atomically (a crash never leaves half a dataset)."""
    return atomic_write_jsonl(path, examples)


def read_examples(path: str | Path) -> list[Example]:
    """Read a JSONL dataset that is known to be well formed (use :func:`validate_file` for untrusted files)."""
    path = Path(path)
    if not path.exists():
        raise InputError("dataset file not found", path=path, fix="generate it with `personalab data generate`")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"line is not JSON ({exc.msg})", path=path, line=n,
                             fix="run `personalab data validate` on the file to see every problem") from None
    return out


def build_default_datasets(
    spec: PersonaSpec | None = None, *, method: str = "offline", system: str = "none",
    injection_ratio: float = 0.1, paths: DatasetPaths | None = None, teacher: Teacher | None = None,
    progress: bool = True,
) -> DatasetPaths:
    """Generate the train and eval datasets lesson 04 trains on and write them to ``default_dataset_paths()``."""
    paths = paths or default_dataset_paths()
    for split, path in zip(("train", "eval"), paths, strict=True):
        examples = generate(split, spec, method=method, system=system, injection_ratio=injection_ratio,
                            teacher=teacher, progress=progress)
        write_examples(path, examples)
    return paths
