"""What the ``hft_chaos`` fixture hands out: chaos experiments as context managers, safety-checked,
injected through the cluster's own driver, probed while they run, judged, and recorded.

``with hft_chaos.stress_cpu(target="backend", load=80, duration="10s") as exp: exp.wait()`` builds the
experiment with :mod:`pytest_hftk8s.chaos.experiments`, takes the measurement lock, injects it with
the driver the cluster brings (:meth:`~pytest_hftk8s.cluster.base.Cluster.chaos_driver`), runs the
optional continuous probes, and always removes it (the driver's ``finally`` plus the registry's
SIGINT/atexit guards; the fixture's teardown removes anything still live). After removal the
intensity of a stress is judged from Prometheus (:mod:`pytest_hftk8s.slo.intensity`) - the same
judgement on every backend - and the typed record goes into the test's report. The kube-context
allow-list is checked before any connection. This module never names a backend class.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hftk8s.chaos import experiments as ex
from pytest_hftk8s.chaos.driver import ChaosDriver, ChaosRun, DryRunDriver
from pytest_hftk8s.chaos.safety import check_allowed
from pytest_hftk8s.cluster.select import allowed_contexts, context_of
from pytest_hftk8s.errors import ChaosError, ConfigError
from pytest_hftk8s.orchestration.recorder import state_of
from pytest_hftk8s.results import ChaosRecord
from pytest_hftk8s.settings import HftSettings
from pytest_hftk8s.slo import intensity
from pytest_hftk8s.slo.prom import PromClient, PromError

if TYPE_CHECKING:
    from pytest_hftk8s.orchestration.runtime import HftRuntime

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


def check_context(settings: HftSettings, *, what: str = "chaos") -> None:
    """Raise :class:`~pytest_hftk8s.errors.ChaosRefused` unless the selected context is allowed.

    Pure: called before the platform (and any cluster connection) is acquired. An alias given to
    ``--hft-allow-context`` (``kind``) also allows the context it stands for (``kind-kind``).
    """
    check_allowed(
        context=context_of(settings.cluster or ""),
        allowed=allowed_contexts(settings.allow_context),
        what=what,
    )


class Experiment:
    """One experiment in a test: its :class:`ChaosRun`, its probe, and its typed record."""

    def __init__(self, run: ChaosRun, *, duration: float | None, label: str) -> None:
        self.run = run
        self.duration = duration
        self.record = ChaosRecord(experiment=label)
        self.stopped = threading.Event()  # set when a probe ended the experiment early
        self.probe: Any = None

    @property
    def injected_at(self) -> float:
        return self.run.injected_at or self.run.started_at

    @property
    def stopped_early(self) -> bool:
        return self.stopped.is_set()

    @property
    def intensity_reached(self) -> bool | None:
        return self.record.intensity_reached

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until the experiment's duration is over (or a probe stopped it); True if stopped early."""
        remaining = (self.injected_at + self.duration - time.time()) if self.duration else 0.0
        if timeout is not None:
            remaining = min(remaining, timeout)
        return self.stopped.wait(max(0.0, remaining))

    def note(self, *, load: str | None = None, **figures: float) -> None:
        """Name the load run this experiment ran under, and add named figures (seconds, ratios, counts)."""
        if load is not None:
            self.record.load = load
        for key, value in figures.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"experiment note {key}={value!r}: expected a number")
            self.record.figures[key] = float(value)


class HftChaos:
    """The ``hft_chaos`` fixture's value; see the module docstring."""

    def __init__(
        self,
        driver: ChaosDriver,
        *,
        record: Callable[[ChaosRecord], None],
        before_inject: Callable[[], None] = lambda: None,
        prometheus_url: str | None = None,
        namespace: str = "",
        variables: Callable[[], dict[str, Any]] | None = None,
        resolve: Callable[[Sequence[Any]], list[Any]] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.driver = driver
        self._record = record
        self._before_inject = before_inject
        self._prometheus_url = prometheus_url
        self._namespace = namespace
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
        label = f"{getattr(experiment, 'short', experiment.kind)} {experiment.target}"
        if not self.dry_run:
            self._before_inject()
        with self.driver.inject(experiment, name=name) as run:
            handle = Experiment(run, duration=duration, label=label)
            self.experiments.append(handle)
            self._record(handle.record)
            self._progress(f"chaos {run.kind} {run.name}: injected ({label})")
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
            handle.record.stopped_early = f"a continuous probe failed at {round_.at:.3f}"
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
        """Fill the typed record from the run, then judge a stress's intensity from Prometheus."""
        fresh = handle.run.record(handle.record.experiment)
        record = handle.record
        for name in ("kind", "name", "namespace", "action", "dry_run", "window", "requested_at", "injected",
                     "containers", "requested", "intensity_cross_check"):  # fmt: skip
            setattr(record, name, getattr(fresh, name))
        if handle.probe is not None:
            record.probes = handle.probe.summary()
        if self._prometheus_url is not None and not record.dry_run:
            client = PromClient(self._prometheus_url)
            try:
                record.intensity = intensity.judge(record, client, namespace=self._namespace)
            except PromError as e:
                record.cleanup = f"intensity not judged: {e}"
            finally:
                client.close()
            if record.intensity:
                record.intensity_reached = all(i.reached for i in record.intensity)
        reached = record.intensity_reached
        seconds = record.window.seconds if record.window else 0.0
        self._progress(
            f"chaos {handle.run.kind} {handle.run.name}: removed after {seconds:.1f}s"
            + (
                ""
                if reached is None
                else f", intensity {'reached' if reached else 'NOT reached'} (Prometheus)"
            )
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


def serve(runtime: HftRuntime, request: pytest.FixtureRequest) -> Iterator[HftChaos]:
    """The ``hft_chaos`` fixture body: refuse early, pick the driver, apply the marker, always clean up."""
    from pytest_hftk8s.orchestration import slos

    settings = runtime.settings
    item = request.node
    state = state_of(item)
    run_id = secrets.token_hex(4)
    if settings.chaos_dry_run:
        driver: ChaosDriver = DryRunDriver(namespace=settings.namespace, run_id=run_id, echo=runtime.progress)
        chaos = HftChaos(driver, record=state.chaos.append, progress=runtime.progress)
    else:
        check_context(settings, what=f"chaos for {item.nodeid}")  # before any connection
        platform = request.getfixturevalue("hft_platform")
        allowed = (context_of(settings.cluster or ""), *sorted(allowed_contexts(settings.allow_context)))
        driver = platform.cluster.chaos_driver(run_id=run_id, allowed_contexts=allowed, echo=runtime.progress)

        def resolve_probes(checks: Sequence[Any]) -> list[Any]:
            client = PromClient(platform.prometheus_url)
            try:
                return slos.resolve(runtime, checks, client, slos.variables(runtime, state, live=True))[0]
            finally:
                client.close()

        chaos = HftChaos(
            driver,
            record=state.chaos.append,
            before_inject=lambda: runtime.hold_measurement(),
            prometheus_url=platform.prometheus_url,
            namespace=platform.namespace,
            variables=lambda: slos.variables(runtime, state, live=True),
            resolve=resolve_probes,
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
                state.notes.append(f"removed {left} at teardown (still live after the test)")


def from_marker(chaos: HftChaos, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``@pytest.mark.hft_chaos("stress_cpu", target="backend", load=80, duration="10s")``."""
    kind = args[0] if args else kwargs.pop("kind", None)
    if kind not in KINDS or len(args) > 1:
        raise ConfigError(
            f"@pytest.mark.hft_chaos: expected one positional kind among {', '.join(KINDS)} plus keywords; "
            f"got args {args!r}"
        )
    return getattr(chaos, kind)(**dict(kwargs))
