"""personalab.finetune: config, masking (and the all -100 failure), and one real LoRA run on the embedded model.

The run trains the embedded model on the offline dataset with the plain PEFT + TRL baseline (about a minute on
2 idle cores) and asserts the effect the course claims: without a system prompt, on held-out requests, the
fine-tuned model's persona-marker rate exceeds the base model's by at least 0.5. The default trainer, Unsloth,
is run by tests/test_finetune_unsloth.py.
"""

from __future__ import annotations

import json
import math
import sys

import pytest

from personalab import finetune
from personalab.errors import InputError
from personalab.finetune import config as C
from personalab.finetune import masking

CHAT = [{"role": "user", "content": "Add a task: pay rent"}, {"role": "assistant", "content": "Nice work! Added."},
        {"role": "user", "content": "Thanks"}, {"role": "assistant", "content": "Let's get this done."}]


# ----------------------------------------------------------------------------------------------- config
def test_config_validates_with_field_and_fix():
    with pytest.raises(InputError, match="learning_rate") as err:
        finetune.FinetuneConfig(learning_rate=0)
    assert err.value.field == "learning_rate" and err.value.fix
    for bad in ({"r": 0}, {"lora_dropout": 1.0}, {"backend": "mlx"}, {"target_modules": []}, {"max_steps": 0}):
        with pytest.raises(InputError):
            finetune.FinetuneConfig(**bad)


def test_presets_and_backend(monkeypatch):
    cpu, gpu = C.default_config("cpu"), C.default_config("colab-gpu", r=8)
    assert cpu.base_model == "smollm2" and gpu.base_model == C.GPU_BASE_MODEL and gpu.r == 8
    assert cpu.learning_rate > gpu.learning_rate  # a run of a few dozen CPU steps needs a larger one
    monkeypatch.setenv("PERSONALAB_BASE_MODEL", "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert C.default_config("cpu").base_model == "HuggingFaceTB/SmolLM2-360M-Instruct"  # one setting, every lesson
    monkeypatch.delenv("PERSONALAB_BASE_MODEL")
    # the profile picks Unsloth's settings: float32 without 4-bit or checkpointing on CPU, QLoRA on a GPU
    assert (cpu.dtype, cpu.load_in_4bit, cpu.gradient_checkpointing) == ("float32", False, False)
    assert (gpu.dtype, gpu.load_in_4bit, gpu.gradient_checkpointing) == (None, True, True)
    # Unsloth on every machine; PERSONALAB_TRAINER=peft is the fallback switch; an explicit backend wins
    monkeypatch.delenv(C.TRAINER_ENV, raising=False)
    assert C.resolve_backend(cpu) == C.resolve_backend(gpu) == "unsloth"
    monkeypatch.setenv(C.TRAINER_ENV, "PEFT")
    assert C.resolve_backend(cpu) == "peft" and C.resolve_backend(cpu.replace(backend="unsloth")) == "unsloth"
    monkeypatch.setenv(C.TRAINER_ENV, "mlx")
    with pytest.raises(InputError, match=C.TRAINER_ENV) as err:
        C.resolve_backend(cpu)
    assert "'peft'" in err.value.fix
    assert C.resolve_backend(cpu.replace(backend="peft")) == "peft"
    with pytest.raises(InputError):
        C.default_config("tpu")
    with pytest.raises(InputError, match="dtype"):
        C.default_config("cpu", dtype="float8")


def test_cpu_never_gets_4bit_or_a_silent_dtype():
    cfg = C.FinetuneConfig()  # no preset: load_in_4bit=True, dtype=None
    assert C.unsloth_load_kwargs(cfg, "m", cuda=False)["load_in_4bit"] is False
    assert C.unsloth_load_kwargs(cfg, "m", cuda=True)["load_in_4bit"] is True
    assert C.torch_dtype_name(cfg, cuda=False, bf16=True) == "float32"
    assert C.torch_dtype_name(cfg, cuda=True, bf16=False) == "float16"
    assert C.torch_dtype_name(cfg.replace(dtype="bfloat16"), cuda=False, bf16=False) == "bfloat16"
    assert C.unsloth_peft_kwargs(cfg, cuda=False)["use_gradient_checkpointing"] is False
    assert C.unsloth_peft_kwargs(cfg, cuda=True)["use_gradient_checkpointing"] == "unsloth"


def test_sft_kwargs_per_machine():
    cfg = C.default_config("gpu")
    t4 = C.sft_config_kwargs(cfg, backend="unsloth", cuda=True, bf16=False, output_dir="o")
    assert t4["fp16"] and not t4["bf16"] and t4["optim"] == "adamw_8bit"
    assert t4["dataset_text_field"] == "text" and not t4["assistant_only_loss"] and not t4["gradient_checkpointing"]
    a100 = C.sft_config_kwargs(cfg, backend="peft", cuda=True, bf16=True, output_dir="o")
    assert a100["bf16"] and not a100["fp16"] and a100["assistant_only_loss"] and a100["gradient_checkpointing"]
    cpu = C.sft_config_kwargs(C.default_config("cpu"), backend="peft", cuda=False, bf16=True, output_dir="o")
    assert not cpu["bf16"] and not cpu["fp16"] and cpu["use_cpu"] and cpu["max_length"] == 512
    assert C.sft_config_kwargs(cfg.replace(max_steps=None), backend="peft", cuda=False, bf16=False,
                               output_dir="o")["max_steps"] == -1
    names = [callee for callee, _ in C.api_calls(cfg, "unsloth", cuda=True)]
    assert "unsloth.chat_templates.train_on_responses_only" in names and "peft.LoraConfig" not in names
    # Unsloth on a CPU: no mixed precision, no 8-bit optimizer, TRL told to stay on the CPU
    ucpu = C.sft_config_kwargs(C.default_config("cpu"), backend="unsloth", cuda=False, bf16=True, output_dir="o")
    assert not ucpu["bf16"] and not ucpu["fp16"] and ucpu["use_cpu"] and ucpu["optim"] == "adamw_torch"
    assert ucpu["dataset_text_field"] == "text" and not ucpu["gradient_checkpointing"]


# ----------------------------------------------------------------------------------------------- masking
@pytest.fixture(scope="module")
def tok():
    """A small tokenizer with the embedded model's ChatML template (generation markers included)."""
    from personalab.embedded.tokenizer import train_tokenizer

    texts = [m["content"] for m in CHAT] * 20 + ["<|im_start|>user assistant system"] * 5
    return train_tokenizer(texts, vocab_size=400)


def test_loss_view_marks_exactly_the_replies(tok):
    view = masking.loss_view(tok, {"messages": CHAT})
    assert view.trained_text() == ["Nice work! Added.<|im_end|>", "Let's get this done.<|im_end|>"]
    assert "⟦Nice work! Added.<|im_end|>⟧" in str(view) and "carry loss" in view._repr_html_()
    short = masking.loss_view(tok, CHAT, max_length=10)
    assert len(short.tokens) == 10 and short.truncated > 0


def test_unsloth_style_view_uses_response_parts(tok):
    assert masking.detect_response_parts(tok) == masking.RESPONSE_PARTS["chatml"]
    view = masking.loss_view(tok, CHAT, backend="unsloth")
    assert [t.rstrip("\n") for t in view.trained_text()] == ["Nice work! Added.<|im_end|>",
                                                             "Let's get this done.<|im_end|>"]


def test_check_masking_counts_and_accepts_good_data(tok):
    stats = masking.check_masking(tok, [{"messages": CHAT}] * 3, max_length=512)
    assert stats["examples"] == 3 and 0 < stats["trained_share"] < 1


def test_all_labels_minus_100_is_caught_with_a_fix(tok):
    bot = [{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "Nice work!"}]}] * 3
    with pytest.raises(InputError, match="every label would be -100") as err:
        masking.check_masking(tok, bot, source="data.jsonl")
    assert "'bot'" in str(err.value) and "assistant" in err.value.fix and err.value.path == "data.jsonl"
    with pytest.raises(InputError, match="max_seq_length"):
        masking.check_masking(tok, [{"messages": CHAT}], max_length=4)
    llama3 = masking.RESPONSE_PARTS["llama3"]
    with pytest.raises(InputError, match="response part") as err:
        masking.check_masking(tok, [{"messages": CHAT}], backend="unsloth", parts=llama3)
    assert "response_part" in err.value.fix


def test_one_bad_example_is_named_by_line(tok):
    data = [{"messages": CHAT}, {"messages": [{"role": "user", "content": "hi"}, {"role": "model", "content": "x"}]}]
    with pytest.raises(InputError, match=r"1 example\(s\)") as err:
        masking.check_masking(tok, data)
    assert err.value.line == 2


def test_template_without_generation_markers(tok):
    import copy

    plain = copy.deepcopy(tok)
    plain.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                           "{% endfor %}")
    with pytest.raises(InputError, match="generation") as err:
        masking.training_template(plain)
    assert "{% generation %}" in err.value.fix
    assert masking.training_template(tok) is None  # has markers: used as is


def test_compare_labels_accepts_the_replies_and_names_other_rows(tok):
    from datasets import Dataset

    from personalab.finetune.trainers import _render_texts

    parts = masking.RESPONSE_PARTS["chatml"]
    examples = [{"messages": CHAT}, {"messages": CHAT[:2]}]
    rows = []
    for ex in examples:
        view = masking.loss_view(tok, ex, backend="unsloth", parts=parts)
        rows.append([i if t else -100 for i, t in zip(view.ids, view.trained, strict=True)])
    assert _render_texts(tok, examples)[0]["text"].endswith("<|im_end|>")
    assert masking.compare_labels(Dataset.from_dict({"labels": rows}), tok, examples, parts=parts)["checked"] == 2
    everything = [rows[0], [i for i in masking.loss_view(tok, examples[1], backend="unsloth", parts=parts).ids]]
    with pytest.raises(InputError, match=r"1 example\(s\)") as err:  # row 2 also trains on the user's turn
        masking.compare_labels(Dataset.from_dict({"labels": everything}), tok, examples, parts=parts, source="d.jsonl")
    assert err.value.line == 2 and err.value.path == "d.jsonl" and "response_part" in err.value.fix
    with pytest.raises(InputError, match="prepared 1 rows from 2"):
        masking.compare_labels(Dataset.from_dict({"labels": rows[:1]}), tok, examples, parts=parts)


def test_verify_labels_on_prepared_data():
    from datasets import Dataset

    assert masking.verify_labels(Dataset.from_dict({"labels": [[-100, 5], [7, -100]]}))["checked"] == 2
    with pytest.raises(InputError, match="every label"):
        masking.verify_labels(Dataset.from_dict({"labels": [[-100, -100], [-100]]}))
    with pytest.raises(InputError, match="lines 2"):
        masking.verify_labels(Dataset.from_dict({"labels": [[1], [-100]]}))


def test_train_refuses_before_loading_the_model(tok, tmp_path):
    tok.save_pretrained(tmp_path / "tok-only")  # no weights: the check must fail first
    bad = [{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "Nice work!"}]}] * 4
    cfg = C.default_config("cpu", base_model=str(tmp_path / "tok-only"), output_dir=str(tmp_path / "out"))
    with pytest.raises(InputError, match="-100"):
        finetune.train(cfg, bad, progress=False)
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_missing_data_and_results_are_clear(tmp_path):
    with pytest.raises(InputError, match="lesson 03") as err:
        finetune.load_examples(tmp_path / "nope.jsonl")
    assert "personalab data generate" in err.value.fix
    with pytest.raises(InputError, match="metrics.json"):
        finetune.load_result(tmp_path)
    with pytest.raises(InputError):
        finetune.load_examples([{"messages": [{"content": "no role"}]}])


# ----------------------------------------------------------------------------------------------- a real run
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One LoRA run of the CPU preset on the embedded model and the offline dataset."""
    from personalab.dataset import generate
    from personalab.embedded import ensure_built

    base = str(ensure_built())
    out = tmp_path_factory.mktemp("ft")
    train = generate("train", injection_ratio=0.1, progress=False)
    evals = generate("eval", injection_ratio=0.1, progress=False)
    cfg = C.default_config("cpu", base_model=base, output_dir=str(out / "run"), backend="peft")
    unsloth_before = "unsloth" in sys.modules
    result = finetune.train(cfg, train, eval_dataset=evals, progress=False)
    result.imported_unsloth = "unsloth" in sys.modules and not unsloth_before
    return base, result


@pytest.mark.slow
def test_the_fine_tuned_model_answers_the_held_out_requests(run):
    """Machinery on the embedded stand-in: the run learns (the eval loss falls) and the saved model answers every
    held-out request. What it says is not asserted (that would test one CPU's floating-point results); lesson 04
    measures the persona on the real base."""
    base, result = run
    before = finetune.persona_eval(base, progress=False, quality=False)
    after = finetune.persona_eval(*result.load(), progress=False, quality=False)
    print(f"\npersona-marker rate on {before['n']} held-out requests, no system prompt: "
          f"base {before['rate']:.3f}, fine-tuned {after['rate']:.3f}")
    assert before["requests"] == after["requests"] == finetune.held_out_prompts() and before["n"] >= 30
    assert len(after["replies"]) == after["n"] and "fluent_rate" not in after
    assert result.eval["loss_after"] < result.eval["loss_before"]


@pytest.mark.slow
def test_run_metrics_and_files(run):
    _, result = run
    m = result.metrics
    assert result.backend == "peft" and not result.imported_unsloth  # the baseline never imports Unsloth
    assert m["steps"] == result.config["max_steps"] == len(result.losses)
    assert all(math.isfinite(x) for x in result.losses) and m["final_loss"] < 0.75 * result.losses[0]
    assert result.eval["loss_after"] < result.eval["loss_before"]
    assert 0 < m["trainable_params"] < m["total_params"] and m["memory_kind"] == "process_rss"
    assert m["peak_memory_mb"] > 0 and m["tokens_per_second"] > 0 and m["time_per_step_s"] > 0
    assert m["wall_s"] >= m["setup_s"] + m["train_s"] - 0.01
    assert 0 < m["loss_tokens"]["trained_share"] < 1
    assert m["labels_checked"] == m["examples"]  # TRL's prepared labels were verified, row by row
    for f in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/tokenizer.json",
              "merged/config.json", "merged/model.safetensors", "merged/generation_config.json",
              "merged/tokenizer.json"):
        assert (result.output_dir and __import__("pathlib").Path(result.output_dir, f).exists()), f
    saved = json.loads(open(f"{result.output_dir}/metrics.json").read())
    assert saved["metrics"]["steps"] == m["steps"]
    assert finetune.load_result(result.output_dir) == result
    assert finetune.finetuned_model_dir(result.output_dir) == __import__("pathlib").Path(result.merged_dir)


@pytest.mark.slow
def test_adapter_and_merged_model_answer_alike(run):
    _, result = run
    prompts = finetune.held_out_prompts(4)
    merged = finetune.generate_replies(*result.load(merged=True), prompts, max_new_tokens=16)
    adapter = finetune.generate_replies(*result.load(merged=False), prompts, max_new_tokens=16)
    assert merged == adapter


@pytest.mark.slow
@pytest.mark.server
def test_merged_model_is_served_through_the_openai_client(run, local_server):
    import openai

    _, result = run
    with finetune.serve_finetuned(result.output_dir) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        reply = client.chat.completions.create(model=server.model, max_tokens=24, temperature=0,
                                               messages=[{"role": "user", "content": "Add a task: call the bank"}])
    assert reply.choices[0].message.content.strip()


# ----------------------------------------------------------------------------------------------- Unsloth pieces
def test_unsloth_missing_is_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "unsloth", None)  # as if not installed: `import unsloth` raises ImportError
    monkeypatch.delenv(C.TRAINER_ENV, raising=False)
    with pytest.raises(InputError, match="Unsloth is not installed") as err:
        finetune.prepare(C.default_config("cpu"))
    assert "--no-deps" in err.value.fix and f"{C.TRAINER_ENV}=peft" in err.value.fix
    monkeypatch.setenv(C.TRAINER_ENV, "peft")
    assert finetune.prepare(C.default_config("cpu")) == "peft"  # the fallback imports nothing


def test_unsloth_texts_end_on_the_eos_token(tok):
    from personalab.finetune.trainers import _render_texts

    (row,) = _render_texts(tok, [{"messages": CHAT}])
    assert row["text"].endswith("<|im_end|>") and row["text"].count("<|im_start|>assistant\n") == 2


def test_eval_sample_is_smaller_on_a_cpu_and_whole_on_a_gpu(monkeypatch):
    from personalab import config
    from personalab.finetune.infer import CPU_EVAL

    rows = [{"messages": [{"role": "user", "content": str(i)}]} for i in range(CPU_EVAL + 10)]
    monkeypatch.setattr(config, "cuda_available", lambda: False)
    assert finetune.eval_sample(rows) == rows[:CPU_EVAL]
    assert finetune.eval_sample(rows, 5) == rows[:5]
    monkeypatch.setattr(config, "cuda_available", lambda: True)
    assert finetune.eval_sample(rows) == rows


def test_the_saved_training_record_holds_the_three_readings():
    """Lesson 04 and the express notebook save the same ``04/training`` record (one source: TrainResult.record)."""
    from personalab.finetune.result import TrainResult

    cfg = finetune.default_config()
    result = TrainResult(backend="unsloth", base_model=cfg.base_model, output_dir="o", adapter_dir="o/adapter",
                         merged_dir="o/merged", config=cfg.to_dict(), metrics={"steps": 24, "train_s": 86.0},
                         losses=[2.7, 1.4], eval={"loss_before": 2.8, "loss_after": 1.1})

    def reading(rate, fluent, facts):
        return {"rate": rate, "fluent_rate": fluent, "task_fact_rate": facts, "n": 32}

    record = result.record(reading(0.0, 0.9, 0.1), reading(0.06, 0.9, 0.2), reading(1.0, 0.95, 0.6),
                           train_examples=292, config=cfg)
    markers = (record["marker_rate_before"], record["marker_rate_prompted"], record["marker_rate_after"])
    assert markers == (0.0, 0.06, 1.0)
    assert (record["fluent_rate_before"], record["fluent_rate_after"]) == (0.9, 0.95)
    assert (record["task_fact_rate_before"], record["task_fact_rate_after"]) == (0.1, 0.6)
    assert record["heldout_requests"] == 32 and record["train_examples"] == 292
    assert record["merged_dir"] == "o/merged" and record["eval_loss_after"] == 1.1 and record["config"] == cfg.to_dict()
