"""Hidden cases for exercise 03, question 1 (``fix_example``): other wording, other shapes, same rules.

Only the parsed lines travel into the learner's kernel; whether each can be saved stays here.
"""

from __future__ import annotations

from typing import Any

from personalab.checks import Hidden, Incorrect
from personalab.dataset import exercise as ex


def _u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _a(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


_R = "Nice work! 'water the plants' is on your list for Sunday. Let's get this done."
#: (what is wrong, the parsed line, whether it can be saved) -- none of these lines is a public case
CASES: list[tuple[str, Any, bool]] = [
    ("a bare list with a greeting", [_u("Remind me to water the plants on Sunday."), _a(_R)], True),
    ("'conversation' with extra keys", {"conversation": [_u("Add 'renew passport'."), _a(_R)], "source": "app"},
     True),
    ("the role 'bot' after two turns", {"messages": [_u("Add 'water the plants'."), _a(_R),
                                                     _u("And 'buy soil'."), {"role": "bot", "content": _R}]}, True),
    ("'text' and a timestamp", {"messages": [_u("Add 'renew passport'.") | {"ts": 3},
                                             {"role": "assistant", "text": _R}]}, True),
    ("a number among the messages", {"messages": [_u("Add 'renew passport'."), 42, _a(_R)]}, True),
    ("two unanswered user turns at the end", {"messages": [_u("Add 'buy soil'."), _a(_R), _u("Thanks."),
                                                           _u("Hello?")]}, True),
    ("only empty replies", {"messages": [_u("Add 'buy soil'."), _a(""), _a("   ")]}, False),
    ("a number instead of a line", 17, False),
    ("an empty list", [], False),
]


def _check(fix_example: Any, outputs: Any) -> str:
    """Credit: the share of repairable lines repaired, minus the share of hopeless lines not answered with
    None (so a function that returns None for everything, or a lookup table of the public cases, earns 0)."""
    if not isinstance(outputs, list) or len(outputs) != len(CASES):
        raise Incorrect("`fix_example` did not return one result per hidden case")
    wrong = [ex.check_fix_outputs([out], [case]) for case, out in zip(CASES, outputs, strict=True)]
    saved = [not w for (_, _, ok), w in zip(CASES, wrong, strict=True) if ok]
    hopeless = [not w for (_, _, ok), w in zip(CASES, wrong, strict=True) if not ok]
    n_wrong = sum(bool(w) for w in wrong)
    if not n_wrong:
        return f"all {len(CASES)} hidden cases handled"
    credit = max(0.0, sum(saved) / len(saved) - hopeless.count(False) / len(hopeless))
    messages = [w[0] for w in wrong if w]
    raise Incorrect(f"{len(CASES) - n_wrong}/{len(CASES)} hidden cases right. " + "; ".join(messages[:3]),
                    credit=round(credit, 4))


HIDDEN = {"q1": Hidden(inputs=[case for _, case, _ in CASES], check=_check)}
