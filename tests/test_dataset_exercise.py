"""Exercise 03: the broken dataset carries exactly the planted errors, and grading tells repaired from not."""

import json
import re

from personalab.dataset import exercise
from personalab.dataset.generation import generate
from personalab.dataset.validate import KINDS
from personalab.persona import has_marker, taskmaster


def test_committed_files_match_the_builder():
    train, ev = exercise.build_broken()
    assert exercise.BROKEN_PATH.read_text(encoding="utf-8") == "\n".join(train) + "\n"
    assert exercise.BROKEN_EVAL_PATH.read_text(encoding="utf-8") == "\n".join(ev) + "\n"


def test_validator_finds_exactly_the_planted_errors():
    from personalab.dataset.counting import token_counter
    from personalab.dataset.validate import validate_file

    report = validate_file(exercise.BROKEN_PATH, spec=taskmaster(), max_seq_length=exercise.MAX_SEQ_LENGTH,
                           counter=token_counter(exercise.TOKENIZER), eval_path=exercise.BROKEN_EVAL_PATH)
    found: dict[int, list[str]] = {}
    for p in report.problems:
        found.setdefault(p.line, []).append(p.kind)
    assert {k: sorted(v) for k, v in found.items()} == {k: sorted(v) for k, v in exercise.PLANTED.items()}
    # every kind except the file-level one is planted somewhere
    assert {k for kinds in exercise.PLANTED.values() for k in kinds} == set(KINDS) - {"too_few_examples"}


def _reference_repair():
    spec = taskmaster()

    def parse(text):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return json.loads(re.sub(r",\s*([\]}])", r"\1", text))

    out = []
    for line in exercise.BROKEN_PATH.read_text(encoding="utf-8").splitlines():
        obj = parse(line)
        obj = {"messages": obj} if isinstance(obj, list) else obj
        msgs = []
        for m in obj.get("messages") or obj.get("conversation") or []:
            if not isinstance(m, dict):
                continue
            role = {"bot": "assistant"}.get(m.get("role"), m.get("role"))
            content = m.get("content", m.get("text"))
            if role in ("user", "assistant") and isinstance(content, str) and content.strip():
                content = re.sub(r"(?i)(you should|as an ai language model,)\s*(\w)", lambda x: x.group(2).upper(),
                                 content)
                if role == "assistant" and not has_marker(content, spec):
                    content = "Let's get this done. " + content
                msgs.append({"role": role, "content": content})
        while msgs and msgs[-1]["role"] != "assistant":
            msgs.pop()
        if msgs:
            out.append({"messages": msgs})
    report = exercise.validate_repaired(out)
    drop = {p.line for p in report.problems if p.kind in ("duplicate", "near_duplicate", "eval_leak", "too_long")}
    return [e for n, e in enumerate(out, 1) if n not in drop]


def test_grade_passes_a_real_repair():
    repaired = _reference_repair()
    assert exercise.grade(repaired) == []


def test_grade_rejects_shortcuts():
    repaired = _reference_repair()
    assert any("does not validate" in f for f in exercise.grade(repaired + repaired[:1]))
    assert any("examples kept" in f for f in exercise.grade(repaired[:10]))
    fresh = generate("train", progress=False)[: len(repaired)]
    assert any("do not come from" in f for f in exercise.grade(fresh))
    spec = taskmaster()
    faded = json.loads(json.dumps(repaired))
    for e in faded:  # take the markers out of every later reply: coverage drops
        for m in [m for m in e["messages"] if m["role"] == "assistant"][1:]:
            m["content"] = exercise._strip_markers(m["content"], spec) or "Okay."
    fails = exercise.grade(faded)
    assert len(fails) == 1 and "coverage" in fails[0]


def test_grade_reports_what_is_still_broken():
    parsable = []
    for line in exercise.BROKEN_PATH.read_text(encoding="utf-8").splitlines():
        try:
            parsable.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    fails = exercise.grade(parsable)
    assert fails and "does not validate" in fails[0]
    for kind in ("too_long", "eval_leak", "unknown_key", "avoided_vocabulary"):
        assert kind in fails[0]


# ------------------------------------------------------------------ checks module (needs personalab.checks)
def _checks():
    import pytest

    return pytest.importorskip("personalab.checks.ex03", reason="the checks framework is not on this branch yet",
                               exc_type=ImportError)


def _grade(question, ns):
    return question.grade(json.loads(json.dumps(question.export(ns))))


def _reference_fix(obj):
    if isinstance(obj, list):
        obj = {"messages": obj}
    if not isinstance(obj, dict):
        return None
    msgs = []
    for m in obj.get("messages") or obj.get("conversation") or []:
        if isinstance(m, dict):
            role = {"bot": "assistant"}.get(m.get("role"), m.get("role"))
            content = m.get("content", m.get("text"))
            if role in ("user", "assistant") and isinstance(content, str) and content.strip():
                msgs.append({"role": role, "content": content})
    while msgs and msgs[-1]["role"] != "assistant":
        msgs.pop()
    return {"messages": msgs} if msgs else None


def test_check_q1_grades_fix_example():
    q1 = _checks().EXERCISE.questions[0]
    assert _grade(q1, {"fix_example": _reference_fix}).status == "correct"
    half = _grade(q1, {"fix_example": lambda obj: obj if isinstance(obj, dict) and "messages" in obj else None})
    assert half.status == "partial" and 0 < half.points < q1.points
    assert _grade(q1, {}).status == "not-attempted"

    def todo(obj):
        raise NotImplementedError("your code here")

    assert _grade(q1, {"fix_example": todo}).status == "not-attempted"


def test_check_q2_q3_grade_the_datasets():
    ex03 = _checks()
    _, q2, q3 = ex03.EXERCISE.questions
    repaired = _reference_repair()
    assert _grade(q2, {"repaired": repaired}).status == "correct"
    assert _grade(q3, {"final": repaired}).status == "correct"
    assert _grade(q2, {"repaired": repaired[:5]}).status == "incorrect"
    assert _grade(q2, {"repaired": "not a list"}).status == "incorrect"
    assert _grade(q3, {}).status == "not-attempted"
