"""Dataset analysis: token statistics (with a histogram), persona-marker coverage, training cost estimates."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..persona import PersonaSpec, has_marker, uses_avoided
from .counting import TokenCounter, token_counter

Example = dict[str, Any]

# OpenAI's default epoch choice for fine-tuning (cookbook "Data preparation and analysis for chat model
# fine-tuning"): aim at 3 epochs, but keep examples x epochs between 100 and 25,000.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
#: Tokens of one example that OpenAI bills at most (longer ones are truncated); gpt-4o-mini's example limit.
MAX_TOKENS_PER_EXAMPLE = 65_536


def _percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def token_lengths(examples: Sequence[Example], counter: TokenCounter | None = None) -> list[int]:
    counter = counter or token_counter()
    return [counter(ex["messages"]) for ex in examples]


def token_stats(examples: Sequence[Example], counter: TokenCounter | None = None) -> dict[str, Any]:
    """Tokens per example (min, mean, median, p95, max, total), trainable assistant tokens, messages per example."""
    counter = counter or token_counter()
    lengths = token_lengths(examples, counter)
    assistant = [sum(counter.text(m["content"]) for m in ex["messages"] if m["role"] == "assistant") for ex in examples]
    n_msgs = [len(ex["messages"]) for ex in examples]
    return {
        "tokenizer": counter.name,
        "exact": counter.exact,
        "n_examples": len(examples),
        "total_tokens": sum(lengths),
        "min": min(lengths, default=0),
        "mean": round(statistics.fmean(lengths), 1) if lengths else 0.0,
        "median": statistics.median(lengths) if lengths else 0,
        "p95": round(_percentile(lengths, 0.95), 1),
        "max": max(lengths, default=0),
        "assistant_tokens": sum(assistant),
        "assistant_share": round(sum(assistant) / sum(lengths), 3) if lengths and sum(lengths) else 0.0,
        "with_system": sum(any(m["role"] == "system" for m in ex["messages"]) for ex in examples),
        "multi_turn": sum(sum(m["role"] == "assistant" for m in ex["messages"]) > 1 for ex in examples),
        "messages_per_example": {str(k): n_msgs.count(k) for k in sorted(set(n_msgs))},
        "lengths": lengths,
    }


def plot_token_histogram(lengths: Sequence[int], *, max_seq_length: int | None = None, tokenizer: str | None = None,
                         ax: Any = None, bins: int = 30) -> Any:
    """Histogram of tokens per example, with the ``max_seq_length`` limit as a line. Returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
    else:
        fig = ax.figure
    ax.hist(lengths, bins=bins, color="#4C72B0", edgecolor="white")
    if max_seq_length is not None:
        ax.axvline(max_seq_length, color="#C44E52", linestyle="--", label=f"max_seq_length = {max_seq_length}")
        ax.legend()
    ax.set_xlabel("tokens per example" + (f" ({tokenizer})" if tokenizer else ""))
    ax.set_ylabel("examples")
    ax.set_title(f"Token lengths of {len(lengths)} examples")
    fig.tight_layout()
    return fig


def marker_coverage(examples: Sequence[Example], spec: PersonaSpec) -> dict[str, Any]:
    """How much of the dataset shows the persona.

    ``coverage``: share of assistant messages with a marker; ``example_coverage``: share of examples
    with a marker in at least one reply; ``per_marker``: how often each 'use' phrase appears;
    ``by_turn``: coverage of the 1st, 2nd, ... reply of a conversation; ``avoided``: avoided-phrase hits.
    """
    replies = [[m["content"] for m in ex["messages"] if m.get("role") == "assistant"] for ex in examples]
    flat = [r for rs in replies for r in rs]
    hits = [has_marker(r, spec) for r in flat]
    probe = {m: PersonaSpec.model_validate(spec.model_dump() | {"vocabulary": {"use": [m], "avoid": []}})
             for m in spec.markers}
    by_turn: dict[str, float] = {}
    for t in range(max((len(rs) for rs in replies), default=0)):
        at = [has_marker(rs[t], spec) for rs in replies if len(rs) > t]
        by_turn[str(t + 1)] = round(sum(at) / len(at), 3)
    avoided: dict[str, int] = {}
    for r in flat:
        for p in uses_avoided(r, spec):
            avoided[p] = avoided.get(p, 0) + 1
    return {
        "assistant_messages": len(flat),
        "with_marker": sum(hits),
        "coverage": round(sum(hits) / len(flat), 3) if flat else 0.0,
        "examples": len(examples),
        "example_coverage": round(sum(any(has_marker(r, spec) for r in rs) for rs in replies) / len(replies), 3)
        if replies else 0.0,
        "per_marker": {m: sum(has_marker(r, p) for r in flat) for m, p in probe.items()},
        "by_turn": by_turn,
        "avoided": avoided,
    }


def plot_marker_coverage(coverage: dict[str, Any], ax: Any = None) -> Any:
    """Bar chart: share of replies carrying each marker, and any marker at all."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3))
    else:
        fig = ax.figure
    n = max(coverage["assistant_messages"], 1)
    names = [*coverage["per_marker"], "any marker"]
    values = [c / n for c in coverage["per_marker"].values()] + [coverage["coverage"]]
    ax.barh(names, values, color=["#4C72B0"] * (len(names) - 1) + ["#55A868"])
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of {coverage['assistant_messages']} assistant replies")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ cost
def openai_default_epochs(n_examples: int) -> int:
    """The number of epochs OpenAI picks by default for ``n_examples`` training examples."""
    if n_examples <= 0:
        raise InputError("no training examples", field="n_examples", fix="generate a dataset first")
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def openai_training_cost(lengths: Sequence[int], price_per_1m_tokens: float, *, epochs: int | None = None,
                         max_tokens_per_example: int = MAX_TOKENS_PER_EXAMPLE) -> dict[str, Any]:
    """Estimated OpenAI fine-tuning cost: billed tokens per epoch x epochs x the training price.

    ``price_per_1m_tokens`` is the provider's training price (USD per million training tokens) for the
    model you fine-tune; look it up on the pricing page (or in the course's price table) — it changes.
    """
    if price_per_1m_tokens < 0:
        raise InputError("price must not be negative", field="price_per_1m_tokens")
    epochs = epochs or openai_default_epochs(len(lengths))
    billed = sum(min(max_tokens_per_example, n) for n in lengths)
    return {
        "examples": len(lengths),
        "tokens_per_epoch": billed,
        "epochs": epochs,
        "trained_tokens": billed * epochs,
        "price_per_1m_tokens": price_per_1m_tokens,
        "cost_usd": round(billed * epochs * price_per_1m_tokens / 1e6, 4),
    }


def lora_run_estimate(tokens_per_epoch: int, epochs: int, *, tokens_per_second: float,
                      gpu_price_per_hour: float = 0.0) -> dict[str, Any]:
    """Estimated local LoRA run: time from a training throughput, cost from the GPU's hourly price.

    ``tokens_per_second`` is a throughput you measured (lesson 04 saves it) or assume; a free Colab GPU
    has ``gpu_price_per_hour = 0`` — the cost is then your time.
    """
    if tokens_per_second <= 0:
        raise InputError("tokens_per_second must be positive", field="tokens_per_second",
                         fix="use the throughput lesson 04 measured")
    seconds = tokens_per_epoch * epochs / tokens_per_second
    return {
        "tokens_per_epoch": tokens_per_epoch,
        "epochs": epochs,
        "tokens_per_second": tokens_per_second,
        "hours": round(seconds / 3600, 4),
        "gpu_price_per_hour": gpu_price_per_hour,
        "cost_usd": round(seconds / 3600 * gpu_price_per_hour, 4),
    }


def training_price(model: str = "gpt-4o-mini") -> tuple[float, str] | None:
    """(USD per 1M training tokens, where the figure comes from) from the course's price table, or None
    when the table (``personalab.costs``, ``data/pricing.yaml``) is not available or lacks the model."""
    try:
        from .. import costs
    except ImportError:
        return None
    try:
        table = costs.load_prices()
        return float(table.training_price(model)), f"{table.path}: {table.price(model).source}"
    except (InputError, AttributeError):
        return None


def gpu_hour_price(gpu: str) -> tuple[float, str] | None:
    """(USD per GPU-hour, source) for a GPU of the price table's ``self_hosted`` section, or None."""
    try:
        from .. import costs

        entry = costs.load_prices().gpu(gpu)
    except (ImportError, InputError, AttributeError):
        return None
    return float(entry.gpu_hour), entry.source


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".png")
    os.close(fd)
    try:
        fig.savefig(tmp, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
