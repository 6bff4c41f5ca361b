"""Baseline: the platform, freshly deployed and gated, carries a steady order flow within SLOs.

What a trading desk would sign for the reference platform on one node (overridable by environment
for bigger or smaller machines):
- throughput: accepted orders/s >= 95% of the offered constant rate (HFT_BASELINE_RATE, default 300/s);
- registration success >= 99.9%;
- p99 order latency <= HFT_BASELINE_P99_MS (default 50 ms), from the backend's histogram;
- no CrashLoopBackOff, no restarts and no OOMKilled while the platform is up.
"""

from __future__ import annotations

import os

import pytest

RATE = float(os.environ.get("HFT_BASELINE_RATE", "300"))
DURATION = float(os.environ.get("HFT_BASELINE_SECONDS", "10"))
P99_MS = float(os.environ.get("HFT_BASELINE_P99_MS", "50"))


@pytest.mark.hft_load(rate=RATE, duration=DURATION)
def test_baseline_throughput_and_latency(hft_load, hft_slo):
    with hft_load.constant_rate(rate=RATE, duration=DURATION, name="baseline") as run:
        pass
    summary = run.summary
    assert summary.valid, f"the load generator's own measurement is invalid: {summary.invalid_reasons}"
    hft_slo.check(
        hft_slo.builtin.throughput(min_ratio=0.95),
        hft_slo.builtin.p99_latency(max_ms=P99_MS),
    )
    assert summary.errors == {}, f"transport errors while under baseline load: {summary.errors}"


@pytest.mark.hft_slo("registration_success", min_ratio=0.999)
def test_registration_success(hft_load):
    with hft_load.constant_rate(rate=50, duration=2, users=100, name="registrations") as run:
        pass
    assert run.summary.registrations_failed == 0


@pytest.mark.hft_slo("no_crashloopbackoff")
@pytest.mark.hft_slo("bounded_restarts", max_restarts=0)
@pytest.mark.hft_slo("no_oomkilled")
def test_no_crashloopbackoff(hft_load):
    # A short steady flow so the window covers the platform serving, not just idling.
    with hft_load.constant_rate(rate=RATE / 2, duration=3, name="steady"):
        pass
