"""Recovery time after a fault, from a load run's 100 ms timeline of acknowledged orders.

Recovered means: the first moment ``R`` (on the timeline's 100 ms grid) after the fault from which
throughput *stays* at or above the floor for one full second: the bucket at ``R`` carries the floor,
and every stretch of ``[R, R + 1 s]`` made of whole buckets carries at least ``floor_rate`` x (its
length - one bucket). The one bucket of slack is the measurement's resolution: an answer that lands
in the next 100 ms bucket is not a dip, so the definition holds at any rate; a gap of two buckets
anywhere in the second is. A one-second average
from the fault would call a backlog that flushes in the last 100 ms of an otherwise empty second
"recovered", and so would a flush at its start followed by silence; this calls neither. Pure maths
on typed results, plus the :class:`RecoveryTime` check that bounds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_hftk8s.results import Recovery, Series, SloResult
from pytest_hftk8s.slo.model import result

if TYPE_CHECKING:
    from pytest_hftk8s.slo.evaluate import Context

#: How long throughput must hold at the floor to count as recovered, seconds.
HOLD_S = 1.0


def recovery(
    timeline: Series,
    *,
    fault_at: float,
    floor_rate: float,
    until: float | None = None,
    hold_s: float = HOLD_S,
) -> Recovery:
    """When throughput recovered after ``fault_at`` (see the module docstring)."""
    step = timeline.step
    out = Recovery(fault_at=fault_at, floor_rate=floor_rate, resolution_s=step, hold_s=hold_s)
    if step <= 0 or not timeline.values:
        return out
    last = until if until is not None else timeline.end
    out.observed_until = last
    per_bucket = floor_rate * step * (1 - 1e-9)  # float noise must not fail an exact hit
    per_hold = max(1, round(hold_s / step))
    # Buckets from the one holding the fault to the last one wholly observed.
    after = [(t, c) for t, c in timeline.points() if t + step > fault_at and t + step <= last + 1e-9]
    if not after:
        return out
    out.min_rate = min(c for _, c in after) / step
    counts = [c for _, c in after]
    prefix = [0.0]
    for c in counts:
        prefix.append(prefix[-1] + c)

    def holds(i: int) -> bool:
        if counts[i] < per_bucket:  # the recovered moment itself carries the floor: no slack before it
            return False
        return all(
            prefix[b] - prefix[a] >= per_bucket * (b - a - 1)
            for a in range(i, i + per_hold)
            for b in range(a + 1, i + per_hold + 1)
        )

    for i in range(len(after) - per_hold + 1):
        if holds(i):
            out.recovered_at = after[i][0]
            out.recovery_s = max(0.0, out.recovered_at - fault_at)
            break
    if out.recovered_at is None or out.recovered_at > after[0][0]:
        out.dipped, out.dip_at = True, after[0][0]
    return out


@dataclass(frozen=True)
class RecoveryTime:
    """Throughput back at ``floor_rate`` (held for a second) within ``max_s`` of the fault."""

    timeline: Series
    fault_at: float
    floor_rate: float
    max_s: float
    until: float | None = None
    name: str = "recovery_time_s"
    severity: str = "error"

    def evaluate(self, ctx: Context) -> SloResult:
        rec = recovery(self.timeline, fault_at=self.fault_at, floor_rate=self.floor_rate, until=self.until)
        observed = rec.recovery_s if rec.recovery_s is not None else math.inf
        out = result(
            self, window=ctx.window, observed=observed, passed=observed <= self.max_s, comparator="<=",
            threshold=self.max_s, unit="s", query=f"timeline {self.timeline.name}: every stretch of {HOLD_S:g} s "
            f">= {self.floor_rate:.0f}/s, at {self.timeline.step * 1000:g} ms resolution",
        )  # fmt: skip
        out.detail = rec
        if rec.recovery_s is None:
            out.message = (
                f"throughput never held >= {self.floor_rate:.0f}/s for a full second after the fault "
                f"(lowest {rec.min_rate or 0:.0f}/s, observed until {rec.observed_until or 0:.1f})"
            )
        elif rec.dipped:
            out.message = (
                f"dipped at {rec.dip_at:.1f}, back at {rec.recovered_at:.1f} (lowest {rec.min_rate:.0f}/s)"
            )
        return out
