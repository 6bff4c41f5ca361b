"""Chaos primitives of the local backend: what Chaos Mesh's chaos-daemon does, on this machine.

Its job: run stress-ng *inside* a container's cgroups (:mod:`.stress`), sample the cgroup's CPU and
memory while it runs (the intensity check), kill or freeze a pod's containers, put a fault proxy in
front of a pod (:mod:`.netproxy`), and keep all of that going across container restarts for an
experiment's duration. One :class:`Injection` per experiment; its monitor thread samples, follows
restarts, applies ``memory.oom.group`` semantics on v1 and v2 alike (an OOM kill in the cgroup kills
the whole container, as kubelet >= 1.28 arranges on cgroup v2), and recovers at the deadline. It must not know Chaos Mesh objects or pick target pods: the
chaos driver (:mod:`pytest_hftk8s.chaos.on_local`) translates experiments into these specs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_hftk8s.cluster.local.cgroups import ContainerCgroup
from pytest_hftk8s.cluster.local.netproxy import FaultProxy, Faults
from pytest_hftk8s.cluster.local.runner import proc_start_time
from pytest_hftk8s.cluster.local.stress import Intensity, StressProcess, StressSpec, with_timeout
from pytest_hftk8s.errors import ChaosError

SAMPLE_SECONDS = 0.25
WARMUP_SECONDS = 0.5  # stress-ng forks its workers and the CFS quota settles: not part of the average


@dataclass(frozen=True)
class TargetContainer:
    """One container as chaos sees it, at one instant."""

    pod: str
    pod_ip: str
    name: str
    pid: int | None  # main pid (= process group) of the running instance
    instance: int  # bumps on every (re)start
    cgroup: ContainerCgroup | None
    cpu_millis: int | None
    memory_bytes: int | None
    ports: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.pod}/{self.name}"


class ChaosHost(Protocol):
    """What an injection needs from the LocalCluster (kept narrow on purpose)."""

    runtime_dir: Path

    def target_container(self, pod: str, container: str) -> TargetContainer | None: ...
    def record_process(self, pid: int, start_time: int | None) -> None: ...
    def mark_unready(self, pod: str) -> None: ...
    def redirect_service_traffic(self, pod_ip: str, to: str | None) -> None: ...
    def free_chaos_address(self) -> str: ...


@dataclass
class _Tracked:
    """One target container under an experiment: its current instance and what has been seen."""

    target: TargetContainer
    stress: StressProcess | None = None
    intensity: Intensity | None = None
    injections: int = 0
    cpu_start: tuple[float, float] | None = None  # (wall, cpu seconds) after warm-up
    cpu_last: tuple[float, float] | None = None
    oom_base: int = 0
    frozen: bool = False
    events: list[str] = field(default_factory=list)


class Injection:
    """One experiment on the local cluster: apply, watch until the deadline, recover (idempotent)."""

    def __init__(
        self,
        host: ChaosHost,
        targets: list[TargetContainer],
        *,
        name: str,
        duration: float | None,
        sample_interval: float = SAMPLE_SECONDS,
    ) -> None:
        self.host = host
        self.name = name
        self.duration = duration
        self.sample_interval = sample_interval
        self.tracked = [_Tracked(t) for t in targets]
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._recovered = False
        self._thread: threading.Thread | None = None
        self.injected_at: float | None = None
        self.deadline: float | None = None

    # subclasses: apply one target / recover one target / sample one target
    def _apply(self, t: _Tracked) -> None:
        raise NotImplementedError

    def _recover(self, t: _Tracked) -> None:
        pass

    def _watch(self, t: _Tracked, now: float) -> None:
        pass

    def start(self) -> None:
        """Apply to every target; on any failure recover what was applied and raise :class:`ChaosError`."""
        try:
            for t in self.tracked:
                self._apply(t)
        except BaseException:
            self.recover()
            raise
        self.injected_at = time.monotonic()
        self.deadline = None if self.duration is None else self.injected_at + self.duration
        self._thread = threading.Thread(target=self._monitor, name=f"hft-chaos-{self.name}", daemon=True)
        self._thread.start()

    def _monitor(self) -> None:
        while not self._stop.wait(self.sample_interval):
            now = time.monotonic()
            with self._lock:
                if self._recovered:
                    return
                if self.deadline is not None and now >= self.deadline:
                    self._recover_all()  # Chaos Mesh recovers at the duration, whatever the object does
                    return
                for t in self.tracked:
                    try:
                        self._watch(t, now)
                    except Exception as e:  # keep watching the others; visible in the records
                        t.events.append(f"watch failed: {e}")

    def recover(self) -> None:
        """Undo everything (stop stress, thaw, restore discovery); safe to call more than once."""
        self._stop.set()
        with self._lock:
            self._recover_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _recover_all(self) -> None:
        if self._recovered:
            return
        self._recovered = True
        for t in self.tracked:
            try:
                self._recover(t)
            except Exception as e:
                t.events.append(f"recover failed: {e}")

    def current(self, t: _Tracked) -> TargetContainer | None:
        return self.host.target_container(t.target.pod, t.target.name)

    def records(self) -> list[dict[str, Any]]:
        """Chaos Mesh-like container records, plus the local extras (intensity, injections, events)."""
        with self._lock:
            out = []
            for t in self.tracked:
                record: dict[str, Any] = {
                    "id": t.target.id,
                    "pod": t.target.pod,
                    "container": t.target.name,
                    "phase": "Recovered" if self._recovered else "Injected",
                    "injectedCount": t.injections,
                    "events": list(t.events),
                }
                if t.intensity is not None:
                    record["intensity"] = t.intensity.to_dict()
                out.append(record)
            return out


class StressInjection(Injection):
    """stress-ng in each target container's cgroups; re-injected into restarted instances until the deadline."""

    def __init__(
        self,
        host: ChaosHost,
        targets: list[TargetContainer],
        *,
        spec: StressSpec,
        stress_ng: str = "stress-ng",
        tolerance: float = 0.8,
        **kwargs: Any,
    ) -> None:
        super().__init__(host, targets, duration=spec.timeout, **kwargs)
        self.spec = spec
        self.stress_ng = stress_ng
        self.tolerance = tolerance
        for t in self.tracked:
            t.intensity = self._expected(t.target)

    def _expected(self, target: TargetContainer) -> Intensity:
        if self.spec.kind == "cpu":
            requested = self.spec.workers * self.spec.load / 100
            cap = (target.cpu_millis / 1000) if target.cpu_millis else float(os.cpu_count() or 1)
            return Intensity("cpu", requested, min(requested, cap))
        baseline = float(target.cgroup.usage().memory_working_set) if target.cgroup else 0.0
        room = max(0.0, target.memory_bytes - baseline) if target.memory_bytes else float(self.spec.vm_bytes)
        return Intensity("memory", float(self.spec.vm_bytes), min(float(self.spec.vm_bytes), room), baseline)

    def _apply(self, t: _Tracked) -> None:
        target = t.target
        remaining = None if self.deadline is None else max(1.0, self.deadline - time.monotonic())
        spec = self.spec if t.injections == 0 or remaining is None else with_timeout(self.spec, remaining)
        log_path = self.host.runtime_dir / "chaos" / f"{self.name}-{target.pod}-{target.name}.log"
        t.oom_base = (target.cgroup.oom_kills() or 0) if target.cgroup else 0
        t.stress = StressProcess.start(
            spec, target_id=target.id, cgroup=target.cgroup, stress_ng=self.stress_ng, log_path=log_path
        )
        self.host.record_process(t.stress.pid, proc_start_time(t.stress.pid))
        t.injections += 1
        t.events.append(f"stress-ng pid {t.stress.pid} in {target.id} (instance {target.instance})")

    def _watch(self, t: _Tracked, now: float) -> None:
        intensity = t.intensity
        assert intensity is not None
        cur = self.current(t)
        if cur is None:
            return
        if cur.instance != t.target.instance:  # the container restarted: its demand persists
            if t.stress is not None:
                t.stress.kill()
            t.stress = None
            if cur.pid is None or cur.cgroup is None:
                return
            t.target = cur
            self._apply(t)
            return
        if cur.cgroup is None or t.stress is None:
            return
        usage = cur.cgroup.usage()
        intensity.samples += 1
        ooms = (usage.oom_kills or 0) - t.oom_base
        if ooms > intensity.oom_kills:
            intensity.oom_kills = ooms
            intensity.reached = True  # pressure beyond the limit: the kernel said so
            t.events.append(f"OOM kill in {cur.id}: the whole container is killed (memory.oom.group)")
            self._kill_container(cur)
            return
        if self.spec.kind == "cpu":
            point = (now, usage.cpu_seconds)
            if t.injections == 1 and self.injected_at and now - self.injected_at < WARMUP_SECONDS:
                return
            if t.cpu_start is None:
                t.cpu_start = point
            t.cpu_last = point
            wall = t.cpu_last[0] - t.cpu_start[0]
            if wall > 0:
                intensity.observed = (t.cpu_last[1] - t.cpu_start[1]) / wall
        else:
            intensity.observed = max(intensity.observed, usage.memory_working_set - intensity.baseline)
        intensity.reached = (
            intensity.observed >= self.tolerance * intensity.expected or intensity.oom_kills > 0
        )

    @staticmethod
    def _kill_container(target: TargetContainer) -> None:
        if target.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(target.pid, signal.SIGKILL)
        if target.cgroup is not None:
            target.cgroup.kill_all()

    def verify(self, *, timeout: float) -> None:
        """Raise :class:`ChaosError` unless every target shows the stress within ``timeout`` seconds."""
        deadline = time.monotonic() + max(timeout, WARMUP_SECONDS + 3 * self.sample_interval)
        while time.monotonic() < deadline:
            with self._lock:
                dead = [t for t in self.tracked if t.stress is not None and not t.stress.alive()
                        and t.intensity is not None and t.intensity.oom_kills == 0]  # fmt: skip
                if dead:
                    t = dead[0]
                    raise ChaosError(
                        f"stress-ng in {t.target.id} exited early (code {t.stress.popen.returncode if t.stress else '?'}): "
                        f"expected it to run for the experiment; output {t.stress.output() if t.stress else ''!r}"
                    )
                if all(self._shows_effect(t) for t in self.tracked):
                    return
            time.sleep(self.sample_interval)
        with self._lock:
            weak = [t for t in self.tracked if not self._shows_effect(t)]
            seen = "; ".join(f"{t.target.id}: {t.intensity.to_dict() if t.intensity else {}}" for t in weak)
        raise ChaosError(
            f"{self.spec.kind} stress was started but had no measurable effect within {timeout:g}s: expected "
            f"at least a quarter of the requested intensity in the target cgroups, seen {seen}. A stress "
            "that does nothing is a failed injection: check stress-ng and the cgroup attach."
        )

    def _shows_effect(self, t: _Tracked) -> bool:
        i = t.intensity
        if i is None or i.expected <= 0:
            return True
        warm = t.cpu_start is not None and t.cpu_last is not None
        if self.spec.kind == "cpu" and warm and t.cpu_last[0] - t.cpu_start[0] < 2 * self.sample_interval:  # type: ignore[index]
            return False
        return i.oom_kills > 0 or (i.samples > 0 and i.observed >= 0.25 * i.expected)

    def _recover(self, t: _Tracked) -> None:
        if t.stress is not None:
            left = t.stress.kill()
            t.events.append(f"killed stress-ng (pid {t.stress.pid})")
            if left:
                t.events.append(f"stress-ng workers {left} still exiting 5 s after SIGKILL (uninterruptible)")


def kill_containers(targets: list[TargetContainer]) -> list[str]:
    """pod-kill / container-kill: SIGKILL each container's process group and whatever is in its cgroup."""
    killed = []
    for target in targets:
        StressInjection._kill_container(target)
        killed.append(target.id)
    return killed


def _dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_dead(targets: list[TargetContainer], *, timeout: float) -> None:
    """Raise :class:`ChaosError` unless every killed container's main process is gone within ``timeout``."""
    deadline = time.monotonic() + timeout
    pids = [t.pid for t in targets if t.pid is not None]
    while time.monotonic() < deadline:
        if all(_dead(pid) for pid in pids):
            return
        time.sleep(0.02)
    alive = [pid for pid in pids if not _dead(pid)]
    raise ChaosError(
        f"kill had no effect: expected pids {pids} to be gone within {timeout:g}s, still alive {alive}. "
        "Nothing can be signalled as this user? Run as root."
    )


def _signal_container(target: TargetContainer, sig: int) -> None:
    pids = set(target.cgroup.pids()) if target.cgroup is not None else set()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    if target.pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(target.pid, sig)


class FreezeInjection(Injection):
    """pod-failure: every process of the pod is SIGSTOPped (new instances too) and the pod marked unready."""

    def _apply(self, t: _Tracked) -> None:
        _signal_container(t.target, signal.SIGSTOP)
        t.frozen = True
        t.injections += 1
        t.events.append(f"froze {t.target.id} (instance {t.target.instance})")
        self.host.mark_unready(t.target.pod)

    def _watch(self, t: _Tracked, now: float) -> None:
        cur = self.current(t)
        if cur is not None and cur.instance != t.target.instance and cur.pid is not None:
            t.target = cur  # a liveness kill restarted it: the pause image would still be running
            self._apply(t)
        elif cur is not None:
            self.host.mark_unready(cur.pod)

    def _recover(self, t: _Tracked) -> None:
        cur = self.current(t) or t.target
        _signal_container(cur, signal.SIGCONT)
        t.frozen = False
        t.events.append(f"thawed {cur.id}")


class ProxyInjection(Injection):
    """NetworkChaos: a fault proxy per target pod, and the pod's Service names pointed at it."""

    def __init__(
        self, host: ChaosHost, targets: list[TargetContainer], *, faults: Faults, **kwargs: Any
    ) -> None:
        by_pod: dict[str, TargetContainer] = {}
        for t in targets:
            if t.pod in by_pod:
                ports = tuple(sorted(set(by_pod[t.pod].ports) | set(t.ports)))
                by_pod[t.pod] = TargetContainer(**{**by_pod[t.pod].__dict__, "ports": ports})
            else:
                by_pod[t.pod] = t
        super().__init__(host, list(by_pod.values()), **kwargs)
        self.faults = faults
        self.proxies: dict[str, FaultProxy] = {}

    def _apply(self, t: _Tracked) -> None:
        if not t.target.ports:
            raise ChaosError(
                f"pod {t.target.pod} declares no container ports: expected at least one for a network fault "
                "(the proxy listens on the pod's ports). Declare them in the manifest."
            )
        proxy = FaultProxy(
            listen_host=self.host.free_chaos_address(),
            upstream_host=t.target.pod_ip,
            ports=t.target.ports,
            faults=self.faults,
        )
        proxy.start()
        self.proxies[t.target.pod] = proxy
        self.host.redirect_service_traffic(t.target.pod_ip, proxy.listen_host)
        t.injections += 1
        t.events.append(f"proxy {proxy.listen_host}:{list(proxy.ports)} -> {t.target.pod_ip}")

    def _recover(self, t: _Tracked) -> None:
        proxy = self.proxies.pop(t.target.pod, None)
        self.host.redirect_service_traffic(t.target.pod_ip, None)
        if proxy is not None:
            proxy.stop()
            s = proxy.stats
            t.events.append(
                f"proxy stopped: {s.connections} connections, {s.resets} reset, {s.delayed_chunks} chunks delayed"
            )


def redirect_hosts(content: str, redirects: dict[str, str], services: set[str]) -> str:
    """Point Service names (not pod names) at a chaos proxy: rewrite the address of their hosts lines."""
    lines = []
    for line in content.splitlines():
        address, _, names = line.partition("\t")
        first = names.split(" ", 1)[0] if names else ""
        if address in redirects and first in services:
            line = f"{redirects[address]}\t{names}"
        lines.append(line)
    return "\n".join(lines) + "\n"
