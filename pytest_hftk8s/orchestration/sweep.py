"""The scaling sweep's runner: at each backend count N, deploy, find the highest sustainable rate, name
what saturated, delete; then fit the Universal Scalability Law.

For each N of ``--hft-sweep-backends`` (ascending) it renders the session's overlay with N backend
replicas (``manifests.render(replicas={"backend": N})``) into its own namespace through the cluster
selector (``runtime.another_cluster``: a second local cluster, or a second namespace of the kube
context), gates it, and searches its ceiling (:func:`pytest_hftk8s.sweep.search.find_ceiling`) with
open-loop probes of ``--hft-sweep-probe-seconds`` through that platform's nginx. Every N is deployed
fresh, the same way, so the points differ only in N: each starts with an empty database, and each
shares the node with the idle session platform. The platform is always deleted, also on an error or
Ctrl-C. Each probe is a run of the test's load driver, so it appears in the test's loads; it is
judged by :mod:`pytest_hftk8s.sweep.criteria` with the client p99 of ``slo/latency.py``.

The saturated component at each N is attributed (``slo/bottleneck.attribute``) from that platform's
Prometheus over the window of the lowest unsustainable probe, the load at which the ceiling was hit
(the highest sustainable one when nothing failed); the sweep's verdict is the one at its knee.

The whole sweep holds the measurement lock and is bounded by ``--hft-sweep-budget``: each N gets an
equal share of what is left (deploy and gates included); a search that cannot afford its next
probe stops with ``budget_exhausted``, and the N not reached are recorded as such. The result goes
into the test's record and ``<report dir>/sweep.json`` (also after a failure, with what was measured).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.errors import HftError, LoadError
from pytest_hftk8s.gate import GateConfig, ReadinessGate
from pytest_hftk8s.load.driver import LoadDriver
from pytest_hftk8s.manifests import render
from pytest_hftk8s.orchestration.load import driver_for
from pytest_hftk8s.orchestration.recorder import state_of
from pytest_hftk8s.orchestration.scale import session_images
from pytest_hftk8s.results import (
    Bottleneck,
    LoadSummary,
    SweepPoint,
    SweepProbe,
    SweepResult,
    Window,
    to_dict,
)
from pytest_hftk8s.slo.latency import quantile_ms
from pytest_hftk8s.sweep import usl
from pytest_hftk8s.sweep.criteria import Criteria, judge
from pytest_hftk8s.sweep.search import Ceiling, find_ceiling
from pytest_hftk8s.sweep.verdict import fit_points, knee, sentence

if TYPE_CHECKING:
    from pytest_hftk8s.orchestration.runtime import HftRuntime

SWEEP_JSON = "sweep.json"
#: The first probe of the smallest N; every later N starts at the ceiling found before it.
START_RATE = 50.0
#: Stop bisecting when the highest failed rate is within 10% of the highest sustained one.
RESOLUTION = 0.1
#: A probe also registers users, waits for its last answers (request timeout 2 s) and settles.
PROBE_OVERHEAD_S = 4.0
#: Requests still queued in nginx and the backends after an overloaded probe drain before the next.
SETTLE_S = 1.0
#: What the bottleneck attribution waits for Prometheus to scrape past a probe's window (500 ms scrapes).
SCRAPE_WAIT_S = 3.0
#: Kept back from each N's share for the attribution's queries and the platform's deletion.
RESERVE_S = 8.0


@dataclass(frozen=True)
class SweepPlan:
    """What one sweep does (by default from the session's ``--hft-sweep-*`` settings)."""

    backends: tuple[int, ...]
    budget_s: float
    probe_s: float
    criteria: Criteria
    start_rate: float = START_RATE
    resolution: float = RESOLUTION


def plan_from(runtime: HftRuntime, **overrides: Any) -> SweepPlan:
    """The session's ``--hft-sweep-*`` settings, with a test's keyword overrides."""
    s = runtime.settings
    plan = SweepPlan(
        backends=s.sweep_backends,
        budget_s=s.sweep_budget,
        probe_s=s.sweep_probe_seconds,
        criteria=Criteria(max_p99_ms=s.sweep_p99_ms, min_ratio=s.sweep_min_ratio),
    )
    known = sorted(f.name for f in dataclasses.fields(SweepPlan))
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise pytest.UsageError(f"hft_sweep.run(): unknown keywords {unknown}; expected some of {known}")
    plan = dataclasses.replace(plan, **overrides)
    backends = tuple(sorted(set(plan.backends)))
    if not backends or backends[0] < 1:
        raise pytest.UsageError(f"hft_sweep.run(): expected backend counts >= 1; got {plan.backends!r}")
    return dataclasses.replace(plan, backends=backends)


def run_sweep(runtime: HftRuntime, item: pytest.Item, plan: SweepPlan) -> SweepResult:
    """Measure every N of ``plan`` and fit the USL; see the module docstring."""
    platform = runtime.require_platform()
    runtime.hold_measurement()
    began = time.monotonic()
    deadline = began + plan.budget_s
    driver = driver_for(runtime, item)
    result = SweepResult(
        points=[], budget_s=plan.budget_s, criteria={**plan.criteria.as_dict(), "resolution": plan.resolution}
    )
    state_of(item).sweep = result
    start = plan.start_rate
    try:
        for i, n in enumerate(plan.backends):
            share = (deadline - time.monotonic()) / (len(plan.backends) - i)
            if share < plan.probe_s + PROBE_OVERHEAD_S + RESERVE_S:
                result.points.append(
                    SweepPoint(backends=n, max_rate=None, throughput=None, budget_exhausted=True)
                )
                continue
            runtime.progress(f"sweep: N={n} backends, {share:.0f} s of the budget")
            point = _measure(
                runtime,
                driver,
                plan,
                n,
                namespace=f"{platform.namespace}-sweep-{n}",
                start=start,
                budget_s=share,
            )
            result.points.append(point)
            if point.max_rate is not None:
                start = point.max_rate
    finally:
        result.took_s = round(time.monotonic() - began, 1)
        _conclude(result)
        _write(runtime, result)
    runtime.progress(f"sweep: {result.sentence}")
    return result


def _measure(
    runtime: HftRuntime,
    driver: LoadDriver,
    plan: SweepPlan,
    n: int,
    *,
    namespace: str,
    start: float,
    budget_s: float,
) -> SweepPoint:
    """Deploy N backends, search their ceiling, attribute the bottleneck there, always delete; all
    within ``budget_s``, of which :data:`RESERVE_S` is kept for the attribution and the deletion."""
    s = runtime.settings
    began = time.monotonic()
    until = began + budget_s - RESERVE_S
    cluster = runtime.another_cluster(namespace)
    try:
        objects = render(
            s.profile,
            root=s.manifests_dir,
            images=session_images(runtime),
            replicas={"backend": n},
            cpu_limit_scale=runtime.cpu_limit_scale,
        )
        cluster.apply(with_db_secret(objects, password=new_password(), secret_name=s.db_secret))
        gate_s = max(1.0, min(s.gate_timeout, until - time.monotonic() - plan.probe_s - PROBE_OVERHEAD_S))
        ReadinessGate(cluster, config=GateConfig(timeout_s=gate_s), progress=runtime.progress).wait()
        nginx = cluster.service_address("nginx", 80)
        driver.target = (nginx.host, nginx.port)
        deployed_s = time.monotonic() - began
        ceiling = find_ceiling(
            _prober(runtime, driver, plan, n),
            start=start,
            budget_s=until - time.monotonic(),
            resolution=plan.resolution,
            probe_cost_s=plan.probe_s + PROBE_OVERHEAD_S,
        )
        point = SweepPoint(
            backends=n,
            max_rate=ceiling.best.offered_rate if ceiling.best else None,
            throughput=round(ceiling.best.achieved_rate, 1) if ceiling.best else None,
            probes=ceiling.probes,
            budget_exhausted=ceiling.budget_exhausted,
            deploy_s=round(deployed_s, 2),
        )
        point.bottleneck = _attribute(runtime, cluster, ceiling, driver, namespace=namespace)
        runtime.progress(_point_line(point, ceiling))
        return point
    finally:
        try:
            cluster.delete_all()
        finally:
            cluster.close()


def _prober(
    runtime: HftRuntime, driver: LoadDriver, plan: SweepPlan, n: int
) -> Callable[[float], SweepProbe]:
    """``probe(rate)``: one open-loop run of the test's driver at ``rate``, judged by the sweep's criteria."""
    count = 0

    def probe(rate: float) -> SweepProbe:
        nonlocal count
        count += 1
        time.sleep(SETTLE_S)
        name = f"sweep-n{n}-{count}-{rate:g}"
        run = driver.constant_rate(rate=rate, duration=plan.probe_s, name=name)
        try:
            with run:
                pass
        except LoadError as e:  # the run failed; its summary (a partial, invalid run) says why
            runtime.progress(f"sweep: probe {name} failed: {e}")
        summary = run.summary
        if summary is None:
            raise HftError(f"expected the sweep probe {name} to leave a summary; it left none")
        p99, _, _ = quantile_ms([summary], 0.99)
        return judge(summary, backends=n, client_p99_ms=p99, criteria=plan.criteria)

    return probe


def _attribute(
    runtime: HftRuntime, cluster: Cluster, ceiling: Ceiling, driver: LoadDriver, *, namespace: str
) -> Bottleneck | None:
    """What saturated at the ceiling, from this platform's Prometheus (``None`` when it cannot be said)."""
    at = ceiling.failed or ceiling.best
    if at is None or at.window is None:
        return None
    try:
        from pytest_hftk8s.slo.bottleneck import attribute
    except ImportError:
        runtime.progress("sweep: no bottleneck attribution (pytest_hftk8s.slo.bottleneck is not there)")
        return None
    from pytest_hftk8s.slo.prom import PromClient

    url = runtime.settings.prometheus_url or cluster.service_address("prometheus", 9090).url
    load = _summary(driver, at.load)
    window = Window(at.window.start, at.window.end)
    client = PromClient(url, timeout_s=5.0)
    try:
        client.wait_scraped_past(window.end, timeout_s=SCRAPE_WAIT_S)
        return attribute(client, window, namespace=namespace, load=load)
    except HftError as e:
        runtime.progress(f"sweep: bottleneck attribution failed: {e}")
        return None
    finally:
        client.close()


def _summary(driver: LoadDriver, name: str) -> LoadSummary | None:
    return next((r.summary for r in driver.runs if r.name == name and r.summary is not None), None)


def _point_line(point: SweepPoint, ceiling: Ceiling) -> str:
    found = (
        f"highest sustainable {point.max_rate:g}/s ({point.throughput:g} 2xx/s)"
        if point.max_rate is not None
        else "no sustainable rate"
    )
    above = (
        f", {ceiling.failed.offered_rate:g}/s failed: {'; '.join(ceiling.failed.reasons)}"
        if ceiling.failed
        else ""
    )
    return f"sweep: N={point.backends}: {found}{above} ({len(point.probes)} probes, stopped on {ceiling.stopped})"


def _conclude(result: SweepResult) -> None:
    points = fit_points(result.points)
    why = ""
    try:
        result.fit = usl.fit(points)
    except usl.FitError as e:
        why = str(e)
    top = knee(result.points)
    result.knee = top.backends if top else None
    result.bottleneck = top.bottleneck if top else None
    result.sentence = sentence(result, bottleneck=result.bottleneck, why_no_fit=why)


def _write(runtime: HftRuntime, result: SweepResult) -> None:
    path = runtime.settings.report_dir / SWEEP_JSON
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_dict(result), indent=2))


class SweepRunner:
    """What the ``hft_sweep`` fixture hands out: ``run()`` (the session's ``--hft-sweep-*`` settings,
    or keyword overrides: ``backends``, ``budget_s``, ``probe_s``, ``criteria``, ``start_rate``, ``resolution``)."""

    def __init__(self, runtime: HftRuntime, item: pytest.Item) -> None:
        self._runtime = runtime
        self._item = item

    def run(self, **overrides: Any) -> SweepResult:
        return run_sweep(self._runtime, self._item, plan_from(self._runtime, **overrides))
