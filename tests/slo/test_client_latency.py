"""The client-side latency SLO: the generator's histograms, timeouts at their time, unanswered
requests as failures, and the server side quoted beside it."""

from __future__ import annotations

import math

import pytest
from hdrh.histogram import HdrHistogram

from pytest_hftk8s.results import LoadSummary, Window
from pytest_hftk8s.slo import builtin
from pytest_hftk8s.slo.evaluate import Context
from pytest_hftk8s.slo.latency import quantile_ms


def _summary(
    latencies_ms: list[float], *, unanswered: int = 0, timed_out: int = 0, name: str = "r"
) -> LoadSummary:
    h = HdrHistogram(1, 120_000_000, 3)
    for ms in latencies_ms:
        h.record_value(int(ms * 1000))
    w = Window(0.0, 10.0)
    return LoadSummary(
        name=name, mode="open", offered_rate=100, duration_s=10, window=w, order_window=w, users=1,
        registrations_ok=1, registrations_failed=0, scheduled=len(latencies_ms) + unanswered, sent=len(latencies_ms),
        completed=len(latencies_ms) - timed_out, ok=len(latencies_ms) - timed_out, achieved_rate=0.0, statuses={},
        errors={}, latency_ms={}, cpu={}, schedule={}, valid=True, timed_out=timed_out, unanswered=unanswered,
        histogram=h.encode().decode(),
    )  # fmt: skip


def _ctx(*loads: LoadSummary) -> Context:
    return Context(client=None, window=Window(0.0, 10.0), loads=loads)


def test_p99_of_answered_requests() -> None:
    fast = _summary([5.0] * 990 + [40.0] * 10)
    value, counted, failed = quantile_ms([fast], 0.99)
    assert value == pytest.approx(5.0, rel=0.01)
    assert (counted, failed) == (1000, 0)
    result = builtin.client_p99_latency(max_ms=20).evaluate(_ctx(fast))
    assert result.passed
    assert "server-side p99 no data" in result.message  # no Prometheus here: said, not invented


def test_unanswered_requests_are_failures_not_missing_samples() -> None:
    # 98% fast, 2% never answered: the answered histogram alone says 5 ms; the trader saw failures.
    run = _summary([5.0] * 980, unanswered=20)
    value, counted, failed = quantile_ms([run], 0.99)
    assert math.isinf(value)
    assert (counted, failed) == (980, 20)
    result = builtin.client_p99_latency(max_ms=100).evaluate(_ctx(run))
    assert not result.passed
    assert "20 unanswered, counted as failures" in result.message
    # Under 1% unanswered the p99 is a real latency again, taken over all requests.
    few = _summary([5.0] * 995 + [80.0] * 4, unanswered=1)
    assert quantile_ms([few], 0.99)[0] == pytest.approx(5.0, rel=0.01)


def test_timeouts_count_at_their_time() -> None:
    # 2% of the requests timed out after 2 s: they are in the histogram at >= 2000 ms.
    run = _summary([5.0] * 980 + [2000.0] * 20, timed_out=20)
    result = builtin.client_p99_latency(max_ms=100).evaluate(_ctx(run))
    assert not result.passed
    assert result.observed >= 2000
    assert result.extra["timed_out"] == 20


def test_runs_are_merged_or_picked_by_name_and_no_runs_is_no_data() -> None:
    a, b = _summary([1.0] * 100, name="a"), _summary([50.0] * 100, name="b")
    assert builtin.client_p99_latency(max_ms=10, load="a").evaluate(_ctx(a, b)).passed
    assert not builtin.client_p99_latency(max_ms=10).evaluate(_ctx(a, b)).passed
    none = builtin.client_p99_latency(max_ms=10).evaluate(_ctx())
    assert (none.passed, none.observed) == (False, None)
    assert none.message.startswith("no data")
