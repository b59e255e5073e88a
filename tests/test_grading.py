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
        "loop": {**full, "q1": ("0", "not-attempted")},
        "spam": {**full, "q1": ("0", "not-attempted")},
        "tamper": {**full, "q1": ("0", "incorrect")},
        "deleted": {**full, "q2": ("0", "not-attempted")},
        "crash": {**full, "q3": ("0", "error")},  # the points before the cell that killed the kernel stay
        "stubborn": {"q1": ("0", "error"), "q2": ("0", "error"), "q3": ("0", "error")},
        "malformed": {"q1": ("0", "error"), "q2": ("0", "error"), "q3": ("0", "error")},
        "empty": {"q1": ("0", "error"), "q2": ("0", "error"), "q3": ("0", "error")},
        "untouched": {"q1": ("0", "not-attempted"), "q2": ("0", "not-attempted"), "q3": ("0", "not-attempted")},
    }
    assert got == {(s, q): v for s, qs in expected.items() for q, v in qs.items()}
    assert [r["student"] for r in rows] == sorted(r["student"] for r in rows)  # stable order
    assert "cell 3 (`while True:`), which defines it, raised Timeout" in reasons["loop", "q1"]
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


def test_cell_limits_never_go_below_what_a_model_solution_needs():
    from personalab.grading.run import DEFAULT_CELL_TIMEOUT, cell_timeout_for

    assert cell_timeout_for("01") == DEFAULT_CELL_TIMEOUT and cell_timeout_for(None) == DEFAULT_CELL_TIMEOUT
    assert cell_timeout_for("04") >= 900 and cell_timeout_for("05") >= 600  # training, the suites
    assert cell_timeout_for("04", 30) == 30 and cell_timeout_for("01", 10) == 10  # an explicit limit wins
