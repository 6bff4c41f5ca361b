"""The local cluster's kube-state-metrics and cAdvisor stand-in: one HTTP server on its own address.

Its job: serve ``/metrics`` with kube-state-metrics series (pod readiness, restarts, waiting and
last-terminated reasons, deployment/statefulset availability) and ``/metrics/cadvisor`` with cAdvisor
series read from each container's cgroup, all labelled ``namespace``/``pod``/``container`` exactly like
the real exporters, so the same PromQL works on both backends. It binds the first free
``127.0.<n>.1`` and that bind doubles as the claim on the ``127.0.<n>.0/24`` pod subnet. It must not
change cluster state: it only reads a snapshot the cluster hands it.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pytest_hftk8s.cluster.base import PodStatus, WorkloadStatus
from pytest_hftk8s.cluster.local.cgroups import ContainerCgroup
from pytest_hftk8s.errors import ClusterUnavailable

EXPORTER_PORT = 8080
FIRST_SUBNET, LAST_SUBNET = 20, 250


@dataclass(frozen=True)
class ContainerSample:
    pod: str
    container: str
    image: str
    cgroup: ContainerCgroup | None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None


@dataclass(frozen=True)
class ChaosSample:
    """An experiment the local chaos driver has injected and not yet removed; ``until`` is when its
    duration ends (Chaos Mesh recovers it then), None for one without (a pod kill)."""

    kind: str
    name: str
    until: float | None = None


@dataclass(frozen=True)
class MetricsSnapshot:
    namespace: str
    node: str
    pods: tuple[PodStatus, ...]
    workloads: tuple[WorkloadStatus, ...]
    containers: tuple[ContainerSample, ...]
    chaos: tuple[ChaosSample, ...] = ()


def _labels(**labels: str) -> str:
    body = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + body + "}"


def render_kube_state(snap: MetricsSnapshot) -> str:
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, rows: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{_labels(**labels)} {value:g}" for labels, value in rows)

    ns = snap.namespace
    family("kube_pod_status_ready", "gauge", "Describes whether the pod is ready to serve requests.", [
        ({"namespace": ns, "pod": p.name, "uid": f"local-{p.name}", "condition": cond}, float(val))
        for p in snap.pods
        for cond, val in (("true", p.ready), ("false", not p.ready), ("unknown", False))
    ])  # fmt: skip
    family("kube_pod_status_phase", "gauge", "The pods current phase.", [
        ({"namespace": ns, "pod": p.name, "uid": f"local-{p.name}", "phase": phase}, float(p.phase == phase))
        for p in snap.pods
        for phase in ("Pending", "Succeeded", "Failed", "Unknown", "Running")
    ])  # fmt: skip
    containers = [(p, c) for p in snap.pods for c in p.containers]
    family("kube_pod_container_status_ready", "gauge", "Describes whether the containers readiness check succeeded.",
           [({"namespace": ns, "pod": p.name, "uid": f"local-{p.name}", "container": c.name}, float(c.ready))
            for p, c in containers])  # fmt: skip
    family("kube_pod_container_status_restarts_total", "counter", "The number of container restarts per container.",
           [({"namespace": ns, "pod": p.name, "uid": f"local-{p.name}", "container": c.name}, float(c.restart_count))
            for p, c in containers])  # fmt: skip
    # Like kube-state-metrics v2: a series exists only while the container is waiting / has terminated.
    family("kube_pod_container_status_waiting_reason", "gauge", "Describes the reason the container is currently in waiting state.",
           [({"namespace": ns, "pod": p.name, "uid": f"local-{p.name}", "container": c.name, "reason": c.reason}, 1.0)
            for p, c in containers if c.state == "waiting" and c.reason])  # fmt: skip
    family("kube_pod_container_status_last_terminated_reason", "gauge", "Describes the last reason the container was in terminated state.",
           [({"namespace": ns, "pod": p.name, "uid": f"local-{p.name}", "container": c.name, "reason": c.last_terminated_reason}, 1.0)
            for p, c in containers if c.last_terminated_reason])  # fmt: skip
    limits = [
        (c, resource, unit, value)
        for c in snap.containers
        for resource, unit, value in (
            ("cpu", "core", c.cpu_limit_millis / 1000 if c.cpu_limit_millis else None),
            ("memory", "byte", c.memory_limit_bytes),
        )
        if value
    ]
    family("kube_pod_container_resource_limits", "gauge", "The number of requested limit resource by a container.",
           [({"namespace": ns, "pod": c.pod, "uid": f"local-{c.pod}", "container": c.container, "node": snap.node,
              "resource": resource, "unit": unit}, float(value)) for c, resource, unit, value in limits])  # fmt: skip
    deployments = [w for w in snap.workloads if w.kind == "Deployment"]
    statefulsets = [w for w in snap.workloads if w.kind == "StatefulSet"]
    family("kube_deployment_spec_replicas", "gauge", "Number of desired pods for a deployment.",
           [({"namespace": ns, "deployment": w.name}, float(w.desired)) for w in deployments])  # fmt: skip
    family("kube_deployment_status_replicas_available", "gauge", "The number of available replicas per deployment.",
           [({"namespace": ns, "deployment": w.name}, float(w.available)) for w in deployments])  # fmt: skip
    family("kube_statefulset_replicas", "gauge", "Number of desired pods for a StatefulSet.",
           [({"namespace": ns, "statefulset": w.name}, float(w.desired)) for w in statefulsets])  # fmt: skip
    family("kube_statefulset_status_replicas_ready", "gauge", "The number of ready replicas per StatefulSet.",
           [({"namespace": ns, "statefulset": w.name}, float(w.ready)) for w in statefulsets])  # fmt: skip
    # What kube-state-metrics' Custom Resource State makes of a Chaos Mesh object on a cluster
    # (manifests/components/kube-state-metrics): 1 while AllInjected, 0 once recovered, gone when deleted.
    now = time.time()
    family("hftk8s_chaos_injected", "gauge", "1 while the Chaos Mesh experiment is injected (condition AllInjected is True)",
           [({"namespace": ns, "kind": c.kind, "name": c.name}, float(c.until is None or now < c.until))
            for c in snap.chaos])  # fmt: skip
    return "\n".join(out) + "\n"


#: /proc/stat's busy columns (user nice system idle iowait irq softirq steal ...): all but idle and
#: iowait, as the root cgroup counts them; guest time is already inside user.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)


def node_cpu_seconds(stat: str | None = None) -> float | None:
    """CPU seconds the whole machine has been busy: what cAdvisor reports as the root cgroup's
    ``container_cpu_usage_seconds_total{id="/"}``."""
    try:
        text = stat if stat is not None else pathlib.Path("/proc/stat").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("cpu "):
            columns = [int(v) for v in line.split()[1:]]
            return sum(columns[i] for i in _BUSY_COLUMNS if i < len(columns)) / os.sysconf("SC_CLK_TCK")
    return None


def render_cadvisor(snap: MetricsSnapshot) -> str:
    rows: dict[str, list[str]] = {}
    kinds = {
        "container_cpu_usage_seconds_total": "counter",
        "container_cpu_cfs_periods_total": "counter",
        "container_cpu_cfs_throttled_periods_total": "counter",
        "container_memory_working_set_bytes": "gauge",
        "container_memory_usage_bytes": "gauge",
        "container_spec_memory_limit_bytes": "gauge",
        "container_oom_events_total": "counter",
        "machine_cpu_cores": "gauge",
    }
    # The node, as cAdvisor shows it: the machine's logical CPUs and the root cgroup's usage.
    rows["machine_cpu_cores"] = [f"machine_cpu_cores {os.cpu_count() or 1}"]
    if (busy := node_cpu_seconds()) is not None:
        rows["container_cpu_usage_seconds_total"] = [
            f'container_cpu_usage_seconds_total{{id="/"}} {busy:.9g}'
        ]
    for sample in snap.containers:
        if sample.cgroup is None:
            continue
        u = sample.cgroup.usage()
        cg = next(iter(sample.cgroup.paths.values()))
        labels = _labels(namespace=snap.namespace, pod=sample.pod, container=sample.container,
                         image=sample.image, id=f"/{cg.parent.name}/{cg.name}", name=cg.name)  # fmt: skip
        values = {
            "container_cpu_usage_seconds_total": u.cpu_seconds,
            "container_cpu_cfs_periods_total": u.cfs_periods,
            "container_cpu_cfs_throttled_periods_total": u.cfs_throttled_periods,
            "container_memory_working_set_bytes": u.memory_working_set,
            "container_memory_usage_bytes": u.memory_usage,
            "container_spec_memory_limit_bytes": u.memory_limit if u.memory_limit < 2**62 else 0,
            "container_oom_events_total": u.oom_kills or 0,
        }
        for name, value in values.items():
            rows.setdefault(name, []).append(f"{name}{labels} {value:.9g}")
    out = []
    for name, kind in kinds.items():
        out += [f"# TYPE {name} {kind}", *rows.get(name, [])]
    return "\n".join(out) + "\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class MetricsExporter:
    """The HTTP server; ``snapshot`` is called per scrape."""

    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._snapshot = snapshot
        self.server = self._bind_free_subnet()
        host, self.port = self.server.server_address[:2]
        self.host = host if isinstance(host, str) else host.decode()
        self.subnet = int(str(self.host).split(".")[2])
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="hft-local-exporter", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _bind_free_subnet(self) -> ThreadingHTTPServer:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path not in ("/metrics", "/metrics/cadvisor", "/healthz"):
                    self.send_error(404)
                    return
                if path == "/healthz":
                    body = b"ok\n"
                else:
                    snap = exporter._snapshot()
                    body = (render_kube_state(snap) if path == "/metrics" else render_cadvisor(snap)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a scraper stopped first
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        for n in range(FIRST_SUBNET, LAST_SUBNET + 1):
            try:
                return _Server((f"127.0.{n}.1", EXPORTER_PORT), Handler)
            except OSError:
                continue
        raise ClusterUnavailable(
            f"expected a free loopback subnet 127.0.{FIRST_SUBNET}-{LAST_SUBNET}.0/24 (exporter port {EXPORTER_PORT}); "
            "all are taken. Stop other local clusters or run the sweep."
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
