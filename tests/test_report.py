"""personalab.report: the seven-dimension matrix from full, partial, missing and broken saved results."""

from __future__ import annotations

import json
import re

import pytest

from personalab import costs, decision, evidence, report, results

HW = "CPU testbox x2"
EMB = "/home/u/.cache/personalab/models/embedded-v2"


def est(value, n=10, low=None, high=None):
    return {"value": value, "low": value - 0.1 if low is None else low, "high": value + 0.1 if high is None else high,
            "n": n, "level": 0.95}


def drift_summary(early, late, probe, lost=0.0):
    return {"mean_score": est((early + late) / 2), "early_mean_score": est(early), "late_mean_score": est(late),
            "probe_on_persona_rate": est(probe), "first_overflow_turn": 14, "system_prompt_lost_share": lost,
            "conversations": 2}


def injection_all(held, success, leak):
    leaked = None if leak is None else est(leak, 21)
    return {"all": {"held": est(held, 21), "success": est(success, 21), "leak": leaked}}


TARGETS = ["prompted", "fine-tuned", "hybrid (Marketing)"]
FULL = {
    ("01", "steering"): ({"marker_rates": {"no system prompt": 0.05, "TaskMaster prompt": 0.85}, "n_requests": 20},
                         EMB),
    ("02", "tokens"): ({"model": "gpt-4o-mini", "persona_text_tokens": 170, "persona_added_tokens": 174,
                        "backend_model": EMB, "backend_persona_added_tokens": 240}, "gpt-4o-mini"),
    ("02", "costs"): ({"model": "gpt-4o-mini", "requests_per_month": 500_000, "persona_tokens": 174, "user_tokens": 50,
                       "response_tokens": 200, "monthly_usd": {"system prompt": 77.0, "fine-tuned": 127.5},
                       "persona_break_even_tokens": 450.0, "price_source": "test", "price_date": "2025-06"},
                      "gpt-4o-mini"),
    ("02", "latency"): ({"model": EMB, "backend": "remote", "hardware": HW, "max_tokens": 16, "repeats": 3,
                         "rows": [{"system_prompt_tokens": 0, "ttft_ms": 12.0}, {"system_prompt_tokens": 400,
                                                                                  "ttft_ms": 22.0}],
                         "ms_per_100_prompt_tokens": 2.5, "prefill_tokens_per_s": 40000.0,
                         "decode_tokens_per_s": 300.0}, EMB),
    ("03", "dataset"): ({"method": "offline", "build_s": 0.8, "train_examples": 400, "openai_training_cost_usd": 1.5,
                         "train_tokens": 100_000}, "offline generator"),
    ("04", "training"): ({"wall_s": 61.5, "setup_s": 4.2, "train_s": 52.3, "steps": 80, "backend": "peft+trl",
                          "base_model": EMB, "device": "cpu (2 threads)", "marker_rate_before": 0.1,
                          "marker_rate_prompted": 0.8, "marker_rate_after": 0.9, "heldout_requests": 20,
                          "merged_dir": "/tmp/x/merged"}, EMB),
    ("05", "drift"): ({"scorer": "rules", "scorers": ["rules"], "targets": TARGETS, "n_turns": 22,
                       "summary": {"rules": {"prompted": drift_summary(0.8, 0.3, 0.5, 0.4),
                                             "fine-tuned": drift_summary(0.75, 0.7, 0.9),
                                             "hybrid (Marketing)": drift_summary(0.7, 0.65, 0.8)}}}, EMB),
    ("05", "injection"): ({"canary": "ZX-1", "targets": TARGETS, "categories": ["role_play"],
                           "summary": {"prompted": injection_all(0.3, 0.6, 0.2),
                                       "fine-tuned": injection_all(0.7, 0.2, None),
                                       "hybrid (Marketing)": injection_all(0.6, 0.3, 0.1)}}, EMB),
    ("06", "change"): ({"render_s": 0.0021, "request_s": 0.18, "total_s": 0.1821, "model": EMB}, EMB),
    ("06", "hybrid"): ({"rows": [{"target": "fine-tuned", "overlay": None, "mean_score": 0.7},
                                 {"target": "hybrid (Marketing)", "overlay": "Marketing", "mean_score": 0.6},
                                 {"target": "hybrid (Sales)", "overlay": "Sales", "mean_score": 0.5}],
                        "overlay_tokens": {"Marketing": 40, "Sales": 36},
                        "overlay_tokens_billed": {"Marketing": 38.0, "Sales": 33.0}}, EMB),
}


def write(root, entries):
    for (lesson, name), (data, model) in entries.items():
        rec = {"lesson": lesson, "name": name, "model": model, "hardware": HW, "profile": "cpu",
               "saved_at": "2025-07-01T10:00:00", "data": data}
        (root / lesson).mkdir(parents=True, exist_ok=True)
        (root / lesson / f"{name}.json").write_text(json.dumps(rec))


@pytest.fixture
def res_dir(tmp_path, monkeypatch):
    root = tmp_path / "results"
    root.mkdir()
    monkeypatch.setenv("PERSONALAB_RESULTS", str(root))
    return root


def text(rep, dim, col):
    return rep.cell(dim, col).text


# --------------------------------------------------------------------------------------------- full
def test_full_results_fill_every_measured_cell(res_dir):
    write(res_dir, FULL)
    rep = report.build()
    assert [r.dimension for r in rep.rows] == list(report.DIMENSIONS)
    assert rep.missing_lessons == []
    assert "not measured" not in rep.to_html().lower()
    for r in rep.rows:
        for col, c in r.cells.items():
            assert c.status in ("measured", "derived", "by design", "qualitative"), (r.dimension, col, c)
            if c.status in ("measured", "derived"):
                assert c.origin, (r.dimension, col)
    # numbers come from the files, with model and hardware
    assert "61.5 s" in text(rep, "setup cost", "fine-tuning") and "$1.50" in text(rep, "setup cost", "fine-tuning")
    assert "embedded-v2" in rep.cell("setup cost", "fine-tuning").origin
    assert "dataset: 800 ms" in text(rep, "setup cost", "fine-tuning")
    assert rep.cell("setup cost", "system prompt").status == "by design"
    assert "+6.0 ms" in text(rep, "latency", "system prompt")  # 2.5 ms/100 tokens x 240 tokens
    assert HW in rep.cell("latency", "system prompt").origin
    assert "+0.9 to +1.0 ms" in text(rep, "latency", "hybrid")  # overlays of 36-40 tokens
    assert "0.80 in turns 1-5, 0.30 in the last 5" in text(rep, "consistency", "system prompt")
    assert "40% of replies after the prompt was cut" in text(rep, "consistency", "system prompt")
    assert "85% of 20" in text(rep, "consistency", "system prompt")
    assert "90% of 20" in text(rep, "consistency", "fine-tuning")
    assert "mean adherence 0.50-0.60 over 2 overlays" in text(rep, "consistency", "hybrid")
    assert "persona held 30% [20%, 40%] (n=21)" in text(rep, "robustness", "system prompt")
    assert "leaked (canary) 20%" in text(rep, "robustness", "system prompt")
    assert "nothing to leak" in text(rep, "robustness", "fine-tuning")
    assert "182 ms" in text(rep, "flexibility", "system prompt")
    assert "61.5 s" in text(rep, "flexibility", "fine-tuning")


def test_token_cost_is_the_cost_models(res_dir):
    write(res_dir, FULL)
    rep = report.build()
    comp = costs.compare(costs.Scenario(model="gpt-4o-mini", requests_per_month=500_000, persona_tokens=174,
                                        user_tokens=50, response_tokens=200, training_cost=1.5))
    prompt = comp.rows()[0]["running_monthly_usd"]
    assert f"${costs.fmt_usd(prompt)}/month at 500,000 requests" in text(rep, "token cost", "system prompt")
    assert comp.break_evens[0].reason in text(rep, "token cost", "fine-tuning")
    assert "+ $1.50 training" in text(rep, "token cost", "fine-tuning")
    hybrid = costs.compare(costs.Scenario(model="gpt-4o-mini", requests_per_month=500_000, persona_tokens=174,
                                          user_tokens=50, response_tokens=200, finetuned_prompt_tokens=38,
                                          training_cost=1.5)).rows()[1]["running_monthly_usd"]
    assert f"${costs.fmt_usd(hybrid)}/month with the longest overlay (Marketing, 38" in text(rep, "token cost",
                                                                                               "hybrid")


def test_changing_a_saved_number_changes_the_report(res_dir):
    write(res_dir, FULL)
    before = text(report.build(), "flexibility", "fine-tuning")
    changed = dict(FULL)
    data, model = changed[("04", "training")]
    changed[("04", "training")] = ({**data, "wall_s": 7200.0}, model)
    write(res_dir, changed)
    after = text(report.build(), "flexibility", "fine-tuning")
    assert before != after and "2.0 h" in after


def test_article_figures_are_quoted_as_the_articles(res_dir):
    rep = report.build()
    md = rep.to_markdown()
    assert "90% / 60% / 40%" in md and "95% / 95% / 85% (illustrative)" in md
    assert "$101.25" in md and "$127.50" in md
    row = next(r for r in rep.rows if r.dimension == "consistency")
    assert "illustrative" in row.article[0] and "illustrative" in row.article[1]


def test_write_is_atomic_and_renders_both_formats(res_dir, tmp_path):
    write(res_dir, FULL)
    rep = report.build()
    md, html = rep.write(tmp_path / "build")
    assert md.name == "report.md" and html.name == "report.html"
    assert not [p for p in md.parent.rglob("*") if p.name.endswith(".tmp")]  # no temp files left
    assert md.read_text() == rep.to_markdown()
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table" in page
    assert "05/injection" in page and HW in page
    assert "<table" in rep._repr_html_()
    # every markdown table row has the same number of columns
    rows = [line for line in md.read_text().splitlines() if line.startswith("| **")]
    assert len(rows) == 7 and {line.count(" | ") for line in rows} == {5}


def test_html_escapes_saved_text(res_dir):
    evil = dict(FULL)
    data, _ = evil[("04", "training")]
    evil[("04", "training")] = ({**data, "backend": "<script>x</script>"}, EMB)
    write(res_dir, evil)
    page = report.build().to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page


# --------------------------------------------------------------------------------------------- partial / missing
def test_missing_results_say_which_lesson_to_run(res_dir):
    rep = report.build()
    assert rep.missing_lessons == ["02", "04", "05", "06"]
    assert text(rep, "consistency", "system prompt") == "run lesson 05 first (no saved result '05/drift')"
    assert text(rep, "token cost", "fine-tuning") == "run lesson 02 first (no saved result '02/costs')"
    for r in rep.rows:
        for c in r.cells.values():
            if c.status in ("missing", "not measured"):
                # no number is made up: only lesson numbers and result names appear
                assert not re.search(r"\d+(\.\d+)?\s*(ms|s|%|\$)", c.text), c.text
    md = rep.to_markdown()
    assert "Missing: run lesson(s) 02, 04, 05, 06" in md and "no saved results yet" in md
    assert "nothing measured yet" in md


def test_missing_cells_in_colab_say_not_measured_in_this_runtime(res_dir, monkeypatch):
    """Each Colab badge opens a new runtime: a missing cell says so and how to get the number there."""
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    monkeypatch.setenv("PERSONALAB_HOME", str(res_dir.parent / "home"))
    rep = report.build()
    cell = text(rep, "consistency", "system prompt")
    assert cell.startswith("not measured in this runtime: run lesson 05 here, or set USE_DRIVE = True in the setup "
                           "cell") and "'05/drift'" in cell and "first" not in cell
    assert rep.cell("token cost", "fine-tuning").needs == "02"
    md = rep.to_markdown()
    assert "Missing (not measured in this runtime): run lesson(s) 02, 04, 05, 06 here, or set USE_DRIVE = True" in md
    monkeypatch.setenv("PERSONALAB_HOME", "/content/drive/MyDrive/persona-lab")  # USE_DRIVE = True, nothing saved yet
    assert text(report.build(), "robustness", "hybrid").startswith("not on your Google Drive yet: run lesson 05")
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    assert text(report.build(), "robustness", "hybrid").startswith("run lesson 05 first")


def test_partial_results(res_dir):
    write(res_dir, {k: v for k, v in FULL.items() if k[0] in ("01", "02")})
    rep = report.build()
    assert rep.cell("latency", "system prompt").status == "derived"
    assert rep.cell("token cost", "system prompt").status == "derived"
    assert "(training cost: run lesson 03)" in text(rep, "token cost", "fine-tuning")
    assert rep.cell("token cost", "hybrid").status == "missing"
    sp = rep.cell("consistency", "system prompt")  # lesson 01's rate, lesson 05 still to run
    assert "85% of 20" in sp.text and "run lesson 05 first" in sp.text and sp.needs == "05"
    assert rep.cell("consistency", "fine-tuning").status == "missing"
    assert rep.cell("robustness", "fine-tuning").status == "missing"
    assert rep.missing_lessons == ["04", "05", "06"]


def test_unreadable_results_never_crash(res_dir):
    broken = {("02", "latency"): ({"rows": "oops", "ms_per_100_prompt_tokens": "fast"}, EMB),
              ("05", "drift"): ({"scorer": "rules", "summary": {"rules": {"prompted": {"early_mean_score": "x"}}}},
                                EMB),
              ("02", "costs"): ({"model": "gpt-4o-mini"}, "gpt-4o-mini")}
    write(res_dir, broken)
    (res_dir / "05" / "injection.json").write_text(json.dumps({"data": None}))
    rep = report.build()
    for dim in ("latency", "consistency", "token cost"):
        c = rep.cell(dim, "system prompt")
        assert c.status == "unreadable" and "re-run lesson" in c.text, (dim, c)
    assert rep.cell("robustness", "system prompt").status in ("missing", "not measured")
    rep.to_markdown(), rep.to_html()  # renders


def test_legacy_or_foreign_files_are_listed_not_used(res_dir):
    write(res_dir, {("99", "other"): ({"x": 1}, "m")})
    rep = report.build()
    assert "99/other" in rep.used and "saved result" in rep.used["99/other"]


# --------------------------------------------------------------------------------------------- evidence
def test_evidence_from_results(res_dir):
    assert decision.Evidence.from_results() == decision.Evidence()
    write(res_dir, FULL)
    ev = decision.Evidence.from_results()
    comp = evidence.cost_comparison(results.load_all())
    assert ev.break_even_never == comp.break_evens[0].never
    assert ev.break_even_requests == comp.break_evens[0].volume
    assert ev.injection_held == {"prompted": 0.3, "fine-tuned": 0.7}
    assert ev.drift_late_score == {"prompted": 0.3, "fine-tuned": 0.7}
    assert ev.retrain_s == 61.5 and ev.prompt_change_s == pytest.approx(0.1821)
    assert "embedded-v2" in ev.injection_source and HW in ev.injection_source
    rep = report.build()
    assert rep.evidence == ev.describe() and len(rep.framework) == len(decision.QUICK_REFERENCE)
    assert "The decision framework on your numbers" in rep.to_markdown()


def test_measure_prompt_change_with_a_fake_client():
    from types import SimpleNamespace

    sent = []

    def create(**kw):
        sent.append(kw)
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="Onward and upward!"))])

    client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    out = report.measure_prompt_change(client=client, model="m")
    assert out["reply"] == "Onward and upward!" and out["model"] == "m"
    assert out["total_s"] >= out["request_s"] >= 0 and out["render_s"] >= 0
    assert "Onward and upward!" in sent[0]["messages"][0]["content"]  # the edited prompt went out


def test_plot_vs_article(res_dir):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    empty = report.plot_vs_article({})
    assert "run lesson 05 first" in [t.get_text() for t in empty.axes[1].texts]
    write(res_dir, FULL)
    fig = report.plot_vs_article()
    heights = sorted(round(b.get_height(), 2) for b in fig.axes[1].patches)
    assert heights == sorted([0.8, 0.3, 0.3, 0.75, 0.7, 0.7, 0.7, 0.65, 0.6])


def _figure_records(tmp_path):
    est = lambda v: {"value": v, "low": max(0, v - 0.1), "high": min(1, v + 0.1), "n": 4, "level": 0.95}  # noqa: E731
    meta = {"hardware": "CPU x86_64 x2 (Linux)", "saved_at": "2026-11-29T10:00:00", "model": "embedded-tiny"}
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    (tmp_path / "run" / "metrics.json").write_text('{"losses": [2.0, 1.5, 1.2, 1.1]}')
    return {
        "05/drift": {**meta, "data": {"scorer": "rule", "per_turn": {"prompted": [est(0.9), est(0.7), est(0.5)]}}},
        "05/injection": {**meta, "data": {"summary": {
            "prompted": {"override": {"complied": est(0.0)}, "all": {"complied": est(0.0)}},
            "fine-tuned": {"override": {"complied": est(0.0)}, "all": {"complied": est(0.0)}},
        }}},
        "02/costs": {**meta, "model": "gpt-4o-mini", "data": {"model": "gpt-4o-mini", "persona_tokens": 3000,
                                                              "requests_per_month": 500_000, "price_source": "p"}},
        "04/training": {**meta, "data": {"adapter_dir": str(tmp_path / "run" / "adapter"), "backend": "peft",
                                         "device": "cpu", "base_model": "embedded-tiny"}},
    }


def test_report_embeds_captioned_figures_and_links_them_in_markdown(tmp_path):
    import base64

    from personalab import plots

    rep = report.build(_figure_records(tmp_path), framework=False)
    assert [f.name for f in rep.figures] == ["drift.png", "injection_complied.png", "cost_vs_volume.png",
                                             "training_loss.png"]
    assert rep.figures_missing == []
    md_path, html_path = rep.write(tmp_path / "out")
    page, md = html_path.read_text(), md_path.read_text()
    for f in rep.figures:
        assert "CPU x86_64 x2 (Linux)" in f.caption and f.png.startswith(b"\x89PNG")
        assert f"(figures/{f.name})" in md and (tmp_path / "out" / "figures" / f.name).read_bytes() == f.png
        assert base64.b64encode(f.png).decode() in page  # inline: the HTML is self-contained
    assert "src=\"figures/" not in page
    assert "every value is 0" in plots.degenerate_note([0.0, 0.0], "why") and "why" in \
        plots.degenerate_note([0.0, 0.0], "why")
    assert plots.degenerate_note([0.0, 0.5]) is None


def test_report_says_which_lesson_draws_a_missing_figure():
    rep = report.build({}, framework=False)
    assert rep.figures == [] and any("run lesson 05" in m for m in rep.figures_missing)
    assert "run lesson 04 to draw" in rep.to_html()


def test_flat_injection_chart_says_why():
    """Every attack-success bar at 0 (the embedded model): the title explains instead of looking like a finding."""
    import matplotlib

    matplotlib.use("Agg")
    from personalab.evaluate.attacks import InjectionResult, Outcome

    outs = [Outcome(t, f"a{i}", "override", 0, ["ok"], False, True, False, False)
            for t in ("p", "f") for i in range(3)]
    ax = InjectionResult(outs, "CANARY", ["p", "f"], ["override"]).plot("complied")
    assert "every value is 0" in ax.get_title() and "no attack" in ax.get_title()
    outs[0] = Outcome("p", "a0", "override", 0, ["ok"], True, False, False, False, ["phrase 'arr'"])
    ax = InjectionResult(outs, "CANARY", ["p", "f"], ["override"]).plot("complied")
    assert ax.get_title() == ""
