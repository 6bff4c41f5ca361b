"""The field report's scaled case on any backend: another replica profile beside the session's platform.

:func:`run_scaled` measures the session platform's closed-loop capacity (the one-backend baseline),
then deploys the session's overlay with other ``replicas`` (e.g. 4 backends: the same limits, reached
the same way as the session's platform) or another ``profile`` (e.g. ``scale4``) into its own
namespace through the cluster selector - a second local cluster, or a second namespace of the kube
context - gates it, drives the same closed-loop load through its nginx, reads every pod's restarts
and termination reasons, and always deletes it. When the session itself runs ``profile`` it measures
the session's platform and there is no one-backend run to compare with. It measures; the test judges.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pytest

from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.gate import GateConfig, ReadinessGate
from pytest_hftk8s.manifests import render
from pytest_hftk8s.orchestration.load import driver_for
from pytest_hftk8s.orchestration.recorder import state_of
from pytest_hftk8s.results import LoadSummary, ScaleRecord, Window

if TYPE_CHECKING:
    from pytest_hftk8s.orchestration.runtime import HftRuntime


def _restarts(cluster: Cluster, workload: str) -> tuple[int, bool]:
    pods = [p for p in cluster.pods() if p.workload == workload]
    return (
        sum(c.restart_count for p in pods for c in p.containers),
        any(c.last_terminated_reason == "OOMKilled" for p in pods for c in p.containers),
    )


def _closed_loop(
    runtime: HftRuntime,
    item: pytest.Item,
    nginx: tuple[str, int],
    *,
    name: str,
    connections: int,
    duration: float,
) -> LoadSummary:
    driver = driver_for(runtime, item)
    driver.target = nginx
    with driver.closed_loop(connections=connections, duration=duration, name=name) as run:
        pass
    assert run.summary is not None
    return run.summary


def run_scaled(
    runtime: HftRuntime,
    item: pytest.Item,
    *,
    profile: str | None = None,
    replicas: Mapping[str, int] | None = None,
    duration: float,
    connections: int = 32,
) -> tuple[ScaleRecord, LoadSummary, LoadSummary | None]:
    """(the scale record, the scaled run, the one-backend run on the session platform or ``None``).

    ``replicas`` (e.g. ``{"backend": 4}``) deploys the session's own overlay with those replica counts,
    so the scaled platform is reached the way the session's is (its LoadBalancer, NodePort or
    loopback) and the two runs differ only in replicas; ``profile`` deploys another overlay instead.
    """
    if (profile is None) == (replicas is None):
        raise ConfigError(
            "hft_scale.run: give either profile= (another overlay) or replicas= (the session's)"
        )
    platform = runtime.require_platform()
    runtime.hold_measurement()
    one: LoadSummary | None = None
    if replicas is not None:
        profile = runtime.settings.profile + "".join(f" {k}={v}" for k, v in sorted(replicas.items()))
    assert profile is not None
    if runtime.settings.profile == profile:
        cluster, nginx, deployed_s, namespace = platform.cluster, platform.nginx, 0.0, platform.namespace
        scaled = _measure(
            runtime, item, cluster, nginx, profile, namespace, duration, connections, deployed_s
        )
        return (*scaled, one)
    one = _closed_loop(
        runtime, item, platform.nginx, name="scale-1-backend", connections=connections, duration=duration
    )
    namespace = f"{platform.namespace}-scale"
    began = time.monotonic()
    cluster = runtime.another_cluster(namespace)
    try:
        objects = render(
            runtime.settings.profile if replicas is not None else profile,
            root=runtime.settings.manifests_dir,
            images=session_images(runtime),
            replicas=replicas,
            cpu_limit_scale=runtime.cpu_limit_scale,
        )
        cluster.apply(
            with_db_secret(objects, password=new_password(), secret_name=runtime.settings.db_secret)
        )
        ReadinessGate(
            cluster, config=GateConfig(timeout_s=runtime.settings.gate_timeout), progress=runtime.progress
        ).wait()
        address = cluster.service_address("nginx", 80)
        scaled = _measure(
            runtime, item, cluster, (address.host, address.port), profile, namespace, duration, connections,
            time.monotonic() - began,
        )  # fmt: skip
        scaled[0].baseline_load = one.name
        return (*scaled, one)
    finally:
        try:
            cluster.delete_all()
        finally:
            cluster.close()


def _measure(
    runtime: HftRuntime,
    item: pytest.Item,
    cluster: Cluster,
    nginx: tuple[str, int],
    profile: str,
    namespace: str,
    duration: float,
    connections: int,
    deployed_s: float,
) -> tuple[ScaleRecord, LoadSummary]:
    engine_before, _ = _restarts(cluster, "engine")
    began = time.time()
    name = f"{profile}-closed-loop"
    load = _closed_loop(runtime, item, nginx, name=name, connections=connections, duration=duration)
    time.sleep(1.0)  # a crash right at the end of the load still shows as a restart
    engine_after, engine_oom = _restarts(cluster, "engine")
    backends = [p for p in cluster.pods() if p.workload == "backend"]
    record = ScaleRecord(
        profile=profile,
        namespace=namespace,
        window=Window(began, time.time()),
        deploy_and_gates_s=round(deployed_s, 2),
        backends_ready=sum(1 for p in backends if p.ready),
        backend_restarts=sum(c.restart_count for p in backends for c in p.containers),
        engine_restarts=engine_after - engine_before,
        engine_oomkilled=engine_oom,
        load=name,
    )
    state_of(item).scale.append(record)
    return record, load


def session_images(runtime: HftRuntime) -> dict[str, str]:
    """The image references the session's platform runs (computed again, never rebuilt): what a
    platform deployed beside it (another replica count, a sweep point) must run too."""
    from pytest_hftk8s.cluster.select import platform_images

    s = runtime.settings
    assert s.cluster is not None
    return platform_images(s.cluster, mode="skip", registry=s.registry, progress=runtime.progress)


class ScaleRunner:
    """What the ``hft_scale`` fixture hands out: ``run(profile=..., duration=...)`` for the running test."""

    def __init__(self, runtime: HftRuntime, item: pytest.Item) -> None:
        self._runtime = runtime
        self._item = item

    def run(
        self,
        *,
        profile: str | None = None,
        replicas: Mapping[str, int] | None = None,
        duration: float,
        connections: int = 32,
    ) -> tuple[ScaleRecord, LoadSummary, LoadSummary | None]:
        return run_scaled(
            self._runtime, self._item, profile=profile, replicas=replicas, duration=duration,
            connections=connections,
        )  # fmt: skip
