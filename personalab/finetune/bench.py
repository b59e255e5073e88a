"""The recorded side-by-side benchmark of Unsloth and plain PEFT + TRL, for lesson 04 to show.

``benchmarks/bench_finetune_cpu.py --record`` writes ``benchmarks/results/finetune_cpu.json`` (both backends, same
data, steps and threads, one run); ``bench_finetune_gpu.py --record`` writes ``finetune_gpu.json`` when a GPU was
there. :func:`recorded_comparison` reads both into one table; a machine with no record is a row that says
"not yet measured" instead of a number.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config as pl_config
from ..errors import InputError

RESULTS_DIR = pl_config.REPO_ROOT / "benchmarks" / "results"
COLUMNS = ("machine", "backend", "s/step", "tokens/s", "peak memory MB", "final loss", "marker rate after")
RERUN = "re-run `python benchmarks/bench_finetune_{}.py --record` on a quiet machine"


@dataclass(repr=False)
class Comparison:
    """Rows of the recorded benchmark (one per machine and backend) and the records they came from."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run(self, kind: str, backend: str) -> dict[str, Any] | None:
        """The recorded run of ``backend`` on ``kind`` ('cpu' or 'gpu'), or None when not measured."""
        rec = self.records.get(kind) or {}
        return next((r for r in rec.get("runs", []) if r.get("backend") == backend and "error" not in r), None)

    def ratio(self, kind: str, key: str = "time_per_step_s") -> float | None:
        """PEFT + TRL's ``key`` divided by Unsloth's (above 1: Unsloth is faster / smaller), or None."""
        u, p = self.run(kind, "unsloth"), self.run(kind, "peft")
        if not (u and p and u["metrics"].get(key) and p["metrics"].get(key)):
            return None
        return p["metrics"][key] / u["metrics"][key]

    def _cells(self) -> list[list[str]]:
        return [[str(r[c]) for c in COLUMNS] for r in self.rows]

    def __str__(self) -> str:
        cells = [list(COLUMNS), *self._cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in self._cells())
        return f"<table><tr>{head}</tr>{body}</table>"


def _read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"the benchmark record is not valid JSON ({exc})", path=path,
                         fix=RERUN.format(path.stem.removeprefix("finetune_"))) from None
    if not isinstance(rec, dict) or not isinstance(rec.get("runs"), list):
        raise InputError("the benchmark record has no 'runs' list (written by an older script)", path=path,
                         field="runs", fix=RERUN.format(path.stem.removeprefix("finetune_")))
    return rec


def _row(machine: str, run: dict[str, Any]) -> dict[str, Any]:
    if "error" in run:
        return dict.fromkeys(COLUMNS, "failed") | {"machine": machine, "backend": run["backend"]}
    m = run.get("metrics") or run.get("summary") or {}
    return {"machine": machine, "backend": run["backend"], "s/step": f"{m['time_per_step_s']:.3f}",
            "tokens/s": f"{m['tokens_per_second']:.0f}", "peak memory MB": f"{m['peak_memory_mb']:.0f}",
            "final loss": f"{m['final_loss']:.3f}", "marker rate after": f"{run['marker_rate_after']:.2f}"}


def recorded_comparison(results_dir: str | Path | None = None) -> Comparison:
    """The recorded CPU and GPU benchmarks as one table; a machine without a record reads "not yet measured"."""
    folder = Path(results_dir) if results_dir else RESULTS_DIR
    out = Comparison()
    for kind in ("cpu", "gpu"):
        rec = _read(folder / f"finetune_{kind}.json")
        if rec is None:
            for backend in ("unsloth", "peft"):
                out.rows.append(dict.fromkeys(COLUMNS, "not yet measured") | {"machine": kind.upper(),
                                                                                "backend": backend})
            continue
        out.records[kind] = rec
        machine = rec.get("hardware") or f"GPU {rec.get('gpu', '?')}"
        threads = f", {rec['threads']} thread(s)" if kind == "cpu" and rec.get("threads") else ""
        for run in rec["runs"]:
            out.rows.append(_row(f"{machine}{threads} ({rec['date']})", run))
    return out
