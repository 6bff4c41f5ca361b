"""What a whole test session on an emulated kind context needs around it, for test_session_on_kube.

* :class:`SessionEmulator`: the cluster emulator of ``conftest.py`` (controllers, kubelet, DNS,
  port-forward, the Chaos Mesh stand-in; through the package's ``ApiServer`` it also answers what the
  preflight asks: SelfSubjectAccessReviews, ``/version``, StorageClasses, DaemonSets, CRDs), seeded
  as a kind cluster with Chaos Mesh installed would be: kind's default ``standard`` StorageClass, the
  chaos-daemon DaemonSet ready, the Chaos Mesh CRDs served, a node running containerd. Every
  request is journaled with its wall-clock time, so the outer test can put it on one timeline with
  the fake CLIs and the nginx stand-in.
* :func:`fake_clis`: ``docker`` and ``kind`` stand-ins on PATH that append ``time argv`` to a file
  and exit 0 (no Docker here); the session's image steps run them as they would the real ones.
* :class:`NginxStandIn`: what kind's ``extraPortMappings`` put on 127.0.0.1:30080 - a real HTTP
  server answering the warm-up registrations with 201, journaling when each came.

It must not change what the plugin does: it only plays the cluster, the CLIs and nginx.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import pathlib
import stat
import sys
import threading
import time
from typing import Any

import kmock
from preflight_emulator import chaos_daemon, standard_storage_class

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "slo"))


def _load_conftest() -> Any:
    """This folder's conftest as a plain module (its name ``conftest`` is ambiguous in sys.modules)."""
    spec = importlib.util.spec_from_file_location("cluster_k8s_emulator", HERE / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_conftest = _load_conftest()
Emulator = _conftest.Emulator
EmulatorThread = _conftest.EmulatorThread
NODE = _conftest.NODE


class SessionEmulator(Emulator):  # type: ignore[misc,valid-type]
    """The cluster emulator seeded as a kind cluster with Chaos Mesh; see the module docstring."""

    def setup(self) -> None:
        super().setup()  # the Chaos Mesh CRDs are installed there
        self.journal: list[tuple[float, str, str]] = []  # (time.time(), method, path) of every request
        self.store("storage.k8s.io/v1/storageclasses", standard_storage_class())
        self.store("apps/v1/daemonsets", chaos_daemon())
        node = self.objects["v1/nodes", None, NODE]
        node.patch({"status": {"nodeInfo": {"containerRuntimeVersion": "containerd://2.1.1"}}})

    async def _handle(self, request: kmock.Request) -> Any:
        method = getattr(request.method, "value", request.method)
        self.journal.append((time.time(), str(method).upper(), request.url.path))
        return await super()._handle(request)


class SessionThread(EmulatorThread):  # type: ignore[misc,valid-type]
    """``EmulatorThread`` running a :class:`SessionEmulator` with its controllers on."""

    def __init__(self) -> None:
        super().__init__(SessionEmulator)

    @staticmethod
    async def _controllers(emulator: Any) -> None:
        emulator.controllers_on = True
        await emulator.controllers()


def fake_clis(directory: pathlib.Path, log: pathlib.Path) -> pathlib.Path:
    """``docker`` and ``kind`` in ``directory`` that append ``<epoch seconds> <name> <args>`` to ``log``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("docker", "kind"):
        script = directory / name
        script.write_text(f'#!/bin/sh\necho "$(date +%s.%N) {name} $*" >> "{log}"\necho "{name}: ok"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def cli_calls(log: pathlib.Path) -> list[tuple[float, list[str]]]:
    if not log.exists():
        return []
    rows = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [(float(r[0]), r[1:]) for r in rows]


class _Registrations(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posts: list[tuple[float, str]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts.append((time.time(), self.path))  # type: ignore[attr-defined]
        payload = json.dumps({"user_id": 1, "api_key": "k"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class NginxStandIn:
    """A real HTTP server on ``host:port`` answering ``POST /v1/users`` with 201 (see the docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 30080) -> None:
        self.server = http.server.ThreadingHTTPServer((host, port), _Registrations)
        self.server.posts = []  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def posts(self) -> list[tuple[float, str]]:
        return list(self.server.posts)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
