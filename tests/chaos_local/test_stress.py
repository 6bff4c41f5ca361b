"""StressChaos on the local cluster: stress-ng inside the pod's cgroups, its intensity measured."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chaos_workloads import NEEDS_ROOT, alive, http_server, stress_pids_of, wait_for

from pytest_hftk8s.chaos import stress_cpu, stress_memory
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos
from pytest_hftk8s.errors import ChaosError

pytestmark = [NEEDS_ROOT, pytest.mark.slow]


def _ready(cluster: LocalCluster) -> None:
    wait_for(lambda: all(w.is_available for w in cluster.workloads()), timeout=15, what="pods ready")


def test_cpu_stress_reaches_the_limit_inside_the_pod_cgroup(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    if not cluster.limits_enforced:
        pytest.skip(f"cgroup limits unavailable here: {cluster.warnings}")
    cluster.apply([http_server("web", limits={"cpu": "300m", "memory": "128Mi"})])
    _ready(cluster)
    pod = cluster.pods()[0].name
    cgroup = cluster.container_cgroup(pod, "web")
    assert cgroup is not None
    chaos = chaos_on(cluster)
    with chaos.inject(stress_cpu(target="web", load=80, workers=1, duration="4s")) as run:
        assert run.injected_at is not None
        pids = stress_pids_of(run.records)
        assert len(pids) == 1
        assert pids[0] in cgroup.pids()  # inside the container's cgroups, every hierarchy
        before = cgroup.usage().cpu_seconds
        wait_for(lambda: chaos.records(run)[0]["intensity"]["samples"] >= 8, timeout=5, what="samples")
        live = chaos.records(run)[0]["intensity"]
        assert cgroup.usage().cpu_seconds > before
    intensity = run.records[0]["intensity"]
    assert intensity["resource"] == "cpu"
    assert intensity["requested"] == pytest.approx(0.8)
    assert intensity["expected"] == pytest.approx(0.3)  # capped by the 300m limit
    # the CFS quota holds it at the limit: reached, and never far above it
    assert 0.24 <= intensity["observed"] <= 0.36, intensity
    assert intensity["reached"] is True
    assert live["observed"] > 0
    assert run.records[0]["phase"] == "Recovered"
    assert run.removed
    assert not any(alive(p) for p in pids)
    assert cgroup.pids() == set(cluster.container_pids(pod).values()) | (cgroup.pids() - set(pids))
    assert cluster.pods()[0].containers[0].restart_count == 0


def test_memory_stress_within_the_limit_holds_its_size(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    if not cluster.limits_enforced:
        pytest.skip(f"cgroup limits unavailable here: {cluster.warnings}")
    cluster.apply([http_server("web", limits={"memory": "256Mi"})])
    _ready(cluster)
    chaos = chaos_on(cluster)
    with chaos.inject(stress_memory(target="web", size="64MiB", workers=2, duration="30s")) as run:
        wait_for(
            lambda: chaos.records(run)[0]["intensity"]["reached"], timeout=5, what="64MiB held in the cgroup"
        )
    intensity = run.records[0]["intensity"]
    assert intensity["expected"] == 64 * 2**20
    assert 0.8 * 2**26 <= intensity["observed"] <= 1.3 * 2**26, intensity  # the stress's share only
    assert intensity["baseline"] > 0  # the server's own working set, not counted as pressure
    assert intensity["oom_kills"] == 0
    assert cluster.pods()[0].containers[0].restart_count == 0


def test_missing_stress_ng_is_a_failed_injection(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web")])
    _ready(cluster)
    chaos = chaos_on(cluster, stress_ng="/nonexistent/stress-ng")
    with pytest.raises(ChaosError, match="stress-ng is needed"), chaos.inject(stress_cpu(target="web")):
        pytest.fail("the block must not run when nothing was injected")


def test_failed_cgroup_attach_is_a_chaos_error_and_leaves_nothing(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    if not cluster.limits_enforced:
        pytest.skip(f"cgroup limits unavailable here: {cluster.warnings}")
    cluster.apply([http_server("web", limits={"cpu": "300m"})])
    _ready(cluster)
    pod = cluster.pods()[0].name
    cgroup = cluster.container_cgroup(pod, "web")
    assert cgroup is not None
    # A container whose cgroup vanished (as after a restart race): the wrapper cannot join it.
    real = cgroup.paths
    cgroup.paths = {c: p.parent / "hft-gone" for c, p in real.items()}
    chaos = chaos_on(cluster)
    try:
        with (
            pytest.raises(ChaosError, match="failed to start inside cgroups"),
            chaos.inject(stress_cpu(target="web", load=50)),
        ):
            pytest.fail("the block must not run when the attach failed")
    finally:
        cgroup.paths = real


def test_memory_beyond_the_limit_is_oomkilled_then_crash_loop_backoff(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster(backoff_scale=0.1)  # back-off 1 s, 2 s ...
    if not cluster.limits_enforced:
        pytest.skip(f"cgroup limits unavailable here: {cluster.warnings}")
    cluster.apply([http_server("hog", limits={"cpu": "500m", "memory": "96Mi"})])
    _ready(cluster)
    pod = cluster.pods()[0].name
    chaos = chaos_on(cluster)
    seen: dict[str, str] = {}
    with chaos.inject(stress_memory(target="hog", size="200MiB", workers=1, duration="20s")) as run:

        def crash_looping() -> bool:
            c = cluster.pods()[0].containers[0]
            if c.last_terminated_reason:
                seen.setdefault("terminated", c.last_terminated_reason)
            metrics = _scrape(cluster)
            if c.reason == "CrashLoopBackOff" and 'container="hog",reason="CrashLoopBackOff"} 1' in metrics:
                seen["metrics"] = metrics
                return True
            return False

        wait_for(crash_looping, timeout=15, what="OOMKilled then CrashLoopBackOff", every=0.1)
        status = cluster.pods()[0].containers[0]
    assert seen["terminated"] == "OOMKilled"
    assert status.last_terminated_reason == "OOMKilled"
    assert status.restart_count >= 1
    ksm = seen["metrics"]
    assert (
        f'kube_pod_container_status_last_terminated_reason{{namespace="t",pod="{pod}",uid="local-{pod}",container="hog",reason="OOMKilled"}} 1'
        in ksm
    )
    assert "OOMKilling" in [e.reason for e in cluster.events() if e.name == pod]
    intensity = run.records[0]["intensity"]
    assert intensity["oom_kills"] >= 1
    assert intensity["reached"] is True
    assert run.records[0]["injectedCount"] >= 2  # the pressure followed the restarted container
    # once the experiment is gone the container recovers
    wait_for(lambda: cluster.pods()[0].ready, timeout=15, what="hog ready again after the stress")


def _scrape(cluster: LocalCluster) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://{cluster.exporter.address}/metrics", timeout=5) as resp:
        return resp.read().decode()
