"""The course's ChatML training template: the model's own rendering, plus ``{% generation %}`` markers.

PEFT + TRL's ``assistant_only_loss`` needs a chat template whose assistant replies sit inside
``{% generation %}...{% endgeneration %}``. ChatML models (SmolLM2, Qwen2.5) ship templates without them and
differ only in the system message they add when a chat has none, so one course-owned template covers them:
:func:`chatml_training_template` builds it with the model's default system message and returns it only when it
renders byte-identically to the model's own template on a set of probe chats. The markers wrap a reply's content
and its ``<|im_end|>``: exactly the tokens the model writes at inference (see :mod:`.masking`).
"""

from __future__ import annotations

import json
from typing import Any

START, END = "<|im_start|>", "<|im_end|>"

_TEMPLATE = (
    "{%- set default_system = DEFAULT_SYSTEM %}"
    "{%- if messages and messages[0]['role'] != 'system' and default_system is not none %}"
    "{{- '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

#: Chats the candidate must render exactly as the model's template does (with and without a system message,
#: several turns, text that looks like template syntax, non-ASCII), each with and without a generation prompt.
PROBES: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Add a task"}, {"role": "assistant", "content": "Done"},
     {"role": "user", "content": "Thanks"}, {"role": "assistant", "content": "Welcome"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
     {"role": "assistant", "content": "Hello!"}],
    [{"role": "user", "content": " padded \n{{ not a tag }} 'q' \"dq\" \\ é 🙂\n"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "x"}, {"role": "assistant", "content": ""}],
]


def chatml_template(default_system: str | None) -> str:
    """The course's ChatML template with generation markers; ``default_system`` is written when a chat has no
    system message (None: nothing is added)."""
    literal = "none" if default_system is None else json.dumps(default_system, ensure_ascii=False)
    return _TEMPLATE.replace("DEFAULT_SYSTEM", literal)


def default_system_message(tokenizer: Any) -> str | None:
    """The system message the tokenizer's ChatML template adds to a chat that has none (None: it adds none)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    head, user = f"{START}system\n", f"{END}\n{START}user\nx{END}"
    if not text.startswith(head) or user not in text:
        return None
    return text[len(head):text.index(user)]


def renders_alike(tokenizer: Any, template: str) -> bool:
    """Whether ``template`` renders every probe chat byte-identically to the tokenizer's own template."""
    for msgs in PROBES:
        for prompt in (False, True):
            try:
                own = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt)
            except Exception:  # noqa: BLE001 - a template that rejects a plain chat is not ChatML as we know it
                return False
            if own != tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt,
                                                    chat_template=template):
                return False
    return True


def chatml_training_template(tokenizer: Any) -> str | None:
    """The course's ChatML training template for this tokenizer, or None when its template is not ChatML or
    renders any probe chat differently (then the course cannot vouch for it)."""
    own = getattr(tokenizer, "chat_template", None)
    if not isinstance(own, str) or START not in own or END not in own:
        return None
    try:
        candidate = chatml_template(default_system_message(tokenizer))
    except Exception:  # noqa: BLE001 - the template cannot render a one-message chat
        return None
    return candidate if renders_alike(tokenizer, candidate) else None
