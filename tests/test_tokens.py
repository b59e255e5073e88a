"""Token counts: offline tiktoken encodings verified by hash, OpenAI's chat recipe, local chat templates."""

from __future__ import annotations

import hashlib
import re
import struct

import pytest

from personalab import tokens
from personalab.errors import InputError

# The example of OpenAI's cookbook "How to count tokens with tiktoken", with the prompt_tokens the API reported.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base "
        "on opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


def _tiktoken_expected_hash(name: str) -> str:
    import inspect

    from tiktoken_ext import openai_public

    src = inspect.getsource(openai_public.ENCODING_CONSTRUCTORS[name])
    return re.search(r'expected_hash="([0-9a-f]{64})"', src).group(1)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_offline_encoding_matches_tiktoken_hash(name):
    data = tokens.verified_bpe_file(name, _tiktoken_expected_hash(name))
    assert hashlib.sha256(data).hexdigest() == _tiktoken_expected_hash(name)
    enc = tokens.encoding(name)
    assert enc.name == name
    assert enc.n_vocab == {"cl100k_base": 100277, "o200k_base": 200019}[name]


def test_wrong_hash_is_refused():
    with pytest.raises(tokens.TokenizerUnavailable, match="expected hash"):
        tokens.verified_bpe_file("o200k_base", "0" * 64)


def test_known_token_ids():
    assert tokens.encoding("o200k_base").encode("hello world") == [24912, 2375]
    assert tokens.encoding("cl100k_base").encode("hello world") == [15339, 1917]


def test_quicktok_conversion_roundtrip():
    blob = struct.pack("<I", 2) + struct.pack("<H", 2) + b"hi" + struct.pack("<I", 1)
    blob += struct.pack("<H", 1) + b"!" + struct.pack("<I", 0)
    assert tokens.quicktok_vocab_to_tiktoken(blob) == b"IQ== 0\naGk= 1\n"
    with pytest.raises(ValueError, match="trailing"):
        tokens.quicktok_vocab_to_tiktoken(blob + b"x")


def test_agrees_with_quicktok_on_persona():
    quicktok = pytest.importorskip("quicktok")
    from personalab.persona import taskmaster

    text = taskmaster().render()
    for name in ("o200k_base", "cl100k_base"):
        assert len(tokens.encoding(name).encode(text)) == len(quicktok.get_encoding(name).encode(text))


@pytest.mark.parametrize(
    ("model", "expected"), [("gpt-3.5-turbo", 129), ("gpt-4", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124)]
)
def test_cookbook_counts_equal_api_prompt_tokens(model, expected):
    assert tokens.count_messages(COOKBOOK, model) == expected


@pytest.mark.parametrize(
    ("model", "enc"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1-mini", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:org:taskmaster:abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
    ],
)
def test_model_to_encoding(model, enc):
    assert tokens.encoding_name_for_model(model) == enc


def test_unknown_model_and_bad_messages():
    with pytest.raises(InputError, match="unknown OpenAI model") as info:
        tokens.count_text("hi", "llama-banana")
    assert info.value.field == "model"
    with pytest.raises(InputError, match="role"):
        tokens.count_messages([{"content": "x"}])
    with pytest.raises(InputError):
        tokens.count_messages("just a string")


def test_persona_overhead_is_text_plus_message_overhead():
    prompt = "You are TaskMaster, a productivity coach."
    out = tokens.persona_overhead(prompt, ["Add a task", "Plan my week"], "gpt-4o-mini")
    enc = tokens.encoding("o200k_base")
    text = len(enc.encode(prompt))
    assert out["text_tokens"] == text
    # content + role ("system" is one token) + the per-message overhead
    assert out["added_prompt_tokens"] == text + len(enc.encode("system")) + tokens.TOKENS_PER_MESSAGE


@pytest.fixture(scope="module")
def chatml_dir(tmp_path_factory):
    """A tiny local tokenizer with a ChatML template (what the embedded model uses)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = ["You are TaskMaster, a productivity coach.", "Add a task: write the report.", "Great choice! Nice work!"]
    tok.train_from_iterator(
        texts * 20,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", chat_template=template)
    from tokenizers import decoders

    fast.backend_tokenizer.decoder = decoders.ByteLevel()
    path = tmp_path_factory.mktemp("chatml")
    fast.save_pretrained(path)
    return path


def test_count_local_uses_chat_template(chatml_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(chatml_dir)
    msgs = [{"role": "system", "content": "You are TaskMaster."}, {"role": "user", "content": "Add a task."}]
    rendered = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs) + "<|im_start|>assistant\n"
    expected = len(tok(rendered, add_special_tokens=False)["input_ids"])
    assert tokens.count_local(msgs, chatml_dir) == expected
    assert tokens.count(msgs, model_dir=chatml_dir) == expected
    out = tokens.persona_overhead("You are TaskMaster.", ["Add a task."], model_dir=chatml_dir)
    sys_block = len(tok("<|im_start|>system\nYou are TaskMaster.<|im_end|>\n", add_special_tokens=False)["input_ids"])
    assert out["added_prompt_tokens"] == sys_block


def test_count_local_missing_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        tokens.count_local([{"role": "user", "content": "x"}], tmp_path / "nope")


@pytest.mark.server
def test_local_count_equals_server_usage(request):
    """The count from the model's own tokenizer + template equals the server's usage.prompt_tokens."""
    try:
        server = request.getfixturevalue("local_server")
    except pytest.FixtureLookupError:
        pytest.skip("the local_server fixture is not available in this checkout")
    model_dir = getattr(server, "model_dir", None)
    if model_dir is None:
        from personalab import embedded

        model_dir = embedded.ensure_built()
    from openai import OpenAI

    from personalab.persona import taskmaster

    client = OpenAI(base_url=server.base_url, api_key="not-needed")
    for msgs in (
        [{"role": "user", "content": "Add a task: finish the quarterly report."}],
        [{"role": "system", "content": taskmaster().render()}, {"role": "user", "content": "Plan my week."}],
    ):
        resp = client.chat.completions.create(model=server.model, messages=msgs, max_tokens=1)
        assert resp.usage is not None, "the server reports no usage"
        assert resp.usage.prompt_tokens == tokens.count_local(msgs, model_dir)
