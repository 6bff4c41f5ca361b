"""The per-test recorder: what one test did with the platform, kept under a ``StashKey`` on its item.

:class:`TestState` collects the test's live load runs, SLO results, chaos and scale records while it
runs; :func:`record` turns it into the typed :class:`~pytest_hftk8s.results.TestRecord` the report
reads. It also holds the test's share of the measurement lock. No Prometheus, no cluster calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hftk8s.results import (
    ChaosRecord,
    LoadSummary,
    ScaleRecord,
    SloResult,
    SweepResult,
    TestRecord,
    Window,
)

if TYPE_CHECKING:
    from pytest_hftk8s.load.run import LoadRun


@dataclass
class TestState:
    """What one test did with the platform."""

    __test__ = False

    loads: list[LoadRun] = field(default_factory=list)
    slos: list[SloResult] = field(default_factory=list)
    chaos: list[ChaosRecord] = field(default_factory=list)
    scale: list[ScaleRecord] = field(default_factory=list)
    extra_loads: list[LoadSummary] = field(default_factory=list)  # runs driven outside hft_load (scale)
    notes: list[str] = field(default_factory=list)
    sweep: SweepResult | None = None  # the scaling sweep this test ran (orchestration/sweep.py)
    rates: dict[str, float] = field(default_factory=dict)
    call_start: float = 0.0
    call_end: float = 0.0
    measured_from: float = 0.0  # when the call got the measurement lock (0: it never asked for it)
    overhead_s: float = 0.0  # time the plugin itself spent on this test (SLO evaluation, bundle)

    def summaries(self) -> list[LoadSummary]:
        return [r.summary for r in self.loads if r.summary is not None] + self.extra_loads

    def window(self) -> Window:
        """The test's window: from its first load run's start to its last one's end, else the call
        from the moment it held the measurement lock (its wait for another worker's window excluded)."""
        done = self.summaries()
        if done:
            return Window(min(s.window.start for s in done), max(s.window.end for s in done))
        return Window(max(self.call_start, self.measured_from), self.call_end or time.time())

    def offered_order_rate(self) -> float | None:
        """Order placements/s the test's open-loop runs offered over its window (cancels are no orders)."""
        window = self.window()
        offered = sum(
            s.offered_order_rate * s.order_window.seconds for s in self.summaries() if s.mode == "open"
        )
        if not offered or window.seconds <= 0:
            return None
        return offered / window.seconds

    def live_offered_rate(self) -> float | None:
        """Requests/s the test's open-loop runs that are still going offer (for probes during a run)."""
        offered = sum(r.rate for r in self.loads if r.mode == "open" and r.summary is None)
        return offered or None


state_key = pytest.StashKey[TestState]()

#: ``--hft-repeat=N`` parametrizes every test that uses ``hft_load`` with this fixture (ids ``rep1``..).
REPEAT_FIXTURE = "hft_repeat_index"


def repeat_of(item: pytest.Item) -> tuple[int, str]:
    """(which repeat the item is, its id without the repeat); (1, "") when it is not repeated."""
    callspec = getattr(item, "callspec", None)
    n = callspec.params.get(REPEAT_FIXTURE) if callspec is not None else None
    if not isinstance(n, int):
        return 1, ""
    head, sep, ids = item.nodeid.partition("[")
    parts = ids[:-1].split("-") if sep else []
    if f"rep{n}" in parts:
        parts.reverse()
        parts.remove(f"rep{n}")  # the last such token: parametrize ids are joined in order
        parts.reverse()
    return n, f"{head}[{'-'.join(parts)}]" if parts else head


def state_of(item: pytest.Item) -> TestState:
    state = item.stash.get(state_key, None)
    if state is None:
        state = item.stash[state_key] = TestState()
    return state


def record(item: pytest.Item, state: TestState, report: pytest.TestReport) -> TestRecord:
    repeat, case = repeat_of(item)
    return TestRecord(
        nodeid=item.nodeid,
        phase=report.when,
        window=state.window(),
        slos=list(state.slos),
        loads=state.summaries(),
        chaos=list(state.chaos),
        scale=list(state.scale),
        rates=dict(state.rates),
        sweep=state.sweep,
        repeat=repeat,
        case=case,
    )


def merge(into: TestRecord, report: Any, hft: TestRecord | None) -> None:
    """Fold one phase's report (and its record, when the phase made one) into the test's record."""
    into.duration += report.duration
    if hft is not None:
        for name in ("window", "slos", "loads", "chaos", "scale", "rates", "bundle", "series", "series_window",
                     "bottleneck", "sweep", "repeat", "case"):  # fmt: skip
            value = getattr(hft, name)
            if value:
                setattr(into, name, value)
        into.plugin_overhead_s = max(into.plugin_overhead_s, hft.plugin_overhead_s)
    if report.failed:
        into.outcome = "failed" if report.when == "call" else "error"
        into.longrepr = str(report.longrepr)[-4000:]
    elif report.skipped and into.outcome == "passed":
        into.outcome = "skipped"
