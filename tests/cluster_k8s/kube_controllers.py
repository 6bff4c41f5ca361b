"""What a real cluster's controllers and kubelet make of applied objects, for the kmock emulator.

kmock stores what the client sends; a real cluster then acts on it. :class:`ClusterControllers`
does the part the kubernetes backend reads back, with the shapes a real v1.33 cluster returns:

* Services get a ``clusterIP`` (headless stays ``None``), NodePort/LoadBalancer a ``nodePort``, and a
  LoadBalancer the ingress address in ``lb_ingress`` (none by default: no LB controller); cluster
  DNS (``emulator.dns``) answers the short name and ``<svc>.<ns>.svc.cluster.local``;
* Deployments and StatefulSets get pods (ReplicaSet-hash or ordinal names, owner references, the
  template's labels and spec, a node and an IP), StatefulSets their volume claims from
  ``volumeClaimTemplates`` (template labels + selector labels, ``Bound``, ``pvc-protection``),
  and ``status`` counts from their pods;
* the kubelet's view of each pod: ready, or stuck the way ``faults[workload]`` says
  (ImagePullBackOff, ErrImagePull, CreateContainerConfigError, CrashLoopBackOff, Unschedulable),
  with the conditions, container states and events a cluster shows for it;
* EndpointSlices per Service from its ready pods; garbage collection of pods whose owner is gone,
  of slices whose Service is gone, and of claims marked for deletion once no pod mounts them.

Everything runs on the emulator's event loop under its lock (see ``Emulator.controllers``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import time
from typing import Any

NODE = "hft-control-plane"
HOST_IP = "172.18.0.2"
STORAGE_CLASS = "standard"
FAULTS = (
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CrashLoopBackOff",
    "Unschedulable",
)
SCHEDULER_MESSAGE = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(value: Any, n: int) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 2 * n, 2))


class _Stored:
    """A stored object: plain-dict reads (kmock's views wrap nested dicts), kmock's versioned writes."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __getitem__(self, key: str) -> Any:
        return self._obj.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._obj.raw.get(key, default)

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self._obj.raw)

    def patch(self, changes: dict[str, Any]) -> None:
        self._obj.patch(changes)

    def delete(self) -> None:
        self._obj.delete()


def _live(emulator: Any, resource: str) -> list[tuple[str, str, _Stored]]:
    return [
        (ns, name, _Stored(obj))
        for (res, ns, name), obj in list(emulator.objects.items())
        if f"{res.group}/{res.version}/{res.plural}".lstrip("/") == resource and not obj.deleted
    ]


def _matches(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class ClusterControllers:
    """kube-controller-manager + scheduler + kubelet, as far as the backend can see them."""

    def __init__(self, emulator: Any) -> None:
        self.e = emulator
        self.faults: dict[str, str] = {}  # workload name -> one of FAULTS
        self.lb_ingress: list[dict[str, str]] = []  # e.g. [{"ip": "127.0.0.1"}] (OrbStack: its own)
        self.logs: dict[str, str] = {}  # pod name -> what GET .../log returns
        self._random = random.Random(7)
        self._ips: dict[tuple[str, str], str] = {}  # (namespace, pod) -> its IP
        self._born: dict[tuple[str, str], float] = {}  # (namespace, pod) -> monotonic creation time
        self._node_ports = 30100
        self._events: set[tuple[str, str, str]] = set()  # (pod, reason, message) recorded once

    def reconcile(self) -> None:
        self._services()
        for kind in ("Deployment", "StatefulSet"):
            resource = "apps/v1/deployments" if kind == "Deployment" else "apps/v1/statefulsets"
            for ns, name, obj in _live(self.e, resource):
                self._workload(kind, ns, name, obj)
        self._collect_garbage()
        self._slices()

    # -- services and DNS -----------------------------------------------------------------------

    def _services(self) -> None:
        for ns, name, svc in _live(self.e, "v1/services"):
            spec = dict(svc.get("spec") or {})
            changes: dict[str, Any] = {}
            if "clusterIP" not in spec:
                changes["clusterIP"] = (
                    f"10.96.{self._random.randrange(1, 250)}.{self._random.randrange(1, 250)}"
                )
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                ports = []
                for p in spec.get("ports") or []:
                    if "nodePort" not in p:
                        self._node_ports += 1
                        p = {**p, "nodePort": self._node_ports}
                    ports.append(p)
                if ports != spec.get("ports"):
                    changes["ports"] = ports
            if changes:
                svc.patch({"spec": changes})
            if spec.get("type") == "LoadBalancer" and self.lb_ingress:
                status = {"loadBalancer": {"ingress": list(self.lb_ingress)}}
                if svc.get("status") != status:
                    svc.patch({"status": status})
            ip = svc["spec"].get("clusterIP")
            addresses = [ip] if ip and ip != "None" else self._ready_ips(ns, spec.get("selector") or {})
            for dns_name in (name, f"{name}.{ns}.svc.cluster.local"):
                self.e.dns[dns_name] = addresses

    def _ready_ips(self, ns: str, selector: dict[str, str]) -> list[str]:
        return [
            pod["status"]["podIP"]
            for pns, _, pod in _live(self.e, "v1/pods")
            if pns == ns and _matches(pod["metadata"].get("labels") or {}, selector) and _ready(pod)
        ]

    # -- workloads, pods, claims ----------------------------------------------------------------

    def _workload(self, kind: str, ns: str, name: str, obj: Any) -> None:
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        if not template.get("spec"):
            return  # nothing to run (a bare object some test applied)
        replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
        owner = f"{name}-{_hash(template, 10)}" if kind == "Deployment" else name
        if kind == "Deployment":
            mine = [p for pns, _, p in _live(self.e, "v1/pods") if pns == ns and _owner(p) == owner]
            for _ in range(replicas - len(mine)):
                pod = f"{owner}-{_hash([owner, self._random.random()], 5)}"
                self._create_pod(ns, pod, template, owner=("ReplicaSet", owner))
        else:
            for i in range(replicas):
                pod = f"{name}-{i}"
                if ("v1/pods", ns, pod) not in self.e.objects or self.e.objects["v1/pods", ns, pod].deleted:
                    claims = self._claims(ns, name, i, spec)
                    self._create_pod(ns, pod, template, owner=("StatefulSet", name), claims=claims)
        pods = [p for pns, _, p in _live(self.e, "v1/pods") if pns == ns and _owner(p) == owner]
        for pod in pods:
            self._kubelet(ns, pod, self.faults.get(name, ""))
        ready = sum(1 for p in pods if _ready(p))
        status = {
            "observedGeneration": 1,
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": len(pods),
        }
        if kind == "Deployment" and ready < replicas:
            status["unavailableReplicas"] = replicas - ready
        if kind == "StatefulSet":
            status |= {"currentReplicas": len(pods), "currentRevision": f"{name}-{_hash(template, 10)}"}
        if {k: (obj.get("status") or {}).get(k) for k in status} != status:
            obj.patch({"status": status})

    def _claims(self, ns: str, sts: str, ordinal: int, spec: dict[str, Any]) -> list[tuple[str, str]]:
        """The StatefulSet controller's claims for one ordinal (created once, never deleted by it)."""
        volumes = []
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        for template in spec.get("volumeClaimTemplates") or []:
            meta = template.get("metadata") or {}
            claim = f"{meta['name']}-{sts}-{ordinal}"
            volumes.append((str(meta["name"]), claim))
            key = ("v1/persistentvolumeclaims", ns, claim)
            if key in self.e.objects and not self.e.objects[key].deleted:
                continue
            tspec = template.get("spec") or {}
            self.e.objects[key] = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": claim,
                    "namespace": ns,
                    "labels": {**(meta.get("labels") or {}), **selector},
                    "finalizers": ["kubernetes.io/pvc-protection"],
                    "creationTimestamp": now(),
                    "uid": _hash([ns, claim], 12),
                },
                "spec": {
                    **tspec,
                    "storageClassName": STORAGE_CLASS,
                    "volumeMode": "Filesystem",
                    "volumeName": f"pvc-{_hash(claim, 12)}",
                },
                "status": {
                    "phase": "Bound",
                    "accessModes": tspec.get("accessModes") or ["ReadWriteOnce"],
                    "capacity": {
                        "storage": ((tspec.get("resources") or {}).get("requests") or {}).get("storage")
                    },
                },
            }
        return volumes

    def _create_pod(
        self,
        ns: str,
        name: str,
        template: dict[str, Any],
        *,
        owner: tuple[str, str],
        claims: list[tuple[str, str]] | None = None,
    ) -> None:
        meta = template.get("metadata") or {}
        spec = json.loads(json.dumps(template.get("spec") or {}))
        if claims:
            spec["volumes"] = (spec.get("volumes") or []) + [
                {"name": volume, "persistentVolumeClaim": {"claimName": claim}} for volume, claim in claims
            ]
        labels = dict(meta.get("labels") or {})
        if owner[0] == "ReplicaSet":
            labels["pod-template-hash"] = owner[1].rsplit("-", 1)[1]
        else:
            labels["statefulset.kubernetes.io/pod-name"] = name
        self._ips[ns, name] = f"10.244.0.{len(self._ips) + 10}"
        self._born[ns, name] = time.monotonic()
        self.e.objects["v1/pods", ns, name] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": _hash([ns, name, len(self._ips)], 16),
                "labels": labels,
                "creationTimestamp": now(),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": owner[0],
                        "name": owner[1],
                        "controller": True,
                        "blockOwnerDeletion": True,
                        "uid": _hash(owner, 16),
                    }
                ],
            },
            "spec": {**spec, "serviceAccountName": spec.get("serviceAccountName", "default")},
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }

    def _kubelet(self, ns: str, pod: Any, fault: str) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        name, t = meta["name"], meta["creationTimestamp"]
        ip = self._ips.get((ns, name), "10.244.0.250")
        containers = spec.get("containers") or []
        if fault == "Unschedulable":
            status = {
                "phase": "Pending",
                "qosClass": "Burstable",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": SCHEDULER_MESSAGE,
                        "lastTransitionTime": t,
                    }
                ],
            }
            self._event(
                ns, pod, "Warning", "FailedScheduling", SCHEDULER_MESSAGE, component="default-scheduler"
            )
            return self._set_status(pod, status)
        self._event(
            ns,
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {NODE}",
            component="default-scheduler",
        )
        statuses, ready = [], not fault
        for c in containers:
            image = c.get("image", "")
            base = {"name": c["name"], "image": image, "restartCount": 0, "started": False, "ready": False}
            if fault in ("ImagePullBackOff", "ErrImagePull"):
                why = (
                    f'failed to pull and unpack image "docker.io/{image}": failed to resolve reference '
                    f'"docker.io/{image}": pull access denied, repository does not exist or may require '
                    f"authorization: server message: insufficient_scope: authorization failed"
                )
                self._event(ns, pod, "Normal", "Pulling", f'Pulling image "{image}"', container=c["name"])
                self._event(
                    ns,
                    pod,
                    "Warning",
                    "Failed",
                    f'Failed to pull image "{image}": {why}',
                    container=c["name"],
                )
                self._event(ns, pod, "Warning", "Failed", "Error: ErrImagePull", container=c["name"])
                message = f'Back-off pulling image "{image}"' if fault == "ImagePullBackOff" else why
                if fault == "ImagePullBackOff":
                    self._event(ns, pod, "Normal", "BackOff", message, container=c["name"])
                    self._event(ns, pod, "Warning", "Failed", "Error: ImagePullBackOff", container=c["name"])
                statuses.append(
                    {**base, "imageID": "", "state": {"waiting": {"reason": fault, "message": message}}}
                )
                continue
            self._event(
                ns,
                pod,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine',
                container=c["name"],
            )
            if fault == "CreateContainerConfigError":
                message = 'secret "hft-db" not found'
                self._event(ns, pod, "Warning", "Failed", f"Error: {message}", container=c["name"])
                waiting = {"waiting": {"reason": fault, "message": message}}
                statuses.append({**base, "imageID": "", "state": waiting})
                continue
            ids = {
                "imageID": f"docker.io/{image}@sha256:{_hash(image, 32)}",
                "containerID": f"containerd://{_hash([name, c['name']], 32)}",
            }
            self._event(ns, pod, "Normal", "Created", f"Created container: {c['name']}", container=c["name"])
            self._event(ns, pod, "Normal", "Started", f"Started container {c['name']}", container=c["name"])
            if fault == "CrashLoopBackOff":  # one restart per emulated 2 s (a real backoff doubles)
                restarts = 1 + int((time.monotonic() - self._born.get((ns, name), time.monotonic())) / 2)
                message = (
                    f"back-off 40s restarting failed container={c['name']} pod={name}_{ns}({meta['uid']})"
                )
                self._event(
                    ns,
                    pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {c['name']} in pod {name}_{ns}({meta['uid']})",
                    container=c["name"],
                )
                last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": t, "finishedAt": t}}
                statuses.append(
                    {
                        **base,
                        **ids,
                        "restartCount": min(restarts, 99),
                        "lastState": last,
                        "state": {"waiting": {"reason": fault, "message": message}},
                    }
                )
                continue
            statuses.append(
                {
                    **base,
                    **ids,
                    "started": True,
                    "ready": True,
                    "state": {"running": {"startedAt": t}},
                    "lastState": {},
                }
            )
        unready = [s["name"] for s in statuses if not s["ready"]]
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": str(ready)}
            | (
                {}
                if ready
                else {
                    "reason": "ContainersNotReady",
                    "message": f"containers with unready status: [{' '.join(unready)}]",
                }
            ),
            {"type": "ContainersReady", "status": str(ready)},
            {"type": "PodScheduled", "status": "True"},
        ]
        running = fault in ("", "CrashLoopBackOff")
        status = {
            "phase": "Running" if running else "Pending",
            "conditions": conditions,
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "Burstable",
            "containerStatuses": statuses,
        }
        self._set_status(pod, status)
        if not spec.get("nodeName"):
            pod.patch({"spec": {"nodeName": NODE}})

    @staticmethod
    def _set_status(pod: Any, status: dict[str, Any]) -> None:
        """Replace the pod's status when it changed (kmock's patch merges dicts: clear it first)."""
        status = {**status, "startTime": pod["metadata"]["creationTimestamp"]}
        if json.dumps(pod.get("status"), sort_keys=True) != json.dumps(status, sort_keys=True):
            pod.patch({"status": None})
            pod.patch({"status": status})

    def _event(
        self,
        ns: str,
        pod: Any,
        kind: str,
        reason: str,
        message: str,
        *,
        container: str = "",
        component: str = "kubelet",
    ) -> None:
        key = (pod["metadata"]["name"], reason, message)
        if key in self._events:
            return
        self._events.add(key)
        name = f"{pod['metadata']['name']}.{_hash(list(key), 8)}"
        involved = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod["metadata"]["name"],
            "namespace": ns,
            "uid": pod["metadata"]["uid"],
        }
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        t = now()
        self.e.objects["v1/events", ns, name] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": t},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": t,
            "lastTimestamp": t,
            "source": {"component": component} | ({"host": NODE} if component == "kubelet" else {}),
            "reportingComponent": component,
            "reportingInstance": NODE if component == "kubelet" else "",
        }

    # -- endpoints and garbage ------------------------------------------------------------------

    def _slices(self) -> None:
        for ns, name, svc in _live(self.e, "v1/services"):
            selector = (svc.get("spec") or {}).get("selector") or {}
            pods = [
                p
                for pns, _, p in _live(self.e, "v1/pods")
                if pns == ns and _matches(p["metadata"].get("labels") or {}, selector)
            ]
            pods = [p for p in pods if p["status"].get("podIP")]  # scheduled and given an address
            ports = []
            for p in (svc.get("spec") or {}).get("ports") or []:
                target = p.get("targetPort", p.get("port"))
                if isinstance(target, str):
                    named = [
                        cp.get("containerPort")
                        for pod in pods[:1]
                        for c in pod["spec"].get("containers") or []
                        for cp in c.get("ports") or []
                        if cp.get("name") == target
                    ]
                    target = named[0] if named else None
                ports.append({"name": p.get("name", ""), "port": target, "protocol": "TCP"})
            slice_name = f"{name}-{_hash([ns, name], 5)}"
            body = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": slice_name,
                    "namespace": ns,
                    "labels": {
                        "kubernetes.io/service-name": name,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    },
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name}],
                },
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [p["status"]["podIP"]],
                        "nodeName": NODE,
                        "conditions": {"ready": _ready(p), "serving": _ready(p), "terminating": False},
                        "targetRef": {
                            "kind": "Pod",
                            "name": p["metadata"]["name"],
                            "namespace": ns,
                            "uid": p["metadata"]["uid"],
                        },
                    }
                    for p in pods
                ],
                "ports": ports,
            }
            key = ("discovery.k8s.io/v1/endpointslices", ns, slice_name)
            if key not in self.e.objects or self.e.objects[key].deleted:
                self.e.objects[key] = body
            elif self.e.objects[key].raw != body:
                self.e.objects[key].patch({"endpoints": body["endpoints"], "ports": body["ports"]})

    def _collect_garbage(self) -> None:
        owners = {("StatefulSet", ns, n) for ns, n, _ in _live(self.e, "apps/v1/statefulsets")}
        for ns, name, obj in _live(self.e, "apps/v1/deployments"):
            tpl = (obj.get("spec") or {}).get("template") or {}
            owners.add(("ReplicaSet", ns, f"{name}-{_hash(tpl, 10)}"))
        for ns, _, pod in _live(self.e, "v1/pods"):
            refs = pod["metadata"].get("ownerReferences") or []
            if refs and (refs[0]["kind"], ns, refs[0]["name"]) not in owners:
                pod.delete()  # the garbage collector, after a Background deletion of the owner
        services = {(ns, n) for ns, n, _ in _live(self.e, "v1/services")}
        for ns, _, eps in _live(self.e, "discovery.k8s.io/v1/endpointslices"):
            refs = eps["metadata"].get("ownerReferences") or []
            if refs and (ns, refs[0]["name"]) not in services:
                eps.delete()

    def release_claims(self) -> None:
        """The pvc-protection controller (always on, as in every cluster): a claim marked for deletion
        goes once no pod mounts it."""
        mounted = {
            (ns, v["persistentVolumeClaim"]["claimName"])
            for ns, _, pod in _live(self.e, "v1/pods")
            for v in (pod.get("spec") or {}).get("volumes") or []
            if v.get("persistentVolumeClaim")
        }
        for ns, name, claim in _live(self.e, "v1/persistentvolumeclaims"):
            if (claim.get("metadata") or {}).get("deletionTimestamp") and (ns, name) not in mounted:
                claim.delete()  # pvc-protection released: nothing mounts it any more


def _owner(pod: Any) -> str:
    refs = pod["metadata"].get("ownerReferences") or []
    return str(refs[0]["name"]) if refs else ""


def _ready(pod: Any) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions") or []
    )
