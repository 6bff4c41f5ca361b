"""A Kubernetes API server stand-in for the kubernetes backend and the Chaos Mesh driver.

kmock's ``KubernetesEmulator`` (an in-memory object store over real HTTP) runs on its own event loop
in a background thread, because the code under test uses the synchronous ``kubernetes`` client. The
subclass below adds the API-server behaviours kmock 0.8 leaves out and our client relies on:

* server-side apply (``PATCH`` with ``application/apply-patch+yaml``) creates a missing object, and
  is refused (422) when it changes an existing StatefulSet's ``volumeClaimTemplates``, as a real API
  server refuses it;
* list requests honour equality-based ``labelSelector``;
* ``/api/v1/namespaces/<name>`` (kmock's path parser reads it as a namespace, not an object);
* the websocket subresources: ``exec`` runs ``getent ahosts NAME`` against ``emulator.dns`` (the
  channel protocol: stdout on 1, the exit status on 3), and ``portforward`` speaks
  ``v4.channel.k8s.io`` (the two-byte port header first on channels 0 and 1, data on 0): an echo
  server by default, or a proxy to ``emulator.portforward_to`` (a real server on loopback);
* ``emulator.cluster`` (:mod:`kube_controllers`), off unless ``emulator.controllers_on``: what the
  controllers and kubelet of a real cluster make of applied objects (pods, claims, endpoint slices,
  statuses, events, faults such as ImagePullBackOff);
* a Chaos Mesh controller that does what Chaos Mesh does: it selects pods from the emulator's own Pod
  objects by the experiment's selector (namespaces, labelSelectors; modes one / all / fixed /
  fixed-percent / random-max-percent), records them in ``status.experiment.containerRecords``, kills
  them for pod-kill, and when nothing matches reports what Chaos Mesh reports (chaos-mesh#3374:
  ``Selected=False`` beside a vacuous ``AllInjected=True``, no records, and a Warning event
  ``Failed to select targets: no pod is selected``). On deletion it recovers and drops its finalizer,
  unless the object is named in ``emulator.stuck_finalizers``.

Everything the client sent stays in ``emulator.requests()`` for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import pathlib
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp.web
import kmock
import pytest
from kube_controllers import HOST_IP, NODE, ClusterControllers
from served_api import ServedApi, write_kubeconfig

NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)$")
LOG_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$")
CHAOS_GROUP = "chaos-mesh.org"
RESOURCES = {
    "v1/pods": "Pod",
    "v1/services": "Service",
    "v1/events": "Event",
    "v1/configmaps": "ConfigMap",
    "v1/secrets": "Secret",
    "v1/serviceaccounts": "ServiceAccount",
    "v1/persistentvolumeclaims": "PersistentVolumeClaim",
    "apps/v1/deployments": "Deployment",
    "apps/v1/statefulsets": "StatefulSet",
    "discovery.k8s.io/v1/endpointslices": "EndpointSlice",
    "networking.k8s.io/v1/networkpolicies": "NetworkPolicy",
    "policy/v1/poddisruptionbudgets": "PodDisruptionBudget",
    "chaos-mesh.org/v1alpha1/stresschaos": "StressChaos",
    "chaos-mesh.org/v1alpha1/podchaos": "PodChaos",
    "chaos-mesh.org/v1alpha1/networkchaos": "NetworkChaos",
    "chaos-mesh.org/v1alpha1/schedules": "Schedule",
}
CLUSTER_RESOURCES = {
    "v1/nodes": "Node",
    "rbac.authorization.k8s.io/v1/clusterroles": "ClusterRole",
    "rbac.authorization.k8s.io/v1/clusterrolebindings": "ClusterRoleBinding",
}
STS_FORBIDDEN = (
    "StatefulSet.apps {name!r} is invalid: spec: Forbidden: updates to statefulset spec for fields other "
    "than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
    "and 'minReadySeconds' are forbidden"
)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }
    return aiohttp.web.json_response(body, status=code)


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus apply-creates, label selectors, namespaces and Chaos Mesh."""

    def setup(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.chaos_behaviour = "inject"  # "inject" | "fail" (records Not Injected) | "silent"
        self.stuck_finalizers: set[str] = set()  # chaos objects whose finalizer is never released
        self.recover_delay = 0.2
        self._seen: dict[Any, float] = {}
        self._random = random.Random(3)
        self.dns: dict[str, list[str]] = {}  # what getent resolves inside every pod
        self.portforward_to: tuple[str, int] | None = None
        self.controllers_on = False
        self.controller_errors: list[str] = []
        self.cluster = ClusterControllers(self)
        for resource, kind in RESOURCES.items():  # listable (and discoverable) even while empty
            self.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=True, verbs={"list", "get"})
        for resource, kind in CLUSTER_RESOURCES.items():
            self.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=False, verbs={"list", "get"})
        self.objects["v1/nodes", None, NODE] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE, "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": HOST_IP},
                    {"type": "Hostname", "address": NODE},
                ],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            },
        }

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._serve_websocket(request)
        ns_match = NAMESPACE_PATH.match(request.url.path)
        if ns_match:
            return self._serve_namespace(request, ns_match.group(1))
        log_match = LOG_PATH.match(request.url.path)
        if log_match and log_match.group(2) in self.cluster.logs:
            return aiohttp.web.Response(text=self.cluster.logs[log_match.group(2)])
        content_type = request.headers.get("Content-Type", "")
        if request.method == "PATCH" and content_type.startswith("application/apply-patch") and request.name:
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self.objects:
                    self.objects[key] = {}
                elif self.objects[key].deleted:
                    self.objects[key].create({})
                elif request.data.get("kind") == "StatefulSet":
                    before = (self.objects[key].get("spec") or {}).get("volumeClaimTemplates")
                    after = (request.data.get("spec") or {}).get("volumeClaimTemplates")
                    if before is not None and before != after:
                        return _status(422, "Invalid", STS_FORBIDDEN.format(name=request.name))
        return await super()._handle(request)

    def _serve_namespace(self, request: kmock.Request, name: str) -> aiohttp.web.StreamResponse:
        if request.method == "PATCH":
            self.namespaces[name] = request.data
        elif name not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{name}" not found')
        elif request.method == "DELETE":
            return aiohttp.web.json_response(self.namespaces.pop(name))
        return aiohttp.web.json_response(self.namespaces[name])

    async def _serve_websocket(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request._raw_request)
        if request.url.path.endswith("/exec"):
            command = request.url.query.getall("command")
            addresses = self.dns.get(command[-1], []) if command[:2] == ["getent", "ahosts"] else []
            if addresses:
                lines = "".join(f"{a}      STREAM {command[-1]}\n{a}      DGRAM\n" for a in addresses)
                await ws.send_bytes(b"\x01" + lines.encode())
                status: dict[str, Any] = {"status": "Success"}
            else:
                causes = [{"reason": "ExitCode", "message": "2"}]
                status = {"status": "Failure", "reason": "NonZeroExitCode", "details": {"causes": causes}}
            await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        else:
            header = int(request.url.query["ports"]).to_bytes(2, "little")
            await ws.send_bytes(b"\x00" + header)
            await ws.send_bytes(b"\x01" + header)
            if self.portforward_to is None:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x00":
                        await ws.send_bytes(b"\x00echo:" + message.data[1:])
            else:
                await self._proxy(ws, *self.portforward_to)
        await ws.close()
        return ws

    @staticmethod
    async def _proxy(ws: aiohttp.web.WebSocketResponse, host: str, port: int) -> None:
        """The pod side of a port-forward: channel 0 to and from a real TCP server."""
        reader, writer = await asyncio.open_connection(host, port)

        async def upstream() -> None:
            while chunk := await reader.read(65536):
                await ws.send_bytes(b"\x00" + chunk)

        pump = asyncio.create_task(upstream())
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x00":
                    writer.write(message.data[1:])
                    await writer.drain()
        finally:
            pump.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_list(self, request: kmock.Request) -> Any:
        payload = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            payload["items"] = [
                i for i in payload["items"] if _matches(i.get("metadata", {}).get("labels") or {}, selector)
            ]
        return payload

    async def controllers(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            async with self._lock:
                try:
                    if self.controllers_on:
                        self.cluster.reconcile()
                    self.cluster.release_claims()
                    for key, obj in list(self.objects.items()):
                        resource = key[0]
                        if (
                            resource.group == CHAOS_GROUP
                            and resource.plural != "schedules"
                            and not obj.deleted
                        ):
                            self._reconcile_chaos(key, obj)
                except Exception as e:  # keep reconciling; a test that depends on it says what broke
                    self.controller_errors.append(f"{type(e).__name__}: {e}")

    # -- the Chaos Mesh stand-in ----------------------------------------------------------------

    def _reconcile_chaos(self, key: Any, obj: Any) -> None:
        seen = self._seen.setdefault(key, time.monotonic())
        meta = obj.get("metadata", {})
        if meta.get("deletionTimestamp"):
            if meta.get("name") in self.stuck_finalizers:
                return  # chaos-controller-manager cannot recover it (or is not running)
            if (
                time.monotonic() - self._seen.setdefault((key, "deleted"), time.monotonic())
                >= self.recover_delay
            ):
                records = _records(obj)
                for record in records:
                    record["phase"] = "Not Injected"
                conditions = [{"type": "AllRecovered", "status": "True"}]
                obj.patch(
                    {
                        "status": {
                            "conditions": conditions,
                            "experiment": {"containerRecords": records or None},
                        }
                    }
                )
                obj.delete()  # finalizer released: the object is gone
                self._seen.pop((key, "deleted"), None)
                self._seen.pop(key, None)
            return
        if "status" in obj or time.monotonic() - seen < 0.1 or self.chaos_behaviour == "silent":
            return
        kind = obj.get("kind") or RESOURCES.get(f"{key[0].group}/{key[0].version}/{key[0].plural}", "?")
        self._chaos_event(key, obj, kind, "Normal", "FinalizerInited", "Finalizer has been inited")
        targets = self._select(key[1], obj.get("spec") or {})
        if isinstance(targets, str):  # what Chaos Mesh 2.x leaves (chaos-mesh/chaos-mesh#3374)
            conditions = [
                {"type": "Selected", "status": "False"},
                {"type": "AllInjected", "status": "True"},
                {"type": "AllRecovered", "status": "True"},
                {"type": "Paused", "status": "False"},
            ]
            self._chaos_event(key, obj, kind, "Warning", "Failed", f"Failed to select targets: {targets}")
            obj.patch({"metadata": {"finalizers": ["chaos-mesh/records"]},
                       "status": {"conditions": conditions, "experiment": {"desiredPhase": "Run"}}})  # fmt: skip
            return
        ids = self._record_ids(kind, obj.get("spec") or {}, targets)
        injected = self.chaos_behaviour == "inject"
        records = []
        for record_id in ids:
            if injected:
                event = {"type": "Succeeded", "operation": "Apply", "timestamp": _now()}
                self._chaos_event(
                    key, obj, kind, "Normal", "Applied", f"Successfully apply chaos for {record_id}"
                )
            else:
                message = (
                    "rpc error: code = Unknown desc = stress-ng: cannot attach to the container's cgroup"
                )
                event = {"type": "Failed", "operation": "Apply", "message": message, "timestamp": _now()}
                self._chaos_event(key, obj, kind, "Warning", "Failed", f"Failed to apply chaos: {message}")
            records.append(
                {
                    "id": record_id,
                    "phase": "Injected" if injected else "Not Injected",
                    "selectorKey": ".",
                    "injectedCount": int(injected),
                    "recoveredCount": 0,
                    "events": [event],
                }
            )
        if injected and (obj.get("spec") or {}).get("action") == "pod-kill":
            for pod in targets:
                pod.delete()  # the controllers (when on) bring a replacement, as ReplicaSets do
        conditions = [
            {"type": "Selected", "status": "True"},
            {"type": "AllInjected", "status": str(injected)},
            {"type": "AllRecovered", "status": "False"},
            {"type": "Paused", "status": "False"},
        ]
        obj.patch({"metadata": {"finalizers": ["chaos-mesh/records"]},
                   "status": {"conditions": conditions,
                              "experiment": {"desiredPhase": "Run", "containerRecords": records}}})  # fmt: skip

    def _select(self, namespace: str, spec: dict[str, Any]) -> list[Any] | str:
        """Chaos Mesh's pod selection: namespaces x labelSelectors, then the mode; or why none."""
        selector = spec.get("selector") or {}
        namespaces = selector.get("namespaces") or [namespace]
        labels = selector.get("labelSelectors") or {}
        pods = [
            pod
            for (resource, ns, _name), pod in sorted(self.objects.items(), key=lambda kv: str(kv[0][2]))
            if f"{resource.version}/{resource.plural}" == "v1/pods"
            and not resource.group
            and not pod.deleted
            and ns in namespaces
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and all(((pod.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in labels.items())
        ]
        if not pods:
            return "no pod is selected"
        mode, value = spec.get("mode", "one"), str(spec.get("value") or "0")
        if mode == "one":
            return [self._random.choice(pods)]
        if mode == "all":
            return pods
        number = int(value)
        if mode in ("fixed-percent", "random-max-percent"):
            if number == 0:
                return "cannot select any object as value below or equal 0"
            percent = number if mode == "fixed-percent" else self._random.randint(0, number)
            number = math.ceil(len(pods) * percent / 100)
        elif number <= 0:
            return "cannot select any object as value below or equal 0"
        return self._random.sample(pods, min(number, len(pods)))

    @staticmethod
    def _record_ids(kind: str, spec: dict[str, Any], pods: list[Any]) -> list[str]:
        """StressChaos and container-kill act on containers (``ns/pod/container``), the rest on pods."""
        per_container = kind == "StressChaos" or spec.get("action") == "container-kill"
        ids = []
        for pod in pods:
            meta = pod.get("metadata") or {}
            base = f"{meta.get('namespace')}/{meta.get('name')}"
            if not per_container:
                ids.append(base)
                continue
            names = spec.get("containerNames") or [
                c.get("name") for c in (pod.get("spec") or {}).get("containers") or []
            ]
            ids.extend(f"{base}/{name}" for name in names)
        return ids

    def _chaos_event(
        self, key: Any, obj: Any, kind: str, kind_of_event: str, reason: str, message: str
    ) -> None:
        meta = obj.get("metadata") or {}
        name = f"{meta.get('name')}.{abs(hash((reason, message))) % 10**8:08d}"
        self.objects["v1/events", key[1], name] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": key[1], "creationTimestamp": _now()},
            "involvedObject": {
                "apiVersion": "chaos-mesh.org/v1alpha1",
                "kind": kind,
                "name": meta.get("name"),
                "namespace": key[1],
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind_of_event,
            "source": {"component": "chaos-controller-manager"},
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "count": 1,
        }

    def requests(self) -> list[kmock.Request]:
        return list(self)


def _records(obj: Any) -> list[dict[str, Any]]:
    return list(((obj.get("status") or {}).get("experiment") or {}).get("containerRecords") or [])


class EmulatorThread(ServedApi):
    """Runs an :class:`Emulator` and its HTTP server, with its controllers, on a private loop thread."""

    def __init__(self, make: Callable[[], Emulator] | None = None) -> None:
        super().__init__(make or Emulator, background=self._controllers)
        self.emulator: Emulator = self.api

    @staticmethod
    async def _controllers(emulator: Emulator) -> None:
        await emulator.controllers()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's loop (where its objects may be touched safely)."""

        async def run() -> Any:
            async with self.emulator._lock:
                return fn()

        return self.on_loop(run, timeout=5)

    def wait_for(self, check: Callable[[], Any], *, what: str, timeout: float = 10.0) -> Any:
        """Poll ``check`` on the emulator's loop until it returns something truthy (bounded)."""
        deadline = time.monotonic() + timeout
        while not (found := self.call(check)):
            errors = self.emulator.controller_errors[-3:]
            assert time.monotonic() < deadline, (
                f"emulator: {what} not seen within {timeout:g}s; errors: {errors}"
            )
            time.sleep(0.05)
        return found


@pytest.fixture
def emulator_thread() -> Iterator[EmulatorThread]:
    thread = EmulatorThread()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def emulator(emulator_thread: EmulatorThread) -> Emulator:
    return emulator_thread.emulator


@pytest.fixture
def kubeconfig(emulator_thread: EmulatorThread, tmp_path: pathlib.Path) -> str:
    """A kubeconfig with context ``emulated`` pointing at the emulator (bearer token auth)."""
    return write_kubeconfig(tmp_path / "kubeconfig.yaml", server=emulator_thread.url)


@pytest.fixture
def body_of() -> Callable[[kmock.Request], Any]:
    """The JSON body a request carried (whatever its content type said)."""
    return lambda request: json.loads(request.body) if request.body else None


PLATFORM_PODS = 6  # one per workload of the local overlay


def _pods(emulator: Emulator) -> list[Any]:
    return [o for k, o in emulator.objects.items() if str(k[0].plural) == "pods" and not o.deleted]


@pytest.fixture
def platform(emulator_thread: EmulatorThread, kubeconfig: str) -> Iterator[Any]:
    """The rendered ``local`` overlay applied to namespace ``hft`` through the backend, with the
    emulated controllers running: realistic pods (one per workload), claims, slices and DNS."""
    from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
    from pytest_hftk8s.manifests import render

    emulator = emulator_thread.emulator
    emulator.controllers_on = True
    cluster = KubernetesCluster(context="emulated", namespace="hft", kubeconfig=kubeconfig, delete_timeout=10)
    cluster.apply(render("local"))
    emulator_thread.wait_for(lambda: len(_pods(emulator)) >= PLATFORM_PODS, what="the platform's pods")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def running_pods(emulator_thread: EmulatorThread) -> list[Any]:
    """The ``local`` overlay's workloads stored straight into the emulator (no client requests in its
    journal) in namespace ``hft``, and the pods the emulated controllers run for them."""
    from pytest_hftk8s.manifests import render

    emulator = emulator_thread.emulator

    def store() -> None:
        for obj in render("local"):
            if obj["kind"] in ("Deployment", "StatefulSet", "Service"):
                plural = {"Deployment": "apps/v1/deployments", "StatefulSet": "apps/v1/statefulsets"}
                resource = plural.get(obj["kind"], "v1/services")
                emulator.objects[resource, "hft", obj["metadata"]["name"]] = {
                    **obj,
                    "metadata": {**obj["metadata"], "namespace": "hft"},
                }
        emulator.controllers_on = True

    emulator_thread.call(store)
    emulator_thread.wait_for(lambda: len(_pods(emulator)) >= PLATFORM_PODS, what="the platform's pods")
    return emulator_thread.call(lambda: [o.raw for o in _pods(emulator)])


@pytest.fixture
def kubeconfig_for(emulator_thread: EmulatorThread, tmp_path: pathlib.Path) -> Callable[[str], str]:
    """``kubeconfig_for(context)``: a kubeconfig whose one context, so named (``kind-hft``), is the emulator."""
    return lambda context: write_kubeconfig(
        tmp_path / f"{context}.yaml", server=emulator_thread.url, context=context
    )
