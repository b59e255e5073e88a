"""Lesson 05's reply cap per profile: the CPU keeps its measured budget, the GPU's fits the training replies."""

from __future__ import annotations

import json

import pytest

from personalab import budget, config, evaluate
from personalab.dataset import DatasetPaths, build_default_datasets


def test_each_profile_gets_its_own_cap():
    assert evaluate.suite_settings(quick=True, cpu=True).max_tokens == evaluate.CPU_REPLY_TOKENS == 48
    assert evaluate.suite_settings(quick=False, cpu=False).max_tokens == evaluate.GPU_REPLY_TOKENS
    assert evaluate.suite_settings(quick=True, cpu=False).max_tokens == evaluate.GPU_REPLY_TOKENS
    assert evaluate.reply_tokens(cpu=False) > evaluate.reply_tokens(cpu=True)


def test_the_gpu_budget_counts_the_gpu_cap():
    drift = next(p for p in budget.request_budget("colab-gpu").lesson("05") if p.what.startswith("drift"))
    assert drift.new_tokens == drift.completions * evaluate.GPU_REPLY_TOKENS
    cpu_drift = next(p for p in budget.request_budget("cpu").lesson("05") if p.what.startswith("drift"))
    assert cpu_drift.new_tokens == cpu_drift.completions * evaluate.CPU_REPLY_TOKENS


def test_gpu_cap_fits_95_percent_of_the_training_replies(tmp_path):
    """The constant's reason, recounted: lesson 03's offline train split under the CPU base's tokenizer."""
    from transformers import AutoTokenizer

    from personalab import models

    try:
        tokenizer = AutoTokenizer.from_pretrained(models.model_dir(config.SMOLLM2))
    except Exception as exc:  # noqa: BLE001 - the converted base model is not on this machine
        pytest.skip(f"SmolLM2 is not available here: {exc}")
    paths = build_default_datasets(paths=DatasetPaths(tmp_path / "train.jsonl", tmp_path / "eval.jsonl"),
                                   progress=False)
    lengths = [len(tokenizer(m["content"], add_special_tokens=False)["input_ids"])
               for line in paths.train.read_text(encoding="utf-8").splitlines()
               for m in json.loads(line)["messages"] if m["role"] == "assistant"]
    assert len(lengths) > 100
    fits = sum(n <= evaluate.GPU_REPLY_TOKENS for n in lengths) / len(lengths)
    assert fits >= 0.95, f"{evaluate.GPU_REPLY_TOKENS} tokens fit only {fits:.1%} of {len(lengths)} replies"
    cpu_fits = sum(n <= evaluate.CPU_REPLY_TOKENS for n in lengths) / len(lengths)
    assert cpu_fits < 0.95  # the reason for a larger GPU cap: 48 tokens cut off the longer replies


def test_lesson_04_evaluates_with_the_suites_caps():
    """Lesson 04's held-out replies are judged at the same length as lesson 05's suites, on each profile."""
    from personalab.finetune import infer

    assert infer.eval_tokens(cpu=True) == evaluate.CPU_REPLY_TOKENS
    assert infer.eval_tokens(cpu=False) == evaluate.GPU_REPLY_TOKENS
