"""Grading end to end: solutions get full marks, exercises fail cleanly, the exercise-01 bad corpus exactly.

The model here is ``fixtures/fake_llm.py`` (predictable, fast): these tests check the grading machinery.
``test_solutions_get_full_marks_on_the_real_model`` grades every solution on the real base model (the local server).
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from personalab import grading
from personalab.config import REPO_ROOT

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

from fake_llm import FakeLLM  # noqa: E402
from make_submissions import OUT as CORPUS  # noqa: E402
from make_submissions import stale  # noqa: E402
from server_watch import ServerWatch  # noqa: E402

pytestmark = pytest.mark.slow
FULL = {"q1": "2", "q2": "3", "q3": "2", "q4": "3", "q5": "1"}


@pytest.fixture
def fake_llm(monkeypatch):
    from personalab import backends, config

    with FakeLLM() as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
        # named by the base checkpoint's folder, the fake server is the prompted side (backends.prompted_side: a
        # shared server serving that checkpoint); under its own name every comparison would start SmolLM2 instead
        monkeypatch.setenv("PERSONALAB_MODEL", str(backends.base_model_dir(config.base_model())))
        monkeypatch.setenv("PERSONALAB_BACKEND", "remote")
        yield llm


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_corpus_is_up_to_date():
    assert stale() == [], "run `python tests/fixtures/make_submissions.py`"


def test_exercises_run_as_is_fail_every_check_without_crashing(tmp_path, fake_llm):
    # exercise 05's shared model and replies are not prepared here (assets=Assets()): this test is about the
    # handout's placeholders; benchmarks/bench_grading.py measures the preparation and exercise 05's grading.
    # Without them exercise 05's setup cell fine-tunes lesson 04's model and runs into the clock; a 30-s limit
    # stops it there as surely as 120 s did (~90 s less in CI), and every other handout cell takes a few seconds
    reports = grading.grade_folder(REPO_ROOT / "exercises", tmp_path / "g.csv", jobs=2, cell_timeout=30,
                                   progress=False, assets=grading.assets.Assets())
    assert reports, "no exercise notebooks found"
    for rep in reports:
        assert rep.notes == [], rep.notes
        # every check fails (0 points) and none crashes: a placeholder's answer is missing or still wrong
        assert rep.points == 0, [r for r in rep.results if r.points]
        # "timed-out" where a cell the handout gives ran past the 30-s limit (exercise 05's setup, which trains):
        # the clock's verdict, named as such; no other exercise's handout may come near the limit
        allowed = {"not-attempted", "incorrect"} | ({"timed-out"} if rep.submission.exercise == "05" else set())
        assert {r.status for r in rep.results} <= allowed, rep.results
        nb = nbformat.read(rep.submission.path, as_version=4)
        placeholders = {i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", [])}
        raised = {e["cell"] for e in rep.cell_errors}
        # a cell with only a check call must never raise (one that also holds a placeholder may)
        check_cells = {i for i, c in enumerate(nb.cells) if ".check()" in c.source or ".progress()" in c.source}
        assert check_cells and not (check_cells - placeholders) & raised, "a check cell raised"
        # and every placeholder that runs code at top level raises its clear NotImplementedError, unless the
        # grader skips its cell (exercise 04's training and generation: graded from the adapter instead)
        skipped = set(grading.adapter.drop_training(nb)[1]) if rep.submission.exercise == "04" else set()
        top_level = {i for i in placeholders - skipped if any(line.startswith("raise NotImplementedError")
                                                               for line in nb.cells[i].source.splitlines())}
        assert top_level <= raised, (rep.submission.path.name, top_level, raised)


def test_bad_submission_corpus_is_graded_exactly(tmp_path, fake_llm):
    out = tmp_path / "grades.csv"
    grading.grade_folder(CORPUS, out, exercise="01", jobs=2, cell_timeout=10, progress=False)
    got = {(r["student"], r["question"]): (r["points"], r["status"]) for r in rows(out)}
    reason = {(r["student"], r["question"]): r["reason"] for r in rows(out)}

    def ok(**changes: tuple[str, str]) -> dict[str, tuple[str, str]]:
        return {q: changes.get(q, (p, "correct")) for q, p in FULL.items()}

    def all_(status: str) -> dict[str, tuple[str, str]]:
        return {q: ("0", status) for q in FULL}

    err, clock = ("0", "error"), ("0", "timed-out")
    expected = {
        "good": ok(),
        # no my_prompt, so no comparison and no finding: q4 and q5 cannot be graded either ("not attempted" is
        # only for a placeholder left in place)
        "exception": ok(q3=err, q4=err, q5=err),
        "loop": ok(q4=clock, q5=clock),
        "deleted": ok(q3=err, q4=err, q5=err),
        "reordered": ok(q4=err, q5=err),
        "partial": ok(q2=("1.2", "partial"), q5=("0", "incorrect")),
        "miscounted": ok(q4=("0", "incorrect")),
        "tampered": all_("incorrect"),
        # the kernel dies in a cell after q3's check: q1-q3 keep their points, q4/q5 are errors
        "crash": ok(q4=("0", "error"), q5=("0", "error")),
        "malformed": all_("error"),
        "empty": all_("error"),
        "not_a_notebook": all_("error"),
        "untouched": all_("not-attempted"),
    }
    assert got == {(s, q): v for s, qs in expected.items() for q, v in qs.items()}
    assert "cell 13 (`spec = spec_from(my_persona)`), which defines it, raised AttributeError" in reason[
        "exception", "q3"]
    assert reason["loop", "q4"].startswith("timed out after 10 s: cell ")
    assert "no cell of the notebook defines it (was that cell deleted?)" in reason["deleted", "q3"]
    assert "name 'comparison' is not defined" in reason["reordered", "q5"]
    assert "`prompt_changed` is not defined" in reason["reordered", "q4"]
    assert "you wrote that the prompt made the difference on 0 of your 5 requests" in reason["miscounted", "q4"]
    assert "a response pattern of at least 3 steps" in reason["partial", "q2"]
    assert "missing 'traits'" in reason["tampered", "q1"]  # despite the fake "Correct" and the patched checks
    assert "kernel died while running cell 14 (`import os`)" in reason["crash", "q4"]
    assert "not valid JSON" in reason["malformed", "q1"] and "the file is empty" in reason["empty", "q1"]
    assert "not a Jupyter notebook" in reason["not_a_notebook", "q1"]
    feedback = (tmp_path / "grades_feedback" / "loop.md").read_text()
    assert "**Total: 7 / 11 points**" in feedback and "Timeout" in feedback


def test_cli_writes_gradebook_and_feedback(tmp_path, fake_llm):
    from personalab.cli import main

    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "01_system_prompt_persona.ipynb").write_text((CORPUS / "partial.ipynb").read_text())
    (subs / "bob.ipynb").write_text("")
    assert main(["grade", str(subs), "--out", str(tmp_path / "g.csv"), "--exercise", "01", "--jobs", "2"]) == 0
    table = rows(tmp_path / "g.csv")
    assert [(r["student"], r["question"]) for r in table] == [("alice", q) for q in FULL] + [("bob", q) for q in FULL]
    assert table[0]["notebook"] == "alice/01_system_prompt_persona.ipynb"
    assert sorted(p.name for p in (tmp_path / "g_feedback").iterdir()) == ["alice.md", "bob.md"]


@pytest.mark.server
def test_solutions_get_full_marks_on_the_real_model(tmp_path, local_server):
    """The solutions that need no training, graded as an instructor grades them (sandboxed where bubblewrap works,
    hidden cases included, 2 jobs) against the local server's base model: full marks, and every kernel asks the
    grader's one server (through the relay) instead of starting a model server of its own. Solutions 04 (it trains)
    and 05 (the suites) prove their full marks in their own instructor cell under nbval; grading them here too would
    run them twice in CI."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    quick = [p for p in sorted((REPO_ROOT / "solutions").glob("*.ipynb")) if not p.name.startswith(("04", "05"))]
    for p in quick:
        shutil.copy(p, folder / p.name)
    isolation = grading.resolve_isolation("auto")
    with ServerWatch(local_server.process.pid) as watch:
        reports = grading.grade_folder(folder, tmp_path / "g.csv", jobs=2, progress=False, isolation=isolation)
    assert len(reports) == len(quick) == 4
    for rep in reports:
        assert rep.cell_errors == [], f"{rep.submission.path.name}: {rep.cell_errors}"
        bad = [r for r in rep.results if r.status != "correct" or r.points != r.max_points]
        assert not bad, f"{rep.submission.path.name}: {bad}"
    assert watch.seen == set(), f"a kernel or check started its own model server ({isolation.mode}): {watch.seen}"
