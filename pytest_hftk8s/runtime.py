"""The stateful side of the plugin: one :class:`HftRuntime`, registered only with ``--hft-cluster``.

It owns the platform lease, per-test state (load runs, SLO results, chaos entries under a
``StashKey``), evaluates declared SLOs after each test body, records results on the test report
(``report.hft`` survives xdist serialisation), and on the controller writes the report at the end.
The logic it calls lives in :mod:`.session`, :mod:`.slo`, :mod:`.load` and :mod:`.report`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_hftk8s.errors import ConfigError, HftError
from pytest_hftk8s.options import HftSettings

SLO_MARK = "hft_slo"


@dataclass
class TestState:
    """What one test did with the platform, in plain data plus live load runs."""

    loads: list[Any] = field(default_factory=list)  # LoadRun objects
    slos: list[dict[str, Any]] = field(default_factory=list)
    chaos: list[Any] = field(default_factory=list)
    call_start: float = 0.0
    call_end: float = 0.0
    uses_platform: bool = False
    overhead_s: float = 0.0  # time the plugin itself spent on this test (SLO evaluation, bundle)

    def window(self) -> tuple[float, float]:
        done = [r.summary for r in self.loads if r.summary is not None]
        if done:
            return min(s.window["start"] for s in done), max(s.window["end"] for s in done)
        return self.call_start, self.call_end or time.time()

    def offered_rate(self) -> float | None:
        start, end = self.window()
        offered = sum(
            r.summary.scheduled for r in self.loads if r.summary is not None and r.summary.mode == "open"
        )
        if not offered or end <= start:
            return None
        return offered / (end - start)


test_state_key = pytest.StashKey[TestState]()


def state_of(item: pytest.Item) -> TestState:
    state = item.stash.get(test_state_key, None)
    if state is None:
        state = item.stash[test_state_key] = TestState()
    return state


class HftRuntime:
    """Registered as ``hftk8s-runtime`` in ``pytest_configure`` when a cluster is selected."""

    def __init__(self, config: pytest.Config, settings: HftSettings, *, started: float) -> None:
        self.config = config
        self.settings = settings
        self.started = started
        self.lease: Any = None
        self.platform: Any = None
        self.records: dict[str, dict[str, Any]] = {}
        self.platform_info: dict[str, Any] | None = None
        self.file_slos: list[Any] = []
        if settings.slo_file is not None:
            from pytest_hftk8s.slo.profile import load_file

            try:
                self.file_slos = load_file(settings.slo_file)
            except ConfigError as e:
                raise pytest.UsageError(f"--hft-slo-file: {e}") from e
        self.is_worker = hasattr(config, "workerinput")
        self._progress_lock = threading.Lock()
        self.baseline: Any = None  # slo.relative.Baseline, recorded once per session

    # -- progress -------------------------------------------------------------------------------

    def progress(self, message: str) -> None:
        """One line to the terminal; safe from the cluster's supervisor and load threads."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        with self._progress_lock, ctx:
            reporter.write_line(f"[hftk8s] {message}")

    # -- the platform ---------------------------------------------------------------------------

    def acquire_platform(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        from pytest_hftk8s.session import PlatformLease

        base = tmp_path_factory.getbasetemp()
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        self.lease = PlatformLease(
            self.settings,
            shared_dir=shared,
            session_start=self.started,
            make_cluster=self._make_cluster,
            render=_render,
            progress=self.progress,
        )
        try:
            self.platform = self.lease.acquire()
            self.platform_info = self.platform.info()
            self._wait_scraped(self.platform)
            if self.platform.owner and self.platform.cluster is not None:
                self.config.hook.pytest_hftk8s_platform_ready(
                    cluster=self.platform.cluster,
                    ready_seconds=self.platform.ready_seconds,
                    gate_durations=self.platform.gate_durations,
                )
            yield self.platform
        finally:
            self.lease.release()
            self.platform = None

    def _wait_scraped(self, platform: Any, *, timeout_s: float = 10.0) -> None:
        """Bounded wait until Prometheus holds a few samples of the backend's order counter.

        Right after the gates the backend may not have been scraped yet; a counter whose first sample
        lands inside a test's window is undercounted by ``rate()`` (extrapolation stops half a scrape
        interval before the first sample), which showed as a 0.87 throughput ratio at 300/s. On
        timeout it only says so: the SLOs then report "no data" or the low value themselves.
        """
        from pytest_hftk8s.slo.prom import PromClient, PromError

        client = PromClient(platform.prometheus_url, timeout_s=2.0)
        deadline = time.monotonic() + timeout_s
        query = 'min(count_over_time(hft_orders_total{outcome="accepted"}[1m]))'
        try:
            while True:
                try:
                    samples = client.scalar(query)
                except PromError:
                    samples = None
                if samples is not None and samples >= 3:
                    return
                if time.monotonic() >= deadline:
                    self.progress(
                        f"Prometheus has {samples or 0} sample(s) of {query}; SLOs of the first test may undercount"
                    )
                    return
                time.sleep(0.25)
        finally:
            client.close()

    def _make_cluster(self) -> Any:
        import tempfile

        state_dir = pathlib.Path(tempfile.gettempdir()) / "hftk8s-state"
        custom = self.config.hook.pytest_hftk8s_make_cluster(
            settings=self.settings, state_dir=state_dir, progress=self.progress
        )
        if custom is not None:
            return custom
        from pytest_hftk8s.cluster.select import make_cluster

        assert self.settings.cluster is not None
        return make_cluster(
            self.settings.cluster,
            namespace=self.settings.namespace,
            state_dir=state_dir,
            backoff_scale=self.settings.backoff_scale,
            progress=self.progress,
        )

    # -- SLOs -----------------------------------------------------------------------------------

    def evaluate(
        self, item: pytest.Item, slos: list[Any], *, window: tuple[float, float] | None = None
    ) -> list[Any]:
        """Evaluate ``slos`` over the test's window; record results on the item; return them."""
        from pytest_hftk8s.slo.evaluate import evaluate
        from pytest_hftk8s.slo.model import Window
        from pytest_hftk8s.slo.prom import PromClient

        if self.platform is None:
            raise HftError("SLOs need the platform: request the hft_platform fixture (or hft_load)")
        state = state_of(item)
        start, end = window or state.window()
        variables: dict[str, Any] = {"namespace": self.platform.namespace}
        offered = state.offered_rate()
        if offered is not None:
            variables["offered_rate"] = f"{offered:.6g}"
        began = time.perf_counter()
        client = PromClient(self.platform.prometheus_url)
        try:
            plain, extras = self.resolve_relative(slos, client, variables)
            results = evaluate(plain, Window(start, end), client, variables=variables)
            for r, extra in zip(results, extras, strict=True):
                r.extra.update(extra)
        finally:
            client.close()
            state.overhead_s += time.perf_counter() - began
        for r in results:
            state.slos.append(r.as_dict())
            item.user_properties.append((f"hft_slo.{r.name}", r.observed))
            item.user_properties.append((f"hft_slo.{r.name}.passed", r.passed))
        self.config.hook.pytest_hftk8s_slo_evaluated(item=item, results=[r.as_dict() for r in results])
        return results

    def resolve_relative(
        self, slos: list[Any], client: Any, variables: dict[str, Any]
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        """Turn baseline-relative SLOs into absolute ones against this session's baseline window."""
        from pytest_hftk8s.slo.relative import Relative, resolve

        plain: list[Any] = []
        extras: list[dict[str, Any]] = []
        for slo in slos:
            if not isinstance(slo, Relative):
                plain.append(slo)
                extras.append({})
                continue
            if self.baseline is None:
                raise HftError(
                    f"SLO {slo.name!r} is relative to the session's baseline, but no baseline was recorded: "
                    "request the hft_baseline fixture (or run a passing load run named 'baseline' first)"
                )
            value = self.baseline.value_of(slo.slo, client, variables=variables)
            plain.append(resolve(slo, value))
            extras.append(
                {
                    "baseline_value": value,
                    "ratio": slo.ratio,
                    "baseline_window": self.baseline.window.as_dict(),
                }
            )
        return plain, extras

    def report_path(self) -> str:
        return str(self.settings.report_dir / "index.html")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        state = state_of(item)
        state.call_start = time.time()
        try:
            result = yield
        finally:
            state.call_end = time.time()
        declared = self._declared_slos(item, state)
        if declared:
            from pytest_hftk8s.slo.evaluate import check
            from pytest_hftk8s.slo.model import SloResult

            results: list[SloResult] = self.evaluate(item, declared)
            check(results, report_path=self.report_path())
        return result

    def _declared_slos(self, item: pytest.Item, state: TestState) -> list[Any]:
        from pytest_hftk8s.slo.profile import from_marker

        slos = []
        for mark in item.iter_markers(SLO_MARK):
            slos.extend(from_marker(mark.args, mark.kwargs))
        if self.file_slos and (slos or state.loads):
            slos.extend(self.file_slos)
        return slos

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # A test that declares SLOs needs the platform even if it did not ask for it by name.
        for item in items:
            names = getattr(item, "fixturenames", None)
            if names is not None and item.get_closest_marker(SLO_MARK) and "hft_platform" not in names:
                names.append("hft_platform")
            # A test marked hft_chaos gets the experiment around its body through the fixture.
            if names is not None and item.get_closest_marker("hft_chaos") and "hft_chaos" not in names:
                names.append("hft_chaos")

    # -- recording ------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        report = yield
        state = item.stash.get(test_state_key, None)
        used = self.platform is not None and "hft_platform" in getattr(item, "fixturenames", ())
        if state is None and not used:
            return report
        state = state or TestState()
        if report.when == "call" and report.passed and self.baseline is None:
            from pytest_hftk8s.resilience.baseline import from_runs

            self.baseline = from_runs(state.loads, source=item.nodeid)
        if report.when == "call" or report.failed:
            began = time.perf_counter()
            record = self._record(item, state, report)
            if report.failed and used:
                record["bundle"] = self._bundle(item, state, report, record)
            state.overhead_s += time.perf_counter() - began
            record["plugin_overhead_s"] = round(state.overhead_s, 4)
            report.hft = record
        return report

    def _record(self, item: pytest.Item, state: TestState, report: pytest.TestReport) -> dict[str, Any]:
        start, end = state.window()
        return {
            "nodeid": item.nodeid,
            "phase": report.when,
            "window": {"start": start, "end": end, "seconds": max(0.0, end - start)},
            "slos": list(state.slos),
            "load": [r.as_dict() for r in state.loads if r.summary is not None],
            "chaos": [c if isinstance(c, dict | str) else repr(c) for c in state.chaos],
            "platform": self.platform_info,
        }

    def _bundle(
        self, item: pytest.Item, state: TestState, report: pytest.TestReport, record: dict[str, Any]
    ) -> str:
        from pytest_hftk8s.report.bundle import collect

        cluster = self.platform.cluster if self.platform is not None else None
        try:
            path, text = collect(
                cluster,
                nodeid=item.nodeid,
                directory=self.settings.report_dir,
                slos=record["slos"],
                diagnostics=self._diagnostics(state),
                error=str(report.longrepr)[-20000:] if report.longrepr else "",
            )
        except OSError as e:
            report.sections.append(("hftk8s failure bundle", f"could not write the bundle: {e}"))
            return ""
        report.sections.append(("hftk8s failure bundle", text))
        return str(path)

    def _diagnostics(self, state: TestState) -> list[dict[str, Any]]:
        """The PromQL diagnostics of the failed test's window (empty without a platform)."""
        if self.platform is None:
            return []
        from pytest_hftk8s.slo.diagnostics import snapshot
        from pytest_hftk8s.slo.model import Window
        from pytest_hftk8s.slo.prom import PromClient

        start, end = state.window()
        client = PromClient(self.platform.prometheus_url, timeout_s=2.0)
        try:
            lookback = 1.5 * client.scrape_interval()
            return snapshot(client, Window(start, end, lookback), namespace=self.platform.namespace)
        finally:
            client.close()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        hft = getattr(report, "hft", None)
        if self.is_worker or (hft is None and report.nodeid not in self.records):
            return
        record = self.records.setdefault(
            report.nodeid, {"nodeid": report.nodeid, "outcome": "passed", "duration": 0.0}
        )
        record["duration"] += report.duration
        if hft:
            if hft.get("platform") and self.platform_info is None:
                self.platform_info = hft["platform"]
            for key in ("window", "slos", "load", "chaos", "bundle", "plugin_overhead_s"):
                if hft.get(key):
                    record[key] = hft[key]
        if report.failed:
            record["outcome"] = "failed" if report.when == "call" else "error"
            record["longrepr"] = str(report.longrepr)[-4000:]
        elif report.skipped and record["outcome"] == "passed":
            record["outcome"] = "skipped"

    # -- the end --------------------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker or (not self.records and self.platform_info is None):
            return
        from pytest_hftk8s.report import html, summary

        data = summary.build(
            self.records.values(),
            platform=self.platform_info,
            cluster=self.settings.cluster,
            profile=self.settings.profile,
            started=self.started,
        )
        if self.baseline is not None:
            data["baseline"] = self.baseline.as_dict()
        from pytest_hftk8s.resilience.digest import digest

        experiments = digest(self.records.values())
        if experiments:
            data["resilience"] = experiments
        summary_path = summary.write(data, self.settings.report_dir)
        html_path = html.write(data, self.settings.report_dir)
        self.written = (summary_path, html_path)
        self.config.hook.pytest_hftk8s_report_written(summary_path=summary_path, html_path=html_path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        written = getattr(self, "written", None)
        if written is None:
            return
        terminalreporter.write_sep("-", "hftk8s report")
        ready = (self.platform_info or {}).get("ready_seconds")
        if ready is not None:
            terminalreporter.write_line(f"platform ready after {ready:.1f}s (deploy + all gates)")
        terminalreporter.write_line(f"summary: {written[0]}")
        terminalreporter.write_line(f"report:  {written[1]}")


def _render(profile: str) -> list[dict[str, Any]]:
    from pytest_hftk8s.manifests import render

    return render(profile)


def load_driver(runtime: HftRuntime, item: pytest.Item) -> Any:
    from pytest_hftk8s.load.driver import LoadDriver

    platform = runtime.platform
    driver = LoadDriver(
        platform.nginx,
        results_dir=runtime.settings.report_dir / "load",
        progress=runtime.progress,
        max_duration=runtime.settings.load_timeout,
    )
    driver.runs = state_of(item).loads  # the test's state sees every run the driver makes
    return driver


class SloChecker:
    """What the ``hft_slo`` fixture hands out: evaluate SLOs over this test's window, and assert."""

    def __init__(self, runtime: HftRuntime, item: pytest.Item) -> None:
        from pytest_hftk8s.slo import builtin

        self._runtime = runtime
        self._item = item
        self.builtin = builtin

    def evaluate(self, *slos: Any, window: tuple[float, float] | None = None) -> list[Any]:
        return self._runtime.evaluate(self._item, list(slos), window=window)

    def check(self, *slos: Any, window: tuple[float, float] | None = None) -> list[Any]:
        """Evaluate and raise :class:`~pytest_hftk8s.errors.SloViolation` on any blocking miss."""
        from pytest_hftk8s.slo.evaluate import check

        __tracebackhide__ = True
        results = self.evaluate(*slos, window=window)
        check(results, report_path=self._runtime.report_path())
        return results
