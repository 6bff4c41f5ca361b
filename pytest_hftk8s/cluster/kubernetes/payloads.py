"""Raw Kubernetes API payloads (TypedDicts) and their mapping onto the backend-neutral status types.

Purely data-manipulative: dicts in, :mod:`pytest_hftk8s.cluster.base` dataclasses out. No I/O and no
``kubernetes`` import, so the mapping rules (CrashLoopBackOff, OOMKilled, endpoint readiness) are
testable on plain JSON. The reasons a pod cannot start are carried where the backend-neutral gate
reads them, a container's waiting ``reason``: the kubelet's own (ImagePullBackOff, ErrImagePull,
CreateContainerConfigError, CrashLoopBackOff, also of a blocking init container), and the scheduler's
``PodScheduled=False`` reason ``Unschedulable`` on each container of a pod no node can take (such a
pod has no container statuses at all).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from pytest_hftk8s.cluster.base import ClusterEvent, ContainerStatus, Endpoint, PodStatus, WorkloadStatus

__all__ = [
    "EndpointSlicePayload",
    "EventPayload",
    "PodPayload",
    "WorkloadPayload",
    "map_endpoint_slices",
    "map_event",
    "map_pod",
    "map_workload",
    "parse_getent",
    "probe_errors",
]


class ObjectMetaPayload(TypedDict, total=False):
    name: str
    namespace: str
    labels: dict[str, str]
    ownerReferences: list[dict[str, Any]]


class ContainerStatePayload(TypedDict, total=False):
    running: dict[str, Any]
    waiting: dict[str, Any]  # {"reason": "CrashLoopBackOff", "message": ...}
    terminated: dict[str, Any]  # {"reason": "OOMKilled", "exitCode": 137, ...}


class ContainerStatusPayload(TypedDict, total=False):
    name: str
    ready: bool
    restartCount: int
    state: ContainerStatePayload
    lastState: ContainerStatePayload


class PodStatusPayload(TypedDict, total=False):
    phase: str
    podIP: str
    conditions: list[dict[str, Any]]  # {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    containerStatuses: list[ContainerStatusPayload]
    initContainerStatuses: list[ContainerStatusPayload]


class PodPayload(TypedDict, total=False):
    metadata: ObjectMetaPayload
    spec: dict[str, Any]
    status: PodStatusPayload


class WorkloadPayload(TypedDict, total=False):
    kind: str
    metadata: ObjectMetaPayload
    spec: dict[str, Any]
    status: dict[str, Any]


class EndpointSlicePayload(TypedDict, total=False):
    metadata: ObjectMetaPayload
    endpoints: list[dict[str, Any]]
    ports: list[dict[str, Any]]


class EventPayload(TypedDict, total=False):
    involvedObject: dict[str, Any]
    reason: str
    message: str
    type: str
    lastTimestamp: str | None
    eventTime: str | None
    firstTimestamp: str | None
    metadata: dict[str, Any]


def map_workload(kind: str, obj: WorkloadPayload) -> WorkloadStatus:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    replicas = spec.get("replicas")
    return WorkloadStatus(
        kind=kind,
        name=obj.get("metadata", {}).get("name", ""),
        desired=1 if replicas is None else int(replicas),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
    )


def _workload_of(meta: ObjectMetaPayload) -> str:
    # A Deployment's pod is owned by a ReplicaSet named "<deployment>-<pod-template-hash>".
    for owner in meta.get("ownerReferences") or []:
        name = str(owner.get("name", ""))
        if owner.get("kind") == "ReplicaSet" and "-" in name:
            return name.rsplit("-", 1)[0]
        if name:
            return name
    return meta.get("name", "")


def _state(state: ContainerStatePayload | None) -> tuple[str, str]:
    for key in ("waiting", "terminated", "running"):
        if state and key in state:
            return key, str((state.get(key) or {}).get("reason") or "")  # type: ignore[misc]
    return "waiting", ""


def map_pod(obj: PodPayload, *, probe_error: Mapping[str, str] | None = None) -> PodStatus:
    """``probe_error`` maps container name to its last failed probe message (from events)."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    containers = []
    statuses = list(status.get("containerStatuses") or [])
    # An init container that waits (image pull, config) holds the whole pod: show it, as kubectl does.
    statuses += [
        cs for cs in status.get("initContainerStatuses") or [] if _state(cs.get("state"))[0] == "waiting"
    ]
    for cs in statuses:
        state, reason = _state(cs.get("state"))
        last = (cs.get("lastState") or {}).get("terminated") or {}
        containers.append(
            ContainerStatus(
                name=cs.get("name", ""),
                ready=bool(cs.get("ready")),
                restart_count=int(cs.get("restartCount") or 0),
                state=state,
                reason=reason,
                last_terminated_reason=str(last.get("reason") or ""),
                last_probe_error=(probe_error or {}).get(cs.get("name", ""), ""),
            )
        )
    unschedulable = any(
        c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
        for c in status.get("conditions") or []
    )
    if unschedulable and not statuses:
        containers = [
            ContainerStatus(
                name=str(c.get("name", "")),
                ready=False,
                restart_count=0,
                state="waiting",
                reason="Unschedulable",
            )
            for c in (obj.get("spec") or {}).get("containers") or []
        ] or [ContainerStatus(name="", ready=False, restart_count=0, state="waiting", reason="Unschedulable")]
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return PodStatus(
        name=meta.get("name", ""),
        workload=_workload_of(meta),
        phase=status.get("phase") or "Pending",
        ip=status.get("podIP") or "",
        ready=ready,
        containers=tuple(containers),
    )


def map_endpoint_slices(slices: Iterable[EndpointSlicePayload]) -> list[Endpoint]:
    """One :class:`Endpoint` per address and port. An unset ``ready`` counts as ready (API docs)."""
    result: list[Endpoint] = []
    for eps in slices:
        ports = [int(p["port"]) for p in eps.get("ports") or [] if p.get("port") is not None] or [0]
        for ep in eps.get("endpoints") or []:
            ready = (ep.get("conditions") or {}).get("ready")
            pod = str((ep.get("targetRef") or {}).get("name") or "")
            for address in ep.get("addresses") or []:
                for port in ports:
                    result.append(Endpoint(pod=pod, address=address, port=port, ready=ready is not False))
    return result


def _timestamp(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def map_event(obj: EventPayload) -> ClusterEvent:
    involved = obj.get("involvedObject") or {}
    when = obj.get("lastTimestamp") or obj.get("eventTime") or obj.get("firstTimestamp")
    if not when:
        when = (obj.get("metadata") or {}).get("creationTimestamp")
    return ClusterEvent(
        timestamp=_timestamp(when),
        kind=str(involved.get("kind") or ""),
        name=str(involved.get("name") or ""),
        reason=obj.get("reason") or "",
        message=obj.get("message") or "",
        type=obj.get("type") or "Normal",
    )


def probe_errors(events: Iterable[EventPayload]) -> dict[str, dict[str, str]]:
    """``{pod: {container: message}}`` of the latest ``Unhealthy`` event per container."""
    latest: dict[tuple[str, str], tuple[float, str]] = {}
    for obj in events:
        involved = obj.get("involvedObject") or {}
        if obj.get("reason") != "Unhealthy" or involved.get("kind") != "Pod":
            continue
        field = str(involved.get("fieldPath") or "")  # "spec.containers{backend}"
        container = field.partition("{")[2].rstrip("}") if "{" in field else ""
        key = (str(involved.get("name") or ""), container)
        event = map_event(obj)
        if key not in latest or event.timestamp >= latest[key][0]:
            latest[key] = (event.timestamp, event.message)
    result: dict[str, dict[str, str]] = {}
    for (pod, container), (_, message) in latest.items():
        result.setdefault(pod, {})[container] = message
    return result


def parse_getent(output: str) -> list[str]:
    """Unique addresses, in order, from ``getent ahosts NAME`` output (address first on each line)."""
    seen: list[str] = []
    for line in output.splitlines():
        fields = line.split()
        if fields and fields[0] not in seen:
            seen.append(fields[0])
    return seen
