"""LocalCluster: this machine as a one-node cluster behind the :class:`~pytest_hftk8s.cluster.base.Cluster` contract.

Its job: take the rendered objects, give every pod a loopback address and a directory, materialise
its volumes, plan its containers (:mod:`.images`), create their cgroups, and run one supervisor
thread that ticks every pod (:mod:`.pod`), keeps cluster DNS (:mod:`.hosts`) and Prometheus' target
files (:mod:`.promsd`) current, and records everything in the state file (:mod:`.state`) so teardown
- or the next run's sweep - leaves nothing behind. It must not implement gates, load or SLOs.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_hftk8s.chaos import registry
from pytest_hftk8s.cluster.base import (
    ClusterEvent,
    Endpoint,
    KubeObject,
    PodStatus,
    ServiceAddress,
    WorkloadStatus,
)
from pytest_hftk8s.cluster.local import cgroups, chaos, discovery, images, model, preflight, promsd
from pytest_hftk8s.cluster.local.backoff import CrashBackoff
from pytest_hftk8s.cluster.local.discovery import NODE_NAME
from pytest_hftk8s.cluster.local.exporter import (
    ChaosSample,
    ContainerSample,
    MetricsExporter,
    MetricsSnapshot,
)
from pytest_hftk8s.cluster.local.hosts import ClusterDns
from pytest_hftk8s.cluster.local.pod import Container, EventLog, Pod, RuntimeFiles
from pytest_hftk8s.cluster.local.state import RunState, StateFile, clean, sweep
from pytest_hftk8s.errors import ClusterError, ClusterUnavailable
from pytest_hftk8s.results import PreflightCheck

log = logging.getLogger("pytest_hftk8s.local")
TICK_SECONDS = 0.05
#: How long teardown waits for the cluster's lock before it goes on without it (a hung holder).
LOCK_WAIT_S = 5.0
_BASE_ENV_KEYS = ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TZ")


@dataclass
class _ReplacementBackoff(CrashBackoff):
    """Backoff of a pod-killed container: the kill's exit restarts at once and is not remembered."""

    _kill_pending: bool = True

    def delay_after_exit(self, now: float) -> float:
        if self._kill_pending:
            self._kill_pending = False
            return 0.0
        return super().delay_after_exit(now)


class LocalCluster:
    """The embedded default backend. Construct, ``apply(render(profile))``, gate, test, ``delete_all()``."""

    name = "local"

    def __init__(
        self,
        *,
        namespace: str,
        state_dir: Path,
        backoff_scale: float = 1.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if os.geteuid() != 0:
            raise ClusterUnavailable(
                "expected to run as root (mount namespaces for cluster DNS, cgroups for limits); running as "
                f"uid {os.geteuid()}. Run as root or use --hft-cluster=<kube context>."
            )
        self.namespace = namespace
        self.state_dir = Path(state_dir)
        self.backoff_scale = backoff_scale
        self._progress = progress or (lambda _msg: None)
        self._control: Any = None  # the ControlServer, once another process was offered the cluster
        self.swept = sweep(self.state_dir)
        for line in self.swept:
            log.warning("local cluster: %s", line)
        self.cgroup_support = cgroups.detect()
        self.warnings: list[str] = []
        if not self.cgroup_support.enforced:
            self.warnings.append(
                f"resources.limits are NOT enforced: no usable cgroup v2 or v1 ({self.cgroup_support.reason}); "
                "CPU/memory SLOs and OOMKilled detection are meaningless in this session. To enforce them: "
                + self.cgroup_support.action.replace("\n", "; also: ")
            )
            log.warning("local cluster: %s", self.warnings[-1])
        self.run_id = secrets.token_hex(4)
        self.runtime_dir = Path(tempfile.mkdtemp(prefix=f"hftk8s-{self.run_id}-"))
        self.runtime_dir.chmod(0o711)  # postgres (unprivileged) must reach its data dir below
        self._state = StateFile(self.state_dir, RunState.for_this_process(self.run_id, self.runtime_dir))
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.events_log = EventLog()
        self._pods: list[Pod] = []
        self._services: list[model.ServiceSpec] = []
        self._sd_files: list[promsd.SdFile] = []
        self._recorded: set[int] = set()
        self._redirects: dict[str, str] = {}  # pod IP -> chaos proxy address, for Service names only
        self.chaos_injected: dict[str, ChaosSample] = {}  # run key -> what the exporter shows of it
        self._ready_seen: dict[str, bool] = {}
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hft-probe")
        self._deleted = False
        self.exporter = MetricsExporter(self._metrics_snapshot)
        self.dns = ClusterDns(self.runtime_dir / "etc", nameserver=f"127.0.{self.exporter.subnet}.1")
        self._files = RuntimeFiles(hosts=self.dns.hosts, resolv=self.dns.resolv)
        atexit.register(self.delete_all)
        # SIGTERM (a cancelled CI job, `timeout`) ends Python without atexit: turn it into an unwind.
        registry.install_guards()

    @property
    def limits_enforced(self) -> bool:
        return self.cgroup_support.enforced

    def progress(self, message: str) -> None:
        self._progress(message)

    # -- deploy ---------------------------------------------------------------------------------

    def apply(self, objects: Sequence[KubeObject]) -> None:
        """Create every pod of the rendered Deployments/StatefulSets and start them (returns at once)."""
        with self._lock:
            if self._deleted:
                raise ClusterError("this LocalCluster was deleted; create a new one to deploy again")
            if self._pods:
                raise ClusterError(
                    "expected one apply per LocalCluster; the platform is already deployed. "
                    "Call delete_all() and create a new LocalCluster to redeploy."
                )
            templates = model.pod_templates(objects, namespace=self.namespace)
            self._services = model.services(objects, namespace=self.namespace)
            configmaps, secrets_ = model.config_data(objects)
            host_octet = 2
            for tmpl in templates:
                previous: Pod | None = None
                for pod_name in tmpl.pod_names():
                    if host_octet > 254:
                        raise ClusterError(
                            f"more than 253 pods do not fit the pod subnet 127.0.{self.exporter.subnet}.0/24"
                        )
                    ip = f"127.0.{self.exporter.subnet}.{host_octet}"
                    host_octet += 1
                    pod = self._create_pod(tmpl, pod_name, ip, configmaps=configmaps, secrets=secrets_)
                    if tmpl.kind == "StatefulSet":
                        pod.waits_for, previous = previous, pod
                    self._pods.append(pod)
            self._state.save()
            self._refresh_discovery()
            self._progress(f"deploying {len(self._pods)} pods on 127.0.{self.exporter.subnet}.0/24")
            self._thread = threading.Thread(target=self._supervise, name="hft-local-supervisor", daemon=True)
            self._thread.start()

    def _create_pod(
        self,
        tmpl: model.PodTemplate,
        name: str,
        ip: str,
        *,
        configmaps: Mapping[str, Mapping[str, str]],
        secrets: Mapping[str, Mapping[str, str]],
    ) -> Pod:
        directory = self.runtime_dir / "pods" / name
        directory.mkdir(parents=True)
        for d in (self.runtime_dir / "pods", directory):
            d.chmod(0o711)
        pod = Pod(name=name, template=tmpl, ip=ip, directory=directory, events=self.events_log)
        volume_dirs = {
            vol: self._materialise(directory, spec, configmaps=configmaps, secrets=secrets)
            for vol, spec in tmpl.volumes.items()
        }
        fields = {
            "metadata.name": name, "metadata.namespace": tmpl.namespace, "status.podIP": ip, "status.podIPs": ip,
            "status.hostIP": ip, "spec.nodeName": NODE_NAME, "metadata.uid": f"local-{name}",
            **{f"labels/{k}": v for k, v in tmpl.labels.items()},
            **{f"annotations/{k}": v for k, v in tmpl.annotations.items()},
        }  # fmt: skip
        base_env = {k: os.environ[k] for k in _BASE_ENV_KEYS if k in os.environ}
        base_env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        base_env["HOME"] = "/root"
        for spec in tmpl.containers:
            env = model.resolve_env(spec, pod_fields=fields, configmaps=configmaps, secrets=secrets)
            ctx = images.LaunchContext(
                pod_name=name, pod_ip=ip, pod_dir=directory, env=env, namespace=tmpl.namespace
            )
            for mount in spec.mounts:
                if mount.name not in volume_dirs:
                    raise ClusterError(
                        f"container {spec.name} of {name} mounts unknown volume {mount.name!r}"
                    )
                host = volume_dirs[mount.name] / mount.sub_path if mount.sub_path else volume_dirs[mount.name]
                if Path(mount.mount_path).exists():
                    ctx.binds.append((host, mount.mount_path))
                else:
                    ctx.rewrites.append((mount.mount_path, host))
            plan = images.plan(spec, ctx, base_env=base_env)
            self._sd_files += plan.prometheus_sd
            cgroup = None
            if self.cgroup_support.enforced:
                cgroup = cgroups.ContainerCgroup(
                    self.cgroup_support, run_dir_name=f"hft-{self.run_id}", name=f"{name}_{spec.name}"
                )
                for run_dir in cgroup.run_dirs():
                    if str(run_dir) not in self._state.state.cgroup_dirs:
                        self._state.state.cgroup_dirs.append(str(run_dir))
                self._state.save()
                cgroup.create(cpu_millis=spec.cpu_limit_millis, memory_bytes=spec.memory_limit_bytes)
            pod.containers.append(
                Container(
                    spec=spec, pod=pod, plan=plan, cgroup=cgroup, backoff=CrashBackoff(self.backoff_scale)
                )
            )
        return pod

    @staticmethod
    def _materialise(
        pod_dir: Path,
        volume: Mapping[str, Any],
        *,
        configmaps: Mapping[str, Mapping[str, str]],
        secrets: Mapping[str, Mapping[str, str]],
    ) -> Path:
        target = pod_dir / "volumes" / volume["name"]
        target.mkdir(parents=True)
        for d in (target.parent, target):
            d.chmod(0o711)
        source = None
        if "configMap" in volume:
            source, ref = configmaps.get(volume["configMap"]["name"]), volume["configMap"]
        elif "secret" in volume:
            source, ref = secrets.get(volume["secret"]["secretName"]), volume["secret"]
        elif "hostPath" in volume:
            return Path(volume["hostPath"]["path"])
        else:
            return target  # emptyDir, volumeClaimTemplates, persistentVolumeClaim: a fresh directory
        if source is None:
            raise ClusterError(
                f"volume {volume['name']} refers to a ConfigMap/Secret the manifests do not contain: {ref}"
            )
        items = ref.get("items") or [{"key": k, "path": k} for k in source]
        for item in items:
            (target / item["path"]).parent.mkdir(parents=True, exist_ok=True)
            (target / item["path"]).write_text(source[item["key"]])
        return target

    # -- supervision ----------------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    now = time.monotonic()
                    for pod in self._pods:
                        pod.tick(
                            now, files=self._files, pool=self._pool, lock=self._lock, progress=self._progress
                        )
                    self._after_tick()
            except Exception:  # keep supervising; the failure is visible in the log and in pod status
                log.exception("local cluster supervisor tick failed")
            self._stop.wait(TICK_SECONDS)

    def _after_tick(self) -> None:
        for c in self._containers():
            if c.proc is not None and c.proc.pid not in self._recorded:
                self._recorded.add(c.proc.pid)
                self._state.add_process(c.proc.pid, c.proc.start_time)
        ready = {p.name: p.ready for p in self._pods}
        if ready != self._ready_seen:
            for name, is_ready in ready.items():
                if self._ready_seen.get(name, False) != is_ready:
                    self._progress(f"pod {name}: {'ready' if is_ready else 'not ready'}")
            self._ready_seen = ready
            self._refresh_discovery()

    def _containers(self) -> list[Container]:
        return [c for p in self._pods for c in p.containers]

    def _refresh_discovery(self) -> None:
        """Rewrite cluster DNS and Prometheus' target files from the current pod states."""
        content = discovery.hosts_content(self._pods, self._services)
        if self._redirects:
            content = chaos.redirect_hosts(content, self._redirects, {s.name for s in self._services})
        self.dns.write(content)
        if self._sd_files:
            sd = discovery.prometheus_discovery(
                self._pods, self._services, exporter_address=self.exporter.address
            )
            promsd.write(self._sd_files, sd)

    def _metrics_snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                namespace=self.namespace,
                node=NODE_NAME,
                pods=tuple(p.status() for p in self._pods),
                workloads=tuple(self.workloads()),
                containers=tuple(
                    ContainerSample(
                        p.name,
                        c.spec.name,
                        c.spec.image,
                        c.cgroup,
                        c.spec.cpu_limit_millis,
                        c.spec.memory_limit_bytes,
                    )
                    for p in self._pods
                    for c in p.containers
                ),
                chaos=tuple(self.chaos_injected.copy().values()),
            )

    # -- the Cluster contract -------------------------------------------------------------------

    def workloads(self) -> list[WorkloadStatus]:
        with self._lock:
            seen: dict[tuple[str, str], list[Pod]] = {}
            for p in self._pods:
                seen.setdefault((p.template.kind, p.template.workload), []).append(p)
            return [
                WorkloadStatus(
                    kind,
                    name,
                    desired=len(pods),
                    ready=sum(p.ready for p in pods),
                    available=sum(p.ready for p in pods),
                )
                for (kind, name), pods in seen.items()
            ]

    def pods(self) -> list[PodStatus]:
        with self._lock:
            return [p.status() for p in self._pods]

    def services(self) -> list[str]:
        with self._lock:
            return [s.name for s in self._services]

    def endpoints(self, service: str) -> list[Endpoint]:
        with self._lock:
            svc = self._service(service)
            return [
                Endpoint(r.pod, r.address, r.port, r.ready) for r in discovery.endpoint_rows(svc, self._pods)
            ]

    def exec_in_pod(
        self, pod: str, argv: Sequence[str], *, container: str | None = None, timeout: float = 5.0
    ) -> tuple[int, str, str]:
        """``kubectl exec``: run ``argv`` in a running container's mount and UTS namespaces (its
        ``/etc/hosts``, its hostname); ``(exit code, stdout, stderr)``. Bounded by ``timeout``."""
        with self._lock:
            target = self._pod(pod)
            pid = next(
                (
                    c.proc.pid
                    for c in target.containers
                    if c.proc is not None and c.state == "running" and container in (None, "", c.spec.name)
                ),
                None,
            )
        if pid is None:
            which = f"container {container}" if container else "running container"
            raise ClusterError(
                f"pod {pod} has no running {which} to exec {list(argv)} in; wait until it runs"
            )
        try:
            done = subprocess.run(
                ["nsenter", "-m", "-u", "-t", str(pid), *argv],
                capture_output=True, text=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"{list(argv)} in pod {pod} took over {timeout:g}s") from e
        return done.returncode, done.stdout, done.stderr

    def resolve_in_pod(self, pod: str, hostname: str) -> list[str]:
        _code, stdout, _err = self.exec_in_pod(pod, ["getent", "ahosts", hostname])
        addresses: list[str] = []
        for line in stdout.splitlines():
            address = line.split()[0]
            if address not in addresses:
                addresses.append(address)
        return addresses

    def service_address(self, service: str, port: int | str) -> ServiceAddress:
        with self._lock:
            svc = self._service(service)
            sp = next(
                (p for p in svc.ports if p.port == port or p.name == port or str(p.port) == str(port)), None
            )
            if sp is None:
                raise ClusterError(
                    f"service {service} has no port {port!r}; it has {[(p.name, p.port) for p in svc.ports]}"
                )
            rows = [r for r in discovery.endpoint_rows(svc, self._pods) if r.port_name == sp.name]
            if not rows:
                raise ClusterError(
                    f"service {service} selects no pods; check its selector {dict(svc.selector)}"
                )
            row = next((r for r in rows if r.ready), rows[0])
            address = self._redirects.get(row.address, row.address)  # NetworkChaos: via its proxy
            return ServiceAddress(address, row.port, {"pod": row.pod, "ready": str(row.ready).lower()})

    def pod_logs(self, pod: str, *, container: str | None = None, tail: int = 200) -> str:
        with self._lock:
            target = self._pod(pod)
            chosen = next((c for c in target.containers if container in (None, c.spec.name)), None)
            if chosen is None:
                raise ClusterError(f"pod {pod} has no container {container!r}")
            path = chosen.log_path
        try:
            lines = path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])

    def events(self) -> list[ClusterEvent]:
        return self.events_log.list()

    def close(self) -> None:
        """Let the pods outlive this process (``--hft-keep``): no teardown at interpreter exit.

        They then run unsupervised (no probes, no restarts) until the next LocalCluster on the same
        ``state_dir`` sweeps them, or ``python -m pytest_hftk8s.cluster.local sweep``. Does nothing
        after :meth:`delete_all`. A cluster that never ran a pod (``--hft-preflight``) has nothing to
        outlive it: its runtime directory, exporter and state file go at once.
        """
        with self._lock:
            ran_nothing = not self._containers()
        if ran_nothing:
            self.delete_all()
            return
        atexit.unregister(self.delete_all)

    def chaos_driver(
        self, *, run_id: str, allowed_contexts: Sequence[str], echo: Callable[[str], None]
    ) -> Any:
        """The local chaos driver (``local`` is always an allowed context)."""
        from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos

        return LocalChaos(self, run_id=run_id, echo=echo)

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        """This machine's prerequisites, one row each (:mod:`.preflight`): cgroups with cpu and memory
        delegated, root and the postgres user, the server binaries, stress-ng when ``chaos``, the
        platform packages. Reads only; changes nothing."""
        return preflight.checks(images=images, chaos=chaos)

    def share(self) -> Mapping[str, str]:
        """Serve this cluster to other processes (xdist workers) on a control socket; idempotent."""
        from pytest_hftk8s.cluster.local.remote import ControlServer

        with self._lock:
            if self._deleted:
                raise ClusterError("this LocalCluster was deleted; there is nothing to share")
            if self._control is None:
                self._control = ControlServer(self, directory=self.runtime_dir)
            return self._control.shared()

    # -- local extras for chaos and the failure bundle -----------------------------------------

    def container_pids(self, pod: str) -> dict[str, int]:
        """container name -> main pid of the running instance."""
        with self._lock:
            return {
                c.spec.name: c.proc.pid
                for c in self._pod(pod).containers
                if c.proc is not None and c.state == "running"
            }

    def container_cgroup(self, pod: str, container: str) -> cgroups.ContainerCgroup | None:
        with self._lock:
            return next((c.cgroup for c in self._pod(pod).containers if c.spec.name == container), None)

    # -- chaos hooks (pytest_hftk8s.cluster.local.chaos.ChaosHost) ---------------------------------

    def target_containers(self, labels: Mapping[str, str]) -> list[chaos.TargetContainer]:
        """Containers of started pods whose labels match all of ``labels`` (a Chaos Mesh labelSelector)."""
        with self._lock:
            return [
                self._target(p, c)
                for p in self._pods
                if p.started and all(p.template.labels.get(k) == v for k, v in labels.items())
                for c in p.containers
            ]

    def target_container(self, pod: str, container: str) -> chaos.TargetContainer | None:
        with self._lock:
            p = self._pod(pod)
            return next((self._target(p, c) for c in p.containers if c.spec.name == container), None)

    @staticmethod
    def _target(p: Pod, c: Container) -> chaos.TargetContainer:
        running = c.proc is not None and c.state == "running"
        return chaos.TargetContainer(
            pod=p.name, pod_ip=p.ip, name=c.spec.name, pid=c.proc.pid if running and c.proc else None,
            instance=c.instance, cgroup=c.cgroup, cpu_millis=c.spec.cpu_limit_millis,
            memory_bytes=c.spec.memory_limit_bytes, ports=tuple(x.port for x in c.spec.ports),
        )  # fmt: skip

    def record_process(self, pid: int, start_time: int | None) -> None:
        """Record a chaos process (e.g. stress-ng) in the state file, so a killed run's sweep kills it."""
        with self._lock:
            self._state.add_process(pid, start_time)

    def mark_unready(self, pod: str) -> None:
        """pod-failure: the pod is unready now, not a probe period later (probes decide afterwards)."""
        with self._lock:
            for c in self._pod(pod).containers:
                probe = c.probes.get("readiness")
                if probe is not None:
                    probe.result = False

    def redirect_service_traffic(self, pod_ip: str, to: str | None) -> None:
        """Resolve Service names that lead to ``pod_ip`` to ``to`` instead (``None`` restores them)."""
        with self._lock:
            if to is None:
                self._redirects.pop(pod_ip, None)
            else:
                self._redirects[pod_ip] = to
            self._refresh_discovery()

    def free_chaos_address(self) -> str:
        """A loopback address of the pod subnet no pod or proxy uses (allocated from .254 down)."""
        with self._lock:
            used = {p.ip for p in self._pods} | set(self._redirects.values())
            for octet in range(254, 1, -1):
                address = f"127.0.{self.exporter.subnet}.{octet}"
                if address not in used:
                    return address
        raise ClusterError(f"no free address left in 127.0.{self.exporter.subnet}.0/24 for a chaos proxy")

    def forget_restart_backoff(self, pod: str) -> None:
        """Kubernetes replaces a deleted pod (pod-kill) with a new one, which has no restart backoff
        history; the local pod keeps its name and restart count but, like the new pod, restarts at once
        and the kill leaves no history: the replacement's first own exit restarts at once too."""
        with self._lock:
            for c in self._pod(pod).containers:
                c.backoff = _ReplacementBackoff(self.backoff_scale)

    def _pod(self, name: str) -> Pod:
        for p in self._pods:
            if p.name == name:
                return p
        raise ClusterError(f"no pod {name!r}; pods are {[p.name for p in self._pods]}")

    def _service(self, name: str) -> model.ServiceSpec:
        for s in self._services:
            if s.name == name:
                return s
        raise ClusterError(f"no service {name!r}; services are {[s.name for s in self._services]}")

    # -- teardown -------------------------------------------------------------------------------

    def delete_all(self, *, grace_cap: float = 5.0) -> None:
        """Stop every container (stop signal, then SIGKILL), remove cgroups, data and the state file.

        Idempotent. The graceful part (each pod's terminationGracePeriodSeconds, capped at
        ``grace_cap``) may be cut short by Ctrl-C; the SIGKILL and removal part always runs. A thread
        that hangs holding the cluster's lock does not stop it: the lock is waited for at most
        ``LOCK_WAIT_S``, then the teardown goes on without it (it only reads and kills).
        """
        with self._lock_or_not():
            if self._deleted:
                return
            self._deleted = True
        atexit.unregister(self.delete_all)
        if self._control is not None:
            self._control.close()  # removes chaos other processes left injected
        self._stop.set()
        running: list[Container] = []
        try:
            if self._thread is not None:
                self._thread.join(timeout=5)
            with self._lock_or_not():
                running = [c for c in self._containers() if c.proc is not None and c.proc.poll() is None]
                grace = min(grace_cap, max((c.pod.template.grace_seconds for c in running), default=0.0))
                for c in running:
                    c.proc.signal_group(c.plan.stop_signal)  # type: ignore[union-attr]
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(c.proc.poll() is None for c in running):  # type: ignore[union-attr]
                time.sleep(0.05)
        finally:
            self._kill_and_remove(running)

    @contextlib.contextmanager
    def _lock_or_not(self) -> Iterator[None]:
        """The cluster's lock if it comes within ``LOCK_WAIT_S``; else go on without it (teardown)."""
        held = self._lock.acquire(timeout=LOCK_WAIT_S)
        if not held:
            log.warning("local cluster: lock still held after %ss; tearing down without it", LOCK_WAIT_S)
        try:
            yield
        finally:
            if held:
                self._lock.release()

    def _kill_and_remove(self, running: list[Container]) -> None:
        for c in running:
            if c.proc is None:
                continue
            c.proc.kill(c.cgroup)
            try:
                c.proc.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                log.warning("local cluster: pid %s did not die after SIGKILL", c.proc.pid)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.exporter.close()
        problems = clean(self._state.state)  # also kills anything left in the cgroups or recorded
        if problems:
            log.warning("local cluster teardown left: %s", problems)
            self.warnings.append(f"teardown could not remove: {problems}")
        else:
            self._state.remove()
        self._progress("local cluster deleted")

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete_all()
