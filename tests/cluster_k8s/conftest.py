"""A Kubernetes API server stand-in for the kubernetes backend and the Chaos Mesh driver.

kmock's ``KubernetesEmulator`` (an in-memory object store over real HTTP) runs on its own event loop
in a background thread, because the code under test uses the synchronous ``kubernetes`` client. The
subclass below adds the few API-server behaviours kmock 0.8 leaves out and our client relies on:

* server-side apply (``PATCH`` with ``application/apply-patch+yaml``) creates a missing object;
* list requests honour equality-based ``labelSelector``;
* ``/api/v1/namespaces/<name>`` (kmock's path parser reads it as a namespace, not an object);
* the websocket subresources: ``exec`` runs ``getent ahosts NAME`` against ``emulator.dns`` (the
  channel protocol: stdout on 1, the exit status on 3), and ``portforward`` is an echo server on the
  requested port (data on channel 0, the two-byte port header first);
* a minimal Chaos Mesh controller: it marks chaos objects ``AllInjected`` with container records
  (or records failure events), and on deletion reports ``AllRecovered`` and drops its finalizer.

Everything the client sent stays in ``emulator.requests()`` for assertions.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import aiohttp.web
import kmock
import pytest
import yaml

NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)$")
CHAOS_GROUP = "chaos-mesh.org"
RESOURCES = {
    "v1/pods": "Pod",
    "v1/services": "Service",
    "v1/events": "Event",
    "v1/configmaps": "ConfigMap",
    "apps/v1/deployments": "Deployment",
    "apps/v1/statefulsets": "StatefulSet",
    "discovery.k8s.io/v1/endpointslices": "EndpointSlice",
    "chaos-mesh.org/v1alpha1/stresschaos": "StressChaos",
    "chaos-mesh.org/v1alpha1/podchaos": "PodChaos",
    "chaos-mesh.org/v1alpha1/networkchaos": "NetworkChaos",
    "chaos-mesh.org/v1alpha1/schedules": "Schedule",
}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus apply-creates, label selectors, namespaces and a chaos controller."""

    def setup(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.chaos_behaviour = "inject"  # "inject" | "fail" | "silent"
        self.recover_delay = 0.2
        self._seen: dict[Any, float] = {}
        self.dns: dict[str, list[str]] = {}  # what getent resolves inside every pod
        for resource, kind in RESOURCES.items():  # listable (and discoverable) even while empty
            self.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=True, verbs={"list", "get"})

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._serve_websocket(request)
        ns_match = NAMESPACE_PATH.match(request.url.path)
        if ns_match:
            return self._serve_namespace(request, ns_match.group(1))
        content_type = request.headers.get("Content-Type", "")
        if request.method == "PATCH" and content_type.startswith("application/apply-patch") and request.name:
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self.objects:
                    self.objects[key] = {}
                elif self.objects[key].deleted:
                    self.objects[key].create({})
        return await super()._handle(request)

    def _serve_namespace(self, request: kmock.Request, name: str) -> aiohttp.web.StreamResponse:
        if request.method == "PATCH":
            self.namespaces[name] = request.data
        elif name not in self.namespaces:
            return aiohttp.web.json_response(
                {"kind": "Status", "code": 404, "message": "not found"}, status=404
            )
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
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x00":
                    await ws.send_bytes(b"\x00echo:" + message.data[1:])
        await ws.close()
        return ws

    async def _serve_list(self, request: kmock.Request) -> Any:
        payload = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            payload["items"] = [
                i for i in payload["items"] if _matches(i.get("metadata", {}).get("labels") or {}, selector)
            ]
        return payload

    async def chaos_controller(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            async with self._lock:
                for key, obj in list(self.objects.items()):
                    resource = key[0]
                    if resource.group == CHAOS_GROUP and resource.plural != "schedules" and not obj.deleted:
                        self._reconcile(key, obj)

    def _reconcile(self, key: Any, obj: Any) -> None:
        seen = self._seen.setdefault(key, time.monotonic())
        meta = obj.get("metadata", {})
        if meta.get("deletionTimestamp"):
            if (
                time.monotonic() - self._seen.setdefault((key, "deleted"), time.monotonic())
                >= self.recover_delay
            ):
                obj.patch({"status": {"conditions": [{"type": "AllRecovered", "status": "True"}]}})
                obj.delete()  # finalizer released: the object is gone
                self._seen.pop((key, "deleted"), None)
                self._seen.pop(key, None)
            return
        if "status" in obj or time.monotonic() - seen < 0.1 or self.chaos_behaviour == "silent":
            return
        pod = f"{key[1]}/{meta.get('name', 'x')}-target-0"
        if self.chaos_behaviour == "inject":
            event = {"type": "Succeeded", "operation": "Apply", "timestamp": _now()}
            record = {
                "id": pod,
                "phase": "Injected",
                "selectorKey": ".",
                "injectedCount": 1,
                "recoveredCount": 0,
            }
            conditions = [{"type": "Selected", "status": "True"}, {"type": "AllInjected", "status": "True"}]
        else:
            message = "rpc error: code = Unknown desc = stress-ng: cannot attach to the container's cgroup"
            event = {"type": "Failed", "operation": "Apply", "message": message, "timestamp": _now()}
            record = {
                "id": pod,
                "phase": "Not Injected",
                "selectorKey": ".",
                "injectedCount": 0,
                "recoveredCount": 0,
            }
            conditions = [{"type": "Selected", "status": "True"}, {"type": "AllInjected", "status": "False"}]
        obj.patch(
            {
                "metadata": {"finalizers": ["chaos-mesh/records"]},
                "status": {
                    "conditions": conditions,
                    "experiment": {
                        "desiredPhase": "Run",
                        "containerRecords": [{**record, "events": [event]}],
                    },
                },
            }
        )

    def requests(self) -> list[kmock.Request]:
        return list(self)


class EmulatorThread:
    """Runs an :class:`Emulator` and its HTTP server on a private event loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready: Future[tuple[Emulator, str]] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._main(),), daemon=True
        )
        self._thread.start()
        self.emulator, self.url = self._ready.result(timeout=10)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with Emulator() as emulator, kmock.Server(emulator) as server:
                emulator.setup()
                controller = asyncio.create_task(emulator.chaos_controller())
                self._ready.set_result((emulator, str(server.url).rstrip("/")))
                await self._stop.wait()
                controller.cancel()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            raise

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's loop (where its objects may be touched safely)."""

        async def run() -> Any:
            async with self.emulator._lock:
                return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=5)

    def stop(self) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self.loop.close()


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
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "emulated",
        "clusters": [{"name": "emulated", "cluster": {"server": emulator_thread.url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "tester"}}],
    }
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture
def body_of() -> Callable[[kmock.Request], Any]:
    """The JSON body a request carried (whatever its content type said)."""
    return lambda request: json.loads(request.body) if request.body else None
