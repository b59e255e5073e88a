"""Cost explorer: sliders for volume, token sizes, turns, caching, fine-tuned prices, training and self-hosting.

All arithmetic is in :mod:`personalab.costs`. :func:`update` turns the widgets' values into a
:class:`View` (the comparison, an HTML summary and the cost-vs-volume curves) and is a plain function,
tested without a browser; :func:`explorer` only wires ipywidgets to it.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

from . import costs
from .errors import InputError

DEFAULTS: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "requests_per_month": 500_000,
    "persona_tokens": 500,
    "user_tokens": 50,
    "response_tokens": 200,
    "turns": 1,
    "caching": False,
    "use_table_finetuned": True,
    "finetuned_multiplier": 2.0,
    "training_tokens": 1_000_000,
    "epochs": 3,
    "months": 12,
    "self_hosted": False,
    "gpu": "t4",
    "output_tokens_per_second": 400.0,
    "prompt_tokens_per_second": 4000.0,
    "always_on": True,
}


@dataclass
class View:
    """What the explorer shows for one set of values."""

    values: dict[str, Any]
    comparison: costs.Comparison | None = None
    error: str | None = None
    volumes: list[float] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)
    html: str = ""

    @property
    def crossovers(self) -> dict[str, float | None]:
        """Break-even volume per challenger plan (None: no crossover)."""
        if self.comparison is None:
            return {}
        return {b.challenger: b.volume for b in self.comparison.break_evens}


def scenario_from(values: dict[str, Any], prices: costs.PriceTable) -> costs.Scenario:
    v = {**DEFAULTS, **values}
    sh = None
    if v["self_hosted"]:
        gpu = prices.gpu(v["gpu"])
        sh = costs.SelfHosted(
            gpu_hour=gpu.gpu_hour,
            output_tokens_per_second=float(v["output_tokens_per_second"]),
            prompt_tokens_per_second=float(v["prompt_tokens_per_second"]) or None,
            min_hours_per_month=costs.HOURS_PER_MONTH if v["always_on"] else 0.0,
            label=f"self-hosted {v['gpu']}",
        )
    return costs.Scenario(
        model=v["model"],
        requests_per_month=float(v["requests_per_month"]),
        persona_tokens=float(v["persona_tokens"]),
        user_tokens=float(v["user_tokens"]),
        response_tokens=float(v["response_tokens"]),
        turns=int(v["turns"]),
        caching=bool(v["caching"]),
        finetuned_multiplier=None if v["use_table_finetuned"] else float(v["finetuned_multiplier"]),
        training_tokens=float(v["training_tokens"]),
        epochs=int(v["epochs"]),
        months=float(v["months"]),
        self_hosted=sh,
    )


def volume_grid(volume: float, crossovers: list[float], points: int = 60) -> list[float]:
    """Log-spaced volumes covering 1/100x..100x the chosen volume and every crossover."""
    marks = [volume] + [c for c in crossovers if c and c > 0]
    lo = math.floor(math.log10(min(marks) / 100))
    hi = math.ceil(math.log10(max(marks) * 100))
    lo, hi = max(lo, 0), max(hi, lo + 1)
    return [10 ** (lo + (hi - lo) * i / (points - 1)) for i in range(points)]


def update(values: dict[str, Any], prices: costs.PriceTable | None = None) -> View:
    """Compute everything the explorer displays; bad input becomes ``View.error`` (never an exception)."""
    view = View(values={**DEFAULTS, **values})
    try:
        prices = prices or costs.load_prices()
        s = scenario_from(view.values, prices)
        cmp = costs.compare(s, prices)
    except InputError as exc:
        view.error = str(exc)
        view.html = f"<pre style='color:#b00'>{html.escape(view.error)}</pre>"
        return view
    view.comparison = cmp
    view.volumes = volume_grid(s.requests_per_month, [b.volume or 0 for b in cmp.break_evens])
    view.curves = {p.name: [p.monthly(v, s.months) for v in view.volumes] for p in cmp.plans}
    view.html = summary_html(cmp)
    return view


def summary_html(cmp: costs.Comparison) -> str:
    s = cmp.scenario
    head = (
        "<tr><th>plan</th><th>per request</th><th>per month (running)</th><th>one-time</th>"
        f"<th>per month incl. one-time over {s.months:g} months</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(r['plan'])}</td><td>${costs.fmt_usd(r['per_request_usd'])}</td>"
        f"<td>${costs.fmt_usd(r['running_monthly_usd'])}</td><td>${costs.fmt_usd(r['one_time_usd'])}</td>"
        f"<td>${costs.fmt_usd(r['monthly_incl_one_time_usd'])}</td></tr>"
        for r in cmp.rows()
    )
    t = cmp.tokens
    conv = (
        f"<p>{s.requests_per_month:,.0f} requests/month = {s.requests_per_month / s.turns:,.0f} conversations of "
        f"{s.turns} turn(s). Tokens per conversation: system prompt approach {t['system prompt'].input:,.0f} in "
        f"({t['system prompt'].cached:,.0f} cached) + {t['system prompt'].output:,.0f} out; fine-tuned "
        f"{t['fine-tuned'].input:,.0f} in + {t['fine-tuned'].output:,.0f} out.</p>"
    )
    evens = "".join(f"<li>{html.escape(b.reason)}</li>" for b in cmp.break_evens)
    return f"<table>{head}{body}</table>{conv}<ul>{evens}</ul>"


def plot(view: View, ax: Any = None) -> Any:
    """Monthly cost against volume (log-log), the chosen volume and each crossover marked."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    if view.comparison is None:
        ax.text(0.5, 0.5, view.error or "nothing to show", ha="center", va="center", wrap=True, fontsize=8)
        ax.set_axis_off()
        return fig if fig is not None else ax.figure
    s = view.comparison.scenario
    for name, ys in view.curves.items():
        ax.plot(view.volumes, ys, label=name)
    ax.axvline(s.requests_per_month, color="grey", linestyle=":", linewidth=1, label="your volume")
    notes = []
    for b in view.comparison.break_evens:
        if b.volume:
            plan = next(p for p in view.comparison.plans if p.name == b.challenger)
            y = plan.monthly(b.volume, s.months)
            ax.plot([b.volume], [y], "o", color="black")
            ax.annotate(
                f"break-even\n{costs.fmt_volume(b.volume)}/month",
                (b.volume, y),
                textcoords="offset points",
                xytext=(8, -24),
                fontsize=8,
            )
        else:
            notes.append(b.reason)
    if notes:
        ax.text(
            0.02,
            0.98,
            "\n".join("no crossover: " + n.removeprefix("never: ") if n.startswith("never") else n for n in notes),
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            wrap=True,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests per month")
    ax.set_ylabel(f"US$ per month (one-time costs over {s.months:g} months)")
    ax.set_title(f"{s.model}: system prompt vs fine-tuned", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def explorer(prices: costs.PriceTable | None = None, **initial: Any) -> Any:
    """The interactive cost explorer (an ipywidgets box). ``initial`` overrides :data:`DEFAULTS`."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    prices = prices or costs.load_prices()
    v = {**DEFAULTS, **initial}
    style = {"description_width": "170px"}
    lay = w.Layout(width="460px")
    controls = {
        "model": w.Dropdown(options=sorted(prices.models), value=v["model"], description="model", style=style),
        "requests_per_month": w.FloatLogSlider(
            value=v["requests_per_month"],
            base=10,
            min=2,
            max=8,
            step=0.05,
            description="requests / month",
            style=style,
            layout=lay,
            readout_format=",.0f",
        ),
        "persona_tokens": w.IntSlider(
            value=v["persona_tokens"], min=0, max=5000, step=10, description="persona tokens", style=style, layout=lay
        ),
        "user_tokens": w.IntSlider(
            value=v["user_tokens"], min=1, max=2000, step=5, description="user tokens", style=style, layout=lay
        ),
        "response_tokens": w.IntSlider(
            value=v["response_tokens"], min=1, max=2000, step=5, description="response tokens", style=style, layout=lay
        ),
        "turns": w.IntSlider(
            value=v["turns"], min=1, max=50, description="turns / conversation", style=style, layout=lay
        ),
        "caching": w.Checkbox(value=v["caching"], description="prompt caching"),
        "use_table_finetuned": w.Checkbox(value=v["use_table_finetuned"], description="fine-tuned prices from table"),
        "finetuned_multiplier": w.FloatSlider(
            value=v["finetuned_multiplier"],
            min=1,
            max=5,
            step=0.25,
            description="else: x base price",
            style=style,
            layout=lay,
        ),
        "training_tokens": w.IntText(value=v["training_tokens"], description="training file tokens", style=style),
        "epochs": w.IntSlider(value=v["epochs"], min=1, max=10, description="epochs", style=style, layout=lay),
        "months": w.IntSlider(
            value=v["months"], min=1, max=36, description="spread one-time over (months)", style=style, layout=lay
        ),
        "self_hosted": w.Checkbox(value=v["self_hosted"], description="add self-hosted fine-tuned"),
        "gpu": w.Dropdown(
            options=sorted(prices.self_hosted) or [v["gpu"]],
            value=v["gpu"]
            if v["gpu"] in prices.self_hosted or not prices.self_hosted
            else sorted(prices.self_hosted)[0],
            description="GPU ($/hour from table)",
            style=style,
        ),
        "output_tokens_per_second": w.FloatText(
            value=v["output_tokens_per_second"], description="output tokens/s (measured)", style=style
        ),
        "prompt_tokens_per_second": w.FloatText(
            value=v["prompt_tokens_per_second"], description="prompt tokens/s (measured)", style=style
        ),
        "always_on": w.Checkbox(value=v["always_on"], description="GPU always on (730 h/month)"),
    }
    summary = w.HTML()
    out = w.Output()

    def refresh(_change: Any = None) -> None:
        values = {k: c.value for k, c in controls.items()}
        controls["finetuned_multiplier"].disabled = values["use_table_finetuned"]
        for k in ("gpu", "output_tokens_per_second", "prompt_tokens_per_second", "always_on"):
            controls[k].disabled = not values["self_hosted"]
        view = update(values, prices)
        summary.value = view.html
        box.view = view
        with out:
            out.clear_output(wait=True)
            fig = plot(view)
            plt.show()
            plt.close(fig)

    for c in controls.values():
        c.observe(refresh, names="value")
    left = w.VBox(
        [
            controls[k]
            for k in (
                "model",
                "requests_per_month",
                "persona_tokens",
                "user_tokens",
                "response_tokens",
                "turns",
                "caching",
            )
        ]
    )
    right = w.VBox(
        [
            controls[k]
            for k in (
                "use_table_finetuned",
                "finetuned_multiplier",
                "training_tokens",
                "epochs",
                "months",
                "self_hosted",
                "gpu",
                "output_tokens_per_second",
                "prompt_tokens_per_second",
                "always_on",
            )
        ]
    )
    box = w.VBox([w.HBox([left, right]), summary, out])
    box.controls = controls  # for tests and for notebooks that want to set values
    box.summary = summary
    refresh()
    return box


class Table:
    """A list of dicts shown as an HTML table in Jupyter (and as aligned text elsewhere)."""

    def __init__(self, rows: list[dict[str, Any]], columns: list[str] | None = None, digits: int = 4) -> None:
        self.rows = rows
        self.columns = columns or (list(rows[0]) if rows else [])
        self.digits = digits

    def _cell(self, v: Any) -> str:
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        if isinstance(v, float):
            if v.is_integer() and abs(v) < 1e15:
                return f"{v:,.0f}"
            return f"{v:.{self.digits}g}"
        return "-" if v is None else str(v)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._cell(r.get(c)))}</td>" for c in self.columns) + "</tr>"
            for r in self.rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    def __repr__(self) -> str:
        cells = [[self._cell(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)


def plot_turns(rows: list[dict[str, float]], ax: Any = None) -> Any:
    """Cost of each turn of one conversation: the system prompt is re-sent and the history grows."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
    turns = [r["turn"] for r in rows]
    ax.plot(turns, [r["prompt_usd"] * 1e6 for r in rows], marker="o", label="system prompt")
    ax.plot(turns, [r["finetuned_usd"] * 1e6 for r in rows], marker="s", label="fine-tuned")
    ax.set_xlabel("turn of the conversation")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("US$ per 1M such requests")
    ax.set_title("Each turn re-sends the persona and the whole history", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def plot_threshold(
    w: costs.Workload, base: costs.Rates, finetuned: costs.Rates, max_turns: int = 20, ax: Any = None
) -> Any:
    """Persona size above which fine-tuning is cheaper per request, against turns, with and without caching."""
    import dataclasses

    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
    turns = list(range(1, max_turns + 1))
    for caching in (costs.Caching(enabled=False), costs.Caching(enabled=True)):
        if caching.enabled and base.cached_input is None:
            continue
        ys = [
            costs.persona_break_even_tokens(dataclasses.replace(w, turns=t), base, finetuned, caching=caching)
            for t in turns
        ]
        ax.plot(
            turns,
            [math.nan if y is None else y for y in ys],
            marker=".",
            label="threshold, prompt caching " + ("on" if caching.enabled else "off"),
        )
    ax.axhline(w.persona_tokens, color="grey", linestyle="--", label=f"your persona ({w.persona_tokens:g} tokens)")
    ax.set_xlabel("turns per conversation")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("persona tokens")
    ax.set_title(f"Fine-tuning is cheaper per request above the line ({finetuned.label})", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure
