"""Typed builders for Chaos Mesh v2.8 experiments: StressChaos, PodChaos, NetworkChaos and Schedule.

Each builder is a frozen, keyword-only dataclass validated on construction (bad input raises
:class:`~pytest_hftk8s.errors.ConfigError` saying what was expected); ``to_object`` renders the
custom resource for a namespace and run id, labelled as the plugin's. Purely data-manipulative: no
I/O, no cluster client. Both the Kubernetes driver and the local chaos path read these dataclasses.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, TypeVar

from pytest_hftk8s.errors import ConfigError

__all__ = [
    "GROUP",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "RUN_ID_LABEL",
    "Experiment",
    "NetworkDelay",
    "NetworkLoss",
    "PodChaos",
    "PodChaosAction",
    "Schedule",
    "StressCpu",
    "StressMemory",
    "container_kill",
    "from_object",
    "network_delay",
    "network_loss",
    "pod_failure",
    "pod_kill",
    "schedule",
    "size_bytes",
    "stress_cpu",
    "stress_memory",
]

GROUP = "chaos-mesh.org"
VERSION = "v1alpha1"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "pytest-hftk8s"
RUN_ID_LABEL = "hftk8s.io/run-id"
#: The pod label a ``target`` name selects on: the manifests label every pod ``app: <workload>``.
TARGET_LABEL = "app"

Mode = Literal["one", "all", "fixed", "fixed-percent", "random-max-percent"]
_MODES = ("one", "all", "fixed", "fixed-percent", "random-max-percent")
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
_NETEM_TIME = re.compile(r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$")
_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _fail(what: str, expected: str, seen: Any) -> ConfigError:
    return ConfigError(f"{what}: expected {expected}, got {seen!r}")


def _check_duration(name: str, value: str | None, *, required: bool = False) -> None:
    if value is None:
        if required:
            raise _fail(name, "a Go duration such as '30s' or '1m30s'", value)
        return
    if not isinstance(value, str) or not _GO_DURATION.match(value):
        raise _fail(name, "a Go duration such as '30s' or '1m30s'", value)


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(name, f"an integer in [{lo}, {hi}]", value)


def _check_percent(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise _fail(name, "a percentage in [0, 100]", value)


def _percent_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def size_bytes(size: str, *, total_memory: int = 0) -> int:
    """A StressChaos memory size in bytes (``"256MB"`` decimal, ``"1GiB"`` binary); ``"50%"`` is of
    ``total_memory`` (the node's memory, which the caller knows; 0 when it does not)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)", size)
    if m is None:
        raise ConfigError(f"memory size: expected e.g. '256MB', '1GiB' or '50%', got {size!r}")
    number, unit = float(m.group(1)), m.group(2)
    if unit == "%":
        return int(total_memory * number / 100)
    return int(number * _UNITS[unit])


def duration_seconds(value: str) -> float:
    """Seconds in a Go duration string (``"1m30s"`` -> 90.0)."""
    _check_duration("duration", value, required=True)
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(
        float(n) * scale[u] for n, _, u in re.findall(r"([0-9]+(\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", value)
    )


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """What every experiment shares: which pods (by label, in the test namespace) and how many."""

    kind: ClassVar[str]
    plural: ClassVar[str]
    schedule_key: ClassVar[str]  # the field name of this kind inside a Schedule spec
    one_shot: ClassVar[bool] = False  # pod-kill and container-kill act once; no recovery to wait for

    target: str
    mode: Mode = "all"
    value: str | None = None  # count or percent for the fixed / percent modes
    duration: str | None = None
    label: str = TARGET_LABEL

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not _DNS_LABEL.match(self.target):
            raise _fail("target", "a workload name (lowercase DNS label, e.g. 'backend')", self.target)
        if self.mode not in _MODES:
            raise _fail("mode", f"one of {', '.join(_MODES)}", self.mode)
        if self.mode in ("fixed", "fixed-percent", "random-max-percent") and not self.value:
            raise _fail(
                f"value (required by mode {self.mode!r})", "a count or percent like '1' or '50'", self.value
            )
        _check_duration("duration", self.duration)

    @property
    def short(self) -> str:
        return self.kind.lower()

    def selector(self, namespace: str) -> dict[str, Any]:
        return {"namespaces": [namespace], "labelSelectors": {self.label: self.target}}

    def spec(self, namespace: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"mode": self.mode, "selector": self.selector(namespace)}
        if self.value is not None:
            spec["value"] = str(self.value)
        if self.duration is not None:
            spec["duration"] = self.duration
        return spec

    def to_object(self, *, namespace: str, run_id: str, name: str | None = None) -> dict[str, Any]:
        """The custom resource; ``name`` defaults to ``hft-<action>-<target>-<random>``."""
        name = name or f"hft-{self.short}-{self.target}-{secrets.token_hex(3)}"[:63].rstrip("-")
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": self.kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, RUN_ID_LABEL: run_id},
            },
            "spec": self.spec(namespace),
        }


@dataclass(frozen=True, kw_only=True)
class _Stress(Experiment):
    kind: ClassVar[str] = "StressChaos"
    plural: ClassVar[str] = "stresschaos"
    schedule_key: ClassVar[str] = "stressChaos"
    containers: tuple[str, ...] = ()

    def spec(self, namespace: str) -> dict[str, Any]:
        spec = super().spec(namespace)
        if self.containers:
            spec["containerNames"] = list(self.containers)
        spec["stressors"] = self.stressors()
        return spec

    def stressors(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class StressCpu(_Stress):
    """``workers`` stress-ng CPU workers, each loading one CPU to ``load`` percent."""

    load: int = 100
    workers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("load", self.load, 0, 100)
        _check_int("workers", self.workers, 1, 8192)

    @property
    def short(self) -> str:
        return "stress-cpu"

    def stressors(self) -> dict[str, Any]:
        return {"cpu": {"workers": self.workers, "load": self.load}}


@dataclass(frozen=True, kw_only=True)
class StressMemory(_Stress):
    """``workers`` memory stressors, each allocating ``size`` (e.g. ``"256MB"`` or ``"50%"``)."""

    size: str = "256MB"
    workers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.size, str) or not _SIZE.match(self.size):
            raise _fail("size", "a size like '256MB', '1GiB' or '50%'", self.size)
        _check_int("workers", self.workers, 1, 8192)

    @property
    def short(self) -> str:
        return "stress-memory"

    def stressors(self) -> dict[str, Any]:
        return {"memory": {"workers": self.workers, "size": self.size}}


PodChaosAction = Literal["pod-kill", "container-kill", "pod-failure"]


@dataclass(frozen=True, kw_only=True)
class PodChaos(Experiment):
    kind: ClassVar[str] = "PodChaos"
    plural: ClassVar[str] = "podchaos"
    schedule_key: ClassVar[str] = "podChaos"

    action: PodChaosAction = "pod-kill"
    containers: tuple[str, ...] = ()
    grace_period: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.action not in ("pod-kill", "container-kill", "pod-failure"):
            raise _fail("action", "one of pod-kill, container-kill, pod-failure", self.action)
        if self.action == "container-kill" and not self.containers:
            raise _fail(
                "containers (required by container-kill)", "at least one container name", self.containers
            )
        if self.action == "pod-failure" and self.duration is None:
            raise _fail("duration (required by pod-failure)", "a Go duration such as '30s'", None)
        if self.grace_period is not None:
            _check_int("grace_period", self.grace_period, 0, 2**31)

    @property
    def one_shot(self) -> bool:  # type: ignore[override]
        return self.action in ("pod-kill", "container-kill")

    @property
    def short(self) -> str:
        return self.action

    def spec(self, namespace: str) -> dict[str, Any]:
        spec = {"action": self.action, **super().spec(namespace)}
        if self.containers:
            spec["containerNames"] = list(self.containers)
        if self.grace_period is not None:
            spec["gracePeriod"] = self.grace_period
        return spec


@dataclass(frozen=True, kw_only=True)
class _Network(Experiment):
    kind: ClassVar[str] = "NetworkChaos"
    plural: ClassVar[str] = "networkchaos"
    schedule_key: ClassVar[str] = "networkChaos"
    direction: Literal["to", "from", "both"] = "to"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.direction not in ("to", "from", "both"):
            raise _fail("direction", "one of to, from, both", self.direction)


@dataclass(frozen=True, kw_only=True)
class NetworkDelay(_Network):
    """Adds ``latency`` (+- ``jitter``) to the target's packets; ``correlation`` in percent."""

    latency: str = "100ms"
    jitter: str | None = None
    correlation: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("latency", "jitter"):
            value = getattr(self, name)
            if (value is not None or name == "latency") and (
                not isinstance(value, str) or not _NETEM_TIME.match(value)
            ):
                raise _fail(name, "a time like '100ms' or '1.5s'", value)
        if self.correlation is not None:
            _check_percent("correlation", self.correlation)

    @property
    def short(self) -> str:
        return "network-delay"

    def spec(self, namespace: str) -> dict[str, Any]:
        delay: dict[str, Any] = {"latency": self.latency}
        if self.jitter is not None:
            delay["jitter"] = self.jitter
        if self.correlation is not None:
            delay["correlation"] = _percent_text(self.correlation)
        return {"action": "delay", **super().spec(namespace), "direction": self.direction, "delay": delay}


@dataclass(frozen=True, kw_only=True)
class NetworkLoss(_Network):
    """Drops ``loss`` percent of the target's packets; ``correlation`` in percent."""

    loss: float = 10
    correlation: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_percent("loss", self.loss)
        if self.correlation is not None:
            _check_percent("correlation", self.correlation)

    @property
    def short(self) -> str:
        return "network-loss"

    def spec(self, namespace: str) -> dict[str, Any]:
        loss: dict[str, Any] = {"loss": _percent_text(self.loss)}
        if self.correlation is not None:
            loss["correlation"] = _percent_text(self.correlation)
        return {"action": "loss", **super().spec(namespace), "direction": self.direction, "loss": loss}


_CRON_FIELD = re.compile(r"^[0-9*/,\-?A-Za-z]+$")


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """Runs ``experiment`` on a cron schedule (``"*/5 * * * *"`` or ``"@every 1m"``)."""

    kind: ClassVar[str] = "Schedule"
    plural: ClassVar[str] = "schedules"
    one_shot: ClassVar[bool] = False

    cron: str
    experiment: Experiment
    history_limit: int = 1
    concurrency_policy: Literal["Forbid", "Allow"] = "Forbid"
    starting_deadline_seconds: int | None = None

    def __post_init__(self) -> None:
        cron = self.cron if isinstance(self.cron, str) else ""
        every = cron.startswith("@every ") and _GO_DURATION.match(cron[len("@every ") :])
        named = cron in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
        fields = cron.split()
        if not (every or named or (len(fields) in (5, 6) and all(_CRON_FIELD.match(f) for f in fields))):
            raise _fail("cron", "a cron spec like '*/5 * * * *' or '@every 1m'", self.cron)
        if not isinstance(self.experiment, Experiment):
            raise _fail("experiment", "an experiment from a builder such as stress_cpu(...)", self.experiment)
        _check_int("history_limit", self.history_limit, 1, 1000)
        if self.concurrency_policy not in ("Forbid", "Allow"):
            raise _fail("concurrency_policy", "Forbid or Allow", self.concurrency_policy)
        if self.starting_deadline_seconds is not None:
            _check_int("starting_deadline_seconds", self.starting_deadline_seconds, 0, 2**31)

    @property
    def target(self) -> str:
        return self.experiment.target

    @property
    def short(self) -> str:
        return f"schedule-{self.experiment.short}"

    def to_object(self, *, namespace: str, run_id: str, name: str | None = None) -> dict[str, Any]:
        inner = self.experiment.to_object(namespace=namespace, run_id=run_id, name=name)
        name = name or inner["metadata"]["name"].replace("hft-", "hft-schedule-", 1)[:63].rstrip("-")
        spec: dict[str, Any] = {
            "schedule": self.cron,
            "type": self.experiment.kind,
            "historyLimit": self.history_limit,
            "concurrencyPolicy": self.concurrency_policy,
            self.experiment.schedule_key: inner["spec"],
        }
        if self.starting_deadline_seconds is not None:
            spec["startingDeadlineSeconds"] = self.starting_deadline_seconds
        return {**inner, "kind": self.kind, "metadata": {**inner["metadata"], "name": name}, "spec": spec}


# -- the user-facing builders (keyword-only, the names of the user API) ---------------------------

_E = TypeVar("_E")


def _build(cls: Callable[..., _E], **kwargs: Any) -> _E:
    try:
        return cls(**kwargs)
    except TypeError as e:  # an unknown keyword: say which ones exist
        known = ", ".join(f.name for f in fields(cls) if f.init)  # type: ignore[arg-type]
        raise ConfigError(f"{getattr(cls, '__name__', cls)}: {e}; expected keywords among: {known}") from e


def stress_cpu(
    *, target: str, load: int = 100, workers: int = 1, duration: str | None = "30s", **kw: Any
) -> StressCpu:
    return _build(StressCpu, target=target, load=load, workers=workers, duration=duration, **kw)


def stress_memory(
    *, target: str, size: str = "256MB", workers: int = 1, duration: str | None = "30s", **kw: Any
) -> StressMemory:
    return _build(StressMemory, target=target, size=size, workers=workers, duration=duration, **kw)


def pod_kill(*, target: str, mode: Mode = "one", **kw: Any) -> PodChaos:
    return _build(PodChaos, target=target, action="pod-kill", mode=mode, **kw)


def container_kill(
    *, target: str, containers: tuple[str, ...] | list[str], mode: Mode = "one", **kw: Any
) -> PodChaos:
    return _build(
        PodChaos, target=target, action="container-kill", containers=tuple(containers), mode=mode, **kw
    )


def pod_failure(*, target: str, duration: str = "30s", mode: Mode = "one", **kw: Any) -> PodChaos:
    return _build(PodChaos, target=target, action="pod-failure", duration=duration, mode=mode, **kw)


def network_delay(
    *,
    target: str,
    latency: str = "100ms",
    jitter: str | None = None,
    correlation: float | None = None,
    duration: str | None = "30s",
    **kw: Any,
) -> NetworkDelay:
    return _build(
        NetworkDelay,
        target=target,
        latency=latency,
        jitter=jitter,
        correlation=correlation,
        duration=duration,
        **kw,
    )


def network_loss(
    *,
    target: str,
    loss: float = 10,
    correlation: float | None = None,
    duration: str | None = "30s",
    **kw: Any,
) -> NetworkLoss:
    return _build(NetworkLoss, target=target, loss=loss, correlation=correlation, duration=duration, **kw)


def schedule(*, cron: str, experiment: Experiment, **kw: Any) -> Schedule:
    return _build(Schedule, cron=cron, experiment=experiment, **kw)


def _percent(value: Any) -> float | None:
    return None if value in (None, "") else float(str(value).rstrip("%"))


def from_object(obj: Mapping[str, Any]) -> Experiment:
    """The experiment a Chaos Mesh object stands for: the inverse of :meth:`Experiment.to_object`.

    What a controller behind an emulated API needs to carry out a custom resource. Only the shapes
    the builders above produce are understood (one ``labelSelectors`` term, one stressor kind);
    anything else is a :class:`~pytest_hftk8s.errors.ConfigError` that names the field.
    """
    kind, spec = obj.get("kind"), dict(obj.get("spec") or {})
    labels = dict((spec.get("selector") or {}).get("labelSelectors") or {})
    if len(labels) != 1:
        raise _fail("spec.selector.labelSelectors", "exactly one label (the plugin's selector)", labels)
    ((label, target),) = labels.items()
    common: dict[str, Any] = {"target": target, "label": label, "mode": spec.get("mode", "all"),
                              "value": spec.get("value"), "duration": spec.get("duration")}  # fmt: skip
    containers = tuple(spec.get("containerNames") or ())
    if kind == "StressChaos":
        stressors = dict(spec.get("stressors") or {})
        if set(stressors) == {"cpu"}:
            cpu = stressors["cpu"]
            return StressCpu(**common, containers=containers, load=int(cpu.get("load", 100)),
                             workers=int(cpu.get("workers", 1)))  # fmt: skip
        if set(stressors) == {"memory"}:
            memory = stressors["memory"]
            return StressMemory(**common, containers=containers, size=str(memory.get("size", "")),
                                workers=int(memory.get("workers", 1)))  # fmt: skip
        raise _fail("spec.stressors", "one of cpu or memory", sorted(stressors))
    if kind == "PodChaos":
        return PodChaos(**common, action=spec.get("action", "pod-kill"), containers=containers,
                        grace_period=spec.get("gracePeriod"))  # fmt: skip
    if kind == "NetworkChaos":
        direction = spec.get("direction", "to")
        if spec.get("action") == "delay":
            delay = dict(spec.get("delay") or {})
            return NetworkDelay(**common, direction=direction, latency=str(delay.get("latency", "")),
                                jitter=delay.get("jitter"), correlation=_percent(delay.get("correlation")))  # fmt: skip
        if spec.get("action") == "loss":
            loss = dict(spec.get("loss") or {})
            return NetworkLoss(**common, direction=direction, loss=_percent(loss.get("loss")) or 0.0,
                               correlation=_percent(loss.get("correlation")))  # fmt: skip
        raise _fail("NetworkChaos spec.action", "delay or loss", spec.get("action"))
    raise _fail("kind", "StressChaos, PodChaos or NetworkChaos", kind)
