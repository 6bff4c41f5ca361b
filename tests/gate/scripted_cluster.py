"""A scripted in-memory Cluster (test helper): status that evolves per poll, as the gate sees it.

It stands in only for the cluster API - the one stand-in the project allows - so the gate logic
and the plugin's orchestration can be driven deterministically. Every call is journaled to a file
(when given) so a test in another process (pytester, xdist) can see what happened.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Sequence

from pytest_hftk8s.cluster.base import (
    ClusterEvent,
    ContainerStatus,
    Endpoint,
    KubeObject,
    PodStatus,
    ServiceAddress,
    WorkloadStatus,
)
from pytest_hftk8s.errors import ClusterError
from pytest_hftk8s.results import PreflightCheck

WORKLOADS = ("backend", "engine", "nginx", "prometheus")


class ScriptedCluster:
    name = "scripted"

    def __init__(
        self,
        *,
        namespace: str = "hft",
        nginx: tuple[str, int] = ("127.0.0.1", 9),
        prometheus_url: str = "http://127.0.0.1:9",
        ready_after_polls: int = 0,
        never_ready: Sequence[str] = (),
        dns_script: Sequence[bool] = (),
        journal: pathlib.Path | None = None,
        waiting_reason: str = "CrashLoopBackOff",
        preflight_fails: str = "",
    ) -> None:
        self.namespace = namespace
        self.nginx = nginx
        self.prometheus_url = prometheus_url
        self.ready_after_polls = ready_after_polls
        self.never_ready = set(never_ready)
        self.dns_script = list(dns_script)
        self.journal = journal
        self.preflight_fails = preflight_fails  # the check the preflight reports missing, if any
        self.waiting_reason = waiting_reason  # what a not-ready container waits with
        self.resolved: list[str] = []  # every name resolve_in_pod was asked for
        self.polls = 0
        self.applied: list[KubeObject] = []
        self.deleted = False
        self.resolutions = 0

    def _note(self, what: str) -> None:
        if self.journal is not None:
            with self.journal.open("a") as f:
                f.write(json.dumps({"pid": os.getpid(), "t": time.time(), "call": what}) + "\n")

    def _ready(self, workload: str) -> bool:
        return workload not in self.never_ready and self.polls >= self.ready_after_polls

    def apply(self, objects: Sequence[KubeObject]) -> None:
        self._note(f"apply {len(objects)}")
        self.applied = list(objects)

    def delete_all(self) -> None:
        self._note("delete_all")
        self.deleted = True

    def workloads(self) -> list[WorkloadStatus]:
        self.polls += 1
        return [
            WorkloadStatus("Deployment", w, 1, int(self._ready(w)), int(self._ready(w))) for w in WORKLOADS
        ]

    def pods(self) -> list[PodStatus]:
        out = []
        for w in WORKLOADS:
            ready = self._ready(w)
            container = ContainerStatus(
                name=w,
                ready=ready,
                restart_count=0 if ready else 3,
                state="running" if ready else "waiting",
                reason="" if ready else self.waiting_reason,
                last_probe_error="" if ready else "Readiness probe failed: connection refused",
            )
            out.append(PodStatus(f"{w}-0", w, "Running", "127.0.0.1", ready, (container,)))
        return out

    def services(self) -> list[str]:
        return list(WORKLOADS)

    def endpoints(self, service: str) -> list[Endpoint]:
        return [Endpoint(f"{service}-0", "127.0.0.1", 80, self._ready(service))]

    def resolve_in_pod(self, pod: str, hostname: str) -> list[str]:
        self.resolutions += 1
        self.resolved.append(hostname)
        ok = self.dns_script.pop(0) if self.dns_script else True
        if not ok:
            raise ClusterError(f"getent ahosts {hostname}: not found")
        return ["127.0.0.1"]

    def service_address(self, service: str, port: int | str) -> ServiceAddress:
        if service == "nginx":
            return ServiceAddress(*self.nginx)
        if service == "prometheus":
            host, port_ = self.prometheus_url.removeprefix("http://").rsplit(":", 1)
            return ServiceAddress(host, int(port_))
        raise ClusterError(f"no service {service!r}")

    def pod_logs(self, pod: str, *, container: str | None = None, tail: int = 200) -> str:
        return f"{pod}: starting\n{pod}: connecting to postgres\n{pod}: boom, connection refused"

    def events(self) -> list[ClusterEvent]:
        return [
            ClusterEvent(
                time.time(), "Pod", "engine-0", "BackOff", "Back-off restarting failed container", "Warning"
            )
        ]

    def close(self) -> None:
        self._note("close")

    def share(self) -> dict[str, str]:
        return {"journal": str(self.journal or "")}

    def chaos_driver(self, *, run_id: str, allowed_contexts: Sequence[str], echo: object) -> object:
        raise ClusterError("the scripted cluster injects no chaos; use the local cluster or a kube context")

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        self._note(f"preflight images={len(images)} chaos={chaos}")
        rows = [PreflightCheck("context reachable", True, "scripted, always")]
        if self.preflight_fails:
            rows.append(
                PreflightCheck(self.preflight_fails, False, "not installed", "helm install chaos-mesh ...")
            )
        return rows

    def sweep(self, *, keep_run_id: str | None) -> list[str]:
        self._note("sweep")
        return []
