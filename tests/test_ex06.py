"""Exercise 06 checks: readings and recommendations are graded against the figures and the learner's priorities.

The figures here are the supplied ones (``data/exercises/ex06_cases.json``) or built from small saved-result
records written in the test, never the machine's own results.
"""

from __future__ import annotations

import copy
import json

import pytest

from personalab import costs, decision
from personalab.checks import ex06


def grade(q, **ns):
    return q.grade(json.loads(json.dumps(q.export(ns))))


@pytest.fixture(scope="module")
def fig_a():
    return ex06.case_figures(ex06.CASE_A, records={})


@pytest.fixture(scope="module")
def fig_b():
    return ex06.case_figures(ex06.CASE_B, records={})


# The supplied figures read by hand: cost $53.51 vs $91.82 a month at 360,000 requests; last-turn adherence
# 0.15 [0.05, 0.25] vs 0.85 [0.85, 0.85]; held under attack 0% [0%, 0%] vs 64% [36%, 86%]; 1.4 s vs 3.1 min.
READ_A = {
    "cost": {"favours": "system prompt", "figure": "$53.51 vs $91.82 a month: the prompt is cheaper"},
    "consistency": {"favours": "fine-tuning", "figure": "0.15 [0.05, 0.25] vs 0.85 [0.85, 0.85]: no overlap"},
    "injection": {"favours": "fine-tuning", "figure": "held 0% vs 64% [36%, 86%], n=14 each"},
    "time to change": {"favours": "system prompt", "figure": "a prompt edit takes 1.4 s, retraining 3.1 min"},
}
READ_B = {**READ_A, "cost": {"favours": "system prompt", "figure": "$1.78 vs $3.08 a month at 12,000 requests"}}


@pytest.fixture()
def solution(fig_a, fig_b):
    return {
        "figures_a": fig_a,
        "answer_a": {"priorities": ["consistency", "injection", "cost", "time to change"],
                     "recommendation": "fine-tuning", "reasons": copy.deepcopy(READ_A)},
        "figures_b": fig_b,
        "answer_b": {"priorities": ["time to change", "consistency", "cost", "injection"],
                     "recommendation": "hybrid", "reasons": copy.deepcopy(READ_B)},
        "hybrid_design": {"core": [e for e, where in ex06.ELEMENTS.items() if where == "core"],
                          "overlays": [e for e, where in ex06.ELEMENTS.items() if where == "overlay"]},
    }


def records(drift=None, injection=None, costs_=True):
    """Saved-result records as lessons 02 and 05 write them (only what ex06 reads)."""
    out = {}
    if costs_:
        out["02/costs"] = {"model": "gpt-4o-mini", "hardware": "test", "data": {
            "model": "gpt-4o-mini", "persona_tokens": 900.0, "user_tokens": 50, "response_tokens": 200,
            "requests_per_month": 500_000, "price_date": "2025-06"}}
    if drift:
        summary = {k: {"late_mean_score": dict(v, level=0.95), "unusable_share": u} for k, (v, u) in drift.items()}
        out["05/drift"] = {"model": "m", "hardware": "test", "data": {"scorer": "rules", "summary": {"rules": summary}}}
    if injection:
        summary = {k: {"all": {"held": dict(v, level=0.95), "broken": {"value": u}}} for k, (v, u) in injection.items()}
        out["05/injection"] = {"model": "m", "hardware": "test", "data": {"summary": summary}}
    return out


def ci(value, low, high, n):
    return {"value": value, "low": low, "high": high, "n": n}


# ------------------------------------------------------------------------------------------- the figures
def test_supplied_figures_and_lesson_02s_cost_finding(fig_a, fig_b):
    for figs in (fig_a, fig_b):
        assert all(figs[f]["source"].startswith("supplied") for f in ex06.FACTORS)
        assert ex06.reading(figs["cost"])[0] == "system prompt"  # fine-tuning never cheaper per request
    assert fig_a["cost"]["prompted"]["value"] == pytest.approx(53.51, abs=0.01)
    assert fig_a["cost"]["fine-tuned"]["value"] == pytest.approx(91.82, abs=0.01)
    # the same price table, the same break-even finding: at no volume is the fine-tuned request cheaper
    s = costs.Scenario(persona_tokens=141, training_cost=0.2209)
    assert costs.compare(s).break_evens[0].never
    assert fig_b["time to change"]["fine-tuned"]["per_month"] == pytest.approx(186.0 * 4 * 52 / 12)
    assert "n=14" in fig_a["injection"]["text"] and "[36%, 86%]" in fig_a["injection"]["text"]


def test_own_results_replace_the_supplied_figures_factor_by_factor():
    figs = ex06.case_figures(ex06.CASE_A, records(drift={"prompted": (ci(0.5, 0.3, 0.7, 8), 0.1),
                                                         "fine-tuned": (ci(0.6, 0.4, 0.8, 8), 0.2)}))
    assert figs["cost"]["source"].startswith("yours") and "900-token persona" in figs["cost"]["text"]
    assert figs["consistency"]["source"].startswith("yours") and "n=8" in figs["consistency"]["text"]
    assert figs["injection"]["source"].startswith("supplied")
    assert figs["time to change"]["source"].startswith("supplied")
    assert "no training cost saved" in figs["cost"]["text"]
    # a 900-token persona is above lesson 02's break-even size (850 tokens at these prices): here, and only
    # here, the learner's own cost figure favours fine-tuning
    assert ex06.reading(figs["cost"])[0] == "fine-tuning"


def test_reading_rules():
    def gap(p, f, unusable=(0.0, 0.0)):
        raw = {"prompted": p, "fine-tuned": f, "unusable": dict(zip(ex06.SIDES, unusable, strict=True))}
        return ex06.reading(ex06.build_figure("injection", raw, ex06.CASE_A, "test"))

    assert gap(ci(0.2, 0.1, 0.3, 20), ci(0.7, 0.5, 0.9, 20))[0] == "fine-tuning"
    assert gap(ci(0.7, 0.5, 0.9, 20), ci(0.2, 0.1, 0.3, 20))[0] == "system prompt"
    verdict, why = gap(ci(0.3, 0.1, 0.5, 14), ci(0.6, 0.35, 0.85, 14))  # a gap of 0.3, overlapping intervals
    assert verdict == ex06.NOT_DECIDED and "overlap" in why
    verdict, why = gap(ci(0.2, 0.1, 0.3, 20), ci(0.7, 0.5, 0.9, 20), unusable=(0.0, 0.6))
    assert verdict == ex06.NOT_DECIDED and "unusable" in why
    assert gap(ci(0.50, 0.49, 0.51, 900), ci(0.53, 0.52, 0.54, 900))[0] == ex06.NOT_DECIDED  # gap < 0.05
    slow = ex06.build_figure("time to change", {"retrain_s": 3.0, "prompt_change_s": 2.0}, ex06.CASE_A, "t")
    assert ex06.reading(slow)[0] == ex06.NOT_DECIDED


def test_citations_must_be_the_figures_own_numbers(fig_a):
    inj = fig_a["injection"]
    assert ex06.cites("64% [36%, 86%]", inj) and ex06.cites("0.64", inj) and ex06.cites("held 0%", inj)
    assert not ex06.cites("it held much better", inj) and not ex06.cites("0.15 vs 0.85", inj)
    assert ex06.cites("3.1 min vs 1.4 s", fig_a["time to change"]) and ex06.cites("186 s", fig_a["time to change"])
    assert ex06.cites("$53.51", fig_a["cost"]) and not ex06.cites("$60", fig_a["cost"])


# ------------------------------------------------------------------------------------------- grading
def test_solution_gets_full_marks(solution):
    for q in ex06.EXERCISE.questions:
        r = grade(q, **solution)
        assert r.status == "correct" and r.points == r.max_points, (q.id, r)
    assert ex06.EXERCISE.max_points == 10


def test_untouched_is_not_attempted():
    for q in ex06.EXERCISE.questions:
        assert grade(q).status == "not-attempted"


def test_several_recommendations_are_right_for_different_priorities(solution):
    cost_first = {**solution["answer_a"], "priorities": ["cost", "consistency", "injection", "time to change"]}
    assert grade(ex06.q2, **dict(solution, answer_a={**cost_first, "recommendation": "system prompt"})).ok
    for rec in ("fine-tuning", "hybrid"):  # consistency first, and it favours fine-tuning
        assert grade(ex06.q2, **dict(solution, answer_a={**solution["answer_a"], "recommendation": rec})).ok
    change_first = {**cost_first, "priorities": ["time to change", "cost", "consistency", "injection"]}
    for rec in ("system prompt", "hybrid"):  # the overlays change as fast as a prompt
        assert grade(ex06.q2, **dict(solution, answer_a={**change_first, "recommendation": rec})).ok


def test_a_recommendation_against_the_top_priority_fails_naming_the_figure(solution):
    answer = {**solution["answer_a"], "priorities": ["cost", "consistency", "injection", "time to change"]}
    r = grade(ex06.q2, **dict(solution, answer_a=answer))  # fine-tuning, with cost first
    assert r.status == "partial" and r.points == pytest.approx(0.5)
    assert "priority number 1 is cost" in r.reason and "$53.51" in r.reason and "'fine-tuning' contradicts" in r.reason
    assert "rank consistency or injection above cost" in r.reason
    r = grade(ex06.q2, **dict(solution, answer_a={**answer, "recommendation": "hybrid"}))
    assert r.status == "partial" and "'hybrid' contradicts" in r.reason


def test_a_copied_recommend_output_fails(solution):
    rec = decision.recommend(monthly_requests=360_000, persona_change_frequency="twice a year",
                             public_facing=True, consistency_critical=True)
    for copied in (rec, rec.as_dict()):
        for q in (ex06.q1, ex06.q2):
            r = grade(q, **dict(solution, answer_a=copied))
            assert r.status == "incorrect" and "decision.recommend()" in r.reason, (q.id, r)
        r = grade(ex06.q3, **dict(solution, answer_b=copied))
        assert r.status == "incorrect" and "priorities" in r.reason
    # its approach and reasons pasted into the answer's format: still no priorities, no readings
    pasted = {"recommendation": rec.approach, "reasons": rec.reasons}
    r = grade(ex06.q1, **dict(solution, answer_a=pasted))
    assert r.status == "incorrect" and "keyed by factor" in r.reason
    r = grade(ex06.q2, **dict(solution, answer_a=pasted))
    assert r.status == "incorrect" and "missing 'priorities'" in r.reason


def test_an_overlapping_factor_cited_as_deciding_fails():
    recs = records(injection={"prompted": (ci(0.3, 0.1, 0.5, 14), 0.0), "fine-tuned": (ci(0.6, 0.35, 0.85, 14), 0.0)},
                   costs_=False)
    figs = ex06.case_figures(ex06.CASE_A, recs)
    reasons = {**READ_A, "injection": {"favours": "fine-tuning", "figure": "60% [35%, 85%] against 30% [10%, 50%]"}}
    r = grade(ex06.q1, figures_a=figs, answer_a={"reasons": reasons})
    assert r.status == "partial" and r.points == pytest.approx(3 * 3 / 4)
    assert "injection: you cite it as favouring 'fine-tuning', but the data do not decide it" in r.reason
    assert "intervals overlap" in r.reason and "[35%, 85%]" in r.reason
    reasons["injection"]["favours"] = "does not decide"
    assert grade(ex06.q1, figures_a=figs, answer_a={"reasons": reasons}).ok
    # injection ranked first decides nothing: the next factor, cost, sets the direction
    answer = {"reasons": reasons, "priorities": ["injection", "cost", "consistency", "time to change"],
              "recommendation": "fine-tuning"}
    r = grade(ex06.q2, figures_a=figs, answer_a=answer)
    assert r.status == "partial" and "priority number 2 is cost (injection ranked above it, but the data do not " \
                                      "decide it)" in r.reason
    assert grade(ex06.q2, figures_a=figs, answer_a={**answer, "recommendation": "system prompt"}).ok


def test_reading_mistakes_get_specific_feedback(solution):
    reasons = copy.deepcopy(READ_A)
    reasons["cost"]["favours"] = "fine-tuning"
    reasons["consistency"]["favours"] = "does not decide"
    r = grade(ex06.q1, **dict(solution, answer_a={"reasons": reasons}))
    assert r.status == "partial" and r.points == pytest.approx(1.5)
    assert "cost: you say 'fine-tuning', but the figure favours 'system prompt'" in r.reason
    assert "consistency: the figure decides it for 'fine-tuning'" in r.reason
    reasons = copy.deepcopy(READ_A)
    reasons["injection"]["figure"] = "it clearly held better"
    r = grade(ex06.q1, **dict(solution, answer_a={"reasons": reasons}))
    assert r.status == "partial" and "injection: the 'figure' text should quote the numbers" in r.reason
    r = grade(ex06.q1, **dict(solution, answer_a={"reasons": {**READ_A, "cost": "cheaper"}}))
    assert "{'favours': ..., 'figure': ...}" in r.reason
    r = grade(ex06.q1, **dict(solution, answer_a={"reasons": {**READ_A, "cost": {"favours": "maybe", "figure": ""}}}))
    assert "must be one of" in r.reason


def test_priorities_must_rank_the_four_factors(solution):
    for bad, why in ((["cost", "consistency"], "missing 'injection', 'time to change'"),
                     (["cost", "cost", "injection", "consistency"], "twice: 'cost'"),
                     (["price", "consistency", "injection", "time to change"], "'price'"),
                     ("cost", "should be a list")):
        r = grade(ex06.q2, **dict(solution, answer_a={**solution["answer_a"], "priorities": bad}))
        assert r.status == "incorrect" and why in r.reason, (bad, r)


def test_case_b_splits_reading_and_recommendation(solution):
    answer = {**solution["answer_b"], "recommendation": "fine-tuning"}  # time to change first favours the prompt
    r = grade(ex06.q3, **dict(solution, answer_b=answer))
    assert r.status == "partial" and r.points == pytest.approx(1.5) and "time to change" in r.reason
    reasons = {**READ_B, "cost": READ_A["cost"]}  # case A's costs quoted for case B
    r = grade(ex06.q3, **dict(solution, answer_b={**solution["answer_b"], "reasons": reasons}))
    assert r.status == "partial" and r.points == pytest.approx(3 * (0.5 * 3 / 4 + 0.5))
    assert "cost: the 'figure' text should quote" in r.reason and "$1.78" in r.reason


def test_edited_figures_are_rebuilt_or_rejected(solution, fig_a):
    edited = copy.deepcopy(dict(fig_a))
    edited["cost"]["prompted"]["value"] = 500.0  # a derived number: the grader rebuilds it from the raw inputs
    assert grade(ex06.q2, **dict(solution, figures_a=edited)).ok
    edited["consistency"]["raw"]["prompted"]["high"] = 0.9  # supplied raw numbers must match the data file
    r = grade(ex06.q1, **dict(solution, figures_a=edited))
    assert r.status == "incorrect" and "differs from the supplied figures" in r.reason
    r = grade(ex06.q1, **dict(solution, figures_a={"cost": 1}))
    assert r.status == "incorrect" and "case_figures" in r.reason


def test_hybrid_design_mistakes(solution):
    design = solution["hybrid_design"]
    moved = {"core": design["core"] + ["this week's focus"],
             "overlays": [e for e in design["overlays"] if e != "this week's focus"]}
    r = grade(ex06.q4, **dict(solution, hybrid_design=moved))
    assert r.status == "partial" and "this week's focus" in r.reason and "overlays" in r.reason
    r = grade(ex06.q4, **dict(solution, hybrid_design={"core": design["core"], "overlays": design["overlays"][:1]}))
    assert r.status == "partial" and "in neither list" in r.reason
    r = grade(ex06.q4, **dict(solution, hybrid_design={"core": ["the logo"], "overlays": []}))
    assert r.status == "incorrect" and "ELEMENTS" in r.reason


def test_check_never_crashes_on_odd_values(solution):
    odd = [None, 3, "x", [1, 2], {"a": 1}, float("nan"), {"priorities": None, "recommendation": 1, "reasons": []}]
    for q in ex06.EXERCISE.questions:
        for name in q.names:
            for value in odd:
                r = grade(q, **dict(solution, **{name: value}))
                assert r.status in ("incorrect", "partial"), (q.id, name, value, r)


def test_hints_no_longer_point_at_the_framework():
    for q in ex06.EXERCISE.questions:
        assert not any("recommend(" in h for h in q.hints), q.id
