"""Resilience: the field report's failures, reproduced on purpose and measured (marker ``resilience``).

On the platform of the baseline (test_baseline.py), with the session baseline as the reference:
1. CPU pressure on the backend (stress at its 300m limit): capacity (closed loop) before and under the
   stress, and the constant-rate throughput against the baseline (reported; a warning-level SLO at
   90%), registration success >= 99.9%, no CrashLoopBackOff (also probed continuously); the stress must
   reach its intensity, judged from Prometheus;
2. pod-kill of the backend, the engine and PostgreSQL in turn under constant-rate load: recovery time
   (throughput back at >= 90% of the baseline for a full second, 100 ms resolution) <=
   ``--hft-recovery-max-s`` (10 s), no acknowledged order lost, and every fill intact after the restart;
3. memory pressure beyond the backend's 128Mi limit: the stress reaches its intensity, OOMKilled ->
   CrashLoopBackOff is detected from the kube-state-metrics series; then the platform is gated ready again;
4. 4 backends under the field report's limits (the session's overlay with 4 backend replicas, as the
   scale4 overlay has them) beside the 1-backend platform: no engine restart, and throughput no worse
   than one backend.
Every load run of every test must be a valid measurement (the generator did not saturate or fall behind).
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from pytest_hftk8s.slo import builtin
from pytest_hftk8s.slo.relative import accepted_rate, relative

pytestmark = pytest.mark.resilience

RECOVERED_RATIO = 0.9  # "back" = >= 90% of the baseline's acknowledged orders/s


def _valid(*runs):
    for run in runs:
        assert run.summary.valid, (
            f"load run {run.name!r} is not a valid measurement: {run.summary.invalid_reasons}"
        )


def _restarts(cluster, workload: str) -> int:
    return sum(c.restart_count for p in cluster.pods() if p.workload == workload for c in p.containers)


def test_cpu_pressure_on_backend(hft_chaos, hft_load, hft_slo, hft_baseline, hft_settings, hft_capacity):
    s = hft_settings
    # Capacity (closed loop) before and under the stress: what the pressure costs in orders/s.
    with hft_load.closed_loop(connections=16, duration=s.capacity_seconds, name="capacity-before") as before:
        pass
    with hft_chaos.stress_cpu(
        target="backend",
        load=80,
        workers=1,
        duration=f"{s.resilience_load_seconds + s.capacity_seconds + 6:g}s",
        probes=[builtin.no_crashloop()],
        probe_interval=2.0,
        stop_on_failure=True,
    ) as exp:
        with hft_load.constant_rate(
            rate=hft_capacity.offered_rate, duration=s.resilience_load_seconds, users=50, name="cpu-pressure"
        ) as run:
            pass
        with hft_load.closed_loop(
            connections=16, duration=s.capacity_seconds, name="capacity-under-stress"
        ) as under:
            pass
    _valid(before, run, under)
    capacity_ratio = under.summary.achieved_rate / before.summary.achieved_rate
    exp.note(
        load=run.name,
        capacity_before=round(before.summary.achieved_rate, 1),
        capacity_under_stress=round(under.summary.achieved_rate, 1),
        capacity_ratio=round(capacity_ratio, 4),
        degradation_pct=round(100 * (1 - capacity_ratio), 1),
        constant_rate_vs_baseline=round(run.summary.achieved_rate / hft_baseline.achieved_rate, 4),
    )
    assert exp.intensity_reached, (
        f"the CPU stress did not reach its intensity (Prometheus): {exp.record.intensity}"
    )
    assert not exp.stopped_early, f"a continuous probe failed during the stress: {exp.record.probes}"
    hft_slo.check(
        builtin.registration_success(min_ratio=0.999), builtin.no_crashloop(), window=run.summary.window
    )
    # Reported, not blocking (severity warning): accepted orders/s vs the baseline at the same rate.
    vs_baseline = dataclasses.replace(accepted_rate(), severity="warning")
    hft_slo.check(relative(vs_baseline, ratio=RECOVERED_RATIO), window=run.summary.order_window)


@pytest.mark.parametrize("target", ["backend", "engine", "postgres"])
def test_pod_kill_under_load(
    target, hft_chaos, hft_load, hft_baseline, hft_platform, hft_slo, hft_settings, hft_capacity
):
    s = hft_settings
    floor = RECOVERED_RATIO * hft_baseline.achieved_rate
    engine_before = _restarts(hft_platform.cluster, "engine")
    with hft_load.constant_rate(
        rate=hft_capacity.offered_rate, duration=s.kill_load_seconds, name=f"kill-{target}"
    ) as run:
        time.sleep(2.0)
        with hft_chaos.pod_kill(target=target) as exp:
            pass
    exp.note(load=run.name, ready_again_s=round(hft_platform.wait_ready(timeout_s=90), 3))
    exp.note(engine_restarts=_restarts(hft_platform.cluster, "engine") - engine_before)
    _valid(run)
    hft_slo.check(
        builtin.recovery_time(
            run.summary.timeline,
            fault_at=exp.injected_at,
            floor_rate=floor,
            max_s=s.recovery_max_s,
            until=run.summary.order_window.end,
        ),
        builtin.acked_orders_stored(run.acked_orders(), prefix=run.order_prefix),
        builtin.fill_integrity(),
        experiment=exp,
    )


def test_memory_pressure_oomkilled_then_crashloop_detected(hft_chaos, hft_platform, hft_slo):
    with hft_chaos.stress_memory(target="backend", size="256MiB", workers=1, duration="10s") as exp:
        exp.wait()
    exp.note(ready_again_s=round(hft_platform.wait_ready(timeout_s=90), 3))
    assert exp.intensity_reached, (
        f"the memory stress did not reach its intensity (Prometheus): {exp.record.intensity}"
    )
    hft_slo.check(builtin.oom_then_crashloop(container="backend"), experiment=exp)


def test_four_backends_engine_survives(hft_scale, hft_settings):
    # The session's own overlay with 4 backends (the field report's scale4: same limits, one engine),
    # reached the way the session's platform is, so the two runs differ only in replicas.
    # A session on the scale4 overlay itself measures its own platform (no 1-backend run to compare).
    how = (
        {"profile": "scale4"}
        if hft_settings.profile == "scale4"
        else {"replicas": {"backend": 4, "engine": 1}}
    )
    record, scaled, one = hft_scale.run(**how, duration=hft_settings.resilience_load_seconds)
    assert scaled.valid, f"the 4-backend run is not a valid measurement: {scaled.invalid_reasons}"
    assert record.backends_ready == 4, record
    assert record.engine_restarts == 0, f"the engine restarted with 4 backends: {record}"
    assert record.engine_oomkilled is False, record
    if one is None:
        pytest.skip("the session runs the scale4 profile itself: no 1-backend run here to compare with")
    assert one.valid, f"the 1-backend run is not a valid measurement: {one.invalid_reasons}"
    # The field report's failure was scale-out making things worse (8 backends: -15%). Four backends
    # with the same per-pod limits share this node's cores with nginx, the engine, PostgreSQL and the
    # generator, so linear scaling is not expected here; what a platform team signs is that adding
    # replicas never costs capacity: the 4-backend closed-loop throughput is at least the 1-backend one.
    ratio = scaled.achieved_rate / one.achieved_rate
    assert ratio >= 1.0, (
        f"4 backends delivered {scaled.achieved_rate:.0f} orders/s, {ratio:.2f}x of one backend's "
        f"{one.achieved_rate:.0f}: scaling out lost capacity"
    )
