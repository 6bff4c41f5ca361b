"""What every chaos driver returns and offers, whatever the backend.

:class:`ChaosRun` records one experiment's life (the object, its window, what it hit);
:class:`ChaosDriver` is the shape of a driver (each cluster backend brings its own);
:class:`DryRunDriver` renders experiments instead of injecting them. Plain data, a Protocol and a
printing driver: no cluster I/O.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pytest_hftk8s.chaos.experiments import Experiment, Schedule, duration_seconds, size_bytes
from pytest_hftk8s.chaos.safety import render_dry_run
from pytest_hftk8s.results import ChaosRecord, Intensity, Window

__all__ = ["ChaosDriver", "ChaosRun", "DryRunDriver"]


@dataclass
class ChaosRun:
    """One experiment's life: what was sent, when it was injected and removed, what it hit.

    ``records`` are Chaos Mesh ``containerRecords`` (``id``, ``phase``, ``injectedCount``, ``events``);
    a driver that measures what it did on its own adds an ``intensity`` mapping to a record (the
    local driver's cgroup reading), which the report shows as a cross-check of the judgement.
    """

    kind: str
    name: str
    namespace: str
    plural: str
    object: dict[str, Any]
    dry_run: bool = False
    started_at: float = field(default_factory=time.time)
    injected_at: float | None = None
    ended_at: float | None = None
    records: list[Any] = field(default_factory=list)
    removed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def for_experiment(
        cls,
        experiment: Experiment | Schedule,
        *,
        namespace: str,
        run_id: str,
        name: str | None = None,
        dry_run: bool = False,
    ) -> ChaosRun:
        """A not-yet-injected run of ``experiment``, rendered into ``namespace``."""
        obj = experiment.to_object(namespace=namespace, run_id=run_id, name=name)
        return cls(
            kind=obj["kind"],
            name=obj["metadata"]["name"],
            namespace=namespace,
            plural=experiment.plural,
            object=obj,
            dry_run=dry_run,
        )

    def __getstate__(self) -> dict[str, Any]:  # crosses processes (the local cluster's control socket)
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.plural}/{self.name}"

    @property
    def window(self) -> Window:
        start = self.injected_at or self.started_at
        return Window(start, self.ended_at or time.time())

    def cross_check(self) -> list[Intensity]:
        """The driver's own intensity reading per container, where it made one (local cgroups)."""
        out = []
        for r in self.records:
            i = r.get("intensity") if isinstance(r, dict) else None
            if not isinstance(i, dict):
                continue
            out.append(
                Intensity(
                    container=str(r.get("id", "")),
                    kind=str(i.get("resource", "")),
                    unit=str(i.get("unit", "")),
                    requested=float(i.get("requested", 0.0)),
                    expected=float(i.get("expected", 0.0)),
                    observed=i.get("observed"),
                    reached=bool(i.get("reached")),
                    source="cgroup",
                    baseline=float(i.get("baseline", 0.0)),
                    oom_kills=int(i.get("oom_kills", 0)),
                )
            )
        return out

    def record(self, experiment: str) -> ChaosRecord:
        """The typed record of this run (the judgement of intensity is added by the SLO layer)."""
        spec = self.object.get("spec") or {}
        stressors = spec.get("stressors") or {}
        requested: dict[str, Any] = dict(stressors)
        for key in ("action", "mode", "value", "duration", "delay", "loss", "containerNames"):
            if key in spec:
                requested[key] = spec[key]
        if "cpu" in stressors:
            requested["cpu_cores"] = stressors["cpu"]["workers"] * stressors["cpu"].get("load", 100) / 100
        if "memory" in stressors and not str(stressors["memory"]["size"]).endswith("%"):
            requested["memory_bytes"] = size_bytes(str(stressors["memory"]["size"]))
        window = self.window
        if self.injected_at is not None and "duration" in spec:  # Chaos Mesh recovers at its duration
            until = self.injected_at + duration_seconds(str(spec["duration"]))
            window = Window(window.start, min(window.end, max(window.start, until)))
        return ChaosRecord(
            experiment=experiment,
            kind=self.kind,
            name=self.name,
            namespace=self.namespace,
            action=spec.get("action") or next(iter(stressors), None),
            dry_run=self.dry_run,
            window=window,
            requested_at=self.started_at,
            injected=self.injected_at is not None,
            containers=[str(r.get("id", "")) for r in self.records if isinstance(r, dict)],
            requested=requested,
            intensity_cross_check=self.cross_check(),
        )


@runtime_checkable
class ChaosDriver(Protocol):
    """Injects experiments; removal is guaranteed by the context manager (and the removal registry)."""

    def inject(
        self, experiment: Experiment | Schedule, *, name: str | None = None
    ) -> AbstractContextManager[ChaosRun]: ...

    def remove(self, run: ChaosRun) -> None:
        """Remove ``run`` now; idempotent (the ``finally``, SIGINT and atexit may all call it)."""

    def sweep(self, namespace: str | None = None) -> list[str]:
        """Remove whatever a killed earlier run left behind; returns what was removed."""
        ...


class DryRunDriver:
    """Renders each experiment as YAML and injects nothing (``--hft-chaos-dry-run``); needs no cluster."""

    def __init__(self, *, namespace: str, run_id: str, echo: Callable[[str], None]) -> None:
        self.namespace = namespace
        self.run_id = run_id
        self.echo = echo

    @contextlib.contextmanager
    def inject(self, experiment: Experiment | Schedule, *, name: str | None = None) -> Iterator[ChaosRun]:
        run = ChaosRun.for_experiment(
            experiment, namespace=self.namespace, run_id=self.run_id, name=name, dry_run=True
        )
        self.echo("hftk8s chaos dry run (nothing injected):\n" + render_dry_run([run.object]))
        try:
            yield run
        finally:
            run.ended_at = time.time()
            run.removed = True

    def remove(self, run: ChaosRun) -> None:
        run.removed = True

    def sweep(self, namespace: str | None = None) -> list[str]:
        return []
