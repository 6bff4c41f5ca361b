"""The highest sustainable rate at one replica count: doubling, then bisecting, within a time budget.

:func:`find_ceiling` calls ``probe(rate) -> SweepProbe`` (an open-loop run judged by
:mod:`.criteria`; in the tests, a synthetic function) at rates it chooses:

1. from ``start``, double while the probe is sustainable, or halve while it is not, until one
   sustainable and one unsustainable rate bracket the ceiling (or ``max_rate``/``min_rate`` is hit);
2. bisect the bracket until ``highest failed / highest sustained - 1 <= resolution``.

A probe whose generator run was invalid (saturated, fell behind) measured nothing about the
platform, so it is repeated (``invalid_retries`` times) before it counts as unsustainable: a rate
can only be called sustainable by a valid run. Bisection only ever probes inside the bracket, so a
noisy probe can narrow it wrongly by at most one step but never makes the answer a rate that failed.

Before each probe the remaining budget must cover the longest probe seen so far (``probe_cost_s``
before the first): otherwise the search stops and says ``budget_exhausted``. Deterministic for a
deterministic probe and clock; no I/O, no pytest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_hftk8s.results import SweepProbe

__all__ = ["Ceiling", "find_ceiling"]

Probe = Callable[[float], SweepProbe]


@dataclass
class Ceiling:
    """What the search found: the highest sustained probe, the lowest failed one above it, and why it stopped."""

    best: SweepProbe | None
    failed: SweepProbe | None  # the lowest unsustainable probe above ``best`` (the ceiling is between)
    probes: list[SweepProbe] = field(default_factory=list)  # in the order they ran
    budget_exhausted: bool = False
    stopped: str = ""  # "resolution" | "budget" | "min_rate" (none sustained) | "max_rate" (all sustained)


class _OutOfBudget(Exception):
    pass


class _Search:
    def __init__(
        self, probe: Probe, *, budget_s: float, clock: Callable[[], float], cost_s: float, retries: int
    ) -> None:
        self.probe = probe
        self.clock = clock
        self.deadline = clock() + budget_s
        self.cost_s = cost_s
        self.retries = retries
        self.probes: list[SweepProbe] = []

    def attempt(self, rate: float) -> SweepProbe:
        for _ in range(1 + self.retries):
            if self.clock() + self.cost_s > self.deadline:
                raise _OutOfBudget
            began = self.clock()
            result = self.probe(rate)
            self.cost_s = max(self.cost_s, self.clock() - began)
            self.probes.append(result)
            if result.valid:
                break
        return result


def find_ceiling(
    probe: Probe,
    *,
    start: float,
    budget_s: float,
    resolution: float = 0.1,
    min_rate: float = 1.0,
    max_rate: float = math.inf,
    probe_cost_s: float = 0.0,
    invalid_retries: int = 1,
    clock: Callable[[], float] = time.monotonic,
) -> Ceiling:
    """Search the highest sustainable rate; see the module docstring."""
    if not (0 < min_rate <= start <= max_rate):
        raise ValueError(f"expected 0 < min_rate <= start <= max_rate; got {min_rate}, {start}, {max_rate}")
    if not resolution > 0:
        raise ValueError(f"expected a resolution > 0 (e.g. 0.1: within 10%); got {resolution}")
    search = _Search(probe, budget_s=budget_s, clock=clock, cost_s=probe_cost_s, retries=invalid_retries)
    best: SweepProbe | None = None
    failed: SweepProbe | None = None
    try:
        rate = start
        while True:  # bracket
            result = search.attempt(rate)
            if result.sustainable:
                best = result
                if failed is not None:
                    break
                if rate >= max_rate:
                    return Ceiling(best, None, search.probes, stopped="max_rate")
                rate = min(rate * 2, max_rate)
            else:
                failed = result
                if best is not None:
                    break
                if rate <= min_rate:
                    return Ceiling(None, failed, search.probes, stopped="min_rate")
                rate = max(rate / 2, min_rate)
        # The bracket loop leaves only with both.
        assert best is not None
        assert failed is not None
        while failed.offered_rate / best.offered_rate - 1 > resolution:  # bisect
            middle = round((best.offered_rate + failed.offered_rate) / 2, 3)
            if not best.offered_rate < middle < failed.offered_rate:
                break  # nothing left between them to probe
            result = search.attempt(middle)
            if result.sustainable:
                best = result
            else:
                failed = result
    except _OutOfBudget:
        return Ceiling(best, failed, search.probes, budget_exhausted=True, stopped="budget")
    return Ceiling(best, failed, search.probes, stopped="resolution")
