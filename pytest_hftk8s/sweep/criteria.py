"""What makes one probe of a sweep sustainable: the bounds a trading desk signs, applied to one run.

A probe is one open-loop run at an offered rate. It is sustainable when, all three:

- the client-side p99 (from each request's intended send time, timeouts at their time, unanswered
  requests as failures: the generator's histogram, as ``slo/latency.py`` computes it; the caller
  hands the figure in) is at most ``max_p99_ms``;
- the accepted orders are at least ``min_ratio`` of the offered ones: order placements (limits and
  marketable orders; the flow's cancels are not orders) answered 2xx over placements due by the
  schedule, counted by the generator itself (:func:`throughput_ratio`);
- the generator's run is a valid measurement (it neither saturated nor fell behind its schedule).

Pure: reads a :class:`~pytest_hftk8s.results.LoadSummary`, returns a
:class:`~pytest_hftk8s.results.SweepProbe`. No I/O, no Prometheus, no pytest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytest_hftk8s.results import LoadSummary, SweepProbe

__all__ = ["Criteria", "judge", "throughput_ratio"]

CANCEL = "cancel"


@dataclass(frozen=True)
class Criteria:
    """The bounds of a sustainable probe (defaults: the bundled suite's client SLO and throughput SLO)."""

    max_p99_ms: float = 100.0
    min_ratio: float = 0.95

    def as_dict(self) -> dict[str, float]:
        return {"client_p99_ms": self.max_p99_ms, "min_throughput_ratio": self.min_ratio}


def throughput_ratio(summary: LoadSummary) -> float | None:
    """Order placements answered 2xx over placements due; ``None`` when the run had no order flow.

    A run with a caller's own requests (no flow, so no per-action counts) falls back to all 2xx
    answers over all requests due.
    """
    if summary.actions:
        due = sum(c.scheduled for a, c in summary.actions.items() if a != CANCEL)
        accepted = sum(c.ok for a, c in summary.actions.items() if a != CANCEL)
    else:
        due, accepted = summary.scheduled, summary.ok
    return accepted / due if due > 0 else None


def judge(
    summary: LoadSummary, *, backends: int, client_p99_ms: float | None, criteria: Criteria
) -> SweepProbe:
    """The probe of ``summary`` at ``backends`` replicas: its figures and, if unsustainable, why."""
    ratio = throughput_ratio(summary)
    reasons: list[str] = []
    if client_p99_ms is None:
        reasons.append("no client-side latency recorded")
    elif not client_p99_ms <= criteria.max_p99_ms:
        shown = "unbounded (over 1% unanswered)" if math.isinf(client_p99_ms) else f"{client_p99_ms:.1f} ms"
        reasons.append(f"client p99 {shown} > {criteria.max_p99_ms:g} ms")
    if ratio is None:
        reasons.append("no orders were due")
    elif ratio < criteria.min_ratio:
        reasons.append(f"accepted {ratio:.1%} of offered orders < {criteria.min_ratio:.0%}")
    if not summary.valid:
        reasons.extend(f"invalid run: {r}" for r in summary.invalid_reasons or ["(no reason given)"])
    return SweepProbe(
        backends=backends,
        offered_rate=summary.offered_rate,
        achieved_rate=summary.achieved_rate,
        throughput_ratio=None if ratio is None else round(ratio, 4),
        client_p99_ms=None if client_p99_ms is None else round(client_p99_ms, 3),
        valid=summary.valid,
        sustainable=not reasons,
        load=summary.name,
        reasons=reasons,
        window=summary.order_window,
    )
