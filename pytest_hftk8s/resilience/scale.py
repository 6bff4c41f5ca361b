"""The field report's scaled case: 4 backend replicas against one engine, under the same limits.

On the embedded cluster the session's platform cannot be re-applied with other replica counts, so
:func:`run_scaled` deploys the ``scale4`` overlay as a second LocalCluster in its own namespace (and
its own loopback subnet), gates it, drives closed-loop load through its nginx, reads every pod's
restarts and termination reasons, and always deletes it. When the session itself runs the scale4
profile it uses the session platform instead. It measures; the test asserts.
"""

from __future__ import annotations

import pathlib
import tempfile
import time
from typing import Any

SCALE_NAMESPACE = "hft-scale4"


def _engine_state(cluster: Any) -> dict[str, Any]:
    pods = [p for p in cluster.pods() if p.workload == "engine"]
    return {
        "restarts": sum(c.restart_count for p in pods for c in p.containers),
        "oomkilled": any(c.last_terminated_reason == "OOMKilled" for p in pods for c in p.containers),
    }


def _load(runtime: Any, item: Any, nginx: tuple[str, int], *, duration: float) -> dict[str, Any]:
    from pytest_hftk8s.load.driver import LoadDriver
    from pytest_hftk8s.runtime import state_of

    driver = LoadDriver(
        nginx,
        results_dir=runtime.settings.report_dir / "load",
        progress=runtime.progress,
        max_duration=runtime.settings.load_timeout,
    )
    with driver.closed_loop(connections=32, duration=duration, name="scale4-closed-loop") as run:
        pass
    state_of(item).loads.append(run)  # in the test's report (its window and load list)
    assert run.summary is not None
    return {
        "mode": "closed",
        "connections": 32,
        "ok": run.summary.ok,
        "achieved_rate": round(run.summary.achieved_rate, 1),
        "statuses": run.summary.statuses,
        "errors": run.summary.errors,
        "latency_ms": run.summary.latency_ms,
        "valid": run.summary.valid,
        "invalid_reasons": run.summary.invalid_reasons,
    }


def run_scaled(runtime: Any, item: Any, *, replicas_profile: str, duration: float) -> dict[str, Any]:
    """Deploy (or reuse) ``replicas_profile``, load it, and report the engine's fate and the throughput."""
    from pytest_hftk8s.runtime import state_of

    if runtime.settings.profile == replicas_profile:
        cluster = runtime.platform.cluster
        result = _measure(runtime, item, cluster, runtime.platform.nginx, duration=duration, deployed_s=0.0)
    else:
        result = _second_cluster(runtime, item, replicas_profile, duration=duration)
    state_of(item).chaos.append({"experiment": f"{replicas_profile}: 4 backend replicas, 1 engine", **result})
    return result


def _measure(
    runtime: Any, item: Any, cluster: Any, nginx: tuple[str, int], *, duration: float, deployed_s: float
) -> dict[str, Any]:
    before = _engine_state(cluster)
    began = time.time()
    load = _load(runtime, item, nginx, duration=duration)
    time.sleep(1.0)  # a crash right at the end of the load still shows as a restart
    after = _engine_state(cluster)
    backends = [p for p in cluster.pods() if p.workload == "backend"]
    return {
        "window": {"start": began, "end": time.time()},
        "deploy_and_gates_s": round(deployed_s, 2),
        "backends_ready": sum(1 for p in backends if p.ready),
        "backend_restarts": sum(c.restart_count for p in backends for c in p.containers),
        "engine_restarts": after["restarts"] - before["restarts"],
        "engine_oomkilled": after["oomkilled"],
        "load": load,
    }


def _second_cluster(runtime: Any, item: Any, profile: str, *, duration: float) -> dict[str, Any]:
    from pytest_hftk8s.cluster.local import LocalCluster
    from pytest_hftk8s.gate import GateConfig, ReadinessGate
    from pytest_hftk8s.manifests import render

    began = time.monotonic()
    cluster = LocalCluster(
        namespace=SCALE_NAMESPACE,
        state_dir=pathlib.Path(tempfile.gettempdir()) / "hftk8s-state",
        backoff_scale=runtime.settings.backoff_scale,
        progress=runtime.progress,
    )
    try:
        cluster.apply(render(profile))
        ReadinessGate(
            cluster, config=GateConfig(timeout_s=runtime.settings.gate_timeout), progress=runtime.progress
        ).wait()
        nginx = cluster.service_address("nginx", 80)
        return _measure(
            runtime,
            item,
            cluster,
            (nginx.host, nginx.port),
            duration=duration,
            deployed_s=time.monotonic() - began,
        )
    finally:
        cluster.delete_all()
