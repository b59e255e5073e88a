"""Measured latency: what a longer system prompt adds to time-to-first-token and total time.

The seed article gives an illustrative table (e.g. "300-500 tokens: 100-200 ms"). Here the learner's own
backend is measured instead: the same user message is sent with system prompts of several sizes
(TaskMaster's prompt repeated and cut to an exact token count, plus a no-prompt baseline), streamed through
the ``openai`` client, several times each in shuffled order. The result says on which model and hardware it
was measured, and gives the prefill rate (prompt tokens per second) and decode rate (output tokens per
second) that the self-hosted cost model needs.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

DEFAULT_SIZES = (0, 150, 400, 750, 1500)  # the article's bins: minimal, standard, detailed, comprehensive
USER_MESSAGE = "Add a task: prepare the slides for Monday's planning meeting."


@dataclass
class Sample:
    target_tokens: int  # system-prompt size asked for (0: no system message)
    system_tokens: int  # system-prompt text tokens actually sent
    prompt_tokens: int | None  # the server's usage.prompt_tokens (None if it reports none)
    completion_tokens: int | None
    ttft_s: float | None  # time to the first content token; None if the reply was empty
    total_s: float
    run: int


@dataclass
class Fit:
    """Least-squares line ``ttft = intercept + slope * prompt_tokens``."""

    slope_s_per_token: float
    intercept_s: float
    points: int

    @property
    def prefill_tokens_per_s(self) -> float | None:
        return 1.0 / self.slope_s_per_token if self.slope_s_per_token > 0 else None

    @property
    def ms_per_100_tokens(self) -> float:
        return self.slope_s_per_token * 100_000


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    """Ordinary least squares for one variable (no numpy needed)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) points")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all x values are equal: measure at least two prompt sizes")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return Fit(slope, my - slope * mx, len(xs))


@dataclass
class LatencyTable:
    model: str
    backend: str
    hardware: str
    max_tokens: int
    repeats: int
    samples: list[Sample] = field(default_factory=list)
    #: The base model measured, when it is the prompted side (:func:`personalab.backends.prompted_side`).
    base_model: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One row per prompt size: medians (and min/max) over the repeats, and the TTFT added vs no prompt."""
        by_size: dict[int, list[Sample]] = {}
        for s in self.samples:
            by_size.setdefault(s.target_tokens, []).append(s)
        rows = []
        for size in sorted(by_size):
            ss = by_size[size]
            ttfts = [s.ttft_s for s in ss if s.ttft_s is not None]
            prompt = [s.prompt_tokens for s in ss if s.prompt_tokens is not None]
            out = [s.completion_tokens for s in ss if s.completion_tokens is not None]
            rows.append(
                {
                    "system_prompt_tokens": statistics.median_low(s.system_tokens for s in ss),
                    "prompt_tokens": statistics.median_low(prompt) if prompt else None,
                    "runs": len(ss),
                    "ttft_ms": _ms(statistics.median(ttfts)) if ttfts else None,
                    "ttft_ms_min": _ms(min(ttfts)) if ttfts else None,
                    "ttft_ms_max": _ms(max(ttfts)) if ttfts else None,
                    "total_ms": _ms(statistics.median(s.total_s for s in ss)),
                    "output_tokens": statistics.median_low(out) if out else None,
                }
            )
        base = rows[0]["ttft_ms"] if rows and rows[0]["system_prompt_tokens"] == 0 else None
        base_total = rows[0]["total_ms"] if base is not None else None
        for r in rows:
            r["added_ttft_ms"] = None if base is None or r["ttft_ms"] is None else round(r["ttft_ms"] - base, 1)
            r["added_total_ms"] = None if base_total is None else round(r["total_ms"] - base_total, 1)
        return rows

    def fit(self) -> Fit | None:
        """Median TTFT per size against prompt tokens: the slope is the prefill cost per prompt token.

        Medians per size keep one slow outlier (another process taking the CPU) from tilting the line.
        """
        pts = [
            (r["prompt_tokens"] if r["prompt_tokens"] is not None else r["system_prompt_tokens"], r["ttft_ms"] / 1000)
            for r in self.rows()
            if r["ttft_ms"] is not None
        ]
        try:
            return fit_line([x for x, _ in pts], [y for _, y in pts])
        except ValueError:
            return None

    def decode_tokens_per_s(self) -> float | None:
        """Median output rate after the first token: (completion tokens - 1) / (total - TTFT)."""
        rates = [
            (s.completion_tokens - 1) / (s.total_s - s.ttft_s)
            for s in self.samples
            if s.completion_tokens and s.completion_tokens > 1 and s.ttft_s is not None and s.total_s > s.ttft_s
        ]
        return statistics.median(rates) if rates else None

    @property
    def label(self) -> str:
        return f"{self.model} · {self.backend} · {self.hardware}"

    def to_dict(self) -> dict[str, Any]:
        f = self.fit()
        return {
            "model": self.model,
            "base_model": self.base_model,
            "backend": self.backend,
            "hardware": self.hardware,
            "max_tokens": self.max_tokens,
            "repeats": self.repeats,
            "rows": self.rows(),
            "ms_per_100_prompt_tokens": None if f is None else round(f.ms_per_100_tokens, 3),
            "prefill_tokens_per_s": None if f is None or f.prefill_tokens_per_s is None else f.prefill_tokens_per_s,
            "decode_tokens_per_s": self.decode_tokens_per_s(),
            "samples": [asdict(s) for s in self.samples],
        }

    def table(self) -> str:
        """The rows as a fixed-width text table."""
        head = ["system prompt", "prompt tok", "runs", "TTFT ms", "added TTFT", "total ms", "added total"]
        lines = ["  ".join(f"{h:>12}" for h in head)]
        for r in self.rows():
            vals = [
                r["system_prompt_tokens"],
                r["prompt_tokens"],
                r["runs"],
                r["ttft_ms"],
                r["added_ttft_ms"],
                r["total_ms"],
                r["added_total_ms"],
            ]
            lines.append("  ".join(f"{'-' if v is None else v:>12}" for v in vals))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{self.label}\n{self.table()}"

    def _repr_html_(self) -> str:
        cells = "".join(
            "<tr>"
            + "".join(
                f"<td>{'-' if v is None else v}</td>"
                for v in (
                    r["system_prompt_tokens"],
                    r["prompt_tokens"],
                    r["runs"],
                    r["ttft_ms"],
                    r["added_ttft_ms"],
                    r["total_ms"],
                    r["added_total_ms"],
                )
            )
            + "</tr>"
            for r in self.rows()
        )
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "system prompt tokens",
                "prompt tokens (server)",
                "runs",
                "TTFT ms (median)",
                "added TTFT ms",
                "total ms (median)",
                "added total ms",
            )
        )
        return f"<p>{self.label}</p><table><tr>{head}</tr>{cells}</table>"

    def plot(self, ax: Any = None) -> Any:
        """TTFT (median, min–max bars) and total latency against prompt tokens, labelled with model and hardware."""
        import matplotlib.pyplot as plt

        rows = [r for r in self.rows() if r["ttft_ms"] is not None]
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4))
        xs = [r["prompt_tokens"] if r["prompt_tokens"] is not None else r["system_prompt_tokens"] for r in rows]
        ttft = [r["ttft_ms"] for r in rows]
        err = [
            [t - r["ttft_ms_min"] for t, r in zip(ttft, rows, strict=True)],
            [r["ttft_ms_max"] - t for t, r in zip(ttft, rows, strict=True)],
        ]
        ax.errorbar(xs, ttft, yerr=err, marker="o", capsize=3, label="time to first token (median, min–max)")
        ax.plot(
            xs,
            [r["total_ms"] for r in rows],
            marker="s",
            linestyle="--",
            label=f"total, up to {self.max_tokens} output tokens (median)",
        )
        f = self.fit()
        if f is not None and xs:
            lo, hi = min(xs), max(xs)
            ax.plot(
                [lo, hi],
                [1000 * (f.intercept_s + f.slope_s_per_token * x) for x in (lo, hi)],
                color="grey",
                linewidth=1,
                label=f"fit: +{f.ms_per_100_tokens:.2f} ms per 100 prompt tokens",
            )
        ax.set_xlabel("prompt tokens (system prompt + user message + chat template)")
        ax.set_ylabel("milliseconds")
        ax.set_title(f"Latency vs system-prompt length\n{self.label}", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if fig is not None:
            fig.tight_layout()
        return fig if fig is not None else ax.figure


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


# --------------------------------------------------------------------------------------------- sizing prompts
Tokenizer = tuple[Callable[[str], list[int]], Callable[[list[int]], str]]


def tokenizer_for(model: str, model_dir: str | Path | None = None) -> tuple[Tokenizer, str]:
    """(encode, decode) used to size the system prompts, and a note on how exact it is."""
    from . import tokens

    if model_dir is not None:
        tok = tokens.local_tokenizer(str(model_dir))
        return (lambda s: tok(s, add_special_tokens=False)["input_ids"], lambda ids: tok.decode(ids)), "exact"
    if tokens.is_openai_model(model):
        enc = tokens.encoding_for_model(model)
        return (lambda s: enc.encode(s, disallowed_special=()), enc.decode), "exact"
    enc = tokens.encoding("o200k_base")
    return (lambda s: enc.encode(s, disallowed_special=()), enc.decode), "approximate (o200k_base)"


def sized_prompt(n: int, tokenizer: Tokenizer, base: str | None = None) -> tuple[str, int]:
    """A system prompt of about ``n`` tokens: TaskMaster's prompt repeated and cut; returns (text, tokens)."""
    if n <= 0:
        return "", 0
    encode, decode = tokenizer
    if base is None:
        from .persona import taskmaster

        base = taskmaster().render()
    ids = encode(base)
    if not ids:
        raise InputError("the base prompt encodes to no tokens", field="base")
    text = "\n\n".join([base] * (n // len(ids) + 2))
    cut = decode(encode(text)[:n])
    return cut, len(encode(cut))


def _max_context(model_dir: str | Path | None) -> int | None:
    if model_dir is None:
        return None
    cfg = Path(model_dir) / "config.json"
    if not cfg.exists():
        return None
    data = json.loads(cfg.read_text(encoding="utf-8"))
    return data.get("max_position_embeddings") or data.get("text_config", {}).get("max_position_embeddings")


# --------------------------------------------------------------------------------------------- measuring
def hardware_label(backend: str, client: Any, this_machine: str) -> str:
    """This machine's hardware when the server runs here (127.0.0.1), else where the requests went."""
    from urllib.parse import urlparse

    host = urlparse(str(getattr(client, "base_url", "") or "")).hostname or ""
    if backend == "local" or host in ("127.0.0.1", "localhost", "::1"):
        return this_machine
    if backend == "openai" or host.endswith("openai.com"):
        return "OpenAI API (network time included)"
    return f"server {host or '?'} (network time included)"


def _stream_once(
    client: Any, model: str, messages: list[dict[str, str]], max_tokens: int, usage_opts: dict[str, Any]
) -> tuple[float | None, float, Any]:
    start = time.perf_counter()
    first = None
    usage = None
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, temperature=0, stream=True, **usage_opts
    )
    for chunk in stream:
        if first is None and chunk.choices and getattr(chunk.choices[0].delta, "content", None):
            first = time.perf_counter() - start
        if getattr(chunk, "usage", None) is not None:
            usage = chunk.usage
    return first, time.perf_counter() - start, usage


def measure(
    sizes: Sequence[int] = DEFAULT_SIZES,
    repeats: int = 3,
    *,
    client: Any = None,
    model: str | None = None,
    model_dir: str | Path | None = None,
    backend: str | None = None,
    user: str = USER_MESSAGE,
    max_tokens: int = 16,
    warmup: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> LatencyTable:
    """Stream the same request with system prompts of ``sizes`` tokens, ``repeats`` times each (shuffled).

    Without ``client`` it measures the prompted side, the profile's base model (:func:`personalab.backends.
    prompted_side`), whether or not an API key is set; ``backend=`` names another backend to measure (a reference).
    Sizes that do not fit a local model's context are dropped. Returns a :class:`LatencyTable` (``.rows()``,
    ``.plot()``, ``.to_dict()``).
    """
    from . import backends, results

    if repeats < 1:
        raise InputError(f"repeats must be >= 1, got {repeats}", field="repeats")
    if not sizes or any(int(s) < 0 for s in sizes):
        raise InputError("sizes must be a non-empty list of token counts >= 0", field="sizes")
    base_model = None
    if client is None and backend is None:
        side = backends.prompted_side()
        client, model, base_model = side.client, model or side.model, side.base_model
        backend = side.backend
    elif client is None:
        client = backends.client(backend)
        model = model or backends.default_model(backend)
        if backend == "local" and model_dir is None:
            model_dir = backends.local_server().model_dir
    backend = backend or ("local" if model_dir is not None else "remote")
    if model is None:
        raise InputError("pass the model name together with a client", field="model")
    if model_dir is None and Path(str(model)).is_dir():  # a server on this machine serving a local checkpoint
        model_dir = Path(str(model))
    hardware = hardware_label(backend, client, results.hardware())

    tokenizer, _how = tokenizer_for(model, model_dir)
    limit = _max_context(model_dir)
    room = None if limit is None else limit - len(tokenizer[0](user)) - max_tokens - 32
    plan = sorted({int(s) for s in sizes if room is None or int(s) <= room})
    if not plan:
        raise InputError(f"no size fits the model's context of {limit} tokens", field="sizes")
    prompts = {n: sized_prompt(n, tokenizer) for n in plan}

    def messages(n: int) -> list[dict[str, str]]:
        text = prompts[n][0]
        return ([{"role": "system", "content": text}] if text else []) + [{"role": "user", "content": user}]

    usage_opts: dict[str, Any] = {"stream_options": {"include_usage": True}}
    try:
        for _ in range(max(warmup, 0) or 1):  # also finds out whether the server accepts stream_options
            _stream_once(client, model, messages(plan[0]), max_tokens, usage_opts)
    except Exception as exc:  # noqa: BLE001 - retry once without the option, then let errors surface
        if "stream_options" not in str(exc) and "include_usage" not in str(exc):
            raise
        usage_opts = {}
        _stream_once(client, model, messages(plan[0]), max_tokens, usage_opts)

    table = LatencyTable(model=str(model), backend=backend, hardware=hardware, max_tokens=max_tokens, repeats=repeats,
                         base_model=base_model)
    rng = random.Random(seed)
    order = []
    for run in range(repeats):
        batch = list(plan)
        rng.shuffle(batch)
        order += [(run, n) for n in batch]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc="latency", unit="request")
    for run, n in order:
        ttft, total, usage = _stream_once(client, model, messages(n), max_tokens, usage_opts)
        table.samples.append(
            Sample(
                target_tokens=n,
                system_tokens=prompts[n][1],
                prompt_tokens=getattr(usage, "prompt_tokens", None),
                completion_tokens=getattr(usage, "completion_tokens", None),
                ttft_s=ttft,
                total_s=total,
                run=run,
            )
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return table
