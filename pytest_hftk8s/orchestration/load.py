"""The ``hft_load`` and ``hft_baseline`` fixtures' logic: load drivers bound to a test, and the
session baseline.

A test's driver aims at the platform's nginx, takes the measurement lock before its first run
starts, applies the test's ``hft_load`` marker as defaults, and lets the test's recorder see every
run. The session's capacity is measured once (a closed-loop run) and gives the offered rate of the
bundled suites with ``--hft-baseline-rate=auto``. The baseline is the first valid run named
``baseline`` of the session (any worker's: both are published to the others), else measured on
demand at the offered rate for ``--hft-baseline-seconds``. What a run is worth is judged in ``slo``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_hftk8s.cluster.base import ForwardingCpu
from pytest_hftk8s.errors import HftError
from pytest_hftk8s.load.driver import LoadDriver
from pytest_hftk8s.orchestration.recorder import state_of
from pytest_hftk8s.results import Baseline, Capacity, from_dict, to_dict
from pytest_hftk8s.slo.relative import BASELINE_RUN, baseline_from

if TYPE_CHECKING:
    from pytest_hftk8s.orchestration.runtime import HftRuntime

T = TypeVar("T")
LOAD_MARK = "hft_load"
CAPACITY_RUN = "capacity"
CAPACITY_CONNECTIONS = 16


def driver_for(runtime: HftRuntime, item: pytest.Item, *, record: bool = True) -> LoadDriver:
    """A driver for ``item``; with ``record`` its runs are the test's (its window, its report)."""
    platform = runtime.require_platform()
    defaults: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(LOAD_MARK))):
        if mark.args:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.hft_load takes keywords only, got {mark.args!r}"
            )
        defaults.update(mark.kwargs)
    driver = LoadDriver(
        platform.nginx,
        results_dir=runtime.settings.report_dir / "load",
        progress=runtime.progress,
        max_duration=runtime.settings.load_timeout,
        defaults=defaults,
        on_start=lambda _run: runtime.hold_measurement(),
        extra_cpu=(
            platform.cluster.forwarding_cpu_seconds
            if platform.access == "port-forward" and isinstance(platform.cluster, ForwardingCpu)
            else None
        ),
    )
    if record:
        driver.runs = state_of(item).loads  # the test's state sees every run the driver makes
    return driver


def _shared(runtime: HftRuntime, key: str, cls: type[T], measure: Callable[[], T]) -> T:
    """This process's ``key``, else the one another worker published, else measured now and published."""
    value: T | None = getattr(runtime, key)
    if value is None:
        # Check-then-measure under the measurement lock, so two workers never both measure: the
        # second waits for the first's window and reads what it published. (Without it, each worker
        # measured its own capacity, and one compared its offered rate to the other's baseline.)
        runtime.hold_measurement()
        published = runtime.published(key)
        value = from_dict(cls, published) if published else measure()
        if not published:
            runtime.publish(key, to_dict(value))
        setattr(runtime, key, value)
    return value


def session_baseline(runtime: HftRuntime, item: pytest.Item) -> Baseline:
    """The session's baseline: recorded by a test, published by another worker, or measured now."""
    return _shared(runtime, "baseline", Baseline, lambda: _measure_baseline(runtime, item))


def _measure_baseline(runtime: HftRuntime, item: pytest.Item) -> Baseline:
    settings = runtime.settings
    rate = session_capacity(runtime, item).offered_rate
    # Not the test's own runs: the baseline run must not widen that test's window.
    driver = driver_for(runtime, item, record=False)
    with driver.constant_rate(rate=rate, duration=settings.baseline_seconds, name=BASELINE_RUN) as run:
        pass
    summary = run.summary
    baseline = baseline_from([summary] if summary else [], source=f"{item.nodeid} (hft_baseline fixture)")
    if baseline is None:
        raise HftError(
            f"expected a valid baseline run ({rate:g}/s for {settings.baseline_seconds:g}s) with "
            f"accepted orders; got {summary.ok if summary else 0} ok, invalid reasons "
            f"{summary.invalid_reasons if summary else '?'}"
        )
    return baseline


def record_baseline(runtime: HftRuntime, baseline: Baseline) -> None:
    if runtime.baseline is None:
        runtime.baseline = baseline
        runtime.publish("baseline", to_dict(baseline))


def session_capacity(runtime: HftRuntime, item: pytest.Item) -> Capacity:
    """The session's capacity and offered rate: measured once (closed loop), or the explicit rate."""
    return _shared(runtime, "capacity", Capacity, lambda: _measure_capacity(runtime, item))


def _measure_capacity(runtime: HftRuntime, item: pytest.Item) -> Capacity:
    settings = runtime.settings
    if settings.baseline_rate is not None:
        return Capacity(offered_rate=settings.baseline_rate, source="--hft-baseline-rate")
    driver = driver_for(runtime, item, record=False)
    with driver.closed_loop(
        connections=CAPACITY_CONNECTIONS, duration=settings.capacity_seconds, name=CAPACITY_RUN
    ) as run:
        pass
    summary = run.summary
    compared = runtime.compare_baseline.capacity if runtime.compare_baseline is not None else None
    if compared is not None and compared.offered_rate > 0 and summary is not None:
        # A comparison is at the baseline's load: latency at another offered rate is another measure.
        runtime.progress(
            f"capacity: {summary.achieved_rate:.0f} requests/s closed loop; the suites offer the "
            f"baseline run's {compared.offered_rate:g}/s (--hft-compare)"
        )
        return Capacity(
            offered_rate=compared.offered_rate,
            source="--hft-compare baseline",
            closed_loop_rate=summary.achieved_rate,
            connections=CAPACITY_CONNECTIONS,
            utilization=compared.offered_rate / summary.achieved_rate if summary.achieved_rate > 0 else None,
            window=summary.order_window,
            load=summary,
        )
    if summary is None or not summary.valid or summary.achieved_rate <= 0:
        raise HftError(
            f"expected a valid closed-loop capacity run against the platform; got "
            f"{summary.achieved_rate if summary else 0:.0f} requests/s, invalid reasons "
            f"{summary.invalid_reasons if summary else '?'}. Pass --hft-baseline-rate=<requests/s> to skip it"
        )
    capacity = Capacity(
        offered_rate=round(settings.baseline_utilization * summary.achieved_rate, 1),
        source="measured",
        closed_loop_rate=summary.achieved_rate,
        connections=CAPACITY_CONNECTIONS,
        utilization=settings.baseline_utilization,
        window=summary.order_window,
        load=summary,
    )
    runtime.progress(
        f"capacity: {summary.achieved_rate:.0f} requests/s closed loop; the suites offer "
        f"{capacity.offered_rate:g}/s ({settings.baseline_utilization:.0%})"
    )
    return capacity
