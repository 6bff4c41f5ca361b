"""What every chaos driver returns and offers, whatever the backend.

:class:`ChaosRun` records one experiment's life (the object, its window, what it hit) and is what
the report reads; :class:`ChaosDriver` is the shape of a driver (the Kubernetes one here, the local
one beside it). Plain data and a Protocol: no I/O.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pytest_hftk8s.chaos.experiments import Experiment, Schedule

__all__ = ["ChaosDriver", "ChaosRun"]


@dataclass
class ChaosRun:
    """One experiment's life: what was sent, when it was injected and removed, what it hit."""

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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.plural}/{self.name}"

    @property
    def window(self) -> tuple[float, float | None]:
        return (self.injected_at or self.started_at, self.ended_at)

    def to_summary(self) -> dict[str, Any]:
        """A plain record for ``summary.json``: what ran, where, when, and what it hit."""
        spec = self.object.get("spec") or {}
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "action": spec.get("action") or next(iter(spec.get("stressors") or {}), None),
            "dry_run": self.dry_run,
            "window": list(self.window),
            "injected": self.injected_at is not None,
            "containers": [str(r.get("id", "")) for r in self.records],
            "intensity": self.intensity(),
            "intensity_reached": self.intensity_reached(),
        }

    def intensity(self) -> list[dict[str, Any]]:
        """Requested vs observed intensity per container (stress experiments on drivers that measure it)."""
        return [
            {"container": str(r.get("id", "")), **r["intensity"]}
            for r in self.records
            if isinstance(r, dict) and isinstance(r.get("intensity"), dict)
        ]

    def intensity_reached(self) -> bool | None:
        """Whether every measured container reached its intensity; ``None`` when nothing was measured."""
        measured = self.intensity()
        return all(bool(i.get("reached")) for i in measured) if measured else None


@runtime_checkable
class ChaosDriver(Protocol):
    """Injects experiments; removal is guaranteed by the context manager (and the registry)."""

    def inject(
        self, experiment: Experiment | Schedule, *, name: str | None = None
    ) -> AbstractContextManager[ChaosRun]: ...

    def sweep(self, namespace: str | None = None) -> list[str]:
        """Remove whatever a killed earlier run left behind; returns what was removed."""
        ...
