"""pytest entry point (``pytest11: hftk8s``): wiring only.

Options and ini keys (:mod:`.options`), hookspecs (:mod:`.hookspecs`), markers, the report header
and short fixtures that call plain functions of :mod:`.orchestration`. It must stay inert: no
deploy, no cluster connection, no subprocess and no heavy imports at import or configure time. The
stateful :class:`~pytest_hftk8s.orchestration.runtime.HftRuntime` is registered in
``pytest_configure`` only when a cluster was selected; all work happens when a test requests a fixture.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_hftk8s import options
from pytest_hftk8s.settings import HftSettings

if TYPE_CHECKING:
    from pytest_hftk8s.cluster.base import Cluster
    from pytest_hftk8s.load.driver import LoadDriver
    from pytest_hftk8s.orchestration.chaos import HftChaos
    from pytest_hftk8s.orchestration.lease import Platform
    from pytest_hftk8s.orchestration.runtime import HftRuntime
    from pytest_hftk8s.orchestration.scale import ScaleRunner
    from pytest_hftk8s.orchestration.slos import SloChecker
    from pytest_hftk8s.orchestration.sweep import SweepRunner
    from pytest_hftk8s.results import Baseline, Capacity
    from pytest_hftk8s.slo.prom import PromClient

settings_key = pytest.StashKey[HftSettings]()
runtime_key = pytest.StashKey["HftRuntime"]()
started_key = pytest.StashKey[float]()

MARKERS = (
    "hft_slo(name_or_slo..., **kwargs): SLOs evaluated from Prometheus over this test's window "
    "(a built-in name with parameters, or name=, expr=, comparator=, threshold=)",
    "hft_chaos(kind, **kwargs): this test injects chaos (recorded in the report)",
    "hft_load(rate=, duration=, users=, connections=, mix=, ...): defaults for this test's hft_load runs",
    "resilience: a resilience test (chaos under load); select with -m resilience",
    "sweep: the scaling sweep (deploys N backends in turn, minutes long); deselected unless -m names "
    "sweep or --hft-sweep is given",
)
SWEEP_MARK = "sweep"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_hftk8s import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[started_key] = time.time()
    settings = options.settings_from(config)
    config.stash[settings_key] = settings
    if settings.active:
        from pytest_hftk8s.orchestration.runtime import HftRuntime

        runtime = HftRuntime(config, settings, started=config.stash[started_key])
        config.stash[runtime_key] = runtime
        config.pluginmanager.register(runtime, "hftk8s-runtime")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(settings_key, None)
    if settings is None or not settings.active:
        return None
    from pytest_hftk8s.cluster.select import context_of

    cluster = settings.cluster or ""
    context = "embedded one-node cluster" if cluster == "local" else context_of(cluster)
    return [
        f"hftk8s: cluster={cluster} context={context} profile={settings.profile} "
        f"namespace={settings.namespace} report={settings.report_dir}"
    ]


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Declared SLOs cannot be checked without a cluster: say so instead of passing silently.
    if item.get_closest_marker("hft_slo") and runtime_key not in item.config.stash:
        pytest.skip("declares SLOs (hft_slo); needs --hft-cluster=local (or a kube context), or HFT_CLUSTER")


def _is_our_sweep(item: pytest.Item) -> bool:
    """Marked ``sweep`` and asking for ``hft_sweep``: a user's own ``sweep`` marker is not ours to touch."""
    return item.get_closest_marker(SWEEP_MARK) is not None and "hft_sweep" in getattr(
        item, "fixturenames", ()
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The sweep takes minutes: a plain run of the suites must not start it by accident.
    settings = config.stash.get(settings_key, None)
    markexpr = config.getoption("markexpr", "") or ""
    if (settings is not None and settings.sweep) or SWEEP_MARK in re.findall(r"\w+", markexpr):
        return
    sweeps = [item for item in items if _is_our_sweep(item)]
    if sweeps:
        config.hook.pytest_deselected(items=sweeps)
        items[:] = [item for item in items if not _is_our_sweep(item)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # --hft-repeat=N: every load phase (a test using hft_load) runs N times on the same deployment.
    settings = metafunc.config.stash.get(settings_key, None)
    if settings is None or not settings.active or settings.repeat <= 1:
        return
    if "hft_load" not in metafunc.fixturenames:
        return
    from pytest_hftk8s.orchestration.recorder import REPEAT_FIXTURE

    if REPEAT_FIXTURE not in metafunc.fixturenames:
        metafunc.fixturenames.append(REPEAT_FIXTURE)
    metafunc.parametrize(
        REPEAT_FIXTURE, range(1, settings.repeat + 1), indirect=True, ids=lambda n: f"rep{n}"
    )


@pytest.fixture
def hft_repeat_index(request: pytest.FixtureRequest) -> int:
    """Which repeat of ``--hft-repeat=N`` this is (1..N); 1 when the test is not repeated."""
    return int(getattr(request, "param", 1))


def _runtime(request: pytest.FixtureRequest) -> HftRuntime:
    runtime = request.config.stash.get(runtime_key, None)
    if runtime is None:
        pytest.skip("needs a cluster: run with --hft-cluster=local (or a kube context), or set HFT_CLUSTER")
    return runtime


@pytest.fixture(scope="session")
def hft_settings(request: pytest.FixtureRequest) -> HftSettings:
    """The session's resolved settings (every ``--hft-*`` option, its ini key or ``HFT_*`` variable)."""
    return request.config.stash[settings_key]


@pytest.fixture(scope="session")
def hft_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """The platform, deployed from the manifests once per session and gated until it serves.

    Shared by xdist workers through a file lock; torn down when the last worker is out (unless
    ``--hft-keep``), also on Ctrl-C. Skips without ``--hft-cluster``.
    """
    yield from _runtime(request).acquire_platform(tmp_path_factory)


@pytest.fixture
def hft_cluster(hft_platform: Platform) -> Cluster:
    """The :class:`~pytest_hftk8s.cluster.base.Cluster` the platform runs on (in any xdist worker)."""
    return hft_platform.cluster


@pytest.fixture
def hft_load(request: pytest.FixtureRequest, hft_platform: Platform) -> LoadDriver:
    """Load runs against nginx: ``with hft_load.constant_rate(rate=..., duration=...) as run``.

    The default order flow trades (limits, cancels, marketable orders; ``mix=`` changes it); an
    ``@pytest.mark.hft_load(rate=..., duration=...)`` marker gives the test's defaults.
    """
    from pytest_hftk8s.orchestration.load import driver_for

    return driver_for(_runtime(request), request.node)


@pytest.fixture
def hft_prom(hft_platform: Platform) -> Iterator[PromClient]:
    """A Prometheus client bound to the platform's Prometheus (or ``--hft-prometheus-url``)."""
    from pytest_hftk8s.slo.prom import PromClient

    client = PromClient(hft_platform.prometheus_url)
    yield client
    client.close()


@pytest.fixture
def hft_slo(request: pytest.FixtureRequest, hft_platform: Platform) -> SloChecker:
    """Evaluate and assert SLOs over this test's window: ``hft_slo.check(hft_slo.builtin.throughput())``."""
    from pytest_hftk8s.orchestration.slos import SloChecker

    return SloChecker(_runtime(request), request.node)


@pytest.fixture
def hft_chaos(request: pytest.FixtureRequest) -> Iterator[HftChaos]:
    """Chaos as context managers: ``with hft_chaos.stress_cpu(target="backend", load=80, duration="10s")``.

    Also ``stress_memory``, ``pod_kill``, ``container_kill``, ``pod_failure``, ``network_delay``,
    ``network_loss`` (each accepts ``probes=[slo...]``, ``probe_interval``, ``stop_on_failure``).
    Refuses kube contexts not given to ``--hft-allow-context`` before connecting; ``--hft-chaos-dry-run``
    prints the objects instead. Every experiment is removed, judged, and recorded in the report.
    """
    from pytest_hftk8s.orchestration.chaos import serve

    yield from serve(_runtime(request), request)


@pytest.fixture(scope="session")
def hft_capacity(request: pytest.FixtureRequest, hft_platform: Platform) -> Capacity:
    """What one backend of the platform takes (a closed-loop run, measured once per session) and the
    rate the suites offer: ``--hft-baseline-rate``, or by default ``--hft-baseline-utilization`` of it."""
    from pytest_hftk8s.orchestration.load import session_capacity

    return session_capacity(_runtime(request), request.node)


@pytest.fixture(scope="session")
def hft_baseline(request: pytest.FixtureRequest, hft_platform: Platform) -> Baseline:
    """The session's baseline window (recorded from a passing load run named ``baseline``, else measured
    now at the offered rate for ``--hft-baseline-seconds``); baseline-relative SLOs compare to it."""
    from pytest_hftk8s.orchestration.load import session_baseline

    return session_baseline(_runtime(request), request.node)


@pytest.fixture
def hft_scale(request: pytest.FixtureRequest, hft_platform: Platform) -> ScaleRunner:
    """The platform with other replicas beside the session's: ``hft_scale.run(replicas={"backend": 4},
    duration=8)`` (or another overlay, ``profile="scale4"``) deploys it in its own namespace, drives
    closed-loop load through it and the session's platform, and deletes it."""
    from pytest_hftk8s.orchestration.scale import ScaleRunner

    return ScaleRunner(_runtime(request), request.node)


@pytest.fixture
def hft_sweep(request: pytest.FixtureRequest, hft_platform: Platform) -> SweepRunner:
    """The scaling sweep: ``hft_sweep.run()`` deploys each ``--hft-sweep-backends`` count in turn, finds
    its highest sustainable open-loop rate, fits the Universal Scalability Law and names the bottleneck
    at the knee, within ``--hft-sweep-budget`` (keywords override the settings)."""
    from pytest_hftk8s.orchestration.sweep import SweepRunner

    return SweepRunner(_runtime(request), request.node)
