"""personalab.evidence.standalone_plan: what lesson 06 finds in a fresh runtime and what it does about the rest."""

from __future__ import annotations

from personalab import budget, evidence, report, results


def _lines_by_key(lines):
    return {line.split()[1]: line for line in lines if not line.split()[1] == "lesson"}


def test_empty_home_says_what_is_missing_and_what_happens(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path / "home"))
    lines = evidence.standalone_plan(results.load_all(), report.SOURCES, budget.request_budget("cpu"))
    assert len(lines) == len(report.SOURCES) + 1
    assert all(line.startswith("missing") for line in lines)
    by_key = _lines_by_key(lines)
    assert "'run lesson 05 first'" in by_key["05/drift"] and "lesson 05 takes" in by_key["05/drift"]
    assert "'run lesson 01 first'" in by_key["01/steering"]
    assert "measured below" in by_key["06/hybrid"]
    assert "hybrid's fine-tuning" in by_key["04/training"]
    model_line = lines[-1]
    assert "lesson 04's fine-tuned model" in model_line and str(tmp_path / "home") in model_line
    assert "fine-tunes it now" in model_line and "min" in model_line and "run lesson 04 first" in model_line


def test_in_colab_missing_results_say_how_to_get_them_in_this_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    by_key = _lines_by_key(evidence.standalone_plan(results.load_all(), report.SOURCES))
    assert "'not measured in this runtime: run lesson 05 here, or set USE_DRIVE = True" in by_key["05/drift"]
    assert "run lesson 01 first" not in by_key["01/steering"]


def test_saved_results_and_model_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path / "home"))
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    results.save("04", "training", {"merged_dir": str(merged)}, model="base-model")
    results.save("05", "drift", {"summary": {}}, model="base-model")
    lines = evidence.standalone_plan(results.load_all(), report.SOURCES, budget.request_budget("cpu"))
    by_key = _lines_by_key(lines)
    assert by_key["04/training"].startswith("found") and "base-model" in by_key["04/training"]
    assert by_key["05/drift"].startswith("found")
    assert by_key["05/injection"].startswith("missing") and "'run lesson 05 first'" in by_key["05/injection"]
    assert lines[-1].startswith("found") and str(merged) in lines[-1]
    assert evidence.finetuned_on_disk(results.load_all()) == merged


def test_a_record_whose_checkpoint_is_gone_means_training(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path / "home"))
    records = {"04/training": {"data": {"merged_dir": str(tmp_path / "gone")}, "model": "m", "hardware": "h"}}
    assert evidence.finetuned_on_disk(records) is None
    lines = evidence.standalone_plan(records, report.SOURCES, budget.request_budget("colab-gpu"))
    assert _lines_by_key(lines)["04/training"].startswith("found")
    assert "not on this machine" in lines[-1] and "fine-tunes it now" in lines[-1]
    assert "colab-gpu" in lines[-1]


def test_without_a_budget_there_are_no_estimates(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path / "home"))
    lines = evidence.standalone_plan({}, report.SOURCES)
    assert not any(" min" in line or "takes" in line for line in lines)
    assert "fine-tunes it now" in lines[-1] and "run lesson 04 first" in lines[-1]
