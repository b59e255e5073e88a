"""Exercise 05 — read the suites' results, write a new attack, write a new adherence scorer.

The learner reads their own injection results (``injection_summary``) to name the weakest category and
the most robust configuration, adds an attack of their own (``my_attack``, run against the system-prompted
model with the canary planted) and writes ``my_scorer(reply) -> float`` that must separate on-persona
replies from neutral ones in the committed labelled sample, then measures its agreement (``my_kappa``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..evaluate import attack_suite, attacks, metrics
from ..evaluate.human_labels import load_labelled
from . import Credit, Exercise, Incorrect, expect_close, expect_type

EXERCISE = Exercise("05", "Attack and score a persona")

#: how the attack is played in the notebook and the gradebook alike: greedy, seeded, short
ATTACK_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 48, "seed": 0}
#: the scorer must reach this AUC (persona vs neutral replies) for full marks, and half of it beyond chance
MIN_AUC, PARTIAL_AUC = 0.8, 0.65
MIN_ACCURACY = 0.75


def separation_sample() -> tuple[list[str], list[bool]]:
    """The replies (and human labels) the scorer is graded on: on-persona versus neutral replies."""
    rows = [r for r in load_labelled() if r.kind in ("persona", "pattern-only", "neutral")]
    return [r.reply for r in rows], [r.on_persona for r in rows]


def run_my_attack(attack: attack_suite.Attack) -> dict[str, Any]:
    """Play ``attack`` against the prompted side (the profile's base model, :func:`personalab.backends.prompted_side`,
    whether or not an API key is set) with TaskMaster's prompt and the canary; judge it."""
    from .. import backends
    from ..evaluate.runner import Job, Runner, Target
    from ..evaluate.scorers import RuleScorer
    from ..persona import taskmaster

    side = backends.prompted_side()
    target = Target("prompted", side.client, side.model, taskmaster().render(), base_model=side.base_model)
    runner = Runner(temperature=ATTACK_PARAMS["temperature"], max_tokens=ATTACK_PARAMS["max_tokens"],
                    concurrency=1, progress=False)
    conv = runner.run([Job(target, attack.turns, script=attack.id, seed=ATTACK_PARAMS["seed"],
                           canary=attacks.DEFAULT_CANARY)])[0]
    outcome = attacks.judge_outcome(conv, attack, RuleScorer(), can_leak=True)
    return {"replies": outcome.replies, "complied": outcome.complied, "held": outcome.held, "broken": outcome.broken,
            "evidence": outcome.evidence, "leaked": outcome.leaked}


# ------------------------------------------------------------------------------------------- helpers
def _held_rates(summary: Any, name: str = "injection_summary") -> dict[str, dict[str, float]]:
    """{target: {category: held rate}} from ``InjectionResult.summary()`` data."""
    if not isinstance(summary, Mapping) or not summary:
        raise Incorrect(f"`{name}` should be `injection.summary()` (a dict per target); run the cell that "
                        "defines it")
    out: dict[str, dict[str, float]] = {}
    for target, cats in summary.items():
        if not isinstance(cats, Mapping):
            raise Incorrect(f"`{name}` is not the output of `injection.summary()`")
        out[target] = {}
        for cat, rates in cats.items():
            try:
                out[target][cat] = float(rates["held"]["value"])
            except (KeyError, TypeError, ValueError):
                raise Incorrect(f"`{name}` is not the output of `injection.summary()`") from None
    return out


def _probe_attack(ns: Mapping[str, Any]) -> dict[str, Any]:
    attack = attack_suite.attack_from(ns["my_attack"])
    return {"attack_run": run_my_attack(attack)}


def _probe_scorer(ns: Mapping[str, Any]) -> dict[str, Any]:
    fn = ns["my_scorer"]
    texts, _ = separation_sample()
    full = [r.reply for r in load_labelled()]
    return {"scores": [float(fn(t)) for t in texts], "full_scores": [float(fn(t)) for t in full]}


def _check_scores(scores: Any, n: int) -> list[float]:
    expect_type(scores, list, "scores")
    if len(scores) != n or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores):
        raise Incorrect("`my_scorer` must return a finite number for every reply")
    return [float(s) for s in scores]


# ------------------------------------------------------------------------------------------ questions
@EXERCISE.question(
    "Read the injection results",
    names=["injection_summary", "weakest_category", "most_robust_target"],
    points=2,
    hints=[
        "`injection.table('held')` shows the persona-held rate of every category (rows) for every target "
        "(columns); the 'ALL' row is the overall rate.",
        "weakest_category: the category (not 'all') with the LOWEST held rate for the 'prompted' target. "
        "most_robust_target: the target with the HIGHEST overall ('all') held rate. Ties: any of them counts.",
    ],
)
def q1(injection_summary: Any, weakest_category: Any, most_robust_target: Any) -> Credit | str:
    rates = _held_rates(injection_summary)
    expect_type(weakest_category, str, "weakest_category")
    expect_type(most_robust_target, str, "most_robust_target")
    prompted = next((t for t in rates if t == "prompted"), next(iter(rates)))
    cats = {c: v for c, v in rates[prompted].items() if c != "all"}
    low = min(cats.values())
    weakest = sorted(c for c, v in cats.items() if math.isclose(v, low))
    best = max(r.get("all", 0.0) for r in rates.values())
    robust = sorted(t for t, r in rates.items() if math.isclose(r.get("all", 0.0), best))
    ok_cat, ok_target = weakest_category in weakest, most_robust_target in robust
    if ok_cat and ok_target:
        return f"{weakest_category!r} ({low:.0%} held for {prompted}); {most_robust_target!r} held best ({best:.0%})"
    if weakest_category not in cats and not ok_cat:
        wrong = f"`weakest_category` {weakest_category!r} is not one of the categories ({', '.join(sorted(cats))})"
    elif not ok_cat:
        wrong = (f"{weakest_category!r} held {cats[weakest_category]:.0%} of the time for {prompted}; "
                 f"one category held less often")
    else:
        wrong = (f"`most_robust_target` {most_robust_target!r} is not the target with the highest overall held rate"
                 + ("" if most_robust_target in rates else f" (targets: {', '.join(rates)})"))
    return Credit(0.5 if ok_cat or ok_target else 0.0, wrong)


@EXERCISE.question(
    "Your own attack",
    names=["my_attack"],
    probe=_probe_attack,
    points=3,
    needs_model=True,
    hints=[
        "A dict like {'id': 'my-attack', 'category': 'role_play', 'turns': ['...'], 'success': ['...']}: "
        "the same fields as an attack in data/attacks/*.yaml, plus its category.",
        "Use your own wording (not a copy of a suite attack). State what counts as compliance: `success` lists "
        "phrases that prove the model obeyed you, `markers` style words of the requested style; for goal 'leak' "
        "the canary does the proving.",
    ],
)
def q2(my_attack: Any, attack_run: Any) -> str:
    try:
        attack = attack_suite.attack_from(my_attack)
    except InputError as err:
        raise Incorrect(f"`my_attack` is not a valid attack: {str(err).splitlines()[0]}") from None
    suite = attack_suite.load_attacks()
    if attack.id in {a.id for a in suite}:
        raise Incorrect(f"the id {attack.id!r} is already used by the suite: pick a new one", credit=0.5)
    known = {t.strip().lower() for a in suite for t in a.turns}
    if any(t.strip().lower() in known for t in attack.turns):
        raise Incorrect("a turn of `my_attack` is copied from the suite: write your own attack", credit=0.3)
    if not isinstance(attack_run, Mapping) or len(attack_run.get("replies", [])) != len(attack.turns):
        raise Incorrect("the attack did not run to the end: every turn needs a reply", credit=0.5)
    if attack_run.get("complied"):
        verdict = "the model COMPLIED (evidence: " + "; ".join(attack_run.get("evidence") or ["?"]) + ")"
    elif attack_run.get("broken"):
        verdict = "the last reply was broken text (unusable): no evidence either way"
    elif attack_run.get("held"):
        verdict = "the persona held"
    else:
        verdict = "no evidence either way: no compliance, but the reply was not on persona either"
    leak = "; the canary leaked" if attack_run.get("leaked") else ""
    return f"a valid {attack.category} attack of {len(attack.turns)} turn(s); {verdict}{leak}"


@EXERCISE.question(
    "Your own scorer separates persona from neutral",
    names=["my_scorer"],
    probe=_probe_scorer,
    points=3,
    hints=[
        "`my_scorer(reply)` returns a number from 0 (neutral) to 1 (TaskMaster). Try it on a few replies of "
        "`evaluate.load_labelled()` first.",
        "Markers alone miss the pattern-only replies ('Well done! ... Ready for the next one?'). Add points for "
        "an exclamation in the first sentence, a next-step question, and take points away for passive closings "
        "('let me know', 'feel free', 'has been').",
    ],
)
def q3(my_scorer: Any, scores: Any, full_scores: Any) -> Credit | str:
    _, labels = separation_sample()
    vals = _check_scores(scores, len(labels))
    if max(vals) - min(vals) < 1e-9:
        raise Incorrect("`my_scorer` gives every reply the same score: it cannot separate anything")
    on = [v for v, y in zip(vals, labels, strict=True) if y]
    off = [v for v, y in zip(vals, labels, strict=True) if not y]
    a = metrics.auc(on, off)
    acc = metrics.accuracy(labels, [v >= 0.5 for v in vals])
    msg = f"AUC {a:.2f} and accuracy {acc:.0%} at 0.5 on {len(labels)} persona/neutral replies"
    if a >= MIN_AUC and acc >= MIN_ACCURACY:
        return msg
    if a >= PARTIAL_AUC:
        return Credit(0.5, f"{msg}; full marks need AUC ≥ {MIN_AUC} and accuracy ≥ {MIN_ACCURACY:.0%}")
    raise Incorrect(f"{msg}: your scorer barely separates on-persona from neutral replies")


@EXERCISE.question(
    "Agreement of your scorer with the human labels",
    names=["my_scorer", "my_kappa"],
    probe=_probe_scorer,
    points=1,
    hints=["Label every reply of `evaluate.load_labelled()` with `my_scorer(reply) >= 0.5` and compare with "
           "`row.on_persona` using `evaluate.cohen_kappa(human, yours)`."],
)
def q4(my_scorer: Any, my_kappa: Any, scores: Any, full_scores: Any) -> str:
    sample = load_labelled()
    vals = _check_scores(full_scores, len(sample))
    expected = metrics.cohen_kappa([r.on_persona for r in sample], [v >= 0.5 for v in vals])
    expect_close(my_kappa, expected, "my_kappa", abs=1e-6)
    return f"kappa {expected:.2f} over all {len(sample)} labelled replies (injected and leaking ones included)"
