"""The arithmetic of lesson 05: rates with bootstrap confidence intervals, and agreement between raters."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..quality import auc  # noqa: F401  (one definition; evaluate.metrics.auc is public)


@dataclass(frozen=True)
class Estimate:
    """A statistic with a confidence interval: ``value`` in ``[low, high]`` at level ``level`` over ``n`` items."""

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a"
        return f"{self.value:.0%} [{self.low:.0%}, {self.high:.0%}] (n={self.n})"

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n, "level": self.level}


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default method)."""
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_ci(
    values: Sequence[float],
    stat: Callable[[Sequence[float]], float] = mean,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap: resample ``values`` with replacement ``n_boot`` times, take the middle ``level``.

    Deterministic for a given ``seed``. No values give a ``nan`` estimate with ``n=0``.
    """
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, got {level}", field="level", fix="use e.g. 0.95")
    if n_boot < 1:
        raise InputError(f"n_boot must be at least 1, got {n_boot}", field="n_boot")
    vals = [float(v) for v in values]
    if not vals:
        return Estimate(math.nan, math.nan, math.nan, 0, level)
    point = stat(vals)
    rng = random.Random(seed)
    n = len(vals)
    stats = sorted(stat([vals[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    alpha = (1 - level) / 2
    return Estimate(point, _quantile(stats, alpha), _quantile(stats, 1 - alpha), n, level)


def rate(flags: Sequence[bool], **kwargs) -> Estimate:
    """Share of true flags with a bootstrap confidence interval."""
    return bootstrap_ci([1.0 if f else 0.0 for f in flags], **kwargs)


# ------------------------------------------------------------------------------------------ agreement
def accuracy(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Share of items on which two raters give the same label."""
    _same_length(a, b)
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a else math.nan


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two binary raters: agreement beyond what their label rates give by chance.

    1 is perfect agreement, 0 is chance level, negative is worse than chance. When both raters give one
    and the same label to every item, chance agreement is 1 and kappa is defined as 1 (they agree).
    """
    _same_length(a, b)
    if not a:
        return math.nan
    n = len(a)
    po = accuracy(a, b)
    pa, pb = sum(map(bool, a)) / n, sum(map(bool, b)) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe == 1:
        return 1.0 if po == 1 else 0.0
    return (po - pe) / (1 - pe)


def confusion(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, int]:
    """Counts of true/false positives/negatives (``truth`` is the reference rater)."""
    _same_length(truth, predicted)
    pairs = list(zip(truth, predicted, strict=True))
    return {
        "tp": sum(t and p for t, p in pairs),
        "fp": sum(p and not t for t, p in pairs),
        "fn": sum(t and not p for t, p in pairs),
        "tn": sum(not t and not p for t, p in pairs),
    }


def _same_length(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise InputError(f"the two label lists differ in length ({len(a)} vs {len(b)})", field="labels")
