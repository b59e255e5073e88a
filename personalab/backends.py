"""One chat client for every notebook: a real ``openai.OpenAI`` client, pointed at

1. ``OPENAI_BASE_URL`` when set (a workshop's shared vLLM / Ollama / ``transformers serve``),
2. the OpenAI API when a key is found and the profile is not ``cpu`` (or ``PERSONALAB_BACKEND=openai``),
3. otherwise a local server on 127.0.0.1 serving the profile's base model (started on first use, stopped at exit):
   SmolLM2-135M-Instruct on ``cpu``, the model lesson 04 fine-tunes on a GPU (:func:`personalab.config.base_model`).

``PERSONALAB_BACKEND`` (local | remote | openai) overrides the choice; ``PERSONALAB_MODEL`` names the model.

Comparisons (prompt vs weights) do not follow the active backend: their prompted side is always the profile's base
model, the one lesson 04 fine-tunes (:func:`prompted_side`); an API model or a shared server serving another model
takes part only as a labelled reference (:func:`reference_side`).
The API key is read from the environment, a Colab secret or a hidden prompt; it is never printed or stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from . import config
from .config import find_api_key  # personalab.backends.find_api_key: the name lesson 00 and errors use
from .errors import BackendError, SettingError

BACKENDS = ("local", "remote", "openai")
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
LOCAL_PLACEHOLDER_KEY = "local-no-key"  # the local server ignores it; the openai client requires some value

_local_servers: dict[Path, Any] = {}


def active_backend() -> str:
    override = os.environ.get("PERSONALAB_BACKEND", "").strip()
    if override:
        if override not in BACKENDS:
            raise SettingError(
                f"PERSONALAB_BACKEND={override!r} is not a backend", fix=f"unset it or set one of {', '.join(BACKENDS)}"
            )
        return override
    return config.detect().backend


#: Model folders that the server at ``OPENAI_BASE_URL`` already serves, by their path as the model name
#: (``os.pathsep``-separated). ``personalab grade`` sets it for exercise 05's kernels, so that a sandbox asks the
#: grader's shared batching servers (through its reply cache) instead of starting its own two.
SERVED_ENV = "PERSONALAB_SERVED_MODELS"


@dataclass(frozen=True)
class ServedElsewhere:
    """A model folder served by the server at ``base_url`` (see :data:`SERVED_ENV`): what :func:`local_server`
    returns in place of a :class:`personalab.server.LocalServer` it would start."""

    base_url: str
    model: str
    running: bool = True

    def stop(self) -> None:
        """Nothing to stop: the server is not this process's."""


def served_elsewhere(model_dir: Path) -> ServedElsewhere | None:
    """Where ``model_dir`` (resolved) is already served, per :data:`SERVED_ENV` and ``OPENAI_BASE_URL``; else None."""
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    listed = [p for p in os.environ.get(SERVED_ENV, "").split(os.pathsep) if p.strip()]
    if not base_url or not any(Path(p).expanduser().resolve() == model_dir for p in listed):
        return None
    return ServedElsewhere(base_url, str(model_dir))


def local_server(model_dir: str | Path | None = None):
    """The shared local server for ``model_dir`` (default: the profile's base model), started on first use; the
    server named by :data:`SERVED_ENV` when that one already serves it."""
    from .server import LocalServer

    if model_dir is None:
        model_dir = _default_local_model_dir()
    key = Path(model_dir).expanduser().resolve()
    if (elsewhere := served_elsewhere(key)) is not None:
        return elsewhere
    server = _local_servers.get(key)
    if server is None or not server.running:
        server = _local_servers[key] = LocalServer(key).start()
    return server


def base_model_dir(base: str) -> Path:
    """A local folder for ``base`` (see :func:`personalab.models.model_dir`)."""
    from .models import model_dir

    return model_dir(base)


def _default_local_model_dir() -> Path:
    from .models import default_local_model_dir

    return default_local_model_dir()


def client(backend: str | None = None, *, model_dir: str | Path | None = None) -> openai.OpenAI:
    """A real ``openai.OpenAI`` client for the active backend (or the one named)."""
    backend = backend or active_backend()
    if backend == "local":
        return openai.OpenAI(base_url=local_server(model_dir).base_url, api_key=LOCAL_PLACEHOLDER_KEY, max_retries=2)
    if backend == "remote":
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise BackendError("PERSONALAB_BACKEND=remote needs OPENAI_BASE_URL, e.g. http://host:8000/v1")
        return openai.OpenAI(base_url=base_url, api_key=find_api_key() or LOCAL_PLACEHOLDER_KEY)
    key = find_api_key()
    if key is None:
        raise BackendError(
            "no OpenAI API key found. Set OPENAI_API_KEY, add it as a Colab secret, or call "
            "personalab.backends.find_api_key(prompt=True); or use the local model (unset PERSONALAB_BACKEND)."
        )
    return openai.OpenAI(api_key=key)


def default_model(backend: str | None = None, *, model_dir: str | Path | None = None) -> str:
    """The model name requests must use on the active backend."""
    backend = backend or active_backend()
    named = os.environ.get("PERSONALAB_MODEL")
    if backend == "local":
        return local_server(model_dir).model
    if named:
        return named
    if backend == "openai":
        return DEFAULT_OPENAI_MODEL
    try:
        models = client("remote").models.list().data
    except openai.OpenAIError as exc:
        raise BackendError(f"could not list models at {os.environ.get('OPENAI_BASE_URL')}: {exc}") from None
    if not models:
        raise BackendError("the server at OPENAI_BASE_URL lists no model; set PERSONALAB_MODEL to the served name")
    return models[0].id


def describe() -> str:
    """One line saying where requests go (never the key)."""
    backend = active_backend()
    where = {
        "local": "local server on 127.0.0.1",
        "remote": os.environ.get("OPENAI_BASE_URL", "?"),
        "openai": "OpenAI API",
    }[backend]
    return f"backend: {backend} ({where})"


def chat(
    messages: list[dict[str, str]],
    *,
    model: str | None = None,
    client_: openai.OpenAI | None = None,
    **params: Any,
) -> str:
    """Send one chat request and return the reply text."""
    c = client_ or client()
    params.setdefault("max_tokens", 120)
    resp = c.chat.completions.create(model=model or default_model(), messages=messages, **params)
    return resp.choices[0].message.content or ""


def ask(user: str, system: str | None = None, **params: Any) -> str:
    """Ask one question, optionally with a system prompt: the smallest useful call."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return chat(messages, **params)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its client, the model name requests use, the base model it runs (a base model name
    of :mod:`personalab.config`, or the API model's), its label for a table and the backend it goes through."""

    client: openai.OpenAI
    model: str
    base_model: str
    label: str
    backend: str = "local"

    @property
    def reference(self) -> bool:
        return self.label.startswith("reference")


def _serves(model: str, model_dir: Path) -> bool:
    return Path(model).is_dir() and Path(model).resolve() == Path(model_dir).resolve()


def prompted_side(base: str | None = None) -> Side:
    """The prompted side of every comparison: the base model ``base`` (default: the profile's, the one lesson 04
    fine-tunes) on the course's local server, whether or not an API key is set. A shared server (``OPENAI_BASE_URL``)
    that serves this very checkpoint is used instead of starting a second server."""
    base = base or config.base_model()
    base_dir = base_model_dir(base)
    title = config.model_title(base)
    if active_backend() == "remote" and os.environ.get("PERSONALAB_MODEL"):
        model = os.environ["PERSONALAB_MODEL"]
        if _serves(model, base_dir):
            return Side(client("remote"), model, base, f"{title} (shared server)", "remote")
    return Side(client("local", model_dir=base_dir), local_server(base_dir).model, base, f"{title} (local server)")


def reference_side(base_dir: str | Path | None = None) -> Side | None:
    """The active API model (a key is set) or shared server as a labelled reference, never the prompted side:
    'reference: gpt-4o-mini (OpenAI API)'. None when the backend is local, or when the shared server serves the base
    model itself (``base_dir``, default the profile's), so a reference would repeat the prompted side."""
    backend = active_backend()
    if backend == "local":
        return None
    model = default_model(backend)
    if Path(model).is_dir() and _serves(model, Path(base_dir) if base_dir else base_model_dir(config.base_model())):
        return None
    label = Path(model).name if Path(model).is_dir() else model
    where = "OpenAI API" if backend == "openai" else "shared server"
    return Side(client(backend), model, model, f"reference: {label} ({where})", backend)


def stop_local_servers() -> None:
    for server in _local_servers.values():
        server.stop()
    _local_servers.clear()
