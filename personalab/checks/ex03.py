"""Checks for exercise 03: repair a broken persona dataset until it validates, then raise its coverage.

The grading logic lives in :mod:`personalab.dataset.exercise` (unit-tested there); these questions only
read the learner's variables and call it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..dataset import exercise as ex
from . import Exercise, Incorrect, expect_type

EXERCISE = Exercise("03", "Repair a persona dataset")


def _probe_fix(ns: Mapping[str, Any], cases: list[Any] | None = None) -> dict[str, Any]:
    """The learner's ``fix_example`` on the public cases, or on the grader's hidden ``cases`` (inputs only)."""
    fix = ns["fix_example"]
    inputs = [case for _, case, _ in ex.FIX_CASES] if cases is None else cases
    return {"outputs": [fix(copy.deepcopy(case)) for case in inputs]}


@EXERCISE.question(
    "Repair one example",
    names=["fix_example"],
    probe=_probe_fix,
    points=3,
    hints=[
        "Handle the shapes first: a bare list becomes {'messages': list}; 'conversation' becomes 'messages'; "
        "anything that is not a dict or list gives None.",
        "Rebuild every message as {'role': ..., 'content': ...} only: map 'bot' to 'assistant', take 'text' when "
        "'content' is missing, and skip messages that are not dicts or have empty content.",
        "Finally drop trailing user messages that have no reply, and return None when no assistant message is left.",
    ],
)
def q1(fix_example, outputs):
    wrong = ex.check_fix_outputs(outputs)
    if wrong:
        n = len(ex.FIX_CASES)
        raise Incorrect(f"{n - len(wrong)}/{n} cases right. " + "; ".join(wrong[:3]), credit=(n - len(wrong)) / n)
    return f"all {len(ex.FIX_CASES)} kinds of broken line handled"


@EXERCISE.question(
    "The repaired dataset validates",
    names=["repaired"],
    points=4,
    hints=[
        "Run exercise.validate_repaired(repaired) and read the first problems: each names its line and field.",
        "Duplicates, near duplicates, eval leaks and over-long examples cannot be repaired: drop those lines "
        "(report.problems tells you which).",
        "Rewrite replies that use an avoided phrase instead of dropping them: you need to keep "
        f"at least {ex.MIN_KEPT} examples.",
    ],
)
def q2(repaired):
    expect_type(repaired, list, "repaired")
    failures = ex.grade_repaired(repaired, coverage=False)
    if failures:
        raise Incorrect(failures[0])
    return f"{len(repaired)} examples, no problems"


@EXERCISE.question(
    "Raise the persona coverage",
    names=["final"],
    points=3,
    hints=[
        "marker_coverage(final, spec)['by_turn'] shows where the persona fades: the later replies of "
        "multi-turn conversations.",
        "Give every reply without a marker one that fits: 'Nice work!' after progress, 'Great choice!' after a "
        "decision, \"Let's get this done.\" otherwise; then validate again.",
    ],
)
def q3(final):
    expect_type(final, list, "final")
    failures = ex.grade(final)
    if failures:
        raise Incorrect(failures[0])
    return f"coverage at least {ex.MIN_COVERAGE:.0%} and still valid"
