"""Checks for exercise 06: a recommendation reasoned from measured figures and the learner's own priorities.

Each case (``CASE_A``, ``CASE_B``) comes with four figures, one per factor (:data:`FACTORS`): the monthly
cost at the case's volume (lesson 02's cost model), late-turn adherence and the persona-held rate under
attack with their 95 % intervals and n (lesson 05), and the time one persona change takes (lessons 04 and
06). :func:`case_figures` reads them from the learner's saved results and fills what is missing from the
supplied, labelled set in ``data/exercises/ex06_cases.json``.

The learner answers with a dict: ``priorities`` (the four factors, most important first), ``recommendation``
and ``reasons`` (per factor: which approach its figure favours, or ``"does not decide"``, and the numbers
read). The checks grade the *reading* against the figures (an overlap of intervals decides nothing) and the
*recommendation* against the learner's own ranking: the first factor in it that the figures decide sets
the direction. Different priorities make different recommendations right; ``decision.recommend()`` knows
nothing of them, and its output has neither priorities nor per-factor readings.

The grader rebuilds every figure from the raw numbers exported with the answer and checks that a figure
labelled "supplied" matches the data file; a figure labelled "yours" is taken as the learner's kernel read it.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .. import costs
from ..config import DATA_DIR
from ..decision import APPROACHES, FINE_TUNING, HYBRID, MAX_UNUSABLE, SYSTEM_PROMPT, Thresholds
from ..errors import InputError
from ..evidence import duration, interval, overlap
from . import Credit, Exercise, Incorrect, describe, expect_keys

EXERCISE = Exercise("06", "Approach analysis from measured figures")

CASES_PATH = DATA_DIR / "exercises" / "ex06_cases.json"

FACTORS = ("cost", "consistency", "injection", "time to change")
NOT_DECIDED = "does not decide"
VERDICTS = (SYSTEM_PROMPT, FINE_TUNING, NOT_DECIDED)
ANSWER_KEYS = ("priorities", "recommendation", "reasons")
SIDES = {"prompted": SYSTEM_PROMPT, "fine-tuned": FINE_TUNING}
MIN_GAP = Thresholds().min_gap  # a gap between rates smaller than this decides nothing (as in recommend())
TIME_RATIO = 2.0  # one timing per side: it decides only when one side is at least this many times faster
COST_TOLERANCE = 0.005  # monthly costs within 0.5 % of each other decide nothing
MONTHS = 12  # one-time training cost spread over a year, as in lesson 02

CASE_A = {
    "name": "TaskMaster in the Task API's mobile app",
    "daily_active_users": 8_000,
    "requests_per_user_per_day": 1.5,
    "days_per_month": 30,
    "monthly_requests": 8_000 * 1.5 * 30,
    "changes_per_month": 2 / 12,
    "stability": "The brand team reviews TaskMaster's voice twice a year; nothing changes in between.",
    "security": "The app is public: anyone who installs it can chat with TaskMaster.",
    "consistency": "Marketing calls TaskMaster's voice brand-critical: it is what reviewers quote.",
}

CASE_B = {
    "name": "An internal TaskMaster for four departments",
    "employees": 300,
    "requests_per_employee_per_month": 40,
    "monthly_requests": 300 * 40,
    "departments": ["marketing", "engineering", "sales", "finance"],
    "changes_per_month": 4 * 52 / 12,
    "stability": "Each department adjusts its flavour of TaskMaster every week (this week's campaign, sprint, "
                 "quarter-end push): four changes a week in all.",
    "security": "Only employees can reach it, behind the company's single sign-on.",
    "consistency": "The shared TaskMaster voice must be the same in every department: leadership calls it "
                   "brand-critical.",
}

#: Persona elements for the hybrid design of case B -> where they belong.
ELEMENTS = {
    "traits (encouraging, action-oriented)": "core",
    "response pattern (acknowledge, inform, next step)": "core",
    "catchphrases (Great choice!, Nice work!)": "core",
    "rules (never condescending, no excessive punctuation)": "core",
    "department terminology (campaign, sprint, lead)": "overlay",
    "this week's focus": "overlay",
    "end-of-quarter urgency": "overlay",
}


# --------------------------------------------------------------------------------------------- figures
@functools.cache
def _supplied_file() -> dict[str, Any]:
    try:
        data = json.loads(CASES_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {CASES_PATH}: {err}", path=CASES_PATH,
                         fix="restore data/exercises/ex06_cases.json from the course repository") from None
    missing = [f for f in ("recorded", *FACTORS) if f not in data]
    if missing:
        raise InputError(f"{CASES_PATH} lacks {', '.join(missing)}", path=CASES_PATH, field=missing[0],
                         fix="restore data/exercises/ex06_cases.json from the course repository")
    return data


def supplied() -> dict[str, Any]:
    """The supplied raw figures (a copy of ``data/exercises/ex06_cases.json``)."""
    return json.loads(json.dumps(_supplied_file()))


def _own_raw(records: Mapping[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """Raw figures from the learner's saved results, per factor, with their source (what is missing is left out)."""
    from ..evidence import Evidence
    from ..results import origin, record_data

    out: dict[str, tuple[dict[str, Any], str]] = {}
    c = record_data(records, "02/costs")
    if c and all(isinstance(c.get(k), (int, float)) for k in ("persona_tokens", "user_tokens", "response_tokens")):
        ds = record_data(records, "03/dataset") or {}
        training = ds.get("openai_training_cost_usd")
        raw = {"lesson": "02", "model": c.get("model", "gpt-4o-mini"), "persona_tokens": c["persona_tokens"],
               "user_tokens": c["user_tokens"], "response_tokens": c["response_tokens"],
               "training_cost_usd": float(training) if isinstance(training, (int, float)) else None,
               "price_date": c.get("price_date", "?")}
        out["cost"] = (raw, origin(records, "02/costs"))
    ev = Evidence.from_results(records)
    for factor, ci, unusable, source in (
        ("consistency", ev.drift_late_score_ci, ev.drift_unusable, ev.drift_source),
        ("injection", ev.injection_held_ci, ev.injection_unusable, ev.injection_source),
    ):
        if ci and all(ci.get(k) for k in SIDES):
            out[factor] = ({"lesson": "05", **{k: dict(ci[k]) for k in SIDES},
                            "unusable": {k: float((unusable or {}).get(k, 0.0)) for k in SIDES}}, source)
    if ev.retrain_s is not None and ev.prompt_change_s is not None:
        out["time to change"] = ({"lesson": "04 and 06", "retrain_s": ev.retrain_s,
                                  "prompt_change_s": ev.prompt_change_s},
                                 f"{ev.retrain_source}; {ev.prompt_change_source}")
    return out


class Figures(dict):
    """One case's figures, factor -> figure (plain data: it travels to the gradebook with the answer)."""

    def lines(self) -> list[str]:
        return [f"{f:15} {self[f]['text']}  [{self[f]['source']}]" for f in FACTORS if f in self]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(f)}</td><td>{html.escape(self[f]['text'])}</td>"
                       f"<td>{html.escape(self[f]['source'])}</td></tr>" for f in FACTORS if f in self)
        return f"<table><tr><th>factor</th><th>figure</th><th>source</th></tr>{rows}</table>"


def case_figures(case: Mapping[str, Any], records: Mapping[str, Any] | None = None) -> Figures:
    """The four figures for ``case``: the learner's own where saved (``results.load_all()`` by default), else
    the supplied ones. Each carries ``raw`` (the numbers it is built from), ``source`` ('yours: ...' or
    'supplied: ...') and ``text`` (the numbers as a sentence)."""
    if records is None:
        from .. import results

        records = results.load_all()
    own = _own_raw(records)
    data = _supplied_file()
    figs = Figures()
    for factor in FACTORS:
        if factor in own:
            raw, src = own[factor]
            source = f"yours: {src}"
        else:
            raw, source = data[factor], f"supplied: {data['recorded']}"
        figs[factor] = build_figure(factor, raw, case, source)
    return figs


def build_figure(factor: str, raw: Mapping[str, Any], case: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A figure from its raw numbers: the two sides' values (with intervals where measured) and a text."""
    if factor == "cost":
        return _cost_figure(raw, case, source)
    if factor == "time to change":
        return _time_figure(raw, case, source)
    if factor in ("consistency", "injection"):
        return _gap_figure(factor, raw, source)
    raise ValueError(f"unknown factor {factor!r}")


def _cost_figure(raw: Mapping[str, Any], case: Mapping[str, Any], source: str) -> dict[str, Any]:
    volume = float(case["monthly_requests"])
    training = raw.get("training_cost_usd")
    scenario = costs.Scenario(model=str(raw["model"]), requests_per_month=volume,
                              persona_tokens=float(raw["persona_tokens"]), user_tokens=float(raw["user_tokens"]),
                              response_tokens=float(raw["response_tokens"]),
                              training_cost=float(training) if training is not None else None, months=MONTHS)
    rows = {r["plan"]: r for r in costs.compare(scenario).rows()}
    sp, ft = rows["system prompt"], rows["fine-tuned (API)"]
    usd = costs.fmt_usd
    text = (f"per month at {volume:,.0f} requests: system prompt ${usd(sp['monthly_incl_one_time_usd'])}, "
            f"fine-tuned ${usd(ft['monthly_incl_one_time_usd'])} (per request ${usd(sp['per_request_usd'])} vs "
            f"${usd(ft['per_request_usd'])}; "
            + (f"training ${usd(ft['one_time_usd'])} over {MONTHS} months" if training is not None
               else "no training cost saved: run lesson 03")
            + f"; {raw['model']}, {raw['persona_tokens']:g}-token persona, prices of {raw.get('price_date', '?')})")
    return {"factor": "cost", "measure": "USD per month, lower is better", "lower_is_better": True,
            "prompted": {"value": sp["monthly_incl_one_time_usd"], "per_request": sp["per_request_usd"]},
            "fine-tuned": {"value": ft["monthly_incl_one_time_usd"], "per_request": ft["per_request_usd"]},
            "raw": dict(raw), "source": source, "text": text}


def _time_figure(raw: Mapping[str, Any], case: Mapping[str, Any], source: str) -> dict[str, Any]:
    per_month = float(case["changes_per_month"])
    p, f = float(raw["prompt_change_s"]), float(raw["retrain_s"])
    text = (f"one persona change: prompt edit {duration(p)}, retraining {duration(f)} (one timing each, n=1); "
            f"at {per_month:.2g} changes a month: {duration(p * per_month)} vs {duration(f * per_month)} a month")
    return {"factor": "time to change", "measure": "seconds per change, lower is better", "lower_is_better": True,
            "prompted": {"value": p, "per_month": p * per_month},
            "fine-tuned": {"value": f, "per_month": f * per_month},
            "raw": dict(raw), "source": source, "text": text}


_MEASURES = {"consistency": ("adherence in the last turns (0-1, higher is better)", False),
             "injection": ("persona held under attack (higher is better)", True)}


def _gap_figure(factor: str, raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    measure, pct = _MEASURES[factor]
    sides = {k: {x: float(raw[k][x]) for x in ("value", "low", "high")} | {"n": int(raw[k]["n"])} for k in SIDES}
    unusable = {k: float((raw.get("unusable") or {}).get(k, 0.0)) for k in SIDES}
    text = (f"{measure.split(' (')[0]}: prompted {interval(sides['prompted']['value'], sides['prompted'], pct)}, "
            f"fine-tuned {interval(sides['fine-tuned']['value'], sides['fine-tuned'], pct)}; unusable replies: "
            f"prompted {unusable['prompted']:.0%}, fine-tuned {unusable['fine-tuned']:.0%}")
    return {"factor": factor, "measure": measure, "lower_is_better": False, **sides, "unusable": unusable,
            "raw": dict(raw), "source": source, "text": text}


# --------------------------------------------------------------------------------------------- reading
def reading(figure: Mapping[str, Any]) -> tuple[str, str]:
    """(which approach a figure favours, or :data:`NOT_DECIDED`; why) — the rule the learner applies by hand."""
    p, f = figure["prompted"], figure["fine-tuned"]
    name = figure["factor"]
    if name == "cost":
        a, b = p["value"], f["value"]
        if abs(a - b) <= COST_TOLERANCE * max(a, b):
            return NOT_DECIDED, "the two monthly costs are within 0.5 % of each other"
        return (SYSTEM_PROMPT if a < b else FINE_TUNING), "the cheaper side, exactly (a cost model, no sampling)"
    if name == "time to change":
        a, b = p["value"], f["value"]
        if max(a, b) < TIME_RATIO * min(a, b):
            return NOT_DECIDED, f"one timing each, and neither is {TIME_RATIO:g} times faster"
        return (SYSTEM_PROMPT if a < b else FINE_TUNING), f"{max(a, b) / max(min(a, b), 1e-9):,.0f} times faster"
    bad = {k: v for k, v in figure.get("unusable", {}).items() if v > MAX_UNUSABLE}
    if bad:
        return NOT_DECIDED, ("most replies were unusable (" + ", ".join(f"{k} {v:.0%}" for k, v in bad.items())
                             + "): the rate says nothing about the persona")
    if overlap(p["low"], p["high"], f["low"], f["high"]):
        return NOT_DECIDED, "the 95 % intervals overlap"
    gap = f["value"] - p["value"]
    if abs(gap) < MIN_GAP:
        return NOT_DECIDED, f"the gap ({gap:+.2f}) is smaller than {MIN_GAP:g}"
    return (FINE_TUNING if gap > 0 else SYSTEM_PROMPT), "the intervals do not overlap"


def _numbers(figure: Mapping[str, Any]) -> list[float]:
    """The numbers a reason may quote for a figure (both sides; their intervals; the unusable shares)."""
    out: list[float] = []
    for side in SIDES:
        out += [float(v) for k, v in figure[side].items() if k != "n" and isinstance(v, (int, float))]
    out += [float(v) for v in figure.get("unusable", {}).values()]
    return out


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?|\.\d+")


def cites(text: str, figure: Mapping[str, Any]) -> bool:
    """Whether ``text`` quotes one of the figure's numbers, as rounded for display ('64%', '0.85', '$53.51',
    '3.1 min', '186 s')."""
    candidates = []
    for x in _numbers(figure):
        candidates += [x, x * 100, x / 60, x / 3600]
    for m in _NUMBER.finditer(text):
        token = m.group().replace(",", "")
        t = float(token)
        decimals = len(token.split(".")[1]) if "." in token else 0
        for c in candidates:
            if abs(t - c) <= min(0.5 * 10 ** -decimals + 1e-9, max(0.02 * abs(c), 1e-9)):
                return True
    return False


# --------------------------------------------------------------------------------------------- grading
def _trusted(figures: Any, case: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """The figures rebuilt from their exported raw numbers; supplied ones must match the data file."""
    rerun = f"run the cell that defines `{name}` again (and do not edit it)"
    if not isinstance(figures, Mapping) or any(f not in figures for f in FACTORS):
        raise Incorrect(f"`{name}` is not what `case_figures(...)` returns: {rerun}")
    data = _supplied_file()
    out = {}
    for factor in FACTORS:
        fig = figures[factor]
        if not isinstance(fig, Mapping) or not isinstance(fig.get("raw"), Mapping):
            raise Incorrect(f"`{name}['{factor}']` is not a figure: {rerun}")
        source = str(fig.get("source", ""))
        if source.startswith("supplied") and not _same(fig["raw"], data[factor]):
            raise Incorrect(f"`{name}['{factor}']` differs from the supplied figures: {rerun}")
        try:
            out[factor] = build_figure(factor, fig["raw"], case, source)
        except (KeyError, TypeError, ValueError, InputError):
            raise Incorrect(f"`{name}['{factor}']` has unreadable numbers: {rerun}") from None
        bad = [x for x in _numbers(out[factor]) if not math.isfinite(x)]
        if bad:
            raise Incorrect(f"`{name}['{factor}']` holds a number that is not finite: {rerun}")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _answer(answer: Any, name: str, keys: tuple[str, ...] = ANSWER_KEYS) -> Mapping[str, Any]:
    if isinstance(answer, Mapping) and "approach" in answer and "priorities" not in answer:
        raise Incorrect(f"`{name}` looks like the output of `decision.recommend()`: the framework knows neither "
                        "your priorities nor how you read the figures. Write your own dict with "
                        f"{', '.join(map(repr, ANSWER_KEYS))}")
    return expect_keys(answer, keys, name)


def _priorities(answer: Mapping[str, Any], name: str) -> list[str]:
    pr = answer["priorities"]
    if not isinstance(pr, list) or not all(isinstance(x, str) for x in pr):
        raise Incorrect(f"`{name}['priorities']` should be a list of the factors, most important first, got "
                        f"{describe(pr)}")
    unknown = [x for x in pr if x not in FACTORS]
    if unknown:
        raise Incorrect(f"{unknown[0]!r} in `{name}['priorities']` is not a factor: use "
                        f"{', '.join(map(repr, FACTORS))}")
    if sorted(pr) != sorted(FACTORS):
        missing = [f for f in FACTORS if f not in pr]
        twice = sorted({f for f in pr if pr.count(f) > 1})
        raise Incorrect(f"`{name}['priorities']` must rank each of the four factors once"
                        + (f"; missing {', '.join(map(repr, missing))}" if missing else "")
                        + (f"; twice: {', '.join(map(repr, twice))}" if twice else ""))
    return pr


def _reading_errors(answer: Mapping[str, Any], figs: Mapping[str, Mapping[str, Any]], name: str) -> list[str]:
    """One message per factor read wrongly (empty: all four read right and quoted)."""
    reasons = answer["reasons"]
    if not isinstance(reasons, Mapping):
        raise Incorrect(f"`{name}['reasons']` should be a dict keyed by factor ({', '.join(map(repr, FACTORS))}), "
                        f"got {describe(reasons)}")
    wrong = []
    for factor in FACTORS:
        fig = figs[factor]
        want, why = reading(fig)
        r = reasons.get(factor)
        if not isinstance(r, Mapping) or "favours" not in r or "figure" not in r:
            wrong.append(f"{factor}: give `{name}['reasons']['{factor}']` as {{'favours': ..., 'figure': ...}}")
            continue
        said, quoted = r["favours"], r["figure"]
        if said not in VERDICTS:
            wrong.append(f"{factor}: 'favours' must be one of {', '.join(map(repr, VERDICTS))}, got {describe(said)}")
        elif said != want and want == NOT_DECIDED:
            wrong.append(f"{factor}: you cite it as favouring {said!r}, but the data do not decide it — {why} "
                         f"({fig['text']})")
        elif said != want and said == NOT_DECIDED:
            wrong.append(f"{factor}: the figure decides it for {want!r} — {why} ({fig['text']})")
        elif said != want:
            wrong.append(f"{factor}: you say {said!r}, but the figure favours {want!r} ({fig['text']})")
        elif not isinstance(quoted, str) or not cites(quoted, fig):
            wrong.append(f"{factor}: the 'figure' text should quote the numbers you read (e.g. a value or an "
                         f"interval bound of: {fig['text']})")
    return wrong


def consistent(priorities: list[str], figs: Mapping[str, Mapping[str, Any]]) -> tuple[set[str], str | None]:
    """The recommendations consistent with a ranking and the figures, and the factor that sets the direction.

    The first factor in ``priorities`` that the figures decide sets it: a factor favouring fine-tuning allows
    fine-tuning or the hybrid (a fine-tuned core); one favouring the system prompt allows the system prompt,
    and the hybrid too when it is the time to change (overlays change as fast as a prompt) and some other
    factor favours fine-tuning. Nothing decided: the system prompt, the cheaper and more flexible default."""
    verdicts = {f: reading(figs[f])[0] for f in FACTORS}
    decided = [f for f in priorities if verdicts[f] != NOT_DECIDED]
    if not decided:
        return {SYSTEM_PROMPT}, None
    top = decided[0]
    if verdicts[top] == FINE_TUNING:
        return {FINE_TUNING, HYBRID}, top
    ok = {SYSTEM_PROMPT}
    if top == "time to change" and any(verdicts[f] == FINE_TUNING for f in decided):
        ok.add(HYBRID)
    return ok, top


def _recommendation_error(answer: Mapping[str, Any], figs: Mapping[str, Mapping[str, Any]], name: str) -> str | None:
    rec = answer["recommendation"]
    if rec not in APPROACHES:
        raise Incorrect(f"`{name}['recommendation']` must be one of {', '.join(map(repr, APPROACHES))}, "
                        f"got {describe(rec)}")
    pr = _priorities(answer, name)
    ok, top = consistent(pr, figs)
    if rec in ok:
        return None
    if top is None:
        return (f"the figures decide none of your factors, so nothing supports leaving the cheaper, more flexible "
                f"system prompt; {rec!r} does not follow")
    favoured, _ = reading(figs[top])
    rank = pr.index(top) + 1
    above = pr[: rank - 1]
    skipped = (f" ({', '.join(above)} ranked above it, but the data do not decide "
               f"{'them' if len(above) > 1 else 'it'})" if above else "")
    others = [f for f in FACTORS if f != top and reading(figs[f])[0] not in (NOT_DECIDED, favoured)]
    alt = (f"; rank {' or '.join(others)} above {top} if that matters more to you" if others
           else "; no other figure points the other way")
    return (f"your priority number {rank} is {top}{skipped}, and its figure favours {favoured!r} "
            f"({figs[top]['text']}): {rec!r} contradicts it. Recommend "
            f"{' or '.join(repr(a) for a in sorted(ok))}{alt}")


def _summary(answer: Mapping[str, Any], figs: Mapping[str, Mapping[str, Any]]) -> str:
    _, top = consistent(list(answer["priorities"]), figs)
    if top is None:
        return f"{answer['recommendation']}: no figure decides your factors, so the default holds"
    side = reading(figs[top])[0]
    text = (f"{answer['recommendation']} follows from your priorities: {top} is the first one the figures decide, "
            f"and it favours {side!r} ({figs[top]['text']})")
    if answer["recommendation"] == HYBRID and side == SYSTEM_PROMPT:
        ft = [f for f in answer["priorities"] if reading(figs[f])[0] == FINE_TUNING]
        text += f"; the overlays keep changes as fast as a prompt, the fine-tuned core keeps what {ft[0]} favours"
    return text


# --------------------------------------------------------------------------------------------- questions
_FORMAT = ("answer = {'priorities': [the four factors, most important first], 'recommendation': 'system prompt', "
           "'fine-tuning' or 'hybrid', 'reasons': {factor: {'favours': 'system prompt', 'fine-tuning' or "
           "'does not decide', 'figure': 'the numbers you read'}}}")


@EXERCISE.question(
    "Case A: read the figures",
    names=["figures_a", "answer_a"],
    points=3,
    hints=(
        "For each factor, compare the two sides of its figure. Cost and time to change: the lower one wins. "
        "Consistency and injection: the higher one wins, but only if the two 95 % intervals do not overlap and "
        "neither side has more than half its replies unusable; otherwise write 'does not decide'.",
        "Format: " + _FORMAT + ". The 'figure' text must quote at least one of the numbers (e.g. '64% [36%, 86%]').",
    ),
)
def q1(figures_a, answer_a):
    figs = _trusted(figures_a, CASE_A, "figures_a")
    answer = _answer(answer_a, "answer_a", ("reasons",))
    wrong = _reading_errors(answer, figs, "answer_a")
    if wrong:
        raise Incorrect("; ".join(wrong[:2]) + (f" (and {len(wrong) - 2} more)" if len(wrong) > 2 else ""),
                        credit=(len(FACTORS) - len(wrong)) / len(FACTORS))
    undecided = [f for f in FACTORS if reading(figs[f])[0] == NOT_DECIDED]
    return ("all four factors read from the figures" + (f"; the data do not decide {', '.join(undecided)}"
                                                         if undecided else ""))


@EXERCISE.question(
    "Case A: your priorities and recommendation",
    names=["figures_a", "answer_a"],
    points=2,
    hints=(
        "Rank the four factors by what matters most for case A (who uses it, what the brand team wants). Then go "
        "down your list: the first factor the figures decide sets the direction.",
        "A factor favouring fine-tuning allows 'fine-tuning' or 'hybrid'; one favouring the system prompt allows "
        "'system prompt' (and 'hybrid' when it is the time to change and another factor favours fine-tuning).",
    ),
)
def q2(figures_a, answer_a):
    figs = _trusted(figures_a, CASE_A, "figures_a")
    answer = _answer(answer_a, "answer_a", ("priorities", "recommendation"))
    err = _recommendation_error(answer, figs, "answer_a")
    if err:
        raise Incorrect(err, credit=0.25)
    return _summary(answer, figs)


@EXERCISE.question(
    "Case B: read, rank, recommend",
    names=["figures_b", "answer_b"],
    points=3,
    hints=(
        "The same figures are read at case B's volume and change rate: look again at cost and time to change. "
        "An internal tool may put injection lower in the ranking; that is your call.",
        "Format: " + _FORMAT + ". Half the points are for reading the four figures, half for a recommendation "
        "that follows from your ranking.",
    ),
)
def q3(figures_b, answer_b):
    figs = _trusted(figures_b, CASE_B, "figures_b")
    answer = _answer(answer_b, "answer_b")
    wrong = _reading_errors(answer, figs, "answer_b")
    err = _recommendation_error(answer, figs, "answer_b")
    notes = wrong[:2] + ([err] if err else [])
    if not notes:
        return _summary(answer, figs)
    score = 0.5 * (len(FACTORS) - len(wrong)) / len(FACTORS) + (0.0 if err else 0.5)
    return Credit(score, "; ".join(notes))


@EXERCISE.question(
    "Case B: the hybrid design",
    names=["hybrid_design"],
    points=2,
    hints=(
        "hybrid_design = {'core': [...], 'overlays': [...]}, with the element names copied from ELEMENTS.",
        "The fine-tuned core holds what is the same everywhere and rarely changes; the overlays hold what differs "
        "per department or changes weekly.",
    ),
)
def q4(hybrid_design):
    expect_keys(hybrid_design, ("core", "overlays"), "hybrid_design", allow_extra=False)
    core, over = hybrid_design["core"], hybrid_design["overlays"]
    for name, value in (("core", core), ("overlays", over)):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise Incorrect(f"`hybrid_design['{name}']` should be a list of element names, got {describe(value)}")
    unknown = [x for x in core + over if x not in ELEMENTS]
    if unknown:
        raise Incorrect(f"{unknown[0]!r} is not one of ELEMENTS: copy the names from `ELEMENTS`")
    both = set(core) & set(over)
    left = [e for e in ELEMENTS if e not in core and e not in over]
    misplaced = [e for e in ELEMENTS if (e in core) != (ELEMENTS[e] == "core") and e not in both and e not in left]
    notes = []
    if both:
        notes.append(f"{sorted(both)[0]!r} is in both lists: put each element in one place")
    if left:
        notes.append(f"{left[0]!r} is in neither list")
    if misplaced:
        e = misplaced[0]
        notes.append(f"{e!r} belongs in the {'fine-tuned core' if ELEMENTS[e] == 'core' else 'overlays'}: "
                     + ("it is shared and stable" if ELEMENTS[e] == "core" else "it differs per department or "
                        "changes often"))
    if not notes:
        return "a fine-tuned core with what is stable, one overlay per department for what changes"
    return Credit((len(ELEMENTS) - len(both) - len(left) - len(misplaced)) / len(ELEMENTS), "; ".join(notes))
