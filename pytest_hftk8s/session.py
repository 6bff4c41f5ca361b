"""Orchestration of the platform's life in one test session: select, render, deploy, gate, tear down.

:class:`PlatformLease` deploys at most once per session even with xdist: workers serialise on a file
lock in a directory they share, and a JSON file holds the reference count and what the owner
published (addresses, ready time); the reference count is the list of live holder pids, so a
worker that crashed without releasing does not hold the platform forever. The worker that deployed
owns the platform - for the local
backend its processes are children of that worker - so on release the owner waits (bounded) until
the reference count drops to zero, i.e. until the last worker is out, and then tears it down.
Teardown runs in ``finally`` paths, also on KeyboardInterrupt, unless ``--hft-keep``.

No pytest imports here: the plugin passes plain settings and callbacks in.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.errors import ClusterError, HftError
from pytest_hftk8s.gate import GateConfig, ReadinessGate
from pytest_hftk8s.options import HftSettings

Progress = Callable[[str], None]
ClusterFactory = Callable[[], Cluster]

LOCK_NAME = "hftk8s-platform.lock"
STATE_NAME = "hftk8s-platform.json"
#: How long an owner waits for other xdist workers to finish with the platform before tearing down.
OWNER_WAIT_S = 4 * 3600.0


@dataclass
class Platform:
    """What the tests get: where the platform serves, and how long it took to become ready."""

    namespace: str
    nginx: tuple[str, int]
    prometheus_url: str
    ready_seconds: float
    gate_durations: dict[str, float] = field(default_factory=dict)
    cluster: Cluster | None = None  # None in an xdist worker that attached to another's platform
    owner: bool = False
    cluster_name: str = ""

    def info(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster_name,
            "namespace": self.namespace,
            "nginx": f"http://{self.nginx[0]}:{self.nginx[1]}",
            "prometheus_url": self.prometheus_url,
            "ready_seconds": self.ready_seconds,
            "gates": self.gate_durations,
        }


@dataclass
class _Shared:
    holders: list[int] = field(default_factory=list)  # pids holding a reference (the refcount)
    deployed: bool = False
    owner_pid: int = 0
    published: dict[str, Any] = field(default_factory=dict)


class PlatformLease:
    """Acquire the deployed, gated platform; release it. See the module docstring."""

    def __init__(
        self,
        settings: HftSettings,
        *,
        shared_dir: pathlib.Path,
        session_start: float,
        make_cluster: ClusterFactory,
        render: Callable[[str], list[dict[str, Any]]],
        progress: Progress | None = None,
        gate_config: GateConfig | None = None,
    ) -> None:
        self.settings = settings
        self.shared_dir = shared_dir
        self.session_start = session_start
        self._make_cluster = make_cluster
        self._render = render
        self._progress = progress or (lambda _m: None)
        self._gate_config = gate_config or GateConfig(timeout_s=settings.gate_timeout)
        self.platform: Platform | None = None

    # -- public ---------------------------------------------------------------------------------

    def acquire(self) -> Platform:
        from filelock import FileLock, Timeout

        self.shared_dir.mkdir(parents=True, exist_ok=True)
        bound = self.settings.deploy_timeout + self.settings.gate_timeout + 30
        try:
            with FileLock(str(self.shared_dir / LOCK_NAME), timeout=bound):
                shared = self._read()
                if shared.deployed and shared.published:
                    self.platform = self._attach(shared)
                else:
                    self.platform = self._deploy()
                    shared = _Shared(deployed=True, owner_pid=os.getpid(), published=self.platform.info())
                shared.holders.append(os.getpid())
                self._write(shared)
        except Timeout as e:
            raise ClusterError(
                f"expected the platform lock {self.shared_dir / LOCK_NAME} within {bound:.0f}s; another "
                "worker holds it (deploying?). Raise --hft-deploy-timeout/--hft-gate-timeout"
            ) from e
        return self.platform

    def release(self) -> None:
        platform = self.platform
        if platform is None:
            return
        from filelock import FileLock

        lock = FileLock(str(self.shared_dir / LOCK_NAME), timeout=60)
        with lock:
            shared = self._read()
            if os.getpid() in shared.holders:
                shared.holders.remove(os.getpid())
            self._write(shared)
        if platform.owner:
            self._wait_for_others(lock)
            self._teardown(platform)
            with lock:
                (self.shared_dir / STATE_NAME).unlink(missing_ok=True)
        self.platform = None

    # -- internals ------------------------------------------------------------------------------

    def _deploy(self) -> Platform:
        s = self.settings
        self._progress(f"rendering manifests/overlays/{s.profile}")
        objects = self._render(s.profile)
        cluster = self._make_cluster()
        try:
            self._progress(f"deploying {len(objects)} objects to {cluster.name} (namespace {s.namespace})")
            _bounded(lambda: cluster.apply(objects), s.deploy_timeout, what="applying the manifests")
            gates = ReadinessGate(cluster, config=self._gate_config, progress=self._progress).wait()
            ready = time.time() - self.session_start
            nginx = cluster.service_address("nginx", 80)
            prom_url = s.prometheus_url or cluster.service_address("prometheus", 9090).url
        except BaseException:
            self._teardown_cluster(cluster)
            raise
        self._progress(f"platform ready in {ready:.1f}s since session start")
        return Platform(
            namespace=s.namespace,
            nginx=(nginx.host, nginx.port),
            prometheus_url=prom_url,
            ready_seconds=ready,
            gate_durations={k: round(v, 3) for k, v in gates.durations.items()},
            cluster=cluster,
            owner=True,
            cluster_name=cluster.name,
        )

    def _attach(self, shared: _Shared) -> Platform:
        info = shared.published
        host, port = info["nginx"].removeprefix("http://").rsplit(":", 1)
        cluster: Cluster | None = None
        if self.settings.cluster != "local":
            cluster = self._make_cluster()  # a kube context is shared state: any worker may talk to it
        self._progress(f"attached to the platform deployed by pid {shared.owner_pid}")
        return Platform(
            namespace=info["namespace"],
            nginx=(host, int(port)),
            prometheus_url=self.settings.prometheus_url or info["prometheus_url"],
            ready_seconds=info["ready_seconds"],
            gate_durations=info.get("gates", {}),
            cluster=cluster,
            owner=False,
            cluster_name=info.get("cluster", ""),
        )

    def _wait_for_others(self, lock: Any) -> None:
        deadline = time.monotonic() + OWNER_WAIT_S
        noted = False
        while time.monotonic() < deadline:
            with lock:
                # A worker that died without releasing (xdist crash) no longer counts.
                if not [pid for pid in self._read().holders if _alive(pid)]:
                    return
            if not noted:
                self._progress("other workers still use the platform; waiting for the last one out")
                noted = True
            time.sleep(0.5)

    def _teardown(self, platform: Platform) -> None:
        if platform.cluster is not None:
            self._teardown_cluster(platform.cluster)

    def _teardown_cluster(self, cluster: Cluster) -> None:
        if self.settings.keep:
            self._progress(f"--hft-keep: leaving the platform running in namespace {self.settings.namespace}")
            with contextlib.suppress(HftError):
                cluster.close()
            return
        self._progress("tearing the platform down")
        try:
            cluster.delete_all()
        finally:
            with contextlib.suppress(HftError):
                cluster.close()

    def _read(self) -> _Shared:
        path = self.shared_dir / STATE_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return _Shared()
        except ValueError as e:
            raise ClusterError(
                f"{path} is not valid JSON ({e}); delete it if no test session is running"
            ) from e
        shared = _Shared(**data)
        if shared.deployed and shared.owner_pid and not _alive(shared.owner_pid):
            return _Shared()  # its owner died: what it deployed went with it (or is swept by the backend)
        return shared

    def _write(self, shared: _Shared) -> None:
        path = self.shared_dir / STATE_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(shared)))
        tmp.replace(path)


def _bounded(call: Callable[[], None], timeout: float, *, what: str) -> None:
    """Run ``call`` on a helper thread; raise ClusterError if it has not returned in ``timeout`` s."""
    import threading

    error: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as e:
            error.append(e)

    thread = threading.Thread(target=target, name="hft-deploy", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ClusterError(
            f"{what} took longer than --hft-deploy-timeout={timeout:g}s; raise it or check the cluster"
        )
    if error:
        raise error[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
