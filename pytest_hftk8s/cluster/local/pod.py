"""Pods and containers of the local backend: kubelet's container lifecycle, one tick at a time.

Its job: for each container, start it, notice its exit (OOMKilled / Error / Completed), restart it
under ``restartPolicy: Always`` with kubelet's backoff (``CrashLoopBackOff`` while waiting), run its
startup / readiness / liveness probes at their periods (startup gates the others; a failed liveness or
startup probe kills the container), and report ``ContainerStatus``/``PodStatus``. All methods run
under the cluster's lock, called by the supervisor thread; probes run on a thread pool. It must not
know about Services, DNS or metrics.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from pytest_hftk8s.cluster.base import ClusterEvent, ContainerStatus, PodStatus
from pytest_hftk8s.cluster.local.backoff import CrashBackoff
from pytest_hftk8s.cluster.local.cgroups import ContainerCgroup
from pytest_hftk8s.cluster.local.images import LaunchPlan
from pytest_hftk8s.cluster.local.model import ContainerSpec, PodTemplate
from pytest_hftk8s.cluster.local.probes import ProbeOutcome, ProbeState, run_probe
from pytest_hftk8s.cluster.local.runner import ContainerProcess


class EventLog:
    """Kubernetes-style events, newest last, bounded."""

    def __init__(self, limit: int = 2000) -> None:
        self._events: deque[ClusterEvent] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def emit(self, pod: str, reason: str, message: str, *, warning: bool = False) -> None:
        with self._lock:
            self._events.append(
                ClusterEvent(time.time(), "Pod", pod, reason, message, "Warning" if warning else "Normal")
            )

    def list(self) -> list[ClusterEvent]:
        with self._lock:
            return list(self._events)


@dataclass
class RuntimeFiles:
    """Cluster-wide paths every container launch needs."""

    hosts: Path
    resolv: Path


@dataclass
class Container:
    spec: ContainerSpec
    pod: Pod
    plan: LaunchPlan
    cgroup: ContainerCgroup | None
    backoff: CrashBackoff
    proc: ContainerProcess | None = None
    state: str = "waiting"
    reason: str = "ContainerCreating"
    restart_count: int = 0
    last_terminated_reason: str = ""
    last_exit_code: int | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    kill_deadline: float | None = None
    instance: int = 0
    probes: dict[str, ProbeState] = field(default_factory=dict)
    oom_baseline: int | None = None

    @property
    def log_path(self) -> Path:
        return self.pod.directory / "logs" / f"{self.spec.name}.log"

    @property
    def startup_done(self) -> bool:
        probe = self.probes.get("startup")
        return probe is None or probe.result

    @property
    def ready(self) -> bool:
        if self.state != "running" or self.kill_deadline is not None or not self.startup_done:
            return False
        probe = self.probes.get("readiness")
        return probe is None or probe.result

    @property
    def last_probe_error(self) -> str:
        errors = [
            f"{kind}: {p.last_error}" for kind, p in self.probes.items() if p.last_error and not p.result
        ]
        return "; ".join(errors)

    def start(self, now: float, *, files: RuntimeFiles) -> None:
        self.oom_baseline = self.cgroup.oom_kills() if self.cgroup else None
        try:
            self.proc = ContainerProcess.start(
                self.plan, cgroup=self.cgroup, hosts=files.hosts, resolv=files.resolv,
                hostname=self.pod.name, log_path=self.log_path,
            )  # fmt: skip
        except OSError as e:
            self.state, self.reason = "waiting", "RunContainerError"
            self.pod.events.emit(self.pod.name, "Failed", f"Error: {e}", warning=True)
            self._schedule_restart(now)
            return
        self.instance += 1
        self.state, self.reason, self.started_at, self.restart_at = "running", "", now, None
        self.probes = {
            kind: ProbeState(kind, spec, started_at=now)
            for kind, spec in (
                ("startup", self.spec.startup),
                ("readiness", self.spec.readiness),
                ("liveness", self.spec.liveness),
            )
            if spec is not None
        }
        self.pod.events.emit(
            self.pod.name, "Started", f"Started container {self.spec.name} (pid {self.proc.pid})"
        )

    def tick(self, now: float, *, files: RuntimeFiles, pool: Executor, lock: threading.RLock) -> None:
        if self.state == "waiting" and self.restart_at is not None and now >= self.restart_at:
            if self.cgroup is None or not self.cgroup.pids():
                self.restart_count += 1
                self.start(now, files=files)
            return
        if self.proc is None or self.state != "running":
            return
        rc = self.proc.poll()
        if rc is not None:
            self._on_exit(rc, now)
            return
        if self.kill_deadline is not None:
            if now >= self.kill_deadline:
                self.proc.kill(self.cgroup)
            return
        for kind in ("startup", "readiness", "liveness"):
            probe = self.probes.get(kind)
            if probe is None or (kind != "startup" and not self.startup_done):
                continue
            if kind == "startup" and probe.result:
                continue
            if probe.due(now):
                probe.begin(now)
                self._submit_probe(probe, pool, lock)

    def _submit_probe(self, probe: ProbeState, pool: Executor, lock: threading.RLock) -> None:
        instance, pid = self.instance, self.proc.pid if self.proc else None
        future = pool.submit(run_probe, probe.spec, pod_ip=self.pod.ip, pid=pid, env=self.plan.env)

        def done(f: object) -> None:
            try:
                outcome = future.result()
            except Exception as e:  # a probe bug must not kill the supervisor
                outcome = ProbeOutcome(False, f"probe raised {e!r}")
            with lock:
                if instance == self.instance and self.state == "running":
                    self._on_probe(probe, outcome, time.monotonic())

        future.add_done_callback(done)

    def _on_probe(self, probe: ProbeState, outcome: ProbeOutcome, now: float) -> None:
        probe.record(outcome)
        name = probe.kind.capitalize()
        if not outcome.ok:
            self.pod.events.emit(
                self.pod.name, "Unhealthy", f"{name} probe failed: {outcome.message}", warning=True
            )
        if probe.kind in ("liveness", "startup") and probe.failed and self.kill_deadline is None:
            self.pod.events.emit(
                self.pod.name,
                "Killing",
                f"Container {self.spec.name} failed {probe.kind} probe, will be restarted",
            )
            self.stop(now, grace=self.pod.template.grace_seconds)

    def stop(self, now: float, *, grace: float) -> None:
        """Send the image's stop signal; the tick escalates to SIGKILL after ``grace``."""
        if self.proc is not None and self.state == "running":
            self.proc.signal_group(self.plan.stop_signal)
            self.kill_deadline = now + grace

    def _on_exit(self, rc: int, now: float) -> None:
        assert self.proc is not None
        self.proc.kill(self.cgroup)  # the main process is gone: nothing of the container may linger
        code = ContainerProcess.exit_code(rc)
        ooms = self.cgroup.oom_kills() if self.cgroup else None
        if (ooms is not None and self.oom_baseline is not None and ooms > self.oom_baseline) or (
            ooms is None and code == 137 and self._at_memory_limit()
        ):
            reason = "OOMKilled"
        else:
            reason = "Completed" if code == 0 else "Error"
        if reason == "OOMKilled":
            self.pod.events.emit(
                self.pod.name,
                "OOMKilling",
                f"Memory cgroup out of memory: killed container {self.spec.name}",
                warning=True,
            )
        self.last_terminated_reason, self.last_exit_code = reason, code
        self.kill_deadline = None
        self._schedule_restart(now)

    def _at_memory_limit(self) -> bool:
        if self.cgroup is None or not self.spec.memory_limit_bytes:
            return False
        usage = self.cgroup.usage()
        return usage.memory_usage >= 0.95 * self.spec.memory_limit_bytes

    def _schedule_restart(self, now: float) -> None:
        delay = self.backoff.delay_after_exit(now)
        self.state, self.restart_at = "waiting", now + delay
        self.reason = "CrashLoopBackOff" if delay > 0 else "ContainerCreating"
        if delay > 0:
            self.pod.events.emit(
                self.pod.name, "BackOff",
                f"Back-off {delay:.1f}s restarting failed container {self.spec.name} in pod {self.pod.name}",
                warning=True,
            )  # fmt: skip

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            name=self.spec.name,
            ready=self.ready,
            restart_count=self.restart_count,
            state=self.state,
            reason=self.reason,
            last_terminated_reason=self.last_terminated_reason,
            last_probe_error=self.last_probe_error,
        )


@dataclass
class Pod:
    name: str
    template: PodTemplate
    ip: str
    directory: Path
    events: EventLog
    waits_for: Pod | None = None  # StatefulSet OrderedReady: the previous ordinal must be ready
    containers: list[Container] = field(default_factory=list)
    started: bool = False

    @property
    def ready(self) -> bool:
        return self.started and all(c.ready for c in self.containers)

    @property
    def phase(self) -> str:
        if not self.started or any(c.restart_count == 0 and c.state == "waiting" for c in self.containers):
            return "Pending"
        return "Running"

    def tick(
        self,
        now: float,
        *,
        files: RuntimeFiles,
        pool: Executor,
        lock: threading.RLock,
        progress: Callable[[str], None],
    ) -> None:
        if not self.started:
            if self.waits_for is not None and not self.waits_for.ready:
                return
            self.started = True
            self.events.emit(
                self.name,
                "Scheduled",
                f"Successfully assigned {self.template.namespace}/{self.name} to local",
            )
            progress(f"pod {self.name}: starting ({self.ip})")
            for c in self.containers:
                c.start(now, files=files)
            return
        for c in self.containers:
            c.tick(now, files=files, pool=pool, lock=lock)

    def status(self) -> PodStatus:
        return PodStatus(
            name=self.name,
            workload=self.template.workload,
            phase=self.phase,
            ip=self.ip,
            ready=self.ready,
            containers=tuple(c.status() for c in self.containers),
        )
