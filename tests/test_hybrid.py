"""personalab.hybrid: the fine-tuned core plus overlays through lesson 05's harness (fake model, no server)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

evaluate = pytest.importorskip("personalab.evaluate")  # lesson 05's harness (branch 'evaluate')
ResponseCache = pytest.importorskip("personalab.cache").ResponseCache

from personalab import hybrid, results  # noqa: E402
from personalab.persona import load_overlay  # noqa: E402


class FakeClient:
    """Replies in the persona; mentions the overlay's first term when the system prompt names one."""

    def __init__(self, follows_overlay=True):
        self.follows = follows_overlay
        self.lock = threading.Lock()
        self.calls = 0
        self.base_url = "http://127.0.0.1:9/v1"
        self.chat = SimpleNamespace(completions=self)

    def create(self, *, model, messages, **kw):
        with self.lock:
            self.calls += 1
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        term = ""
        if self.follows and "Terms to use when relevant:" in system:
            term = " " + system.split('Terms to use when relevant: "')[1].split('"')[0] + " first."
        text = f"Great choice! Task added.{term} Let's get this done: what is next?"
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=text))],
                               usage=SimpleNamespace(prompt_tokens=10, completion_tokens=len(text.split())))


def words(msgs):
    return sum(len(m["content"].split()) + 1 for m in msgs)


def targets(client, overlays):
    out = [evaluate.Target("fine-tuned", client, "fake-ft", None, context_window=None, count_tokens=words)]
    return out + [evaluate.Target(hybrid.target_name(ov), client, "fake-ft", None, ov, context_window=None,
                                  count_tokens=words) for ov in overlays]


def run(client, names=("marketing", "sales")):
    ovs = hybrid.load_overlays(list(names))
    runner = evaluate.Runner(cache=ResponseCache(None), progress=False, sleep=lambda s: None, max_tokens=16)
    scripts = evaluate.load_scripts()[:1]
    attacks = evaluate.sample_attacks(evaluate.load_attacks(), 1)
    return hybrid.evaluate_hybrid(ovs, targets=targets(client, ovs), runner=runner, scripts=scripts,
                                  attacks=attacks, settings=evaluate.suite_settings(quick=True))


def test_overlays_and_terminology():
    assert [o.name for o in hybrid.load_overlays()] == ["End-of-quarter push", "Engineering", "Marketing", "Sales"]
    eng = load_overlay("engineering")
    assert hybrid.uses_terminology("Fix the Bug today", eng)
    assert not hybrid.uses_terminology("debugging is fun", eng)  # whole words only
    assert hybrid.uses_terminology("open a pull request", eng)


def test_overlay_tokens_exact_for_openai_and_none_for_unknown():
    ovs = hybrid.load_overlays(["marketing"])
    n = hybrid.overlay_tokens(ovs, "gpt-4o-mini")["Marketing"]
    assert isinstance(n, float) and 20 < n < 80
    assert hybrid.overlay_tokens(ovs, "no-such-model")["Marketing"] is None


def test_evaluate_hybrid_measures_whether_overlays_show(monkeypatch, tmp_path):
    monkeypatch.setenv("PERSONALAB_RESULTS", str(tmp_path))
    res = run(FakeClient(follows_overlay=True))
    rows = {r["target"]: r for r in res.rows()}
    assert list(rows) == ["fine-tuned", "hybrid (Marketing)", "hybrid (Sales)"]
    assert rows["fine-tuned"]["overlay"] is None and rows["fine-tuned"]["terminology"] is None
    assert rows["hybrid (Marketing)"]["terminology"] == 1.0 and rows["hybrid (Marketing)"]["terminology_core"] == 0.0
    assert rows["hybrid (Sales)"]["overlay_tokens"] is None  # "fake-ft" has no tokenizer here
    assert 0.0 <= rows["fine-tuned"]["persona_held"] <= 1.0
    assert rows["fine-tuned"]["canary_leak"] is None  # no system prompt, nothing to leak
    data = res.to_json()
    assert data["overlay_tokens_billed"]["Marketing"] > 0 and data["token_model"] == "gpt-4o-mini"
    path = res.save()
    saved = results.load("06", "hybrid")
    assert path.exists() and saved["data"]["rows"][1]["terminology"] == 1.0
    assert "<table>" in res._repr_html_() and "terminology" in repr(res)


def test_an_overlay_the_model_ignores_shows_as_no_effect():
    res = run(FakeClient(follows_overlay=False), names=("engineering",))
    row = res.rows()[1]
    assert row["terminology"] == 0.0 == row["terminology_core"]


def test_plot():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = run(FakeClient()).plot()
    assert len(fig.axes) == 3


def test_hybrid_targets_train_lesson_04_in_a_fresh_runtime(monkeypatch, tmp_path):
    """A fresh runtime (no lesson 04 results): the hybrid trains the core with lesson 04's settings, as lesson 05."""
    from personalab import evaluate
    from personalab.evaluate import targets

    monkeypatch.setenv("PERSONALAB_RESULTS", str(tmp_path))
    trained = []
    monkeypatch.setattr(targets, "ensure_finetuned", lambda: trained.append(1) or tmp_path)
    monkeypatch.setattr(evaluate, "local_target", lambda name, model_dir, **kw: (name, model_dir))
    rows = hybrid.hybrid_targets()
    assert trained == [1] and rows[0] == (hybrid.CORE, tmp_path)
