"""The decision framework as code: system prompt, fine-tuning, or the hybrid, with the reasons.

:func:`recommend` weighs the article's questions one factor at a time. Each :class:`Factor` favours one
approach or none and says why; the recommendation follows from the votes:

* prototyping → **system prompt** (measure first, decide later);
* several personas on one model → **hybrid** (a fine-tuned core, one prompt overlay per persona), unless
  nothing at all favours fine-tuning, in which case a prompt per persona is enough;
* otherwise the approach with more votes. A tie with votes on both sides: **hybrid** when frequent changes
  are among the votes for the prompt (fine-tune what is stable, keep what changes in an overlay), else
  **fine-tuning** when a requirement (security, consistency, long conversations, latency) asks for it, else
  the **system prompt**. No votes at all → **system prompt** (the cheaper, more flexible default).

The thresholds default to the article's (<10K requests/month: system prompt; >100K: fine-tuning; weekly
changes: system prompt; monthly or rarer: fine-tuning is acceptable). Where the learner measured something
(:class:`Evidence`, built from the saved results of lessons 02-05), the measurement replaces the rule of
thumb: the break-even volume from the cost model replaces the volume thresholds, and the measured
injection and drift gaps decide whether "public-facing" and "brand-critical" really favour fine-tuning.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError
from .evidence import Evidence, duration, interval

SYSTEM_PROMPT = "system prompt"
FINE_TUNING = "fine-tuning"
HYBRID = "hybrid"
APPROACHES = (SYSTEM_PROMPT, FINE_TUNING, HYBRID)
Approach = Literal["system prompt", "fine-tuning", "hybrid"]

#: Persona changes per month for the words people use (a number of changes per month is accepted too).
FREQUENCIES: dict[str, float] = {
    "daily": 30.0,
    "weekly": 52 / 12,
    "every two weeks": 26 / 12,
    "monthly": 1.0,
    "quarterly": 1 / 3,
    "twice a year": 1 / 6,
    "yearly": 1 / 12,
    "never": 0.0,
}

#: The factors :func:`recommend` reports, in order (the four key questions of the article come first).
#: Factors that are requirements (quality, safety) rather than cost or convenience: they break a tie.
REQUIREMENTS = ("security", "consistency", "conversations", "latency")

FACTORS = ("volume", "stability", "security", "consistency", "personas", "prototyping", "expertise",
           "conversations", "latency")


@dataclass(frozen=True)
class Thresholds:
    """Rules of thumb (the article's by default)."""

    low_volume: float = 10_000  # requests/month below which a system prompt usually wins
    high_volume: float = 100_000  # above which fine-tuning's return is positive
    frequent_changes: float = 4.0  # changes/month from which a prompt is the only practical choice (weekly)
    stable_changes: float = 1.0  # changes/month at or below which retraining is acceptable (monthly)
    min_gap: float = 0.05  # a measured difference smaller than this (rates 0..1) is "no clear difference"


ARTICLE_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Factor:
    """One question of the framework: which approach it favours (``None``: neither) and why."""

    name: str
    favours: Approach | None
    reason: str
    measured: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "favours": self.favours, "reason": self.reason, "measured": self.measured}


@dataclass(frozen=True)
class Recommendation:
    """The framework's answer: ``approach`` and the ``reasons`` (the deciding ones first)."""

    approach: Approach
    reasons: list[str]
    factors: list[Factor] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def votes(self) -> dict[str, int]:
        return {a: sum(f.favours == a for f in self.factors) for a in (SYSTEM_PROMPT, FINE_TUNING)}

    def factor(self, name: str) -> Factor:
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {"approach": self.approach, "reasons": list(self.reasons),
                "factors": [f.as_dict() for f in self.factors], "inputs": dict(self.inputs)}

    def __str__(self) -> str:
        lines = [f"Recommendation: {self.approach}"] + [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(f.name)}</td><td>{html.escape(f.favours or '-')}</td>"
            f"<td>{'measured' if f.measured else 'rule of thumb'}</td><td>{html.escape(f.reason)}</td></tr>"
            for f in self.factors
        )
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return (f"<p><b>Recommendation: {html.escape(self.approach)}</b></p><ul>{reasons}</ul>"
                "<table><tr><th>factor</th><th>favours</th><th>basis</th><th>why</th></tr>"
                f"{rows}</table>")


# --------------------------------------------------------------------------------------------- inputs
def changes_per_month(frequency: str | float | int) -> float:
    """A persona change frequency as changes per month: a word from :data:`FREQUENCIES` or a number."""
    if isinstance(frequency, bool):
        raise InputError(f"persona_change_frequency must be a word or a number, got {frequency!r}",
                         field="persona_change_frequency", fix=_FREQ_FIX)
    if isinstance(frequency, (int, float)):
        if math.isnan(frequency) or math.isinf(frequency) or frequency < 0:
            raise InputError(f"persona_change_frequency must be a number >= 0 (changes per month), got {frequency!r}",
                             field="persona_change_frequency", fix=_FREQ_FIX)
        return float(frequency)
    if isinstance(frequency, str):
        key = " ".join(frequency.lower().replace("-", " ").split())
        if key in FREQUENCIES:
            return FREQUENCIES[key]
    raise InputError(f"unknown persona_change_frequency {frequency!r}", field="persona_change_frequency",
                     fix=_FREQ_FIX)


_FREQ_FIX = f"use one of {', '.join(repr(k) for k in FREQUENCIES)}, or a number of changes per month"


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be True or False, got {value!r}", field=name)
    return value


def _volume(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise InputError(f"monthly_requests must be a number >= 0, got {value!r}", field="monthly_requests",
                         fix="estimate requests per month, e.g. users x requests per user per day x 30")
    if math.isinf(value):
        raise InputError("monthly_requests must be finite", field="monthly_requests")
    return float(value)


# --------------------------------------------------------------------------------------------- factors
def _volume_factor(v: float, t: Thresholds, ev: Evidence | None) -> Factor:
    if ev is not None and ev.break_even_never:
        return Factor("volume", SYSTEM_PROMPT,
                      f"{v:,.0f} requests/month: your cost model finds fine-tuning never cheaper per request "
                      f"({ev.cost_source}); only self-hosting or the other factors can justify it", True)
    if ev is not None and ev.break_even_requests is not None:
        be = ev.break_even_requests
        if v >= be:
            return Factor("volume", FINE_TUNING, f"{v:,.0f} requests/month is above your measured break-even of "
                          f"{be:,.0f} ({ev.cost_source}): fine-tuning is cheaper", True)
        return Factor("volume", SYSTEM_PROMPT, f"{v:,.0f} requests/month is below your measured break-even of "
                      f"{be:,.0f} ({ev.cost_source}): the system prompt is cheaper", True)
    if v < t.low_volume:
        return Factor("volume", SYSTEM_PROMPT,
                      f"{v:,.0f} requests/month is low volume (< {t.low_volume:,.0f}): the prompt's extra tokens "
                      "cost little and there is no training to pay back")
    if v > t.high_volume:
        return Factor("volume", FINE_TUNING,
                      f"{v:,.0f} requests/month is high volume (> {t.high_volume:,.0f}): dropping the prompt's "
                      "tokens from every request pays back the training")
    return Factor("volume", None, f"{v:,.0f} requests/month is between {t.low_volume:,.0f} and "
                  f"{t.high_volume:,.0f}: volume alone does not decide (run the cost model)")


def _stability_factor(per_month: float, label: str, t: Thresholds, ev: Evidence | None) -> Factor:
    cost = ""
    measured = False
    if ev is not None and ev.retrain_s is not None:
        measured = True
        cost = f"; one retraining took {duration(ev.retrain_s)} ({ev.retrain_source})"
        if ev.prompt_change_s is not None:
            cost += f" against {duration(ev.prompt_change_s)} for a prompt edit ({ev.prompt_change_source})"
    if per_month >= t.frequent_changes:
        return Factor("stability", SYSTEM_PROMPT, f"the persona changes {label} (weekly or more often): a prompt "
                      f"edit is live on the next request, a fine-tuned model must be retrained each time{cost}",
                      measured)
    if per_month <= t.stable_changes:
        return Factor("stability", FINE_TUNING, f"the persona changes {label} (monthly or less): stable enough "
                      f"that retraining for each change is acceptable{cost}", measured)
    return Factor("stability", None, f"the persona changes {label}: between weekly and monthly, retraining is "
                  f"possible but a real cost{cost}", measured)


#: Evidence from a target whose replies the fluency gate rejected more often than this is not used.
MAX_UNUSABLE = 0.5


def _gap_factor(name: str, on: bool, ev_pair: Mapping[str, float] | None, source: str, t: Thresholds,
                yes_text: str, no_text: str, what: str, pct: bool = False,
                ci: Mapping[str, Mapping[str, float]] | None = None,
                unusable: Mapping[str, float] | None = None) -> Factor:
    """A measured gap decides only when it is larger than ``t.min_gap`` and the two 95 % intervals (when known)
    do not overlap; a target with mostly unusable replies gives no evidence."""
    if not on:
        return Factor(name, None, no_text)
    if ev_pair and "prompted" in ev_pair and "fine-tuned" in ev_pair:
        p, f = ev_pair["prompted"], ev_pair["fine-tuned"]
        ci = ci or {}
        vs = (f"fine-tuned {interval(f, ci.get('fine-tuned'), pct)} vs prompted "
              f"{interval(p, ci.get('prompted'), pct)}")
        bad = {k: v for k, v in (unusable or {}).items() if v > MAX_UNUSABLE}
        if bad:
            which = ", ".join(f"{k} {v:.0%}" for k, v in bad.items())
            return Factor(name, None, f"{yes_text}, but your measurement is not used: most replies were unusable "
                          f"(rejected by the fluency gate: {which}), so {what} says nothing about the persona "
                          f"({vs}, {source})", True)
        lo_f, hi_f = (ci.get("fine-tuned") or {}).get("low", f), (ci.get("fine-tuned") or {}).get("high", f)
        lo_p, hi_p = (ci.get("prompted") or {}).get("low", p), (ci.get("prompted") or {}).get("high", p)
        if ci.get("fine-tuned") and ci.get("prompted") and lo_f <= hi_p and lo_p <= hi_f:
            return Factor(name, None, f"{yes_text}, but your measurement does not decide it: the 95 % intervals "
                          f"overlap ({what}: {vs}, {source}); more conversations or attacks would narrow them", True)
        gap = f - p
        if gap >= t.min_gap:
            return Factor(name, FINE_TUNING, f"{yes_text}; measured {what}: {vs} ({source})", True)
        verdict = "worse" if gap <= -t.min_gap else "no clearly better"
        return Factor(name, None, f"{yes_text}, but your measurement shows the fine-tuned model {verdict} "
                      f"({what}: {vs}, {source}): fine-tuning alone is no fix here", True)
    return Factor(name, FINE_TUNING, yes_text)


def recommend(
    monthly_requests: float,
    persona_change_frequency: str | float,
    public_facing: bool,
    consistency_critical: bool,
    *,
    personas: int = 1,
    prototyping: bool = False,
    ml_expertise: bool = True,
    long_conversations: bool = False,
    latency_critical: bool = False,
    thresholds: Thresholds = ARTICLE_THRESHOLDS,
    evidence: Evidence | None = None,
) -> Recommendation:
    """System prompt, fine-tuning or hybrid for a use case, with one :class:`Factor` per question.

    ``monthly_requests``: expected requests per month. ``persona_change_frequency``: "weekly", "monthly",
    ... (see :data:`FREQUENCIES`) or changes per month. ``public_facing``: can strangers try to jailbreak it?
    ``consistency_critical``: is persona adherence brand-critical? ``personas``: how many personas share one
    model. ``evidence``: measured numbers (:meth:`Evidence.from_results`) that replace the rules of thumb.
    """
    volume = _volume(monthly_requests)
    per_month = changes_per_month(persona_change_frequency)
    label = persona_change_frequency if isinstance(persona_change_frequency, str) else f"{per_month:g} times a month"
    public_facing = _flag(public_facing, "public_facing")
    consistency_critical = _flag(consistency_critical, "consistency_critical")
    for name, value in (("prototyping", prototyping), ("ml_expertise", ml_expertise),
                        ("long_conversations", long_conversations), ("latency_critical", latency_critical)):
        _flag(value, name)
    if isinstance(personas, bool) or not isinstance(personas, int) or personas < 1:
        raise InputError(f"personas must be a whole number >= 1, got {personas!r}", field="personas")
    t, ev = thresholds, evidence

    factors = [
        _volume_factor(volume, t, ev),
        _stability_factor(per_month, str(label), t, ev),
        _gap_factor("security", public_facing, ev.injection_held if ev else None, ev.injection_source if ev else "",
                    t, "public-facing: strangers will try to override the persona (the article's claim: "
                    "instructions can be countermanded while weights cannot; lesson 05 tests it)",
                    "an internal tool: jailbreaking is not a real threat, a system prompt is acceptable",
                    "persona held under attack", pct=True, ci=ev.injection_held_ci if ev else None,
                    unusable=ev.injection_unusable if ev else None),
        _gap_factor("consistency", consistency_critical, ev.drift_late_score if ev else None,
                    ev.drift_source if ev else "", t, "brand-critical consistency (the article's claim: a prompted "
                    "persona drifts over long conversations, a trained one is the model's default; lesson 05 "
                    "tests it)", "consistency is nice-to-have: occasional drift is acceptable",
                    "adherence in the last turns", ci=ev.drift_late_score_ci if ev else None,
                    unusable=ev.drift_unusable if ev else None),
    ]
    if personas > 1:
        factors.append(Factor("personas", HYBRID, f"{personas} personas on one model: one fine-tuned core with a "
                              "prompt overlay per persona, or one prompt each"))
    else:
        factors.append(Factor("personas", None, "one persona"))
    factors.append(Factor("prototyping", SYSTEM_PROMPT, "prototyping: iterate on a prompt in minutes, decide later")
                   if prototyping else Factor("prototyping", None, "not a prototype"))
    factors.append(Factor("expertise", None, "ML operations skills available") if ml_expertise else
                   Factor("expertise", SYSTEM_PROMPT, "limited ML expertise: a prompt needs no training pipeline"))
    factors.append(Factor("conversations", FINE_TUNING, "long-running conversations: the prompted persona fades "
                          "as the history grows, and the prompt can be cut when the context overflows")
                   if long_conversations else Factor("conversations", None, "short conversations"))
    factors.append(Factor("latency", FINE_TUNING, "latency-critical: no persona tokens to process on every "
                          "request") if latency_critical else Factor("latency", None, "latency is not critical"))

    sp = [f for f in factors if f.favours == SYSTEM_PROMPT]
    ft = [f for f in factors if f.favours == FINE_TUNING]
    inputs = {"monthly_requests": volume, "persona_change_frequency": persona_change_frequency,
              "public_facing": public_facing, "consistency_critical": consistency_critical, "personas": personas,
              "prototyping": prototyping, "ml_expertise": ml_expertise, "long_conversations": long_conversations,
              "latency_critical": latency_critical, "measured": ev is not None}

    def done(approach: Approach, headline: str, deciding: list[Factor]) -> Recommendation:
        reasons = [headline] + [f.reason for f in deciding]
        others = [f for f in factors if f.favours and f not in deciding]
        reasons += [f"against: {f.reason}" for f in others if f.favours != approach]
        return Recommendation(approach, reasons, factors, inputs)

    if prototyping:
        return done(SYSTEM_PROMPT, "prototype first with a system prompt; run the framework again before "
                    "production", [f for f in factors if f.name == "prototyping"])
    if personas > 1:
        if ft or not sp:
            return done(HYBRID, f"several personas: fine-tune the shared core once and switch personas with "
                        f"short prompt overlays ({len(ft)} factor(s) favour fine-tuning the core)",
                        [f for f in factors if f.name == "personas"] + ft)
        return done(SYSTEM_PROMPT, "several personas and nothing favours fine-tuning: one system prompt per "
                    "persona on the same base model", sp)
    if len(ft) > len(sp):
        return done(FINE_TUNING, f"{len(ft)} factor(s) favour fine-tuning, {len(sp)} the system prompt", ft)
    if len(sp) > len(ft):
        return done(SYSTEM_PROMPT, f"{len(sp)} factor(s) favour the system prompt, {len(ft)} fine-tuning", sp)
    if ft:
        if any(f.name == "stability" for f in sp):
            return done(HYBRID, f"the factors pull both ways ({len(ft)} each) and the persona changes often: "
                        "fine-tune what is stable, keep what changes in a prompt overlay", ft + sp)
        needs = [f for f in ft if f.name in REQUIREMENTS]
        if needs:
            return done(FINE_TUNING, f"the factors pull both ways ({len(ft)} each); a requirement "
                        f"({', '.join(f.name for f in needs)}) outweighs cost and convenience", ft)
        return done(SYSTEM_PROMPT, f"the factors pull both ways ({len(ft)} each) and no requirement calls for "
                    "fine-tuning: keep the cheaper, more flexible system prompt", sp)
    return done(SYSTEM_PROMPT, "nothing favours fine-tuning: start with a system prompt (minutes to set up, "
                "instant to change) and measure", [])


# --------------------------------------------------------------------------------------------- scenarios
#: The article's quick-reference table: scenario -> (recommend() arguments, the article's answer).
#: Every factor the row does not name is neutral: a middle volume (between the thresholds), a change
#: frequency between weekly and monthly, internal, consistency nice-to-have, one persona.
NEUTRAL: dict[str, Any] = {"monthly_requests": 50_000, "persona_change_frequency": "every two weeks",
                           "public_facing": False, "consistency_critical": False}
QUICK_REFERENCE: dict[str, tuple[dict[str, Any], Approach]] = {
    "Prototyping": ({**NEUTRAL, "prototyping": True}, SYSTEM_PROMPT),
    "Low volume (<10K/mo)": ({**NEUTRAL, "monthly_requests": 5_000}, SYSTEM_PROMPT),
    "High volume (>100K/mo)": ({**NEUTRAL, "monthly_requests": 500_000}, FINE_TUNING),
    "Changing requirements": ({**NEUTRAL, "persona_change_frequency": "weekly"}, SYSTEM_PROMPT),
    "Stable requirements": ({**NEUTRAL, "persona_change_frequency": "quarterly"}, FINE_TUNING),
    "Security-critical": ({**NEUTRAL, "public_facing": True}, FINE_TUNING),
    "Multi-persona": ({**NEUTRAL, "personas": 4}, HYBRID),
}


def quick_reference(evidence: Evidence | None = None) -> list[dict[str, str]]:
    """The article's quick-reference rows with the framework's answer (with ``evidence``: on your numbers)."""
    rows = []
    for scenario, (kwargs, article) in QUICK_REFERENCE.items():
        rec = recommend(**kwargs, evidence=evidence)
        why = rec.reasons[0]
        overruled = [f for f in rec.factors if f.measured and f.favours == rec.approach]
        if rec.approach != article and overruled:
            why += f" — {overruled[0].reason}"  # the measurement that overruled the rule of thumb
        elif len(rec.reasons) > 1:
            why += f" — {rec.reasons[1]}"
        rows.append({"scenario": scenario, "article": article, "framework": rec.approach, "why": why})
    return rows


# --------------------------------------------------------------------------------------------- widget
def explorer(evidence: Evidence | None = None, **initial: Any) -> Any:
    """Controls for every input of :func:`recommend`; the recommendation and its reasons update live.

    With ``evidence`` a checkbox switches between the article's thresholds and your measured numbers.
    """
    import ipywidgets as w

    from .widgets import number_control

    v = {"monthly_requests": 50_000, "persona_change_frequency": "monthly", "public_facing": False,
         "consistency_critical": False, "personas": 1, **initial}
    style = {"description_width": "180px"}
    lay = w.Layout(width="480px")
    volume = number_control(v["monthly_requests"], 2, 8, 0.05, "requests / month", log=True, style=style)
    controls = {
        "monthly_requests": volume.box,
        "persona_change_frequency": w.Dropdown(options=list(FREQUENCIES), value=v["persona_change_frequency"],
                                               description="persona changes", style=style),
        "public_facing": w.Checkbox(value=v["public_facing"], description="public-facing (jailbreak risk)"),
        "consistency_critical": w.Checkbox(value=v["consistency_critical"], description="brand-critical consistency"),
        "personas": w.IntSlider(value=v["personas"], min=1, max=10, description="personas on one model",
                                style=style, layout=lay),
        "prototyping": w.Checkbox(value=False, description="prototyping"),
        "ml_expertise": w.Checkbox(value=True, description="ML operations skills"),
        "long_conversations": w.Checkbox(value=False, description="long conversations"),
        "latency_critical": w.Checkbox(value=False, description="latency-critical"),
    }
    use_ev = w.Checkbox(value=evidence is not None and bool(evidence.describe()),
                        description="use my measured numbers", disabled=evidence is None or not evidence.describe())
    out = w.HTML()
    out.add_class("personalab-recommendation")

    def update(_: Any = None) -> None:
        kwargs = {k: c.value for k, c in controls.items()}
        rec = recommend(**kwargs, evidence=evidence if use_ev.value else None)
        out.value = rec._repr_html_()

    for c in [*controls.values(), use_ev]:
        c.observe(update, names="value")
    update()
    rows = [volume.widget, *list(controls.values())[1:5]]
    box = w.VBox([w.HBox([w.VBox(rows), w.VBox([*list(controls.values())[5:], use_ev])]), out])
    box.add_class("personalab-decision-explorer")
    box.controls, box.sliders, box.recommendation = controls, {"monthly_requests": volume.slider}, out
    return box
