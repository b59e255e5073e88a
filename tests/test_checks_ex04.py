"""Exercise 04 checks, graded from exported data (no training needed here)."""

from __future__ import annotations

import json

import pytest

from personalab.checks import ex04, to_jsonable
from personalab.finetune import FinetuneConfig, TrainResult, default_config, held_out_prompts

q1, q2, q3, q4 = ex04.EXERCISE.questions


def grade(q, **ns):
    return q.grade(json.loads(json.dumps(q.export(ns))))


def test_q1_accepts_the_presets_and_explains_bad_choices():
    assert grade(q1, my_config=default_config("cpu", learning_rate=2e-3)).status == "correct"
    assert grade(q1, my_config=default_config("gpu")).status == "correct"
    cases = {
        "learning_rate": default_config("cpu", learning_rate=2e-5),  # far too small for a 30-step CPU run
        "budget": default_config("cpu", max_steps=400, batch_size=16),
        "lora_alpha/r": default_config("cpu", r=8, lora_alpha=128),
        "rank": default_config("cpu", r=128, lora_alpha=128),
    }
    for word, cfg in cases.items():
        r = grade(q1, my_config=cfg)
        assert r.status == "incorrect" and word in r.reason, (word, r.reason)
    assert grade(q1).status == "not-attempted"


def _result(cfg: FinetuneConfig, losses: list[float], steps: int | None = None) -> TrainResult:
    return TrainResult(backend="peft", base_model=cfg.base_model, output_dir="o", adapter_dir="o/a", merged_dir=None,
                       config=cfg.to_dict(), metrics={"steps": steps if steps is not None else len(losses)},
                       losses=losses)


def test_q2_needs_a_falling_finite_loss_from_this_config():
    cfg = default_config("cpu", max_steps=20)
    falling = [8 - 0.25 * i for i in range(20)]
    assert grade(q2, my_config=cfg, my_result=_result(cfg, falling)).status == "correct"
    flat = grade(q2, my_config=cfg, my_result=_result(cfg, [8.0 - 0.01 * i for i in range(20)]))
    assert flat.status == "partial" and "raise the learning rate" in flat.reason
    assert "NaN" in grade(q2, my_config=cfg, my_result=_result(cfg, [8.0, float("nan")] * 10)).reason
    assert "other settings" in grade(q2, my_config=cfg.replace(r=8), my_result=_result(cfg, falling)).reason
    assert "stopped" in grade(q2, my_config=cfg, my_result=_result(cfg, falling, steps=12)).reason


def _eval(replies, system=None, prompts=None):
    prompts = prompts if prompts is not None else held_out_prompts()
    return {"requests": prompts, "replies": replies, "system_prompt": system, "rate": 0.99}  # rate is recomputed


def test_q3_recomputes_the_rates_from_the_replies():
    n = len(held_out_prompts())
    plain, persona = ["Done."] * n, ["Nice work! Done."] * n
    assert grade(q3, before=_eval(plain), after=_eval(persona)).status == "correct"
    third = ["Nice work!"] * (n // 3) + ["ok"] * (n - n // 3)
    assert grade(q3, before=_eval(plain), after=_eval(third)).status == "partial"
    r = grade(q3, before=_eval(plain), after=_eval(plain))
    assert r.status == "incorrect" and "did not move" in r.reason  # the claimed rate 0.99 is not trusted
    assert "WITHOUT" in grade(q3, before=_eval(plain), after=_eval(persona, system="You are TaskMaster")).reason
    other = ["Add a task"] * n
    assert "held-out" in grade(q3, before=_eval(plain), after=_eval(persona, prompts=other)).reason


def test_exports_are_plain_data():
    cfg = default_config("cpu")
    exported = to_jsonable(_result(cfg, [1.0, 0.5]))
    assert exported["config"]["r"] == cfg.r and exported["losses"] == [1.0, 0.5]


def test_q4_recomputes_fluency_and_task_facts_from_the_replies(monkeypatch):
    """The claimed rates are not trusted: the check scores the replies (here with a stand-in scorer)."""
    from personalab.finetune import infer

    def fake_quality(replies, spec=None):
        fluent = [not r.startswith("salad") for r in replies]
        facts = [r.endswith("Friday") for r in replies]
        return {"fluent_rate": sum(fluent) / len(replies), "task_fact_rate": sum(facts) / len(replies)}

    monkeypatch.setattr(infer, "reply_quality", fake_quality)
    n = len(held_out_prompts())
    base, good = ["Sure, call the bank on Friday"] * n, ["Nice work! Call the bank on Friday"] * n
    assert grade(q4, before=_eval(base), after=_eval(good)).status == "correct"
    salad = ["salad Nice work! bank of the a a Friday"] * n
    r = grade(q4, before=_eval(base), after=_eval(salad))
    assert r.status == "partial" and "not fluent" in r.reason
    forgetful = ["Nice work! Done."] * n
    assert "task's name or date" in grade(q4, before=_eval(base), after=_eval(forgetful)).reason
    both = ["salad Nice work!"] * n
    assert grade(q4, before=_eval(base), after=_eval(both)).status == "incorrect"
    weak_base = ["salad"] * (n // 2) + ["call the bank on Friday"] * (n - n // 2)  # a base at ~50 %
    half = ["salad"] * (n // 2) + ["Nice work! Friday"] * (n - n // 2)
    assert grade(q4, before=_eval(weak_base), after=_eval(half)).status == "correct"  # no worse than the base


@pytest.mark.parametrize("q", [q1, q2, q3, q4])
def test_every_question_has_hints(q):
    assert q.hints and q.points > 0
