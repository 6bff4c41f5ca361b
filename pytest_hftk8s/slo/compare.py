"""The statistics of comparisons: this run against a baseline run, one verdict per test, load run and
measure - regressed, improved, unchanged or inconclusive - with its effect and confidence interval.

What a nightly gate must not do is cry wolf on noise (k6 #1843, orion #263: false change points) or
miss a real slowdown. So every verdict rests on an interval, and a change counts only when the whole
interval lies beyond the minimum effect:

* **throughput** - accepted requests per second, one sample per second of the order window (from the
  generator's 100 ms timeline). The effect is the ratio of the means; its interval comes from a
  two-level bootstrap with the repeats as blocks: draw repeats with replacement, then seconds within
  each drawn repeat, so the repeat-to-repeat noise is in the interval, not only the second-to-second
  noise of one run. (What repeats of one session cannot show is the noise between sessions, another
  deployment on another core: bench/regression_gate.py measures it, A/A.)
* **client p50 / p99** - of open-loop (constant-rate) runs only, from the generator's HDR histograms
  (intended send time, unanswered requests as slower than anything). The same two-level bootstrap,
  drawing each repeat's histogram again as a multinomial over its own buckets; the effect is the
  ratio of the pooled quantiles. In a closed loop the generator waits for each answer before the
  next, so latency is the concurrency over the throughput (Little's law): it says nothing the
  throughput does not, and between two sessions of one commit here its p50 swung 2x (11 ms against
  22 ms) while the throughput moved 17%. Latency measures a system only at a load it did not choose.
* **recovery time** and the **resilience score** - one value per repeat; a bootstrap of the means.

With a handful of repeats a bootstrap cannot see more run-to-run spread than the few repeats show,
so each interval is the wider of the bootstrap's and Welch's t interval over the per-repeat values
(whose t quantile grows as the repeats get fewer: with two a side, almost nothing is called).

Mann-Whitney U (scipy) is reported beside throughput and latency (per-second samples) and the
per-repeat values: a distribution test, not the verdict.

The minimum effect is ``min_effect`` (5% by default), or the baseline's own spread between its
repeats, ``(max - min) / mean`` of the per-repeat statistic, when that is wider, or the measurement's
resolution (0.2 s of recovery, 1 point of score) relative to the baseline. With fewer than
:data:`MIN_REPEATS` repeats on a side (run-to-run noise cannot be seen from one run) or fewer than
:data:`MIN_SECONDS` per-second samples, the verdict is "inconclusive", never "regressed". A measure
that the baseline's own comparison found regressed and that regresses again is a *known* regression
(orion #78): reported, not a new alert.

The resampling itself is :mod:`pytest_hftk8s.slo.resample`'s. Pure: two
:class:`~pytest_hftk8s.results.SessionReport` in, a
:class:`~pytest_hftk8s.results.Comparison` out. Seeded: the same reports give the same verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pytest_hftk8s.results import (
    Comparison,
    LoadSummary,
    MeasureComparison,
    RunIdentity,
    SessionReport,
    TestRecord,
)
from pytest_hftk8s.slo.resample import (
    Histogram,
    bootstrap_means,
    bootstrap_quantiles,
    interval,
    mann_whitney,
    pooled_quantile,
    relative,
    spread,
    welch,
    widest,
)
from pytest_hftk8s.slo.score import resilience_score

__all__ = [
    "CONFIDENCE",
    "DEFAULT_MIN_EFFECT",
    "MIN_REPEATS",
    "MIN_SECONDS",
    "SPECS",
    "Histogram",
    "Samples",
    "compare_blocks",
    "compare_reports",
    "counts",
    "describe",
    "judge",
    "overall",
    "per_second",
    "sentence",
]

DEFAULT_MIN_EFFECT = 0.05
CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_REPEATS = 2  # blocks per side before anything may be called regressed, improved or unchanged
MIN_SECONDS = 5  # per-second samples per side, for throughput
SEED = 20261203
QUANTILE_GRID = (1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9)
MAX_VALUES = 600  # samples kept per side for the report's overlay

VERDICTS = ("regressed", "improved", "unchanged", "inconclusive")


# -- samples --------------------------------------------------------------------------------------


def per_second(load: LoadSummary) -> list[float]:
    """Accepted (2xx) answers in each whole second of the run's order window, from its 100 ms timeline."""
    tl = load.timeline
    if tl is None or tl.step <= 0 or not tl.values:
        return []
    per = max(1, round(1.0 / tl.step))
    start, end = load.order_window.start, load.order_window.end
    first = max(0, math.ceil((start - tl.start) / tl.step - 1e-6))
    out: list[float] = []
    i = first
    while i + per <= len(tl.values) and tl.start + (i + per) * tl.step <= end + 1e-6:
        chunk = tl.values[i : i + per]
        out.append(float(sum(0.0 if math.isnan(v) else v for v in chunk)) * (1.0 / (per * tl.step)))
        i += per
    return out


# -- the verdict -----------------------------------------------------------------------------------


def judge(ci: tuple[float, float], *, better: str, threshold: float, enough: bool) -> tuple[str, str]:
    """(verdict, why) for a relative effect's interval against ``threshold`` (> 0)."""
    lo, hi = ci
    worse = (hi < -threshold) if better == "higher" else (lo > threshold)
    good = (lo > threshold) if better == "higher" else (hi < -threshold)
    band = f"±{threshold:.1%}"
    if not enough:
        return "inconclusive", "too few samples to see run-to-run noise"
    if worse:
        return "regressed", f"the whole interval is beyond {band} in the bad direction"
    if good:
        return "improved", f"the whole interval is beyond {band} in the good direction"
    if -threshold <= lo and hi <= threshold:
        return "unchanged", f"the whole interval is within {band}"
    return "inconclusive", f"the interval straddles {band}"


@dataclass
class _Boot:
    """Paired bootstrap replicates of one statistic on each side."""

    base: np.ndarray
    cur: np.ndarray


@dataclass
class Samples:
    """What one measure needs on one side: blocks (repeats) of samples, or of histograms."""

    blocks: list[list[float]] = field(default_factory=list)
    hists: list[Histogram] = field(default_factory=list)
    timelines: list[float] = field(default_factory=list)  # per-second values for Mann-Whitney


@dataclass(frozen=True)
class _Spec:
    measure: str
    unit: str
    better: str
    kind: str  # "seconds" (nested bootstrap of per-second samples) | "quantile" | "repeats"
    q: float = 0.0
    resolution: float = 0.0  # in the measure's unit: the smallest change it can resolve


SPECS = {
    "throughput": _Spec("throughput", "requests/s", "higher", "seconds"),
    "client_p50_ms": _Spec("client_p50_ms", "ms", "lower", "quantile", q=0.50),
    "client_p99_ms": _Spec("client_p99_ms", "ms", "lower", "quantile", q=0.99),
    "recovery_s": _Spec("recovery_s", "s", "lower", "repeats", resolution=0.2),
    "resilience_score": _Spec("resilience_score", "points", "higher", "repeats", resolution=1.0),
}


def compare_blocks(
    spec_name: str,
    base: Samples,
    cur: Samples,
    *,
    test: str,
    load: str = "",
    min_effect: float = DEFAULT_MIN_EFFECT,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    rng: np.random.Generator | None = None,
) -> MeasureComparison:
    """One measure's verdict from its baseline and current blocks (see the module docstring)."""
    spec = SPECS[spec_name]
    rng = rng if rng is not None else np.random.default_rng(SEED)
    out = MeasureComparison(
        test=test, load=load, measure=spec.measure, unit=spec.unit, better=spec.better,
        verdict="inconclusive", min_effect=min_effect,
    )  # fmt: skip
    if spec.kind == "quantile":
        b_units, c_units = base.hists, cur.hists
        out.repeats_baseline, out.repeats_current = len(b_units), len(c_units)
        out.n_baseline = sum(h.total for h in b_units)
        out.n_current = sum(h.total for h in c_units)
        if not b_units or not c_units:
            out.reason = "no latency histogram on " + _side_missing(bool(b_units), bool(c_units))
            return out
        point_b, point_c = pooled_quantile(b_units, spec.q), pooled_quantile(c_units, spec.q)
        per_repeat = [h.quantile(spec.q) for h in b_units]
        cur_repeat = [h.quantile(spec.q) for h in c_units]
        boot = _Boot(
            bootstrap_quantiles(b_units, spec.q, rng, resamples),
            bootstrap_quantiles(c_units, spec.q, rng, resamples),
        )
        out.distribution, out.grid = "quantiles", list(QUANTILE_GRID)
        out.baseline_values = [pooled_quantile(b_units, g / 100) for g in QUANTILE_GRID]
        out.current_values = [pooled_quantile(c_units, g / 100) for g in QUANTILE_GRID]
        # A quantile needs about ten requests beyond it on each side to be more than its largest value.
        needed = math.ceil(10 / (1 - spec.q))
        enough_samples = min(out.n_baseline, out.n_current) >= needed
        out.p_value = mann_whitney(base.timelines, cur.timelines)
        out.method = (
            f"two-level bootstrap ({resamples} resamples) of the pooled p{spec.q * 100:g} over the HDR "
            "histograms: repeats drawn with replacement, each histogram redrawn multinomially; the "
            "interval is the wider of it and Welch's t over the per-repeat quantiles"
        )
    else:
        b_blocks = [b for b in base.blocks if b]
        c_blocks = [b for b in cur.blocks if b]
        out.repeats_baseline, out.repeats_current = len(b_blocks), len(c_blocks)
        out.n_baseline = sum(len(b) for b in b_blocks)
        out.n_current = sum(len(b) for b in c_blocks)
        if not b_blocks or not c_blocks:
            out.reason = "no samples on " + _side_missing(bool(b_blocks), bool(c_blocks))
            return out
        point_b = float(np.mean(np.concatenate([np.asarray(b, float) for b in b_blocks])))
        point_c = float(np.mean(np.concatenate([np.asarray(b, float) for b in c_blocks])))
        per_repeat = [float(np.mean(b)) for b in b_blocks]
        cur_repeat = [float(np.mean(b)) for b in c_blocks]
        nested = spec.kind == "seconds"
        boot = _Boot(
            bootstrap_means(b_blocks, rng, resamples, nested=nested),
            bootstrap_means(c_blocks, rng, resamples, nested=nested),
        )
        enough_samples = not nested or (out.n_baseline >= MIN_SECONDS and out.n_current >= MIN_SECONDS)
        pool_b = [v for b in b_blocks for v in b]
        pool_c = [v for b in c_blocks for v in b]
        out.baseline_values, out.current_values = _thin(pool_b), _thin(pool_c)
        out.p_value = mann_whitney(pool_b, pool_c)
        out.method = (
            f"two-level bootstrap ({resamples} resamples) of the ratio of means over per-second samples, "
            "repeats as blocks" if nested else
            f"bootstrap ({resamples} resamples) of the ratio of the means of the per-repeat values"
        ) + "; the interval is the wider of it and Welch's t over the per-repeat values"  # fmt: skip
    out.baseline, out.current = point_b, point_c
    out.noise = spread(per_repeat)
    enough = enough_samples and out.repeats_baseline >= MIN_REPEATS and out.repeats_current >= MIN_REPEATS
    few = "" if enough else (
        f"{out.repeats_baseline} baseline and {out.repeats_current} current repeat(s); at least "
        f"{MIN_REPEATS} a side are needed to see run-to-run noise (--hft-repeat)"
        if enough_samples else "too few samples on a side for this statistic"
    )  # fmt: skip
    if not (math.isfinite(point_b) and point_b > 0):
        # A zero (never dipped) or infinite baseline has no relative effect: judge the difference.
        lo, hi = widest(interval(boot.cur - boot.base, confidence), welch(per_repeat, cur_repeat, confidence))
        threshold = max(spec.resolution, 1e-9)
        out.verdict, why = judge(
            (lo / threshold, hi / threshold), better=spec.better, threshold=1.0, enough=enough
        )
        out.reason = (
            f"baseline {point_b:g} {spec.unit}: judged on the difference, [{lo:.3g}, {hi:.3g}] {spec.unit} "
            f"against ±{threshold:g} {spec.unit}; " + (few or why)
        )
        return out
    effects = relative(boot.cur, boot.base)
    out.effect = float(relative(point_c, point_b))
    by_repeat = welch(per_repeat, cur_repeat, confidence)
    scale = float(np.mean(per_repeat)) if by_repeat is not None else 1.0
    lo, hi = widest(
        interval(effects, confidence),
        None if by_repeat is None else (by_repeat[0] / scale, by_repeat[1] / scale),
    )
    out.ci = (max(lo, -1.0), hi)  # a quantity that cannot go below zero cannot change by less than -100%
    threshold = max(min_effect, out.noise or 0.0, spec.resolution / point_b)
    out.min_effect = threshold
    out.verdict, why = judge(out.ci, better=spec.better, threshold=threshold, enough=enough)
    widened = (
        f" (widened from {min_effect:.0%} by the baseline's repeat-to-repeat spread {out.noise:.1%})"
        if out.noise is not None and out.noise > min_effect and threshold == out.noise else ""
    )  # fmt: skip
    out.reason = (few or why) + widened
    return out


def _side_missing(baseline: bool, current: bool) -> str:
    return (
        "either side"
        if not (baseline or current)
        else "the baseline side"
        if not baseline
        else "this run's side"
    )


def _thin(values: Sequence[float]) -> list[float]:
    if len(values) <= MAX_VALUES:
        return [float(v) for v in values]
    step = len(values) / MAX_VALUES
    return [float(values[int(i * step)]) for i in range(MAX_VALUES)]


# -- two reports -----------------------------------------------------------------------------------


def _cases(report: SessionReport) -> dict[str, list[TestRecord]]:
    cases: dict[str, list[TestRecord]] = {}
    for rec in report.tests:
        if rec.outcome in ("passed", "failed"):
            cases.setdefault(rec.case_id, []).append(rec)
    return cases


def _side(records: Sequence[TestRecord]) -> dict[tuple[str, str], Samples]:
    """(load or chaos run, measure) -> the blocks of one side, one block per repeat."""
    sides: dict[tuple[str, str], Samples] = {}

    def get(load: str, measure: str) -> Samples:
        return sides.setdefault((load, measure), Samples())

    for rec in sorted(records, key=lambda r: r.repeat):
        for load in rec.loads:
            if not load.valid:
                continue
            get(load.name, "throughput").blocks.append(per_second(load))
            get(load.name, "throughput").timelines.extend(per_second(load))
            if load.mode != "open":
                continue  # closed loop: latency is the concurrency over the throughput (see the docstring)
            hist = Histogram.of(load)
            for name, q in (("client_p50_ms", "p50"), ("client_p99_ms", "p99")):
                if hist is not None:
                    get(load.name, name).hists.append(hist)
                series = load.latency_timeline.get(q)
                if series is not None:
                    get(load.name, name).timelines.extend(v for v in series.values if not math.isnan(v))
        for chaos in rec.chaos:
            if chaos.recovery is not None and chaos.recovery.recovery_s is not None:
                get(chaos.load or chaos.experiment, "recovery_s").blocks.append([chaos.recovery.recovery_s])
    return sides


def _score_blocks(report: SessionReport) -> list[list[float]]:
    """One resilience score per repeat: each repeat's records with those of the tests run once."""
    cases = _cases(report)
    repeats = sorted({r.repeat for recs in cases.values() if len(recs) > 1 for r in recs}) or [1]
    blocks: list[list[float]] = []
    for n in repeats:
        chosen = [r for recs in cases.values() for r in recs if len(recs) == 1 or r.repeat == n]
        score = resilience_score(chosen).score
        if score is not None:
            blocks.append([score])
    return blocks


def _known(baseline: SessionReport) -> set[str]:
    if baseline.comparison is None:
        return set()
    return {m.key for m in baseline.comparison.measures if m.verdict == "regressed"}


def _warnings(current: SessionReport, baseline: SessionReport) -> list[str]:
    out: list[str] = []
    bi, ci = baseline.identity or RunIdentity(), current.identity or RunIdentity()
    if bi.cpu_model and ci.cpu_model and (bi.cpu_model, bi.cores) != (ci.cpu_model, ci.cores):
        out.append(
            f"another machine: the baseline ran on {bi.cpu_model} x{bi.cores}, this run on "
            f"{ci.cpu_model} x{ci.cores}; a difference may be the machine's, not the commit's"
        )
    if (baseline.cluster, baseline.profile) != (current.cluster, current.profile):
        out.append(
            f"another platform: the baseline ran on {baseline.cluster}/{baseline.profile}, this run on "
            f"{current.cluster}/{current.profile}"
        )
    b_rate = baseline.capacity.offered_rate if baseline.capacity else None
    c_rate = current.capacity.offered_rate if current.capacity else None
    if b_rate and c_rate and abs(c_rate / b_rate - 1) > 0.01:
        out.append(
            f"another offered rate: the baseline's suites offered {b_rate:g}/s, this run's {c_rate:g}/s; "
            "latency and throughput at a different load are not comparable (pass the baseline's rate "
            "with --hft-baseline-rate, or let --hft-compare take it)"
        )
    if current.repeat < MIN_REPEATS or baseline.repeat < MIN_REPEATS:
        out.append(
            f"{baseline.repeat} baseline and {current.repeat} current repeat(s): with fewer than "
            f"{MIN_REPEATS} a side every verdict is inconclusive; run both with --hft-repeat=3"
        )
    return out


def compare_reports(
    current: SessionReport,
    baseline: SessionReport,
    *,
    min_effect: float = DEFAULT_MIN_EFFECT,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    fail_on_regression: bool = False,
    baseline_identity: RunIdentity | None = None,
) -> Comparison:
    """Every measure of every test both runs have, judged; see the module docstring."""
    rng = np.random.default_rng(seed)
    known = _known(baseline)
    base_cases, cur_cases = _cases(baseline), _cases(current)
    measures: list[MeasureComparison] = []

    def judged(measure: str, base: Samples, cur: Samples, test: str, load: str = "") -> None:
        m = compare_blocks(
            measure, base, cur, test=test, load=load, min_effect=min_effect, confidence=confidence,
            resamples=resamples, rng=rng,
        )  # fmt: skip
        m.known = m.verdict == "regressed" and m.key in known
        measures.append(m)

    for case in sorted(set(base_cases) & set(cur_cases)):
        b_side, c_side = _side(base_cases[case]), _side(cur_cases[case])
        for load, measure in sorted(set(b_side) & set(c_side), key=_order):
            judged(measure, b_side[load, measure], c_side[load, measure], case, load)
    b_score, c_score = _score_blocks(baseline), _score_blocks(current)
    if b_score and c_score:
        judged("resilience_score", Samples(blocks=b_score), Samples(blocks=c_score), "session")
    regressions = [m.key for m in measures if m.verdict == "regressed" and not m.known]
    known_regressions = [m.key for m in measures if m.verdict == "regressed" and m.known]
    return Comparison(
        baseline=baseline_identity or baseline.identity or RunIdentity(),
        current=current.identity or RunIdentity(),
        verdict=overall(measures),
        measures=measures,
        min_effect=min_effect,
        confidence=confidence,
        resamples=resamples,
        regressions=regressions,
        known_regressions=known_regressions,
        warnings=_warnings(current, baseline),
        fail_on_regression=fail_on_regression,
    )


def overall(measures: Sequence[MeasureComparison]) -> str:
    """regressed (a new regression) > inconclusive (something could not be told) > improved > unchanged."""
    verdicts = [m.verdict for m in measures if not m.known]
    if "regressed" in verdicts:
        return "regressed"
    if not verdicts or "inconclusive" in verdicts:
        return "inconclusive"
    return "improved" if "improved" in verdicts else "unchanged"


def _order(key: tuple[str, str]) -> tuple[str, int]:
    return key[0], list(SPECS).index(key[1])


def counts(comparison: Comparison) -> dict[str, int]:
    """How many measures got each verdict, known regressions apart."""
    out = {v: 0 for v in VERDICTS}
    out["known regression"] = 0
    for m in comparison.measures:
        out["known regression" if m.known else m.verdict] += 1
    return out


def sentence(comparison: Comparison) -> str:
    """One line for the terminal: the overall verdict and the counts."""
    c = counts(comparison)
    parts = [f"{c['regressed']} new regression(s)"]
    parts += [f"{c[k]} {k}" for k in ("known regression", "improved", "unchanged", "inconclusive") if c[k]]
    return f"{comparison.verdict}: " + ", ".join(parts)


def _fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "no data"
    if math.isinf(value):
        return "inf"
    return f"{value:,.3g} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"


def describe(m: MeasureComparison) -> str:
    """``test::load measure: baseline -> current, effect [interval] (min effect; reason)``."""
    where = f"{m.test}::{m.load}" if m.load else m.test
    change = f"{_fmt(m.baseline, m.unit)} -> {_fmt(m.current, m.unit)}"
    if m.effect is not None and m.ci is not None:
        change += f", {m.effect:+.1%} [{m.ci[0]:+.1%}, {m.ci[1]:+.1%}]"
    return f"{where} {m.measure}: {change} (min effect {m.min_effect:.1%}; {m.reason})"
