"""Which tokens carry the loss, and the checks that catch wrong labels before training.

Training on responses only means the loss is computed on the assistant's tokens, never on the user's or
the system prompt's. **What carries loss after a reply**: the reply's end-of-turn token (``<|im_end|>`` in
ChatML) does, so the model learns to stop. The ``\\n`` after it and the next turn's ``<|im_start|>`` do not:
the model never writes them (generation stops at ``<|im_end|>``; the template writes them when it renders
the next turn). Training on them would spend loss on text the template already fixes, and it could not be the
same for every reply: the last reply has no next turn, and Unsloth ends a reply's labels at the tokenizer's
EOS. Training on the next ``<|im_start|>`` is what a tokenizer whose EOS is ``<|im_start|>`` (SmolLM2's GGUF)
did: it taught the model to open a new turn after each reply.
So a reply trains on exactly its content and its end-of-turn token, in both backends:

* **PEFT + TRL** (``assistant_only_loss=True``): the chat template wraps assistant content in
  ``{% generation %}`` markers and ``apply_chat_template(return_assistant_tokens_mask=True)`` marks those
  tokens. ChatML templates get the course's own training template (:mod:`.templates`: the model's rendering,
  its default system message included, with markers around content + ``<|im_end|>``); other families get
  TRL's patched copy. TRL's Qwen2.5 copy is not used: it also marks the ``\\n`` before and after a reply.
* **Unsloth** (``train_on_responses_only``): the tokens after a *response part* (the text the template writes
  before an assistant reply, e.g. ``<|im_start|>assistant\\n``) up to and including the tokenizer's EOS, or
  up to the next instruction part. With EOS = the template's end-of-turn token that is the same stretch.

When the template and the data do not match (a role the template does not know, markers for another
model family, replies cut off by ``max_seq_length``) every label becomes -100: the loss is 0 or NaN and
nothing is learned. :func:`check_masking` finds that before the model is even loaded; :func:`compare_labels`
checks the labels Unsloth prepared against the course's view, token for token.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from ..errors import InputError
from .templates import chatml_training_template

ROLES = ("system", "user", "assistant")
ROLE_FIX = "use the roles 'system', 'user' and 'assistant' (rename 'bot', 'model' or 'gpt' to 'assistant')"

#: (instruction_part, response_part) for Unsloth's ``train_on_responses_only``, by chat format.
RESPONSE_PARTS: dict[str, tuple[str, str]] = {
    "chatml": ("<|im_start|>user\n", "<|im_start|>assistant\n"),
    "llama3": ("<|start_header_id|>user<|end_header_id|>\n\n", "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "gemma": ("<start_of_turn>user\n", "<start_of_turn>model\n"),
    "phi3": ("<|user|>\n", "<|assistant|>\n"),
    "mistral": ("[INST]", "[/INST]"),
}
_PROBE = [{"role": "user", "content": "Add a task"}, {"role": "assistant", "content": "Done"},
          {"role": "user", "content": "Thanks"}, {"role": "assistant", "content": "Welcome"}]


def messages_of(example: Any) -> list[dict[str, str]]:
    """The message list of an example (``{"messages": [...]}`` or a bare list)."""
    msgs = example.get("messages") if isinstance(example, dict) else example
    if not isinstance(msgs, list):
        raise InputError("an example must be {'messages': [...]}", field="messages",
                         fix="use the chat format of lesson 03: one {'messages': [{'role', 'content'}, ...]} per line")
    return msgs


# ------------------------------------------------------------------------------------------ templates
def training_template(tokenizer: Any) -> str | None:
    """The chat template that assistant-only loss needs: None when the tokenizer's own has
    ``{% generation %}`` markers, the course's ChatML template when it renders like the model's own
    (:mod:`.templates`), TRL's patched copy for other known families, else an :class:`InputError`."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise InputError("the tokenizer has no chat template", field="chat_template",
                         fix="use an instruct/chat model, or set tokenizer.chat_template to a template with "
                         "{% generation %} markers (see personalab.embedded.tokenizer.CHAT_TEMPLATE)")
    if has_generation_markers(template):
        return None
    ours = chatml_training_template(tokenizer)
    if ours is not None:
        return ours
    try:
        return get_training_chat_template(tokenizer)
    except ValueError:
        raise InputError(
            f"the chat template has no {{% generation %}} markers, is not ChatML as the course renders it, and TRL "
            f"knows no patched version of it, so assistant-only loss cannot find the replies (the template starts "
            f"{template_excerpt(template)})", field="chat_template",
            fix="set tokenizer.chat_template to a template that wraps each assistant reply and its end-of-turn "
            "token in {% generation %}...{% endgeneration %} (see personalab.embedded.tokenizer.CHAT_TEMPLATE), "
            "or train with the Unsloth backend and set FinetuneConfig(instruction_part=..., response_part=...)"
        ) from None


def template_excerpt(template: Any, n: int = 160) -> str:
    """The first ``n`` characters of a chat template, quoted, for error messages."""
    text = template if isinstance(template, str) else str(template)
    return repr(text[:n]) + ("…" if len(text) > n else "")


def detect_response_parts(tokenizer: Any) -> tuple[str, str]:
    """(instruction_part, response_part) for Unsloth, found by rendering a short chat with the template."""
    try:
        text = tokenizer.apply_chat_template(_PROBE, tokenize=False)
    except Exception as exc:  # noqa: BLE001 - any template error becomes advice
        raise InputError(f"the chat template cannot render a plain user/assistant chat ({exc})",
                         field="chat_template", fix="use an instruct/chat model with a chat template") from None
    for inst, resp in RESPONSE_PARTS.values():
        if inst in text and resp in text:
            return inst, resp
    raise InputError(
        f"cannot tell where assistant replies start in this chat format: it renders {text[:120]!r} "
        f"(the template starts {template_excerpt(tokenizer.chat_template)})",
        field="response_part",
        fix="set FinetuneConfig(instruction_part=..., response_part=...) to the exact text the template writes "
        "before a user message and before an assistant reply, or set tokenizer.chat_template to a known format "
        "(ChatML: " + repr(RESPONSE_PARTS["chatml"]) + ")")


def end_of_turn(tokenizer: Any) -> str | None:
    """The special token the chat template writes right after a reply's content (``<|im_end|>`` in ChatML),
    found by rendering a short chat; None when the template writes no special token there."""
    try:
        text = tokenizer.apply_chat_template(_PROBE, tokenize=False)
    except Exception:  # noqa: BLE001 - the template rejects a plain chat: there is no end-of-turn to find
        return None
    reply = _PROBE[1]["content"]
    at = text.find(reply, text.find(_PROBE[0]["content"]))
    if at < 0:
        return None
    added = sorted(tokenizer.get_added_vocab(), key=len, reverse=True)
    return next((t for t in added if t.strip() and text.startswith(t, at + len(reply))), None)


# ------------------------------------------------------------------------------------------ the view
@dataclass(repr=False)
class LossView:
    """One example's tokens and whether each carries loss (is trained on)."""

    tokens: list[str]
    trained: list[bool]
    truncated: int = 0  # tokens cut off by max_seq_length
    ids: list[int] = field(default_factory=list)  # the token ids behind ``tokens``

    @property
    def n_trained(self) -> int:
        return sum(self.trained)

    def runs(self) -> list[tuple[bool, str]]:
        """Consecutive stretches of text, each with whether it is trained on."""
        out: list[tuple[bool, str]] = []
        for tok, t in zip(self.tokens, self.trained, strict=True):
            if out and out[-1][0] == t:
                out[-1] = (t, out[-1][1] + tok)
            else:
                out.append((t, tok))
        return out

    def trained_text(self) -> list[str]:
        return [text for t, text in self.runs() if t]

    def summary(self) -> str:
        cut = f", {self.truncated} cut off by max_seq_length" if self.truncated else ""
        return f"{self.n_trained} of {len(self.tokens)} tokens carry loss{cut}"

    def __str__(self) -> str:
        body = "".join(f"⟦{text}⟧" if t else text for t, text in self.runs())
        return f"{body}\n({self.summary()}; trained tokens are inside ⟦ ⟧)"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        parts = []
        for t, text in self.runs():
            esc = html.escape(text).replace("\n", "↵<br>")
            style = "background:#c8e6c9" if t else "color:#888"
            parts.append(f'<span style="{style}">{esc}</span>')
        return (f'<div style="font-family:monospace;white-space:pre-wrap">{"".join(parts)}</div>'
                f"<p>{self.summary()}; trained tokens are highlighted green</p>")


def loss_view(
    tokenizer: Any,
    example: Any,
    *,
    backend: str = "peft",
    max_length: int | None = None,
    chat_template: str | None = None,
    parts: tuple[str, str] | None = None,
) -> LossView:
    """Which tokens of ``example`` carry loss with this tokenizer, backend and ``max_length``.

    ``backend='peft'`` uses the chat template's generation markers (``chat_template`` overrides the
    tokenizer's, e.g. :func:`training_template`); ``'unsloth'`` uses ``parts`` (instruction, response).
    """
    msgs = messages_of(example)
    if backend == "unsloth":
        inst, resp = parts or detect_response_parts(tokenizer)
        text = tokenizer.apply_chat_template(msgs, tokenize=False)
        spans = _response_spans(text, inst, resp, end_of_turn(tokenizer))
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        mask = [any(a <= s and e <= b for a, b in spans) and e > s for s, e in enc["offset_mapping"]]
    else:
        out = tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                            chat_template=chat_template)
        ids, mask = list(out["input_ids"]), [bool(m) for m in out["assistant_masks"]]
    cut = 0
    if max_length is not None and len(ids) > max_length:
        cut = len(ids) - max_length
        ids, mask = ids[:max_length], mask[:max_length]
    tokens = [tokenizer.decode([i]) for i in ids]
    return LossView(tokens, mask, cut, list(ids))


def _response_spans(text: str, inst: str, resp: str, eot: str | None = None) -> list[tuple[int, int]]:
    """Character spans that carry loss: after each response part up to and including the reply's end-of-turn
    token ``eot``, or up to the next instruction or response part (or the end) when it comes first."""
    spans = []
    pos = text.find(resp)
    while pos >= 0:
        start = pos + len(resp)
        ends = [i for i in (text.find(inst, start), text.find(resp, start)) if i >= 0]
        if eot:
            e = text.find(eot, start)
            ends += [e + len(eot)] if e >= 0 else []
        end = min(ends, default=len(text))
        spans.append((start, end))
        pos = text.find(resp, end)
    return spans


# ------------------------------------------------------------------------------------------ the check
def check_masking(
    tokenizer: Any,
    examples: Sequence[Any],
    *,
    backend: str = "peft",
    max_length: int | None = None,
    parts: tuple[str, str] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Raise :class:`InputError` when an example would train on nothing (every label -100).

    Returns statistics: examples, tokens, trained tokens and their share. ``source`` names the data (a path)
    in error messages; line numbers count examples from 1.
    """
    template = training_template(tokenizer) if backend == "peft" else None
    if backend == "unsloth":
        parts = parts or detect_response_parts(tokenizer)
        check_eos(tokenizer, source)
    empty: list[int] = []
    cut_off: list[int] = []
    total = trained = 0
    roles: Counter[str] = Counter()
    for n, ex in enumerate(examples, 1):
        msgs = messages_of(ex)
        roles.update(str(m.get("role")) for m in msgs if isinstance(m, dict))
        try:
            view = loss_view(tokenizer, msgs, backend=backend, max_length=max_length, chat_template=template,
                             parts=parts)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the template rejected the data: say where
            raise InputError(f"the chat template cannot render this example ({type(exc).__name__}: {exc})",
                             path=source, line=n, field="messages", fix=ROLE_FIX) from None
        total += len(view.tokens)
        trained += view.n_trained
        if view.n_trained == 0:
            (cut_off if view.truncated and _trains_untruncated(tokenizer, msgs, backend, template, parts)
             else empty).append(n)
    bad_roles = sorted(r for r in roles if r not in ROLES)
    if len(empty) + len(cut_off) == len(examples) and examples:
        raise InputError(_all_masked_message(tokenizer, examples[0], backend, parts, bad_roles, cut_off),
                         path=source, field="messages", fix=_all_masked_fix(backend, bad_roles, cut_off))
    if empty:
        raise InputError(f"{len(empty)} example(s) have no token that carries loss (lines {_lines(empty)})",
                         path=source, line=empty[0], field="messages",
                         fix=ROLE_FIX + "; every example needs at least one assistant reply")
    if cut_off:
        raise InputError(f"{len(cut_off)} example(s) lose every assistant token to max_seq_length={max_length} "
                         f"(lines {_lines(cut_off)})", path=source, line=cut_off[0], field="max_seq_length",
                         fix="raise max_seq_length, or drop or shorten those examples (lesson 03's validator "
                         "flags them as too_long)")
    return {"examples": len(examples), "tokens": total, "trained_tokens": trained,
            "trained_share": trained / total if total else 0.0}


def _trains_untruncated(tokenizer: Any, msgs: list, backend: str, template: str | None, parts: Any) -> bool:
    return loss_view(tokenizer, msgs, backend=backend, chat_template=template, parts=parts).n_trained > 0


def _lines(ns: list[int], k: int = 8) -> str:
    return ", ".join(map(str, ns[:k])) + (", …" if len(ns) > k else "")


def _all_masked_message(tokenizer: Any, example: Any, backend: str, parts: Any, bad_roles: list[str],
                        cut_off: list[int]) -> str:
    head = "no example has a token that carries loss: every label would be -100 and training would learn nothing"
    if bad_roles:
        return f"{head}. The data uses the role(s) {', '.join(map(repr, bad_roles))}, which the chat template " \
               "does not treat as the assistant"
    if cut_off:
        return f"{head}. Every assistant reply starts after max_seq_length tokens"
    try:
        text = tokenizer.apply_chat_template(messages_of(example), tokenize=False)
    except Exception:  # noqa: BLE001
        text = "?"
    if backend == "unsloth":
        inst, resp = parts
        return f"{head}. The response part {resp!r} does not occur in the text the chat template writes " \
               f"(it starts {text[:120]!r})"
    return f"{head}. The chat template's {{% generation %}} block wraps none of these messages " \
           f"(the first renders as {text[:120]!r})"


def _all_masked_fix(backend: str, bad_roles: list[str], cut_off: list[int]) -> str:
    if bad_roles:
        return ROLE_FIX
    if cut_off:
        return "raise max_seq_length or shorten the system prompt and the conversation history"
    if backend == "unsloth":
        return ("set FinetuneConfig(instruction_part=..., response_part=...) to the text this model's template "
                "writes before a user and an assistant message (or use the model's own tokenizer)")
    return "use the model's own tokenizer and chat template; a template for another model family marks nothing"


def verify_labels(dataset: Any, *, source: str | None = None, backend: str = "peft") -> dict[str, int]:
    """Check a trainer's prepared dataset: every row has a label that is not -100 (the ground truth)."""
    if "labels" not in getattr(dataset, "column_names", []):
        return {"rows": len(dataset), "empty": 0, "checked": 0}
    empty = [i + 1 for i, row in enumerate(dataset["labels"]) if all(x == -100 for x in row)]
    if len(empty) == len(dataset):
        raise InputError("every label of the prepared training data is -100: training would learn nothing",
                         path=source, field="labels", fix=_all_masked_fix(backend, [], []))
    if empty:
        raise InputError(f"{len(empty)} prepared example(s) have every label -100 (lines {_lines(empty)})",
                         path=source, line=empty[0], field="labels", fix="raise max_seq_length or drop those examples")
    return {"rows": len(dataset), "empty": 0, "checked": len(dataset)}


def _trained_runs(ids: Sequence[int], trained: Sequence[bool]) -> list[list[int]]:
    """The stretches of consecutive trained token ids."""
    runs: list[list[int]] = []
    prev = False
    for i, t in zip(ids, trained, strict=True):
        if t:
            if not prev:
                runs.append([])
            runs[-1].append(i)
        prev = t
    return runs


def compare_labels(dataset: Any, tokenizer: Any, examples: Sequence[Any], *, parts: tuple[str, str],
                   max_length: int | None = None, source: str | None = None) -> dict[str, int]:
    """Check the labels a trainer prepared (Unsloth's ``train_on_responses_only``) against :func:`loss_view`:
    row by row, the trained stretches must be exactly the replies and their end-of-turn tokens, token for token
    (no whitespace allowance: a ``\\n`` or ``<|im_start|>`` trained after ``<|im_end|>`` is a difference).
    Raises :class:`InputError` naming the first rows that differ and showing the first difference."""
    labels = dataset["labels"]
    if len(labels) != len(examples):
        raise InputError(f"the trainer prepared {len(labels)} rows from {len(examples)} examples", path=source,
                         field="labels", fix="drop examples that are empty or too long (lesson 03's validator "
                         "flags them) and train again")
    differ: list[int] = []
    shown = ""
    for n, (row, ex) in enumerate(zip(labels, examples, strict=True), 1):
        got = _trained_runs(row, [x != -100 for x in row])
        view = loss_view(tokenizer, ex, backend="unsloth", max_length=max_length, parts=parts)
        want = _trained_runs(view.ids, view.trained)
        if got != want:
            differ.append(n)
            shown = shown or _first_difference(tokenizer, n, got, want)
    if differ:
        raise InputError(f"in {len(differ)} example(s) the prepared labels train on other tokens than the "
                         f"assistant replies and their end-of-turn token (lines {_lines(differ)}); {shown}",
                         path=source, line=differ[0], field="labels", fix=_labels_fix(tokenizer))
    return {"rows": len(labels), "checked": len(labels)}


def _first_difference(tokenizer: Any, n: int, got: list[list[int]], want: list[list[int]]) -> str:
    """``line N trains on '…' where the course expects '…'``, from a few tokens before the first difference."""
    g, w = next((g, w) for g, w in zip_longest(got, want, fillvalue=[]) if g != w)
    same = next((i for i, (a, b) in enumerate(zip(g, w, strict=False)) if a != b), min(len(g), len(w)))
    start = max(0, same - 6)

    def text(ids: list[int]) -> str:
        return repr(tokenizer.decode(ids[start:start + 16])) if ids else "nothing"

    return f"line {n} trains on {text(g)} where the course expects {text(w)}"


def _labels_fix(tokenizer: Any) -> str:
    eot = end_of_turn(tokenizer)
    if eot and tokenizer.eos_token != eot:
        return eos_fix(tokenizer.eos_token, eot)
    return ("set FinetuneConfig(instruction_part=..., response_part=...) to the exact text the chat template writes "
            "before a user and an assistant message")


def eos_fix(eos: str | None, eot: str) -> str:
    return (f"set tokenizer.eos_token = {eot!r} (it is {eos!r}): Unsloth ends each reply's labels at the EOS and TRL "
            "appends it to every text; for SmolLM2 re-convert with personalab.smollm.convert_smollm2(force=True)")


def check_eos(tokenizer: Any, source: str | None = None) -> None:
    """Raise :class:`InputError` when the tokenizer's EOS is not the token the chat template ends a reply with
    (SmolLM2's GGUF names ``<|im_start|>``): Unsloth's labels would run into the next turn."""
    eot = end_of_turn(tokenizer)
    if eot and tokenizer.eos_token != eot:
        raise InputError(f"the tokenizer's eos_token {tokenizer.eos_token!r} is not the token the chat template "
                         f"ends a reply with ({eot!r})", path=source, field="eos_token",
                         fix=eos_fix(tokenizer.eos_token, eot))
