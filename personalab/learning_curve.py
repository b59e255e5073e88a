"""How much data does a persona need? A learning curve over the number of distinct training conversations.

Each point is one LoRA run with the profile's preset (the same steps, batch and learning rate as lesson 04), trained
on the first ``n`` conversations of a fixed shuffle of lesson 03's training split, then asked the held-out requests
with no system prompt. A point records the three numbers lesson 04 judges a run by: the marker rate (is it
TaskMaster?), the fluent rate and the task-fact rate (is it still a working assistant?), each with its 95 % Wilson
interval. The compute is the same at every point, so a small set is seen many times over: the curve shows how many
*distinct* examples the persona needs, not how many steps.

Several training runs take minutes each on a CPU (``benchmarks/bench_learning_curve.py`` records them); lesson 04
measures it live only when asked, and otherwise shows the recorded curve with the hardware and date it came from.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .general import count_summary, wilson_interval
from .io import atomic_write_text

#: Training-set sizes of the curve (distinct conversations); lesson 03's training split has 292.
DEFAULT_SIZES = (25, 50, 100, 200)
#: Where the benchmark records the curve (read by lesson 04 on machines that do not measure it live).
RECORDED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "learning_curve.json"
RATES = ("markers", "fluent", "task_facts")


@dataclass
class Point:
    """One run: ``examples`` distinct training conversations, and what the fine-tuned model did on ``n`` held-out
    requests with no system prompt (counts of replies with a marker, fluent, keeping the task facts)."""

    examples: int
    n: int
    markers: int
    fluent: int
    task_facts: int
    #: Requests that give a task name or a date to keep (the task-fact rate's denominator).
    facts_n: int
    eval_loss: float | None = None
    train_s: float | None = None

    def total(self, name: str) -> int:
        return self.facts_n if name == "task_facts" else self.n

    def rate(self, name: str) -> float:
        return getattr(self, name) / max(1, self.total(name))

    def interval(self, name: str) -> tuple[float, float]:
        return wilson_interval(getattr(self, name), max(1, self.total(name)))


@dataclass
class LearningCurve:
    """The points of a curve, with the base model, the training preset and where it was measured."""

    points: list[Point]
    base_model: str
    preset: dict[str, Any] = field(default_factory=dict)
    hardware: str = ""
    date: str = ""

    def summary(self) -> str:
        """One line per point: each rate as a count with its interval."""
        lines = [f"learning curve of {self.base_model} on {self.hardware or 'unknown hardware'}"
                 + (f", measured {self.date}" if self.date else "")]
        for p in self.points:
            parts = [f"{name.replace('_', ' ')} {count_summary(getattr(p, name), max(1, p.total(name)))}"
                     for name in RATES]
            lines.append(f"{p.examples:>4} examples: " + "; ".join(parts))
        return "\n".join(lines)

    def smallest(self, name: str = "markers", at_least: float = 0.9) -> int | None:
        """The fewest examples whose run reached ``at_least`` on ``name`` (None: no run did)."""
        hits = [p.examples for p in self.points if p.rate(name) >= at_least]
        return min(hits) if hits else None

    def plot(self, ax: Any = None) -> Any:
        """The three rates against the number of examples (log scale), each with its interval as a band."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.6))
        xs = [p.examples for p in self.points]
        for name, label in zip(RATES, ("persona markers", "fluent", "task facts kept"), strict=True):
            ys = [p.rate(name) for p in self.points]
            lows, highs = zip(*(p.interval(name) for p in self.points), strict=True)
            ax.plot(xs, ys, marker="o", label=label)
            ax.fill_between(xs, lows, highs, alpha=0.15)
        ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("distinct training conversations (same steps for every run)")
        ax.set_ylabel(f"share of {self.points[0].n if self.points else 0} held-out replies")
        ax.set_title(f"How much data does the persona need? ({self.base_model}, {self.hardware})", fontsize=9)
        ax.legend(fontsize=8)
        return ax

    def to_json(self) -> dict[str, Any]:
        return {"base_model": self.base_model, "preset": self.preset, "hardware": self.hardware, "date": self.date,
                "points": [asdict(p) for p in self.points]}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | Path | None = None) -> LearningCurve:
        try:
            points = [Point(**p) for p in data["points"]]
            return cls(points, str(data["base_model"]), dict(data.get("preset") or {}), str(data.get("hardware", "")),
                       str(data.get("date", "")))
        except (KeyError, TypeError) as exc:
            raise InputError(f"not a learning curve: {exc}", path=source, field="points",
                             fix="record it again with python benchmarks/bench_learning_curve.py") from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path


def load(path: str | Path = RECORDED) -> LearningCurve:
    """A recorded curve (by default the benchmark's), with a clear error when it is missing or damaged."""
    path = Path(path)
    if not path.exists():
        raise InputError("no recorded learning curve", path=path,
                         fix="record one with python benchmarks/bench_learning_curve.py, or measure it: "
                             "learning_curve.measure()")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path=path, line=exc.lineno,
                         fix="record it again with python benchmarks/bench_learning_curve.py") from None
    return LearningCurve.from_json(data, path)


def subsets(examples: Sequence[Any], sizes: Sequence[int], seed: int = 0) -> dict[int, list[Any]]:
    """The first ``n`` of one fixed shuffle of ``examples`` for each size: every smaller set sits inside the larger
    ones, so the points differ only in how much data was added."""
    bad = [n for n in sizes if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(examples)]
    if bad:
        raise InputError(f"sizes {bad} are not between 1 and the {len(examples)} training conversations",
                         field="sizes", fix=f"choose sizes from 1 to {len(examples)}")
    order = list(examples)
    random.Random(seed).shuffle(order)
    return {n: order[:n] for n in sorted(sizes)}


def point_from_eval(examples: int, evaluation: dict[str, Any], result: Any = None) -> Point:
    """A :class:`Point` from :func:`personalab.finetune.persona_eval`'s output (and the run's result)."""
    facts = [f for f in evaluation["task_facts"] if f is not None]
    metrics = getattr(result, "metrics", {}) or {}
    evals = getattr(result, "eval", None) or {}
    return Point(examples, int(evaluation["n"]), sum(map(bool, evaluation["has_marker"])),
                 sum(map(bool, evaluation["fluent"])), sum(map(bool, facts)), len(facts), evals.get("loss_after"),
                 metrics.get("train_s"))


def measure(sizes: Sequence[int] = DEFAULT_SIZES, *, config: Any = None, seed: int = 0, progress: bool = True,
            out_dir: str | Path | None = None) -> LearningCurve:
    """Train one run per size with ``config`` (default: the profile's preset) and evaluate each without a prompt."""
    from . import config as pl_config
    from . import finetune, results

    config = config or finetune.default_config()
    train, _ = finetune.load_examples(finetune.dataset_paths().train)
    base = Path(out_dir) if out_dir else pl_config.home() / "runs" / "learning-curve"
    points = []
    for n, data in subsets(train, sizes, seed).items():
        cfg = finetune.default_config(**{**asdict(config), "output_dir": str(base / f"n{n:04d}"), "merge": False})
        result = finetune.train(cfg, data, progress=progress)
        evaluation = finetune.persona_eval(*result.load(merged=False), label=f"{n} examples", progress=progress)
        points.append(point_from_eval(n, evaluation, result))
    preset = {k: getattr(config, k) for k in ("r", "lora_alpha", "learning_rate", "max_steps", "batch_size",
                                              "grad_accum")}
    return LearningCurve(points, str(config.base_model), preset, results.hardware(), time.strftime("%Y-%m-%d"))
