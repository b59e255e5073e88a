"""Plot helpers shared by the lessons' charts: plain text (no mathtext), readable log ticks, safe PNG rendering.

Matplotlib's mathtext parser is not thread-safe: a widget callback drawing a log-scale figure while another
thread draws one fails with ``ParseException … (at char 0)`` on a tick label such as ``$\\mathdefault{10^{5}}$``.
A fresh Jupyter kernel does exactly that when the frontend echoes a slider value back. So the course's charts
never use mathtext (dollar signs are text, log ticks are plain numbers), and every widget renders its figure
to PNG under one lock.
"""

from __future__ import annotations

import base64
import html
import io
import math
import threading
from typing import Any

RENDER_LOCK = threading.RLock()
"""Held while a figure is built and drawn by a widget callback (matplotlib is not thread-safe)."""


def compact_number(x: float) -> str:
    """1,000 -> '1k', 2,500,000 -> '2.5M', 0.01 -> '0.01': plain text for a tick label."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def plain_log_ticks(ax: Any, axes: str = "xy") -> None:
    """Label log-scale axes with plain numbers (``1k``, ``10M``) instead of mathtext powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_locator(LogLocator(base=10))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: compact_number(v)))
        axis.set_minor_formatter(NullFormatter())


def plain_text(fig: Any) -> Any:
    """Turn mathtext off for every text of ``fig`` (titles, notes, labels, legend): ``$`` is a dollar sign."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        t.set_parse_math(False)
    return fig


def figure(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure and axes outside pyplot (no global state, safe to build in a callback)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="tight")
    return fig, fig.add_subplot()


def png(fig: Any, dpi: int = 100) -> bytes:
    """The figure as PNG bytes, drawn under :data:`RENDER_LOCK`, byte-identical for identical figures."""
    import matplotlib

    buf = io.BytesIO()
    with RENDER_LOCK, matplotlib.rc_context({"text.parse_math": False}):
        plain_text(fig)
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def img_tag(data: bytes, alt: str) -> str:
    """An inline ``<img>`` (data URI) with alt text: self-contained HTML that any frontend shows."""
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt, quote=True)}" style="max-width:100%">'


def degenerate_note(values: list[float], why: str = "") -> str | None:
    """Why a chart looks flat: every value equal (e.g. every bar at 0), so it shows no difference."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "nothing measured"
    if max(finite) == min(finite):
        return f"every value is {finite[0]:g} on this model: {why or 'nothing to compare'}"
    return None
