"""A Kubernetes API stand-in on loopback: kmock's object store plus what our client relies on.

kmock's ``KubernetesEmulator`` keeps objects in memory and serves get, list, watch, create, patch and
delete over real HTTP. :class:`ApiServer` adds the API-server behaviours kmock 0.8 leaves out and the
kubernetes backend uses, following the API conventions:

* server-side apply (``PATCH`` with ``application/apply-patch+yaml``) creates a missing object, and
  is refused (422) when it changes an existing StatefulSet's ``volumeClaimTemplates``;
* list requests honour equality-based ``labelSelector`` terms (``k=v``, ``k==v``, ``k!=v``) and
  ``fieldSelector`` on ``involvedObject.*`` (events) and ``metadata.name``;
* ``/api/v1/namespaces/<name>`` (kmock reads that path as a namespace, not an object);
* ``POST .../selfsubjectaccessreviews`` (allowed unless listed in :attr:`ApiServer.denied`) and
  ``/version``;
* the Chaos Mesh CRDs, vendored in ``chaos/crds``, stored and served in discovery (:meth:`install_crds`);
* the subresources a controller behind the API makes real, through hooks it sets: ``pods/exec`` and
  ``pods/portforward`` (websocket, ``v4.channel.k8s.io``), ``pods/log`` and the node proxy's
  ``/metrics/cadvisor``. Without a hook they answer as a server whose kubelet is unreachable.

:class:`ServedApi` runs one on its own event loop thread (the code under test uses the synchronous
``kubernetes`` client); :func:`write_kubeconfig` writes a context for it. It must not run pods:
that is the controller's job (:mod:`.bridge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml

from pytest_hftk8s.manifests import data_dir

__all__ = [
    "CHAOS_GROUP",
    "ApiServer",
    "ExecResult",
    "ServedApi",
    "matches_selector",
    "write_kubeconfig",
]

CHAOS_GROUP = "chaos-mesh.org"
CHAOS_PLURALS = ("stresschaos", "podchaos", "networkchaos", "schedules")
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)$")
LOG_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$")
STREAM_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/(exec|portforward)$")
NODE_PROXY_PATH = re.compile(r"^/api/v1/nodes/([^/]+)/proxy/(.*)$")
#: Namespaced resources served (listable and discoverable) even while empty.
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
    "apps/v1/daemonsets": "DaemonSet",
    "discovery.k8s.io/v1/endpointslices": "EndpointSlice",
    "networking.k8s.io/v1/networkpolicies": "NetworkPolicy",
    "policy/v1/poddisruptionbudgets": "PodDisruptionBudget",
}
CLUSTER_RESOURCES = {
    "v1/nodes": "Node",
    "storage.k8s.io/v1/storageclasses": "StorageClass",
    "apiextensions.k8s.io/v1/customresourcedefinitions": "CustomResourceDefinition",
    "rbac.authorization.k8s.io/v1/clusterroles": "ClusterRole",
    "rbac.authorization.k8s.io/v1/clusterrolebindings": "ClusterRoleBinding",
}
STS_FORBIDDEN = (
    "StatefulSet.apps {name!r} is invalid: spec: Forbidden: updates to statefulset spec for fields other "
    "than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
    "and 'minReadySeconds' are forbidden"
)

#: ``(exit code, stdout, stderr)`` of one exec.
ExecResult = tuple[int, bytes, bytes]
ExecHook = Callable[[str, str, str, list[str]], Awaitable[ExecResult]]  # namespace, pod, container, argv
ForwardHook = Callable[[str, str, int], Awaitable[tuple[str, int]]]  # namespace, pod, port -> host, port
LogHook = Callable[[str, str, str | None, int], Awaitable[str]]  # namespace, pod, container, tail lines
ProxyHook = Callable[[str, str], Awaitable[tuple[int, str]]]  # node, path -> status, body


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    """A ``metav1.Status`` failure, as the API server sends it."""
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message,
            "code": code}  # fmt: skip
    return aiohttp.web.json_response(body, status=code)


def matches_selector(labels: dict[str, str], selector: str) -> bool:
    """An equality-based label selector (``a=b,c!=d``); set-based terms are not supported (False)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
            continue
        key, sep, value = term.partition("=")
        if not sep:
            if key.strip().startswith("!"):
                if key.strip()[1:] in labels:
                    return False
                continue
            if key.strip() not in labels:
                return False
            continue
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    """A field as a field selector compares it (``true``/``false`` for booleans, ``""`` when unset)."""
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negated = "!=" in term
        key, _, value = term.partition("!=") if negated else term.partition("=")
        equal = _text(_field(obj, key.strip())) == value.strip().lstrip("=")
        if equal == negated:
            return False
    return True


@functools.cache
def _crd(plural: str) -> dict[str, Any]:
    """A vendored Chaos Mesh CRD, trimmed to what serving it needs (its schemas are large)."""
    text = (data_dir("chaos") / "crds" / f"chaos-mesh.org_{plural}.yaml").read_text()
    loaded: dict[str, Any] = yaml.load(text, Loader=yaml.CSafeLoader)
    return {k: loaded[k] for k in ("apiVersion", "kind", "metadata")} | {
        "spec": {k: v for k, v in loaded["spec"].items() if k != "versions"}
        | {"versions": [{"name": v["name"], "served": v["served"]} for v in loaded["spec"]["versions"]]}
    }


class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with the semantics listed in the module docstring."""

    def setup(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.denied: set[str] = set()  # "verb plural[/subresource]" the authorizer refuses
        self.reviews: list[dict[str, Any]] = []
        self.forbidden: set[str] = set()  # paths that answer 403
        self.version = {"major": "1", "minor": "33", "gitVersion": "v1.33.1", "platform": "linux/amd64"}
        self.exec_hook: ExecHook | None = None
        self.forward_hook: ForwardHook | None = None
        self.log_hook: LogHook | None = None
        self.node_proxy_hook: ProxyHook | None = None
        for resource, kind in RESOURCES.items():
            self.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=True, verbs={"list", "get"})
        for resource, kind in CLUSTER_RESOURCES.items():
            self.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=False, verbs={"list", "get"})

    # -- requests ---------------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        path = request.url.path
        if path in self.forbidden:
            verb = str(getattr(request.method, "value", request.method)).lower()
            return _status(403, "Forbidden", f'{path} is forbidden: User "tester" cannot {verb} it')
        if request.headers.get("Upgrade", "").lower() == "websocket" and (stream := STREAM_PATH.match(path)):
            return await self._serve_stream(request, *stream.groups())
        if request.method == "POST" and path == SSAR:
            return self._review(request)
        if ns_match := NAMESPACE_PATH.match(path):
            return self._serve_namespace(request, ns_match.group(1))
        if log_match := LOG_PATH.match(path):
            return await self._serve_log(request, *log_match.groups())
        if proxy := NODE_PROXY_PATH.match(path):
            if self.node_proxy_hook is None:
                return _status(503, "ServiceUnavailable", f"no kubelet answers for node {proxy.group(1)}")
            code, body = await self.node_proxy_hook(proxy.group(1), "/" + proxy.group(2))
            return aiohttp.web.Response(status=code, text=body, content_type="text/plain")
        content_type = request.headers.get("Content-Type", "")
        if (
            request.method == "PATCH"
            and content_type.startswith("application/apply-patch")
            and request.name
            and request.resource is not None
        ):
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

    def _review(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        attrs = (request.data.get("spec") or {}).get("resourceAttributes") or {}
        self.reviews.append(attrs)
        label = f"{attrs.get('verb')} {attrs.get('resource')}"
        label += f"/{attrs['subresource']}" if attrs.get("subresource") else ""
        allowed = label not in self.denied
        status = {"allowed": allowed} | ({} if allowed else {"reason": "RBAC: access denied"})
        return aiohttp.web.json_response({**request.data, "status": status}, status=201)

    def _serve_namespace(self, request: kmock.Request, name: str) -> aiohttp.web.StreamResponse:
        if request.method == "PATCH":
            self.namespaces[name] = {**request.data, "status": {"phase": "Active"}}
        elif name not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{name}" not found')
        elif request.method == "DELETE":
            return aiohttp.web.json_response(self.namespaces.pop(name))
        return aiohttp.web.json_response(self.namespaces[name])

    async def _serve_log(
        self, request: kmock.Request, namespace: str, pod: str
    ) -> aiohttp.web.StreamResponse:
        if self.log_hook is None:
            return _status(404, "NotFound", f'pods "{pod}" not found')
        tail = int(request.url.query.get("tailLines", "0")) or 1_000_000  # no tailLines: the whole log
        text = await self.log_hook(namespace, pod, request.url.query.get("container"), tail)
        return aiohttp.web.Response(text=text, content_type="text/plain")

    async def _serve_stream(
        self, request: kmock.Request, namespace: str, pod: str, which: str
    ) -> aiohttp.web.StreamResponse:
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        assert request._raw_request is not None
        await ws.prepare(request._raw_request)
        try:
            if which == "exec":
                await self._exec(ws, request, namespace, pod)
            else:
                await self._forward(ws, request, namespace, pod)
        finally:
            await ws.close()
        return ws

    async def _exec(
        self, ws: aiohttp.web.WebSocketResponse, request: kmock.Request, ns: str, pod: str
    ) -> None:
        """One command's stdout on channel 1, stderr on 2, and its ``metav1.Status`` on 3."""
        command = list(request.url.query.getall("command", []))
        container = request.url.query.get("container", "")
        if self.exec_hook is None:
            code, out, err = 126, b"", b"no container runtime answers exec here\n"
        else:
            code, out, err = await self.exec_hook(ns, pod, container, command)
        if out:
            await ws.send_bytes(b"\x01" + out)
        if err:
            await ws.send_bytes(b"\x02" + err)
        if code == 0:
            status: dict[str, Any] = {"status": "Success", "metadata": {}}
        else:
            causes = [{"reason": "ExitCode", "message": str(code)}]
            status = {"status": "Failure", "reason": "NonZeroExitCode", "details": {"causes": causes},
                      "message": f"command terminated with non-zero exit code: exit status {code}"}  # fmt: skip
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())

    async def _forward(
        self, ws: aiohttp.web.WebSocketResponse, request: kmock.Request, ns: str, pod: str
    ) -> None:
        """The pod side of a port-forward: the port header on channels 0 and 1, then data on 0."""
        port = int(request.url.query["ports"])
        header = port.to_bytes(2, "little")
        await ws.send_bytes(b"\x00" + header)
        await ws.send_bytes(b"\x01" + header)
        try:
            if self.forward_hook is None:
                raise OSError(f"no kubelet answers port-forward for pod {pod}")
            host, target = await self.forward_hook(ns, pod, port)
            reader, writer = await asyncio.open_connection(host, target)
        except OSError as e:
            error = f"error forwarding port {port} to pod {pod}: {e}"
            await ws.send_bytes(
                b"\x01" + error.encode()
            )  # the port header goes in a channel's first frame only
            return

        async def upstream() -> None:
            while chunk := await reader.read(65536):
                await ws.send_bytes(b"\x00" + chunk)
            await ws.close()

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

    async def _serve_server_version(self, request: Any) -> Any:
        return dict(self.version)

    async def _serve_list(self, request: kmock.Request) -> Any:
        payload: Any = await super()._serve_list(request)
        labels = request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        payload["items"] = [
            i
            for i in payload["items"]
            if (not labels or matches_selector((i.get("metadata") or {}).get("labels") or {}, labels))
            and (not fields or _matches_fields(i, fields))
        ]
        return payload

    # -- state ------------------------------------------------------------------------------------

    def install_crds(self, plurals: Iterable[str] = CHAOS_PLURALS) -> None:
        """Store each vendored Chaos Mesh CRD and serve its resource in every version it declares."""
        for plural in plurals:
            crd = _crd(plural)
            spec = crd["spec"]
            self.objects[
                "apiextensions.k8s.io/v1/customresourcedefinitions", None, crd["metadata"]["name"]
            ] = crd
            for version in spec["versions"]:
                if version.get("served", True):
                    self.resources[f"{spec['group']}/{version['name']}/{spec['names']['plural']}"] = (
                        kmock.ResourceInfo(
                            kind=spec["names"]["kind"],
                            singular=spec["names"].get("singular"),
                            namespaced=spec["scope"] == "Namespaced",
                            verbs={"create", "delete", "get", "list", "patch", "watch"},
                        )
                    )

    def drop_crds(self, group: str = CHAOS_GROUP) -> None:
        """As on a cluster where the group was never installed: its resources are not served."""
        for resource in [r for r in self.resources if r.group == group]:
            del self.resources[resource]
        for key in [k for k in self.objects if k[0].group == "apiextensions.k8s.io"]:
            if str(key[2]).endswith(f".{group}"):
                del self.objects[key]

    def store(self, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[resource, meta.get("namespace"), meta["name"]] = obj


class ServedApi:
    """Serves ``make_api()`` (a kmock handler with ``setup()``) on a private loop thread.

    ``background(api)`` runs beside it (controllers). :meth:`on_loop` awaits a coroutine there,
    where the API's state may be touched safely; :meth:`stop` is bounded.
    """

    def __init__(
        self,
        make_api: Callable[[], Any],
        *,
        background: Callable[[Any], Awaitable[Any]] | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self._make_api = make_api
        self._background = background
        self.loop = asyncio.new_event_loop()
        self._ready: Future[tuple[Any, str]] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._main(),), name="hft-api", daemon=True
        )
        self._thread.start()
        self.api, self.url = self._ready.result(timeout=start_timeout)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        task: asyncio.Task[Any] | None = None
        try:
            async with self._make_api() as api, kmock.Server(api) as server:
                api.setup()
                if self._background is not None:
                    task = asyncio.ensure_future(self._background(api))
                self._ready.set_result((api, str(server.url).rstrip("/")))
                await self._stop.wait()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            raise
        finally:
            if task is not None:
                task.cancel()

    def on_loop(self, fn: Callable[[], Coroutine[Any, Any, Any]], *, timeout: float = 10.0) -> Any:
        """Await ``fn()`` on the server's loop and return its result (bounded)."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout=timeout)

    def locked(self, fn: Callable[[], Any], *, timeout: float = 10.0) -> Any:
        """Run ``fn()`` on the server's loop under the store's lock (bounded)."""

        async def run() -> Any:
            async with self.api._lock:
                return fn()

        return self.on_loop(run, timeout=timeout)

    def stop(self) -> None:
        if self._stop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def write_kubeconfig(path: Path, *, server: str, context: str = "emulated") -> str:
    """A kubeconfig with one context pointing at ``server`` (bearer token auth)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "tester"}}],
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return str(path)
