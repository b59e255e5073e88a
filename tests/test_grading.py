"""The gradebook: submissions run headless, each question graded outside the kernel, bad notebooks survive."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import nbformat
import pytest

from personalab import grading
from personalab.authoring import exercises
from personalab.checks import Result
from personalab.grading import scoring

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fake_path(monkeypatch):
    """Make the fake exercise module importable here and in the kernels."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]))
    from pl_fake import notebooks

    return notebooks


def test_find_submissions_flat_and_per_student_folders(tmp_path):
    (tmp_path / "alice.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "01_system_prompt_persona.ipynb").write_text("{}")
    (tmp_path / "bob" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "bob" / ".ipynb_checkpoints" / "01_x-checkpoint.ipynb").write_text("{}")
    meta = nbformat.v4.new_notebook(metadata={"personalab": {"exercise": "03"}})
    nbformat.write(meta, tmp_path / "carol.ipynb")
    (tmp_path / "notes.txt").write_text("")
    subs = grading.find_submissions(tmp_path)
    assert [(s.student, s.path.name, s.exercise) for s in subs] == [
        ("alice", "alice.ipynb", None),
        ("bob", "01_system_prompt_persona.ipynb", "01"),
        ("carol", "carol.ipynb", "03"),
    ]
    assert subs[1].folder == tmp_path / "bob"
    assert {s.exercise for s in grading.find_submissions(tmp_path, exercise="02")} == {"02"}


def test_kernel_env_has_no_secrets_or_proxies(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("https_proxy", "http://proxy:3128")
    env = grading.kernel_env("http://127.0.0.1:8000/v1", "tiny")
    assert "sk-test-secret" not in env.values() and "HF_TOKEN" not in env and "https_proxy" not in env
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:8000/v1" and env["PERSONALAB_MODEL"] == "tiny"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert "OPENAI_API_KEY" not in grading.kernel_env("https://api.openai.com/v1")
    assert "OPENAI_API_KEY" not in grading.kernel_env("https://api.openai.com/v1", api_key="sk-x")
    # a workshop server's key is passed on when the instructor configured that server
    assert grading.kernel_env("http://10.0.0.5:8000/v1", api_key="class-key")["OPENAI_API_KEY"] == "class-key"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.5:8000/v1")
    monkeypatch.delenv("PERSONALAB_MODEL", raising=False)  # the test session's own server sets it
    with grading.model_server(True) as where:
        assert where == {"base_url": "http://10.0.0.5:8000/v1", "model": None, "api_key": "sk-test-secret"}


def test_values_need_the_nonce(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text(
        json.dumps({"nonce": "fake", "question": "q1", "values": {"answer": 42}}) + "\n"
        + "not json\n"
        + json.dumps({"nonce": "n0", "question": "q1", "values": {"answer": 41}}) + "\n"
        + json.dumps({"nonce": "n0", "question": "q1", "values": {"answer": 40}}) + "\n"
    )
    assert scoring.read_values(path, "n0") == {"q1": {"answer": 41}}
    assert scoring.read_values(tmp_path / "none.jsonl", "n0") == {}


def test_unknown_exercise_is_a_row_not_a_crash(tmp_path):
    (tmp_path / "x.ipynb").write_text("{}")
    [sub] = grading.find_submissions(tmp_path)
    rep = grading.grade_one(sub)
    assert rep.results[0].status == "error" and "which exercise" in rep.results[0].reason
    rep = grading.grade_one(grading.Submission("x", tmp_path / "x.ipynb", "97"))
    assert "no checks for exercise '97'" in rep.results[0].reason


def test_feedback_markdown_lists_verdicts_and_errors(tmp_path):
    sub = grading.Submission("alice", tmp_path / "01_x.ipynb", "01")
    rep = grading.Report(sub, [Result("q1", 1, 2, "partial", "a | b"), Result("q2", 0, 1, "error", "boom")],
                         cell_errors=[{"cell": 2, "ename": "ValueError", "evalue": "bad"}], notes=["slow"])
    md = grading.feedback_markdown("alice", [rep])
    assert "**Total: 1 / 3 points**" in md and "| q1 | 1 / 2 | partial: a \\| b |" in md
    assert "cell 3: `ValueError: bad`" in md and "- Note: slow" in md


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.slow
def test_gradebook_of_bad_submissions(tmp_path, fake_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name, text in fake_path.variants().items():
        (subs / f"{name}.ipynb").write_text(text)
    ex_nb = exercises.render(fake_path.solution(), "99_fake.ipynb")
    (subs / "untouched.ipynb").write_text(nbformat.writes(ex_nb))
    out = tmp_path / "grades.csv"
    reports = grading.grade_folder(subs, out, exercise="pl_fake.ex99", jobs=2, cell_timeout=3, server=False,
                                   progress=False)
    rows = read_csv(out)
    got = {(r["student"], r["question"]): (r["points"], r["status"]) for r in rows}
    reasons = {(r["student"], r["question"]): r["reason"] for r in rows}
    full = {"q1": ("1", "correct"), "q2": ("2", "correct"), "q3": ("1", "correct")}
    expected = {
        "good": full,
        "reordered": full,
        "exception": {**full, "q2": ("1", "partial")},
        "loop": {**full, "q1": ("0", "timed-out")},  # the clock's verdict, never "not attempted"
        "spam": {**full, "q1": ("0", "timed-out")},
        "tamper": {**full, "q1": ("0", "incorrect")},
        "deleted": {**full, "q2": ("0", "error")},  # not a placeholder left in place
        "crash": {**full, "q3": ("0", "error")},  # the points before the cell that killed the kernel stay
        "stubborn": {"q1": ("0", "timed-out"), "q2": ("0", "timed-out"), "q3": ("0", "timed-out")},
        "malformed": {"q1": ("0", "error"), "q2": ("0", "error"), "q3": ("0", "error")},
        "empty": {"q1": ("0", "error"), "q2": ("0", "error"), "q3": ("0", "error")},
        "untouched": {"q1": ("0", "not-attempted"), "q2": ("0", "not-attempted"), "q3": ("0", "not-attempted")},
    }
    assert got == {(s, q): v for s, qs in expected.items() for q, v in qs.items()}
    assert [r["student"] for r in rows] == sorted(r["student"] for r in rows)  # stable order
    assert reasons["loop", "q1"].startswith("timed out after 3 s: cell 3 (`while True:`), which defines it")
    assert "no cell of the notebook defines it" in reasons["deleted", "q2"]
    assert reasons["tamper", "q1"] == "`answer` is 41; think of six times seven"
    assert "expected `stats['std']`" in reasons["exception", "q2"]
    assert "kernel died while running cell 7 (`import os`)" in reasons["crash", "q3"]
    assert "still raises NotImplementedError" in reasons["untouched", "q2"]
    assert "did not stop when interrupted" in reasons["stubborn", "q1"]
    assert "could not be read" in reasons["malformed", "q1"] and "empty" in reasons["empty", "q1"]
    by = {r.submission.student: r for r in reports}
    raised = {e["cell"] for e in by["untouched"].cell_errors}
    placeholders = {i for i, c in enumerate(ex_nb.cells) if "exercise" in c.metadata.get("tags", [])}
    assert raised and raised <= placeholders  # run as is, only placeholder cells raise: the check cells never do
    fb = (tmp_path / "grades_feedback" / "loop.md").read_text()
    assert "**Total: 3 / 4 points**" in fb and "Timeout" in fb
    runs = {r["student"]: r["run"] for r in rows}
    assert runs["good"] == "complete" and runs["loop"] == "cell 3 (`while True:`) timed out after 3 s"
    assert "kernel died" in runs["crash"] and "did not stop" in runs["stubborn"]
    summary = (tmp_path / "grades_summary.md").read_text()
    assert "| q1 | 12 | " in summary and "- loop (loop.ipynb): cell 3" in summary


def _rep(student: str, results: list[Result], **kw) -> grading.Report:
    return grading.Report(grading.Submission(student, Path(f"/subs/{student}.ipynb"), "01"), results, **kw)


def test_class_summary_per_question_and_runs_that_ended_early(tmp_path):
    reports = [
        _rep("ann", [Result("q1", 2, 2, "correct", "ok"), Result("q2", 1, 1, "correct", "ok")]),
        _rep("ben", [Result("q1", 0, 2, "incorrect", "`n` is 3; count the changed replies"),
                     Result("q2", 1, 1, "correct", "ok")]),
        _rep("cy", [Result("q1", 0, 2, "incorrect", "`n` is 7; count the changed replies"),
                    Result("q2", 0, 1, "timed-out", "timed out after 120 s: cell 4 ...")],
             cell_errors=[{"cell": 3, "label": "cell 4 (`run()`)", "ename": "Timeout", "evalue": "", "limit_s": 120}]),
        _rep("dee", [Result("q1", 1, 2, "partial", "close"), Result("q2", 0, 1, "error", "not graded")],
             notes=["the kernel died while running cell 5 (it ran out of memory: the limit is 8192 MB)"]),
    ]
    out = tmp_path / "grades.csv"
    grading.gradebook.write_outputs(reports, out, root=Path("/subs"))
    rows = grading.read_gradebook(out)
    summary = grading.class_summary(rows)
    q1, q2 = summary["questions"]
    assert (q1["question"], q1["n"], q1["mean"], q1["full_marks"]) == ("q1", 4, 0.75, 1)
    # the same mistake with different values counts once per learner, with one learner's reason as the example
    assert q1["common_loss_count"] == 2 and q1["common_loss"].startswith("incorrect: `n` is 3")
    assert q2["full_marks"] == 2 and q2["statuses"] == {"correct": 2, "timed-out": 1, "error": 1}
    assert [(e["student"], e["why"]) for e in summary["ended_early"]] == [
        ("cy", "cell 4 (`run()`) timed out after 120 s"),
        ("dee", "the kernel died while running cell 5 (it ran out of memory: the limit is 8192 MB)")]
    md = (tmp_path / "grades_summary.md").read_text()
    assert "| 01 | q1 | 4 | 0.75 / 2 | 1 of 4 | 2×: incorrect: `n` is 3; count the changed replies |" in md
    assert "- cy (cy.ipynb): cell 4 (`run()`) timed out after 120 s" in md
    # a regrade of one learner replaces only that learner's rows
    grading.gradebook.write_outputs([_rep("cy", [Result("q1", 2, 2, "correct", "ok"),
                                                 Result("q2", 1, 1, "correct", "ok")])],
                                    out, root=Path("/subs"), merge=True)
    rows = grading.read_gradebook(out)
    assert [(r["student"], r["question"], r["points"]) for r in rows] == [
        ("ann", "q1", "2"), ("ann", "q2", "1"), ("ben", "q1", "0"), ("ben", "q2", "1"),
        ("cy", "q1", "2"), ("cy", "q2", "1"), ("dee", "q1", "1"), ("dee", "q2", "0")]
    assert [e["student"] for e in grading.class_summary(rows)["ended_early"]] == ["dee"]


def test_rerun_needs_a_known_student_and_a_gradebook(tmp_path):
    from personalab.errors import InputError

    (tmp_path / "ann.ipynb").write_text("{}")
    with pytest.raises(InputError, match="no submission from 'zed'") as err:
        grading.grade_folder(tmp_path, tmp_path / "g.csv", rerun=["zed"], server=False, progress=False)
    assert "ann" in str(err.value)
    with pytest.raises(InputError, match="existing gradebook"):
        grading.grade_folder(tmp_path, tmp_path / "g.csv", rerun=["ann"], server=False, progress=False)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a gradebook"):
        grading.read_gradebook(tmp_path / "bad.csv")


def test_a_timeout_upstream_is_reported_as_the_clock_not_as_not_attempted():
    """The suite cell times out, so the cell that reads its result raises NameError: the question is "timed-out",
    naming the cell that ran out of time and its limit."""
    from personalab.checks import Question

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("injection = run_suites()"),
        nbformat.v4.new_code_cell("injection_summary = injection.summary()"),
    ])
    q = Question("q1", "x", ("injection_summary",), lambda v: None)
    errors = [{"cell": 0, "label": "cell 1 (`injection = run_suites()`)", "ename": "Timeout",
               "evalue": "the cell ran longer than 600 s and was interrupted", "limit_s": 600.0},
              {"cell": 1, "label": "cell 2", "ename": "NameError", "evalue": "name 'injection' is not defined"}]
    values = q.export({}, None)
    r = scoring._grade_question(q, values, None, nb, errors)
    assert r.status == "timed-out" and r.reason.startswith("timed out after 600 s: cell 1")
    assert "which runs before the cell that defines it" in r.reason
    r = scoring._grade_question(q, values, None, nb, errors[1:])
    assert r.status == "error" and "raised NameError" in r.reason
    stopped = scoring.grade_questions(grading_exercise(q), {}, {}, nb, {"note": "past the limit", "timed_out": True},
                                      [])
    assert [(x.status, x.reason) for x in stopped] == [("timed-out", "not graded: past the limit")]


def grading_exercise(*questions):
    from personalab.checks import Exercise

    return Exercise("99", "fake", list(questions))


def test_cell_limits_never_go_below_what_a_model_solution_needs():
    from personalab.grading.run import DEFAULT_CELL_TIMEOUT, cell_timeout_for

    assert cell_timeout_for("01") == DEFAULT_CELL_TIMEOUT and cell_timeout_for(None) == DEFAULT_CELL_TIMEOUT
    assert cell_timeout_for("04") >= 900  # training
    # exercise 05's slowest cell took 8.4 s in a graded class of 60 (its suites' replies and fluency readings are
    # prepared once by the grader): the default covers it with room to spare
    assert cell_timeout_for("05") >= DEFAULT_CELL_TIMEOUT
    assert cell_timeout_for("04", 30) == 30 and cell_timeout_for("01", 10) == 10  # an explicit limit wins


def test_shared_assets_only_for_the_suite_exercise_and_copied_per_job(tmp_path, monkeypatch):
    """Exercise 05's fine-tuned model, 04/training record and reply cache are prepared once by the grader; each
    sandboxed job gets copies of the record and the cache, and the models at the grader's own paths."""
    from personalab import sandbox
    from personalab.grading import assets as A
    from personalab.grading.run import shared_env

    assert not A.needed({"01", "02", None}) and A.needed({"01", "05"})
    assert A.prepare({"01", "06"}) == A.Assets() and not A.Assets().ready  # nothing trained, nothing played
    monkeypatch.setenv("PERSONALAB_MODELS", str(tmp_path / "models"))
    record, cache, tuned = tmp_path / "training.json", tmp_path / "eval.jsonl", tmp_path / "runs" / "merged"
    record.write_text(json.dumps({"data": {"merged_dir": str(tuned)}}))
    cache.write_text('{"key": "k", "response": "Let\'s get this done."}\n')
    tuned.mkdir(parents=True)
    shared = A.Assets(finetuned_dir=tuned, training_record=record, reply_cache=cache)
    job = tmp_path / "job"
    job.mkdir()
    env = shared_env(shared, job)
    assert env == {"PERSONALAB_MODELS": str(tmp_path / "models"),
                   "PERSONALAB_RESULTS": f"{sandbox.JOB}/results",
                   "PERSONALAB_EVAL_CACHE": f"{sandbox.JOB}/cache/eval_responses.jsonl"}
    assert (job / "results" / "04" / "training.json").read_text() == record.read_text()
    assert (job / "cache" / "eval_responses.jsonl").read_text() == cache.read_text()
    assert shared.readonly_paths() == [tmp_path / "models", tuned]
    (job / "cache" / "eval_responses.jsonl").write_text("")  # a job writing its copy leaves the grader's alone
    assert cache.read_text().startswith('{"key"')


def test_cache_and_models_folders_follow_the_environment(tmp_path, monkeypatch):
    from personalab import config
    from personalab.evaluate.runner import default_cache_path

    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PERSONALAB_MODELS", raising=False)
    monkeypatch.delenv("PERSONALAB_EVAL_CACHE", raising=False)
    assert config.models_dir() == tmp_path / "home" / "models"
    assert default_cache_path() == tmp_path / "home" / "cache" / "eval_responses.jsonl"
    monkeypatch.setenv("PERSONALAB_MODELS", str(tmp_path / "m"))
    monkeypatch.setenv("PERSONALAB_EVAL_CACHE", str(tmp_path / "c.jsonl"))
    assert config.models_dir() == tmp_path / "m" and default_cache_path() == tmp_path / "c.jsonl"
