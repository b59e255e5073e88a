"""Checks for exercise 02, context-window economics: price a scenario, find its break-even, explain the flips.

The scenario's numbers live here (``SCENARIO``) and the notebook displays them, so the checks never depend
on the learner's copy of ``data/pricing.yaml``. Expected values are computed with plain arithmetic, not
with ``personalab.costs``, so a bug there cannot make a wrong answer pass.
"""

from __future__ import annotations

import math

from . import Credit, Exercise, Incorrect, expect_close, expect_keys, expect_type

EXERCISE = Exercise("02", "Context-window economics")

#: The scenario of questions 1-3 (prices in US dollars per 1M tokens).
SCENARIO = {
    "persona_tokens": 800,
    "user_tokens": 60,
    "response_tokens": 150,
    "requests_per_month": 200_000,
    "price_input": 0.40,
    "price_output": 1.60,
    "finetuned_input": 0.80,
    "finetuned_output": 3.20,
    "training_price": 5.00,
    "training_file_tokens": 1_500_000,
    "epochs": 3,
    "months": 12,
}
S = SCENARIO


def _per_request(prompt_tokens: float, fine_tuned: bool) -> float:
    pin, pout = (S["finetuned_input"], S["finetuned_output"]) if fine_tuned else (S["price_input"], S["price_output"])
    return ((prompt_tokens + S["user_tokens"]) * pin + S["response_tokens"] * pout) / 1e6


def expected_q1() -> dict[str, float]:
    prompt = _per_request(S["persona_tokens"], False)
    ft = _per_request(0, True)
    n = S["requests_per_month"]
    return {
        "prompt_per_request": prompt,
        "prompt_monthly": prompt * n,
        "finetuned_per_request": ft,
        "finetuned_monthly": ft * n,
    }


def expected_training() -> float:
    return S["training_file_tokens"] * S["epochs"] * S["training_price"] / 1e6


def expected_break_even(persona_tokens: float) -> float | None:
    saving = _per_request(persona_tokens, False) - _per_request(0, True)
    if saving <= 0:
        return None
    return expected_training() / S["months"] / saving


def expected_threshold(turns: int) -> float:
    """Persona size where a fine-tuned request (no prompt) costs the same as a prompted one, over ``turns``."""
    u, r = S["user_tokens"], S["response_tokens"]
    # total over one conversation: inputs grow by (u + r) per turn; the persona is sent every turn
    history = turns * u + turns * (turns - 1) / 2 * (u + r)
    ft = history * S["finetuned_input"] + turns * r * S["finetuned_output"]
    prompt_without_persona = history * S["price_input"] + turns * r * S["price_output"]
    return (ft - prompt_without_persona) / (turns * S["price_input"])


@EXERCISE.question(
    "Price the scenario",
    names=["q1_answer"],
    points=2,
    hints=(
        "Input tokens of a system-prompted request are persona + user; a fine-tuned request sends only the user "
        "message. Output tokens are the response. Prices are per 1M tokens, so divide by 1,000,000.",
        "costs.per_request_cost(costs.Workload(800, 60, 150), costs.Rates(input=0.40, output=1.60)) gives the "
        "first value; pass finetuned=True and the fine-tuned rates for the third.",
    ),
)
def q1(q1_answer):
    want = expected_q1()
    expect_keys(q1_answer, list(want), "q1_answer")
    wrong = []
    for key, value in want.items():
        try:
            expect_close(q1_answer[key], value, f"q1_answer['{key}']", rel=1e-4, abs=0)
        except Incorrect as exc:
            wrong.append(exc.message)
    if not wrong:
        return "both approaches priced correctly: here the fine-tuned model is cheaper per request"
    hint = ""
    got = q1_answer.get("prompt_per_request")
    if isinstance(got, (int, float)) and math.isclose(got, want["prompt_per_request"] * 1e6, rel_tol=1e-4):
        hint = " (it looks like the prices were not divided by 1,000,000)"
    raise Incorrect(wrong[0] + hint, credit=(len(want) - len(wrong)) / len(want))


@EXERCISE.question(
    "Break-even volume",
    names=["training_usd", "break_even_requests", "break_even_persona_500"],
    points=2,
    hints=(
        "Training cost = training file tokens x epochs x training price / 1M. Spread it over 12 months, then "
        "divide by what fine-tuning saves per request.",
        "With a 500-token persona, compare the two per-request costs first: if fine-tuning saves nothing, the "
        "answer is None.",
    ),
)
def q2(training_usd, break_even_requests, break_even_persona_500):
    expect_close(training_usd, expected_training(), "training_usd", rel=1e-6, abs=0)
    want = expected_break_even(S["persona_tokens"])
    expect_close(break_even_requests, want, "break_even_requests", rel=1e-3, abs=0)
    if break_even_persona_500 is not None:
        raise Incorrect(
            "with a 500-token persona the fine-tuned request is not cheaper, so no volume breaks even: "
            "`break_even_persona_500` should be None",
            credit=2 / 3,
        )
    return "right: above that volume fine-tuning pays off; with a 500-token persona it never does"


@EXERCISE.question(
    "How long must the persona be?",
    names=["threshold_1_turn", "threshold_10_turns"],
    points=2,
    hints=(
        "One turn, fine-tuned prices 2x, no prompt: the persona must be longer than user + response x "
        "(output price / input price).",
        "For 10 turns, costs.persona_break_even_tokens(costs.Workload(0, 60, 150, turns=10), base, ft) does it; "
        "or sum the history over the turns by hand.",
    ),
)
def q3(threshold_1_turn, threshold_10_turns):
    expect_type(threshold_1_turn, (int, float), "threshold_1_turn")
    expect_type(threshold_10_turns, (int, float), "threshold_10_turns")
    one, ten = expected_threshold(1), expected_threshold(10)
    expect_close(threshold_1_turn, one, "threshold_1_turn", rel=0, abs=1)
    try:
        expect_close(threshold_10_turns, ten, "threshold_10_turns", rel=0, abs=1)
    except Incorrect as exc:
        note = ""
        if abs(threshold_10_turns - one) <= 1:
            note = "; over 10 turns the fine-tuned price premium also applies to the growing history"
        raise Incorrect(exc.message + note, credit=0.5) from None
    return "right: longer conversations raise the bar for fine-tuning at 2x prices"


CLAIMS = {
    "a": (False, "Longer conversations make fine-tuning (at 2x token prices) cheaper relative to the system prompt."),
    "b": (True, "Prompt caching only changes the bill once a prompt reaches 1024 tokens."),
    "c": (
        True,
        "If a fine-tuned request costs more than a system-prompted one, no monthly volume makes "
        "fine-tuning cheaper on API pricing.",
    ),
    "d": (True, "A one-time training cost moves the break-even volume, but does not decide whether one exists."),
    "e": (False, "A self-hosted model on an always-on GPU is the cheapest option at low volume."),
}


@EXERCISE.question(
    "When does the decision flip?",
    names=["claims"],
    points=2,
    hints=(
        "Use the threshold plot of the lesson for (a) and (b), and the break-even formula for (c) and (d).",
        "An always-on GPU costs its hourly price x 730 hours a month, even at one request.",
    ),
)
def q4(claims):
    expect_keys(claims, list(CLAIMS), "claims")
    wrong = []
    for key, (truth, text) in CLAIMS.items():
        value = claims[key]
        if not isinstance(value, bool):
            raise Incorrect(f"`claims['{key}']` must be True or False, got {value!r}")
        if value is not truth:
            wrong.append(f"({key}) {text}")
    if not wrong:
        return "all five judged correctly"
    return Credit((len(CLAIMS) - len(wrong)) / len(CLAIMS), "look again at: " + " | ".join(wrong[:2]))


def _fit_ms_per_100(rows) -> float:
    pts = [(r.get("prompt_tokens") or r.get("system_prompt_tokens"), r.get("ttft_ms")) for r in rows]
    pts = [(float(x), float(y)) for x, y in pts if isinstance(x, (int, float)) and isinstance(y, (int, float))]
    if len(pts) < 2:
        raise Incorrect("`latency_rows` needs at least two prompt sizes with a time to first token")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        raise Incorrect("all rows of `latency_rows` have the same prompt size: measure at least two sizes")
    return 100 * sum((x - mx) * (y - my) for x, y in pts) / sxx


@EXERCISE.question(
    "Your own latency slope",
    names=["latency_rows", "ms_per_100_tokens"],
    points=1,
    needs_model=True,
    hints=(
        "latency.measure((0, 200, 800), repeats=2).rows() gives the rows; fit a line through "
        "(prompt_tokens, ttft_ms) and multiply its slope by 100.",
    ),
)
def q5(latency_rows, ms_per_100_tokens):
    if not isinstance(latency_rows, list) or not all(isinstance(r, dict) for r in latency_rows):
        raise Incorrect("`latency_rows` should be the list of dicts returned by `table.rows()`")
    expect_type(ms_per_100_tokens, (int, float), "ms_per_100_tokens")
    want = _fit_ms_per_100(latency_rows)
    expect_close(ms_per_100_tokens, want, "ms_per_100_tokens", rel=0.02, abs=0.01)
    return "matches the slope of your own measurements"
