"""The article's seven-dimension comparison matrix, filled with what *you* measured in lessons 01-06.

Every cell is built from a saved result (``personalab.results``) and names the model and hardware it came
from. A result that is missing gives a "run lesson NN first" cell (in Colab: not measured in this runtime, and
how to get it), a number no lesson recorded gives "not measured", and a result that cannot be read gives a cell
saying so: the report never crashes and never makes a number up. Beside each row stand the article's figures,
quoted as the article's (most of them it calls illustrative)::

    rep = report.build()          # from personalab.results.load_all()
    rep                           # a table in the notebook
    rep.write("build")            # build/report.md and build/report.html (atomic writes)
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import plots, report_figures, results
from .decision import quick_reference
from .evidence import Evidence, base_mismatch, compared_bases, cost_comparison, duration, how_to_measure
from .io import atomic_write_bytes, atomic_write_text
from .results import Records, model_name, origin, record_data, target_named

#: What each lesson saves that the report reads (``lesson/name``).
SOURCES = {
    "01/steering": "marker rates with and without the prompt",
    "02/tokens": "the persona's token count",
    "02/costs": "monthly cost at a volume, from the cost model",
    "02/latency": "time to first token against prompt length",
    "03/dataset": "the fine-tuning dataset and its training-cost estimate",
    "04/training": "the fine-tuning run: time, memory, marker rates",
    "05/drift": "adherence over long conversations",
    "05/injection": "the injection suite",
    "06/change": "time to change a prompted persona",
    "06/hybrid": "the fine-tuned model with department overlays",
}

#: The article's figures, quoted (system prompt, fine-tuning). Its own label in brackets.
ARTICLE: dict[str, tuple[str, str]] = {
    "setup cost": ("minutes to write the prompt; about 1 hour to a first working persona",
                   "hours (data + training); 10-30 hours to a first working persona"),
    "latency": ("slightly higher: a 300-500-token prompt adds 100-200 ms (approximate, varies by model and "
                "provider)", "optimal: no prompt overhead"),
    "consistency": ("90% / 60% / 40% consistent in short / long conversations / edge cases (illustrative)",
                    "95% / 95% / 85% (illustrative)"),
    "robustness": ("vulnerable to jailbreaking", "resistant to manipulation"),
    "flexibility": ("changes instantly", "requires retraining: new data 1-2 h, training 1-2 h, evaluation 1 h, "
                    "deployment 30 min"),
    "token cost": ("higher (the prompt on every request); worked example: $101.25/month at 500,000 requests "
                   "(500-token prompt, gpt-4o-mini)", "lower per request without the prompt, but at 2x fine-tuned "
                   "prices the worked example is $127.50/month, plus $10-50 training"),
    "expertise": ("prompt engineering", "ML operations"),
}
DIMENSIONS = tuple(ARTICLE)
#: Other results lessons save (listed among the sources, not used in the matrix).
OTHER_SOURCES = {
    "05/scorers": "the scorers' agreement with human labels",
    "05/context_policies": "drift under two context policies",
}
COLUMNS = ("system prompt", "fine-tuning", "hybrid")


# --------------------------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    """One entry of the matrix: ``text``, where it came from, and its ``status``.

    status: ``measured`` (a saved result), ``derived`` (computed from saved results, e.g. by the cost model),
    ``by design`` (true by construction), ``qualitative``, ``not measured`` or ``missing`` (run a lesson).
    """

    text: str
    origin: str = ""
    status: str = "measured"
    needs: str = ""  # the lesson to run first, for a missing cell

    @property
    def available(self) -> bool:
        return self.status not in ("missing", "not measured", "unreadable")


def missing(lesson_key: str) -> Cell:
    lesson = lesson_key.split("/")[0]
    return Cell(f"{how_to_measure(lesson)} (no saved result '{lesson_key}')", status="missing", needs=lesson)


def missing_line(lessons: list[str]) -> str:
    """The report's one line on what is missing: which lessons to run (in Colab: in this runtime, or with Drive)."""
    from . import config

    runs = f"run lesson(s) {', '.join(lessons)}"
    if config.in_colab():
        return (f"Missing (not measured in this runtime): {runs} here, or set USE_DRIVE = True in the setup cell to "
                "keep results across runtimes.")
    return f"Missing: {runs} to fill the empty cells."


def not_measured(why: str) -> Cell:
    return Cell(f"not measured: {why}", status="not measured")


@dataclass(frozen=True)
class Row:
    dimension: str
    cells: dict[str, Cell]
    article: tuple[str, str]


@dataclass
class Report:
    """The filled matrix, plus the list of results it read and what was missing."""

    rows: list[Row]
    used: dict[str, str] = field(default_factory=dict)  # lesson/name -> "model · hardware · saved_at"
    generated_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))
    framework: list[dict[str, str]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)  # report_figures.Figure
    figures_missing: list[str] = field(default_factory=list)
    bases: dict[str, str] = field(default_factory=dict)  # compared side -> its base model (evidence.compared_bases)

    @property
    def base_lines(self) -> list[str]:
        """The base model behind every compared number (lessons 01, 02, 04, 06 and each lesson 05 row), and a warning
        when the compared ones differ (:func:`personalab.evidence.base_mismatch`)."""
        if not self.bases:
            return []
        lines = [f"{name}: {model_name(base)}" + (" (reference row, not part of the comparison)"
                                                   if name.startswith("reference") else "")
                 for name, base in self.bases.items()]  # fmt: skip
        warning = base_mismatch(self.bases)
        return [*lines, warning] if warning else lines

    @property
    def missing_lessons(self) -> list[str]:
        return sorted({c.needs for r in self.rows for c in r.cells.values() if c.needs})

    def cell(self, dimension: str, column: str) -> Cell:
        return next(r for r in self.rows if r.dimension == dimension).cells[column]

    # ---- rendering
    def to_markdown(self) -> str:
        lines = ["# Persona Lab: system prompt vs fine-tuning, measured", "",
                 f"Generated {self.generated_at} from the results saved by the lessons. Each cell names the model "
                 "and hardware it was measured on; the article's figures are quoted for comparison (the article "
                 "calls most of them illustrative).", ""]
        head = ["dimension", *COLUMNS, "article: system prompt", "article: fine-tuning"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            cells = [_md(_cell_text(r.cells[c])) for c in COLUMNS]
            lines.append("| " + " | ".join([f"**{r.dimension}**", *cells, _md(r.article[0]), _md(r.article[1])]) + " |")
        lines += ["", "Status of a cell: measured (a saved result), derived (computed from saved results), "
                  "by design, qualitative, not measured, or missing (run that lesson).", ""]
        if self.missing_lessons:
            lines += [missing_line(self.missing_lessons), ""]
        if self.base_lines:
            lines += ["Base model behind each compared number:", "", *[f"- {_md(b)}" for b in self.base_lines], ""]
        if self.evidence or self.framework:
            lines += ["## The decision framework on your numbers", ""]
            lines += [f"- {e}" for e in self.evidence] or ["- nothing measured yet: the article's thresholds apply"]
            lines += ["", "| scenario | article | framework | why |", "|---|---|---|---|"]
            lines += [f"| {_md(f['scenario'])} | {f['article']} | {f['framework']} | {_md(f['why'])} |"
                      for f in self.framework]
            lines.append("")
        if self.figures or self.figures_missing:
            lines += ["## Figures", ""]
            for f in self.figures:
                lines += [f"![{_md(f.title)}](figures/{f.name})", "", f"*{_md(f.title)}*: {_md(f.caption)}", ""]
            lines += [f"- {_md(m)}" for m in self.figures_missing]
            lines.append("")
        lines += ["## Sources", ""]
        lines += [f"- `{k}`: {_md(v)}" for k, v in self.used.items()] or ["- no saved results yet"]
        return "\n".join(lines) + "\n"

    def _table_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in ("dimension", *COLUMNS, "the article's figures"))
        body = []
        for r in self.rows:
            tds = "".join(_cell_html(r.cells[c]) for c in COLUMNS)
            art = (f"<td style='color:#666'><i>prompt:</i> {html.escape(r.article[0])}<br>"
                   f"<i>fine-tuned:</i> {html.escape(r.article[1])}</td>")
            body.append(f"<tr><th style='text-align:left'>{html.escape(r.dimension)}</th>{tds}{art}</tr>")
        grey = any(not c.available for r in self.rows for c in r.cells.values())
        legend = "Grey cells: not measured or missing (run that lesson). " if grey else ""
        return (f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>"
                f"<p style='font-size:85%'>{legend}Every figure names the model and hardware it came from.</p>")

    def _repr_html_(self) -> str:
        return self._table_html()

    def to_html(self) -> str:
        parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Persona Lab report</title>",
                 "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto}td,th{border:1px solid #ccc;"
                 "padding:6px;vertical-align:top}</style></head><body>",
                 "<h1>Persona Lab: system prompt vs fine-tuning, measured</h1>",
                 f"<p>Generated {html.escape(self.generated_at)} from the results saved by the lessons.</p>",
                 self._table_html()]
        if self.base_lines:
            parts.append("<p>Base model behind each compared number:</p><ul>"
                         + "".join(f"<li>{html.escape(b)}</li>" for b in self.base_lines) + "</ul>")
        if self.evidence or self.framework:
            parts.append("<h2>The decision framework on your numbers</h2><ul>")
            parts += [f"<li>{html.escape(e)}</li>" for e in self.evidence] or [
                "<li>nothing measured yet: the article's thresholds apply</li>"]
            parts.append("</ul><table><tr><th>scenario</th><th>article</th><th>framework</th><th>why</th></tr>")
            parts += ["<tr>" + "".join(f"<td>{html.escape(f[k])}</td>" for k in ("scenario", "article", "framework",
                                                                              "why")) + "</tr>"
                      for f in self.framework]
            parts.append("</table>")
        if self.figures or self.figures_missing:
            parts.append("<h2>Figures</h2>")
            for f in self.figures:
                img = plots.img_tag(f.png, f.title)
                parts.append(f"<figure>{img}<figcaption><b>{html.escape(f.title)}</b>: "
                             f"{html.escape(f.caption)}</figcaption></figure>")
            parts += [f"<p style='color:#888'>{html.escape(m)}</p>" for m in self.figures_missing]
        parts.append("<h2>Sources</h2><ul>")
        parts += [f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>" for k, v in self.used.items()] or [
            "<li>no saved results yet</li>"]
        parts.append("</ul></body></html>\n")
        return "".join(parts)

    def __repr__(self) -> str:
        return self.to_markdown()

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``report.md`` (figures linked as files in ``figures/``) and a self-contained ``report.html``
        (figures inline) into ``out_dir``, each file atomically; returns the two reports' paths."""
        out = Path(out_dir)
        for f in self.figures:
            atomic_write_bytes(out / "figures" / f.name, f.png)
        return atomic_write_text(out / "report.md", self.to_markdown()), atomic_write_text(
            out / "report.html", self.to_html())


def _cell_text(c: Cell) -> str:
    origin = f" [{c.origin}]" if c.origin else ""
    tag = "" if c.status in ("measured", "missing", "not measured") else f" ({c.status})"
    return f"{c.text}{tag}{origin}"


def _cell_html(c: Cell) -> str:
    style = "" if c.available else " style='color:#888;background:#f4f4f4'"
    origin = f"<br><small style='color:#666'>{html.escape(c.origin)}</small>" if c.origin else ""
    tag = "" if c.status in ("measured", "missing", "not measured") else f" <small>({html.escape(c.status)})</small>"
    return f"<td{style}>{html.escape(c.text)}{tag}{origin}</td>"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pct(x: Any) -> str:
    return "?" if x is None else f"{float(x):.0%}"


def _seconds(s: Any) -> str:
    return "?" if s is None else duration(float(s))


def _est(d: Mapping[str, Any] | None) -> str:
    """'62% [40%, 80%] (n=21)' from an Estimate dict."""
    if not d or not d.get("n"):
        return "n/a"
    return f"{d['value']:.0%} [{d['low']:.0%}, {d['high']:.0%}] (n={d['n']})"


# --------------------------------------------------------------------------------------------- rows
def _setup(r: Records) -> dict[str, Cell]:
    sp = Cell("no training run: the prompt is live on its first request (writing it is your own time, which no "
              "lesson times)", status="by design")
    ds = record_data(r, "03/dataset")
    tr = record_data(r, "04/training")
    if tr is None:
        ft = missing("04/training")
    else:
        build = None if ds is None else ds.get("build_s", ds.get("seconds"))
        data_part = (f"dataset: {_seconds(build)}" if build is not None else
                     "dataset building: not measured")
        cost = ""
        if ds is not None and ds.get("openai_training_cost_usd") is not None:
            cost = f"; OpenAI training would cost ${float(ds['openai_training_cost_usd']):.2f} for this dataset (03)"
        ft = Cell(f"training run {_seconds(tr.get('wall_s'))} (setup {_seconds(tr.get('setup_s'))}, training "
                  f"{_seconds(tr.get('train_s'))}, {tr.get('steps')} steps, {tr.get('backend')}); {data_part}{cost}",
                  origin(r, "04/training", tr.get("base_model")) + _device(r, tr))
    hy = Cell("the fine-tuning run plus writing the overlays", status="by design") if tr else missing("04/training")
    return {"system prompt": sp, "fine-tuning": ft, "hybrid": hy}


def _device(r: Records, tr: Mapping[str, Any]) -> str:
    """' on <device>' when lesson 04 names a device other than the saved hardware (a GPU, a thread count)."""
    device = tr.get("device")
    return f" on {device}" if device and device != (r.get("04/training") or {}).get("hardware") else ""


def _persona_tokens(r: Records) -> tuple[float | None, str]:
    tok = record_data(r, "02/tokens") or {}
    if tok.get("backend_persona_added_tokens") is not None:
        return float(tok["backend_persona_added_tokens"]), "on the served model"
    if tok.get("persona_added_tokens") is not None:
        return float(tok["persona_added_tokens"]), f"counted for {tok.get('model', 'gpt-4o-mini')}"
    return None, ""


def _latency(r: Records) -> dict[str, Cell]:
    lat = record_data(r, "02/latency")
    if lat is None:
        return {c: missing("02/latency") for c in COLUMNS}
    slope = lat.get("ms_per_100_prompt_tokens")
    where = origin(r, "02/latency", lat.get("model"))
    if slope is None:
        sp = not_measured("lesson 02 could not fit TTFT against prompt length (too few sizes)")
        return {"system prompt": sp, "fine-tuning": sp, "hybrid": sp}
    rows = lat.get("rows") or []
    base = next((x.get("ttft_ms") for x in rows if x.get("system_prompt_tokens") == 0), None)
    base_txt = f"; {base:.1f} ms to first token with no prompt" if base is not None else ""
    n, how = _persona_tokens(r)
    if n is None:
        sp = Cell(f"+{slope:.2f} ms per 100 prompt tokens (the persona's size: run lesson 02's token cells)", where)
    else:
        sp = Cell(f"+{slope * n / 100:.1f} ms to first token for the persona's {n:g} tokens ({how}; fit "
                  f"+{slope:.2f} ms per 100 prompt tokens){base_txt}", where, "derived")
    ft = Cell(f"+0 ms: no persona tokens to process{base_txt}", where, "by design")
    hyb = record_data(r, "06/hybrid") or {}
    ov_tokens = hyb.get("overlay_tokens") or {}
    if ov_tokens:
        lo, hi = min(ov_tokens.values()), max(ov_tokens.values())
        hy = Cell(f"+{slope * lo / 100:.1f} to +{slope * hi / 100:.1f} ms for overlays of {lo:g}-{hi:g} tokens",
                  where, "derived")
    else:
        hy = missing("06/hybrid")
    return {"system prompt": sp, "fine-tuning": ft, "hybrid": hy}


def _drift_text(summary: Mapping[str, Any]) -> str:
    early = (summary.get("early_mean_score") or {}).get("value")
    late = (summary.get("late_mean_score") or {}).get("value")
    probe = summary.get("probe_on_persona_rate")
    text = f"adherence {early:.2f} in turns 1-5, {late:.2f} in the last 5; probes on persona {_est(probe)}"
    lost = summary.get("system_prompt_lost_share")
    if lost:
        text += f"; {lost:.0%} of replies after the prompt was cut from the context"
    return text


def _consistency(r: Records) -> dict[str, Cell]:
    drift = record_data(r, "05/drift")
    steer = record_data(r, "01/steering")
    tr = record_data(r, "04/training")
    out: dict[str, Cell] = {}
    scorer = None if drift is None else drift.get("scorer")
    summ = {} if drift is None else (drift.get("summary") or {}).get(scorer, {})
    for col, prefix in (("system prompt", "prompted"), ("fine-tuning", "fine-tuned"), ("hybrid", "hybrid")):
        parts, origins = [], []
        if drift is None:
            parts.append(f"long conversations: {how_to_measure('05')} (no saved result '05/drift')")
        else:
            name = target_named(summ.keys(), prefix)
            if name is None:
                parts.append(f"long conversations: no '{prefix}' target in lesson 05's results")
            else:
                parts.append(f"{_drift_text(summ[name])} ({scorer} scorer, {summ[name].get('conversations')} "
                             f"conversation(s))")
                origins.append(origin(r, "05/drift"))
        if col == "system prompt" and steer is not None:
            rates = steer.get("marker_rates") or {}
            with_prompt = next((v for k, v in rates.items() if "prompt" in k and not k.startswith("no ")), None)
            if with_prompt is not None:
                parts.append(f"single replies with a persona marker: {_pct(with_prompt)} of {steer.get('n_requests')}")
                origins.append(origin(r, "01/steering"))
        if col == "fine-tuning" and tr is not None and tr.get("marker_rate_after") is not None:
            parts.append(f"single replies with a marker, no prompt: {_pct(tr['marker_rate_after'])} of "
                         f"{tr.get('heldout_requests')} (before training {_pct(tr.get('marker_rate_before'))})")
            origins.append(origin(r, "04/training", tr.get("base_model")))
        if not origins:
            out[col] = missing("05/drift")
        else:
            out[col] = Cell("; ".join(parts), "; ".join(origins), needs="05" if drift is None else "")
    hyb = record_data(r, "06/hybrid")
    if hyb and hyb.get("rows"):
        vals = [x["mean_score"] for x in hyb["rows"] if x.get("overlay") and x.get("mean_score") is not None]
        if vals:
            extra = (f"department overlays (06): mean adherence {min(vals):.2f}-{max(vals):.2f} over {len(vals)} "
                     "overlays")
            c = out["hybrid"]
            text = extra if c.status == "missing" else f"{c.text}; {extra}"
            out["hybrid"] = Cell(text, "; ".join(x for x in (c.origin, origin(r, "06/hybrid")) if x))
    return out


def _robustness(r: Records) -> dict[str, Cell]:
    inj = record_data(r, "05/injection")
    if inj is None:
        return {c: missing("05/injection") for c in COLUMNS}
    summ = inj.get("summary") or {}
    where = origin(r, "05/injection")
    out = {}
    for col, prefix in (("system prompt", "prompted"), ("fine-tuning", "fine-tuned"), ("hybrid", "hybrid")):
        name = target_named(summ.keys(), prefix)
        if name is None:
            out[col] = Cell(f"no '{prefix}' target in lesson 05's results", status="not measured")
            continue
        a = summ[name].get("all") or {}
        leak = a.get("leak")
        leak_txt = f"system prompt leaked (canary) {_est(leak)}" if leak else "nothing to leak (no system prompt)"
        complied = a.get("complied", a.get("success"))  # results saved before the three labels say 'success'
        broken = f"; unusable replies {_est(a['broken'])}" if a.get("broken") else ""
        out[col] = Cell(f"persona held {_est(a.get('held'))}; attacks complied with {_est(complied)}{broken}; "
                        f"{leak_txt}", where)
    return out


def _flexibility(r: Records) -> dict[str, Cell]:
    ch = record_data(r, "06/change")
    tr = record_data(r, "04/training")
    if ch is None:
        sp = missing("06/change")
    else:
        sp = Cell(f"{_seconds(ch.get('total_s'))}: edit + re-render {_seconds(ch.get('render_s'))}, one request "
                  f"{_seconds(ch.get('request_s'))}; live on the next request", origin(r, "06/change"))
    if tr is None:
        ft = missing("04/training")
    else:
        ft = Cell(f"a retraining run: {_seconds(tr.get('wall_s'))} (the training alone; collecting new data, "
                  "evaluating and redeploying come on top)", origin(r, "04/training", tr.get("base_model")))
    if ch is None and tr is None:
        hy = missing("06/change")
    else:
        hy = Cell("overlay edit: like a prompt edit" + (f" ({_seconds(ch.get('total_s'))})" if ch else "") +
                  "; the core persona: a retraining run" + (f" ({_seconds(tr.get('wall_s'))})" if tr else ""),
                  "; ".join(x for x in (sp.origin, ft.origin) if x), "derived")
    return {"system prompt": sp, "fine-tuning": ft, "hybrid": hy}


def _token_cost(r: Records) -> dict[str, Cell]:
    from .costs import fmt_usd, fmt_volume

    comp = cost_comparison(r)
    if comp is None:
        return {c: missing("02/costs") for c in COLUMNS}
    c = record_data(r, "02/costs") or {}
    s = comp.scenario
    where = f"cost model, {s.model} prices of {c.get('price_date', '?')} (lesson 02)"
    rows = {row["plan"]: row for row in comp.rows()}
    sp_row, ft_row = rows["system prompt"], rows["fine-tuned (API)"]
    sp = Cell(f"${fmt_usd(sp_row['running_monthly_usd'])}/month at {fmt_volume(s.requests_per_month)} requests "
              f"(${fmt_usd(sp_row['per_request_usd'])} per request, {s.persona_tokens:g}-token persona)", where,
              "derived")
    one_time = (f" + ${fmt_usd(ft_row['one_time_usd'])} training (lesson 03's dataset)" if s.training_cost is not None
                else " (training cost: run lesson 03)")
    ft = Cell(f"${fmt_usd(ft_row['running_monthly_usd'])}/month{one_time}; break-even: {comp.break_evens[0].reason}",
              where, "derived")
    hyb = record_data(r, "06/hybrid") or {}
    ov = hyb.get("overlay_tokens_billed") or {}
    if ov:
        name, n = max(ov.items(), key=lambda kv: kv[1])
        hcomp = cost_comparison(r, finetuned_prompt_tokens=float(n))
        hrow = {row["plan"]: row for row in hcomp.rows()}["fine-tuned (API)"]
        hy = Cell(f"${fmt_usd(hrow['running_monthly_usd'])}/month with the longest overlay ({name}, {n:g} billed "
                  "tokens per request)", where + "; overlay tokens (lesson 06)", "derived")
    else:
        hy = missing("06/hybrid")
    return {"system prompt": sp, "fine-tuning": ft, "hybrid": hy}


def _expertise(r: Records) -> dict[str, Cell]:
    tr = record_data(r, "04/training")
    sp = Cell("the course's path: a YAML spec rendered to a prompt, called with the openai client (lesson 01)",
              status="qualitative")
    if tr is None:
        ft = missing("04/training")
    else:
        ft = Cell(f"the course's path: a validated dataset (lesson 03), LoRA settings and a {tr.get('backend')} "
                  f"training run on {tr.get('device') or '?'}, merging and serving the model (lesson 04), an "
                  "evaluation suite (lesson 05)", status="qualitative")
    hy = Cell("both: the fine-tuning pipeline plus prompt overlays", status="qualitative")
    return {"system prompt": sp, "fine-tuning": ft, "hybrid": hy}


BUILDERS: dict[str, tuple[Callable[[Records], dict[str, Cell]], tuple[str, ...]]] = {
    "setup cost": (_setup, ("03/dataset", "04/training")),
    "latency": (_latency, ("02/latency", "02/tokens", "06/hybrid")),
    "consistency": (_consistency, ("05/drift", "01/steering", "04/training", "06/hybrid")),
    "robustness": (_robustness, ("05/injection",)),
    "flexibility": (_flexibility, ("06/change", "04/training")),
    "token cost": (_token_cost, ("02/costs", "03/dataset", "06/hybrid")),
    "expertise": (_expertise, ("04/training",)),
}


def _safe(dimension: str, records: Records) -> dict[str, Cell]:
    fn, keys = BUILDERS[dimension]
    try:
        cells = fn(records)
    except Exception as exc:  # noqa: BLE001 - a saved result from another version must not break the report
        present = [k for k in keys if k in records]
        lessons = ", ".join(sorted({k.split("/")[0] for k in present})) or "?"
        why = f"could not read the saved result(s) {', '.join(present) or keys}: {type(exc).__name__}: {exc}"
        cells = {c: Cell(f"{why} (re-run lesson {lessons})", status="unreadable") for c in COLUMNS}
    return {c: cells.get(c, not_measured("no figure for this column")) for c in COLUMNS}


def build(records: Records | None = None, *, framework: bool = True) -> Report:
    """The filled matrix from ``records`` (default: every saved result, ``personalab.results.load_all()``)."""
    if records is None:
        records = results.load_all()
    rows = [Row(d, _safe(d, records), ARTICLE[d]) for d in DIMENSIONS]
    used = {}
    for key in sorted(records):
        rec = records[key]
        if isinstance(rec, Mapping):
            what = SOURCES.get(key) or OTHER_SOURCES.get(key, "saved result")
            used[key] = (f"{what}: {model_name(rec.get('model'))} · "
                         f"{rec.get('hardware', '?')} · saved {rec.get('saved_at', '?')}")
    rep = Report(rows, used, bases=compared_bases(records))
    rep.figures, rep.figures_missing = report_figures.build(records)
    if framework:
        ev = Evidence.from_results(records)
        rep.evidence = ev.describe()
        rep.framework = quick_reference(ev if rep.evidence else None)
    return rep


# --------------------------------------------------------------------------------------------- measuring
def measure_prompt_change(spec: Any = None, *, client: Any = None, model: str | None = None,
                          user: str = "Add a task: send the invoice today.", new_phrase: str = "Onward and upward!",
                          max_tokens: int = 32) -> dict[str, Any]:
    """Time one persona change the system-prompt way: edit the spec, re-render it, send one request.

    Without ``client`` the request goes to the prompted side, the profile's base model
    (:func:`personalab.backends.prompted_side`), whether or not an API key is set. Returns seconds for the edit +
    render and for the request, the total, the reply, the model and its base model (None for a given client).
    """
    from . import backends
    from .persona import taskmaster

    spec = spec or taskmaster()
    base_model = None
    if client is None:
        side = backends.prompted_side()
        client, model, base_model = side.client, model or side.model, side.base_model
    model = model or backends.default_model()
    t0 = time.perf_counter()
    edited = spec.model_copy(deep=True)
    edited.vocabulary.use = [new_phrase, *edited.vocabulary.use]
    prompt = edited.render()
    t1 = time.perf_counter()
    reply = backends.chat([{"role": "system", "content": prompt}, {"role": "user", "content": user}],
                          model=model, client_=client, max_tokens=max_tokens)
    t2 = time.perf_counter()
    return {"render_s": t1 - t0, "request_s": t2 - t1, "total_s": t2 - t0, "reply": reply, "model": model,
            "base_model": base_model, "max_tokens": max_tokens}


# --------------------------------------------------------------------------------------------- plot
ARTICLE_CONSISTENCY = {"system prompt": (0.90, 0.60, 0.40), "fine-tuning": (0.95, 0.95, 0.85)}


def measured_consistency(records: Records) -> dict[str, tuple[float | None, float | None, float | None]]:
    """Per approach: adherence in turns 1-5 and in the last 5 (05/drift), persona held under attack (05/injection)."""
    drift = record_data(records, "05/drift") or {}
    summ = (drift.get("summary") or {}).get(drift.get("scorer"), {})
    inj = (record_data(records, "05/injection") or {}).get("summary") or {}
    out = {}
    for col, prefix in (("system prompt", "prompted"), ("fine-tuning", "fine-tuned"), ("hybrid", "hybrid")):
        d = summ.get(target_named(summ.keys(), prefix) or "", {})
        a = (inj.get(target_named(inj.keys(), prefix) or "", {}) or {}).get("all", {})

        def val(est: Any) -> float | None:
            return float(est["value"]) if est and est.get("n") else None

        out[col] = (val(d.get("early_mean_score")), val(d.get("late_mean_score")), val(a.get("held")))
    return out


def plot_vs_article(records: Records | None = None) -> Any:
    """Left: the article's illustrative consistency figures. Right: yours, from lesson 05 (or a note to run it)."""
    import matplotlib.pyplot as plt

    if records is None:
        records = results.load_all()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    width = 0.27
    for i, (name, vals) in enumerate(ARTICLE_CONSISTENCY.items()):
        left.bar([x + (i - 0.5) * width for x in range(3)], vals, width, label=name, color=f"C{i}")
    left.set_xticks(range(3))
    left.set_xticklabels(["short conversations", "long conversations", "edge cases"])
    left.set_title("the article: % consistent (illustrative, not measured)", fontsize=10)
    left.set_ylabel("share / score (0-1)")
    left.legend(fontsize=8)
    mine = measured_consistency(records)
    any_value = False
    for i, (name, vals) in enumerate(mine.items()):
        xs = [x + (i - 1) * width for x in range(3) if vals[x] is not None]
        ys = [v for v in vals if v is not None]
        any_value |= bool(ys)
        if ys:
            bars = right.bar(xs, ys, width, label=name, color=f"C{i}")
            right.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7)
    right.set_xticks(range(3))
    right.set_xticklabels(["adherence,\nturns 1-5", "adherence,\nlast 5 turns", "persona held\nunder attack"])
    rec = records.get("05/drift") or {}
    where = f": {model_name(rec.get('model'))} · {rec.get('hardware', '?')}" if rec else ""
    right.set_title(f"yours, measured in lesson 05{where}", fontsize=9)
    if any_value:
        right.legend(fontsize=8)
    else:
        right.text(1, 0.5, "run lesson 05 first", ha="center", fontsize=12, color="grey")
    for ax in (left, right):
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
