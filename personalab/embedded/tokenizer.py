"""Byte-level BPE tokenizer trained on the embedded corpus, wrapped with a ChatML chat template."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .corpus import _INJECT_ROLES, CODEWORDS, STOCK_PHRASES, Conversation

#: Whole phrases the tokenizer keeps as single tokens (stock catchphrases, role-play openers, codewords).
PHRASE_TOKENS = sorted(set(STOCK_PHRASES) | {o for _, o in _INJECT_ROLES} | set(CODEWORDS))

EOT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [EOT, IM_START, IM_END]

#: ChatML; ``{% generation %}`` marks assistant content (and its end token) for assistant-only loss.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def render_chat(messages: Conversation, add_generation_prompt: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """The chat template in plain Python: (text, character spans of assistant content + end token).

    Same text as ``tokenizer.apply_chat_template(messages, tokenize=False)`` (a test checks it), but fast.
    """
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in messages:
        if m["role"] == "assistant":
            head, body, tail = f"{IM_START}assistant\n", m["content"] + IM_END, "\n"
            spans.append((pos + len(head), pos + len(head) + len(body)))
            piece = head + body + tail
        else:
            piece = f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n"
        parts.append(piece)
        pos += len(piece)
    if add_generation_prompt:
        parts.append(f"{IM_START}assistant\n")
    return "".join(parts), spans


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it for transformers (eos ``<|im_end|>``)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(p, single_word=True, normalized=False) for p in PHRASE_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=EOT,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
