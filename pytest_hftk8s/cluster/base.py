"""The contract both cluster backends implement, and the plain status types they return.

Purely declarative: dataclasses and a Protocol. No I/O, no imports of backend modules, so the
gate and the orchestration can depend on it without pulling in ``kubernetes`` or cgroups. Each
backend brings its own chaos driver (:meth:`Cluster.chaos_driver`) and says what another process
needs to attach to it (:meth:`Cluster.share`); :mod:`.select` is the only place that names a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pytest_hftk8s.chaos.driver import ChaosDriver
    from pytest_hftk8s.results import PreflightCheck

#: A rendered Kubernetes object, as ``kubectl kustomize`` emits it (one YAML document, parsed).
KubeObject = Mapping[str, Any]


@dataclass(frozen=True)
class WorkloadStatus:
    """A Deployment or StatefulSet as ``kubectl get`` would summarise it."""

    kind: str
    name: str
    desired: int
    ready: int
    available: int

    @property
    def is_available(self) -> bool:
        return self.available >= self.desired


@dataclass(frozen=True)
class ContainerStatus:
    """One container of a pod; field meanings follow ``pod.status.containerStatuses``."""

    name: str
    ready: bool
    restart_count: int
    state: str  # "running" | "waiting" | "terminated"
    reason: str = ""  # e.g. "CrashLoopBackOff" while waiting, "OOMKilled" when terminated
    last_terminated_reason: str = ""
    last_probe_error: str = ""


@dataclass(frozen=True)
class PodStatus:
    name: str
    workload: str
    phase: str  # "Pending" | "Running" | "Succeeded" | "Failed"
    ip: str
    ready: bool
    containers: tuple[ContainerStatus, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """One address behind a Service, as in an EndpointSlice."""

    pod: str
    address: str
    port: int
    ready: bool


@dataclass(frozen=True)
class ClusterEvent:
    """A Kubernetes-style event (``kubectl get events``)."""

    timestamp: float
    kind: str
    name: str
    reason: str
    message: str
    type: str = "Normal"


@dataclass(frozen=True)
class ServiceAddress:
    """Where the test process reaches a Service port (a port-forward on kubernetes)."""

    host: str
    port: int
    extra: Mapping[str, str] = field(default_factory=dict)
    #: How the address reaches the Service: "loopback" (local cluster), "loadbalancer", "nodeport"
    #: or "port-forward" (in-process, through the API server: its threads share the generator's CPU).
    via: str = "loopback"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@runtime_checkable
class Cluster(Protocol):
    """What every backend offers. Methods are synchronous and bounded; none waits forever."""

    name: str  # "local" or the kube context
    namespace: str

    def apply(self, objects: Sequence[KubeObject]) -> None:
        """Create or update the rendered objects (server-side apply on kubernetes)."""

    def delete_all(self) -> None:
        """Remove everything this cluster object created. Idempotent; safe in ``finally``."""

    def workloads(self) -> list[WorkloadStatus]: ...

    def pods(self) -> list[PodStatus]: ...

    def services(self) -> list[str]: ...

    def endpoints(self, service: str) -> list[Endpoint]: ...

    def resolve_in_pod(self, pod: str, hostname: str) -> list[str]:
        """Resolve ``hostname`` the way processes inside ``pod`` resolve it (cluster DNS)."""

    def service_address(self, service: str, port: int | str) -> ServiceAddress:
        """An address the test process can connect to for ``service:port``."""

    def pod_logs(self, pod: str, *, container: str | None = None, tail: int = 200) -> str: ...

    def events(self) -> list[ClusterEvent]: ...

    def close(self) -> None:
        """Release client resources (port-forwards, connections). Does not delete objects."""

    def chaos_driver(
        self, *, run_id: str, allowed_contexts: Sequence[str], echo: Callable[[str], None]
    ) -> ChaosDriver:
        """This backend's chaos driver (Chaos Mesh objects, or the local primitives), bound to this
        cluster's namespace; it refuses contexts not in ``allowed_contexts`` before changing anything."""
        ...

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        """Check this cluster's prerequisites before anything is deployed: one row per check with
        what was found and what to do. ``images`` are the image references the manifests will run;
        ``chaos``: whether the session may inject chaos (its prerequisites are then checked too).
        Bounded; never changes the cluster."""
        ...

    def share(self) -> Mapping[str, str]:
        """What another process (an xdist worker) needs to attach to this deployed cluster through
        :func:`~pytest_hftk8s.cluster.select.attach_cluster`; plain strings, published as JSON."""
        ...


@runtime_checkable
class Sweeper(Protocol):
    """A backend whose cluster outlives a session (a kube context): it can remove what earlier runs
    left behind in the namespace - chaos objects and volumes the plugin labelled."""

    def sweep(self, *, keep_run_id: str | None) -> list[str]:
        """Delete the plugin's chaos objects and PVCs except those of run ``keep_run_id``; return what
        was removed (``Kind/name``). Bounded; reports objects stuck on finalizers instead of waiting."""
        ...


@runtime_checkable
class ForwardingCpu(Protocol):
    """A backend whose Service addresses may be in-process port-forwards: their threads share the
    load generator's process, so the generator's validity check counts their CPU too."""

    def forwarding_cpu_seconds(self) -> float:
        """CPU seconds this process spent forwarding so far (monotonic)."""
        ...


@runtime_checkable
class SecretReader(Protocol):
    """A backend that can read a Secret the user created (``--hft-db-secret``)."""

    def secret_value(self, name: str, key: str) -> str: ...
