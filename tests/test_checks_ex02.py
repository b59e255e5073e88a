"""Exercise 02 checks: the model solution earns full marks, typical mistakes get the right feedback."""

from __future__ import annotations

import json

import pytest

checks = pytest.importorskip("personalab.checks")
if not hasattr(checks, "Exercise"):
    pytest.skip("the checks framework is not in this checkout yet", allow_module_level=True)

from personalab import costs  # noqa: E402
from personalab.checks import ex02  # noqa: E402


def grade(q, **ns):
    return q.grade(json.loads(json.dumps(q.export(ns))))


@pytest.fixture()
def solution():
    """The namespace the solution notebook builds (computed with personalab.costs)."""
    w = costs.Workload(persona_tokens=800, user_tokens=60, response_tokens=150)
    base, ft = costs.Rates(input=0.40, output=1.60), costs.Rates(input=0.80, output=3.20)
    training = costs.training_cost(1_500_000, 3, 5.00)
    saving = costs.per_request_cost(w, base) - costs.per_request_cost(w, ft, finetuned=True)
    return {
        "q1_answer": {
            "prompt_per_request": costs.per_request_cost(w, base),
            "prompt_monthly": costs.monthly_cost(w, base, 200_000),
            "finetuned_per_request": costs.per_request_cost(w, ft, finetuned=True),
            "finetuned_monthly": costs.monthly_cost(w, ft, 200_000, finetuned=True),
        },
        "training_usd": training,
        "break_even_requests": training / 12 / saving,
        "break_even_persona_500": None,
        "threshold_1_turn": costs.persona_break_even_tokens(costs.Workload(0, 60, 150), base, ft),
        "threshold_10_turns": costs.persona_break_even_tokens(costs.Workload(0, 60, 150, turns=10), base, ft),
        "claims": {"a": False, "b": True, "c": True, "d": True, "e": False},
        "latency_rows": [
            {"system_prompt_tokens": 0, "prompt_tokens": 50, "ttft_ms": 20.0},
            {"system_prompt_tokens": 200, "prompt_tokens": 250, "ttft_ms": 30.0},
            {"system_prompt_tokens": 800, "prompt_tokens": 850, "ttft_ms": 60.0},
        ],
        "ms_per_100_tokens": 5.0,
    }


def test_expected_values_by_hand():
    assert ex02.expected_q1()["prompt_per_request"] == pytest.approx(0.000584)
    assert ex02.expected_q1()["finetuned_monthly"] == pytest.approx(105.6)
    assert ex02.expected_training() == pytest.approx(22.5)
    assert ex02.expected_break_even(800) == pytest.approx(1.875 / 0.000056)
    assert ex02.expected_break_even(500) is None
    assert ex02.expected_threshold(1) == pytest.approx(660)
    assert ex02.expected_threshold(10) == pytest.approx(1605)


def test_solution_gets_full_marks(solution):
    results = [grade(q, **solution) for q in ex02.EXERCISE.questions]
    assert [r.status for r in results] == ["correct"] * 5, [r.reason for r in results]
    assert sum(r.points for r in results) == ex02.EXERCISE.max_points == 9


def test_typical_mistakes(solution):
    ns = dict(solution)
    ns["q1_answer"] = {k: v * 1e6 for k, v in solution["q1_answer"].items()}
    r = grade(ex02.q1, **ns)
    assert r.status == "incorrect" and "1,000,000" in r.reason
    ns["q1_answer"] = dict(solution["q1_answer"], finetuned_monthly=1.0)
    r = grade(ex02.q1, **ns)
    assert r.status == "partial" and r.points == pytest.approx(1.5)
    r = grade(ex02.q2, **dict(solution, break_even_persona_500=12345.0))
    assert r.status == "partial" and "None" in r.reason
    r = grade(ex02.q3, **dict(solution, threshold_10_turns=solution["threshold_1_turn"]))
    assert r.status == "partial" and "history" in r.reason
    r = grade(ex02.q4, **dict(solution, claims={"a": True, "b": True, "c": True, "d": True, "e": False}))
    assert r.status == "partial" and r.points == pytest.approx(1.6)
    r = grade(ex02.q4, **dict(solution, claims={"a": "no", "b": True, "c": True, "d": True, "e": False}))
    assert r.status == "incorrect"
    r = grade(ex02.q5, **dict(solution, ms_per_100_tokens=50.0))
    assert r.status == "incorrect"
    r = grade(ex02.q1)
    assert r.status == "not-attempted"
