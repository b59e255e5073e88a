"""Exercise 06 checks: the model solution earns full marks; typical mistakes get the right feedback."""

from __future__ import annotations

import json

import pytest

from personalab import decision
from personalab.checks import ex06


def grade(q, **ns):
    return q.grade(json.loads(json.dumps(q.export(ns))))


def verdicts(rec):
    return {k: rec.factor(k).favours or "neutral" for k in ex06.FACTOR_KEYS}


@pytest.fixture()
def solution():
    a = {"monthly_requests": 360_000.0, "persona_change_frequency": "twice a year", "public_facing": True,
         "consistency_critical": True}
    b = {"monthly_requests": 12_000, "persona_change_frequency": "weekly", "public_facing": False,
         "consistency_critical": True, "personas": 4}
    rec_a = decision.recommend(**a)
    mine = {"description": "A study planner for a university, used by students during exam season to plan "
                           "their revision week by week.",
            "monthly_requests": 25_000, "persona_change_frequency": "quarterly", "public_facing": True,
            "consistency_critical": False}
    return {
        "analysis_a": a,
        "recommendation_a": rec_a.approach,
        "verdicts_a": verdicts(rec_a),
        "justification_a": "Fine-tuning: at 360,000 requests a month the volume is high, the persona changes only "
                           "twice a year so retraining is rare, the app is public so jailbreak attempts will come, "
                           "and the brand-critical voice must not drift.",
        "analysis_b": b,
        "recommendation_b": decision.recommend(**b).approach,
        "hybrid_design": {"core": [e for e, where in ex06.ELEMENTS.items() if where == "core"],
                          "overlays": [e for e, where in ex06.ELEMENTS.items() if where == "overlay"]},
        "my_case": mine,
        "my_recommendation": "fine-tuning",
        "my_justification": "Fine-tuning: the volume of 25,000 requests is in the middle band, the persona changes "
                            "quarterly so retraining is fine, the bot is public so jailbreaks are likely, and "
                            "consistency is only nice-to-have.",
    }


def test_expected_answers_by_hand():
    assert ex06.expected_a()["monthly_requests"] == 360_000
    assert ex06.expected_b()["monthly_requests"] == 12_000
    assert decision.recommend(**ex06.expected_a()).approach == "fine-tuning"
    assert decision.recommend(**ex06.expected_b()).approach == "hybrid"
    assert set(ex06.ELEMENTS.values()) == {"core", "overlay"}


def test_solution_gets_full_marks(solution):
    for q in ex06.EXERCISE.questions:
        r = grade(q, **solution)
        assert r.status == "correct" and r.points == r.max_points, (q.id, r)
    assert ex06.EXERCISE.max_points == 10


def test_untouched_is_not_attempted():
    for q in ex06.EXERCISE.questions:
        assert grade(q).status == "not-attempted"


def test_q1_wrong_volume_and_flags_get_partial_credit(solution):
    a = {**solution["analysis_a"], "monthly_requests": 8_000 * 1.5, "public_facing": False}  # forgot x 30
    r = grade(ex06.q1, analysis_a=a)
    assert r.status == "partial" and r.points == 1.0
    assert "monthly_requests" in r.reason and "and 1 more" in r.reason
    r = grade(ex06.q1, analysis_a={**solution["analysis_a"], "persona_change_frequency": "sometimes"})
    assert r.status == "incorrect" and "twice a year" in r.reason  # the fix lists the words
    r = grade(ex06.q1, analysis_a={**solution["analysis_a"], "persona_change_frequency": 2 / 12})
    assert r.ok  # a number of changes per month is fine
    r = grade(ex06.q1, analysis_a={"monthly_requests": 360_000})
    assert r.status == "incorrect" and "missing" in r.reason


def test_q2_is_checked_against_the_learners_own_analysis(solution):
    # a wrong analysis (internal, not critical, monthly): the framework's answer for *that* analysis is right
    a = {"monthly_requests": 360_000, "persona_change_frequency": "weekly", "public_facing": False,
         "consistency_critical": False}
    rec = decision.recommend(**a)
    assert rec.approach == "hybrid"
    r = grade(ex06.q2, analysis_a=a, recommendation_a=rec.approach, verdicts_a=verdicts(rec),
              justification_a="Hybrid: the volume of 360,000 requests is high, but it changes weekly; it is internal "
                              "so security is no issue, and consistency in the brand voice is nice to have only.")
    assert r.ok, r
    # the article's answer for case A, but not what the learner's analysis implies
    r = grade(ex06.q2, analysis_a=a, recommendation_a="fine-tuning", verdicts_a=verdicts(rec),
              justification_a=solution["justification_a"])
    assert r.status == "partial" and "recommends 'hybrid'" in r.reason


def test_q2_verdicts_and_justification(solution):
    ns = dict(solution)
    ns["verdicts_a"] = {**solution["verdicts_a"], "security": "system prompt"}
    r = grade(ex06.q2, **ns)
    assert r.status == "partial" and "security" in r.reason and r.points == pytest.approx(3 * (1 + 0.75 + 1) / 3)
    ns = dict(solution, justification_a="Fine-tuning because it is better.")
    r = grade(ex06.q2, **ns)
    assert r.status == "partial" and "words" in r.reason and r.points == pytest.approx(2)
    ns = dict(solution, justification_a="We will use a system prompt because " + "it is simple and cheap " * 6)
    r = grade(ex06.q2, **ns)
    assert "'fine-tuning'" in r.reason and r.status == "partial"
    ns = dict(solution, verdicts_a={**solution["verdicts_a"], "volume": "maybe"})
    assert "must be one of" in grade(ex06.q2, **ns).reason
    ns = dict(solution, recommendation_a="fine tuning please")
    assert grade(ex06.q2, **ns).status == "incorrect"


def test_justification_must_address_each_factor(solution):
    text = ("Fine-tuning: at 360,000 requests a month the volume is high and the persona changes only twice a "
            "year, so retraining is rare and cheap enough for a team like ours to handle well.")
    r = grade(ex06.q2, **dict(solution, justification_a=text))
    assert r.status == "partial" and "security, consistency" in r.reason


def test_q3_design_mistakes(solution):
    design = solution["hybrid_design"]
    moved = {"core": design["core"] + ["this week's focus"],
             "overlays": [e for e in design["overlays"] if e != "this week's focus"]}
    r = grade(ex06.q3, **dict(solution, hybrid_design=moved))
    assert r.status == "partial" and "this week's focus" in r.reason and "overlays" in r.reason
    r = grade(ex06.q3, **dict(solution, hybrid_design={"core": design["core"], "overlays": design["overlays"][:1]}))
    assert r.status == "partial" and "in neither list" in r.reason
    r = grade(ex06.q3, **dict(solution, hybrid_design={"core": ["the logo"], "overlays": []}))
    assert r.status == "partial" and "ELEMENTS" in r.reason and r.points == pytest.approx(2)
    r = grade(ex06.q3, **dict(solution, analysis_b={**solution["analysis_b"], "personas": 1},
                              recommendation_b="hybrid"))
    # a wrong persona count costs analysis credit only: with one persona the framework still says hybrid
    assert r.status == "partial" and "personas" in r.reason


def test_q4_own_case(solution):
    r = grade(ex06.q4, **dict(solution, my_recommendation="system prompt"))
    assert r.status == "partial" and r.points == pytest.approx(0.5) and "'fine-tuning'" in r.reason
    r = grade(ex06.q4, **dict(solution, my_case={**solution["my_case"], "description": "a bot"}))
    assert r.status == "incorrect" and "10 words" in r.reason
    r = grade(ex06.q4, **dict(solution, my_case={**solution["my_case"], "public_facing": "yes"}))
    assert r.status == "incorrect" and "public_facing" in r.reason
    r = grade(ex06.q4, **dict(solution, my_justification="Fine-tuning. " * 30))
    assert r.status == "partial" and "does not address" in r.reason


def test_check_never_crashes_on_odd_values(solution):
    odd = [None, 3, "x", [1, 2], {"a": 1}, float("nan")]
    for q in ex06.EXERCISE.questions:
        for name in q.names:
            for value in odd:
                r = grade(q, **dict(solution, **{name: value}))
                assert r.status in ("incorrect", "partial"), (q.id, name, value, r)
