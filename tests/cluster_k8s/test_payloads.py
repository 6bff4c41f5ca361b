"""Raw API payloads -> base status types, on the edge cases a live cluster produces."""

from __future__ import annotations

from pytest_hftk8s.cluster.base import ContainerStatus, Endpoint
from pytest_hftk8s.cluster.kubernetes.payloads import (
    map_endpoint_slices,
    map_event,
    map_pod,
    map_workload,
    probe_errors,
)


def test_a_pending_pod_without_container_statuses() -> None:
    pod = map_pod({"metadata": {"name": "engine-abc-1"}, "status": {"phase": "Pending"}})
    assert (pod.phase, pod.ready, pod.ip, pod.containers, pod.workload) == (
        "Pending",
        False,
        "",
        (),
        "engine-abc-1",
    )
    assert map_pod({}).phase == "Pending"


def test_container_states() -> None:
    pod = map_pod(
        {
            "metadata": {"name": "p", "ownerReferences": [{"kind": "ReplicaSet", "name": "engine-7f9"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "init-done", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
                    {"name": "starting", "state": {"waiting": {"reason": "ContainerCreating"}}},
                    {"name": "no-state"},
                ],
            },
        }
    )
    assert pod.workload == "engine"
    assert pod.containers == (
        ContainerStatus(
            name="init-done", ready=False, restart_count=0, state="terminated", reason="Completed"
        ),
        ContainerStatus(
            name="starting", ready=False, restart_count=0, state="waiting", reason="ContainerCreating"
        ),
        ContainerStatus(name="no-state", ready=False, restart_count=0, state="waiting", reason=""),
    )


def test_workload_defaults() -> None:
    w = map_workload("Deployment", {"metadata": {"name": "nginx"}, "spec": {"replicas": 0}})
    assert (w.desired, w.ready, w.available, w.is_available) == (0, 0, 0, True)


def test_endpoint_slices_without_ports_or_conditions() -> None:
    slices = [
        {"endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2"]}]},
        {
            "endpoints": [{"addresses": ["10.0.0.3"], "conditions": {"ready": None}}],
            "ports": [{"port": 1}, {"port": 2}],
        },
    ]
    assert map_endpoint_slices(slices) == [
        Endpoint(pod="", address="10.0.0.1", port=0, ready=True),
        Endpoint(pod="", address="10.0.0.2", port=0, ready=True),
        Endpoint(pod="", address="10.0.0.3", port=1, ready=True),
        Endpoint(pod="", address="10.0.0.3", port=2, ready=True),
    ]


def test_event_timestamps_fall_back() -> None:
    assert map_event({"eventTime": "2026-11-26T10:00:00.000000Z"}).timestamp == 1795687200.0
    assert map_event({"metadata": {"creationTimestamp": "2026-11-26T10:00:01Z"}}).timestamp == 1795687201.0
    assert map_event({"lastTimestamp": "yesterday"}).timestamp == 0.0


def test_probe_errors_keep_the_latest_per_container() -> None:
    def unhealthy(when: str, message: str, container: str = "backend") -> dict:
        return {
            "reason": "Unhealthy",
            "message": message,
            "lastTimestamp": when,
            "involvedObject": {"kind": "Pod", "name": "b-1", "fieldPath": f"spec.containers{{{container}}}"},
        }

    events = [
        unhealthy("2026-11-26T10:00:05Z", "newer"),
        unhealthy("2026-11-26T10:00:01Z", "older"),
        unhealthy("2026-11-26T10:00:02Z", "sidecar", container="proxy"),
        {"reason": "Killing", "involvedObject": {"kind": "Pod", "name": "b-1"}},
    ]
    assert probe_errors(events) == {"b-1": {"backend": "newer", "proxy": "sidecar"}}


UNSCHEDULABLE_POD = {  # as a v1.33 API server returns a pod no node can take
    "metadata": {
        "name": "backend-7c9d8f6b5-x2k4p",
        "ownerReferences": [{"kind": "ReplicaSet", "name": "backend-7c9d8f6b5", "controller": True}],
    },
    "spec": {"containers": [{"name": "backend", "image": "hftk8s/backend:0.1.0"}]},
    "status": {
        "phase": "Pending",
        "qosClass": "Burstable",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
                "lastTransitionTime": "2026-11-26T10:00:00Z",
            }
        ],
    },
}


def test_an_unschedulable_pod_says_so_on_each_container() -> None:
    pod = map_pod(UNSCHEDULABLE_POD)
    assert (pod.workload, pod.phase, pod.ready, pod.ip) == ("backend", "Pending", False, "")
    assert pod.containers == (
        ContainerStatus(
            name="backend", ready=False, restart_count=0, state="waiting", reason="Unschedulable"
        ),
    )
    # merely not scheduled yet (no reason): nothing to report
    pending = {
        **UNSCHEDULABLE_POD,
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]},
    }
    assert map_pod(pending).containers == ()


def test_a_waiting_init_container_is_shown_a_finished_one_is_not() -> None:
    pod = map_pod(
        {
            "metadata": {"name": "p"},
            "status": {
                "phase": "Pending",
                "initContainerStatuses": [
                    {"name": "done", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
                    {
                        "name": "fetch",
                        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}},
                    },
                ],
                "containerStatuses": [
                    {"name": "main", "state": {"waiting": {"reason": "PodInitializing"}}, "restartCount": 0}
                ],
            },
        }
    )
    assert [(c.name, c.reason) for c in pod.containers] == [
        ("main", "PodInitializing"),
        ("fetch", "ImagePullBackOff"),
    ]
