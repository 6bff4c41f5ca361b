"""The controller behind the emulated API: it makes applied objects real with the local cluster.

What kube-controller-manager, the scheduler, the kubelet and Chaos Mesh do on a real cluster, done
by reusing :mod:`pytest_hftk8s.cluster.local` (one :class:`LocalCluster` per namespace):

* **workloads**: once a namespace's Deployments, StatefulSets, Services, ConfigMaps and Secrets have
  settled, they are applied to a local cluster: real processes with cgroup limits and probes;
* **status**, written back the way the kubelet and controllers write it, from the local pods' lives:
  Pods (phase, conditions, ``containerStatuses`` with ``restartCount``, ``state.waiting.reason``,
  ``lastState.terminated.reason``), Deployment and StatefulSet status, EndpointSlices, Events, a
  ``clusterIP`` per Service and, for a LoadBalancer Service, ``status.loadBalancer.ingress``: the
  loopback address of a ready pod behind it (like OrbStack's host address; no balancing across pods);
* **subresources**: ``pods/exec`` runs the command in the local container's namespaces,
  ``pods/portforward`` connects to the local pod, ``pods/log`` reads its log, and the node proxy's
  ``/metrics/cadvisor`` is the local exporter's cAdvisor series;
* **images**: the platform's and the servers' images run as the local image table says; an image it
  does not know, or one made unpullable by a fault, leaves its pods in ImagePullBackOff;
* **Chaos Mesh**: StressChaos, PodChaos and NetworkChaos objects are carried out by the local chaos
  driver (selector and mode as Chaos Mesh reads them), their status written in Chaos Mesh's shape
  (``AllInjected`` / ``AllRecovered``, ``containerRecords``, the ``chaos-mesh/records`` finalizer);
  zero selected pods is Chaos Mesh's failed selection (``Selected=False``, a Warning event);
* **faults** (:class:`Faults`) for the failure paths: an unpullable image, a pod the scheduler cannot
  place, a chaos finalizer never released.

It runs on its own thread: it reads a snapshot of the store on the API's loop, does the local work
off it, and writes the statuses back in one step. It must not judge anything.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_hftk8s.chaos.driver import ChaosRun
from pytest_hftk8s.chaos.experiments import Experiment, from_object
from pytest_hftk8s.cluster.base import ClusterEvent, ContainerStatus, PodStatus
from pytest_hftk8s.cluster.emulated.apiserver import CHAOS_GROUP, ApiServer, ExecResult, ServedApi
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos
from pytest_hftk8s.cluster.local.discovery import NODE_NAME
from pytest_hftk8s.cluster.local.images import IMAGES, repository
from pytest_hftk8s.errors import ChaosError, ClusterError, ConfigError, HftError

__all__ = ["FAULTS", "NODE_NAME", "Bridge", "Faults"]

NODE_IP = "127.0.0.1"
WORKLOADS = {"Deployment": "apps/v1/deployments", "StatefulSet": "apps/v1/statefulsets"}
#: Written by the bridge, never by the client: the bridge replaces them whole.
OWNED = ("v1/pods", "discovery.k8s.io/v1/endpointslices")
NOT_DEPLOYED = {"v1/pods", "v1/events", "discovery.k8s.io/v1/endpointslices"}
#: On the objects that stand for what the local cluster itself provides (chaos-daemon, kube-state-metrics).
STAND_IN = "hftk8s.io/emulated-by"
CHAOS_KINDS = {"stresschaos": "StressChaos", "podchaos": "PodChaos", "networkchaos": "NetworkChaos"}
FINALIZER = "chaos-mesh/records"
SELECT_FAILED = "Failed to select targets: no pod is selected"
#: Fault switches (``--hft-emulate-fault NAME=VALUE``): the value each takes and what it makes happen.
FAULTS = {
    "unpullable": ("<workload>", "its images cannot be pulled: its pods stay in ImagePullBackOff"),
    "unschedulable": ("<workload>", "no node can take its pods: they stay Pending (PodScheduled=False)"),
    "stuck-finalizer": ("<StressChaos|PodChaos|NetworkChaos|all>", "the kind's chaos objects keep their "
                        "finalizer after deletion, as when chaos-controller-manager is down (the local "
                        "fault is removed all the same)"),
    "missing": ("<chaos-mesh|storage-class>", "the cluster never had it installed"),
    "unready": ("<chaos-daemon>", "its DaemonSet has no ready pod"),
    "deny": ("<verb>:<resource>", "RBAC refuses that verb (a SelfSubjectAccessReview answers not allowed)"),
}  # fmt: skip
_CHOICES = {
    "stuck-finalizer": (*CHAOS_KINDS.values(), "all"),
    "missing": ("chaos-mesh", "storage-class"),
    "unready": ("chaos-daemon",),
}


@dataclass(frozen=True)
class Faults:
    """Which failure paths the emulated cluster plays (see :data:`FAULTS`)."""

    unpullable: frozenset[str] = frozenset()
    unschedulable: frozenset[str] = frozenset()
    stuck_finalizers: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    unready: frozenset[str] = frozenset()
    denied: frozenset[str] = frozenset()  # "verb resource", as the API server's access reviews name them

    @classmethod
    def parse(cls, values: Sequence[str]) -> Faults:
        """``["unpullable=backend", "deny=create:stresschaos"]`` -> :class:`Faults`; bad ones raise."""
        found: dict[str, set[str]] = {name: set() for name in FAULTS}
        for value in values:
            name, sep, target = (s.strip() for s in value.partition("="))
            if name not in FAULTS or not sep or not target:
                listed = "; ".join(f"{n}={v}: {d}" for n, (v, d) in FAULTS.items())
                raise ConfigError(f"--hft-emulate-fault: expected NAME=VALUE, one of {listed}; got {value!r}")
            if name in _CHOICES and target not in _CHOICES[name]:
                raise ConfigError(
                    f"--hft-emulate-fault {name}: expected one of {', '.join(_CHOICES[name])}; got {target!r}"
                )
            if name == "deny":
                verb, colon, resource = target.partition(":")
                if not colon or not verb or not resource:
                    raise ConfigError(f"--hft-emulate-fault deny: expected <verb>:<resource>; got {target!r}")
                target = f"{verb} {resource}"
            found[name].add(target)
        return cls(frozenset(found["unpullable"]), frozenset(found["unschedulable"]),
                   frozenset(found["stuck-finalizer"]), frozenset(found["missing"]), frozenset(found["unready"]),
                   frozenset(found["deny"]))  # fmt: skip


def _now(at: float | None = None) -> str:
    moment = datetime.datetime.fromtimestamp(time.time() if at is None else at, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(value: Any, n: int) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 2 * n, 2))


def _uid(*parts: str) -> str:
    h = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _resource(key: Any) -> str:
    res = key[0]
    return f"{res.group}/{res.version}/{res.plural}".lstrip("/")


def _exit_code(reason: str) -> int:
    return {"OOMKilled": 137, "Completed": 0}.get(reason, 1)


@dataclass
class _Held:
    """A workload the bridge does not run, and why (a fault or an image it cannot map)."""

    reason: str  # "ImagePullBackOff" | "Unschedulable"
    message: str
    image: str = ""


@dataclass
class _Space:
    """One namespace made real: its local cluster and what was applied to it."""

    fingerprint: str
    cluster: LocalCluster | None = None
    chaos: LocalChaos | None = None
    held: dict[str, _Held] = field(default_factory=dict)
    born: dict[str, float] = field(default_factory=dict)  # pod -> first seen
    events_after: float = 0.0
    extra_events: collections.deque[ClusterEvent] = field(default_factory=collections.deque)
    said: set[tuple[str, str, str]] = field(default_factory=set)  # (object, reason, message) emitted once

    def once(self, event: ClusterEvent) -> None:
        """Emit ``event`` unless the same object, reason and message was emitted already."""
        marker = (event.name, event.reason, event.message)
        if marker not in self.said:
            self.said.add(marker)
            self.extra_events.append(event)

    error: str = ""


@dataclass
class _Experiment:
    key: Any
    namespace: str
    kind: str
    name: str
    uid: str
    run: ChaosRun | None = None
    future: concurrent.futures.Future[Any] | None = None
    removing: concurrent.futures.Future[Any] | None = None
    status: dict[str, Any] | None = None
    released: bool = False


class Bridge:
    """Reconciles the emulated API with local clusters; :meth:`stop` removes every pod and fault."""

    def __init__(
        self,
        served: ServedApi,
        *,
        state_dir: Path,
        backoff_scale: float = 1.0,
        faults: Faults | None = None,
        progress: Callable[[str], None] | None = None,
        interval: float = 0.2,
        settle: float = 0.4,
    ) -> None:
        self.served = served
        self.api: ApiServer = served.api
        self.state_dir = state_dir
        self.backoff_scale = backoff_scale
        self.faults = faults or Faults()
        self.progress = progress or (lambda _m: None)
        self.interval = interval
        self.settle = settle
        self.errors: list[str] = []
        self._spaces: dict[str, _Space] = {}
        self._pending: dict[str, tuple[str, float]] = {}  # namespace -> (fingerprint, first seen)
        self._experiments: dict[Any, _Experiment] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="hft-bridge")
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="hft-bridge", daemon=True)
        self.api.exec_hook = self._exec
        self.api.forward_hook = self._forward
        self.api.log_hook = self._log
        self.api.node_proxy_hook = self._node_proxy

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop reconciling, remove every live chaos and delete every local pod (bounded)."""
        self._stop.set()
        self._thread.join(timeout=timeout)
        with self._lock:
            for exp in list(self._experiments.values()):
                self._remove_local(exp)
            for space in self._spaces.values():
                self._teardown(space)
            self._spaces.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def deployed(self) -> list[str]:
        """The namespaces that run local pods now."""
        with self._lock:
            return sorted(ns for ns, space in self._spaces.items() if space.cluster is not None)

    def local_cluster(self, namespace: str) -> LocalCluster | None:
        """The local cluster a namespace runs on (None before its workloads settled).

        Lock-free (one dict read): the API's loop calls it, and must not wait while a reconcile
        deploys or tears down a local cluster."""
        space = self._spaces.get(namespace)
        return space.cluster if space else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reconcile()
            except Exception as e:  # keep reconciling; the gate and the driver say what did not happen
                error = f"{type(e).__name__}: {e}"
                if error not in self.errors:
                    self.progress(f"emulated cluster: reconciling failed ({error}); retrying")
                self.errors.append(error)
                del self.errors[:-20]

    # -- one pass ---------------------------------------------------------------------------------

    def reconcile(self) -> None:
        snapshot = self.served.locked(self._snapshot)
        with self._lock:
            now = time.monotonic()
            for ns, objects in snapshot["deployable"].items():
                has_workloads = any(o.get("kind") in WORKLOADS for o in objects)
                space = self._spaces.get(ns)
                if not has_workloads:
                    if space is not None:
                        self._teardown(space)
                        del self._spaces[ns]
                    self._pending.pop(ns, None)
                    continue
                fingerprint = _fingerprint(objects)
                if space is not None and space.fingerprint == fingerprint:
                    continue
                seen, since = self._pending.get(ns, ("", now))
                if seen != fingerprint:
                    self._pending[ns] = (fingerprint, now)
                    continue
                if now - since < self.settle:
                    continue
                del self._pending[ns]
                if space is not None:
                    self._teardown(space)
                self._spaces[ns] = self._deploy(ns, objects, fingerprint)
            for ns in [n for n in self._spaces if n not in snapshot["deployable"]]:
                self._teardown(self._spaces.pop(ns))
            writes = {ns: self._status(ns, space, snapshot) for ns, space in self._spaces.items()}
            chaos_writes = self._chaos(snapshot["chaos"])
        self.served.locked(lambda: self._write(writes, chaos_writes, snapshot))

    def _snapshot(self) -> dict[str, Any]:
        deployable: dict[str, list[dict[str, Any]]] = {}
        chaos: list[tuple[Any, dict[str, Any]]] = []
        owned: dict[str, set[tuple[str, str]]] = {}
        for key, obj in list(self.api.objects.items()):
            if obj.deleted or key[1] is None:
                continue
            resource = _resource(key)
            if key[0].group == CHAOS_GROUP and key[0].plural in CHAOS_KINDS:
                chaos.append((key, obj.raw))
            elif resource in OWNED:
                owned.setdefault(key[1], set()).add((resource, key[2]))
            elif resource not in NOT_DEPLOYED and key[0].group != CHAOS_GROUP:
                raw = obj.raw
                if STAND_IN not in ((raw.get("metadata") or {}).get("annotations") or {}):
                    deployable.setdefault(key[1], []).append(raw)
        return {"deployable": deployable, "chaos": chaos, "owned": owned}

    # -- deploy and tear down ---------------------------------------------------------------------

    def _deploy(self, ns: str, objects: list[dict[str, Any]], fingerprint: str) -> _Space:
        space = _Space(fingerprint=fingerprint)
        for obj in objects:
            if obj.get("kind") not in WORKLOADS:
                continue
            name = obj["metadata"]["name"]
            containers = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get(
                "containers"
            ) or []
            unknown = next((c for c in containers if repository(str(c.get("image", ""))) not in IMAGES
                            and not c.get("command")), None)  # fmt: skip
            if name in self.faults.unschedulable:
                space.held[name] = _Held("Unschedulable", "0/1 nodes are available: 1 Insufficient cpu. "
                                         "preemption: 0/1 nodes are available: 1 No preemption victims found "
                                         "for incoming pod. (emulated fault: unschedulable)")  # fmt: skip
            elif name in self.faults.unpullable or unknown is not None:
                image = str((unknown or (containers[0] if containers else {})).get("image", ""))
                why = "emulated fault: unpullable" if name in self.faults.unpullable else "no local mapping"
                space.held[name] = _Held(
                    "ImagePullBackOff", f'Back-off pulling image "{image}"', image=f"{image} ({why})"
                )
        run = [o for o in objects if not (o.get("kind") in WORKLOADS and o["metadata"]["name"] in space.held)]
        cluster = LocalCluster(
            namespace=ns,
            state_dir=self.state_dir / "emulated" / ns,
            backoff_scale=self.backoff_scale,
            progress=self.progress,
        )
        try:
            if any(o.get("kind") in WORKLOADS for o in run):
                cluster.apply(run)
        except HftError as e:
            space.error = f"{type(e).__name__}: {e}"
            self.errors.append(f"{ns}: {space.error}")
        space.cluster = cluster
        space.chaos = LocalChaos(cluster, run_id=cluster.run_id, echo=lambda _m: None)
        return space

    def _teardown(self, space: _Space) -> None:
        namespace = space.cluster.namespace if space.cluster is not None else None
        for exp in list(self._experiments.values()):
            if exp.run is not None and exp.run.namespace == namespace:
                self._remove_local(exp)
        if space.cluster is not None:
            with contextlib.suppress(Exception):
                space.cluster.delete_all()
            space.cluster = None

    # -- status -----------------------------------------------------------------------------------

    def _status(self, ns: str, space: _Space, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """Everything to write for one namespace: (resource, name) -> object or status."""
        objects = {(o.get("kind"), o["metadata"]["name"]): o for o in snapshot["deployable"][ns]}
        cluster = space.cluster
        pods = cluster.pods() if cluster is not None and not space.error else []
        now = time.time()
        desired_pods: dict[str, dict[str, Any]] = {}
        per_workload: dict[str, list[dict[str, Any]]] = {}
        for p in pods:
            workload = objects.get(("Deployment", p.workload)) or objects.get(("StatefulSet", p.workload))
            if workload is None:
                continue
            born = space.born.setdefault(p.name, now)
            pod = _pod(ns, p, workload, born)
            desired_pods[p.name] = pod
            per_workload.setdefault(p.workload, []).append(pod)
        for name, held in space.held.items():
            workload = objects.get(("Deployment", name)) or objects.get(("StatefulSet", name))
            if workload is None:
                continue
            for pod in _held_pods(ns, workload, held, space.born.setdefault(f"held/{name}", now)):
                desired_pods[pod["metadata"]["name"]] = pod
                per_workload.setdefault(name, []).append(pod)
                for reason, message in _held_events(held):
                    space.once(ClusterEvent(now, "Pod", pod["metadata"]["name"], reason, message, "Warning"))
        workloads = {}
        for (kind, name), obj in objects.items():
            if kind in WORKLOADS:
                workloads[(WORKLOADS[kind], name)] = _workload_status(
                    kind, name, obj, per_workload.get(name, [])
                )
        services: dict[str, dict[str, Any]] = {}
        slices: dict[str, dict[str, Any]] = {}
        for (kind, name), svc in objects.items():
            if kind != "Service":
                continue
            services[name] = self._service(ns, name, svc, cluster if pods else None)
            if pods and cluster is not None and (svc.get("spec") or {}).get("selector"):
                slices[f"{name}-{_hash(name, 5)}"] = _slice(ns, name, svc, cluster)
        events = []
        if cluster is not None:
            fresh = [e for e in cluster.events() if e.timestamp > space.events_after]
            if fresh:
                space.events_after = fresh[-1].timestamp
            events = fresh
        if space.error:
            for (kind, name), _obj in objects.items():
                if kind in WORKLOADS:
                    space.once(ClusterEvent(now, kind, name, "FailedCreate", space.error, "Warning"))
        while space.extra_events:  # the chaos workers append from their threads: drain, never replace
            events.append(space.extra_events.popleft())
        return {"pods": desired_pods, "workloads": workloads, "services": services, "slices": slices,
                "events": events}  # fmt: skip

    def _service(
        self, ns: str, name: str, svc: Mapping[str, Any], cluster: LocalCluster | None
    ) -> dict[str, Any]:
        spec = svc.get("spec") or {}
        changes: dict[str, Any] = {}
        if not spec.get("clusterIP"):
            digest = int(hashlib.sha256(f"{ns}/{name}".encode()).hexdigest(), 16)
            ip = f"10.96.{digest % 250 + 1}.{digest // 250 % 250 + 1}"
            changes["spec"] = {"clusterIP": ip, "clusterIPs": [ip]}
        if spec.get("type") == "LoadBalancer":
            ingress: list[dict[str, str]] = []
            if cluster is not None:
                with contextlib.suppress(ClusterError):
                    hosts = set()
                    for port in spec.get("ports") or []:
                        address = cluster.service_address(name, port["port"])
                        hosts.add(address.host if address.port == int(port["port"]) else "")
                    if len(hosts) == 1 and "" not in hosts:
                        ingress = [{"ip": hosts.pop(), "ipMode": "VIP"}]
            changes["status"] = {"loadBalancer": {"ingress": ingress} if ingress else {}}
        return changes

    def _write(
        self, writes: Mapping[str, Any], chaos_writes: list[tuple[Any, Any]], snapshot: Mapping[str, Any]
    ) -> None:
        objects = self.api.objects
        for ns, w in writes.items():
            for name, pod in w["pods"].items():
                _replace(objects, ("v1/pods", ns, name), pod)
            for name, piece in w["slices"].items():
                _replace(objects, ("discovery.k8s.io/v1/endpointslices", ns, name), piece)
            for plural, name in snapshot["owned"].get(ns, set()):
                keep = w["pods"] if plural == "v1/pods" else w["slices"]
                if name not in keep and (found := _live(objects, (plural, ns, name))) is not None:
                    found.delete()
            for (resource, name), status in w["workloads"].items():
                _patch_status(objects, (resource, ns, name), status)
            for name, changes in w["services"].items():
                key = ("v1/services", ns, name)
                if (found := _live(objects, key)) is not None:
                    if "spec" in changes:
                        found.patch({"spec": changes["spec"]})
                    if "status" in changes:
                        _patch_status(objects, key, changes["status"])
            for event in w["events"]:
                _event(objects, ns, event)
        for ns in snapshot["owned"]:
            if ns not in writes:
                for plural, name in snapshot["owned"][ns]:
                    if (found := _live(objects, (plural, ns, name))) is not None:
                        found.delete()
        for key, change in chaos_writes:
            if (found := _live(objects, key)) is None:
                continue
            if change == "release":
                found.delete()
            else:
                found.patch(change)

    # -- chaos ------------------------------------------------------------------------------------

    def _chaos(self, listed: list[tuple[Any, dict[str, Any]]]) -> list[tuple[Any, Any]]:
        writes: list[tuple[Any, Any]] = []
        present = set()
        for key, obj in listed:
            present.add(key)
            meta = obj.get("metadata") or {}
            exp = self._experiments.get(key)
            if exp is None or exp.uid != meta.get("uid", meta.get("creationTimestamp", "")):
                exp = _Experiment(key=key, namespace=key[1], kind=str(obj.get("kind") or CHAOS_KINDS[key[0].plural]),
                                  name=key[2], uid=meta.get("uid", meta.get("creationTimestamp", "")))  # fmt: skip
                self._experiments[key] = exp
                writes.append((key, {"metadata": {"finalizers": [FINALIZER]}}))
                self._chaos_event(exp, "Normal", "FinalizerInited", "Finalizer has been inited")
                exp.future = self._pool.submit(self._inject, exp, obj)
                continue
            if exp.future is not None and exp.future.done() and exp.status is not None:
                writes.append((key, {"status": exp.status}))
                exp.status = None
            if meta.get("deletionTimestamp") and exp.future is not None and exp.future.done():
                if exp.removing is None:
                    exp.removing = self._pool.submit(self._remove_local, exp)
                elif exp.removing.done() and not exp.released:
                    exp.released = True
                    if {exp.kind, "all"} & self.faults.stuck_finalizers:
                        # As when chaos-controller-manager is down: no status, the finalizer stays. The
                        # local fault is gone all the same: the bridge never leaves anything injected.
                        continue
                    records = [{**r, "phase": "Not Injected", "recoveredCount": r.get("injectedCount", 0)}
                               for r in _records(obj)]  # fmt: skip
                    writes.append((key, {"status": {"conditions": _conditions(True, True, True),
                                                    "experiment": {"desiredPhase": "Stop",
                                                                   "containerRecords": records or None}}}))  # fmt: skip
                    writes.append((key, {"metadata": {"finalizers": None}}))
                    writes.append((key, "release"))
        for key in [k for k in self._experiments if k not in present]:
            exp = self._experiments.pop(key)
            self._pool.submit(self._remove_local, exp)
        return writes

    def _inject(self, exp: _Experiment, obj: dict[str, Any]) -> None:
        space = self._spaces.get(exp.namespace)
        try:
            experiment: Experiment = from_object(obj)
        except ConfigError as e:
            self._failed(exp, f"the emulated chaos-daemon cannot carry this object out: {e}")
            return
        namespaces = ((obj.get("spec") or {}).get("selector") or {}).get("namespaces") or [exp.namespace]
        space = self._spaces.get(namespaces[0]) if namespaces else space
        if space is None or space.chaos is None:
            self._unselected(exp)
            return
        try:
            run = space.chaos.start(experiment, name=exp.name)
        except ChaosError as e:
            if "selects nothing" in str(e):
                self._unselected(exp)
            else:
                self._failed(exp, str(e))
            return
        exp.run = run
        ns = namespaces[0]
        # Chaos Mesh records containers for StressChaos and container-kill, pods for the rest.
        per_container = exp.kind == "StressChaos" or (obj.get("spec") or {}).get("action") == "container-kill"
        records: list[dict[str, Any]] = []
        for record in run.records:
            rid = str(record.get("id", ""))
            pod, container = str(record.get("pod") or rid.split("/")[0]), record.get("container")
            rid = f"{ns}/{pod}/{container}" if per_container and container else f"{ns}/{pod}"
            if any(r["id"] == rid for r in records):
                continue
            records.append({
                "id": rid,
                "phase": "Injected", "selectorKey": ".", "injectedCount": 1, "recoveredCount": 0,
                "events": [{"type": "Succeeded", "operation": "Apply", "timestamp": _now()}],
            })  # fmt: skip
            notes = "; ".join(str(e) for e in record.get("events") or [])
            self._chaos_event(exp, "Normal", "Applied", f"Successfully apply chaos for {records[-1]['id']}"
                              + (f" ({notes})" if notes else ""))  # fmt: skip
        exp.status = {"conditions": _conditions(True, True, False),
                      "experiment": {"desiredPhase": "Run", "containerRecords": records}}  # fmt: skip

    def _unselected(self, exp: _Experiment) -> None:
        """What Chaos Mesh 2.x leaves when nothing matches (chaos-mesh/chaos-mesh#3374)."""
        self._chaos_event(exp, "Warning", "Failed", SELECT_FAILED)
        conditions = _conditions(False, True, True)
        exp.status = {"conditions": conditions, "experiment": {"desiredPhase": "Run"}}

    def _failed(self, exp: _Experiment, message: str) -> None:
        self._chaos_event(exp, "Warning", "Failed", f"Failed to apply chaos: {message}")
        record = {"id": f"{exp.namespace}/{exp.name}", "phase": "Not Injected", "selectorKey": ".",
                  "injectedCount": 0, "recoveredCount": 0,
                  "events": [{"type": "Failed", "operation": "Apply", "message": message, "timestamp": _now()}]}  # fmt: skip
        exp.status = {"conditions": _conditions(True, False, False),
                      "experiment": {"desiredPhase": "Run", "containerRecords": [record]}}  # fmt: skip

    def _remove_local(self, exp: _Experiment) -> None:
        if exp.run is None:
            return
        space = self._spaces.get(exp.run.namespace)
        chaos = space.chaos if space is not None else None
        if chaos is not None:
            with contextlib.suppress(Exception):
                chaos.remove(exp.run)
        exp.run = None

    def _chaos_event(self, exp: _Experiment, kind: str, reason: str, message: str) -> None:
        space = self._spaces.get(exp.namespace)
        event = ClusterEvent(time.time(), exp.kind, exp.name, reason, message, kind)
        if space is not None:
            space.extra_events.append(event)
        else:
            self.served.loop.call_soon_threadsafe(_event, self.api.objects, exp.namespace, event)

    # -- subresources (on the API's loop: blocking work goes to the pool) ---------------------------

    async def _exec(self, ns: str, pod: str, container: str, argv: list[str]) -> ExecResult:
        cluster = self.local_cluster(ns)
        if cluster is None or not argv:
            return 1, b"", f'pods "{pod}" not found or no command given\n'.encode()
        loop = self.served.loop
        try:
            code, out, err = await loop.run_in_executor(
                self._pool, lambda: cluster.exec_in_pod(pod, argv, container=container or None)
            )
        except ClusterError as e:
            return 126, b"", f"{e}\n".encode()
        return code, out.encode(), err.encode()

    async def _forward(self, ns: str, pod: str, port: int) -> tuple[str, int]:
        cluster = self.local_cluster(ns)
        ip = next((p.ip for p in cluster.pods() if p.name == pod), "") if cluster else ""
        if not ip:
            raise OSError(f'pods "{pod}" not found in namespace {ns}')
        return ip, port

    async def _log(self, ns: str, pod: str, container: str | None, tail: int) -> str:
        cluster = self.local_cluster(ns)
        if cluster is None:
            return ""
        try:
            return cluster.pod_logs(pod, container=container, tail=tail)
        except ClusterError as e:
            return f"{e}\n"

    async def _node_proxy(self, node: str, path: str) -> tuple[int, str]:
        if node != NODE_NAME or path != "/metrics/cadvisor":
            return 404, f"node {node}: only /metrics/cadvisor of node {NODE_NAME} is served here\n"
        clusters = [s.cluster for s in list(self._spaces.values()) if s.cluster is not None]
        bodies = []
        for cluster in clusters:
            url = f"http://{cluster.exporter.address}/metrics/cadvisor"
            body = await self.served.loop.run_in_executor(self._pool, _fetch, url)
            bodies.append(body)
        return 200, "".join(bodies)


# -- object shapes ----------------------------------------------------------------------------------


def _fingerprint(objects: list[dict[str, Any]]) -> str:
    """What the client asked for: the bridge's own writes (status, a Service's clusterIP) left out."""
    allocated = ("clusterIP", "clusterIPs")
    wanted = [
        {k: o.get(k) for k in ("kind", "data", "stringData")}
        | {"spec": {k: v for k, v in (o.get("spec") or {}).items() if k not in allocated}}
        | {"name": o["metadata"]["name"], "labels": o["metadata"].get("labels")}
        for o in objects
    ]
    return _hash(sorted(wanted, key=lambda w: (str(w["kind"]), str(w["name"]))), 16)


def _owner(ns: str, p: PodStatus, workload: Mapping[str, Any]) -> dict[str, Any]:
    kind = workload.get("kind")
    if kind == "Deployment":
        name = p.name.rsplit("-", 1)[0]
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": _uid(ns, "rs", name),
                "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    name = workload["metadata"]["name"]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name, "uid": _uid(ns, "sts", name),
            "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def _state(c: ContainerStatus, born: float) -> dict[str, Any]:
    if c.state == "running":
        return {"running": {"startedAt": _now(born)}}
    if c.state == "terminated":
        reason = c.reason or "Error"
        return {"terminated": {"reason": reason, "exitCode": _exit_code(reason)}}
    return {"waiting": {"reason": c.reason or "ContainerCreating"}}


def _pod(ns: str, p: PodStatus, workload: Mapping[str, Any], born: float) -> dict[str, Any]:
    template = (workload.get("spec") or {}).get("template") or {}
    tmeta, tspec = template.get("metadata") or {}, template.get("spec") or {}
    images = {c.get("name"): c.get("image", "") for c in tspec.get("containers") or []}
    statuses = []
    for c in p.containers:
        status: dict[str, Any] = {
            "name": c.name, "ready": c.ready, "restartCount": c.restart_count, "started": c.state == "running",
            "image": images.get(c.name, ""), "imageID": "", "state": _state(c, born),
        }  # fmt: skip
        if c.last_terminated_reason:
            reason = c.last_terminated_reason
            status["lastState"] = {"terminated": {"reason": reason, "exitCode": _exit_code(reason)}}
        statuses.append(status)
    all_ready = bool(p.containers) and all(c.ready for c in p.containers)
    conditions = [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": str(all_ready)},
        {"type": "Ready", "status": str(p.ready)},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name, "namespace": ns, "uid": _uid(ns, "pod", p.name), "creationTimestamp": _now(born),
            "labels": dict(tmeta.get("labels") or {}), "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [_owner(ns, p, workload)],
        },
        "spec": {**tspec, "nodeName": NODE_NAME},
        "status": {
            "phase": p.phase, "podIP": p.ip, "podIPs": [{"ip": p.ip}] if p.ip else [], "hostIP": NODE_IP,
            "startTime": _now(born), "conditions": conditions, "containerStatuses": statuses,
            "qosClass": "Burstable",
        },
    }  # fmt: skip


def _held_pods(ns: str, workload: Mapping[str, Any], held: _Held, born: float) -> list[dict[str, Any]]:
    spec = workload.get("spec") or {}
    name = workload["metadata"]["name"]
    replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
    template = spec.get("template") or {}
    if workload.get("kind") == "Deployment":
        rs = f"{name}-{_hash(template, 10)}"
        names = [f"{rs}-{_hash([rs, i], 5)}" for i in range(replicas)]
    else:
        names = [f"{name}-0"]  # OrderedReady: the first ordinal blocks the rest
    pods = []
    for pod_name in names:
        status = PodStatus(name=pod_name, workload=name, phase="Pending", ip="", ready=False)
        pod = _pod(ns, status, workload, born)
        if held.reason == "Unschedulable":
            pod["spec"].pop("nodeName", None)
            pod["status"] = {"phase": "Pending", "qosClass": "Burstable", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": held.message}]}  # fmt: skip
        else:
            pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"},
                                           {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]  # fmt: skip
            pod["status"]["containerStatuses"] = [
                {"name": c.get("name"), "ready": False, "restartCount": 0, "started": False,
                 "image": c.get("image", ""), "imageID": "",
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": held.message}}}
                for c in (template.get("spec") or {}).get("containers") or []
            ]  # fmt: skip
        pods.append(pod)
    return pods


def _held_events(held: _Held) -> list[tuple[str, str]]:
    if held.reason == "Unschedulable":
        return [("FailedScheduling", held.message)]
    return [("Failed", f"Failed to pull image {held.image}: not found"), ("BackOff", held.message)]


def _workload_status(
    kind: str, name: str, obj: Mapping[str, Any], pods: list[dict[str, Any]]
) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
    ready = sum(1 for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in p["status"].get("conditions") or []))  # fmt: skip
    status: dict[str, Any] = {"observedGeneration": 1, "replicas": len(pods), "readyReplicas": ready,
                              "availableReplicas": ready, "updatedReplicas": len(pods)}  # fmt: skip
    if kind == "Deployment":
        if ready < replicas:
            status["unavailableReplicas"] = replicas - ready
        status["conditions"] = [{"type": "Available", "status": str(ready >= replicas),
                                 "reason": "MinimumReplicasAvailable" if ready >= replicas
                                 else "MinimumReplicasUnavailable"}]  # fmt: skip
    else:
        template = spec.get("template") or {}
        status |= {"currentReplicas": len(pods), "currentRevision": f"{name}-{_hash(template, 10)}"}
    return status


def _slice(ns: str, name: str, svc: Mapping[str, Any], cluster: LocalCluster) -> dict[str, Any]:
    endpoints = cluster.endpoints(name)
    ports = sorted({e.port for e in endpoints})
    spec_ports = (svc.get("spec") or {}).get("ports") or []
    names = {p.get("name") for p in spec_ports}
    port_name = next(iter(names)) if len(spec_ports) == 1 else None
    by_pod: dict[str, Any] = {}
    for e in endpoints:
        by_pod.setdefault(e.pod, e)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-{_hash(name, 5)}", "namespace": ns,
            "labels": {"kubernetes.io/service-name": name,
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": _uid(ns, "svc", name),
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [e.address], "conditions": {"ready": e.ready, "serving": e.ready, "terminating": False},
             "targetRef": {"kind": "Pod", "name": e.pod, "namespace": ns}, "nodeName": NODE_NAME}
            for e in by_pod.values()
        ],
        "ports": [{"port": p, "protocol": "TCP", **({"name": port_name} if port_name else {})} for p in ports],
    }  # fmt: skip


def _conditions(selected: bool, injected: bool, recovered: bool) -> list[dict[str, str]]:
    return [
        {"type": "Selected", "status": str(selected)},
        {"type": "AllInjected", "status": str(injected)},
        {"type": "AllRecovered", "status": str(recovered)},
        {"type": "Paused", "status": "False"},
    ]


def _records(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(((obj.get("status") or {}).get("experiment") or {}).get("containerRecords") or [])


def _lookup(objects: Any, key: tuple[Any, str | None, str]) -> Any:
    """The stored object at ``key`` (a string resource works; kmock's ``in`` needs its own type)."""
    try:
        return objects[key]
    except KeyError:
        return None


def _live(objects: Any, key: tuple[Any, str | None, str]) -> Any:
    found = _lookup(objects, key)
    return None if found is None or found.deleted else found


def _replace(objects: Any, key: tuple[str, str, str], desired: dict[str, Any]) -> None:
    """Write a bridge-owned object whole (only when it changed: every write is a new version)."""
    found = _lookup(objects, key)
    if found is None:
        objects[key] = desired
    elif found.deleted:
        found.create(desired)
    elif found.raw != desired:
        found.delete()
        found.create(desired)


def _patch_status(objects: Any, key: tuple[str, str, str], status: dict[str, Any]) -> None:
    found = _live(objects, key)
    if found is None or found.get("status") == status:
        return
    found.patch({"status": None})
    found.patch({"status": status})


def _event(objects: Any, ns: str, event: ClusterEvent) -> None:
    api_version = "chaos-mesh.org/v1alpha1" if event.kind in CHAOS_KINDS.values() else (
        "apps/v1" if event.kind in WORKLOADS else "v1")  # fmt: skip
    name = f"{event.name}.{_hash([event.timestamp, event.reason, event.message], 8)}"
    when = _now(event.timestamp)
    objects["v1/events", ns, name] = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": when},
        "involvedObject": {"apiVersion": api_version, "kind": event.kind, "name": event.name, "namespace": ns},
        "reason": event.reason, "message": event.message, "type": event.type,
        "source": {"component": "chaos-controller-manager" if event.kind in CHAOS_KINDS.values() else "kubelet",
                   "host": NODE_NAME},
        "firstTimestamp": when, "lastTimestamp": when, "count": 1,
    }  # fmt: skip


def _fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError as e:
        return f"# {url}: {e}\n"


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _node_info() -> dict[str, str]:
    """``status.nodeInfo`` from this machine (the kubelet reads the same files)."""
    release = dict(line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line)
    machine = os.uname().machine
    return {
        "machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
        "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": os.uname().release,
        "osImage": release.get("PRETTY_NAME", "Linux").strip('"'),
        "containerRuntimeVersion": "hftk8s-local://process-groups", "kubeletVersion": "v1.33.1",
        "kubeProxyVersion": "", "operatingSystem": "linux",
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
    }  # fmt: skip


def node_object() -> dict[str, Any]:
    """This machine as the emulated cluster's one node."""
    cpus = os.cpu_count() or 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    capacity = {"cpu": str(cpus), "memory": f"{memory // 1024}Ki", "pods": "110"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME,
                                                    "node-role.kubernetes.io/control-plane": ""}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE_NAME}],
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": _node_info(),
        },
    }  # fmt: skip
