"""What the ``hft_chaos`` fixture hands out: chaos experiments as context managers, safety-checked,
injected through the cluster's driver, probed while they run, and recorded in the test's report.

``with hft_chaos.stress_cpu(target="backend", load=80, duration="10s") as exp: exp.wait()`` builds the
experiment with :mod:`pytest_hftk8s.chaos.experiments`, injects it with :class:`LocalChaos` (local) or
:class:`KubernetesChaos` (a kube context), runs the optional continuous probes, and always removes it
(the drivers' ``finally`` plus the registry's SIGINT/atexit guards; the fixture's teardown removes
anything still live). The kube-context allow-list is checked by :func:`check_context` *before* any
connection. This module never builds chaos objects by hand and never evaluates SLOs itself.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pytest_hftk8s.chaos import experiments as ex
from pytest_hftk8s.chaos.run import ChaosRun
from pytest_hftk8s.chaos.safety import check_allowed, render_dry_run
from pytest_hftk8s.errors import ChaosError
from pytest_hftk8s.options import HftSettings

#: Methods of :class:`HftChaos` a ``@pytest.mark.hft_chaos(kind, ...)`` may name.
KINDS = (
    "stress_cpu",
    "stress_memory",
    "pod_kill",
    "container_kill",
    "pod_failure",
    "network_delay",
    "network_loss",
)


def context_of(settings: HftSettings) -> str:
    """The kube context chaos would hit: ``local`` for the embedded cluster, else the resolved context."""
    from pytest_hftk8s.cluster.select import CONTEXT_ALIASES

    cluster = settings.cluster or ""
    return "local" if cluster == "local" else CONTEXT_ALIASES.get(cluster, cluster)


def check_context(settings: HftSettings, *, what: str = "chaos") -> None:
    """Raise :class:`~pytest_hftk8s.errors.ChaosRefused` unless the selected context is allowed.

    Pure: called before the platform (and any cluster connection) is acquired. An alias given to
    ``--hft-allow-context`` (``kind``) also allows the context it stands for (``kind-kind``).
    """
    from pytest_hftk8s.cluster.select import CONTEXT_ALIASES

    allowed = set(settings.allow_contexts)
    allowed |= {CONTEXT_ALIASES[a] for a in settings.allow_contexts if a in CONTEXT_ALIASES}
    check_allowed(context=context_of(settings), allowed=allowed, what=what)


class DryRunDriver:
    """Renders each experiment as YAML and injects nothing (``--hft-chaos-dry-run``); needs no cluster."""

    def __init__(self, *, namespace: str, run_id: str, echo: Callable[[str], None]) -> None:
        self.namespace = namespace
        self.run_id = run_id
        self.echo = echo

    @contextlib.contextmanager
    def inject(
        self, experiment: ex.Experiment | ex.Schedule, *, name: str | None = None
    ) -> Iterator[ChaosRun]:
        obj = experiment.to_object(namespace=self.namespace, run_id=self.run_id, name=name)
        run = ChaosRun(
            kind=obj["kind"],
            name=obj["metadata"]["name"],
            namespace=self.namespace,
            plural=experiment.plural,
            object=obj,
            dry_run=True,
        )
        self.echo("hftk8s chaos dry run (nothing injected):\n" + render_dry_run([obj]))
        try:
            yield run
        finally:
            run.ended_at = time.time()
            run.removed = True

    def remove(self, run: ChaosRun) -> None:
        run.removed = True

    def sweep(self, namespace: str | None = None) -> list[str]:
        return []


def make_driver(cluster: Any, *, settings: HftSettings, run_id: str, echo: Callable[[str], None]) -> Any:
    """The chaos driver for ``cluster``: LocalChaos for the embedded cluster, KubernetesChaos otherwise."""
    from pytest_hftk8s.cluster.local import LocalCluster

    if isinstance(cluster, LocalCluster):
        from pytest_hftk8s.chaos.on_local import LocalChaos

        return LocalChaos(cluster, echo=echo)
    from pytest_hftk8s.chaos.on_kubernetes import KubernetesChaos

    return KubernetesChaos.for_cluster(
        cluster, run_id=run_id, allowed_contexts=(context_of(settings), *settings.allow_contexts), echo=echo
    )


class Experiment:
    """One experiment in a test: its :class:`ChaosRun`, its probe, its report entry."""

    def __init__(self, run: ChaosRun, *, duration: float | None, entry: dict[str, Any]) -> None:
        self.run = run
        self.duration = duration
        self.entry = entry
        self.stopped = threading.Event()  # set when a probe ended the experiment early
        self.probe: Any = None

    @property
    def injected_at(self) -> float:
        return self.run.injected_at or self.run.started_at

    @property
    def stopped_early(self) -> bool:
        return self.stopped.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until the experiment's duration is over (or a probe stopped it); True if stopped early."""
        remaining = (self.injected_at + self.duration - time.time()) if self.duration else 0.0
        if timeout is not None:
            remaining = min(remaining, timeout)
        return self.stopped.wait(max(0.0, remaining))

    def note(self, **values: Any) -> None:
        """Add measurements (recovery time, counts...) to this experiment's report entry."""
        self.entry.update(values)


class HftChaos:
    """The ``hft_chaos`` fixture's value; see the module docstring."""

    def __init__(
        self,
        driver: Any,
        *,
        record: Callable[[dict[str, Any]], None],
        prometheus_url: str | None = None,
        variables: Callable[[], dict[str, Any]] | None = None,
        resolve: Callable[[Sequence[Any]], list[Any]] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.driver = driver
        self._record = record
        self._prometheus_url = prometheus_url
        self._variables = variables or dict
        self._resolve = resolve or list
        self._progress = progress or (lambda _m: None)
        self.experiments: list[Experiment] = []

    @property
    def dry_run(self) -> bool:
        return isinstance(self.driver, DryRunDriver)

    # -- the user API ---------------------------------------------------------------------------

    def stress_cpu(
        self, *, target: str = "backend", load: int = 80, workers: int = 1, duration: str = "30s", **kw: Any
    ) -> Any:
        probe = _probe_options(kw)
        return self.inject(
            ex.stress_cpu(target=target, load=load, workers=workers, duration=duration, **kw), **probe
        )

    def stress_memory(
        self,
        *,
        target: str = "backend",
        size: str = "256MB",
        workers: int = 1,
        duration: str = "30s",
        **kw: Any,
    ) -> Any:
        probe = _probe_options(kw)
        return self.inject(
            ex.stress_memory(target=target, size=size, workers=workers, duration=duration, **kw), **probe
        )

    def pod_kill(self, *, target: str = "engine", **kw: Any) -> Any:
        probe = _probe_options(kw)
        return self.inject(ex.pod_kill(target=target, **kw), **probe)

    def container_kill(self, *, target: str = "engine", containers: Sequence[str] = (), **kw: Any) -> Any:
        probe = _probe_options(kw)
        return self.inject(
            ex.container_kill(target=target, containers=list(containers) or [target], **kw), **probe
        )

    def pod_failure(self, *, target: str = "engine", duration: str = "30s", **kw: Any) -> Any:
        probe = _probe_options(kw)
        return self.inject(ex.pod_failure(target=target, duration=duration, **kw), **probe)

    def network_delay(
        self, *, target: str = "engine", latency: str = "100ms", duration: str = "30s", **kw: Any
    ) -> Any:
        probe = _probe_options(kw)
        return self.inject(ex.network_delay(target=target, latency=latency, duration=duration, **kw), **probe)

    def network_loss(
        self, *, target: str = "engine", loss: float = 10, duration: str = "30s", **kw: Any
    ) -> Any:
        probe = _probe_options(kw)
        return self.inject(ex.network_loss(target=target, loss=loss, duration=duration, **kw), **probe)

    @contextlib.contextmanager
    def inject(
        self,
        experiment: ex.Experiment,
        *,
        name: str | None = None,
        probes: Sequence[Any] = (),
        probe_interval: float = 2.0,
        probe_window: float | None = None,
        stop_on_failure: bool = False,
    ) -> Iterator[Experiment]:
        """Inject any built experiment; see the module docstring. Removal is guaranteed."""
        duration = ex.duration_seconds(experiment.duration) if experiment.duration else None
        entry: dict[str, Any] = {
            "experiment": f"{getattr(experiment, 'short', experiment.kind)} {experiment.target}"
        }
        with self.driver.inject(experiment, name=name) as run:
            handle = Experiment(run, duration=duration, entry=entry)
            self.experiments.append(handle)
            self._record(entry)
            self._progress(f"chaos {run.kind} {run.name}: injected ({entry['experiment']})")
            if probes and not run.dry_run:
                handle.probe = self._start_probe(
                    handle, probes, probe_interval, probe_window, stop_on_failure
                )
            try:
                yield handle
            finally:
                if handle.probe is not None:
                    handle.probe.stop()
        self._finish(handle)

    # -- internals ------------------------------------------------------------------------------

    def _start_probe(
        self, handle: Experiment, probes: Sequence[Any], interval: float, window: float | None, stop: bool
    ) -> Any:
        from pytest_hftk8s.slo.probes import ContinuousProbe

        if self._prometheus_url is None:
            raise ChaosError(
                "continuous probes need the platform's Prometheus; none is known to this fixture"
            )

        def on_failure(round_: Any) -> None:
            handle.stopped.set()
            handle.entry["stopped_early"] = {"at": round_.at, "reason": "a continuous probe failed"}
            self.driver.remove(handle.run)  # idempotent; the with-block's finally finds it removed

        return ContinuousProbe(
            self._resolve(probes),
            prometheus_url=self._prometheus_url,
            interval=interval,
            window=window,
            variables=self._variables(),
            stop_on_failure=stop,
            on_failure=on_failure,
            name=handle.run.name,
        ).start()

    def _finish(self, handle: Experiment) -> None:
        run = handle.run
        summary = run.to_summary()
        start, end = run.window
        end = end or time.time()
        summary["window"] = {"start": start, "end": end, "seconds": max(0.0, end - start)}
        summary["records"] = [dict(r) for r in run.records if isinstance(r, dict)]
        if handle.probe is not None:
            summary["probes"] = handle.probe.summary()
        handle.entry.update(summary)
        handle.entry.setdefault("stopped_early", False)
        reached = summary.get("intensity_reached")
        self._progress(
            f"chaos {run.kind} {run.name}: removed after {summary['window']['seconds']:.1f}s"
            + ("" if reached is None else f", intensity {'reached' if reached else 'NOT reached'}")
        )

    def close(self) -> list[str]:
        """Remove whatever is still live (a handle entered by hand); returns their keys."""
        left = [h.run.key for h in self.experiments if not h.run.removed]
        for h in self.experiments:
            if not h.run.removed:
                with contextlib.suppress(Exception):
                    self.driver.remove(h.run)
        return left


def _probe_options(kw: dict[str, Any]) -> dict[str, Any]:
    """Pop the fixture-level keywords (probes, name) out of the builder keywords."""
    keys = ("name", "probes", "probe_interval", "probe_window", "stop_on_failure")
    return {k: kw.pop(k) for k in keys if k in kw}


def serve(runtime: Any, request: Any) -> Iterator[HftChaos]:
    """The ``hft_chaos`` fixture body: refuse early, pick the driver, apply the marker, always clean up."""
    from pytest_hftk8s.runtime import state_of

    settings: HftSettings = runtime.settings
    item = request.node
    state = state_of(item)
    if settings.chaos_dry_run:
        driver: Any = DryRunDriver(
            namespace=settings.namespace, run_id=secrets.token_hex(4), echo=runtime.progress
        )
        chaos = HftChaos(driver, record=state.chaos.append, progress=runtime.progress)
    else:
        check_context(settings, what=f"chaos for {item.nodeid}")  # before any connection
        platform = request.getfixturevalue("hft_platform")
        if platform.cluster is None:
            import pytest

            pytest.skip(
                "this xdist worker attached to a local cluster another worker owns; run chaos without -n"
            )
        driver = make_driver(
            platform.cluster, settings=settings, run_id=secrets.token_hex(4), echo=runtime.progress
        )
        chaos = HftChaos(
            driver,
            record=state.chaos.append,
            prometheus_url=platform.prometheus_url,
            variables=lambda: probe_variables(platform.namespace, state),
            resolve=lambda slos: resolve_probes(runtime, slos, platform.namespace, state),
            progress=runtime.progress,
        )
    with contextlib.ExitStack() as stack:
        try:
            for mark in reversed(list(item.iter_markers("hft_chaos"))):
                stack.enter_context(from_marker(chaos, mark.args, mark.kwargs))
            yield chaos
        finally:
            left = chaos.close()
            if left:
                state.chaos.append({"cleanup": f"removed {left} at teardown (still live after the test)"})


def from_marker(chaos: HftChaos, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``@pytest.mark.hft_chaos("stress_cpu", target="backend", load=80, duration="10s")``."""
    kind = args[0] if args else kwargs.pop("kind", None)
    if kind not in KINDS or len(args) > 1:
        from pytest_hftk8s.errors import ConfigError

        raise ConfigError(
            f"@pytest.mark.hft_chaos: expected one positional kind among {', '.join(KINDS)} plus keywords; "
            f"got args {args!r}"
        )
    return getattr(chaos, kind)(**dict(kwargs))


def probe_variables(namespace: str, state: Any) -> dict[str, Any]:
    """PromQL variables for probes: the namespace, and the offered rate of the test's open-loop runs."""
    variables: dict[str, Any] = {"namespace": namespace}
    offered = sum(r.rate for r in state.loads if getattr(r, "mode", "") == "open" and r.summary is None)
    if offered:
        variables["offered_rate"] = f"{offered:.6g}"
    return variables


def resolve_probes(runtime: Any, slos: Sequence[Any], namespace: str, state: Any) -> list[Any]:
    """Probe SLOs with baseline-relative ones made absolute against the session's baseline."""
    from pytest_hftk8s.slo.prom import PromClient

    client = PromClient(runtime.platform.prometheus_url)
    try:
        plain, _extras = runtime.resolve_relative(list(slos), client, probe_variables(namespace, state))
    finally:
        client.close()
    return plain
