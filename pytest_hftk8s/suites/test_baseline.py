"""Baseline: the platform, freshly deployed and gated, carries a steady, trading order flow within SLOs.

The load is the stated mix of resting limits, cancels and marketable orders at the session's offered
rate: by default 30% of the closed-loop capacity measured on this platform at the start, a load the
backend carries without being CPU-throttled (machines differ too much for one absolute rate;
``--hft-baseline-rate`` sets one). What a trading desk would
sign for the reference platform on one node (each bound is an option: ``--hft-baseline-p99-ms``,
``--hft-baseline-client-p99-ms``...):
- throughput: accepted orders/s >= 95% of the offered order rate;
- registration success >= 99.9%;
- p99 order latency <= 50 ms server side (the backend's histogram) and <= 100 ms client side (from
  each request's intended send time; timeouts at their time, unanswered requests as failures);
- the flow trades: >= 10% of its orders filled, its resting orders bounded, and every fill intact
  (nothing applied twice, nothing over-filled, the engine's book equal to PostgreSQL's open orders);
- no CrashLoopBackOff, no restarts and no OOMKilled while the platform is up.
"""

from __future__ import annotations

import pytest

from pytest_hftk8s.slo import builtin


def test_baseline_throughput_and_latency(hft_load, hft_slo, hft_settings, hft_capacity):
    s = hft_settings
    with hft_load.constant_rate(
        rate=hft_capacity.offered_rate, duration=s.baseline_seconds, name="baseline"
    ) as run:
        pass
    summary = run.summary
    assert summary.valid, f"the load generator's own measurement is invalid: {summary.invalid_reasons}"
    hft_slo.check(
        builtin.throughput(min_ratio=0.95),
        builtin.p99_latency(max_ms=s.baseline_p99_ms),
        builtin.client_p99_latency(max_ms=s.baseline_client_p99_ms),
        # A fifth of a trading flow's orders is marketable; fewer than one order in ten filled means
        # the flow stopped trading. More than a quarter of all limit orders the book has seen still
        # resting means it only grows (the flow's cancels and crosses are sized to keep it flat; a
        # flow whose cancels or crosses fail leaves well over half of them resting).
        builtin.orders_traded(prefix=run.order_prefix, min_filled_share=0.10, max_resting_share=0.25),
        builtin.fill_integrity(),
    )
    assert summary.errors == {}, f"transport errors while under baseline load: {summary.errors}"


@pytest.mark.hft_slo("registration_success", min_ratio=0.999)
def test_registration_success(hft_load):
    with hft_load.constant_rate(rate=50, duration=2, users=100, name="registrations") as run:
        pass
    assert run.summary.valid, run.summary.invalid_reasons
    assert run.summary.registrations_failed == 0


@pytest.mark.hft_slo("no_crashloopbackoff")
@pytest.mark.hft_slo("bounded_restarts", max_restarts=0)
@pytest.mark.hft_slo("no_oomkilled")
def test_no_crashloopbackoff(hft_load, hft_capacity):
    # A short steady flow so the window covers the platform serving, not just idling.
    with hft_load.constant_rate(rate=hft_capacity.offered_rate / 2, duration=3, name="steady") as run:
        pass
    assert run.summary.valid, run.summary.invalid_reasons
