"""The resampling statistics behind a comparison: HDR histograms as arrays, two-level bootstraps of
means and quantiles, Welch's t interval, Mann-Whitney U, and the spread between repeats.

Numbers in, numbers out: what is measured and how it is judged is :mod:`pytest_hftk8s.slo.compare`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pytest_hftk8s.results import LoadSummary

__all__ = [
    "Histogram",
    "bootstrap_means",
    "bootstrap_quantiles",
    "interval",
    "mann_whitney",
    "pooled_quantile",
    "relative",
    "spread",
    "welch",
    "widest",
]


@dataclass(frozen=True)
class Histogram:
    """One run's client latencies: bucket values (ms, ascending; ``inf`` for the unanswered) and counts."""

    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, load: LoadSummary) -> Histogram | None:
        if not load.histogram and not load.unanswered:
            return None
        pairs: list[tuple[float, int]] = []
        if load.histogram:
            from hdrh.histogram import HdrHistogram

            decoded = HdrHistogram.decode(load.histogram)
            pairs = [
                (item.value_iterated_to / 1000.0, item.count_at_value_iterated_to)
                for item in decoded.get_recorded_iterator()
            ]
        if load.unanswered:
            pairs.append((math.inf, load.unanswered))
        if not pairs:
            return None
        return cls(
            np.array([v for v, _ in pairs], dtype=float), np.array([c for _, c in pairs], dtype=np.int64)
        )

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        return quantile_of(self.values, self.counts.astype(float), q)


def quantile_of(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    total = counts.sum()
    if total <= 0:
        return math.nan
    rank = max(1.0, math.ceil(q * total))
    return float(values[min(len(values) - 1, int(np.searchsorted(np.cumsum(counts), rank)))])


def bootstrap_means(
    blocks: Sequence[Sequence[float]], rng: np.random.Generator, resamples: int, *, nested: bool
) -> np.ndarray:
    """Replicates of the pooled mean: blocks drawn with replacement, then (``nested``) values within."""
    arrays = [np.asarray(b, dtype=float) for b in blocks]
    k = len(arrays)
    sums = np.zeros(resamples)
    counts = np.zeros(resamples)
    for _ in range(k):
        chosen = rng.integers(0, k, size=resamples)
        for b, arr in enumerate(arrays):
            rows = np.flatnonzero(chosen == b)
            if not rows.size:
                continue
            if nested and arr.size > 1:
                draws = arr[rng.integers(0, arr.size, size=(rows.size, arr.size))]
                sums[rows] += draws.sum(axis=1)
            else:
                sums[rows] += arr.sum()
            counts[rows] += arr.size
    return sums / np.maximum(counts, 1)


def bootstrap_quantiles(
    hists: Sequence[Histogram], q: float, rng: np.random.Generator, resamples: int
) -> np.ndarray:
    """Replicates of the pooled quantile: histograms drawn with replacement, each redrawn multinomially.

    The buckets are merged into 0.5%-wide ones first (HDR's are 0.1%): a tenth of the work, and no
    effect anyone would gate on is that small."""
    merged = [coarse(h.values) for h in hists]
    grid = np.unique(np.concatenate(merged))
    aligned = [np.zeros(grid.size, dtype=np.int64) for _ in hists]
    for a, values, h in zip(aligned, merged, hists, strict=True):
        np.add.at(a, np.searchsorted(grid, values), h.counts)
    k = len(hists)
    pooled = np.zeros((resamples, grid.size))
    for _ in range(k):
        chosen = rng.integers(0, k, size=resamples)
        for b, counts in enumerate(aligned):
            rows = np.flatnonzero(chosen == b)
            total = int(counts.sum())
            if rows.size and total:
                pooled[rows] += rng.multinomial(total, counts / total, size=rows.size)
    cum = np.cumsum(pooled, axis=1)
    ranks = np.maximum(1.0, np.ceil(q * cum[:, -1]))
    index = np.minimum(grid.size - 1, (cum < ranks[:, None]).sum(axis=1))
    return grid[index]


BUCKET = math.log(1.005)


def coarse(values: np.ndarray) -> np.ndarray:
    """Each value moved to the top of its 0.5%-wide logarithmic bucket (``inf`` stays ``inf``)."""
    out = values.copy()
    finite = np.isfinite(values) & (values > 0)
    out[finite] = np.exp(np.ceil(np.log(values[finite]) / BUCKET - 1e-9) * BUCKET)
    return out


def interval(effects: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    finite = np.where(np.isnan(effects), np.inf, effects)
    lo = float(np.percentile(finite, tail, method="lower"))
    hi = float(np.percentile(finite, 100 - tail, method="higher"))
    return lo, hi


def relative(cur: np.ndarray | float, base: np.ndarray | float) -> np.ndarray:
    """cur / base - 1 with the edge cases named: inf / finite is +inf, finite / inf is -1, inf / inf is 0."""
    c, b = np.asarray(cur, dtype=float), np.asarray(base, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = c / b - 1.0
    out = np.where(np.isinf(c) & np.isinf(b), 0.0, out)
    return np.where(np.isinf(c) & ~np.isinf(b), np.inf, out)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float | None:
    x = [v for v in a if not math.isnan(v)]
    y = [v for v in b if not math.isnan(v)]
    if len(x) < 2 or len(y) < 2 or len(set(x) | set(y)) < 2:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


def spread(stats: Iterable[float]) -> float | None:
    """(max - min) / mean of the per-repeat statistics; None with fewer than two, or a zero mean."""
    values = [v for v in stats if math.isfinite(v)]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return (max(values) - min(values)) / mean if mean > 0 else None


def welch(base: Sequence[float], cur: Sequence[float], confidence: float) -> tuple[float, float] | None:
    """Welch's t interval of mean(cur) - mean(base) over the per-repeat values; None with fewer than
    two a side or a non-finite one.

    With a handful of repeats a bootstrap cannot see more run-to-run spread than those few show, so
    its interval is too narrow (two repeats a side that happened to differ by 25% looked like a
    regression); Student's t quantile grows as the repeats get fewer. The verdict takes the wider.
    """
    b, c = np.asarray(base, dtype=float), np.asarray(cur, dtype=float)
    if b.size < 2 or c.size < 2 or not (np.isfinite(b).all() and np.isfinite(c).all()):
        return None
    vb, vc = b.var(ddof=1) / b.size, c.var(ddof=1) / c.size
    diff = float(c.mean() - b.mean())
    se = math.sqrt(vb + vc)
    if se == 0:
        return diff, diff
    from scipy.stats import t

    df = (vb + vc) ** 2 / (vb**2 / (b.size - 1) + vc**2 / (c.size - 1))
    half = float(t.ppf(1 - (1 - confidence) / 2, df)) * se
    return diff - half, diff + half


def widest(one: tuple[float, float], other: tuple[float, float] | None) -> tuple[float, float]:
    return one if other is None else (min(one[0], other[0]), max(one[1], other[1]))


def pooled_quantile(hists: Sequence[Histogram], q: float) -> float:
    grid = np.unique(np.concatenate([h.values for h in hists]))
    counts = np.zeros(grid.size)
    for h in hists:
        np.add.at(counts, np.searchsorted(grid, h.values), h.counts)
    return quantile_of(grid, counts, q)
