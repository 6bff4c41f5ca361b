"""The readiness gate: tests start only once the platform really serves.

Shared by both cluster backends: each gate reads primitives of the
:class:`~pytest_hftk8s.cluster.base.Cluster` contract and nothing else. The gates run in order and
each is bounded by what is left of one overall deadline:

1. ``workloads``: every Deployment/StatefulSet has its desired replicas available;
2. ``endpoints``: every Service has at least one ready endpoint;
3. ``dns``: every Service name, short and fully qualified (``<svc>.<ns>.svc.cluster.local``),
   resolves from a backend pod ``dns_streak`` times in a row;
4. ``warmup``: ``warmup_streak`` consecutive registrations through nginx succeed.

On timeout it raises :class:`~pytest_hftk8s.errors.GateTimeout` naming the unmet gate and why (pod
states, last probe error, log tail). It does not wait for what cannot come: while workloads or
endpoints are missing, a container waiting with ImagePullBackOff, ErrImagePull,
CreateContainerConfigError or Unschedulable for ``fail_fast_grace_s``, or crash-looping for
``crashloop_grace_s``, fails the gate at once, with the reason, the pod's events and what to do.
CrashLoopBackOff gets the longer grace because a start-up order crash (a backend up before its
database) heals by itself after a restart or two, on Kubernetes and on the local cluster alike,
while the other reasons never heal without a change; the short grace covers the moment between a
Deployment and a Secret applied just after it. It does not deploy, tear down or talk to Prometheus.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_hftk8s.cluster.base import Cluster, ClusterEvent, PodStatus
from pytest_hftk8s.errors import GateTimeout

Progress = Callable[[str], None]

#: Waiting reasons that never clear by waiting, and what the user does about each.
FATAL_REASONS = {
    "ImagePullBackOff": "the node cannot pull the image: build and load it into the cluster "
    "(`python -m pytest_hftk8s images --provider kind|k3d|minikube|orbstack`, or --hft-images=load), "
    "or push it with --hft-registry; check the image name, tag and imagePullPolicy in the events above",
    "ErrImagePull": "the node cannot pull the image: build and load it into the cluster "
    "(`python -m pytest_hftk8s images --provider kind|k3d|minikube|orbstack`, or --hft-images=load), "
    "or push it with --hft-registry; check the image name, tag and imagePullPolicy in the events above",
    "CreateContainerConfigError": "a ConfigMap or Secret the container references is missing (the events "
    "name it); the database Secret comes from the session, or from --hft-db-secret, which must exist "
    "in the namespace",
    "Unschedulable": "no node can take the pod (see the FailedScheduling event: CPU or memory requests, "
    "taints, affinity, or a PersistentVolumeClaim with no default StorageClass to bind it); free "
    "capacity or use a smaller profile",
}
CRASH_LOOP = "CrashLoopBackOff"
_CRASH_LOOP_ADVICE = (
    "the container keeps exiting: read its log tail above and its last termination reason; a "
    "dependency it needs at start may be missing"
)


@dataclass(frozen=True)
class GateConfig:
    """Bounds and streak lengths of the readiness gate."""

    timeout_s: float = 90.0
    poll_s: float = 0.2
    dns_streak: int = 3
    warmup_streak: int = 5
    warmup_service: str = "nginx"
    warmup_port: int | str = 80
    warmup_path: str = "/v1/users"
    warmup_timeout_s: float = 2.0
    dns_from_workload: str = "backend"
    cluster_domain: str = "cluster.local"
    log_tail: int = 20
    #: How long a never-healing waiting reason (:data:`FATAL_REASONS`) is tolerated before failing.
    fail_fast_grace_s: float = 5.0
    #: How long a container may crash-loop (restarts between start-up backoffs) before failing.
    crashloop_grace_s: float = 45.0
    event_lines: int = 10


@dataclass
class GateResult:
    """How long each gate took; ``passed_at`` is a ``time.monotonic()`` value."""

    durations: dict[str, float] = field(default_factory=dict)
    passed_at: float = 0.0


@dataclass
class _Check:
    ok: bool
    why: str = ""


@dataclass(frozen=True)
class _Stuck:
    """A container that cannot become ready: which one, why, and for how long the gate has seen it."""

    pod: str
    container: str
    reason: str
    seen_s: float


class ReadinessGate:
    """Waits, gate by gate, until ``cluster`` serves; see the module docstring."""

    GATES = ("workloads", "endpoints", "dns", "warmup")

    def __init__(
        self,
        cluster: Cluster,
        *,
        config: GateConfig | None = None,
        progress: Progress | None = None,
        register: Callable[[str, float], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.config = config or GateConfig()
        self._progress = progress or (lambda _msg: None)
        # ``register(url, timeout)`` performs one warm-up registration or raises; injectable so the
        # gate logic can be driven against any HTTP server.
        self._register = register or _post_ok
        self._dns_ok = 0
        self._warm_ok = 0
        self._last_note = ""
        self._started = time.monotonic()
        self._first_seen: dict[tuple[str, str, str], float] = {}  # (pod, container, reason) -> when

    def wait(self) -> GateResult:
        cfg = self.config
        self._started = time.monotonic()
        deadline = self._started + cfg.timeout_s
        result = GateResult()
        checks: dict[str, Callable[[], _Check]] = {
            "workloads": self._workloads,
            "endpoints": self._endpoints,
            "dns": self._dns,
            "warmup": self._warmup,
        }
        for name in self.GATES:
            started = time.monotonic()
            self._progress(f"gate {name}: waiting")
            last = _Check(False, "not checked yet")
            while True:
                last = checks[name]()
                if last.ok:
                    break
                if time.monotonic() >= deadline:
                    raise GateTimeout(self._explain(name, last.why))
                time.sleep(min(cfg.poll_s, max(0.0, deadline - time.monotonic())))
            result.durations[name] = time.monotonic() - started
            self._progress(f"gate {name}: passed in {result.durations[name]:.2f}s")
        result.passed_at = time.monotonic()
        return result

    # -- the four gates -------------------------------------------------------------------------

    def _workloads(self) -> _Check:
        workloads = self.cluster.workloads()
        if not workloads:
            return _Check(False, "the cluster reports no workloads at all")
        missing = [f"{w.kind}/{w.name} {w.available}/{w.desired}" for w in workloads if not w.is_available]
        if missing:
            line = "starting: " + ", ".join(missing)
            if line != self._last_note:
                self._last_note = line
                self._progress(line)
            return self._unless_stuck("workloads", "not available: " + ", ".join(missing))
        return _Check(True)

    def _endpoints(self) -> _Check:
        empty = [s for s in self.cluster.services() if not any(e.ready for e in self.cluster.endpoints(s))]
        if empty:
            return self._unless_stuck(
                "endpoints", "services without a ready endpoint: " + ", ".join(sorted(empty))
            )
        return _Check(True)

    def _unless_stuck(self, gate: str, why: str) -> _Check:
        """A miss to wait out - unless a container is stuck past its grace: then fail now."""
        stuck = self._stuck(self.cluster.pods())
        if stuck is not None:
            raise GateTimeout(self._explain(gate, why, stuck=stuck))
        return _Check(False, why)

    def _stuck(self, pods: list[PodStatus]) -> _Stuck | None:
        now, cfg = time.monotonic(), self.config
        seen: set[tuple[str, str, str]] = set()
        worst: _Stuck | None = None
        for pod in pods:
            for c in pod.containers:
                if c.ready:
                    continue
                if c.reason in FATAL_REASONS:
                    key, grace = (pod.name, c.name, c.reason), cfg.fail_fast_grace_s
                elif c.reason == CRASH_LOOP or (pod.name, c.name, CRASH_LOOP) in self._first_seen:
                    # a crash-looping container runs briefly between backoffs: it stays counted
                    key, grace = (pod.name, c.name, CRASH_LOOP), cfg.crashloop_grace_s
                else:
                    continue
                seen.add(key)
                since = now - self._first_seen.setdefault(key, now)
                if since >= grace and worst is None:
                    worst = _Stuck(pod=pod.name, container=c.name, reason=key[2], seen_s=since)
        for key in set(self._first_seen) - seen:  # healed, replaced or ready: start again
            del self._first_seen[key]
        return worst

    def _dns(self) -> _Check:
        pod = self._dns_pod()
        if pod is None:
            self._dns_ok = 0
            return _Check(
                False, f"no running pod of workload {self.config.dns_from_workload!r} to resolve from"
            )
        namespace, domain = self.cluster.namespace, self.config.cluster_domain
        for service in self.cluster.services():
            for name in (service, f"{service}.{namespace}.svc.{domain}"):
                try:
                    addresses = self.cluster.resolve_in_pod(pod.name, name)
                except Exception as e:  # any backend failure is a miss; the streak restarts
                    self._dns_ok = 0
                    return _Check(False, f"resolving {name!r} in pod {pod.name}: {type(e).__name__}: {e}")
                if not addresses:
                    self._dns_ok = 0
                    return _Check(False, f"{name!r} resolved to no address in pod {pod.name}")
        self._dns_ok += 1
        if self._dns_ok < self.config.dns_streak:
            return _Check(False, f"all names resolved {self._dns_ok}/{self.config.dns_streak} times in a row")
        return _Check(True)

    def _warmup(self) -> _Check:
        cfg = self.config
        address = self.cluster.service_address(cfg.warmup_service, cfg.warmup_port)
        url = address.url + cfg.warmup_path
        try:
            self._register(url, cfg.warmup_timeout_s)
        except Exception as e:
            self._warm_ok = 0
            return _Check(False, f"POST {url} failed: {type(e).__name__}: {e}")
        self._warm_ok += 1
        if self._warm_ok < cfg.warmup_streak:
            return _Check(False, f"{self._warm_ok}/{cfg.warmup_streak} warm-up registrations in a row")
        return _Check(True)

    # -- helpers --------------------------------------------------------------------------------

    def _dns_pod(self) -> PodStatus | None:
        for pod in self.cluster.pods():
            if pod.workload == self.config.dns_from_workload and pod.phase == "Running":
                return pod
        return None

    def _explain(self, gate: str, why: str, *, stuck: _Stuck | None = None) -> str:
        if stuck is None:
            lines = [f"readiness gate {gate!r} did not pass within {self.config.timeout_s:g}s."]
        else:
            lines = [
                f"readiness gate {gate!r} failed fast after {time.monotonic() - self._started:.1f}s: pod "
                f"{stuck.pod} container {stuck.container} is waiting with {stuck.reason} (seen for "
                f"{stuck.seen_s:.1f}s), which waiting longer does not cure."
            ]
        lines += [f"  expected: {_EXPECTED[gate]}", f"  seen: {why}"]
        if stuck is not None:
            lines.extend(self._events_of(stuck.pod))
        try:
            pods = self.cluster.pods()
        except Exception as e:
            lines.append(f"  (pod states unavailable: {type(e).__name__}: {e})")
            pods = []
        for pod in pods:
            lines.append(f"  pod {pod.name}: phase={pod.phase} ready={pod.ready}")
            for c in pod.containers:
                state = c.state + (f" ({c.reason})" if c.reason else "")
                lines.append(f"    container {c.name}: {state} restarts={c.restart_count}")
                if c.last_probe_error:
                    lines.append(f"      last probe error: {c.last_probe_error}")
            if not pod.ready:
                lines.extend(self._log_tail(pod.name))
        if stuck is None:
            lines.append(
                "  what to do: look at the pods above; raise --hft-gate-timeout if the machine is just slow."
            )
        else:
            lines.append(f"  what to do: {FATAL_REASONS.get(stuck.reason, _CRASH_LOOP_ADVICE)}.")
        return "\n".join(lines)

    def _events_of(self, pod: str) -> list[str]:
        try:
            events: list[ClusterEvent] = [
                e for e in self.cluster.events() if e.kind == "Pod" and e.name == pod
            ]
        except Exception as e:
            return [f"  (events unavailable: {type(e).__name__}: {e})"]
        if not events:
            return [f"  events of pod {pod}: none"]
        shown = events[-self.config.event_lines :]
        return [f"  events of pod {pod} (latest last):"] + [
            f"    {e.type} {e.reason}: {e.message}" for e in shown
        ]

    def _log_tail(self, pod: str) -> list[str]:
        try:
            text = self.cluster.pod_logs(pod, tail=self.config.log_tail)
        except Exception as e:
            return [f"    (logs unavailable: {type(e).__name__}: {e})"]
        return [f"    | {line}" for line in text.splitlines()[-self.config.log_tail :]]


_EXPECTED = {
    "workloads": "every Deployment and StatefulSet has its desired replicas available",
    "endpoints": "every Service has at least one ready endpoint",
    "dns": "every Service name, short and fully qualified, resolves from a backend pod several times in a row",
    "warmup": "consecutive warm-up registrations through nginx succeed",
}


def _post_ok(url: str, timeout: float) -> None:
    """A registration (``POST /v1/users {"name"}``) that must answer 2xx."""
    import httpx

    response = httpx.post(url, json={"name": f"warmup-{uuid.uuid4().hex[:12]}"}, timeout=timeout)
    if response.status_code // 100 != 2:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
