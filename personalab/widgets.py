"""Cost explorer: sliders for volume, token sizes, turns, caching, fine-tuned prices, training, self-hosting and
distillation (a prompted large API model against a small self-hosted model fine-tuned on its replies).

All arithmetic is in :mod:`personalab.costs`. :func:`update` turns the widgets' values into a
:class:`View` (the comparison, an HTML summary and the cost-vs-volume curves) and is a plain function,
tested without a browser; :func:`explorer` only wires ipywidgets to it.
"""

from __future__ import annotations

import html
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from . import costs, plots
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
    "distill": False,
    "distill_examples": 2000,
    "training_gpu_hours": 1.0,
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
    distillation = None
    if v["self_hosted"] and v["distill"]:
        distillation = costs.Distillation(examples=int(v["distill_examples"]),
                                          training_gpu_hours=float(v["training_gpu_hours"]))
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
        distillation=distillation,
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
    return view_of(cmp, view)


def view_of(cmp: costs.Comparison, view: View | None = None) -> View:
    """The explorer's view of a comparison made with :func:`costs.compare` (for :func:`plot` in a lesson)."""
    s = cmp.scenario
    view = view or View(values={})
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
    if s.distillation is not None and s.self_hosted is not None:
        d, sh = s.distillation, s.self_hosted
        conv += (
            f"<p>Distillation (assumptions, edit them): {s.model} with the persona prompt writes "
            f"{d.examples:,} training replies, the small model trains {d.training_gpu_hours:g} GPU-hour(s) at "
            f"${costs.fmt_usd(sh.gpu_hour)}/hour and serves {sh.output_tokens_per_second:g} output tokens/s.</p>"
        )
    evens = "".join(f"<li>{html.escape(b.reason)}</li>" for b in cmp.break_evens)
    return f"<table>{head}{body}</table>{conv}<ul>{evens}</ul>"


def plot(view: View, ax: Any = None) -> Any:
    """Monthly cost against volume (log-log), the chosen volume and each crossover marked.

    Without ``ax`` the figure is a standalone :class:`matplotlib.figure.Figure` (not pyplot), so a widget
    callback can build it in any thread; every text is plain (a ``$`` is a dollar sign, never mathtext).
    """
    fig = None
    if ax is None:
        fig, ax = plots.figure((7, 4))
    if view.comparison is None:
        ax.text(0.5, 0.5, view.error or "nothing to show", ha="center", va="center", wrap=True, fontsize=8)
        ax.set_axis_off()
        return plots.plain_text(fig if fig is not None else ax.figure)
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
            "\n".join(
                textwrap.fill("no crossover: " + n.removeprefix("never: ") if n.startswith("never") else n, 100)
                for n in notes
            ),
            transform=ax.transAxes,
            va="top",
            fontsize=7,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    plots.plain_log_ticks(ax)
    ax.set_xlabel("requests per month")
    ax.set_ylabel(f"US$ per month (one-time costs over {s.months:g} months)")
    title = f"{s.model}: system prompt vs fine-tuned"
    if s.distillation is not None:
        title = f"{s.model} with the persona prompt vs a distilled small model"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return plots.plain_text(fig if fig is not None else ax.figure)


def plot_alt(view: View) -> str:
    """The plot in words (the image's alt text): what a screen reader, or a browser test, can read."""
    if view.comparison is None:
        return f"no plot: {view.error}"
    s = view.comparison.scenario
    evens = "; ".join(b.reason for b in view.comparison.break_evens)
    return f"{s.model}: monthly cost against volume, your volume {costs.fmt_volume(s.requests_per_month)}; {evens}"


def plot_html(view: View) -> str:
    """The plot as an inline PNG ``<img>``, rendered under :data:`plots.RENDER_LOCK`."""
    return plots.img_tag(plots.png(plot(view)), plot_alt(view))


@dataclass
class NumberControl:
    """A number box (the value, exact) beside a slider (a quick way to move it).

    The box is the source of truth: typing 500000 gives exactly 500,000. Moving the slider writes its
    value, rounded to ``digits`` significant digits, into the box. A slider that snaps the box's value to
    its own step (a log slider turns 500,000 into 501,187) changes nothing, because its position did not move.
    """

    box: Any
    slider: Any
    log: bool = False
    digits: int = 3
    _syncing: bool = False

    @property
    def widget(self) -> Any:
        import ipywidgets as w

        return w.HBox([self.slider, self.box])

    def position(self, value: float) -> int:
        """The slider step that ``value`` falls on."""
        s = self.slider
        if self.log:
            return round((math.log10(max(value, 10**s.min)) - s.min) / s.step)
        return round((min(max(value, s.min), s.max) - s.min) / s.step)

    def link(self) -> NumberControl:
        self.slider.observe(self._from_slider, names="value")
        self.box.observe(self._from_box, names="value")
        return self

    def _from_slider(self, change: Any) -> None:
        if self._syncing or self.position(change["new"]) == self.position(self.box.value):
            return
        value = float(f"{change['new']:.{self.digits}g}")
        self._set(self.box, int(round(value)) if isinstance(self.box.value, int) else value)

    def _from_box(self, change: Any) -> None:
        if not self._syncing and self.position(change["new"]) != self.position(self.slider.value):
            self._set(self.slider, change["new"])

    def _set(self, widget: Any, value: Any) -> None:
        self._syncing = True
        try:
            widget.value = value
        finally:
            self._syncing = False


def number_control(
    value: float,
    lo: float,
    hi: float,
    step: float,
    description: str,
    *,
    log: bool = False,
    integer: bool = True,
    style: dict[str, str] | None = None,
) -> NumberControl:
    """A slider (linear, or log10 from ``10**lo`` to ``10**hi``) with an exact number box beside it."""
    import ipywidgets as w

    style = style or {}
    lay = w.Layout(width="360px")
    if log:
        slider = w.FloatLogSlider(
            value=value,
            base=10,
            min=lo,
            max=hi,
            step=step,
            description=description,
            readout=False,
            style=style,
            layout=lay,
        )
    elif integer:
        slider = w.IntSlider(
            value=value, min=lo, max=hi, step=step, description=description, readout=False, style=style, layout=lay
        )
    else:
        slider = w.FloatSlider(
            value=value, min=lo, max=hi, step=step, description=description, readout=False, style=style, layout=lay
        )
    box_layout = w.Layout(width="110px")
    box = w.IntText(value=int(value), layout=box_layout) if integer else w.FloatText(value=value, layout=box_layout)
    setattr(box, "tooltip" if box.has_trait("tooltip") else "description_tooltip", description)  # ipywidgets 8 / 7
    slider.add_class("personalab-slider")
    box.add_class("personalab-number")
    return NumberControl(box, slider, log=log).link()


def explorer(prices: costs.PriceTable | None = None, **initial: Any) -> Any:
    """The interactive cost explorer (an ipywidgets box). ``initial`` overrides :data:`DEFAULTS`.

    Every number has an exact box beside its slider; the plot is an inline PNG redrawn on each change.
    """
    import ipywidgets as w

    prices = prices or costs.load_prices()
    v = {**DEFAULTS, **initial}
    style = {"description_width": "170px"}
    numbers = {
        "requests_per_month": number_control(
            v["requests_per_month"], 2, 8, 0.05, "requests / month", log=True, style=style
        ),
        "persona_tokens": number_control(v["persona_tokens"], 0, 5000, 10, "persona tokens", style=style),
        "user_tokens": number_control(v["user_tokens"], 1, 2000, 5, "user tokens", style=style),
        "response_tokens": number_control(v["response_tokens"], 1, 2000, 5, "response tokens", style=style),
        "turns": number_control(v["turns"], 1, 50, 1, "turns / conversation", style=style),
        "finetuned_multiplier": number_control(
            v["finetuned_multiplier"], 1, 5, 0.25, "else: x base price", integer=False, style=style
        ),
        "epochs": number_control(v["epochs"], 1, 10, 1, "epochs", style=style),
        "months": number_control(v["months"], 1, 36, 1, "spread one-time over (months)", style=style),
    }
    controls = {
        "model": w.Dropdown(options=sorted(prices.models), value=v["model"], description="model", style=style),
        **{
            k: numbers[k].box
            for k in ("requests_per_month", "persona_tokens", "user_tokens", "response_tokens", "turns")
        },
        "caching": w.Checkbox(value=v["caching"], description="prompt caching"),
        "use_table_finetuned": w.Checkbox(value=v["use_table_finetuned"], description="fine-tuned prices from table"),
        "finetuned_multiplier": numbers["finetuned_multiplier"].box,
        "training_tokens": w.IntText(value=v["training_tokens"], description="training file tokens", style=style),
        "epochs": numbers["epochs"].box,
        "months": numbers["months"].box,
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
        "distill": w.Checkbox(value=v["distill"], description="distilled small model"),
        "distill_examples": w.IntText(
            value=v["distill_examples"], description="teacher-written examples", style=style
        ),
        "training_gpu_hours": w.FloatText(
            value=v["training_gpu_hours"], description="training GPU-hours", style=style
        ),
    }
    summary = w.HTML()
    summary.add_class("personalab-summary")
    figure = w.HTML()
    figure.add_class("personalab-plot")

    def refresh(_change: Any = None) -> None:
        with plots.RENDER_LOCK:
            values = {k: c.value for k, c in controls.items()}
            numbers["finetuned_multiplier"].slider.disabled = values["use_table_finetuned"]
            controls["finetuned_multiplier"].disabled = values["use_table_finetuned"]
            for k in ("gpu", "output_tokens_per_second", "prompt_tokens_per_second", "always_on", "distill"):
                controls[k].disabled = not values["self_hosted"]
            for k in ("distill_examples", "training_gpu_hours"):
                controls[k].disabled = not (values["self_hosted"] and values["distill"])
            view = update(values, prices)
            box.view = view
            summary.value = view.html
            try:
                figure.value = plot_html(view)
            except Exception as exc:  # a plot must never replace the explorer with a traceback
                figure.value = (
                    f"<p style='color:#b00'>plot failed: {html.escape(type(exc).__name__)}: "
                    f"{html.escape(str(exc).strip().splitlines()[-1] if str(exc).strip() else '')}</p>"
                )

    for c in controls.values():
        c.observe(refresh, names="value")

    def row(k: str) -> Any:
        return numbers[k].widget if k in numbers else controls[k]

    left = w.VBox(
        [
            row(k)
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
            row(k)
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
                "distill",
                "distill_examples",
                "training_gpu_hours",
            )
        ]
    )
    box = w.VBox([w.HBox([left, right]), summary, figure])
    box.add_class("personalab-cost-explorer")
    box.controls = controls  # the exact values (number boxes): for tests and for notebooks that set values
    box.sliders = {k: n.slider for k, n in numbers.items()}
    box.summary = summary
    box.figure = figure
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
    return plots.plain_text(fig if fig is not None else ax.figure)


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
    return plots.plain_text(fig if fig is not None else ax.figure)
