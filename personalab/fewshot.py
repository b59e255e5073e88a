"""Few-shot examples in the system prompt against the plain prompt: markers, prompt tokens and cost.

Lesson 01 asks the same held-out requests under both prompts (``steering.compare``); this module turns the
replies into one row per prompt: how many replies carry a marker (with a 95 % Wilson interval: a dozen
replies measure a rate only roughly), how many prompt tokens each request
sends (OpenAI's o200k count, and the local model's own when its folder is given) and what 1,000 such
requests cost at the price table's rates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from . import costs, tokens
from .errors import InputError
from .general import count_summary, wilson_interval
from .io import load_yaml_model
from .persona import PERSONAS_DIR, Example, PersonaSpec, _Strict, has_marker
from .steering import Comparison

EXAMPLES_FILE = PERSONAS_DIR / "taskmaster_examples.yaml"


class ExampleSet(_Strict):
    examples: list[Example] = Field(min_length=1)


def load_examples(path: str | Path = EXAMPLES_FILE) -> list[Example]:
    """Example exchanges for a few-shot prompt; a bad file names the file, line and field."""
    return load_yaml_model(path, ExampleSet, fix="compare with data/personas/taskmaster_examples.yaml").examples


def with_examples(spec: PersonaSpec, n: int, examples: list[Example] | None = None) -> PersonaSpec:
    """A copy of ``spec`` whose prompt ends with its own examples plus the first ``n`` of ``examples``
    (default: the file of example exchanges): the few-shot prompt."""
    pool = load_examples() if examples is None else examples
    if not 0 <= n <= len(pool):
        raise InputError(f"n={n} examples asked for, but {len(pool)} are available",
                         fix=f"choose n between 0 and {len(pool)}, or add examples to {EXAMPLES_FILE.name}")
    out = spec.model_copy(deep=True)
    out.examples = [*out.examples, *pool[:n]]
    return out


PRICED_MODEL = "gpt-4o-mini"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def measure(
    comparison: Comparison,
    prompts: dict[str, str | None],
    spec: PersonaSpec,
    *,
    priced_model: str = PRICED_MODEL,
    prices: costs.PriceTable | None = None,
    served_model: str | None = None,
) -> list[dict[str, Any]]:
    """One row per prompt label of ``comparison``: marker rate, mean prompt and reply tokens, cost per 1,000.

    Prompt tokens are counted for every request as sent (system prompt + user message); reply tokens are the
    replies' own o200k count, so the cost is that of the requests actually made, priced as ``priced_model``.
    When ``served_model`` is a local checkpoint folder, its own template's count is added as a column.
    """
    if not comparison.requests:
        raise InputError("the comparison has no requests", field="requests")
    missing = [label for label in comparison.replies if label not in prompts]
    if missing:
        raise InputError(f"no prompt given for {missing}", field="prompts",
                         fix="pass the same labels that were given to steering.compare")
    rates = (prices or costs.load_prices()).rates(priced_model)
    rows = []
    for label, replies in comparison.replies.items():
        sent = [tokens.persona_messages(prompts[label], q) for q in comparison.requests]
        prompt_toks = [tokens.count_messages(m, priced_model) for m in sent]
        reply_toks = [tokens.count_text(r, priced_model) for r in replies]
        per_request = [costs.request_cost(p, r, rates) for p, r in zip(prompt_toks, reply_toks, strict=True)]
        marked = sum(has_marker(r, spec) for r in replies)
        low, high = wilson_interval(marked, len(replies))
        row: dict[str, Any] = {
            "prompt": label,
            "marker rate": marked / len(replies),
            "replies with a marker": count_summary(marked, len(replies)),
            "marker low": low,
            "marker high": high,
            f"prompt tokens ({priced_model})": _mean(prompt_toks),
        }
        if served_model is not None and Path(served_model).is_dir():
            row["prompt tokens (local model)"] = _mean([tokens.count_local(m, served_model) for m in sent])
        row["reply tokens"] = _mean(reply_toks)
        row["$ per 1,000 requests"] = 1000 * _mean(per_request)
        row["n"] = len(replies)
        rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """One line per prompt: 'prompt + 3 examples: 4 of 12 (33 %, 95 % interval 14-61 %) replies with a marker'."""
    width = max((len(r["prompt"]) for r in rows), default=0)
    return "\n".join(f"{r['prompt']:{width}}: {r['replies with a marker']} replies with a marker" for r in rows)


def plot(rows: list[dict[str, Any]]) -> Any:
    """Marker rate, prompt tokens and cost per 1,000 requests, one bar per prompt, side by side."""
    import matplotlib.pyplot as plt

    from .plots import plain_text

    if not rows:
        raise InputError("nothing to plot: no rows", field="rows")
    token_key = next(k for k in rows[0] if k.startswith("prompt tokens ("))
    panels = [("marker rate", "share of replies with a marker"), (token_key, "tokens per request"),
              ("$ per 1,000 requests", "US dollars")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    labels = [r["prompt"] for r in rows]
    for ax, (key, unit) in zip(axes, panels, strict=True):
        values = [r[key] for r in rows]
        errors = None
        if key == "marker rate" and all("marker low" in r for r in rows):  # the 95 % Wilson interval
            errors = [[r[key] - r["marker low"] for r in rows], [r["marker high"] - r[key] for r in rows]]
        bars = ax.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))], yerr=errors,
                      capsize=4, error_kw={"linewidth": 1})
        ax.bar_label(bars, labels=[f"{v:.3g}" if v < 10 else f"{v:.0f}" for v in values], fontsize=8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(key, fontsize=10)
        ax.set_ylabel(unit, fontsize=9)
        if key == "marker rate":
            ax.set_ylim(0, 1.1)
            ax.set_ylabel("share with a marker, 95 % interval", fontsize=9)
    fig.suptitle(f"plain prompt vs few-shot prompt, {rows[0]['n']} held-out requests each", fontsize=10)
    fig.tight_layout()
    return plain_text(fig)
