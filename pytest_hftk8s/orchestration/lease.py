"""The platform's life in one test session (deploy, gate, share, tear down) and the measurement lock.

:class:`PlatformLease` deploys at most once per session even with xdist: workers serialise on a file
lock in a directory they share, and a JSON file holds the reference count and what the owner
published (addresses, ready time, what its cluster shares, the session baseline); the reference count
is the list of live holder pids, so a worker that crashed without releasing does not hold the
platform forever. The worker that deployed owns it - for the local backend its processes are
children of that worker, and other workers reach them through what the cluster shares - so on
release the owner waits (bounded) until the last worker is out, then tears it down. Teardown runs in
``finally`` paths, also on KeyboardInterrupt, as ``--hft-delete`` says (chaos objects and volumes
that earlier runs left are swept whatever it says). Before deploying, the owner runs the cluster's
preflight and prepares the objects (:mod:`.prepare`).

:class:`MeasurementLock` lets one test at a time, across all workers, drive load or inject chaos, so
no test's window carries another test's load or stress. No pytest imports here.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from pytest_hftk8s.cluster.base import Cluster, Sweeper
from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.errors import ClusterError, GateTimeout, HftError
from pytest_hftk8s.gate import GateConfig, ReadinessGate
from pytest_hftk8s.orchestration.prepare import (
    present_addons,
    run_preflight,
    series_preflight,
    without_addons,
)
from pytest_hftk8s.results import PlatformInfo, PreflightCheck, from_dict
from pytest_hftk8s.settings import HftSettings

Progress = Callable[[str], None]

LOCK_NAME = "hftk8s-platform.lock"
STATE_NAME = "hftk8s-platform.json"
MEASURE_LOCK_NAME = "hftk8s-measure.lock"
DB_PASSWORD_KEY = "db_password"
FAILED_KEY = "failed"
#: How long an owner waits for other xdist workers to finish with the platform before tearing down.
OWNER_WAIT_S = 4 * 3600.0


@dataclass
class Platform:
    """What the tests get: where the platform serves, its cluster, and how long it took to be ready."""

    namespace: str
    nginx: tuple[str, int]
    prometheus_url: str
    ready_seconds: float
    cluster: Cluster
    gate_durations: dict[str, float] = field(default_factory=dict)
    owner: bool = False
    cluster_name: str = ""
    progress: Progress | None = None
    access: str = "loopback"
    preflight: list[PreflightCheck] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://{self.nginx[0]}:{self.nginx[1]}"

    def info(self) -> PlatformInfo:
        return PlatformInfo(
            cluster=self.cluster_name,
            namespace=self.namespace,
            nginx=self.api_url,
            prometheus_url=self.prometheus_url,
            ready_seconds=self.ready_seconds,
            gates=dict(self.gate_durations),
            access=self.access,
            preflight=list(self.preflight),
        )

    def wait_ready(self, *, timeout_s: float = 90.0) -> float:
        """Gate the platform again (after a fault), bounded; returns the seconds it took."""
        began = time.monotonic()
        ReadinessGate(self.cluster, config=GateConfig(timeout_s=timeout_s), progress=self.progress).wait()
        return time.monotonic() - began


@dataclass
class _Shared:
    holders: list[int] = field(default_factory=list)  # pids holding a reference (the refcount)
    deployed: bool = False
    owner_pid: int = 0
    published: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)  # what the owner's cluster shares
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the session baseline


class PlatformLease:
    """Acquire the deployed, gated platform; release it. See the module docstring."""

    def __init__(
        self,
        settings: HftSettings,
        *,
        shared_dir: pathlib.Path,
        session_start: float,
        make_cluster: Callable[[], Cluster],
        attach_cluster: Callable[[Mapping[str, str]], Cluster],
        render: Callable[[str, Mapping[str, str]], list[dict[str, Any]]],
        images: Callable[[], Mapping[str, str]] | None = None,
        chaos_allowed: bool = False,
        series_check: Callable[..., list[PreflightCheck]] = series_preflight,
        progress: Progress | None = None,
        gate_config: GateConfig | None = None,
    ) -> None:
        self.settings = settings
        self.shared_dir = shared_dir
        self.session_start = session_start
        self._make_cluster = make_cluster
        self._attach_cluster = attach_cluster
        self._render = render
        self._images = images or dict
        self._chaos_allowed = chaos_allowed
        self._series_check = series_check
        self._password: str | None = None
        self.failed = False  # a test of this process failed (for --hft-delete=on-success)
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
                    shared = _Shared(
                        deployed=True,
                        owner_pid=os.getpid(),
                        published=asdict(self.platform.info()),
                        shared=dict(self.platform.cluster.share()),
                        # The session's private basetemp, never the repository: workers' DB checks need it.
                        extra={DB_PASSWORD_KEY: self._password} if self._password else {},
                    )
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
            self._teardown_cluster(platform.cluster)
            with lock:
                (self.shared_dir / STATE_NAME).unlink(missing_ok=True)
        else:
            with contextlib.suppress(HftError):
                platform.cluster.close()
        self.platform = None

    def publish(self, key: str, value: Any) -> None:
        """Share a JSON-ready value with every worker of the session (first writer wins)."""
        from filelock import FileLock

        with FileLock(str(self.shared_dir / LOCK_NAME), timeout=60):
            shared = self._read()
            shared.extra.setdefault(key, value)
            self._write(shared)

    def published(self, key: str) -> Any:
        from filelock import FileLock

        with FileLock(str(self.shared_dir / LOCK_NAME), timeout=60):
            return self._read().extra.get(key)

    # -- internals ------------------------------------------------------------------------------

    def preflight_only(self) -> list[PreflightCheck]:
        """``--hft-preflight``: the cluster's checks and nothing else (no build, no deploy)."""
        cluster = self._make_cluster()
        try:
            images = {} if self.settings.images != "skip" else self._images()
            return cluster.preflight(images=tuple(images.values()), chaos=self._chaos_allowed)
        finally:
            with contextlib.suppress(HftError):
                cluster.close()

    def _deploy(self) -> Platform:
        s = self.settings
        cluster = self._make_cluster()
        try:
            # Images the session builds or loads are checked by doing it; those it only expects, by the preflight.
            expected = self._images() if s.images == "skip" else {}
            rows = run_preflight(
                cluster, images=expected.values(), chaos=self._chaos_allowed, progress=self._progress
            )
            images = expected or self._images()
            self._progress(f"rendering manifests/overlays/{s.profile}")
            objects = without_addons(self._render(s.profile, images), present_addons(rows))
            if s.db_secret is None:
                self._password = new_password()
            objects = with_db_secret(objects, password=self._password, secret_name=s.db_secret)
            self._sweep(cluster, when="before deploying")
            self._progress(f"deploying {len(objects)} objects to {cluster.name} (namespace {s.namespace})")
            _bounded(lambda: cluster.apply(objects), s.deploy_timeout, what="applying the manifests")
            gates = ReadinessGate(cluster, config=self._gate_config, progress=self._progress).wait()
            ready = time.time() - self.session_start
            nginx = cluster.service_address("nginx", 80)
            prom_url = s.prometheus_url or cluster.service_address("prometheus", 9090).url
            rows = rows + self._series_check(
                prom_url, namespace=s.namespace, cluster=cluster.name, progress=self._progress
            )
        except BaseException:
            self._teardown_cluster(cluster, deployed=False)
            raise
        self._progress(
            f"platform ready in {ready:.1f}s since session start; load reaches nginx by {nginx.via}"
        )
        return Platform(
            namespace=s.namespace,
            nginx=(nginx.host, nginx.port),
            prometheus_url=prom_url,
            ready_seconds=ready,
            gate_durations={k: round(v, 3) for k, v in gates.durations.items()},
            cluster=cluster,
            owner=True,
            cluster_name=cluster.name,
            progress=self._progress,
            access=nginx.via,
            preflight=rows,
        )

    def db_password(self) -> str | None:
        """The generated database password of this session (None with --hft-db-secret)."""
        if self._password is None:
            self._password = self.published(DB_PASSWORD_KEY)
        return self._password

    def _sweep(self, cluster: Cluster, *, when: str) -> None:
        """Remove chaos objects and volumes earlier runs left in the namespace (a backend that keeps
        nothing between runs has nothing to sweep)."""
        if not isinstance(cluster, Sweeper):
            return
        removed = cluster.sweep(keep_run_id=None)
        if removed:
            self._progress(f"swept {when}: {', '.join(removed)}")

    def _attach(self, shared: _Shared) -> Platform:
        info = from_dict(PlatformInfo, shared.published)
        host, port = info.nginx.removeprefix("http://").rsplit(":", 1)
        cluster = self._attach_cluster(shared.shared)
        self._progress(f"attached to the platform deployed by pid {shared.owner_pid}")
        if info.access == "port-forward":
            # A port-forward runs in the process that opened it: this worker's load gets its own, so
            # its CPU counts in this worker's validity check rather than in the owner's.
            address = cluster.service_address("nginx", 80)
            host, port = address.host, str(address.port)
        return Platform(
            namespace=info.namespace,
            nginx=(host, int(port)),
            prometheus_url=self.settings.prometheus_url or info.prometheus_url,
            ready_seconds=info.ready_seconds,
            gate_durations=dict(info.gates),
            cluster=cluster,
            owner=False,
            cluster_name=info.cluster,
            progress=self._progress,
            access=info.access,
            preflight=list(info.preflight),
        )

    def _wait_for_others(self, lock: Any) -> None:
        deadline = time.monotonic() + OWNER_WAIT_S
        noted = False
        while time.monotonic() < deadline:
            with lock:
                # A worker that died without releasing (xdist crash) no longer counts.
                if not [pid for pid in self._read().holders if psutil.pid_exists(pid)]:
                    return
            if not noted:
                self._progress("other workers still use the platform; waiting for the last one out")
                noted = True
            time.sleep(0.5)

    def _teardown_cluster(self, cluster: Cluster, *, deployed: bool = True) -> None:
        """Sweep chaos and volumes always; delete the platform unless ``--hft-delete`` says keep it."""
        policy = self.settings.delete
        # A deploy that did not get ready is a failure too: on-success keeps it for a look.
        failed = not deployed or self.failed or bool(self._published_unlocked(FAILED_KEY))
        keep = policy == "never" or (policy == "on-success" and failed)
        try:
            self._sweep(cluster, when="at teardown")
            if keep:
                why = (
                    "--hft-delete=never" if policy == "never" else "--hft-delete=on-success and a test failed"
                )
                self._progress(f"{why}: leaving the platform running in namespace {self.settings.namespace}")
                return
            self._progress("tearing the platform down")
            cluster.delete_all()
        finally:
            with contextlib.suppress(HftError):
                cluster.close()

    def note_failure(self) -> None:
        """A test failed: remembered across workers for ``--hft-delete=on-success``."""
        self.failed = True
        with contextlib.suppress(HftError, OSError):
            self.publish(FAILED_KEY, True)

    def _published_unlocked(self, key: str) -> Any:
        with contextlib.suppress(HftError, OSError):
            return self._read().extra.get(key)
        return None

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
        if shared.deployed and shared.owner_pid and not psutil.pid_exists(shared.owner_pid):
            return _Shared()  # its owner died: what it deployed went with it (or is swept by the backend)
        return shared

    def _write(self, shared: _Shared) -> None:
        path = self.shared_dir / STATE_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(shared)))
        tmp.replace(path)


class MeasurementLock:
    """One test at a time, across every xdist worker, drives load or injects chaos.

    Taken when a test starts its first load run or experiment (:meth:`hold`), kept until the test's
    teardown is over (:meth:`release`), so its SLO window holds no one else's load or stress. Waiting
    is bounded by ``--hft-measure-timeout``.
    """

    def __init__(
        self, shared_dir: pathlib.Path, *, timeout_s: float, progress: Progress | None = None
    ) -> None:
        from filelock import FileLock

        shared_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(shared_dir / MEASURE_LOCK_NAME), thread_local=False)
        self.timeout_s = timeout_s
        self._progress = progress or (lambda _m: None)
        self._guard = threading.Lock()
        self.holder: str | None = None
        self.waited_s = 0.0

    def hold(self, nodeid: str) -> None:
        from filelock import Timeout

        with self._guard:
            if self.holder == nodeid:
                return
            if self.holder is not None:
                raise HftError(f"{nodeid} wants the measurement lock while {self.holder} still holds it")
            began = time.monotonic()
            try:
                self._lock.acquire(timeout=0)
            except Timeout:
                self._progress(f"{nodeid}: waiting for another worker's load or chaos to finish")
                try:
                    self._lock.acquire(timeout=self.timeout_s)
                except Timeout as e:
                    raise GateTimeout(
                        f"{nodeid} waited {self.timeout_s:g}s for the measurement lock (another xdist worker's "
                        "load or chaos); raise --hft-measure-timeout, or run fewer workers"
                    ) from e
            self.waited_s = time.monotonic() - began
            self.holder = nodeid

    def release(self, nodeid: str | None = None) -> None:
        with self._guard:
            if self.holder is None or (nodeid is not None and self.holder != nodeid):
                return
            self.holder = None
            self._lock.release()


def _bounded(call: Callable[[], None], timeout: float, *, what: str) -> None:
    """Run ``call`` on a helper thread; raise ClusterError if it has not returned in ``timeout`` s."""
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
