"""Cost model: the seed article's worked example, conversations, caching, training, break-even, bad input."""

from __future__ import annotations

import math
import textwrap

import pytest

from personalab import costs
from personalab.errors import InputError


@pytest.fixture(scope="module")
def prices():
    return costs.load_prices()


def write_table(tmp_path, body: str):
    path = tmp_path / "pricing.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


MINI = """\
models:
  mini:
    input: 0.15
    output: 0.60
    date: "2025-06"
    source: test
"""


def test_article_worked_example(prices):
    """500-token persona, 50-token user message, 200-token reply at $0.15/$0.60 per 1M, 500,000 requests."""
    w = costs.Workload(persona_tokens=500, user_tokens=50, response_tokens=200)
    base = prices.rates("gpt-4o-mini")
    ft2x = prices.rates("gpt-4o-mini", finetuned=True, multiplier=2)
    assert (base.input, base.output) == (0.15, 0.60)
    per = costs.per_request_cost(w, base)
    per_ft = costs.per_request_cost(w, ft2x, finetuned=True)
    assert costs.fmt_usd(per) == "0.0002025" and per == pytest.approx(0.0002025, abs=1e-15)
    assert costs.fmt_usd(per_ft) == "0.000255" and per_ft == pytest.approx(0.000255, abs=1e-15)
    assert costs.monthly_cost(w, base, 500_000) == pytest.approx(101.25, abs=1e-9)
    assert costs.monthly_cost(w, ft2x, 500_000, finetuned=True) == pytest.approx(127.50, abs=1e-9)
    assert costs.fmt_usd(costs.monthly_cost(w, base, 500_000)) == "101.25"
    assert costs.fmt_usd(costs.monthly_cost(w, ft2x, 500_000, finetuned=True)) == "127.50"
    # the table's fine-tuned gpt-4o-mini prices are the article's 2x
    ft_table = prices.rates("gpt-4o-mini", finetuned=True)
    assert costs.per_request_cost(w, ft_table, finetuned=True) == pytest.approx(per_ft, rel=1e-12)


def test_request_cost_by_hand():
    r = costs.Rates(input=2.0, output=8.0, cached_input=0.5)
    assert costs.request_cost(1000, 100, r) == pytest.approx((1000 * 2 + 100 * 8) / 1e6)
    assert costs.request_cost(1000, 100, r, cached_tokens=400) == pytest.approx((600 * 2 + 400 * 0.5 + 800) / 1e6)


def test_conversation_repeats_prompt_and_grows_history():
    w = costs.Workload(persona_tokens=100, user_tokens=10, response_tokens=20, turns=3)
    inputs = [costs.turn_tokens(w, k).input for k in (1, 2, 3)]
    assert inputs == [110, 140, 170]  # persona every turn, history grows by user + reply
    total = costs.conversation_tokens(w)
    assert (total.input, total.output) == (420, 60)
    ft = costs.conversation_tokens(w, finetuned=True)
    assert ft.input == 420 - 3 * 100
    r = costs.Rates(input=1.0, output=1.0)
    assert costs.per_request_cost(w, r) == pytest.approx(480 / 3 / 1e6)
    assert costs.monthly_cost(w, r, 300) == pytest.approx(100 * 480 / 1e6)  # 300 requests = 100 conversations


def test_prompt_caching_rule():
    c = costs.Caching(enabled=True)
    assert c.cached(1000, 1050) == 0  # below 1024 tokens nothing is cached
    assert c.cached(2000, 2050) == 1920  # 128-token increments
    assert costs.Caching().cached(2000, 2050) == 0
    w = costs.Workload(persona_tokens=2000, user_tokens=50, response_tokens=200)
    t = costs.turn_tokens(w, 1, caching=c)
    assert (t.input, t.cached) == (2050, 1920)
    r = costs.Rates(input=1.0, output=0.0, cached_input=0.25)
    assert costs.per_request_cost(w, r, caching=c) == pytest.approx((130 + 1920 * 0.25) / 1e6)


def test_caching_needs_a_cached_price(prices):
    w = costs.Workload(persona_tokens=3000, user_tokens=50, response_tokens=200)
    with pytest.raises(InputError, match="cached-input price"):
        costs.per_request_cost(w, prices.rates("gpt-3.5-turbo"), caching=costs.Caching(enabled=True))


def test_training_cost(prices):
    assert costs.training_cost(1_000_000, 3, prices.training_price("gpt-4o-mini")) == pytest.approx(9.0)
    assert costs.gpu_training_cost(0.5, 0.35) == pytest.approx(0.175)
    with pytest.raises(InputError, match="epochs"):
        costs.training_cost(1000, 0, 3.0)


def test_article_scenario_never_breaks_even(prices):
    s = costs.Scenario(model="gpt-4o-mini", requests_per_month=500_000, finetuned_multiplier=2, training_cost=20)
    be = costs.compare(s, prices).break_evens[0]
    assert be.never and be.volume is None and "never" in be.reason


def test_break_even_closed_form(prices):
    s = costs.Scenario(persona_tokens=2000, training_cost=30.0, months=12)
    cmp = costs.compare(s, prices)
    prompt, ft = cmp.plans[:2]
    be = cmp.break_evens[0]
    expected = 30.0 / 12 / (prompt.per_request - ft.per_request)
    assert be.volume == pytest.approx(expected, rel=1e-12)
    assert prompt.monthly(be.volume, 12) == pytest.approx(ft.monthly(be.volume, 12), rel=1e-9)
    assert ft.monthly(be.volume * 1.01, 12) < prompt.monthly(be.volume * 1.01, 12)
    assert ft.monthly(be.volume * 0.99, 12) > prompt.monthly(be.volume * 0.99, 12)


def test_persona_threshold_formula(prices):
    """Single turn, 2x fine-tuned prices, no prompt: fine-tuning saves only if P > U + R * out/in."""
    base = prices.rates("gpt-4o-mini")
    ft = prices.rates("gpt-4o-mini", finetuned=True, multiplier=2)
    w = costs.Workload(persona_tokens=500, user_tokens=50, response_tokens=200)
    p_star = costs.persona_break_even_tokens(w, base, ft)
    assert p_star == pytest.approx(50 + 200 * 0.60 / 0.15)
    for p, ft_cheaper in ((p_star - 1, False), (p_star + 1, True)):
        wp = costs.Workload(persona_tokens=p, user_tokens=50, response_tokens=200)
        assert (costs.per_request_cost(wp, ft, finetuned=True) < costs.per_request_cost(wp, base)) is ft_cheaper
    # at 2x, the fine-tuned premium also applies to the growing history: longer conversations raise the bar
    w10 = costs.Workload(persona_tokens=500, user_tokens=50, response_tokens=200, turns=10)
    assert costs.persona_break_even_tokens(w10, base, ft) == pytest.approx((10 - 1) / 2 * 250 + 50 + 800)


def test_persona_threshold_with_caching_is_consistent(prices):
    base, ft = prices.rates("gpt-4o-mini"), prices.rates("gpt-4o-mini", finetuned=True)
    cache = costs.Caching(enabled=True)
    w = costs.Workload(persona_tokens=500, user_tokens=50, response_tokens=200)
    p = costs.persona_break_even_tokens(w, base, ft, caching=cache)
    assert p is not None and p > 850  # caching makes the long prompt cheaper, so the bar rises
    above = costs.Workload(persona_tokens=p, user_tokens=50, response_tokens=200)
    below = costs.Workload(persona_tokens=p - 1, user_tokens=50, response_tokens=200)
    assert costs.per_request_cost(above, ft, finetuned=True, caching=cache) < costs.per_request_cost(
        above, base, caching=cache
    )
    assert costs.per_request_cost(below, ft, finetuned=True, caching=cache) >= costs.per_request_cost(
        below, base, caching=cache
    )


def test_self_hosted_always_on_break_even(prices):
    sh = costs.SelfHosted(
        gpu_hour=0.35,
        output_tokens_per_second=400,
        prompt_tokens_per_second=4000,
        min_hours_per_month=costs.HOURS_PER_MONTH,
    )
    w = costs.Workload(persona_tokens=500, user_tokens=50, response_tokens=200)
    plan = costs.self_hosted_plan("sh", w, sh)
    assert plan.per_request == pytest.approx((50 / 4000 + 200 / 400) * 0.35 / 3600)
    assert plan.running(1) == pytest.approx(730 * 0.35)  # the always-on floor
    prompt = costs.api_plan("prompt", w, prices.rates("gpt-4o-mini"))
    be = costs.break_even(prompt, plan)
    assert be.volume == pytest.approx(730 * 0.35 / prompt.per_request)  # on the floor part of the GPU cost
    assert plan.monthly(be.volume) == pytest.approx(prompt.monthly(be.volume))
    # a plan that is cheaper per request and has no fixed cost is cheaper at every volume
    assert costs.break_even(prompt, costs.Plan("free-ish", prompt.per_request / 2)).volume == 0.0


@pytest.mark.parametrize("volume", [0, -5, float("nan")])
def test_bad_volume(prices, volume):
    with pytest.raises(InputError) as info:
        costs.compare(costs.Scenario(requests_per_month=volume), prices)
    assert info.value.field == "requests_per_month"


def test_bad_workload():
    with pytest.raises(InputError) as info:
        costs.Workload(persona_tokens=-1, user_tokens=1, response_tokens=1)
    assert info.value.field == "persona_tokens"
    with pytest.raises(InputError) as info:
        costs.Workload(persona_tokens=1, user_tokens=1, response_tokens=1, turns=0)
    assert info.value.field == "turns"


def test_unknown_model_names_file_and_field(prices):
    with pytest.raises(InputError, match="unknown model") as info:
        prices.rates("gpt-banana")
    assert info.value.field == "models.gpt-banana" and info.value.path.endswith("pricing.yaml")
    assert prices.price("ft:gpt-4o-mini-2024-07-18:org:taskmaster:abc") is prices.models["gpt-4o-mini"]
    assert prices.price("gpt-4o-mini-2024-07-18") is prices.models["gpt-4o-mini"]


def test_missing_price_names_field_and_file(tmp_path):
    table = costs.load_prices(write_table(tmp_path, MINI))
    with pytest.raises(InputError, match="no fine-tuned price") as info:
        table.rates("mini", finetuned=True)
    assert info.value.field == "models.mini.finetuned_input" and info.value.path == str(tmp_path / "pricing.yaml")
    with pytest.raises(InputError, match="training price") as info:
        table.training_price("mini")
    assert info.value.field == "models.mini.training"
    assert table.rates("mini", finetuned=True, multiplier=2).input == pytest.approx(0.30)


@pytest.mark.parametrize(
    ("body", "field", "line"),
    [
        (MINI.replace("input: 0.15", "input: -0.15"), "models.mini.input", 3),
        (MINI.replace('    date: "2025-06"\n', ""), "models.mini.date", 3),
        (MINI.replace('"2025-06"', '"June"'), "models.mini.date", 5),
        (MINI.replace("output: 0.60", "output: cheap"), "models.mini.output", 4),
        (MINI.replace("source: test", "source: test\n    discount: 0.5"), "models.mini.discount", None),
        ("models: {}\n", "models", 1),
    ],
)
def test_malformed_table(tmp_path, body, field, line):
    with pytest.raises(InputError) as info:
        costs.load_prices(write_table(tmp_path, body))
    assert info.value.field == field
    assert info.value.path == str(tmp_path / "pricing.yaml")
    if line is not None:
        assert info.value.line == line


def test_yaml_syntax_error_has_line(tmp_path):
    with pytest.raises(InputError, match="invalid YAML") as info:
        costs.load_prices(write_table(tmp_path, MINI.replace("output: 0.60", "output: [0.60")))
    assert info.value.line is not None


def test_shipped_table_is_complete(prices):
    for name, p in prices.models.items():
        assert p.source and p.date, name
        if p.finetuned_input is not None:
            assert p.finetuned_input >= p.input, name
    assert {"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"} <= set(prices.models)
    assert all(math.isfinite(g.gpu_hour) for g in prices.self_hosted.values())


def test_cost_command_prints_table(capsys):
    from personalab import cli, tokens
    from personalab.persona import taskmaster

    rc = cli.main(
        ["cost", "--persona", "data/personas/taskmaster.yaml", "--model", "gpt-4o-mini", "--requests", "500000"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    added = tokens.persona_overhead(taskmaster().render(), model="gpt-4o-mini")["added_prompt_tokens"]
    assert f"{added:g} tokens added" in out
    expected = costs.monthly_cost(costs.Workload(added, 50, 200), costs.load_prices().rates("gpt-4o-mini"), 500_000)
    assert f"${costs.fmt_usd(expected)}" in out and "$127.50" in out
    assert "system prompt" in out and "fine-tuned (API)" in out and "break-even" in out


def test_cost_command_article_numbers(capsys):
    from personalab import cli

    assert cli.main(["cost", "--persona-tokens", "500", "--multiplier", "2", "--turns", "1"]) == 0
    out = capsys.readouterr().out
    assert "$0.0002025" in out and "$101.25" in out and "$0.000255" in out and "$127.50" in out
    assert "850 tokens" in out  # the persona size above which fine-tuning is cheaper per request


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--requests", "0"], "--requests"),
        (["--requests", "-5"], "--requests"),
        (["--model", "gpt-banana"], "models.gpt-banana"),
        (["--turns", "0"], "--turns"),
    ],
)
def test_cost_command_bad_input(capsys, argv, needle):
    from personalab import cli

    assert cli.main(["cost", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err


def test_cost_command_bad_table(tmp_path, capsys):
    from personalab import cli

    path = write_table(tmp_path, MINI.replace("output: 0.60", "output: -1"))
    assert cli.main(["cost", "--prices", str(path), "--model", "mini"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "models.mini.output" in err and "line 4" in err


def test_turn_table_matches_conversation_cost(prices):
    base, ft = prices.rates("gpt-4o-mini"), prices.rates("gpt-4o-mini", finetuned=True)
    w = costs.Workload(persona_tokens=300, user_tokens=40, response_tokens=120, turns=6)
    rows = costs.turn_table(w, base, ft)
    assert [r["turn"] for r in rows] == list(range(1, 7))
    assert sum(r["prompt_usd"] for r in rows) == pytest.approx(costs.conversation_cost(w, base))
    assert sum(r["finetuned_usd"] for r in rows) == pytest.approx(costs.conversation_cost(w, ft, finetuned=True))
    assert all(r["prompt_input_tokens"] - r["finetuned_input_tokens"] == 300 for r in rows)


def test_money_prints_exactly() -> None:
    from personalab.costs import fmt_usd

    assert fmt_usd(185.625) == "185.63"  # to the cent, half up (not 185.62 from float rounding)
    assert fmt_usd(0.00037125) == "0.00037125"  # every significant digit per request
    assert fmt_usd(0.00037125000000000003) == "0.00037125"  # no float noise
    assert fmt_usd(1234567.891) == "1,234,567.89" and fmt_usd(0) == "0" and fmt_usd(101.25) == "101.25"


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--requests", "-5"], "--requests"),
        (["--persona-tokens", "-5"], "--persona-tokens"),
        (["--training-tokens", "-1"], "--training-tokens"),
        (["--model", "gpt-3.5-turbo", "--cache"], "--cache"),
    ],
)
def test_cost_cli_errors_are_one_line_before_any_output(argv, flag, capsys) -> None:
    from personalab.cli import main

    assert main(["cost", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "", "nothing is printed before a validation error"
    assert len(err.strip().splitlines()) == 1 and flag in err and "how to fix" in err
    assert "requests_per_month" not in err and "dataset_tokens" not in err


def test_distillation_one_time_cost_by_hand(prices):
    """The teacher's replies at the prompted price, plus the GPU hours of training."""
    w = costs.Workload(persona_tokens=500, user_tokens=50, response_tokens=200)
    teacher = prices.rates("gpt-4o")
    d = costs.Distillation(examples=2000, training_gpu_hours=1.5)
    per_reply = (550 * 2.50 + 200 * 10.00) / 1_000_000  # gpt-4o with the 500-token persona prompt
    assert costs.distillation_cost(d, w, teacher, gpu_hour=0.35) == pytest.approx(2000 * per_reply + 1.5 * 0.35)
    assert costs.distillation_cost(costs.Distillation(0, 0), w, teacher, gpu_hour=0.35) == 0


def test_distillation_scenario_breaks_even_where_the_monthly_costs_meet(prices):
    sh = costs.SelfHosted(gpu_hour=0.35, output_tokens_per_second=400, prompt_tokens_per_second=4000,
                          label="t4")
    d = costs.Distillation(examples=2000, training_gpu_hours=1.0)
    s = costs.Scenario(model="gpt-4o", self_hosted=sh, distillation=d, training_tokens=1_000_000)
    cmp = costs.compare(s, prices)
    prompt, _api_ft, small = cmp.plans
    assert small.name == "distilled small model (t4)"
    # its one-time cost is the distillation's, not the API's training price
    assert small.one_time == pytest.approx(costs.distillation_cost(d, s.workload, prices.rates("gpt-4o"), 0.35))
    be = cmp.break_evens[1]
    # pay-per-hour: per request (50/4000 + 200/400) s of a $0.35 GPU hour against the prompted gpt-4o request
    want = small.one_time / 12 / (prompt.per_request - (50 / 4000 + 200 / 400) * 0.35 / 3600)
    assert be.volume == pytest.approx(want)
    assert small.monthly(be.volume) == pytest.approx(prompt.monthly(be.volume))
    # an always-on GPU moves the break-even up: the GPU's month must be paid for first
    on = costs.compare(costs.Scenario(model="gpt-4o", distillation=d, self_hosted=costs.SelfHosted(
        gpu_hour=0.35, output_tokens_per_second=400, prompt_tokens_per_second=4000,
        min_hours_per_month=costs.HOURS_PER_MONTH)), prices)
    assert on.break_evens[1].volume > be.volume


def test_distillation_needs_a_self_hosted_model_and_sane_numbers(prices):
    with pytest.raises(InputError, match="self-hosted") as err:
        costs.compare(costs.Scenario(distillation=costs.Distillation()), prices)
    assert err.value.field == "self_hosted"
    with pytest.raises(InputError, match="examples"):
        costs.Distillation(examples=-1)
    with pytest.raises(InputError, match="training_gpu_hours"):
        costs.Distillation(training_gpu_hours=float("nan"))
