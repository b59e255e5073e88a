"""The request budget: counts follow the lessons' settings, the cache is accounted, each profile meets its goal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from personalab import budget, cli, evaluate, finetune
from personalab.config import PROFILES
from personalab.errors import InputError


@pytest.fixture(scope="module")
def budgets() -> dict[str, budget.Budget]:
    return {p: budget.request_budget(p) for p in PROFILES}


def phase(b: budget.Budget, lesson: str, starts: str) -> budget.Phase:
    return next(p for p in b.lesson(lesson) if p.what.startswith(starts))


#: Profiles whose estimate is over its goal today, with the issue that tracks it. The mark is strict: the day
#: the estimate fits, the test fails until the profile is taken off this list.
#: (cpu came off on 2026-12-05: 11.1 min estimated from the rates of that day's cold run-course, which took 9.4 min.)
OVER_GOAL: dict[str, str] = {}


@pytest.mark.parametrize("profile", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=OVER_GOAL[p]))
                                     if p in OVER_GOAL else p for p in PROFILES])
def test_each_profile_is_within_its_time_goal(budgets, profile):
    """The real check: the course's estimated time on the profile against its goal (cpu: the cold course in 12
    minutes; colab-gpu and gpu: the express run on a free T4 in 30 minutes, install included)."""
    b = budgets[profile]
    assert b.within_goal, f"\n{b.table()}"


def test_a_budget_over_its_goal_is_caught(budgets):
    b = budgets["cpu"]
    tight = dataclasses.replace(b, rates=dataclasses.replace(b.rates, goal_s=b.total_s - 1))
    assert not tight.within_goal and "OVER" in tight.table()
    slower = dataclasses.replace(b.rates, step_s=b.rates.step_s * 2)
    assert budget.request_budget("cpu", slower).total_s == pytest.approx(
        b.total_s + b.total("training_steps") * b.rates.step_s)


def test_gpu_lesson_05_counts_come_from_the_full_suites(budgets):
    """The issue's count (3 targets x 4 scripts x seeds x 22 turns drift requests, 174 attack requests) with the GPU's
    seeds (two since its replies may run to 72 tokens: evaluate.GPU_SEEDS)."""
    settings = evaluate.suite_settings(quick=False)
    scripts = evaluate.load_scripts()[: settings.n_scripts]
    attacks = evaluate.sample_attacks(evaluate.load_attacks(), settings.per_category)
    b = budgets["colab-gpu"]
    drift = phase(b, "05", "drift")
    assert drift.completions + drift.cached == 3 * len(settings.seeds) * sum(len(s.turns) for s in scripts)
    attack = phase(b, "05", "attacks")
    assert attack.completions + attack.cached == 3 * sum(len(a.turns) for a in attacks)


def test_cpu_lesson_05_plays_the_quick_suites(budgets):
    settings = evaluate.suite_settings(quick=True)
    drift = phase(budgets["cpu"], "05", "drift")
    assert drift.completions == 3 * settings.n_scripts * len(settings.seeds) * settings.max_turns
    assert drift.new_tokens == drift.completions * settings.max_tokens


def test_the_budget_follows_the_settings(monkeypatch, budgets):
    bigger = dataclasses.replace(evaluate.suite_settings(quick=True), seeds=(0, 1), max_tokens=96)
    monkeypatch.setattr(evaluate, "suite_settings", lambda quick=None, cpu=None: bigger)
    more = budget.request_budget("cpu")
    drift = phase(more, "05", "drift")
    assert drift.completions == 2 * phase(budgets["cpu"], "05", "drift").completions
    assert drift.new_tokens == drift.completions * 96
    assert more.total_s > budgets["cpu"].total_s

    steps = finetune.default_config("cpu").max_steps
    monkeypatch.setitem(finetune.config.PRESETS, "cpu", {**finetune.config.PRESETS["cpu"], "max_steps": steps + 10})
    assert budget.request_budget("cpu").total("training_steps") == steps + 10


def test_requests_an_earlier_lesson_sent_are_cached(budgets):
    b = budgets["cpu"]
    policies = phase(b, "05", "context policies")
    assert policies.cached > 0 and policies.completions > 0  # the turns before the overflow repeat the drift run
    hybrid_drift = phase(b, "06", "hybrid drift")
    assert hybrid_drift.cached > 0  # the core and the marketing overlay: lesson 05 asked the same
    assert phase(b, "05", "drift").cached == 0


def test_lesson_05_takes_its_context_budget_from_the_suite_settings():
    from personalab import evaluate

    lessons = Path(__file__).resolve().parents[1] / "notebooks_src" / "lessons"
    lesson = (lessons / "05_drift_and_injection.py").read_text(encoding="utf-8")
    assert "CONTEXT_BUDGET = settings.context_budget" in lesson
    assert evaluate.suite_settings(quick=True).context_budget > 100


def test_decode_rate_interpolates_between_single_and_batched():
    r = budget.CPU_RATES
    assert r.decode(1) == r.decode_single and r.decode(r.batch) == r.decode(99) == r.decode_batched
    assert r.decode_single < r.decode(4) < r.decode_batched


def test_t4_rates_are_labelled_assumptions():
    assert not budget.T4_RATES.measured and budget.T4_RATES.assumed
    assert all("T4" in text or "issue" in text for text in budget.T4_RATES.assumed.values())


def test_table_and_rows(budgets):
    b = budgets["cpu"]
    assert [r["lesson"] for r in b.rows()] == ["00", "01", "02", "03", "04", "05", "06"]
    text = b.table()
    assert "total" in text and "assumed: prefill" in text and "measured: step_s" in text
    assert sum(r["completions"] for r in b.rows()) == b.total("completions")


def test_unknown_profile_is_an_input_error():
    with pytest.raises(InputError, match="profile"):
        budget.request_budget("tpu")


def test_cli_prints_the_budget(capsys):
    assert cli.main(["budget", "--profile", "colab-gpu"]) == 0
    out = capsys.readouterr().out
    assert "est. minutes" in out and "colab-gpu" in out and "assumption until a T4" in out


def test_fallback_training_announces_its_estimate(monkeypatch, tmp_path, capsys):
    """A fresh runtime (lesson 05 or 06 opened alone): the fallback says it trains and how long it will take."""
    from personalab import results
    from personalab.evaluate import targets

    monkeypatch.setenv("PERSONALAB_RESULTS", str(tmp_path / "results"))
    merged = tmp_path / "merged"

    class Result:
        def summary(self):
            return {"merged_dir": str(merged)}

    monkeypatch.setattr(finetune, "prepare", lambda cfg: "fake")
    monkeypatch.setattr(finetune, "dataset_paths", lambda: type("P", (), {"train": "t", "eval": "e"})())
    monkeypatch.setattr(finetune, "train", lambda cfg, train, eval_dataset=None: Result())
    assert targets.ensure_finetuned() == merged
    out = capsys.readouterr().out
    expected = budget.fmt_minutes(budget.fallback_seconds("cpu"))
    assert "Fine-tuning now" in out and expected in out
    assert results.load("04", "training")["data"]["trained_by"] == "lesson 05 fallback"
