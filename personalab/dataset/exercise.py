"""Exercise 03: a broken dataset with one planted error of every kind the validator knows, and its grading.

``data/exercises/broken_dataset.jsonl`` (and ``broken_eval.jsonl``, the eval set it leaks into) are
generated here and committed; :data:`PLANTED` says which line carries which error (a test checks that the
validator finds exactly those). The learner repairs the examples until they validate, then raises the
persona coverage; :func:`grade` decides whether that worked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import DATA_DIR
from ..io import atomic_write_text
from ..persona import PersonaSpec, taskmaster
from .counting import token_counter
from .offline import offline_conversation
from .requests import build_requests
from .stats import marker_coverage
from .validate import ValidationReport, parse_lines, validate_examples

EXERCISE_DIR = DATA_DIR / "exercises"
BROKEN_PATH = EXERCISE_DIR / "broken_dataset.jsonl"
BROKEN_EVAL_PATH = EXERCISE_DIR / "broken_eval.jsonl"
#: The settings the exercise is validated with.
MAX_SEQ_LENGTH = 384
TOKENIZER = "gpt-4o-mini"
MIN_COVERAGE = 0.9
#: The repaired dataset must keep at least this many examples (the clean lines plus most fixable ones).
MIN_KEPT = 32

N_CLEAN = 30
#: line number -> the problem kinds planted on it (the validator must report exactly these).
PLANTED: dict[int, tuple[str, ...]] = {
    3: ("json",),
    5: ("data_type",),
    8: ("missing_messages_list", "unknown_key"),
    10: ("unknown_key", "unknown_key"),
    12: ("unrecognized_role", "example_missing_assistant_message"),
    14: ("message_missing_key", "message_unrecognized_key"),
    16: ("message_unrecognized_key",),
    18: ("missing_content",),
    20: ("example_missing_assistant_message",),
    22: ("persona_marker_missing",),
    24: ("avoided_vocabulary",),
    26: ("avoided_vocabulary",),
    28: ("too_long",),
    30: ("duplicate",),
    32: ("near_duplicate",),
    34: ("eval_leak",),
    36: ("message_not_dict",),
    38: ("bad_weight",),
}

_LONG = (
    "Here is a very detailed plan, step by step, covering every angle of the task so nothing gets missed. "
    "First, gather every document, note and email related to it and sort them into one folder by date. "
    "Second, read each one carefully, highlight the important parts, and write a short summary for each. "
    "Third, compare the summaries, look for contradictions, and list the open questions for the team. "
    "Fourth, schedule a meeting to go through the open questions one by one and assign an owner to each. "
)


def _clean_examples(spec: PersonaSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Clean train examples (some multi-turn, with later replies stripped of markers) and eval examples."""
    reqs = build_requests()
    train = [r for r in reqs if r.split == "train" and r.category != "injection"]
    evals = [r for r in reqs if r.split == "eval" and r.category != "injection"][:8]
    multi = [r for r in train if r.multi_turn][:10]
    single = [r for r in train if not r.multi_turn][: N_CLEAN + 12 - len(multi)]
    chosen = sorted(multi + single, key=lambda r: r.id)
    out = []
    for r in chosen:
        msgs = offline_conversation(spec, r)
        if r.multi_turn:  # persona fades after the first reply: coverage to raise
            for m in [m for m in msgs if m["role"] == "assistant"][1:]:
                m["content"] = _strip_markers(m["content"], spec)
        out.append({"messages": msgs})
    return out, [{"messages": offline_conversation(spec, r)} for r in evals]


def _strip_markers(text: str, spec: PersonaSpec) -> str:
    for marker in spec.markers:
        for variant in (marker, marker.rstrip("!.") + ".", marker.rstrip("!.")):
            text = text.replace(variant + " ", "").replace(" " + variant, "").replace(variant, "")
    return text.strip()


def build_broken() -> tuple[list[str], list[str]]:
    """(lines of broken_dataset.jsonl, lines of broken_eval.jsonl), planted as :data:`PLANTED` says."""
    spec = taskmaster()
    clean, evals = _clean_examples(spec)
    pool = iter(clean)

    def dump(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False)

    def u(text: str) -> dict[str, str]:
        return {"role": "user", "content": text}

    def a(text: str) -> dict[str, str]:
        return {"role": "assistant", "content": text}

    def msgs() -> list[Any]:
        return next(pool)["messages"]

    lines: dict[int, str] = {1: dump(next(pool)), 2: dump(next(pool))}  # copied on lines 30 and 32
    lines[3] = dump({"messages": msgs()})[:-2] + ",]}"  # trailing comma: not JSON
    lines[5] = dump(msgs())  # a bare list, not an object
    lines[8] = dump({"conversation": msgs()})
    lines[10] = dump({"messages": msgs(), "id": "ex-0010", "category": "create"})
    lines[12] = dump({"messages": [m if m["role"] != "assistant" else {"role": "bot", "content": m["content"]}
                                   for m in msgs()]})
    m14 = msgs()
    m14[1] = {"role": "assistant", "text": m14[1]["content"]}
    lines[14] = dump({"messages": m14 + [u("Thanks!"), a("Let's get this done. What's next on your list?")]})
    m16 = msgs()
    m16[0] = m16[0] | {"timestamp": "2025-03-04T09:12:00"}
    lines[16] = dump({"messages": m16})
    lines[18] = dump({"messages": [u("Can you add 'water the balcony plants' for Sunday?"),
                                   a("Great choice! 'water the balcony plants' is on your list for Sunday."),
                                   u("And one more: 'buy printer paper' by Friday."), a("")]})
    lines[20] = dump({"messages": [u("Please note 'call the plumber', due Thursday.")]})
    lines[22] = dump({"messages": [u("Log 'renew the museum membership' for next Friday."),
                                   a("The task 'renew the museum membership' has been created for next Friday.")]})
    lines[24] = dump({"messages": [u("I can't start 'write the safety checklist'. Any tips?"),
                                   a("Let's get this done. You should open a blank page and list the first three "
                                     "hazards you can think of.")]})
    lines[26] = dump({"messages": [u("What's your favourite movie?"),
                                   a("As an AI language model, I don't watch movies. Nice work on asking, though. "
                                     "What's on your list today?")]})
    lines[28] = dump({"messages": [u("How do I tackle 'prepare the compliance audit'?"),
                                   a("Let's get this done. " + _LONG * 4)]})
    lines[30] = lines[1]
    near = json.loads(lines[2])
    near["messages"][0]["content"] += " Thanks!"  # one word more: not exact, but nearly the same
    lines[32] = dump(near)
    lines[34] = dump({"messages": [u(evals[0]["messages"][0]["content"]),
                                   a("Great choice! It's on your list. What's next?")]})
    m36 = msgs()
    lines[36] = dump({"messages": [m36[0], "assistant: " + m36[1]["content"], m36[1]]})
    m38 = msgs()
    m38[1] = m38[1] | {"weight": 0.5}
    lines[38] = dump({"messages": m38})
    n_lines = 40
    for n in range(1, n_lines + 1):
        if n not in lines:
            lines[n] = dump(next(pool))
    return [lines[n] for n in range(1, n_lines + 1)], [dump(e) for e in evals]


def write_exercise_files() -> tuple[Path, Path]:
    """Regenerate the committed exercise files (atomically)."""
    train, evals = build_broken()
    atomic_write_text(BROKEN_PATH, "\n".join(train) + "\n")
    atomic_write_text(BROKEN_EVAL_PATH, "\n".join(evals) + "\n")
    return BROKEN_PATH, BROKEN_EVAL_PATH


def read_broken(path: str | Path = BROKEN_PATH) -> list[tuple[int, Any, str | None]]:
    """Every line of the broken file as (line number, parsed JSON or None, JSON error or None)."""
    return parse_lines(Path(path).read_text(encoding="utf-8"))


def eval_examples() -> list[dict[str, Any]]:
    return [json.loads(line) for line in BROKEN_EVAL_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def validate_repaired(examples: Sequence[Any], spec: PersonaSpec | None = None) -> ValidationReport:
    """Validate repaired examples with the exercise's settings (persona, max_seq_length, eval set)."""
    return validate_examples(list(examples), spec=spec or taskmaster(), max_seq_length=MAX_SEQ_LENGTH,
                             counter=token_counter(TOKENIZER), eval_examples=eval_examples())


def _first_user(example: Any) -> str | None:
    try:
        return next(m["content"] for m in example["messages"] if m.get("role") == "user").strip()
    except (KeyError, TypeError, StopIteration, AttributeError):
        return None


def broken_messages(path: str | Path = BROKEN_PATH) -> set[str]:
    """Every message text in the broken file, also on lines that are not valid JSON."""
    text = Path(path).read_text(encoding="utf-8")
    return {json.loads(m).strip() for m in re.findall(r'"(?:content|text)": ("(?:[^"\\]|\\.)*")', text)}


def _u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _a(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


_R = "Great choice! 'pay the rent' is on your list for Friday. Want a reminder the day before?"
#: Cases for the learner's ``fix_example``: (what is wrong, the parsed line, whether it can be saved).
FIX_CASES: list[tuple[str, Any, bool]] = [
    ("a bare list of messages", [_u("Add 'pay the rent' for Friday."), _a(_R)], True),
    ("'conversation' instead of 'messages'", {"conversation": [_u("Add 'pay the rent' for Friday."), _a(_R)]}, True),
    ("extra keys on the line", {"messages": [_u("Add 'pay the rent' for Friday."), _a(_R)], "id": 7}, True),
    ("the role 'bot'", {"messages": [_u("Add 'pay the rent' for Friday."), {"role": "bot", "content": _R}]}, True),
    ("'text' instead of 'content'", {"messages": [_u("Add 'pay the rent'."), {"role": "assistant", "text": _R}]}, True),
    ("an extra message key", {"messages": [_u("Add 'pay the rent'.") | {"timestamp": "09:00"}, _a(_R)]}, True),
    ("a message that is a string", {"messages": [_u("Add 'pay the rent'."), "assistant: hi", _a(_R)]}, True),
    ("an empty last reply", {"messages": [_u("Add 'pay the rent'."), _a(_R), _u("And 'call mum'."), _a("")]}, True),
    ("a weight of 0.5", {"messages": [_u("Add 'pay the rent'."), _a(_R) | {"weight": 0.5}]}, True),
    ("no assistant reply at all", {"messages": [_u("Please note 'call the plumber', due Thursday.")]}, False),
    ("not an object at all", "just a string", False),
]


def check_fix_outputs(outputs: Sequence[Any], cases: Sequence[tuple[str, Any, bool]] | None = None) -> list[str]:
    """What the learner's ``fix_example`` got wrong on ``cases`` (default :data:`FIX_CASES`; empty: all right)."""
    from .validate import check_example

    cases = FIX_CASES if cases is None else cases
    wrong = []
    for (what, case, salvageable), out in zip(cases, outputs, strict=False):
        if not salvageable:
            if out is not None:
                wrong.append(f"{what}: nothing can be saved here, so return None (got {str(out)[:60]})")
            continue
        if out is None:
            wrong.append(f"{what}: this one can be repaired, but you returned None")
            continue
        problems = check_example(out)
        if problems:
            wrong.append(f"{what}: the result still has a problem: {problems[0].message}"
                         + (f" in {problems[0].field}" if problems[0].field else ""))
            continue
        msgs = case if isinstance(case, list) else case.get("messages") or case.get("conversation")
        first = next(m["content"] for m in msgs if isinstance(m, dict) and m.get("role") == "user")
        if _first_user(out) != first.strip():
            wrong.append(f"{what}: keep the user's message as it was ({first!r})")
    if len(outputs) != len(cases):
        wrong.append(f"expected {len(cases)} results, got {len(outputs)}")
    return wrong


def grade_repaired(examples: Sequence[Any], spec: PersonaSpec | None = None, *, coverage: bool = True) -> list[str]:
    """What is still wrong with a repaired dataset (empty list: passed).

    It must validate with the exercise settings, keep at least :data:`MIN_KEPT` examples that all come
    from the broken file and, with ``coverage``, reach :data:`MIN_COVERAGE` persona-marker coverage.
    """
    spec = spec or taskmaster()
    examples = list(examples)
    report = validate_repaired(examples, spec)
    failures = []
    if not report.ok:
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(report.by_kind().items()))
        failures.append(f"the dataset does not validate yet ({kinds}); first problem: {report.problems[0].render()}")
    if len(examples) < MIN_KEPT:
        failures.append(f"only {len(examples)} examples kept, need at least {MIN_KEPT}: repair lines rather than "
                        "deleting them (drop only what cannot be saved)")
    known = broken_messages()
    foreign = [i for i, ex in enumerate(examples, 1) if _first_user(ex) not in known]
    if foreign:
        failures.append(f"examples {foreign[:5]} do not come from broken_dataset.jsonl: repair its examples, "
                        "do not replace them")
    if coverage and report.ok:
        cov = marker_coverage(report.examples, spec)["coverage"]
        if cov < MIN_COVERAGE:
            failures.append(f"persona-marker coverage is {cov:.0%}, need {MIN_COVERAGE:.0%}: add a marker to the "
                            "replies that lack one")
    return failures


def grade(examples: Sequence[Any], spec: PersonaSpec | None = None) -> list[str]:
    """The whole exercise: valid, enough examples kept, all from the broken file, coverage reached."""
    return grade_repaired(examples, spec, coverage=True)
