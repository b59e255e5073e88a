"""General questions before and after fine-tuning (lesson 04): the data file, grading and the result; no model."""

import pytest

from personalab import general
from personalab.errors import InputError


def test_course_questions_load_with_unique_ids():
    qs = general.load_questions()
    assert len(qs) >= 10 and len({q.id for q in qs}) == len(qs)


@pytest.mark.parametrize(("reply", "ok"), [("The capital of France is Paris.", True), ("PARIS", True),
                                           ("It is Lyon.", False), ("Parisian food is great", False)])
def test_grading_matches_whole_answers_case_insensitively(reply, ok):
    q = next(q for q in general.load_questions() if q.id == "g02")
    assert q.correct(reply) is ok


def test_numbers_match_as_digits_or_words_but_not_inside_other_numbers():
    q = general.GeneralQuestion(id="x", question="2 + 2?", answers=[r"\b4\b", r"\bfour\b"])
    assert q.correct("2 + 2 = 4.") and q.correct("Four.") and not q.correct("It is 14.")


@pytest.mark.parametrize(("line", "field"), [
    ('{"id": "a", "question": "q"}', "answers"),
    ('{"id": "a", "question": "q", "answers": ["(unclosed"]}', "answers"),
    ('{"id": "a", "question": "q", "answers": []}', "answers"),
    ('{"id": "a", "question": "q", "answers": ["x"], "extra": 1}', "extra"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "general.jsonl"
    path.write_text('{"id": "ok", "question": "q", "answers": ["x"]}\n' + line + "\n")
    with pytest.raises(InputError) as err:
        general.load_questions(path)
    assert err.value.line == 2 and err.value.field.startswith(field) and "general.jsonl" in str(err.value)


def test_bad_json_duplicate_ids_and_empty_files_are_clear(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text("{not json\n")
    with pytest.raises(InputError, match="not valid JSON"):
        general.load_questions(path)
    path.write_text('{"id": "a", "question": "q", "answers": ["x"]}\n' * 2)
    with pytest.raises(InputError, match="used twice"):
        general.load_questions(path)
    path.write_text("\n")
    with pytest.raises(InputError, match="no questions"):
        general.load_questions(path)
    with pytest.raises(InputError, match="not found"):
        general.load_questions(tmp_path / "missing.jsonl")


def test_result_accuracy_rows_and_changed_questions():
    qs = [general.GeneralQuestion(id="a", question="2+2?", answers=[r"\b4\b"]),
          general.GeneralQuestion(id="b", question="Capital of Italy?", answers=["rome"])]
    res = general.GeneralResult(qs, {"base": ["4", "Rome."], "tuned": ["Nice work! 5", "Rome it is."]})
    assert res.accuracy() == {"base": 1.0, "tuned": 0.5}
    assert res.changed() == ["2+2?"]
    rows = res.rows()
    assert rows[0]["base"] == "✓ 4" and rows[0]["tuned"].startswith("✗")
    fig = res.plot()
    assert len(fig.axes) == 1
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_result_needs_one_reply_per_question():
    qs = [general.GeneralQuestion(id="a", question="q", answers=["x"])]
    with pytest.raises(InputError, match="1 questions"):
        general.GeneralResult(qs, {"base": []})


def test_ask_uses_each_model_without_a_system_prompt(monkeypatch):
    calls = []

    def fake_generate(model, tok, prompts, *, system=None, max_new_tokens=48, **_):
        calls.append((model, system, list(prompts)))
        return [f"{model}: Paris" for _ in prompts]

    monkeypatch.setattr("personalab.finetune.infer.generate_replies", fake_generate)
    qs = [q for q in general.load_questions() if q.id in ("g02", "g03")]
    res = general.ask({"base": ("m1", None), "tuned": ("m2", None)}, qs)
    assert [c[0] for c in calls] == ["m1", "m2"] and all(c[1] is None for c in calls)
    assert calls[0][2] == [q.question for q in qs]
    assert res.accuracy() == {"base": 0.5, "tuned": 0.5}


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3
    (15, 148, 0.0624, 0.1605),  # same table
    (0, 10, 0.0, 0.2775),  # same table
    (1, 29, 0.0061, 0.1718),  # same table
])
def test_wilson_interval_matches_published_values(k, n, low, high):
    got = general.wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_count_summary_reads_as_the_lessons_print_it():
    assert general.count_summary(4, 12) == "4 of 12 (33 %, 95 % interval 14-61 %)"
    assert general.count_summary(0, 12) == "0 of 12 (0 %, 95 % interval 0-24 %)"
    assert general.count_summary(12, 12) == "12 of 12 (100 %, 95 % interval 76-100 %)"


@pytest.mark.parametrize(("k", "n"), [(5, 4), (-1, 4), (0, 0), (1.5, 4), (True, 4)])
def test_wilson_interval_rejects_impossible_counts(k, n):
    with pytest.raises(InputError):
        general.wilson_interval(k, n)


def test_result_summary_and_intervals_follow_the_counts():
    qs = [general.GeneralQuestion(id=f"q{i}", question=f"{i} + 1?", answers=[rf"\b{i + 1}\b"]) for i in range(4)]
    res = general.GeneralResult(qs, {"base": ["1", "2", "3", "4"], "tuned": ["1", "x", "x", "x"]})
    assert res.correct_counts() == {"base": 4, "tuned": 1}
    assert res.accuracy() == {"base": 1.0, "tuned": 0.25}
    assert res.intervals()["tuned"] == general.wilson_interval(1, 4)
    lines = res.summary().splitlines()
    assert lines == [f"base : {general.count_summary(4, 4)} answered correctly",
                     f"tuned: {general.count_summary(1, 4)} answered correctly"]
    import matplotlib.pyplot as plt

    plt.close(res.plot())
