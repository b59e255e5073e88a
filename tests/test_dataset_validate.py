"""Every validation check, one bad file per problem kind, with its line and field."""

import json

import pytest

from personalab.dataset import validate
from personalab.dataset.counting import approx_counter, token_counter
from personalab.dataset.validate import KINDS, shingles, similar_pairs, validate_file, validate_text
from personalab.errors import InputError
from personalab.persona import taskmaster

GOOD = {"messages": [{"role": "user", "content": "Add 'file the report' for Friday."},
                     {"role": "assistant", "content": "Great choice! 'file the report' is on your list for Friday."}]}
OTHER = {"messages": [{"role": "user", "content": "I finished the garden plan."},
                      {"role": "assistant", "content": "Nice work! It is checked off. What comes next today?"}]}


def j(obj) -> str:
    return json.dumps(obj)


def msgs(*pairs, **extra) -> str:
    return j({"messages": [{"role": r, "content": c} for r, c in pairs], **extra})


U = ("user", "Log 'call the bank' for Monday.")
A = ("assistant", "Great choice! 'call the bank' is on your list for Monday.")

# kind -> (bad line, field reported); each file is: a good line, then the bad line (line 2)
CASES = {
    "json": ('{"messages": [}', None),
    "data_type": (j([GOOD]), None),
    "missing_messages_list": (j({"messages": []}), "messages"),
    "unknown_key": (msgs(U, A, id="x1"), "id"),
    "message_not_dict": (j({"messages": ["hello", dict(zip(("role", "content"), A, strict=True))]}), "messages[0]"),
    "message_missing_key": (j({"messages": [{"role": "user"}, dict(zip(("role", "content"), A, strict=True))]}),
                            "messages[0]"),
    "message_unrecognized_key": (j({"messages": [{"role": "user", "content": U[1], "time": 3},
                                                 dict(zip(("role", "content"), A, strict=True))]}), "messages[0].time"),
    "unrecognized_role": (msgs(U, ("bot", A[1]), A), "messages[1].role"),
    "missing_content": (msgs(U, ("assistant", "   ")), "messages[1].content"),
    "bad_weight": (j({"messages": [{"role": "user", "content": U[1]},
                                   {"role": "assistant", "content": A[1], "weight": 2}]}), "messages[1].weight"),
    "example_missing_assistant_message": (msgs(U), "messages"),
    "persona_marker_missing": (msgs(U, ("assistant", "The task has been created.")), "messages[1].content"),
    "avoided_vocabulary": (msgs(U, ("assistant", "Great choice! You should start today.")), "messages[1].content"),
    "duplicate": (j(GOOD), "messages"),
    "near_duplicate": (j({"messages": GOOD["messages"][:1] + [{"role": "assistant", "content": GOOD["messages"][1]
                                                               ["content"] + " Go"}]}), "messages"),
}


def test_every_kind_has_a_case_or_its_own_test():
    assert set(KINDS) == set(CASES) | {"too_long", "eval_leak", "too_few_examples"}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_one_bad_line_per_kind(tmp_path, kind):
    bad, fld = CASES[kind]
    path = tmp_path / "data.jsonl"
    path.write_text(j(GOOD) + "\n" + bad + "\n")
    report = validate_file(path, spec=taskmaster())
    assert not report.ok
    found = [p for p in report.problems if p.kind == kind]
    assert found, report.format()
    assert found[0].line == 2 and found[0].field == fld
    assert all(p.line == 2 for p in report.problems), report.format()  # the good line is clean
    text = found[0].render(str(path))
    assert f"{path}, line 2" in text and "how to fix:" in text


def test_good_file_passes(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text(j(GOOD) + "\n\n" + j(OTHER) + "\n")  # a blank line is skipped
    report = validate_file(path, spec=taskmaster(), max_seq_length=200, counter=token_counter())
    assert report.ok, report.format()
    assert report.n_examples == 2 and len(report.lengths) == 2 and all(n > 10 for n in report.lengths)


def test_too_long_uses_the_counter():
    text = j(GOOD) + "\n" + msgs(U, ("assistant", "Great choice! " + "word " * 300)) + "\n"
    report = validate_text(text, max_seq_length=100, counter=approx_counter())
    assert [(p.kind, p.line) for p in report.problems] == [("too_long", 2)]
    assert "approximate" in report.problems[0].message
    assert validate_text(text, max_seq_length=1000, counter=approx_counter()).ok


def test_eval_leak_compares_user_messages(tmp_path):
    train, ev = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    leaked = msgs(("user", OTHER["messages"][0]["content"]),
                  ("assistant", "Great choice! A different reply entirely, with new words."))
    train.write_text(j(GOOD) + "\n" + leaked + "\n")
    ev.write_text(j(OTHER) + "\n")
    report = validate_file(train, eval_path=ev)
    assert [(p.kind, p.line) for p in report.problems] == [("eval_leak", 2)]
    assert "eval line 1" in report.problems[0].message
    ev.write_text(msgs(("user", "Something else entirely, about invoices and taxes."), A) + "\n")
    assert validate_file(train, eval_path=ev).ok


def test_system_message_is_ignored_for_duplicates():
    sys_msg = {"role": "system", "content": "You are TaskMaster. " * 30}
    a = {"messages": [sys_msg, *GOOD["messages"]]}
    b = {"messages": [sys_msg, *OTHER["messages"]]}
    assert validate_text(j(a) + "\n" + j(b)).ok


def test_too_few_examples_and_missing_file(tmp_path):
    report = validate_text(j(GOOD), min_examples=10)
    assert report.by_kind() == {"too_few_examples": 1}
    with pytest.raises(InputError, match="not found"):
        validate_file(tmp_path / "nope.jsonl")
    (tmp_path / "a.jsonl").write_text(j(GOOD))
    with pytest.raises(InputError, match="eval file not found"):
        validate_file(tmp_path / "a.jsonl", eval_path=tmp_path / "nope.jsonl")


def test_persona_checks_skipped_without_spec():
    assert validate_text(msgs(U, ("assistant", "You should do it."))).ok


def test_similar_pairs_is_exact_against_brute_force():
    import random

    rng = random.Random(0)
    words = "plan task done call report list week today next start finish move".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(120)]
    sets = [shingles(t, 2) for t in texts]
    for t in (0.5, 0.7, 0.9):
        fast = {(i, k) for i, k, _ in similar_pairs(sets, t)}
        slow = {(i, k) for i in range(len(sets)) for k in range(i) if validate.jaccard(sets[i], sets[k]) >= t}
        assert fast == slow
        cross = {(i, k) for i, k, _ in similar_pairs(sets[:60], t, sets[60:])}
        brute = {(i, k) for i in range(60) for k in range(60) if validate.jaccard(sets[i], sets[60 + k]) >= t}
        assert cross == brute
    with pytest.raises(InputError):
        similar_pairs(sets, 0)


def test_report_dict_and_format():
    report = validate_text(j(GOOD) + "\n" + "not json\n")
    d = report.to_dict()
    assert d["ok"] is False and d["by_kind"] == {"json": 1} and d["problems"][0]["line"] == 2
    assert "1 problem(s)" in report.format() and report.lines("json") == [2]


def test_drop_problems_removes_flagged_positions():
    examples = [GOOD, GOOD, OTHER, {"messages": []}]
    report = validate.validate_examples(examples)
    assert validate.drop_problems(examples, report) == [GOOD, OTHER]
    assert validate.drop_problems(examples, report, kinds=["duplicate"]) == [GOOD, OTHER, {"messages": []}]
    with pytest.raises(InputError):
        validate.drop_problems(examples[:2], report)


def test_every_problem_of_a_line_is_reported() -> None:
    from personalab.dataset.validate import validate_text
    from personalab.persona import taskmaster

    line = ('{"messages": [{"role": "user", "content": "Add a task"}, '
            '{"role": "assistant", "content": "You should do it."}], "extra": 1}')
    kinds = [p.kind for p in validate_text(line, spec=taskmaster()).problems]
    assert "unknown_key" in kinds and "avoided_vocabulary" in kinds and "persona_marker_missing" in kinds
