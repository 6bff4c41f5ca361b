"""The local chaos driver: the same experiments as on Kubernetes, injected into a LocalCluster.

Its job: read an experiment built by :mod:`pytest_hftk8s.chaos.experiments`, select target pods by
its label selector and mode (one, all, fixed, fixed-percent, random-max-percent) and its container
names, translate it into the local backend's primitives (:mod:`.chaos`: stress-ng inside the
container's cgroups, SIGKILL of process groups, SIGSTOP for pod-failure, a fault proxy for network
chaos), and always remove it: in the context manager's ``finally``, on SIGINT and at exit through
:mod:`pytest_hftk8s.chaos.registry`; the cluster's state file covers a run killed outright. Its own
cgroup reading of a stress's intensity is a cross-check: the judgement is made from Prometheus by
:mod:`pytest_hftk8s.slo.intensity`, the same on every backend.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_hftk8s.chaos import experiments, registry
from pytest_hftk8s.chaos.driver import ChaosRun
from pytest_hftk8s.chaos.experiments import (
    Experiment,
    NetworkDelay,
    NetworkLoss,
    PodChaos,
    Schedule,
    StressCpu,
    StressMemory,
    duration_seconds,
)
from pytest_hftk8s.chaos.safety import check_allowed, dry_run
from pytest_hftk8s.cluster.local import chaos as local
from pytest_hftk8s.cluster.local.exporter import ChaosSample
from pytest_hftk8s.cluster.local.netproxy import Faults
from pytest_hftk8s.cluster.local.stress import StressSpec
from pytest_hftk8s.errors import ChaosError

if TYPE_CHECKING:
    from pytest_hftk8s.cluster.local.cluster import LocalCluster

__all__ = ["LocalChaos", "size_bytes"]

_TIME = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def size_bytes(size: str, *, total_memory: int | None = None) -> int:
    """A StressChaos memory size in bytes; ``"50%"`` is of this machine's memory, as Chaos Mesh reads it."""
    return experiments.size_bytes(
        size, total_memory=total_memory or (os_total_memory() if size.endswith("%") else 0)
    )


def os_total_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise ChaosError("cannot read MemTotal from /proc/meminfo to resolve a percentage memory size")


def _seconds(value: str | None) -> float:
    if not value:
        return 0.0
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)", value)
    return float(m.group(1)) * _TIME[m.group(2)] if m else 0.0


def select_pods(pods: list[str], *, mode: str, value: str | None, rng: random.Random) -> list[str]:
    """Chaos Mesh's selector modes over the matching pods."""
    pods = sorted(pods)
    if not pods or mode == "all":
        return pods
    if mode == "one":
        return [rng.choice(pods)]
    number = float(value or 0)
    if mode == "fixed":
        count = int(number)
    elif mode == "fixed-percent":
        count = math.floor(len(pods) * number / 100)
    else:  # random-max-percent
        count = rng.randint(0, math.floor(len(pods) * number / 100))
    return sorted(rng.sample(pods, max(1, min(len(pods), count))))


class LocalChaos:
    """Injects experiments into one :class:`LocalCluster` (``local`` is always allowed)."""

    def __init__(
        self,
        cluster: LocalCluster,
        *,
        run_id: str | None = None,
        dry_run: bool = False,
        echo: Callable[[str], None] = print,
        stress_ng: str = "stress-ng",
        verify_timeout: float = 5.0,
        intensity_tolerance: float = 0.8,
        sample_interval: float = local.SAMPLE_SECONDS,
        seed: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.namespace = cluster.namespace
        self.run_id = run_id or cluster.run_id
        self.dry_run = dry_run
        self.echo = echo
        self.stress_ng = stress_ng
        self.verify_timeout = verify_timeout
        self.intensity_tolerance = intensity_tolerance
        self.sample_interval = sample_interval
        self._rng = random.Random(seed)
        self._live: dict[str, local.Injection] = {}

    @classmethod
    def for_cluster(cls, cluster: LocalCluster, **kwargs: Any) -> LocalChaos:
        return cls(cluster, **kwargs)

    @contextlib.contextmanager
    def inject(self, experiment: Experiment | Schedule, *, name: str | None = None) -> Iterator[ChaosRun]:
        """Inject ``experiment``, verify it took effect, yield; remove it however the block ends."""
        if self.dry_run:
            run = ChaosRun.for_experiment(
                experiment, namespace=self.namespace, run_id=self.run_id, name=name, dry_run=True
            )
            with dry_run(run, echo=self.echo):
                yield run
            return
        run = self.start(experiment, name=name)
        try:
            yield run
        finally:
            self.remove(run)

    def start(self, experiment: Experiment | Schedule, *, name: str | None = None) -> ChaosRun:
        """Inject and verify; on failure nothing stays injected. Pair every call with :meth:`remove`.

        The run is in the removal registry (SIGINT, atexit) from before the first change until
        :meth:`remove`, so a Ctrl-C at any point leaves nothing injected.
        """
        run = ChaosRun.for_experiment(experiment, namespace=self.namespace, run_id=self.run_id, name=name)
        check_allowed(context="local", allowed=(), what=f"{run.kind} {run.name}")
        if isinstance(experiment, Schedule):
            raise ChaosError(
                f"{run.name}: Schedule is not supported on the local cluster (expected a single experiment); "
                "run the experiment inside your own loop, or use a Kubernetes context with Chaos Mesh."
            )
        registry.register(run.key, lambda: self.remove(run))
        try:
            self._inject(experiment, run)
        except BaseException:
            self.remove(run)
            raise
        spec = run.object.get("spec") or {}
        injected = run.injected_at or time.time()
        until = injected + duration_seconds(str(spec["duration"])) if spec.get("duration") else None
        self.cluster.chaos_injected[run.key] = ChaosSample(run.kind, run.name, until=until)
        return run

    def _targets(self, experiment: Experiment, run: ChaosRun) -> list[local.TargetContainer]:
        names = tuple(getattr(experiment, "containers", ()) or ())
        # Like Chaos Mesh, only running containers are targets: a stress in the cgroup of a container
        # waiting to restart would also hold its restart back (the runner waits for an empty cgroup).
        containers = [
            c
            for c in self.cluster.target_containers({experiment.label: experiment.target})
            if c.pid is not None and (not names or c.name in names)
        ]
        chosen = select_pods(
            sorted({c.pod for c in containers}), mode=experiment.mode, value=experiment.value, rng=self._rng
        )
        targets = [c for c in containers if c.pod in chosen]
        if not targets:
            raise ChaosError(
                f"{run.kind} {run.name} selects nothing: expected running pods labelled "
                f"{experiment.label}={experiment.target}"
                + (f" with running containers {list(names)}" if names else " with a running container")
                + f" in the local cluster; seen pods {[p.name for p in self.cluster.pods()]}. "
                "Check the target name against the manifests' app labels."
            )
        return targets

    def _inject(self, experiment: Experiment, run: ChaosRun) -> None:
        targets = self._targets(experiment, run)
        duration = duration_seconds(experiment.duration) if experiment.duration else None
        common: dict[str, Any] = {"name": run.name, "sample_interval": self.sample_interval}
        if isinstance(experiment, PodChaos) and experiment.action in ("pod-kill", "container-kill"):
            # pod-kill: Kubernetes makes a replacement pod, with no backoff history (container-kill keeps it)
            if experiment.action == "pod-kill":
                for pod in sorted({t.pod for t in targets}):
                    self.cluster.forget_restart_backoff(pod)
            killed = local.kill_containers(targets)
            local.wait_dead(targets, timeout=self.verify_timeout)
            run.injected_at = time.time()
            run.records = [
                {"id": t.id, "pod": t.pod, "container": t.name, "phase": "Injected", "injectedCount": 1,
                 "events": [f"{experiment.action}: SIGKILL of {t.id} (pid {t.pid})"]}
                for t in targets if t.id in killed
            ]  # fmt: skip
            return
        injection: local.Injection
        if isinstance(experiment, PodChaos):  # pod-failure
            injection = local.FreezeInjection(self.cluster, targets, duration=duration, **common)
        elif isinstance(experiment, (StressCpu, StressMemory)):
            spec = self._stress_spec(experiment, duration)
            injection = local.StressInjection(
                self.cluster, targets, spec=spec, stress_ng=self.stress_ng,
                tolerance=self.intensity_tolerance, **common,
            )  # fmt: skip
        elif isinstance(experiment, (NetworkDelay, NetworkLoss)):
            injection = local.ProxyInjection(
                self.cluster, targets, faults=self._faults(experiment), duration=duration, **common
            )
        else:
            raise ChaosError(f"{run.kind} {run.name}: no local mapping for {type(experiment).__name__}")
        self._live[run.key] = injection
        injection.start()
        # Injected when the effect began (its duration runs from here, as Chaos Mesh counts it); the
        # check that it took effect comes after and may take a few samples.
        run.injected_at = time.time()
        if isinstance(injection, local.StressInjection):
            injection.verify(timeout=self.verify_timeout)
        run.records = injection.records()

    @staticmethod
    def _stress_spec(experiment: StressCpu | StressMemory, duration: float | None) -> StressSpec:
        if isinstance(experiment, StressCpu):
            return StressSpec("cpu", experiment.workers, load=experiment.load, timeout=duration)
        return StressSpec(
            "memory", experiment.workers, vm_bytes=size_bytes(experiment.size), timeout=duration
        )

    @staticmethod
    def _faults(experiment: NetworkDelay | NetworkLoss) -> Faults:
        if isinstance(experiment, NetworkDelay):
            return Faults(
                latency=_seconds(experiment.latency),
                jitter=_seconds(experiment.jitter),
                correlation=(experiment.correlation or 0) / 100,
                direction=experiment.direction,
            )
        return Faults(
            loss=experiment.loss / 100,
            correlation=(experiment.correlation or 0) / 100,
            direction=experiment.direction,
        )

    def records(self, run: ChaosRun) -> list[dict[str, Any]]:
        """The run's container records as of now (intensity so far while it is live)."""
        injection = self._live.get(run.key)
        return injection.records() if injection is not None else list(run.records)

    def remove(self, run: ChaosRun) -> None:
        """Recover the experiment once; later calls (finally, SIGINT, atexit) are no-ops."""
        # Non-blocking: a SIGINT handler runs on the main thread, possibly inside this very method;
        # waiting for our own lock there would deadlock, and the removal is already under way.
        if not run._lock.acquire(blocking=False):
            return
        try:
            if run.removed:
                return
            self.cluster.chaos_injected.pop(run.key, None)
            injection = self._live.pop(run.key, None)
            if injection is not None:
                injection.recover()
                run.records = injection.records()
            run.removed = True
            run.ended_at = time.time()
        finally:
            run._lock.release()
            registry.unregister(run.key)

    def sweep(self, namespace: str | None = None) -> list[str]:
        """What the cluster's start-up sweep removed of killed runs (stress-ng lives in their cgroups)."""
        return list(self.cluster.swept)
