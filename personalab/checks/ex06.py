"""Checks for exercise 06, the approach analysis: volume, stability, security, consistency -> a recommendation.

The cases' facts live here (``CASE_A``, ``CASE_B``) and the notebook shows them. A learner's analysis is
checked against the facts; the recommendation and the factor verdicts are checked against the course's
framework (:func:`personalab.decision.recommend`, article thresholds, no measured numbers) applied to the
learner's *own* analysis, so a slip in question 1 is not counted twice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..decision import APPROACHES, changes_per_month, recommend
from ..errors import InputError
from . import Credit, Exercise, Incorrect, describe, expect_keys, expect_type

EXERCISE = Exercise("06", "Approach analysis")

KEYS = ("monthly_requests", "persona_change_frequency", "public_facing", "consistency_critical")
FACTOR_KEYS = ("volume", "stability", "security", "consistency")
VERDICTS = ("system prompt", "fine-tuning", "neutral")

CASE_A = {
    "name": "TaskMaster in the Task API's mobile app",
    "daily_active_users": 8_000,
    "requests_per_user_per_day": 1.5,
    "days_per_month": 30,
    "stability": "The brand team reviews TaskMaster's voice twice a year; nothing changes in between.",
    "security": "The app is public: anyone who installs it can chat with TaskMaster.",
    "consistency": "Marketing calls TaskMaster's voice brand-critical: it is what reviewers quote.",
}

CASE_B = {
    "name": "An internal TaskMaster for four departments",
    "employees": 300,
    "requests_per_employee_per_month": 40,
    "departments": ["marketing", "engineering", "sales", "finance"],
    "stability": "Each department adjusts its flavour of TaskMaster every week (this week's campaign, sprint, "
                 "quarter-end push).",
    "security": "Only employees can reach it, behind the company's single sign-on.",
    "consistency": "The shared TaskMaster voice must be the same in every department: leadership calls it "
                   "brand-critical.",
}

#: Persona elements for the hybrid design of question 3 -> where they belong.
ELEMENTS = {
    "traits (encouraging, action-oriented)": "core",
    "response pattern (acknowledge, inform, next step)": "core",
    "catchphrases (Great choice!, Nice work!)": "core",
    "rules (never condescending, no excessive punctuation)": "core",
    "department terminology (campaign, sprint, lead)": "overlay",
    "this week's focus": "overlay",
    "end-of-quarter urgency": "overlay",
}

#: Words that show a justification addresses each factor.
FACTOR_WORDS = {
    "volume": r"volume|requests?|traffic|month",
    "stability": r"chang\w*|stab\w*|stable|retrain\w*|update\w*",
    "security": r"secur\w*|jailbreak\w*|inject\w*|public|attack\w*|manipulat\w*|internal",
    "consistency": r"consisten\w*|brand\w*|drift\w*|adheren\w*|voice",
}
MIN_WORDS = 25


def expected_a() -> dict[str, Any]:
    c = CASE_A
    return {"monthly_requests": c["daily_active_users"] * c["requests_per_user_per_day"] * c["days_per_month"],
            "persona_change_frequency": 2 / 12, "public_facing": True, "consistency_critical": True}


def expected_b() -> dict[str, Any]:
    c = CASE_B
    return {"monthly_requests": c["employees"] * c["requests_per_employee_per_month"],
            "persona_change_frequency": 52 / 12, "public_facing": False, "consistency_critical": True,
            "personas": len(c["departments"])}


# --------------------------------------------------------------------------------------------- helpers
def _per_month(value: Any, name: str) -> float:
    try:
        return changes_per_month(value)
    except InputError as err:
        raise Incorrect(f"`{name}['persona_change_frequency']`: {err.message}; {err.fix}") from None


def _analysis_errors(analysis: Mapping[str, Any], want: Mapping[str, Any], name: str, case: str) -> list[str]:
    """What in ``analysis`` contradicts the facts of a case (empty list: all right)."""
    wrong = []
    v = analysis.get("monthly_requests")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        wrong.append(f"`{name}['monthly_requests']` should be a number of requests per month, got {describe(v)}")
    elif not math.isclose(float(v), want["monthly_requests"], rel_tol=0.01):
        wrong.append(f"`{name}['monthly_requests']` = {float(v):,.0f} does not follow from {case}'s numbers "
                     "(requests per month = users x requests per user x days, as the case gives them)")
    per_month = _per_month(analysis.get("persona_change_frequency"), name)
    if not math.isclose(per_month, want["persona_change_frequency"], rel_tol=0.15, abs_tol=0.02):
        wrong.append(f"`{name}['persona_change_frequency']` means {per_month:.2g} changes a month; re-read how "
                     f"often {case}'s persona changes")
    for key, what in (("public_facing", "who can reach the assistant"), ("consistency_critical",
                                                                         "how critical adherence is")):
        got = analysis.get(key)
        if not isinstance(got, bool):
            wrong.append(f"`{name}['{key}']` should be True or False, got {describe(got)}")
        elif got is not want[key]:
            wrong.append(f"`{name}['{key}']` contradicts the case: re-read {what}")
    if "personas" in want:
        got = analysis.get("personas")
        if got != want["personas"] or isinstance(got, bool):
            wrong.append(f"`{name}['personas']` should be how many persona variants share the model")
    return wrong


def _framework(analysis: Mapping[str, Any], name: str) -> Any:
    """The framework's answer on the learner's own inputs (article thresholds)."""
    kwargs = {k: analysis[k] for k in (*KEYS, "personas") if k in analysis}
    try:
        return recommend(**kwargs)
    except InputError as err:
        raise Incorrect(f"the framework cannot read `{name}`: {err.message}" + (f" ({err.fix})" if err.fix else "")
                        ) from None
    except TypeError as err:
        raise Incorrect(f"`{name}` does not fit recommend(): {err}") from None


def _check_analysis(analysis: Any, name: str) -> None:
    expect_keys(analysis, KEYS, name)


def _verdict_errors(verdicts: Any, rec: Any, name: str) -> list[str]:
    expect_keys(verdicts, FACTOR_KEYS, name)
    wrong = []
    for key in FACTOR_KEYS:
        got = verdicts[key]
        if got not in VERDICTS:
            raise Incorrect(f"`{name}['{key}']` must be one of {', '.join(map(repr, VERDICTS))}, got {describe(got)}")
        want = rec.factor(key).favours or "neutral"
        if got != want:
            wrong.append(f"{key}: the framework says {want!r} ({rec.factor(key).reason})")
    return wrong


def _justification_errors(text: Any, approach: str, name: str) -> list[str]:
    if not isinstance(text, str):
        raise Incorrect(f"`{name}` should be a text (a string), got {describe(text)}")
    words = re.findall(r"[\w'-]+", text)
    problems = []
    if len(words) < MIN_WORDS:
        problems.append(f"`{name}` has {len(words)} words; write at least {MIN_WORDS}")
    if approach.lower() not in text.lower() and not (approach == "fine-tuning" and re.search(r"fine[- ]?tun",
                                                                                             text, re.I)):
        problems.append(f"`{name}` should name the approach you recommend ({approach!r})")
    missing = [k for k, pat in FACTOR_WORDS.items() if not re.search(rf"\b({pat})\b", text, re.IGNORECASE)]
    if missing:
        problems.append(f"`{name}` does not address: {', '.join(missing)}")
    return problems


# --------------------------------------------------------------------------------------------- questions
@EXERCISE.question(
    "Analyse case A",
    names=["analysis_a"],
    points=2,
    hints=(
        "Volume: daily active users x requests per user per day x days in a month. Stability: a word such as "
        "'twice a year' (see decision.FREQUENCIES) or a number of changes per month.",
        "Security asks whether strangers can reach the assistant; consistency whether adherence is brand-critical.",
    ),
)
def q1(analysis_a):
    _check_analysis(analysis_a, "analysis_a")
    wrong = _analysis_errors(analysis_a, expected_a(), "analysis_a", "case A")
    if wrong:
        raise Incorrect(wrong[0] + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""),
                        credit=(len(KEYS) - len(wrong)) / len(KEYS))
    return "the four answers follow from the case"


@EXERCISE.question(
    "Recommend and justify (case A)",
    names=["analysis_a", "recommendation_a", "verdicts_a", "justification_a"],
    points=3,
    hints=(
        "Run decision.recommend(**analysis_a): its factors say which approach each question favours.",
        f"verdicts_a maps volume, stability, security and consistency to 'system prompt', 'fine-tuning' or "
        f"'neutral'. The justification needs {MIN_WORDS}+ words, the approach's name, and a word on each factor.",
    ),
)
def q2(analysis_a, recommendation_a, verdicts_a, justification_a):
    _check_analysis(analysis_a, "analysis_a")
    rec = _framework(analysis_a, "analysis_a")
    if recommendation_a not in APPROACHES:
        raise Incorrect(f"`recommendation_a` must be one of {', '.join(map(repr, APPROACHES))}, "
                        f"got {describe(recommendation_a)}")
    parts, notes = 0.0, []
    if recommendation_a == rec.approach:
        parts += 1
    else:
        notes.append(f"for your analysis the framework recommends {rec.approach!r}, not {recommendation_a!r}: "
                     f"{rec.reasons[0]}")
    wrong = _verdict_errors(verdicts_a, rec, "verdicts_a")
    parts += (len(FACTOR_KEYS) - len(wrong)) / len(FACTOR_KEYS)
    notes += wrong[:1]
    problems = _justification_errors(justification_a, rec.approach, "justification_a")
    parts += 0 if problems else 1
    notes += problems[:1]
    if not notes:
        return f"consistent with your analysis and the framework: {rec.approach}"
    return Credit(parts / 3, "; ".join(notes))


@EXERCISE.question(
    "Case B: conflicting factors and a hybrid design",
    names=["analysis_b", "recommendation_b", "hybrid_design"],
    points=3,
    hints=(
        "Case B has four departments: add 'personas' to the analysis. Employees x requests per employee is the "
        "monthly volume.",
        "In the hybrid, the fine-tuned core holds what is the same everywhere and rarely changes; the overlays "
        "hold what differs per department or changes weekly.",
    ),
)
def q3(analysis_b, recommendation_b, hybrid_design):
    expect_keys(analysis_b, (*KEYS, "personas"), "analysis_b")
    wrong = _analysis_errors(analysis_b, expected_b(), "analysis_b", "case B")
    credit = (5 - min(len(wrong), 5)) / 5
    rec = _framework(analysis_b, "analysis_b")
    notes = wrong[:1]
    score = credit
    if recommendation_b == rec.approach:
        score += 1
    else:
        notes.append(f"for your analysis the framework recommends {rec.approach!r}, not {describe(recommendation_b)}")
    expect_keys(hybrid_design, ("core", "overlays"), "hybrid_design", allow_extra=False)
    core, over = hybrid_design["core"], hybrid_design["overlays"]
    for name, value in (("core", core), ("overlays", over)):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise Incorrect(f"`hybrid_design['{name}']` should be a list of element names, got {describe(value)}")
    unknown = [x for x in core + over if x not in ELEMENTS]
    if unknown:
        raise Incorrect(f"{unknown[0]!r} is not one of ELEMENTS: copy the names from `ELEMENTS`", credit=score / 3)
    both = set(core) & set(over)
    left = [e for e in ELEMENTS if e not in core and e not in over]
    misplaced = [e for e in ELEMENTS if (e in core) != (ELEMENTS[e] == "core") and e not in both and e not in left]
    design = (len(ELEMENTS) - len(both) - len(left) - len(misplaced)) / len(ELEMENTS)
    score += design
    if both:
        notes.append(f"{sorted(both)[0]!r} is in both lists: put each element in one place")
    if left:
        notes.append(f"{left[0]!r} is in neither list")
    if misplaced:
        e = misplaced[0]
        notes.append(f"{e!r} belongs in the {'fine-tuned core' if ELEMENTS[e] == 'core' else 'overlays'}: "
                     + ("it is shared and stable" if ELEMENTS[e] == "core" else "it differs per department or "
                        "changes often"))
    if not notes:
        return f"{rec.approach}: a fine-tuned core with what is stable, one overlay per department for what changes"
    return Credit(score / 3, "; ".join(notes))


@EXERCISE.question(
    "Your own use case",
    names=["my_case", "my_recommendation", "my_justification"],
    points=2,
    hints=(
        "my_case holds a 'description' and the four inputs of decision.recommend (add 'personas' if several "
        "share one model).",
        "Run decision.recommend on your inputs: your recommendation must agree with it, and your justification "
        "must say why, factor by factor.",
    ),
)
def q4(my_case, my_recommendation, my_justification):
    expect_keys(my_case, ("description", *KEYS), "my_case")
    desc = my_case["description"]
    expect_type(desc, str, "my_case['description']")
    if len(desc.split()) < 10:
        raise Incorrect("describe your use case in `my_case['description']` in at least 10 words")
    rec = _framework({k: v for k, v in my_case.items() if k != "description"}, "my_case")
    if my_recommendation not in APPROACHES:
        raise Incorrect(f"`my_recommendation` must be one of {', '.join(map(repr, APPROACHES))}, "
                        f"got {describe(my_recommendation)}")
    if my_recommendation != rec.approach:
        raise Incorrect(f"for your inputs the framework recommends {rec.approach!r}, not {my_recommendation!r}: "
                        f"{rec.reasons[0]} (change the inputs if they do not describe your case)", credit=0.25)
    problems = _justification_errors(my_justification, rec.approach, "my_justification")
    if problems:
        return Credit(0.5, "; ".join(problems))
    return f"{rec.approach}, justified factor by factor"
