"""The report's pictures: drift per turn, injection rates per category, cost against volume, training loss.

Each figure is drawn from saved results only (``personalab.results``), captioned with the model and hardware
that produced it, and rendered to PNG without pyplot. A result that is missing gives no figure and a line
saying which lesson to run; a chart whose values are all equal (every bar at 0) says so in its title.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import plots

Records = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Figure:
    """One picture of the report: a file name, a title, a caption naming model and hardware, the PNG."""

    name: str
    title: str
    caption: str
    png: bytes


def _origin(rec: Mapping[str, Any], model: Any = None) -> str:
    model = model or rec.get("model") or "?"
    if isinstance(model, Mapping):
        model = ", ".join(f"{k}: {v}" for k, v in model.items())
    return f"{model} · {rec.get('hardware', '?')} · saved {rec.get('saved_at', '?')}"


def drift(rec: Mapping[str, Any]) -> Figure | None:
    d = rec.get("data") or {}
    per_turn = d.get("per_turn") or {}
    if not per_turn:
        return None
    fig, ax = plots.figure((7, 3.6))
    values: list[float] = []
    for target, points in per_turn.items():
        pts = [(i + 1, p) for i, p in enumerate(points) if p and p.get("n")]
        if not pts:
            continue
        xs = [x for x, _ in pts]
        line = ax.plot(xs, [p["value"] for _, p in pts], marker="o", ms=3, label=target)[0]
        ax.fill_between(xs, [p["low"] for _, p in pts], [p["high"] for _, p in pts], color=line.get_color(), alpha=0.15)
        values += [p["value"] for _, p in pts]
    note = plots.degenerate_note(values)
    title = f"Persona adherence per turn ({d.get('scorer', '?')} scorer), 95 % confidence bands"
    ax.set_title(title + (f"\n{note}" if note else ""), fontsize=9)
    ax.set_xlabel("user turn")
    ax.set_ylabel("adherence")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Figure("drift.png", "Drift over long conversations (lesson 05)", _origin(rec), plots.png(fig))


INJECTION_WHY = {
    "complied": "no attack made it follow the injected instruction (a model too small to follow any is no evidence "
    "of robustness)",
    "leak": "the canary never appeared in a reply",
    "held": "the persona score did not change under any attack",
    "broken": "no reply was rejected as unusable",
}
INJECTION_LABELS = {"held": "persona held", "complied": "complied with the attack", "leak": "canary leak",
                    "broken": "broken / unusable reply", "neither": "no evidence either way"}


def injection(rec: Mapping[str, Any], metric: str = "complied") -> Figure | None:
    summary = (rec.get("data") or {}).get("summary") or {}
    if not summary:
        return None
    targets = list(summary)
    cats = list(next(iter(summary.values())))
    fig, ax = plots.figure((max(7.0, 0.9 * len(cats)), 3.6))
    width = 0.8 / max(1, len(targets))
    values: list[float] = []
    for i, t in enumerate(targets):
        xs, ys, lo, hi = [], [], [], []
        for j, c in enumerate(cats):
            rates = summary[t].get(c) or {}
            est = rates.get(metric) or (rates.get("success") if metric == "complied" else None)  # older results
            if not est or not est.get("n"):
                continue
            xs.append(j + (i - (len(targets) - 1) / 2) * width)
            ys.append(est["value"])
            lo.append(est["value"] - est["low"])
            hi.append(est["high"] - est["value"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=t)
        values += ys
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    label = INJECTION_LABELS[metric]
    note = plots.degenerate_note(values, INJECTION_WHY.get(metric, ""))
    ax.set_title(f"Prompt injection: {label} rate per category, 95 % CI" + (f"\n{note}" if note else ""), fontsize=9)
    ax.set_ylabel(f"{label} rate")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return Figure(f"injection_{metric}.png", f"Injection: {label} (lesson 05)", _origin(rec), plots.png(fig))


def costs(rec: Mapping[str, Any]) -> Figure | None:
    from . import widgets

    d = rec.get("data") or {}
    if not d.get("persona_tokens"):
        return None
    values = {
        "model": d.get("model", "gpt-4o-mini"),
        "requests_per_month": d.get("requests_per_month", 500_000),
        "persona_tokens": d["persona_tokens"],
        "user_tokens": d.get("user_tokens", 50),
        "response_tokens": d.get("response_tokens", 200),
    }
    view = widgets.update(values)
    if view.comparison is None:
        return None
    fig, ax = plots.figure((7, 4))
    widgets.plot(view, ax=ax)
    caption = f"{_origin(rec)}; prices {d.get('price_source', '?')} ({d.get('price_date', '?')})"
    return Figure("cost_vs_volume.png", "Monthly cost against volume, break-even (lesson 02)", caption, plots.png(fig))


def training_losses(rec: Mapping[str, Any]) -> list[float]:
    """The per-step losses of lesson 04's run, read from ``metrics.json`` beside the saved adapter."""
    d = rec.get("data") or {}
    if d.get("losses"):
        return [float(x) for x in d["losses"]]
    adapter = d.get("adapter_dir")
    path = Path(adapter).parent / "metrics.json" if adapter else None
    if path is None or not path.is_file():
        return []
    try:
        return [float(x) for x in json.loads(path.read_text()).get("losses", [])]
    except (OSError, ValueError, TypeError):
        return []


def training(rec: Mapping[str, Any]) -> Figure | None:
    losses = training_losses(rec)
    if not losses:
        return None
    d = rec.get("data") or {}
    fig, ax = plots.figure((7, 3.4))
    ax.plot(range(1, len(losses) + 1), losses, marker=".", ms=3)
    note = plots.degenerate_note(losses)
    ax.set_title(
        f"Training loss per step ({d.get('backend', '?')}, {d.get('device', '?')})" + (f"\n{note}" if note else ""),
        fontsize=9,
    )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    return Figure(
        "training_loss.png", "Fine-tuning loss (lesson 04)", _origin(rec, d.get("base_model")), plots.png(fig)
    )


#: Which saved result each figure needs, and how to draw it.
FIGURES: dict[str, Callable[[Mapping[str, Any]], Figure | None]] = {
    "05/drift": drift,
    "05/injection": injection,
    "02/costs": costs,
    "04/training": training,
}


def build(records: Records) -> tuple[list[Figure], list[str]]:
    """Every figure the saved results allow, and a line for each one they do not (which lesson to run)."""
    figures, missing = [], []
    for key, draw in FIGURES.items():
        rec = records.get(key)
        fig = draw(rec) if rec else None
        if fig is None:
            missing.append(f"{key}: run lesson {key[:2]} to draw this figure")
        else:
            figures.append(fig)
    return figures, missing
