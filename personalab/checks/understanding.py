""""Check your understanding": two short questions at the end of every lesson, about what the learner just
measured or saw (not trivia). Each answer is checked against the lesson's own variables, so the right answer
is whatever the learner's run produced.

    u1, u2 = lesson("01").questions
    # marker_gain = ...
    u1.check()          # u1.hint() when stuck
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..decision import APPROACHES
from ..evidence import overlap
from . import Exercise, Incorrect, expect_type

#: How far a number read off a printed table may be from the measured one (the tables round to 1 %).
READ_TOLERANCE = 0.02


def _number(value: Any, name: str) -> float:
    expect_type(value, (int, float), name)
    if isinstance(value, bool):
        raise Incorrect(f"`{name}` should be a number, not True/False")
    return float(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise Incorrect(f"`{name}` should be True or False, got {value!r}")
    return value


def _close(answer: float, want: float, name: str, what: str, tolerance: float = READ_TOLERANCE) -> str:
    if abs(answer - want) > tolerance:
        raise Incorrect(f"`{name}` is {answer:g}, but your run measured {want:.2f} for {what}: read the numbers "
                        "printed above again")
    return f"right: your run measured {want:.2f} for {what}"


def _measured(value: Any, name: str) -> Any:
    if value is None or (isinstance(value, Mapping) and "__opaque__" in value):
        raise Incorrect(f"`{name}` holds no measurement: run the lesson's cells from the top first")
    return value


# ------------------------------------------------------------------------------------------- lesson 00
L00 = Exercise("L00", "Check your understanding: lesson 00")


@L00.question("How big is your base model?", names=["parameters_millions", "base"],
              hints=["`base` (printed above) counts the parameters; divide by 1,000,000."])
def _l00_size(parameters_millions: Any, base: Any) -> str:
    want = _measured(base, "base")["parameters"] / 1e6
    return _close(_number(parameters_millions, "parameters_millions"), want, "parameters_millions",
                  "the parameters in millions", tolerance=max(1.0, 0.01 * want))


@L00.question("How much can it read at once?", names=["context_tokens", "base"],
              hints=["The base model's context window, in tokens, is in `base` above."])
def _l00_context(context_tokens: Any, base: Any) -> str:
    want = _measured(base, "base")["context_window"]
    if _number(context_tokens, "context_tokens") != want:
        raise Incorrect(f"`context_tokens` is {context_tokens:g}; look for 'context_window' in `base`")
    return (f"right: {want:,} tokens for prompt, history and reply together; lesson 05 shows what happens when a "
            "conversation outgrows a window")


# ------------------------------------------------------------------------------------------- lesson 01
L01 = Exercise("L01", "Check your understanding: lesson 01")


@L01.question("What the prompt adds, in your numbers", names=["marker_gain", "rates"],
              hints=["Subtract the rate without a prompt from the rate with TaskMaster's prompt, both printed above.",
                     "`rates['TaskMaster prompt'] - rates['no system prompt']`, as a number (0.25, not 25 %)."])
def _l01_gain(marker_gain: Any, rates: Any) -> str:
    rates = _measured(rates, "rates")
    want = rates["TaskMaster prompt"] - rates["no system prompt"]
    return _close(_number(marker_gain, "marker_gain"), want, "marker_gain",
                  "the marker rate with the prompt minus without")


@L01.question("Does the prompt steer this model?", names=["prompt_steers", "rates"],
              hints=["Does the prompt put a marker into at least half of the replies that had none without it? "
                     "Compare the two rates."])
def _l01_steers(prompt_steers: Any, rates: Any) -> str:
    rates = _measured(rates, "rates")
    gain = rates["TaskMaster prompt"] - rates["no system prompt"]
    want = gain >= 0.5
    if _flag(prompt_steers, "prompt_steers") != want:
        raise Incorrect(f"your run measured a gain of {gain:.0%}: " + (
            "at least half of the replies changed, so the prompt does steer this model" if want else
            "fewer than half of the replies gained a marker, so on this model the prompt steers only weakly"))
    return ("yes: the prompt carries the persona on this model" if want else
            "right: a small model follows a long persona prompt only loosely; lesson 04 tries the weights instead")


@L01.question("Did the examples beat the noise?", names=["few_shot_intervals_overlap", "few_shot_rows"],
              hints=["`few_shot_rows` (the few-shot table above) gives each prompt's 'replies with a marker' with "
                     "its 95 % interval. Do the two intervals share any value?",
                     "True if they overlap, False if one lies entirely above the other."])
def _l01_fewshot(few_shot_intervals_overlap: Any, few_shot_rows: Any) -> str:
    rows = _measured(few_shot_rows, "few_shot_rows")
    if not isinstance(rows, list) or len(rows) < 2 or not all("marker low" in r for r in rows):
        raise Incorrect("`few_shot_rows` holds no few-shot measurement: run the few-shot cells first")
    plain, shot = rows[0], rows[-1]
    want = overlap(plain["marker low"], plain["marker high"], shot["marker low"], shot["marker high"])
    if _flag(few_shot_intervals_overlap, "few_shot_intervals_overlap") != want:
        raise Incorrect(f"{plain['prompt']}: {plain['replies with a marker']}; {shot['prompt']}: "
                        f"{shot['replies with a marker']}. Do the two intervals share a value?")
    return ("right: they overlap, so with this many requests the run cannot tell whether the examples helped; "
            "the extra prompt tokens, on the other hand, are certain" if want else
            "right: they do not overlap, so the difference is larger than the noise of a dozen replies")


# ------------------------------------------------------------------------------------------- lesson 02
L02 = Exercise("L02", "Check your understanding: lesson 02")


@L02.question("What the persona costs on every request", names=["tokens_per_request", "persona_tokens"],
              hints=["It is printed as 'the persona adds N billed tokens to every request'."])
def _l02_tokens(tokens_per_request: Any, persona_tokens: Any) -> str:
    want = float(_measured(persona_tokens, "persona_tokens"))
    if _number(tokens_per_request, "tokens_per_request") != want:
        raise Incorrect(f"`tokens_per_request` is {tokens_per_request:g}; the count above says {want:g}, text and "
                        "message overhead together")
    return f"right: {want:g} tokens, paid again on every request and every turn of a conversation"


@L02.question("Which is cheaper at 500,000 requests a month?", names=["cheaper_at_500k", "monthly"],
              hints=["Compare the two monthly costs printed for TaskMaster's real size: 'system prompt' or "
                     "'fine-tuned'."])
def _l02_cheaper(cheaper_at_500k: Any, monthly: Any) -> str:
    monthly = _measured(monthly, "monthly")
    want = min(monthly, key=monthly.get)
    if cheaper_at_500k not in monthly:
        raise Incorrect(f"answer one of {', '.join(map(repr, monthly))}")
    if cheaper_at_500k != want:
        raise Incorrect(f"at 500,000 requests the {want} costs less per month in your run: "
                        + ", ".join(f"{k} ${v:,.2f}" for k, v in monthly.items()))
    return (f"right: {want}. A fine-tuned model's higher price per token can outweigh the persona tokens it saves, "
            "which is why the article's crossover claim needs checking")


@L02.question("Does the distilled model pay at 500,000 requests a month?",
              names=["distilled_cheaper_at_500k", "distill_break_even"],
              hints=["Read the break-even printed for gpt-4o-mini with an always-on T4 (`distill_break_even`).",
                     "True if that break-even is at or below 500,000 requests a month, False if it is above or "
                     "there is none."])
def _l02_distilled(distilled_cheaper_at_500k: Any, distill_break_even: Any) -> str:
    evens = _measured(distill_break_even, "distill_break_even")
    volume = evens["gpt-4o-mini"]["always on"]
    want = volume is not None and volume <= 500_000
    if _flag(distilled_cheaper_at_500k, "distilled_cheaper_at_500k") != want:
        said = "no volume" if volume is None else f"{volume:,.0f} requests a month"
        raise Incorrect(f"your run puts the break-even with an always-on T4 at {said}: is 500,000 above it?")
    if want:
        return (f"right: above {volume:,.0f} requests a month the small model's GPU is busy enough to pay for "
                "itself; below it, the idle hours of the GPU cost more than the API calls")
    return ("right: at 500,000 requests the always-on GPU's month costs more than the cheap API calls it "
            "replaces; a pricier teacher (gpt-4o) or a GPU paid per hour moves the break-even down")


# ------------------------------------------------------------------------------------------- lesson 03
L03 = Exercise("L03", "Check your understanding: lesson 03")


@L03.question("How much of the dataset shows the persona?", names=["marker_share", "coverage"],
              hints=["The marker coverage above: the share of assistant replies with at least one marker, as a "
                     "number from 0 to 1 (`coverage['coverage']`)."])
def _l03_markers(marker_share: Any, coverage: Any) -> str:
    want = _measured(coverage, "coverage")["coverage"]
    return _close(_number(marker_share, "marker_share"), want, "marker_share",
                  "the share of training replies with a marker") + \
        ": the model learns the persona from these replies, so it can only be as consistent as they are"


@L03.question("What would OpenAI charge to train on it?", names=["training_cost_usd", "openai_cost"],
              hints=["The line 'OpenAI fine-tuning of gpt-4o-mini: … = $…' above, in dollars."])
def _l03_cost(training_cost_usd: Any, openai_cost: Any) -> str:
    want = float(_measured(openai_cost, "openai_cost")["cost_usd"])
    return _close(_number(training_cost_usd, "training_cost_usd"), want, "training_cost_usd",
                  "the training cost in dollars", tolerance=max(0.0001, 0.05 * want)) + \
        ": lesson 02's break-even adds it to fine-tuning's side"


# ------------------------------------------------------------------------------------------- lesson 04
L04 = Exercise("L04", "Check your understanding: lesson 04")


@L04.question("How much the persona moved into the weights", names=["marker_rate_change", "before", "after"],
              hints=["The table prints the marker rate of 'base, no prompt' and 'fine-tuned, no prompt'.",
                     "`after['rate'] - before['rate']`, as a number from -1 to 1."])
def _l04_change(marker_rate_change: Any, before: Any, after: Any) -> str:
    want = _measured(after, "after")["rate"] - _measured(before, "before")["rate"]
    return _close(_number(marker_rate_change, "marker_rate_change"), want, "marker_rate_change",
                  "the marker rate without a prompt, after minus before")


@L04.question("Is it still a working assistant?", names=["still_fluent", "after"],
              hints=["Look at the 'fluent' column of the fine-tuned row: are at least 80 % of its replies fluent?"])
def _l04_fluent(still_fluent: Any, after: Any) -> str:
    rate = _measured(after, "after")["fluent_rate"]
    want = rate >= 0.8
    if _flag(still_fluent, "still_fluent") != want:
        raise Incorrect(f"your fine-tuned model wrote {rate:.0%} fluent replies (the bar is 80 %)")
    return (f"right: {rate:.0%} fluent. Markers alone prove nothing: a model can learn the catchphrases and "
            "forget how to write" if want else
            f"right: only {rate:.0%} fluent: lower the learning rate or train for fewer steps")


@L04.question("How much data did the persona need?", names=["fewest_examples", "curve"],
              hints=["`curve.summary()` prints the marker count of every run; find the first run with at least "
                     "90 % of its replies marked.",
                     "`curve.smallest('markers', 0.9)` gives it; None if no run got there."])
def _l04_curve(fewest_examples: Any, curve: Any) -> str:
    from ..errors import InputError
    from ..learning_curve import LearningCurve

    try:  # the learner's object in the notebook, its exported data in the gradebook
        curve = curve if isinstance(curve, LearningCurve) else LearningCurve.from_json(curve)
    except (InputError, AttributeError, TypeError):
        raise Incorrect("`curve` is not a learning curve: run section 10's cell first") from None
    want = curve.smallest("markers", 0.9)
    if want is None:
        if fewest_examples is not None:
            raise Incorrect("no run of this curve reached 90 % markers: the answer is None")
        return "right: no run reached 90 %: more steps or a higher learning rate, not only more data"
    got = _number(fewest_examples, "fewest_examples")
    if got != want:
        raise Incorrect(f"{got:g} is not the smallest run with 90 % markers; read the marker counts again")
    return (f"right: {want} examples. A style is cheap to learn; check in the same runs whether fluency and the "
            "task facts held at that size too")


# ------------------------------------------------------------------------------------------- lesson 05
L05 = Exercise("L05", "Check your understanding: lesson 05")


@L05.question("Can this run tell the two apart?", names=["intervals_overlap", "held_all"],
              hints=["`held_all` (printed above) has each target's 'persona held' rate over all attacks with its "
                     "interval [low, high]. Do the prompted and the fine-tuned intervals share any value?"])
def _l05_overlap(intervals_overlap: Any, held_all: Any) -> str:
    held_all = _measured(held_all, "held_all")
    names = {k.split(" ")[0]: v for k, v in held_all.items()}
    p, f = names["prompted"], names["fine-tuned"]
    want = overlap(p["low"], p["high"], f["low"], f["high"])
    if _flag(intervals_overlap, "intervals_overlap") != want:
        raise Incorrect(f"prompted [{p['low']:.0%}, {p['high']:.0%}] and fine-tuned [{f['low']:.0%}, "
                        f"{f['high']:.0%}]: do they share a value?")
    return ("right: they overlap, so this run cannot say which target resists better; more attacks would narrow "
            "the intervals" if want else
            "right: they do not overlap, so the difference is more than the noise of this run")


@L05.question("Faded, or unusable?", names=["prompted_unusable_share", "drift_rules"],
              hints=["The line 'prompted  N of M replies unusable (X %)' answers it, as a number from 0 to 1."])
def _l05_unusable(prompted_unusable_share: Any, drift_rules: Any) -> str:
    drift_rules = _measured(drift_rules, "drift_rules")
    name = next(k for k in drift_rules if k.startswith("prompted"))
    want = drift_rules[name]["unusable_share"]
    msg = _close(_number(prompted_unusable_share, "prompted_unusable_share"), want, "prompted_unusable_share",
                 "the share of the prompted target's drift replies the fluency gate rejected")
    return msg + ": those score 0, so a low curve can mean broken text rather than a faded persona"


# ------------------------------------------------------------------------------------------- lesson 06
L06 = Exercise("L06", "Check your understanding: lesson 06")


@L06.question("The framework with your numbers", names=["approach_with_your_numbers", "measured"],
              hints=["The first line of the recommendation printed with your evidence."])
def _l06_approach(approach_with_your_numbers: Any, measured: Any) -> str:
    want = _measured(measured, "measured")["approach"]
    if approach_with_your_numbers not in APPROACHES:
        raise Incorrect(f"answer one of {', '.join(map(repr, APPROACHES))}")
    if approach_with_your_numbers != want:
        raise Incorrect("read the first line of the recommendation made with your evidence again")
    return f"right: {want}"


@L06.question("Where your measurement overruled the article", names=["overruled", "article", "measured"],
              hints=["Compare the factors of the two recommendations (the article's thresholds, then your "
                     "evidence): which factor names favour a different approach?",
                     "A list of factor names such as ['volume']; an empty list if none changed."])
def _l06_overruled(overruled: Any, article: Any, measured: Any) -> str:
    a = {f["name"]: f["favours"] for f in _measured(article, "article")["factors"]}
    m = {f["name"]: f["favours"] for f in _measured(measured, "measured")["factors"]}
    want = sorted(k for k in a if a[k] != m.get(k))
    expect_type(overruled, (list, tuple, set), "overruled")
    if sorted(overruled) != want:
        raise Incorrect(f"{len(want)} factor(s) favour a different approach once your numbers are used; "
                        "compare the two lists of reasons factor by factor")
    return ("right: " + ", ".join(want) + ": the measurement, not the rule of thumb, decides there") if want else \
        "right: none: your measurements agree with the article's rules of thumb on this case"


@L06.question("What a persona change costs in time", names=["change_slowdown", "change_rows"],
              hints=["`change_rows` (the table 'What a persona change costs, both ways'): divide the fine-tuned "
                     "row's 'until the new voice answers, s' by the prompt row's.",
                     "A number such as 250 (times slower); it needs lesson 04's training record."])
def _l06_change(change_slowdown: Any, change_rows: Any) -> str:
    rows = {r["approach"]: r for r in _measured(change_rows, "change_rows")}
    prompt = rows["edit the system prompt"]["until the new voice answers, s"]
    tuned = rows["fine-tune again"]["until the new voice answers, s"]
    if prompt is None or tuned is None:
        raise Incorrect("a time is missing from the table: run lesson 04 (its training) and section 1 of this "
                        "lesson, then this cell again")
    want = tuned / prompt
    answer = _number(change_slowdown, "change_slowdown")
    if abs(answer - want) > max(1.0, 0.05 * want):
        raise Incorrect(f"`change_slowdown` is {answer:g}; your two times give {want:,.0f}: read the table again")
    return (f"right: about {want:,.0f} times, and that is only the machine's part: the dataset must be "
            "regenerated and the new model evaluated too")


LESSONS = {"00": L00, "01": L01, "02": L02, "03": L03, "04": L04, "05": L05, "06": L06}


def lesson(number: str) -> Exercise:
    """The "check your understanding" questions of lesson ``number`` ('00' to '06')."""
    return LESSONS[number]
