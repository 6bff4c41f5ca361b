"""The stateful side of the plugin: one :class:`HftRuntime`, registered only with ``--hft-cluster``.

It owns the platform lease and the measurement lock, evaluates declared SLOs after each test body,
turns each test's state into a typed :class:`~pytest_hftk8s.results.TestRecord` on its report (as a
plain dict, which survives xdist), and on the controller writes the report at the end. The logic it
calls lives in its siblings (:mod:`.lease`, :mod:`.recorder`, :mod:`.slos`, :mod:`.bundle`) and in
``slo`` and ``report``; it never names a cluster backend.
"""

from __future__ import annotations

import contextlib
import pathlib
import secrets
import tempfile
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hftk8s.cluster.base import Cluster, SecretReader
from pytest_hftk8s.credentials import DB_SECRET_KEY
from pytest_hftk8s.errors import ConfigError, HftError
from pytest_hftk8s.orchestration.lease import MeasurementLock, Platform, PlatformLease
from pytest_hftk8s.orchestration.recorder import TestState, merge, record, state_key, state_of
from pytest_hftk8s.results import (
    Baseline,
    Capacity,
    Comparison,
    PlatformInfo,
    ResilienceScore,
    RunIdentity,
    SessionReport,
    TestRecord,
    Window,
    from_dict,
    to_dict,
)
from pytest_hftk8s.settings import HftSettings
from pytest_hftk8s.slo.database import DbTarget

if TYPE_CHECKING:
    from pytest_hftk8s.slo.dashboard import PanelLinks

SLO_MARK = "hft_slo"


class HftRuntime:
    """Registered as ``hftk8s-runtime`` in ``pytest_configure`` when a cluster is selected."""

    def __init__(self, config: pytest.Config, settings: HftSettings, *, started: float) -> None:
        self.config = config
        self.settings = settings
        self.started = started
        self.lease: PlatformLease | None = None
        self.platform: Platform | None = None
        self.measurement: MeasurementLock | None = None
        self._running_item: pytest.Item | None = None
        self.records: dict[str, TestRecord] = {}
        self.platform_info: PlatformInfo | None = None
        self.file_slos: list[Any] = []
        if settings.slo_file is not None:
            from pytest_hftk8s.slo.profile import load_file

            try:
                self.file_slos = load_file(settings.slo_file)
            except ConfigError as e:
                raise pytest.UsageError(f"--hft-slo-file: {e}") from e
        self.is_worker = hasattr(config, "workerinput")
        self._progress_lock = threading.Lock()
        self.baseline: Baseline | None = None
        self.capacity: Capacity | None = None
        self._db: DbTarget | None = None
        self.written: tuple[pathlib.Path, pathlib.Path] | None = None
        self.score: ResilienceScore | None = None
        self._running: str | None = None  # the test whose protocol is under way
        #: Labels what this session creates that may outlive it (volume claims), for the sweep.
        self.run_id = secrets.token_hex(4)
        #: --hft-compare: the baseline run's report, read now so a bad path fails before any deploy.
        self.compare_baseline: SessionReport | None = None
        self.comparison: Comparison | None = None
        self.junit_path: pathlib.Path | None = None
        self._report: SessionReport | None = None  # what sessionfinish wrote, for --junitxml at unconfigure
        #: --hft-cpu-limit-scale: every overlay this session renders scales these CPU limits.
        self.cpu_limit_scale: dict[str, float] = {}
        if settings.cpu_limit_scale:
            from pytest_hftk8s.manifests import parse_cpu_limit_scale

            try:
                self.cpu_limit_scale = parse_cpu_limit_scale(settings.cpu_limit_scale)
            except ConfigError as e:
                raise pytest.UsageError(f"--hft-cpu-limit-scale: {e}") from e
        if settings.compare is not None:
            from pytest_hftk8s.report.summary import read

            try:
                self.compare_baseline = read(settings.compare)
            except ConfigError as e:
                raise pytest.UsageError(str(e)) from e

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

    def acquire_platform(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
        from pytest_hftk8s.manifests import render

        base = tmp_path_factory.getbasetemp()
        shared = base.parent if self.is_worker else base  # xdist workers share the session's basetemp parent
        settings = self.settings
        self.lease = PlatformLease(
            settings,
            shared_dir=shared,
            session_start=self.started,
            make_cluster=self._make_cluster,
            attach_cluster=self._attach_cluster,
            render=lambda profile, images: render(
                profile,
                root=settings.manifests_dir,
                images=images,
                components=self.components(),
                cpu_limit_scale=self.cpu_limit_scale,
            ),
            images=self._platform_images,
            chaos_allowed=self._chaos_allowed(),
            progress=self.progress,
        )
        self.measurement = MeasurementLock(shared, timeout_s=settings.measure_timeout, progress=self.progress)
        try:
            self.platform = self.lease.acquire()
            self.platform_info = self.platform.info()
            self._wait_scraped(self.platform)
            if self.platform.owner:
                self.config.hook.pytest_hftk8s_platform_ready(
                    cluster=self.platform.cluster,
                    ready_seconds=self.platform.ready_seconds,
                    gate_durations=self.platform.gate_durations,
                )
            yield self.platform
        finally:
            # The last test's teardown ends here: its measurement is over. Holding the lock while the
            # owner waits for the other workers to finish would stall them until the lock times out.
            if self.measurement is not None:
                self.measurement.release()
            self.lease.release()
            self.platform = None

    def require_platform(self) -> Platform:
        if self.platform is None:
            raise HftError("this needs the platform: request the hft_platform fixture (or hft_load)")
        return self.platform

    def _wait_scraped(self, platform: Platform, *, timeout_s: float = 10.0) -> None:
        """Bounded wait until Prometheus holds a few samples of the backend's order counter.

        Right after the gates the backend may not have been scraped yet; a counter whose first sample
        lands inside a test's window is undercounted by ``rate()`` (extrapolation stops half a scrape
        interval before the first sample), which showed as a 0.87 throughput ratio at 300/s. On
        timeout it only says so: the SLOs then report "no data" or the low value themselves.
        """
        from pytest_hftk8s.slo import queries
        from pytest_hftk8s.slo.prom import PromClient, PromError

        client = PromClient(platform.prometheus_url, timeout_s=2.0)
        deadline = time.monotonic() + timeout_s
        query = queries.ORDER_COUNTER_SAMPLES.expr
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

    def _platform_images(self) -> Mapping[str, str]:
        """The image references the manifests run (built and loaded first with --hft-images=build|load)."""
        from pytest_hftk8s.cluster.select import platform_images

        assert self.settings.cluster is not None
        return platform_images(
            self.settings.cluster,
            mode=self.settings.images,
            registry=self.settings.registry,
            progress=self.progress,
        )

    def _chaos_allowed(self) -> bool:
        """Whether this session may inject chaos at all (its prerequisites are then preflighted)."""
        from pytest_hftk8s.chaos.safety import ALWAYS_ALLOWED
        from pytest_hftk8s.cluster.select import allowed_contexts, context_of

        assert self.settings.cluster is not None
        context = context_of(self.settings.cluster)
        return context in ALWAYS_ALLOWED or context in allowed_contexts(self.settings.allow_context)

    def run_preflight_only(self) -> None:
        """``--hft-preflight``: print the table and end the session (exit 0 when nothing blocks)."""
        from pytest_hftk8s.manifests import render
        from pytest_hftk8s.report.preflight import failed, format_table

        lease = PlatformLease(
            self.settings,
            shared_dir=self._state_dir(),
            session_start=self.started,
            make_cluster=self._make_cluster,
            attach_cluster=self._attach_cluster,
            render=lambda profile, images: render(
                profile,
                root=self.settings.manifests_dir,
                images=images,
                components=self.components(),
                cpu_limit_scale=self.cpu_limit_scale,
            ),
            images=self._platform_images,
            chaos_allowed=self._chaos_allowed(),
            progress=self.progress,
        )
        try:
            rows = lease.preflight_only()
        except HftError as e:
            pytest.exit(f"hftk8s preflight could not run: {e}", returncode=1)
        self.progress(format_table(rows, title=f"preflight of {self.settings.cluster}"))
        bad = failed(rows)
        if bad:
            pytest.exit(f"hftk8s preflight: {len(bad)} prerequisite(s) missing, see the table", returncode=1)
        pytest.exit("hftk8s preflight: every prerequisite is in place", returncode=0)

    def _state_dir(self) -> pathlib.Path:
        return pathlib.Path(tempfile.gettempdir()) / "hftk8s-state"

    def _make_cluster(self, *, namespace: str | None = None) -> Cluster:
        from pytest_hftk8s.cluster.select import make_cluster

        if namespace is None:
            custom = self.config.hook.pytest_hftk8s_make_cluster(
                settings=self.settings, state_dir=self._state_dir(), progress=self.progress
            )
            if custom is not None:
                return custom
        assert self.settings.cluster is not None
        return make_cluster(
            self.settings.cluster,
            namespace=namespace or self.settings.namespace,
            state_dir=self._state_dir(),
            backoff_scale=self.settings.backoff_scale,
            access=self.settings.access,
            run_id=self.run_id,
            progress=self.progress,
            faults=self.settings.emulate_fault,
        )

    def _attach_cluster(self, shared: Mapping[str, str]) -> Cluster:
        from pytest_hftk8s.cluster.select import attach_cluster

        custom = self.config.hook.pytest_hftk8s_make_cluster(
            settings=self.settings, state_dir=self._state_dir(), progress=self.progress
        )
        if custom is not None:
            return custom
        assert self.settings.cluster is not None
        return attach_cluster(
            self.settings.cluster,
            namespace=self.settings.namespace,
            shared=shared,
            access=self.settings.access,
        )

    def another_cluster(self, namespace: str) -> Cluster:
        """A fresh cluster handle of the session's kind in another namespace (e.g. a scaled profile)."""
        return self._make_cluster(namespace=namespace)

    def db_target(self) -> DbTarget | None:
        """Where this process reaches the platform's PostgreSQL, with the rendered Secret's password."""
        if self._db is None and self.platform is not None:
            from pytest_hftk8s.manifests import render
            from pytest_hftk8s.slo.database import db_password

            try:
                address = self.platform.cluster.service_address("postgres", 5432)
                cluster = self.platform.cluster
                password: str | None
                if self.settings.db_secret is not None and isinstance(cluster, SecretReader):
                    password = cluster.secret_value(self.settings.db_secret, DB_SECRET_KEY)
                else:
                    password = self.lease.db_password() if self.lease is not None else None
                if password is None:  # the overlay rendered its own Secret
                    password = db_password(render(self.settings.profile, root=self.settings.manifests_dir))
            except HftError:
                return None
            self._db = DbTarget(host=address.host, port=address.port, password=password)
        return self._db

    def publish(self, key: str, value: Any) -> None:
        if self.lease is not None:
            self.lease.publish(key, value)

    def published(self, key: str) -> Any:
        return self.lease.published(key) if self.lease is not None else None

    # -- measurement lock -------------------------------------------------------------------------

    def hold_measurement(self) -> None:
        """Take the platform-wide measurement lock for the running test (load or chaos is about to
        start, maybe in a session fixture it requested); it is held until the test's teardown is over."""
        if self.measurement is not None:
            self.measurement.hold(self._running or "session")
        item = self._running_item
        if item is not None:
            # A test without load runs is measured over its call; the call may have waited here for
            # another worker's window, which is not part of this test's.
            state = state_of(item)
            if state.call_start and not state.call_end and not state.measured_from:
                state.measured_from = time.time()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        self._running, self._running_item = item.nodeid, item
        try:
            return (yield)
        finally:
            self._running, self._running_item = None, None
            if self.measurement is not None:
                self.measurement.release()

    # -- SLOs -----------------------------------------------------------------------------------

    def report_path(self) -> str:
        return str(self.settings.report_dir / "index.html")

    def components(self) -> tuple[str, ...]:
        """Optional manifest components the session adds to its overlay (``--hft-grafana``)."""
        return ("grafana",) if self.settings.grafana else ()

    def panel_links(self) -> PanelLinks:
        """Where a failed SLO's message points: its Grafana panel for the test's window."""
        from pytest_hftk8s.slo.dashboard import PanelLinks

        return PanelLinks(
            namespace=self.settings.namespace,
            grafana_url=self.settings.grafana_url,
            dashboard_json=str(self.settings.report_dir / "dashboards" / "platform.json"),
        )

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
            from pytest_hftk8s.orchestration.slos import evaluate_for
            from pytest_hftk8s.slo.evaluate import check

            check(
                evaluate_for(self, item, declared), report_path=self.report_path(), links=self.panel_links()
            )
        return result

    def _declared_slos(self, item: pytest.Item, state: TestState) -> list[Any]:
        from pytest_hftk8s.slo.profile import from_marker

        slos: list[Any] = []
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
        state = item.stash.get(state_key, None)
        used = self.platform is not None and "hft_platform" in getattr(item, "fixturenames", ())
        if state is None and not used:
            return report
        state = state or TestState()
        if report.when == "call" and report.passed and self.baseline is None:
            from pytest_hftk8s.orchestration.load import record_baseline
            from pytest_hftk8s.slo.relative import baseline_from

            baseline = baseline_from(state.summaries(), source=item.nodeid)
            if baseline is not None:
                record_baseline(self, baseline)
        if report.when == "call" or report.failed:
            began = time.perf_counter()
            evidence: dict[str, Any] = {}
            if report.when == "call" and self.platform is not None:
                if state.summaries():
                    state.rates = self._rates(state)
                if state.summaries() or state.chaos:
                    evidence = self._evidence(state)
            rec = record(item, state, report)
            for name, value in evidence.items():
                setattr(rec, name, value)
            if report.failed and used:
                rec.bundle = self._bundle(item, state, report)
            state.overhead_s += time.perf_counter() - began
            rec.plugin_overhead_s = round(state.overhead_s, 4)
            report.hft = to_dict(rec)
            # What the session knows so far travels with every report, so the controller has it too.
            report.hft_session = {
                "platform": to_dict(self.platform_info) if self.platform_info else None,
                "capacity": to_dict(self.capacity) if self.capacity else None,
                "baseline": to_dict(self.baseline) if self.baseline else None,
            }
        return report

    def _rates(self, state: TestState) -> dict[str, float]:
        from pytest_hftk8s.slo.diagnostics import rates
        from pytest_hftk8s.slo.prom import PromClient

        assert self.platform is not None
        client = PromClient(self.platform.prometheus_url, timeout_s=2.0)
        try:
            window = state.window()
            client.wait_scraped_past(window.end, timeout_s=2.0)
            return rates(client, window)
        finally:
            client.close()

    def _evidence(self, state: TestState) -> dict[str, Any]:
        """What the report shows of a test with load: the plotted series over its window and a margin,
        and, when it missed a throughput or latency SLO, the component that was saturated."""
        from pytest_hftk8s.slo.prom import PromClient
        from pytest_hftk8s.slo.timeseries import plot_series, plot_window

        platform = self.platform
        assert platform is not None
        window = state.window()
        # The tail after the window is what Prometheus already has: no test waits for its margin.
        shown = plot_window(window)
        shown = Window(shown.start, min(shown.end, max(window.end, time.time())))
        client = PromClient(platform.prometheus_url, timeout_s=5.0)
        out: dict[str, Any] = {}
        try:
            series, notes = plot_series(
                client, shown, namespace=platform.namespace, scrape_interval_s=client.scrape_interval()
            )
            for note in notes:
                self.progress(f"plot series: {note}")
            out.update(series=series, series_window=shown)
            missed = [s.name for s in state.slos if not s.passed and _performance_slo(s.name)]
            if missed:
                out["bottleneck"] = self._bottleneck(client, window, platform.namespace, state)
        finally:
            client.close()
        return out

    def _bottleneck(self, client: Any, window: Window, namespace: str, state: TestState) -> Any:
        loads = [s for s in state.summaries() if s.mode == "open"] or state.summaries()
        try:
            from pytest_hftk8s.slo.bottleneck import attribute

            return attribute(client, window, namespace=namespace, load=loads[-1] if loads else None)
        except Exception as e:  # the verdict is evidence for a failure already reported: never mask it
            self.progress(f"bottleneck attribution failed: {type(e).__name__}: {e}")
            return None

    def _bundle(self, item: pytest.Item, state: TestState, report: pytest.TestReport) -> str:
        from pytest_hftk8s.orchestration.bundle import collect, diagnostics

        platform = self.platform
        try:
            path, text = collect(
                platform.cluster if platform is not None else None,
                nodeid=item.nodeid,
                directory=self.settings.report_dir,
                slos=state.slos,
                diagnostics=(
                    diagnostics(platform.prometheus_url, state.window(), namespace=platform.namespace)
                    if platform is not None
                    else []
                ),
                error=str(report.longrepr)[-20000:] if report.longrepr else "",
            )
        except OSError as e:
            report.sections.append(("hftk8s failure bundle", f"could not write the bundle: {e}"))
            return ""
        report.sections.append(("hftk8s failure bundle", text))
        return str(path)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed and self.lease is not None:  # in the worker that ran it
            self.lease.note_failure()
        hft = getattr(report, "hft", None)
        if self.is_worker or (hft is None and report.nodeid not in self.records):
            return
        session = getattr(report, "hft_session", None) or {}
        if self.platform_info is None and session.get("platform"):
            self.platform_info = from_dict(PlatformInfo, session["platform"])
        if self.capacity is None and session.get("capacity"):
            self.capacity = from_dict(Capacity, session["capacity"])
        if self.baseline is None and session.get("baseline"):
            self.baseline = from_dict(Baseline, session["baseline"])
        rec = self.records.setdefault(report.nodeid, TestRecord(nodeid=report.nodeid, duration=0.0))
        merge(rec, report, from_dict(TestRecord, hft) if hft else None)

    # -- the end --------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        # --hft-preflight asks for the check and nothing else: no collection, no deploy.
        if self.settings.preflight and not self.is_worker:
            self.run_preflight_only()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker or (not self.records and self.platform_info is None):
            return
        from pytest_hftk8s.report import html, junit, summary
        from pytest_hftk8s.slo.score import resilience_score

        records = list(self.records.values())
        data = summary.build(
            records,
            platform=self.platform_info,
            cluster=self.settings.cluster,
            profile=self.settings.profile,
            started=self.started,
            baseline=self.baseline,
            capacity=self.capacity,
            score=resilience_score(records),
            identity=self._identity(),
            repeat=self.settings.repeat,
        )
        if self.compare_baseline is not None:
            self.comparison = data.comparison = self._compare(data, self.compare_baseline)
            if self.comparison.fail_on_regression and self.comparison.regressions:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        summary_path = summary.write(data, self.settings.report_dir)
        self._write_dashboards()
        html_path = html.write(data, self.settings.report_dir)
        self.junit_path = junit.write(data, self.settings.report_dir / "junit.xml")
        self.written = (summary_path, html_path)
        self.score = data.score
        self._report = data
        self.config.hook.pytest_hftk8s_report_written(summary_path=summary_path, html_path=html_path)

    def _identity(self) -> RunIdentity:
        import pytest_hftk8s
        from pytest_hftk8s.orchestration.identity import git_commit, run_identity

        identity = run_identity(self.config.rootpath, started=self.started)
        if not identity.commit:  # run from elsewhere (--pyargs): the plugin's own checkout, if it is one
            identity.commit = git_commit(pathlib.Path(pytest_hftk8s.__file__).parent)
        return identity

    def _compare(self, data: SessionReport, baseline: SessionReport) -> Comparison:
        from dataclasses import replace

        from pytest_hftk8s.slo.compare import compare_reports

        assert self.settings.compare is not None
        named = replace(
            baseline.identity or RunIdentity(started=baseline.started), path=str(self.settings.compare)
        )
        self.progress(f"comparing with the baseline run at {self.settings.compare}")
        return compare_reports(
            data,
            baseline,
            min_effect=self.settings.min_effect,
            fail_on_regression=self.settings.fail_on_regression,
            baseline_identity=named,
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # pytest's own --junitxml is written in its sessionfinish: our cases join it afterwards.
        xmlpath = getattr(config.option, "xmlpath", None)
        report = self._report
        if self.is_worker or not xmlpath or report is None:
            return
        from pytest_hftk8s.report import junit

        try:
            junit.append_to(report, pathlib.Path(xmlpath))
        except (HftError, OSError) as e:
            self.progress(f"the SLO and comparison cases were not added to {xmlpath}: {e}")

    def _write_dashboards(self) -> None:
        """The Grafana dashboards beside the report, so a CI artifact carries what to import."""
        from pytest_hftk8s.manifests import dashboards_json

        target = self.settings.report_dir / "dashboards"
        try:
            dashboards = dashboards_json(self.settings.manifests_dir)
            target.mkdir(parents=True, exist_ok=True)
            for name, text in dashboards.items():
                (target / name).write_text(text)
        except (ConfigError, OSError) as e:
            self.progress(f"dashboards not written to {target}: {e}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written is None:
            return
        terminalreporter.write_sep("-", "hftk8s report")
        if self.platform_info is not None:
            terminalreporter.write_line(
                f"platform ready after {self.platform_info.ready_seconds:.1f}s (deploy + all gates)"
            )
        if self.score is not None and self.score.score is not None:
            terminalreporter.write_line(
                f"resilience score {self.score.score:g}/100 ({len(self.score.items)} weighted checks)"
            )
        if self.comparison is not None:
            self._write_comparison(terminalreporter, self.comparison)
        terminalreporter.write_line(f"summary: {self.written[0]}")
        terminalreporter.write_line(f"report:  {self.written[1]}")
        if self.junit_path is not None:
            terminalreporter.write_line(f"junit:   {self.junit_path}")

    def _write_comparison(self, terminalreporter: Any, comparison: Comparison) -> None:
        from pytest_hftk8s.slo.compare import describe, sentence

        b = comparison.baseline
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(b.started)) if b.started else "?"
        terminalreporter.write_line(
            f"compared with {b.commit[:10] or 'an unknown commit'} ({when}, {b.machine or '?'}) at {b.path}"
        )
        terminalreporter.write_line(f"  {sentence(comparison)}")
        for warning in comparison.warnings:
            terminalreporter.write_line(f"  warning: {warning}", yellow=True)
        for m in comparison.measures:
            if m.verdict == "regressed":
                label = "KNOWN REGRESSION" if m.known else "REGRESSED"
                terminalreporter.write_line(f"  {label} {describe(m)}", red=not m.known, yellow=m.known)
        if comparison.regressions:
            terminalreporter.write_line(
                "  --hft-fail-on-regression: the session fails"
                if comparison.fail_on_regression
                else "  reported only: add --hft-fail-on-regression to fail the session on a new regression"
            )


def _performance_slo(name: str) -> bool:
    """A throughput or latency SLO (built-in or baseline-relative), whose miss gets a bottleneck verdict."""
    return any(word in name for word in ("throughput", "latency", "accepted_rate"))
