"""The lessons' "check your understanding" questions: the right answer is what the learner's own run measured."""

from __future__ import annotations

import json

import pytest

from personalab.checks import to_jsonable
from personalab.checks.understanding import LESSONS, lesson
from personalab.decision import Evidence, recommend


def grade(q, **values):
    exported = json.loads(json.dumps({n: to_jsonable(values[n]) for n in q.names if n in values} |
                                     {n: {"__missing__": n} for n in q.names if n not in values}))
    return q.grade(exported)


RATES = {"no system prompt": 0.0, "TaskMaster prompt": 0.04}


def test_lesson_00_and_03_read_the_learners_own_model_and_dataset():
    q1, q2 = lesson("00").questions
    base = {"parameters": 134_515_008, "context_window": 8192}
    assert grade(q1, parameters_millions=135, base=base).status == "correct"  # rounded is fine
    assert grade(q1, parameters_millions=360, base=base).status == "incorrect"
    assert grade(q2, context_tokens=8192, base=base).status == "correct"
    assert grade(q2, context_tokens=32768, base=base).status == "incorrect"
    q1, q2 = lesson("03").questions
    assert grade(q1, marker_share=0.97, coverage={"coverage": 0.965}).status == "correct"
    assert grade(q1, marker_share=0.5, coverage={"coverage": 0.965}).status == "incorrect"
    assert grade(q2, training_cost_usd=0.07, openai_cost={"cost_usd": 0.0712}).status == "correct"
    assert grade(q2, training_cost_usd=7.12, openai_cost={"cost_usd": 0.0712}).status == "incorrect"


def test_lesson_01_answers_follow_the_learners_rates():
    q1, q2, _ = lesson("01").questions
    assert grade(q1, rates=RATES).status == "not-attempted"  # the answer line is still commented out
    assert grade(q1, marker_gain=0.04, rates=RATES).status == "correct"
    assert grade(q1, marker_gain=0.05, rates=RATES).status == "correct"  # read off a table rounded to 1 %
    assert grade(q1, marker_gain=0.4, rates=RATES).status == "incorrect"
    assert grade(q1, marker_gain=True, rates=RATES).status == "incorrect"
    assert grade(q2, prompt_steers=False, rates=RATES).status == "correct"
    assert grade(q2, prompt_steers=True, rates=RATES).status == "incorrect"
    strong = {"no system prompt": 0.1, "TaskMaster prompt": 0.9}  # a larger model: the same question, another answer
    assert grade(q2, prompt_steers=True, rates=strong).status == "correct"
    assert grade(q2, prompt_steers="yes", rates=strong).status == "incorrect"


def test_lesson_02_tokens_and_the_cheaper_side():
    q1, q2, _ = lesson("02").questions
    assert grade(q1, tokens_per_request=141, persona_tokens=141).status == "correct"
    assert grade(q1, tokens_per_request=140, persona_tokens=141).status == "incorrect"
    monthly = {"system prompt": 43.5, "fine-tuned": 61.2}
    assert grade(q2, cheaper_at_500k="system prompt", monthly=monthly).status == "correct"
    r = grade(q2, cheaper_at_500k="fine-tuned", monthly=monthly)
    assert r.status == "incorrect" and "system prompt $43.50" in r.reason
    assert "answer one of" in grade(q2, cheaper_at_500k="prompt", monthly=monthly).reason


def test_lesson_04_change_and_fluency():
    q1, q2, _ = lesson("04").questions
    before, after = {"rate": 0.0, "fluent_rate": 0.96}, {"rate": 1.0, "fluent_rate": 1.0}
    assert grade(q1, marker_rate_change=1.0, before=before, after=after).status == "correct"
    assert grade(q1, marker_rate_change=0.5, before=before, after=after).status == "incorrect"
    assert grade(q2, still_fluent=True, after=after).status == "correct"
    assert grade(q2, still_fluent=True, after={"rate": 1.0, "fluent_rate": 0.3}).status == "incorrect"
    assert "run the lesson's cells" in grade(q2, still_fluent=True, after=None).reason


def test_lesson_05_overlap_and_unusable_share():
    q1, q2 = lesson("05").questions
    held = {"prompted": {"value": 0.0, "low": 0.0, "high": 0.0, "n": 14},
            "fine-tuned": {"value": 0.64, "low": 0.36, "high": 0.86, "n": 14},
            "hybrid (Marketing)": {"value": 0.1, "low": 0.0, "high": 0.3, "n": 14}}
    assert grade(q1, intervals_overlap=False, held_all=held).status == "correct"
    assert grade(q1, intervals_overlap=True, held_all=held).status == "incorrect"
    held["prompted"] |= {"value": 0.4, "low": 0.2, "high": 0.6}
    assert grade(q1, intervals_overlap=True, held_all=held).status == "correct"
    drift = {"prompted": {"unusable_share": 0.4375}, "fine-tuned": {"unusable_share": 0.0}}
    assert grade(q2, prompted_unusable_share=0.44, drift_rules=drift).status == "correct"
    assert grade(q2, prompted_unusable_share=0.0, drift_rules=drift).status == "incorrect"


def test_lesson_06_reads_the_two_recommendations():
    q1, q2, _ = lesson("06").questions
    article = recommend(300_000, "quarterly", True, True)
    measured = recommend(300_000, "quarterly", True, True, evidence=Evidence(break_even_never=True, cost_source="c"))
    assert measured.factor("volume").favours != article.factor("volume").favours
    assert grade(q1, approach_with_your_numbers=measured.approach, measured=measured).status == "correct"
    assert grade(q1, approach_with_your_numbers="prompt", measured=measured).status == "incorrect"
    assert grade(q2, overruled=["volume"], article=article, measured=measured).status == "correct"
    assert grade(q2, overruled=[], article=article, measured=measured).status == "incorrect"
    assert grade(q2, overruled=[], article=article, measured=article).status == "correct"


@pytest.mark.parametrize("number", sorted(LESSONS))
def test_every_question_has_a_hint_and_its_lesson_asks_it(number):
    from personalab.authoring.layout import REPO_ROOT

    for q in lesson(number).questions:
        assert q.hints, q.title
    [src] = (REPO_ROOT / "notebooks_src" / "lessons").glob(f"{number}_*.py")
    text = src.read_text(encoding="utf-8")
    assert f'lesson("{number}")' in text
    for q in lesson(number).questions:
        answer = q.names[0]
        assert f"# {answer} = ..." in text, f"lesson {number} leaves `{answer}` for the learner to fill in"


def test_lesson_01_few_shot_intervals():
    *_, q3 = lesson("01").questions
    from personalab.general import count_summary, wilson_interval

    def row(label, k, n=12):
        low, high = wilson_interval(k, n)
        return {"prompt": label, "replies with a marker": count_summary(k, n), "marker low": low, "marker high": high}

    close = [row("TaskMaster prompt", 1), row("prompt + 3 examples", 4)]  # 1-35 % and 14-61 %: they overlap
    assert grade(q3, few_shot_intervals_overlap=True, few_shot_rows=close).status == "correct"
    r = grade(q3, few_shot_intervals_overlap=False, few_shot_rows=close)
    assert r.status == "incorrect" and "4 of 12" in r.reason
    apart = [row("TaskMaster prompt", 0), row("prompt + 3 examples", 10)]  # 0-24 % and 55-95 %
    assert grade(q3, few_shot_intervals_overlap=False, few_shot_rows=apart).status == "correct"
    assert grade(q3, few_shot_intervals_overlap="no", few_shot_rows=apart).status == "incorrect"
    assert "run the few-shot cells" in grade(q3, few_shot_intervals_overlap=True, few_shot_rows=[]).reason


def test_lesson_02_distillation_break_even():
    *_, q3 = lesson("02").questions
    low = {"gpt-4o-mini": {"pay per hour": 900.0, "always on": 400_000.0}}
    high = {"gpt-4o-mini": {"pay per hour": 900.0, "always on": 1_300_000.0}}
    never = {"gpt-4o-mini": {"pay per hour": None, "always on": None}}
    assert grade(q3, distilled_cheaper_at_500k=True, distill_break_even=low).status == "correct"
    assert grade(q3, distilled_cheaper_at_500k=False, distill_break_even=low).status == "incorrect"
    r = grade(q3, distilled_cheaper_at_500k=True, distill_break_even=high)
    assert r.status == "incorrect" and "1,300,000" in r.reason
    assert grade(q3, distilled_cheaper_at_500k=False, distill_break_even=never).status == "correct"


def test_lesson_06_change_slowdown():
    *_, q3 = lesson("06").questions
    rows = [{"approach": "edit the system prompt", "until the new voice answers, s": 0.5},
            {"approach": "fine-tune again", "until the new voice answers, s": 150.0}]
    assert grade(q3, change_slowdown=300, change_rows=rows).status == "correct"
    assert grade(q3, change_slowdown=310, change_rows=rows).status == "correct"  # read off a rounded table
    assert grade(q3, change_slowdown=150, change_rows=rows).status == "incorrect"
    missing = [rows[0], {"approach": "fine-tune again", "until the new voice answers, s": None}]
    assert "run lesson 04" in grade(q3, change_slowdown=300, change_rows=missing).reason


def test_lesson_04_curve_question_reads_the_learners_curve():
    from personalab.learning_curve import LearningCurve, Point

    *_, q3 = lesson("04").questions
    curve = LearningCurve([Point(25, 32, 20, 32, 10, 30), Point(50, 32, 30, 32, 12, 30),
                           Point(100, 32, 32, 31, 20, 30)], "smollm2")
    r = grade(q3, fewest_examples=50, curve=curve)
    assert r.status == "correct" and "50 examples" in r.reason
    assert grade(q3, fewest_examples=100, curve=curve).status == "incorrect"
    never = LearningCurve([Point(25, 32, 2, 32, 10, 30)], "smollm2")
    assert grade(q3, fewest_examples=None, curve=never).status == "correct"
    assert grade(q3, fewest_examples=25, curve=never).status == "incorrect"
    assert "section 10" in grade(q3, fewest_examples=25, curve=None).reason
