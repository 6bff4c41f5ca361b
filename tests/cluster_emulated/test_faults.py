"""The failure paths through the real kubernetes backend, made to happen by the bridge's fault switches.

Each must fail within its bound with the message a user would see on a real cluster: the readiness
gate's fail-fast for ImagePullBackOff and Unschedulable (with the kubelet's or scheduler's events),
an image the emulated kubelet cannot map, Chaos Mesh's empty selection, and a chaos object whose
finalizer is never released - while the local fault itself is gone (nothing left injected).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from emulated_support import NEEDS_LOCAL_CLUSTER, platform_objects, stress_ng_pids, wait_for

from pytest_hftk8s.chaos import pod_kill, stress_cpu
from pytest_hftk8s.cluster.emulated import EmulatedCluster
from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos
from pytest_hftk8s.errors import ChaosError, GateTimeout
from pytest_hftk8s.gate import GateConfig, ReadinessGate

pytestmark = [*NEEDS_LOCAL_CLUSTER, pytest.mark.slow]


def _gate(cluster: EmulatedCluster, **overrides: float) -> ReadinessGate:
    return ReadinessGate(cluster, config=GateConfig(timeout_s=60, **overrides))  # type: ignore[arg-type]


def test_an_unpullable_image_fails_the_gate_fast_with_the_kubelets_events(
    emulated: Callable[..., EmulatedCluster],
) -> None:
    cluster = emulated(faults=("unpullable=backend",))
    cluster.apply(platform_objects())
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        _gate(cluster).wait()
    elapsed = time.monotonic() - started
    assert elapsed < 20, elapsed  # the fail-fast grace after the other pods started, not the 60 s timeout
    text = str(info.value)
    assert "readiness gate 'workloads' failed fast" in text
    assert "container backend is waiting with ImagePullBackOff" in text
    assert 'Back-off pulling image "hftk8s/backend:0.1.0"' in text
    assert "Deployment/backend 0/1" in text
    # The other workloads are real and ran: only the faulted one is held back (nginx's readiness
    # probe goes through to a backend, so it stays unready, as it would on a cluster).
    # The engine commits its tables at start (issue 13), so it may still be starting when the gate
    # gives up on the backend: wait for the others, bounded.
    expected = {"engine", "postgres", "prometheus", "redis"}
    deadline = time.monotonic() + 20
    while (
        running := {p.workload for p in cluster.pods() if p.ready}
    ) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running == expected, running


def test_an_image_without_a_local_mapping_is_image_pull_backoff(
    emulated: Callable[..., EmulatedCluster],
) -> None:
    objects = platform_objects()
    engine = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "engine")
    engine["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/hft/engine:9.9"
    cluster = emulated()
    cluster.apply(objects)
    with pytest.raises(GateTimeout) as info:
        _gate(cluster, fail_fast_grace_s=1.0).wait()
    text = str(info.value)
    assert "container engine is waiting with ImagePullBackOff" in text
    assert "registry.example/hft/engine:9.9 (no local mapping)" in text


def test_an_unschedulable_pod_fails_the_gate_with_the_schedulers_event(
    emulated: Callable[..., EmulatedCluster],
) -> None:
    cluster = emulated(faults=("unschedulable=engine",))
    cluster.apply(platform_objects())
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        _gate(cluster, fail_fast_grace_s=1.0).wait()
    assert time.monotonic() - started < 15
    text = str(info.value)
    assert "is waiting with Unschedulable" in text
    assert "FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu." in text
    (pod,) = [p for p in cluster.pods() if p.workload == "engine"]
    assert pod.phase == "Pending"
    assert pod.ip == ""


def test_a_stuck_finalizer_fails_the_removal_with_the_command_and_nothing_stays_injected(
    emulated: Callable[..., EmulatedCluster],
) -> None:
    cluster = emulated(faults=("stuck-finalizer=StressChaos",))
    cluster.apply(platform_objects())
    _gate(cluster).wait()
    local = cluster.environment.bridge.local_cluster("hft")
    assert local is not None
    chaos = KubernetesChaos.for_cluster(cluster, run_id="t1", echo=lambda _m: None, recover_timeout=3.0,
                                        allowed_contexts=())  # fmt: skip
    injected: list[list[int]] = []
    records: list[str] = []
    started = time.monotonic()
    with (  # noqa: PT012 - the removal that fails is the with's own exit
        pytest.raises(ChaosError, match=r"did not recover within 3s of its deletion") as info,
        chaos.inject(stress_cpu(target="backend", load=50, duration="60s")) as run,
    ):
        records += [r["id"] for r in run.records]
        injected.append(
            wait_for(lambda: stress_ng_pids(local.run_id), timeout=5, what="stress-ng in the backend")
        )
    assert len(records) == 1
    assert records[0].startswith("hft/backend-")
    assert injected[0]
    assert time.monotonic() - started < 15
    assert "finalizers ['chaos-mesh/records']" in str(info.value)
    assert f"kubectl -n hft patch stresschaos {run.name} --type=merge" in str(info.value)
    # The object is stuck in the API, but the local fault went with the deletion: nothing is injected.
    assert wait_for(lambda: not stress_ng_pids(local.run_id), timeout=5, what="no stress-ng left")
    swept = chaos.sweep(keep_run_id=None, finalizer_timeout=1.0)
    assert any("STUCK" in line and run.name in line for line in swept), swept


def test_a_selector_matching_no_pod_is_chaos_meshs_failed_selection(
    emulated: Callable[..., EmulatedCluster],
) -> None:
    cluster = emulated()
    cluster.apply(platform_objects())
    _gate(cluster).wait()
    chaos = KubernetesChaos.for_cluster(cluster, run_id="t2", echo=lambda _m: None, allowed_contexts=())
    started = time.monotonic()
    with (
        pytest.raises(ChaosError, match="selected no pod") as info,
        chaos.inject(pod_kill(target="nosuchapp")),
    ):
        pass
    assert time.monotonic() - started < 10
    assert "Failed to select targets: no pod is selected" in str(info.value)
