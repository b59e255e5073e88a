"""What the learner measured, as the decision framework's input: :class:`Evidence`, read from saved results.

    ev = Evidence.from_results()      # lessons 02-06's saved numbers; what is missing is left out
    ev.describe()                     # one line per measured number, each naming its model and hardware

:mod:`personalab.decision` weighs it against the rules of thumb; :mod:`personalab.report` shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import costs
from .rates import fmt_minutes
from .results import Records, origin, record_data, target_named


@dataclass(frozen=True)
class Evidence:
    """What the learner measured (every field optional; ``*_source`` says model and hardware).

    ``break_even_requests``: the monthly volume above which fine-tuning is cheaper (lesson 02's cost model);
    ``break_even_never``: fine-tuning is never cheaper at these prices. ``injection_held`` and
    ``drift_late_score``: ``{"prompted": rate, "fine-tuned": rate}`` from lesson 05, with ``*_ci`` their 95 %
    intervals and n (``{"prompted": {"value", "low", "high", "n"}, ...}``) and ``*_unusable`` the share of each
    target's replies the fluency gate rejected. ``retrain_s`` (lesson 04) and ``prompt_change_s`` (lesson 06):
    what one persona change took.
    """

    break_even_requests: float | None = None
    break_even_never: bool = False
    cost_source: str = ""
    injection_held: Mapping[str, float] | None = None
    injection_source: str = ""
    injection_held_ci: Mapping[str, Mapping[str, float]] | None = None
    injection_unusable: Mapping[str, float] | None = None
    drift_late_score: Mapping[str, float] | None = None
    drift_source: str = ""
    drift_late_score_ci: Mapping[str, Mapping[str, float]] | None = None
    drift_unusable: Mapping[str, float] | None = None
    retrain_s: float | None = None
    retrain_source: str = ""
    prompt_change_s: float | None = None
    prompt_change_source: str = ""
    #: A warning when numbers set side by side ran on different base models (:func:`base_mismatch`).
    base_warning: str = ""

    @property
    def cost_known(self) -> bool:
        return self.break_even_never or self.break_even_requests is not None

    @classmethod
    def from_results(cls, records: Records | None = None) -> Evidence:
        """Evidence from saved results (``personalab.results.load_all()`` by default); what is missing or
        unreadable is left out."""
        if records is None:
            from . import results

            records = results.load_all()
        kw: dict[str, Any] = {}
        try:
            comp = cost_comparison(records)
            if comp is not None:
                be = comp.break_evens[0]
                c = record_data(records, "02/costs") or {}
                src = (f"lesson 02: {comp.scenario.model}, {comp.scenario.persona_tokens:g}-token persona, prices of "
                       f"{c.get('price_date', '?')}")
                if comp.scenario.training_cost is None:
                    src += ", no training cost (run lesson 03)"
                kw.update(break_even_never=be.never, break_even_requests=be.volume, cost_source=src)
        except Exception:  # noqa: BLE001
            pass
        for key, field_, pick in (("05/injection", "injection_held", _held), ("05/drift", "drift_late_score", _late)):
            try:
                picked = pick(record_data(records, key))
                if picked:
                    ci, unusable = picked
                    prefix = field_.split("_")[0]
                    kw[field_] = {k: float(v["value"]) for k, v in ci.items()}
                    kw[field_ + "_ci"] = ci
                    kw[prefix + "_unusable"] = unusable
                    kw[prefix + "_source"] = origin(records, key)
            except Exception:  # noqa: BLE001
                pass
        tr = record_data(records, "04/training")
        if tr and isinstance(tr.get("wall_s"), (int, float)):
            kw.update(retrain_s=float(tr["wall_s"]),
                      retrain_source=origin(records, "04/training", tr.get("base_model")))
        ch = record_data(records, "06/change")
        if ch and isinstance(ch.get("total_s"), (int, float)):
            kw.update(prompt_change_s=float(ch["total_s"]), prompt_change_source=origin(records, "06/change"))
        kw["base_warning"] = base_mismatch(compared_bases(records)) or ""
        return cls(**kw)

    def describe(self) -> list[str]:
        """One line per measured number (empty when nothing was measured)."""
        out = []
        if self.break_even_never:
            out.append(f"cost: fine-tuning never cheaper per request ({self.cost_source})")
        elif self.break_even_requests is not None:
            out.append(f"cost: fine-tuning cheaper above {self.break_even_requests:,.0f} requests/month "
                       f"({self.cost_source})")
        if self.injection_held:
            out.append(f"injection: persona held {_pair(self.injection_held, ci=self.injection_held_ci)} "
                       f"({self.injection_source})")
        if self.drift_late_score:
            out.append(f"drift: adherence in the last turns "
                       f"{_pair(self.drift_late_score, pct=False, ci=self.drift_late_score_ci)} ({self.drift_source})")
        if self.retrain_s is not None:
            out.append(f"retraining: {duration(self.retrain_s)} ({self.retrain_source})")
        if self.prompt_change_s is not None:
            out.append(f"prompt change: {duration(self.prompt_change_s)} ({self.prompt_change_source})")
        if out and self.base_warning:
            out.append(self.base_warning)
        return out


#: Saved results whose numbers the matrix sets beside the fine-tuned model's, with the side each measured.
PROMPTED_RESULTS = {"01/steering": "prompted (lesson 01)", "02/latency": "latency (lesson 02)",
                    "06/change": "prompt change (lesson 06)"}


def stated_base(record: Mapping[str, Any] | None) -> str | None:
    """The base model a saved result ran on: its ``data.base_model``, else its model when that is a name (an API
    model, a Hub id) rather than a served folder. None when the record does not say."""
    if not isinstance(record, Mapping):
        return None
    data = record.get("data") if isinstance(record.get("data"), Mapping) else {}
    named = data.get("base_model") or (data.get("config") or {}).get("base_model")
    if named:
        return str(named)
    model = record.get("model")
    return str(model) if model and not Path(str(model)).is_absolute() else None


def compared_bases(records: Records) -> dict[str, str]:
    """The base model behind each side the matrix compares: lessons 01, 02 and 06's prompted measurements, lesson
    04's fine-tuning and every lesson 05 row (reference rows included, named 'reference: ...'). Unstated: left out."""
    out = {label: base for key, label in PROMPTED_RESULTS.items() if (base := stated_base(records.get(key)))}
    tr = records.get("04/training")
    if isinstance(tr, Mapping) and isinstance(tr.get("data"), Mapping):
        data = tr["data"]
        base = (data.get("config") or {}).get("base_model") or data.get("base_model")
        if base:
            out["fine-tuned (lesson 04)"] = str(base)
    out.update({str(k): str(v) for k, v in ((record_data(records, "05/drift") or {}).get("bases") or {}).items()})
    return out


def base_mismatch(bases: Mapping[str, str]) -> str | None:
    """A warning when the compared sides (all but reference rows) ran on different base models, else None."""
    compared = {name: base for name, base in bases.items() if not name.startswith("reference")}
    if len(set(compared.values())) <= 1:
        return None
    by_base: dict[str, list[str]] = {}
    for name, base in compared.items():
        by_base.setdefault(base, []).append(name)
    where = "; ".join(f"{', '.join(names)} on {base}" for base, names in by_base.items())
    return ("WARNING: the compared rows sit on different base models, so the difference measured is not prompt vs "
            f"weights alone ({where})")


def cost_comparison(records: Records, finetuned_prompt_tokens: float = 0) -> costs.Comparison | None:
    """Lesson 02's scenario priced with the cost model (training cost from lesson 03 when saved), or None."""
    c = record_data(records, "02/costs")
    if c is None:
        return None
    ds = record_data(records, "03/dataset") or {}
    training = ds.get("openai_training_cost_usd")
    scenario = costs.Scenario(model=c.get("model", "gpt-4o-mini"), requests_per_month=c["requests_per_month"],
                              persona_tokens=c["persona_tokens"], user_tokens=c["user_tokens"],
                              response_tokens=c["response_tokens"], finetuned_prompt_tokens=finetuned_prompt_tokens,
                              training_cost=float(training) if training is not None else None)
    return costs.compare(scenario)


def duration(seconds: float) -> str:
    """'350 ms', '42.0 s', '3.5 min', '2.1 h'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def how_to_measure(lesson: str) -> str:
    """What a matrix cell says when lesson ``lesson``'s result is missing: 'run lesson NN first'; in Colab, where every
    badge opens a new runtime, that it was not measured in this runtime and how to get it (run the lesson here, or
    keep results across runtimes on Google Drive with ``USE_DRIVE = True`` in the setup cell)."""
    from . import config
    from .colab import DRIVE_MOUNT

    if not config.in_colab():
        return f"run lesson {lesson} first"
    if config.home().resolve().is_relative_to(Path(DRIVE_MOUNT)):
        return (f"not on your Google Drive yet: run lesson {lesson} (with USE_DRIVE = True, as here, its result is "
                "kept there for the next runtime)")
    return (f"not measured in this runtime: run lesson {lesson} here, or set USE_DRIVE = True in the setup cell to "
            "keep results across runtimes")


def finetuned_on_disk(records: Records) -> Path | None:
    """Lesson 04's merged checkpoint named by its saved ``04/training`` record, if it exists in this runtime."""
    merged = (record_data(records, "04/training") or {}).get("merged_dir")
    return Path(merged) if merged and (Path(merged) / "config.json").exists() else None


def standalone_plan(records: Records, sources: Mapping[str, str], plan: Any = None) -> list[str]:
    """What lesson 06 found from earlier lessons in this runtime, and what it does about each missing piece.

    One line per result key of ``sources`` (:data:`personalab.report.SOURCES`) and one for lesson 04's model. A
    missing model is fine-tuned by the hybrid section (:func:`personalab.evaluate.targets.ensure_finetuned`); a
    missing result of lessons 01-05 leaves its matrix cell saying how to measure it (:func:`how_to_measure`). Times
    are estimates from ``plan``, the profile's :func:`personalab.budget.request_budget` (none without it). Runs nothing.
    """
    from . import config

    on = f" on the {plan.profile} profile" if plan is not None else ""

    def takes(lesson: str) -> str:
        return f"; lesson {lesson} takes {fmt_minutes(plan.lesson_seconds(lesson))}{on}" if plan is not None else ""

    model = finetuned_on_disk(records)
    out = []
    for key, what in sources.items():
        lesson = key.split("/")[0]
        if key in records:
            out.append(f"found    {key:14} {what} ({origin(records, key)})")
        elif lesson == "06":
            out.append(f"missing  {key:14} {what}: measured below, in this lesson")
        elif key == "04/training" and model is None:
            out.append(f"missing  {key:14} {what}: saved below by the hybrid's fine-tuning (see the last line)")
        else:
            out.append(f"missing  {key:14} {what}: not measured in this runtime, its matrix cell says "
                       f"'{how_to_measure(lesson)}'{takes(lesson)}")
    if model is not None:
        out.append(f"found    lesson 04's fine-tuned model at {model}: the hybrid (section 2) uses it")
        return out
    looked = (f"no saved 04/training in {config.home()}" if "04/training" not in records
              else "04/training names a checkpoint that is not on this machine")
    line = (f"missing  lesson 04's fine-tuned model ({looked}): the hybrid (section 2) fine-tunes it now with "
            "lesson 04's settings")
    if plan is not None:
        train_s = sum(p.seconds for p in plan.lesson("04") if p.training_steps)
        hybrid_s = sum(p.seconds for p in plan.lesson("06") if p.what.startswith("hybrid"))
        line += (f", {fmt_minutes(train_s)}{on} (estimated), then measures it ({fmt_minutes(hybrid_s)} more; "
                 "without lesson 05's cached replies it can take longer)")
    return [*out, line + "; to skip the training, run lesson 04 first"]


def _pair(pair: Mapping[str, float], pct: bool = True, ci: Mapping[str, Mapping[str, float]] | None = None) -> str:
    return ", ".join(f"{k} {interval(v, (ci or {}).get(k), pct)}" for k, v in pair.items())


def overlap(low_a: float, high_a: float, low_b: float, high_b: float) -> bool:
    """Whether the intervals [low_a, high_a] and [low_b, high_b] share a value (touching counts)."""
    return low_a <= high_b and low_b <= high_a


def interval(value: float, ci: Mapping[str, float] | None, pct: bool = True) -> str:
    """'71% [50%, 88%] (n=14)' with an interval, else just the value ('71%', '0.85')."""
    fmt = (lambda x: f"{x:.0%}") if pct else (lambda x: f"{x:.2f}")
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(ci['low'])}, {fmt(ci['high'])}] (n={ci.get('n', '?')})"


Picked = tuple[dict[str, dict[str, float]], dict[str, float]]


def _ci(d: Mapping[str, Any] | None) -> dict[str, float] | None:
    if not d or not d.get("n"):
        return None
    return {"value": float(d["value"]), "low": float(d.get("low", d["value"])),
            "high": float(d.get("high", d["value"])), "n": int(d["n"])}


def _held(d: Mapping[str, Any] | None) -> Picked | None:
    """Lesson 05's injection rates 'persona held' (with intervals) and 'broken' for the prompted and the fine-tuned
    target (both, or None)."""
    if not d:
        return None
    summ = d.get("summary") or {}
    ci, unusable = {}, {}
    for prefix in ("prompted", "fine-tuned"):
        name = target_named(summ.keys(), prefix)
        rates = (summ.get(name) or {}).get("all") or {} if name else {}
        held = _ci(rates.get("held"))
        if held:
            ci[prefix] = held
            unusable[prefix] = float((rates.get("broken") or {}).get("value") or 0.0)
    return (ci, unusable) if len(ci) == 2 else None


def _late(d: Mapping[str, Any] | None) -> Picked | None:
    """Lesson 05's adherence in the last turns (with intervals) and unusable share for the prompted and the
    fine-tuned target (both, or None)."""
    if not d:
        return None
    summ = (d.get("summary") or {}).get(d.get("scorer"), {})
    ci, unusable = {}, {}
    for prefix in ("prompted", "fine-tuned"):
        name = target_named(summ.keys(), prefix)
        row = (summ.get(name) or {}) if name else {}
        late = _ci(row.get("late_mean_score"))
        if late:
            ci[prefix] = late
            unusable[prefix] = float(row.get("unusable_share") or 0.0)
    return (ci, unusable) if len(ci) == 2 else None
