"""The local cluster for other processes: a control socket in the owner, a client in the others.

The local cluster's pods are children of the process that deployed it (one xdist worker). Other
workers attach through :class:`RemoteCluster`: every call of the cluster contract and of the chaos
driver is one request over an authenticated Unix socket (``multiprocessing.connection``) served by
:class:`ControlServer` in the owner, which injects chaos on the caller's behalf with the same local
driver. Each request opens its own connection, so a SIGINT handler that removes chaos never shares
a connection with the call it interrupted; every request is bounded by a timeout. Chaos a caller
started is removed by the owner when the caller removes it, when the caller's process dies (a reaper
checks), and when the owner closes the server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from pytest_hftk8s import errors
from pytest_hftk8s.chaos import registry
from pytest_hftk8s.chaos.driver import ChaosRun
from pytest_hftk8s.chaos.experiments import Experiment, Schedule
from pytest_hftk8s.cluster.base import (
    ClusterEvent,
    Endpoint,
    KubeObject,
    PodStatus,
    ServiceAddress,
    WorkloadStatus,
)
from pytest_hftk8s.errors import ClusterError
from pytest_hftk8s.results import PreflightCheck

if TYPE_CHECKING:
    from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos
    from pytest_hftk8s.cluster.local.cluster import LocalCluster

#: Cluster-contract reads a remote caller may make.
READS = (
    "workloads",
    "pods",
    "services",
    "endpoints",
    "resolve_in_pod",
    "service_address",
    "pod_logs",
    "events",
    "preflight",
)
CALL_TIMEOUT_S = 30.0
CHAOS_TIMEOUT_S = 120.0  # an injection verifies its effect (a few seconds); removal waits for recovery
REAP_INTERVAL_S = 1.0


class ControlServer:
    """Serves one LocalCluster to other processes; see the module docstring."""

    def __init__(self, cluster: LocalCluster, *, directory: Path) -> None:
        self.cluster = cluster
        directory.mkdir(parents=True, exist_ok=True)
        self.path = (
            directory / "control.sock"
        )  # in the run's own directory: the sweep removes it with the run
        self.path.unlink(missing_ok=True)
        self.authkey = secrets.token_bytes(16)
        self._listener = Listener(str(self.path), family="AF_UNIX", authkey=self.authkey)
        self._lock = threading.Lock()
        self._drivers: dict[str, LocalChaos] = {}  # caller run id -> its driver
        self._runs: dict[str, tuple[int, ChaosRun, LocalChaos]] = {}  # run key -> (caller pid, run, driver)
        self._closed = threading.Event()
        self._threads = [
            threading.Thread(target=self._accept, name="hft-local-control", daemon=True),
            threading.Thread(target=self._reap, name="hft-local-control-reaper", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def shared(self) -> dict[str, str]:
        return {"control": str(self.path), "authkey": self.authkey.hex(), "namespace": self.cluster.namespace}

    def close(self) -> None:
        """Stop serving and remove whatever chaos callers left injected. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            left = list(self._runs.values())
            self._runs.clear()
        for _pid, run, driver in left:
            with contextlib.suppress(Exception):  # teardown goes on; the cluster kills what is left
                driver.remove(run)

    # -- serving ----------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn = self._listener.accept()
            except (OSError, EOFError, AuthenticationError):  # closed, or a caller with the wrong key
                if self._closed.is_set():
                    return
                continue
            threading.Thread(
                target=self._serve, args=(conn,), name="hft-local-control-call", daemon=True
            ).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            try:
                op, args, kwargs, caller = conn.recv()
            except (EOFError, OSError):
                return
            try:
                reply: tuple[str, Any] = ("ok", self._dispatch(op, args, kwargs, caller))
            except errors.HftError as e:
                reply = ("error", (type(e).__name__, str(e)))
            except Exception as e:  # a bug or a broken pod: the caller sees it as a cluster error
                reply = ("error", ("ClusterError", f"{op} failed in the owner: {type(e).__name__}: {e}"))
            with contextlib.suppress(OSError):
                conn.send(reply)

    def _dispatch(
        self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any], caller: dict[str, Any]
    ) -> Any:
        if op in READS:
            return getattr(self.cluster, op)(*args, **kwargs)
        if op == "chaos.start":
            driver = self._driver(str(caller["run_id"]))
            run = driver.start(*args, **kwargs)
            with self._lock:
                self._runs[run.key] = (int(caller["pid"]), run, driver)
            return run
        if op == "chaos.remove":
            with self._lock:
                entry = self._runs.pop(str(args[0]), None)
            if entry is None:
                return None
            entry[2].remove(entry[1])
            return entry[1]
        if op == "chaos.records":
            with self._lock:
                entry = self._runs.get(str(args[0]))
            return entry[2].records(entry[1]) if entry is not None else None
        raise ClusterError(f"the local cluster's control socket has no operation {op!r}")

    def _driver(self, run_id: str) -> LocalChaos:
        with self._lock:
            driver = self._drivers.get(run_id)
            if driver is None:
                driver = self._drivers[run_id] = self.cluster.chaos_driver(
                    run_id=run_id, allowed_contexts=(), echo=self.cluster.progress
                )  # type: ignore[assignment]
            return driver

    def _reap(self) -> None:
        """Remove the chaos of callers whose process died without removing it."""
        while not self._closed.wait(REAP_INTERVAL_S):
            with self._lock:
                dead = [k for k, (pid, _r, _d) in self._runs.items() if not psutil.pid_exists(pid)]
                entries = [self._runs.pop(k) for k in dead]
            for pid, run, driver in entries:
                self.cluster.progress(f"chaos {run.name}: its caller (pid {pid}) died; removing it")
                try:
                    driver.remove(run)
                except Exception as e:  # keep reaping the others; the cluster's teardown kills the rest
                    self.cluster.progress(f"chaos {run.name}: could not be removed: {type(e).__name__}: {e}")


class RemoteCluster:
    """The :class:`~pytest_hftk8s.cluster.base.Cluster` contract of a local cluster another process owns."""

    name = "local"

    def __init__(self, *, path: str, authkey: bytes, namespace: str) -> None:
        self.path = path
        self.authkey = authkey
        self.namespace = namespace

    @classmethod
    def connect(cls, shared: Mapping[str, str]) -> RemoteCluster:
        missing = [k for k in ("control", "authkey", "namespace") if not shared.get(k)]
        if missing:
            raise ClusterError(
                f"expected the owner of the local cluster to publish its control socket; missing {missing}. "
                "Was the platform deployed by an older plugin version? Delete the platform state and rerun."
            )
        remote = cls(
            path=shared["control"], authkey=bytes.fromhex(shared["authkey"]), namespace=shared["namespace"]
        )
        remote.services()  # fail now, with the reason, rather than in the first test
        return remote

    def call(
        self, op: str, *args: Any, timeout: float = CALL_TIMEOUT_S, run_id: str = "", **kwargs: Any
    ) -> Any:
        try:
            conn = Client(self.path, family="AF_UNIX", authkey=self.authkey)
        except (OSError, EOFError, AuthenticationError) as e:
            raise ClusterError(
                f"expected the local cluster's owner (another xdist worker) to answer on {self.path}: {e}. "
                "Did it exit early? Its output says why."
            ) from e
        with conn:
            conn.send((op, args, kwargs, {"pid": os.getpid(), "run_id": run_id}))
            if not conn.poll(timeout):
                raise ClusterError(
                    f"the local cluster's owner did not answer {op} within {timeout:g}s; it may be overloaded"
                )
            status, value = conn.recv()
        if status == "ok":
            return value
        kind, message = value
        raise getattr(errors, kind, ClusterError)(message)

    # -- the Cluster contract ---------------------------------------------------------------------

    def apply(self, objects: Sequence[KubeObject]) -> None:
        raise ClusterError(
            "this process attached to a local cluster another one owns; only the owner deploys"
        )

    def delete_all(self) -> None:
        """Nothing to do: the owner tears its cluster down when the last process is out."""

    def workloads(self) -> list[WorkloadStatus]:
        return list(self.call("workloads"))

    def pods(self) -> list[PodStatus]:
        return list(self.call("pods"))

    def services(self) -> list[str]:
        return list(self.call("services"))

    def endpoints(self, service: str) -> list[Endpoint]:
        return list(self.call("endpoints", service))

    def resolve_in_pod(self, pod: str, hostname: str) -> list[str]:
        return list(self.call("resolve_in_pod", pod, hostname))

    def service_address(self, service: str, port: int | str) -> ServiceAddress:
        address: ServiceAddress = self.call("service_address", service, port)
        return address

    def pod_logs(self, pod: str, *, container: str | None = None, tail: int = 200) -> str:
        return str(self.call("pod_logs", pod, container=container, tail=tail))

    def events(self) -> list[ClusterEvent]:
        return list(self.call("events"))

    def close(self) -> None:
        """Nothing held between calls."""

    def chaos_driver(
        self, *, run_id: str, allowed_contexts: Sequence[str], echo: Callable[[str], None]
    ) -> RemoteChaos:
        return RemoteChaos(self, run_id=run_id, echo=echo)

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        """The owner's rows: its process runs the pods, so its rights and its view of the machine count."""
        return list(self.call("preflight", images=tuple(images), chaos=chaos))

    def share(self) -> Mapping[str, str]:
        return {"control": self.path, "authkey": self.authkey.hex(), "namespace": self.namespace}


class RemoteChaos:
    """The local chaos driver, run by the owner on this process's behalf."""

    def __init__(self, cluster: RemoteCluster, *, run_id: str, echo: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.run_id = run_id
        self.echo = echo

    @contextlib.contextmanager
    def inject(self, experiment: Experiment | Schedule, *, name: str | None = None) -> Iterator[ChaosRun]:
        run: ChaosRun = self.cluster.call(
            "chaos.start", experiment, name=name, timeout=CHAOS_TIMEOUT_S, run_id=self.run_id
        )
        registry.register(run.key, lambda: self.remove(run))
        try:
            yield run
        finally:
            self.remove(run)

    def remove(self, run: ChaosRun) -> None:
        if not run._lock.acquire(blocking=False):  # a SIGINT handler inside this very call
            return
        try:
            if run.removed:
                return
            done: ChaosRun | None = self.cluster.call(
                "chaos.remove", run.key, timeout=CHAOS_TIMEOUT_S, run_id=self.run_id
            )
            if done is not None:
                run.records, run.injected_at = done.records, done.injected_at
            run.removed = True
            run.ended_at = (done.ended_at if done is not None else None) or time.time()
        finally:
            run._lock.release()
            registry.unregister(run.key)

    def records(self, run: ChaosRun) -> list[dict[str, Any]]:
        found = self.cluster.call("chaos.records", run.key, run_id=self.run_id)
        return list(found) if found is not None else list(run.records)

    def sweep(self, namespace: str | None = None) -> list[str]:
        return []
