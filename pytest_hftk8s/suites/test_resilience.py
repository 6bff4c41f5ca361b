"""Resilience: the field report's failures, reproduced on purpose and measured (marker ``resilience``).

The baseline (test_baseline.py) records the session's baseline window; then, on the same platform:
1. CPU pressure on the backend (stress at its 300m limit): capacity (closed loop) before and under the
   stress, and the constant-rate throughput against the baseline (reported; a warning-level SLO at
   90%), registration success >= 99.9%, no CrashLoopBackOff (also probed continuously);
2. pod-kill of the backend, the engine and PostgreSQL in turn under constant-rate load: recovery time
   (throughput back to >= 90% of the baseline for a full second) <= HFT_RECOVERY_MAX_S (10 s), and no
   acknowledged order lost or duplicated in PostgreSQL;
3. memory pressure beyond the backend's 128Mi limit: OOMKilled -> CrashLoopBackOff detected from the
   kube-state-metrics series; then the platform is gated ready again (bounded);
4. 4 backends under the field report's limits (the scale4 overlay): no engine restart, throughput reported.
Memory pressure runs after the pod-kills on purpose: its restarts advance the backend's kubelet
backoff, which would otherwise add 10-20 s to the backend's pod-kill recovery on the local cluster.
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from pytest_hftk8s.resilience import measures
from pytest_hftk8s.slo import builtin
from pytest_hftk8s.slo.relative import accepted_rate, relative

pytestmark = pytest.mark.resilience

RATE = float(os.environ.get("HFT_BASELINE_RATE", "300"))
LOAD_S = float(os.environ.get("HFT_RESILIENCE_LOAD_SECONDS", "8"))
KILL_LOAD_S = float(os.environ.get("HFT_RESILIENCE_KILL_LOAD_SECONDS", "20"))
CAPACITY_S = float(os.environ.get("HFT_RESILIENCE_CAPACITY_SECONDS", "4"))
RECOVERY_MAX_S = float(os.environ.get("HFT_RECOVERY_MAX_S", "10"))
RECOVERED_RATIO = 0.9  # "back" = >= 90% of the baseline's accepted orders/s
GATE_TIMEOUT_S = 90.0


def _ready_again(cluster, runtime) -> float:
    """Gate the platform again (bounded); returns how long it took."""
    from pytest_hftk8s.gate import GateConfig, ReadinessGate

    began = time.monotonic()
    ReadinessGate(cluster, config=GateConfig(timeout_s=GATE_TIMEOUT_S), progress=runtime.progress).wait()
    return time.monotonic() - began


def _restarts(cluster, workload: str) -> int:
    return sum(c.restart_count for p in cluster.pods() if p.workload == workload for c in p.containers)


@pytest.fixture
def runtime(request):
    from pytest_hftk8s.plugin import runtime_key

    return request.config.stash[runtime_key]


def test_cpu_pressure_on_backend(hft_chaos, hft_load, hft_slo, hft_baseline):
    # Capacity (closed loop) before and under the stress: what the pressure costs in orders/s.
    with hft_load.closed_loop(connections=16, duration=CAPACITY_S, name="capacity-before") as before:
        pass
    with hft_chaos.stress_cpu(
        target="backend",
        load=80,
        workers=1,
        duration=f"{LOAD_S + CAPACITY_S + 6:g}s",
        probes=[builtin.no_crashloop()],
        probe_interval=2.0,
        stop_on_failure=True,
    ) as exp:
        with hft_load.constant_rate(rate=RATE, duration=LOAD_S, users=50, name="cpu-pressure") as run:
            pass
        with hft_load.closed_loop(connections=16, duration=CAPACITY_S, name="capacity-under-stress") as under:
            pass
    capacity_ratio = under.summary.achieved_rate / before.summary.achieved_rate
    exp.note(
        throughput={
            "constant_rate_achieved": round(run.summary.achieved_rate, 2),
            "baseline_rate": round(hft_baseline.achieved_rate, 2),
            "constant_rate_ratio_vs_baseline": round(
                run.summary.achieved_rate / hft_baseline.achieved_rate, 4
            ),
            "constant_rate_p99_ms": run.summary.latency_ms.get("p99"),
            "capacity_before": round(before.summary.achieved_rate, 1),
            "capacity_under_stress": round(under.summary.achieved_rate, 1),
            "capacity_ratio": round(capacity_ratio, 4),
            "degradation_pct": round(100 * (1 - capacity_ratio), 1),
        }
    )
    assert exp.entry["intensity_reached"], (
        f"the CPU stress did not reach its intensity: {exp.entry['intensity']}"
    )
    assert not exp.stopped_early, f"a continuous probe failed during the stress: {exp.entry.get('probes')}"
    window = (run.summary.window["start"], run.summary.window["end"])
    hft_slo.check(builtin.registration_success(min_ratio=0.999), builtin.no_crashloop(), window=window)
    # Reported, not blocking (severity warning): accepted orders/s vs the baseline at the same rate.
    vs_baseline = dataclasses.replace(accepted_rate(), severity="warning")
    hft_slo.check(
        relative(vs_baseline, ratio=RECOVERED_RATIO),
        window=(run.summary.order_window["start"], run.summary.order_window["end"]),
    )


@pytest.mark.parametrize("target", ["backend", "engine", "postgres"])
def test_pod_kill_under_load(target, hft_chaos, hft_load, hft_baseline, hft_cluster, runtime):
    floor = RECOVERED_RATIO * hft_baseline.achieved_rate
    engine_before = _restarts(hft_cluster, "engine")
    with hft_load.constant_rate(rate=RATE, duration=KILL_LOAD_S, name=f"kill-{target}") as run:
        time.sleep(2.0)
        with hft_chaos.pod_kill(target=target) as exp:
            pass
    rec = measures.recovery(
        run.timeline(), fault_at=exp.injected_at, floor_rate=floor, until=run.summary.order_window["end"]
    )
    acks = measures.acked_vs_stored(
        run.acked_orders(),
        prefix=run.order_prefix,
        db=measures.db_target(hft_cluster, runtime.settings.profile),
    )
    exp.note(recovery=rec.as_dict(), acked_vs_stored=acks.as_dict(), load=run.summary.name)
    exp.note(ready_again_s=round(_ready_again(hft_cluster, runtime), 3))
    engine_restarts = _restarts(hft_cluster, "engine") - engine_before
    exp.note(engine_restarts=engine_restarts)
    assert acks.acked > 0, "no order was acknowledged at all during the run"
    assert acks.lost == 0, f"{acks.lost} acknowledged orders are not in PostgreSQL, e.g. {acks.lost_examples}"
    assert acks.duplicated == 0, f"{acks.duplicated} orders stored twice, e.g. {acks.duplicated_examples}"
    assert rec.recovery_s is not None, (
        f"throughput never came back to >= {floor:.0f}/s (90% of the baseline) within the run after the "
        f"{target} kill: {rec.as_dict()}"
    )
    assert rec.recovery_s <= RECOVERY_MAX_S, f"{target} recovery took {rec.recovery_s:.1f}s: {rec.as_dict()}"


def test_memory_pressure_oomkilled_then_crashloop_detected(hft_chaos, hft_cluster, hft_prom, runtime):
    namespace = runtime.platform.namespace
    with hft_chaos.stress_memory(target="backend", size="256MiB", workers=1, duration="10s") as exp:
        deadline = time.time() + 10
        seq = measures.OomSequence(container="backend")
        while time.time() < deadline and not seq.detected:
            time.sleep(1.0)
            seq = measures.oom_sequence(
                hft_prom, namespace=namespace, container="backend", start=exp.injected_at, end=time.time()
            )
        exp.wait()
    seq = measures.oom_sequence(
        hft_prom, namespace=namespace, container="backend", start=exp.injected_at, end=time.time()
    )
    exp.note(oom_sequence=seq.as_dict())
    exp.note(ready_again_s=round(_ready_again(hft_cluster, runtime), 3))
    assert exp.entry["intensity_reached"], exp.entry["intensity"]
    assert seq.detected, f"expected OOMKilled then CrashLoopBackOff in Prometheus, saw {seq.as_dict()}"
    assert seq.in_order, f"CrashLoopBackOff was seen before OOMKilled: {seq.as_dict()}"


def test_four_backends_engine_survives(request, hft_cluster, runtime):
    from pytest_hftk8s.cluster.local import LocalCluster
    from pytest_hftk8s.resilience.scale import run_scaled

    if runtime.settings.profile != "scale4" and not isinstance(hft_cluster, LocalCluster):
        pytest.skip("on a kube context, run the suite with --hft-profile=scale4 to get 4 backends")
    result = run_scaled(runtime, request.node, replicas_profile="scale4", duration=LOAD_S)
    assert result["backends_ready"] == 4, result
    assert result["engine_restarts"] == 0, f"the engine restarted with 4 backends: {result}"
    assert result["engine_oomkilled"] is False, result
    assert result["load"]["ok"] > 0, result
