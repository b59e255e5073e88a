"""Cost explorer: the update function (no browser) and the widget wiring; tests/test_browser.py runs it in Chromium."""

from __future__ import annotations

import matplotlib
import pytest

from personalab import costs, widgets

matplotlib.use("Agg")


def test_update_reproduces_article_example():
    view = widgets.update({"use_table_finetuned": False, "finetuned_multiplier": 2, "training_tokens": 0})
    assert view.error is None
    rows = {r["plan"]: r for r in view.comparison.rows()}
    assert rows["system prompt"]["running_monthly_usd"] == pytest.approx(101.25)
    assert rows["fine-tuned (API)"]["running_monthly_usd"] == pytest.approx(127.50)
    assert "$101.25" in view.html and "$127.50" in view.html and "$0.0002025" in view.html
    assert view.crossovers == {"fine-tuned (API)": None}
    assert "never" in view.html


def test_update_finds_crossover_and_curves_meet_there():
    view = widgets.update({"persona_tokens": 3000, "training_tokens": 2_000_000})
    be = view.crossovers["fine-tuned (API)"]
    assert be is not None and be > 0
    assert min(view.volumes) <= be <= max(view.volumes)
    prompt, ft = view.comparison.plans[:2]
    s = view.comparison.scenario
    assert prompt.monthly(be, s.months) == pytest.approx(ft.monthly(be, s.months))
    lo, hi = view.curves["system prompt"], view.curves["fine-tuned (API)"]
    assert lo[0] < hi[0] and lo[-1] > hi[-1]  # the system prompt is cheaper at first, then fine-tuning wins


def test_update_reacts_to_each_control():
    base = widgets.update({})
    monthly = base.comparison.plans[0].running(500_000)
    for key, value in [
        ("requests_per_month", 1_000_000),
        ("persona_tokens", 1000),
        ("turns", 5),
        ("model", "gpt-4o"),
        ("response_tokens", 400),
    ]:
        changed = widgets.update({key: value})
        assert changed.comparison.plans[0].running(500_000) != monthly or key == "requests_per_month", key
    sh = widgets.update({"self_hosted": True, "always_on": True})
    assert len(sh.comparison.plans) == 3 and "self-hosted t4" in sh.html
    cached = widgets.update({"persona_tokens": 3000, "caching": True})
    uncached = widgets.update({"persona_tokens": 3000, "caching": False})
    assert cached.comparison.plans[0].per_request < uncached.comparison.plans[0].per_request


def test_bad_input_is_shown_not_raised():
    view = widgets.update({"requests_per_month": 0})
    assert view.comparison is None and "requests_per_month" in view.error and "<pre" in view.html
    view = widgets.update({"model": "gpt-3.5-turbo", "persona_tokens": 3000, "caching": True})
    assert "cached-input price" in view.error
    fig = widgets.plot(view)
    assert fig is not None


def test_plot_marks_crossover_or_explains():
    fig = widgets.plot(widgets.update({"persona_tokens": 3000}))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("break-even" in t for t in texts)
    fig = widgets.plot(widgets.update({}))
    assert any("no crossover" in t.get_text() for t in fig.axes[0].texts)


def test_volume_grid_covers_points():
    grid = widgets.volume_grid(500_000, [20_000_000])
    assert grid[0] <= 5_000 and grid[-1] >= 2e9 and grid == sorted(grid)


def test_explorer_widget_reacts_to_slider():
    pytest.importorskip("ipywidgets")
    box = widgets.explorer()
    before = box.summary.value
    assert "$101.25" in before
    box.controls["persona_tokens"].value = 1000
    assert box.summary.value != before
    assert box.view.comparison.scenario.persona_tokens == 1000
    box.controls["use_table_finetuned"].value = False
    assert not box.controls["finetuned_multiplier"].disabled
    box.controls["requests_per_month"].value = 0  # out of range: said in the summary, never raised
    assert box.view.error is not None and "requests_per_month" in box.summary.value


def test_sliders_keep_exact_values():
    """A slider echoing its snapped value (500,000 -> 501,187) must not move the exact number."""
    pytest.importorskip("ipywidgets")
    box = widgets.explorer(persona_tokens=141)
    volume, persona = box.sliders["requests_per_month"], box.sliders["persona_tokens"]
    volume.value = 10**5.7  # 501,187: what the frontend sends back for 500,000 on a 0.05 log step
    persona.value = 140  # what the frontend sends for 141 on a step-10 slider
    box.sliders["user_tokens"].value = 51
    assert box.controls["requests_per_month"].value == 500_000
    assert box.controls["persona_tokens"].value == 141 and box.controls["user_tokens"].value == 50
    assert "$101.25" in widgets.explorer().summary.value and box.view.comparison.scenario.persona_tokens == 141
    volume.value = 10**6.5  # a real move: the box takes the slider's value, rounded to 3 digits
    assert box.controls["requests_per_month"].value == 3_160_000
    assert box.view.comparison.scenario.requests_per_month == 3_160_000
    box.controls["persona_tokens"].value = 2345  # typed: the slider follows, the value stays exact
    assert box.view.comparison.scenario.persona_tokens == 2345


def test_plot_is_plain_text_and_safe_in_threads():
    """No mathtext anywhere: dollar amounts stay text and concurrent renders never raise ParseException."""
    import threading

    view = widgets.update({})
    fig = widgets.plot(view)
    note = next(t for t in fig.axes[0].texts if "no crossover" in t.get_text())
    assert "$0.000" in note.get_text() and not note.get_parse_math()
    errors: list[str] = []

    def render() -> None:
        for _ in range(3):
            try:
                widgets.plot_html(widgets.update({"persona_tokens": 3000}))
                widgets.plot(view).canvas.draw()  # drawn outside the lock too: no mathtext to race on
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc))

    threads = [threading.Thread(target=render) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels and not any("$" in t or "mathdefault" in t for t in labels)


def test_plot_html_is_deterministic_and_describes_the_view():
    view = widgets.update({"persona_tokens": 3000})
    one, two = widgets.plot_html(view), widgets.plot_html(widgets.update({"persona_tokens": 3000}))
    assert one == two and one.startswith('<img src="data:image/png;base64,')
    assert "never" in widgets.plot_alt(widgets.update({}))
    assert "cheaper above" in widgets.plot_alt(view)
    assert widgets.plot_html(widgets.update({"persona_tokens": 2999})) != one


def test_price_table_models_are_selectable():
    prices = costs.load_prices()
    box = widgets.explorer(prices)
    assert set(box.controls["model"].options) == set(prices.models)


def test_table_and_turn_plots():
    prices = costs.load_prices()
    base, ft = prices.rates("gpt-4o-mini"), prices.rates("gpt-4o-mini", finetuned=True)
    w = costs.Workload(persona_tokens=141, user_tokens=50, response_tokens=200, turns=5)
    rows = costs.turn_table(w, base, ft)
    t = widgets.Table(rows, ["turn", "prompt_input_tokens", "prompt_usd"])
    assert "<table>" in t._repr_html_() and "prompt_usd" in repr(t) and len(repr(t).splitlines()) == 6
    fig = widgets.plot_turns(rows)
    assert len(fig.axes[0].lines) == 2
    fig = widgets.plot_threshold(w, base, ft, max_turns=6)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert any("caching on" in label for label in labels) and any("your persona" in label for label in labels)
    ys = fig.axes[0].lines[0].get_ydata()
    assert ys[0] == pytest.approx(850) and all(
        b > a for a, b in zip(ys[:-1], ys[1:], strict=True)
    )  # longer talks raise the bar


def test_update_prices_the_distillation_case():
    values = {"model": "gpt-4o", "self_hosted": True, "always_on": False, "distill": True,
              "distill_examples": 3000, "training_gpu_hours": 2.0}
    view = widgets.update(values)
    assert view.error is None
    small = view.comparison.plans[2]
    assert small.name == "distilled small model (self-hosted t4)"
    s = view.comparison.scenario
    assert small.one_time == pytest.approx(costs.distillation_cost(
        costs.Distillation(3000, 2.0), s.workload, costs.load_prices().rates("gpt-4o"), 0.35))
    assert "Distillation (assumptions" in view.html and "3,000 training replies" in view.html
    be = view.crossovers[small.name]
    assert be and small.monthly(be, s.months) == pytest.approx(view.comparison.plans[0].monthly(be, s.months))
    fig = widgets.plot(view)
    assert "distilled small model" in fig.axes[0].get_title()
    # the distillation settings do nothing without a self-hosted model, as in the explorer (disabled there)
    assert len(widgets.update({**values, "self_hosted": False}).comparison.plans) == 2
    # view_of draws a comparison made in a lesson the same way as the explorer's
    assert widgets.plot_alt(widgets.view_of(view.comparison)) == widgets.plot_alt(view)


def test_explorer_distillation_controls_follow_the_self_hosted_box():
    pytest.importorskip("ipywidgets")
    box = widgets.explorer()
    c = box.controls
    assert c["distill"].disabled and c["distill_examples"].disabled
    c["self_hosted"].value = True
    assert not c["distill"].disabled and c["distill_examples"].disabled
    c["distill"].value = True
    assert not c["training_gpu_hours"].disabled
    assert box.view.comparison.plans[2].name.startswith("distilled small model")
    c["training_gpu_hours"].value = -1.0  # bad input is said in the summary, never raised
    assert box.view.error is not None and "training_gpu_hours" in box.summary.value
