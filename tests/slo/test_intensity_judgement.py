"""The intensity judgement needs nothing but Prometheus: fed only the series a kube context's
cAdvisor and kube-state-metrics export, it says whether a Chaos Mesh stress reached its intensity.

A real Prometheus scrapes a real exporter that plays the kubelet's cAdvisor and kube-state-metrics
for one backend container ``ns/pod/container`` (Chaos Mesh's record id). No local driver runs and no
cgroup is read: the records carry no cross-check, as on Kubernetes.
"""

from __future__ import annotations

import time
import uuid

import pytest
from slo_servers import Exporter

from pytest_hftk8s.results import ChaosRecord, Window
from pytest_hftk8s.slo.intensity import judge
from pytest_hftk8s.slo.prom import PromClient

pytestmark = pytest.mark.slow

NS = "hft-kube"
MIB = 2**20


def _container(exporter: Exporter) -> dict[str, str]:
    labels = {"namespace": NS, "pod": f"backend-{uuid.uuid4().hex[:6]}", "container": "backend"}
    exporter.ctl(
        "set", "kube_pod_container_resource_limits", value=0.3, **labels, resource="cpu", unit="core"
    )
    exporter.ctl(
        "set", "kube_pod_container_resource_limits", value=128 * MIB, **labels, resource="memory", unit="byte"
    )
    exporter.ctl("set", "container_memory_working_set_bytes", value=40 * MIB, **labels)
    exporter.ctl("grow", "container_cpu_usage_seconds_total", value=0.05, **labels)  # an idle backend
    exporter.ctl("inc", "container_oom_events_total", value=0, **labels)
    return labels


def _record(
    labels: dict[str, str], requested: dict, *, requested_at: float, start: float, end: float
) -> ChaosRecord:
    return ChaosRecord(
        experiment="stress", kind="StressChaos", window=Window(start, end), requested_at=requested_at, injected=True,
        containers=[f"{NS}/{labels['pod']}/{labels['container']}"], requested=requested,
    )  # fmt: skip


def test_cpu_stress_at_the_limit_is_reached_and_one_that_did_nothing_is_not(
    exporter: Exporter, prom: PromClient
) -> None:
    labels = _container(exporter)
    time.sleep(2)
    asked = {"cpu": {"workers": 1, "load": 80}, "cpu_cores": 0.8}
    idle_from = time.time()
    time.sleep(5)  # chaos-daemon reported AllInjected, but stress-ng never reached the cgroup
    idle = _record(labels, asked, requested_at=idle_from, start=idle_from, end=time.time())
    requested_at = time.time()
    exporter.ctl("grow", "container_cpu_usage_seconds_total", value=0.3, **labels)  # throttled at 300m
    start = time.time()
    time.sleep(6)
    end = time.time()
    exporter.ctl("grow", "container_cpu_usage_seconds_total", value=0.05, **labels)
    stressed = _record(labels, asked, requested_at=requested_at, start=start, end=end)

    (cpu,) = judge(stressed, prom, namespace=NS)
    assert (cpu.source, cpu.kind, cpu.limit) == ("prometheus", "cpu", pytest.approx(0.3))
    assert cpu.expected == pytest.approx(0.3)  # 0.8 asked, capped by the limit
    assert cpu.observed == pytest.approx(0.3, rel=0.1)
    assert cpu.reached
    assert cpu.query.startswith("sum(rate(container_cpu_usage_seconds_total{")
    (nothing,) = judge(idle, prom, namespace=NS)
    assert nothing.observed == pytest.approx(0.05, rel=0.2)
    assert not nothing.reached


def test_memory_stress_is_reached_by_size_or_by_an_oom_kill(exporter: Exporter, prom: PromClient) -> None:
    held = _container(exporter)
    killed = _container(exporter)
    time.sleep(2)
    asked = {"memory": {"workers": 1, "size": "64MiB"}, "memory_bytes": 64 * MIB}
    requested_at = time.time()
    time.sleep(1)
    exporter.ctl("set", "container_memory_working_set_bytes", value=100 * MIB, **held)  # 40 + 60 MiB held
    exporter.ctl("set", "container_memory_working_set_bytes", value=41 * MIB, **killed)
    exporter.ctl("inc", "container_oom_events_total", value=1, **killed)  # beyond the limit: OOM-killed
    start = time.time()
    time.sleep(4)
    end = time.time()

    (mem,) = judge(_record(held, asked, requested_at=requested_at, start=start, end=end), prom, namespace=NS)
    assert mem.baseline == pytest.approx(40 * MIB)
    assert mem.observed == pytest.approx(60 * MIB)
    assert mem.expected == pytest.approx(64 * MIB)  # the limit leaves 88 MiB above the baseline
    assert mem.reached  # 60 of 64 MiB >= 80%
    (oom,) = judge(
        _record(killed, asked, requested_at=requested_at, start=start, end=end), prom, namespace=NS
    )
    assert oom.oom_kills == 1
    assert oom.reached  # pressure beyond the limit: the kernel said so
    assert oom.observed is not None
    assert oom.observed < 0.8 * oom.expected  # it was not the size that made it reached
