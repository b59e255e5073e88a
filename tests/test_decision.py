"""personalab.decision: the framework on the article's scenarios, conflicts, measured evidence, bad input."""

from __future__ import annotations

import pytest

from personalab import decision as d
from personalab.errors import InputError


@pytest.mark.parametrize("scenario", list(d.QUICK_REFERENCE))
def test_quick_reference_table_of_the_article(scenario):
    kwargs, article = d.QUICK_REFERENCE[scenario]
    assert d.recommend(**kwargs).approach == article


def test_quick_reference_rows():
    rows = d.quick_reference()
    assert [r["scenario"] for r in rows] == list(d.QUICK_REFERENCE)
    assert all(r["article"] == r["framework"] for r in rows)


def test_neutral_case_defaults_to_the_system_prompt():
    rec = d.recommend(**d.NEUTRAL)
    assert rec.approach == d.SYSTEM_PROMPT
    assert rec.votes() == {d.SYSTEM_PROMPT: 0, d.FINE_TUNING: 0}
    assert "nothing favours fine-tuning" in rec.reasons[0]


def test_the_articles_taskmaster_choice():
    """Moderate-to-high volume, stable, public, consistency critical: the article chooses fine-tuning."""
    rec = d.recommend(300_000, "quarterly", True, True)
    assert rec.approach == d.FINE_TUNING
    assert {f.name for f in rec.factors if f.favours == d.FINE_TUNING} == {"volume", "stability", "security",
                                                                            "consistency"}
    assert len(rec.reasons) == 5 and "4 factor(s) favour fine-tuning" in rec.reasons[0]
    assert "300,000" in rec.factor("volume").reason


@pytest.mark.parametrize(
    ("volume", "favours"),
    [(9_999, d.SYSTEM_PROMPT), (10_000, None), (100_000, None), (100_001, d.FINE_TUNING)],
)
def test_volume_thresholds_are_the_articles(volume, favours):
    assert d.recommend(volume, "every two weeks", False, False).factor("volume").favours == favours


@pytest.mark.parametrize(
    ("freq", "favours"),
    [("daily", d.SYSTEM_PROMPT), ("weekly", d.SYSTEM_PROMPT), (4.0, d.SYSTEM_PROMPT), ("every two weeks", None),
     (2, None), ("monthly", d.FINE_TUNING), ("twice a year", d.FINE_TUNING), ("never", d.FINE_TUNING),
     (0, d.FINE_TUNING)],
)
def test_stability(freq, favours):
    assert d.recommend(50_000, freq, False, False).factor("stability").favours == favours


def test_conflicting_factors_give_the_hybrid():
    rec = d.recommend(50_000, "weekly", False, True)  # changes weekly, but brand-critical
    assert rec.approach == d.HYBRID
    assert any(r.startswith("the factors pull both ways") for r in rec.reasons)


def test_majority_wins_and_reasons_name_what_was_against():
    rec = d.recommend(500_000, "weekly", True, False)  # volume + security vs weekly changes
    assert rec.approach == d.FINE_TUNING
    assert any(r.startswith("against:") and "weekly" in r for r in rec.reasons)
    rec = d.recommend(2_000, "weekly", True, False, ml_expertise=False)
    assert rec.approach == d.SYSTEM_PROMPT
    assert rec.votes() == {d.SYSTEM_PROMPT: 3, d.FINE_TUNING: 1}


def test_multi_persona():
    assert d.recommend(12_000, "weekly", False, True, personas=4).approach == d.HYBRID
    # several personas, nothing for fine-tuning, something against it: one prompt per persona
    rec = d.recommend(5_000, "weekly", False, False, personas=3)
    assert rec.approach == d.SYSTEM_PROMPT and "one system prompt per persona" in rec.reasons[0]


def test_prototyping_overrides_everything():
    rec = d.recommend(1_000_000, "never", True, True, prototyping=True)
    assert rec.approach == d.SYSTEM_PROMPT and "prototype" in rec.reasons[0]


def test_other_article_checklist_items():
    rec = d.recommend(50_000, "every two weeks", False, False, long_conversations=True, latency_critical=True)
    assert rec.approach == d.FINE_TUNING
    assert rec.factor("conversations").favours == rec.factor("latency").favours == d.FINE_TUNING


def test_custom_thresholds():
    t = d.Thresholds(low_volume=1_000, high_volume=20_000)
    assert d.recommend(50_000, "every two weeks", False, False, thresholds=t).approach == d.FINE_TUNING


# ------------------------------------------------------------------------------------------ evidence
def test_measured_break_even_replaces_the_volume_thresholds():
    ev = d.Evidence(break_even_requests=30_000, cost_source="lesson 02: test")
    above = d.recommend(50_000, "every two weeks", False, False, evidence=ev).factor("volume")
    below = d.recommend(20_000, "every two weeks", False, False, evidence=ev).factor("volume")
    assert above.favours == d.FINE_TUNING and above.measured and "30,000" in above.reason
    assert below.favours == d.SYSTEM_PROMPT and "lesson 02: test" in below.reason
    never = d.Evidence(break_even_never=True, cost_source="x")
    high = d.recommend(5_000_000, "every two weeks", False, False, evidence=never)
    assert high.factor("volume").favours == d.SYSTEM_PROMPT and "never" in high.factor("volume").reason
    assert high.approach == d.SYSTEM_PROMPT  # the article would say fine-tuning; the measurement says otherwise


@pytest.mark.parametrize(
    ("held", "favours"),
    [({"prompted": 0.4, "fine-tuned": 0.8}, d.FINE_TUNING), ({"prompted": 0.6, "fine-tuned": 0.62}, None),
     ({"prompted": 0.7, "fine-tuned": 0.3}, None)],
)
def test_measured_injection_gap_decides_security(held, favours):
    ev = d.Evidence(injection_held=held, injection_source="05 test")
    f = d.recommend(50_000, "every two weeks", True, False, evidence=ev).factor("security")
    assert f.favours == favours and f.measured
    assert f"fine-tuned {held['fine-tuned']:.0%}" in f.reason and "05 test" in f.reason
    # an internal tool is neutral whatever was measured
    assert d.recommend(50_000, "every two weeks", False, False, evidence=ev).factor("security").favours is None


def test_measured_drift_gap_decides_consistency():
    ev = d.Evidence(drift_late_score={"prompted": 0.2, "fine-tuned": 0.7}, drift_source="05 drift")
    assert d.recommend(50_000, "every two weeks", False, True, evidence=ev).approach == d.FINE_TUNING
    worse = d.Evidence(drift_late_score={"prompted": 0.7, "fine-tuned": 0.2}, drift_source="05 drift")
    rec = d.recommend(50_000, "every two weeks", False, True, evidence=worse)
    assert rec.approach == d.SYSTEM_PROMPT and "worse" in rec.factor("consistency").reason


def _ci(value, low, high, n):
    return {"value": value, "low": low, "high": high, "n": n}


def test_overlapping_intervals_do_not_decide_and_unusable_targets_give_no_evidence():
    held = {"prompted": 0.19, "fine-tuned": 0.71}
    wide = {"prompted": _ci(0.19, 0.05, 0.45, 14), "fine-tuned": _ci(0.71, 0.43, 0.93, 14)}
    narrow = {"prompted": _ci(0.19, 0.12, 0.27, 120), "fine-tuned": _ci(0.71, 0.62, 0.79, 120)}
    ev = d.Evidence(injection_held=held, injection_held_ci=wide, injection_source="05 test")
    f = d.recommend(50_000, "every two weeks", True, False, evidence=ev).factor("security")
    assert f.favours is None and f.measured and "does not decide" in f.reason
    assert "fine-tuned 71% [43%, 93%] (n=14) vs prompted 19% [5%, 45%] (n=14)" in f.reason
    ev = d.Evidence(injection_held=held, injection_held_ci=narrow, injection_source="05 test")
    assert d.recommend(50_000, "every two weeks", True, False, evidence=ev).factor("security").favours == \
        d.FINE_TUNING
    # the same clear gap from a fine-tuned model that writes word salad is not evidence
    ev = d.Evidence(injection_held=held, injection_held_ci=narrow, injection_unusable={"prompted": 0.0,
                    "fine-tuned": 0.6}, injection_source="05 test")
    f = d.recommend(50_000, "every two weeks", True, False, evidence=ev).factor("security")
    assert f.favours is None and "not used" in f.reason and "fine-tuned 60%" in f.reason
    # without measurements the article's claim is labelled as the article's, not stated as a fact
    f = d.recommend(50_000, "every two weeks", True, False).factor("security")
    assert f.favours == d.FINE_TUNING and "the article's claim" in f.reason


def test_evidence_reads_intervals_and_unusable_shares_from_lesson_05():
    records = {
        "05/injection": {"data": {"summary": {
            "prompted": {"all": {"held": _ci(0.2, 0.1, 0.3, 40), "broken": _ci(0.05, 0, 0.1, 40)}},
            "fine-tuned": {"all": {"held": _ci(0.7, 0.6, 0.8, 40), "broken": _ci(0.1, 0, 0.2, 40)}}}}},
        "05/drift": {"data": {"scorer": "rules", "summary": {"rules": {
            "prompted": {"late_mean_score": _ci(0.3, 0.2, 0.4, 15), "unusable_share": 0.0},
            "fine-tuned": {"late_mean_score": _ci(0.8, 0.7, 0.9, 15), "unusable_share": 0.55}}}}},
    }
    ev = d.Evidence.from_results(records)
    assert ev.injection_held == {"prompted": 0.2, "fine-tuned": 0.7}
    assert ev.injection_held_ci["fine-tuned"]["n"] == 40 and ev.injection_unusable == {"prompted": 0.05,
                                                                                        "fine-tuned": 0.1}
    assert ev.drift_unusable["fine-tuned"] == 0.55
    assert "prompted 20% [10%, 30%] (n=40)" in "\n".join(ev.describe())
    rec = d.recommend(50_000, "every two weeks", True, True, evidence=ev)
    assert rec.factor("security").favours == d.FINE_TUNING
    assert rec.factor("consistency").favours is None and "not used" in rec.factor("consistency").reason


def test_retrain_time_is_quoted_in_the_stability_reason():
    ev = d.Evidence(retrain_s=150.0, retrain_source="04", prompt_change_s=0.2, prompt_change_source="06")
    f = d.recommend(50_000, "weekly", False, False, evidence=ev).factor("stability")
    assert f.measured and "2.5 min" in f.reason and "200 ms" in f.reason


def test_evidence_describe_and_quick_reference_with_evidence():
    assert d.Evidence().describe() == []
    ev = d.Evidence(break_even_never=True, cost_source="c", injection_held={"prompted": 0.5, "fine-tuned": 0.9},
                    injection_source="i")
    lines = ev.describe()
    assert len(lines) == 2 and "never" in lines[0] and "90%" in lines[1]
    rows = {r["scenario"]: r for r in d.quick_reference(ev)}
    assert rows["High volume (>100K/mo)"]["framework"] == d.SYSTEM_PROMPT  # measured: never cheaper
    assert rows["Security-critical"]["framework"] == d.FINE_TUNING


# ------------------------------------------------------------------------------------------ inputs
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"monthly_requests": -1}, "monthly_requests"),
        ({"monthly_requests": "many"}, "monthly_requests"),
        ({"monthly_requests": True}, "monthly_requests"),
        ({"persona_change_frequency": "sometimes"}, "persona_change_frequency"),
        ({"persona_change_frequency": -2}, "persona_change_frequency"),
        ({"public_facing": "yes"}, "public_facing"),
        ({"consistency_critical": 1}, "consistency_critical"),
        ({"personas": 0}, "personas"),
        ({"personas": 2.5}, "personas"),
    ],
)
def test_bad_inputs_name_the_field(kwargs, field):
    args = {**d.NEUTRAL, **kwargs}
    with pytest.raises(InputError) as err:
        d.recommend(**args)
    assert err.value.field == field


def test_frequency_words():
    assert d.changes_per_month("Weekly") == pytest.approx(52 / 12)
    assert d.changes_per_month("twice-a-year") == pytest.approx(1 / 6)
    assert d.changes_per_month(3) == 3.0
    with pytest.raises(InputError, match="sometimes") as err:
        d.changes_per_month("sometimes")
    assert "weekly" in err.value.fix


def test_rendering():
    rec = d.recommend(12_000, "weekly", False, True, personas=4)
    text = str(rec)
    assert text.startswith("Recommendation: hybrid") and "brand-critical" in text
    html = rec._repr_html_()
    assert "<table>" in html and "rule of thumb" in html
    data = rec.as_dict()
    assert data["approach"] == "hybrid" and len(data["factors"]) == len(d.FACTORS)
    assert [f["name"] for f in data["factors"]] == list(d.FACTORS)


def test_explorer_builds_and_updates():
    pytest.importorskip("ipywidgets")
    box = d.explorer(d.Evidence(break_even_never=True, cost_source="c"), monthly_requests=500_000)
    out = box.children[1]
    assert "fine-tuning" in out.value or "system prompt" in out.value
    left, right = box.children[0].children
    use_ev = right.children[-1]
    use_ev.value = False
    assert "Recommendation: fine-tuning" in out.value  # the article's rule at 500K
    use_ev.value = True
    assert "Recommendation: system prompt" in out.value  # measured: never cheaper


def test_ties_without_frequent_changes():
    # cheaper prompt (low volume) vs a requirement (public-facing): the requirement wins
    rec = d.recommend(5_000, "every two weeks", True, False)
    assert rec.approach == d.FINE_TUNING and "requirement (security)" in rec.reasons[0]
    # low volume vs stable persona (no requirement): the prompt stays
    rec = d.recommend(5_000, "quarterly", False, False)
    assert rec.approach == d.SYSTEM_PROMPT and "no requirement" in rec.reasons[0]


def test_quick_reference_why_names_the_overruling_measurement():
    ev = d.Evidence(break_even_never=True, cost_source="lesson 02: x")
    rows = {r["scenario"]: r for r in d.quick_reference(ev)}
    assert "prototyping: iterate" in rows["Prototyping"]["why"]  # agrees with the article: its own reason
    assert "never cheaper" in rows["High volume (>100K/mo)"]["why"]  # overruled: the measurement
    plain = {r["scenario"]: r for r in d.quick_reference()}
    assert "500,000 requests/month is high volume" in plain["High volume (>100K/mo)"]["why"]


def test_explorer_volume_is_exact():
    """The volume box holds 50,000 exactly; the log slider's snapped echo (50,119) does not move it."""
    pytest.importorskip("ipywidgets")
    box = d.explorer()
    box.sliders["monthly_requests"].value = 10**4.7  # the frontend's snapped value for 50,000
    assert box.controls["monthly_requests"].value == 50_000
    box.controls["monthly_requests"].value = 300_000
    before = box.recommendation.value
    box.controls["monthly_requests"].value = 150
    assert box.recommendation.value != before
