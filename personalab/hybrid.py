"""The hybrid approach: lesson 04's fine-tuned TaskMaster as the core, a short prompt overlay per context.

The fine-tuned weights carry the persona (traits, response pattern, vocabulary); a system prompt of a few
dozen tokens adds what changes: the department's focus and terminology, or a seasonal push. This module
builds those targets (``personalab.evaluate.Target``: the fine-tuned model without a prompt, and with each
overlay) and runs them through lesson 05's harness — the same drift scripts, attack suite, runner and
response cache — adding one measurement of its own: does the overlay show, i.e. how often the replies use
the overlay's terminology compared with the core model's replies to the same conversations?
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .persona import Overlay, available_overlays, load_overlay, render_overlay

CORE = "fine-tuned"
QUICK_TURNS = 12  # turns of one drift script in quick mode (CPU)


def load_overlays(names: Sequence[str | Overlay] | None = None) -> list[Overlay]:
    """The overlays by name (default: every file in ``data/personas/overlays/``)."""
    return [n if isinstance(n, Overlay) else load_overlay(n) for n in (names or available_overlays())]


def target_name(overlay: Overlay) -> str:
    return f"hybrid ({overlay.name})"


def uses_terminology(reply: str, overlay: Overlay) -> bool:
    """True when the reply uses one of the overlay's terms (whole words, case-insensitive)."""
    return any(re.search(rf"(?<!\w){re.escape(term)}(?!\w)", reply, re.IGNORECASE) for term in overlay.terminology)


def overlay_tokens(overlays: Sequence[Overlay], model: str) -> dict[str, float | None]:
    """What each overlay adds to a request on ``model`` (a local checkpoint or an OpenAI model), or None."""
    from . import tokens
    from .errors import InputError

    out: dict[str, float | None] = {}
    for ov in overlays:
        try:
            out[ov.name] = tokens.persona_overhead(render_overlay(ov), model=model)["added_prompt_tokens"]
        except (InputError, OSError, ValueError):
            out[ov.name] = None  # a remote model whose tokenizer is not on this machine
    return out


def hybrid_targets(overlays: Sequence[str | Overlay] | None = None, *, finetuned_dir: str | Path | None = None,
                   core: bool = True) -> list[Any]:
    """[the fine-tuned core without a prompt, then the core with each overlay], served locally.

    The fine-tuned checkpoint comes from lesson 04's saved results unless ``finetuned_dir`` names one; in a fresh
    runtime (a Colab badge opens its own) it is trained now with lesson 04's settings, which says so first.
    """
    from . import evaluate
    from .evaluate.targets import ensure_finetuned

    tuned = Path(finetuned_dir) if finetuned_dir is not None else ensure_finetuned()
    out = [evaluate.local_target(CORE, tuned)] if core else []
    return out + [evaluate.local_target(target_name(ov), tuned, overlay=ov) for ov in load_overlays(overlays)]


@dataclass
class HybridResult:
    """Drift and injection results of the core and of each overlay, plus whether the overlays show."""

    drift: Any  # personalab.evaluate.DriftResult
    injection: Any  # personalab.evaluate.InjectionResult
    overlays: dict[str, Overlay]  # target name -> its overlay
    tokens: dict[str, float | None] = field(default_factory=dict)  # overlay name -> tokens on the served model
    tokens_billed: dict[str, float | None] = field(default_factory=dict)  # on the cost model's model
    token_model: str = ""
    model: str = ""

    def terminology(self) -> dict[str, dict[str, float | None]]:
        """Per overlay target: the share of its replies using its overlay's terms, and the core's share."""
        replies: dict[str, list[str]] = {}
        for r in self.drift.rows:
            replies.setdefault(r.target, []).append(r.reply)
        core = replies.get(CORE, [])
        out = {}
        for name, ov in self.overlays.items():
            own = replies.get(name, [])
            out[name] = {
                "overlay": _share([uses_terminology(x, ov) for x in own]),
                "core": _share([uses_terminology(x, ov) for x in core]) if core else None,
            }
        return out

    def conversations(self) -> int:
        return len({(r.script, r.seed) for r in self.drift.rows})

    def attacks(self) -> int:
        first = self.injection.targets[0] if self.injection.targets else None
        return sum(o.target == first for o in self.injection.outcomes)

    def rows(self) -> list[dict[str, Any]]:
        """One row per target: overlay size, adherence, injection rates, terminology."""
        scorer = self.drift.scorers[0]
        drift = self.drift.summary(scorer)
        inj = self.injection.summary()
        terms = self.terminology()
        out = []
        for t in self.drift.targets:
            ov = self.overlays.get(t)
            d, a = drift.get(t, {}), (inj.get(t) or {}).get("all", {})
            term = terms.get(t, {})
            out.append({
                "target": t,
                "overlay": ov.name if ov else None,
                "overlay_tokens": self.tokens.get(ov.name) if ov else 0,
                "mean_score": _v(d.get("mean_score")),
                "late_mean_score": _v(d.get("late_mean_score")),
                "probe_on_persona": _v(d.get("probe_on_persona_rate")),
                "persona_held": _v(a.get("held")),
                "attack_complied": _v(a.get("complied")),
                "unusable_reply": _v(a.get("broken")),
                "canary_leak": _v(a.get("leak")),
                "terminology": term.get("overlay"),
                "terminology_core": term.get("core"),
            })
        return out

    def table(self) -> Any:
        from .widgets import Table

        return Table(self.rows(), digits=2)

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        scorer = self.drift.scorers[0]
        return (f"<p>adherence: {scorer} scorer; terminology: share of replies using the overlay's terms (core: "
                f"the fine-tuned model without an overlay, same conversations)</p>{self.table()._repr_html_()}")

    def plot(self) -> Any:
        """Three panels per target: adherence in the last turns, persona held under attack, terminology shown."""
        import matplotlib.pyplot as plt

        rows = self.rows()
        names = [r["target"] for r in rows]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
        panels = (("mean_score", f"mean adherence ({self.drift.scorers[0]} scorer)"),
                  ("persona_held", "persona held under attack"), ("terminology", "replies using the overlay's terms"))
        for ax, (key, title) in zip(axes, panels, strict=True):
            vals = [r[key] if r[key] is not None else 0.0 for r in rows]
            bars = ax.bar(range(len(rows)), vals, color=["#888" if r["overlay"] is None else "C0" for r in rows])
            if key == "terminology":
                core = [r["terminology_core"] for r in rows]
                ax.scatter([i for i, c in enumerate(core) if c is not None], [c for c in core if c is not None],
                           color="black", marker="_", s=400, zorder=3, label="core model, same terms")
                ax.legend(fontsize=8)
            ax.bar_label(bars, labels=["n/a" if r[key] is None else f"{r[key]:.2f}" for r in rows], fontsize=7)
            ax.set_xticks(range(len(rows)))
            ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.set_ylim(0, 1.05)
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(f"the hybrid: lesson 04's fine-tuned model + overlays ({self.drift.scorers[0]} scorer, "
                     f"{self.conversations()} drift conversation(s) and {self.attacks()} attacks per target)",
                     fontsize=10)
        fig.tight_layout()
        return fig

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows(),
            "overlay_tokens": {k: v for k, v in self.tokens.items() if v is not None},
            "overlay_tokens_billed": {k: v for k, v in self.tokens_billed.items() if v is not None},
            "token_model": self.token_model,
            "scorer": self.drift.scorers[0],
            "drift": self.drift.to_json(),
            "injection": self.injection.to_json(),
        }

    def save(self) -> Path:
        """Save as ``06/hybrid`` for the report."""
        from . import results

        return results.save("06", "hybrid", self.to_json(), model=self.model or None)


def evaluate_hybrid(
    overlays: Sequence[str | Overlay] | None = None,
    *,
    targets: Sequence[Any] | None = None,
    finetuned_dir: str | Path | None = None,
    settings: Any = None,
    runner: Any = None,
    scripts: Sequence[Any] | None = None,
    attacks: Sequence[Any] | None = None,
    scorer: Any = None,
    token_model: str = "gpt-4o-mini",
    quick: bool | None = None,
) -> HybridResult:
    """Run the core and every overlay through lesson 05's drift scripts and attack suite.

    The sampling settings are lesson 05's (``evaluate.suite_settings()``), so every request lesson 05 already
    sent (the core, the marketing overlay) is answered by the response cache. ``quick`` (the default on CPU)
    plays the first :data:`QUICK_TURNS` turns of one drift script and one attack per category — prefixes of
    lesson 05's conversations, so also cached; otherwise lesson 05's full suites. ``targets`` replaces the
    served models (tests pass fakes).
    """
    from . import config, evaluate

    quick = (not config.cuda_available()) if quick is None else quick
    ovs = load_overlays(overlays)
    settings = settings or evaluate.suite_settings(quick)
    targets = list(targets) if targets is not None else hybrid_targets(ovs, finetuned_dir=finetuned_dir)
    by_name = {target_name(ov): ov for ov in ovs}
    runner = runner or settings.runner()
    n_scripts, per_category = (1, 1) if quick else (settings.n_scripts, settings.per_category)
    scripts = list(scripts) if scripts is not None else evaluate.load_scripts()[:n_scripts]
    attacks = (list(attacks) if attacks is not None
               else evaluate.sample_attacks(evaluate.load_attacks(), per_category))
    scorer = scorer or evaluate.RuleScorer()
    drift = evaluate.run_drift(targets, scripts, runner, scorers=[scorer], seeds=settings.seeds,
                               max_turns=QUICK_TURNS if quick else None)
    injection = evaluate.run_attacks(targets, attacks, runner, canary=evaluate.DEFAULT_CANARY, scorer=scorer)
    model = str(targets[0].model) if targets else ""
    return HybridResult(drift, injection, {t.name: by_name[t.name] for t in targets if t.name in by_name},
                        tokens=overlay_tokens(ovs, model) if model else {},
                        tokens_billed=overlay_tokens(ovs, token_model), token_model=token_model, model=model)


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _v(est: Any) -> float | None:
    if not est or not est.get("n"):
        return None
    return est.get("value")
