"""The report's figures and sections from typed records (tests/report/samples.py): plots per test with
load, chaos shading and markers, the recovery and OOM timelines, anchors from missed SLOs, the USL
figure and fit table, the bottleneck verdict, the resilience score, robustness, size, and no leak
into the user's matplotlib."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import pathlib
import re
import subprocess
import sys

import pytest
import samples

from pytest_hftk8s.report import html, plots
from pytest_hftk8s.results import (
    ChaosRecord,
    LoadSummary,
    OomSequence,
    Recovery,
    Series,
    SessionReport,
    SweepPoint,
    SweepResult,
    TestRecord,
    Window,
    from_dict,
    to_dict,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def page() -> str:
    return html.render(samples.session(samples.session().tests[:5]))


@pytest.fixture(scope="module")
def kill_plots() -> list[plots.Plot]:
    return plots.record_plots(samples.pod_kill())


@pytest.fixture(scope="module")
def stress_plots() -> list[plots.Plot]:
    return plots.record_plots(samples.cpu_stress())


def _sections(page: str) -> dict[str, str]:
    """Each test's part of the page by its position (t0, t1, ...)."""
    parts = [p for p in re.split(r"(?=<section id=')", page) if p.startswith("<section")]
    return {f"t{i}": p for i, p in enumerate(parts)}


def _images(part: str) -> dict[str, str]:
    """The SVG documents embedded in a part of the page, by their figure's anchor (without the
    section's own anchor in front when ``part`` is one section)."""
    section = re.match(r"<section id='([^']+)'>", part)
    found = re.findall(r"<figure id='([^']+)'><img src='data:image/svg\+xml;base64,([^']+)'", part)
    prefix = section[1] + "-" if section else ""
    return {ident.removeprefix(prefix): base64.b64decode(data).decode() for ident, data in found}


def _plot(plots_: list[plots.Plot], key: str) -> str:
    svg = next(p.svg for p in plots_ if p.key == key)
    assert svg is not None, key
    return svg


def test_every_test_with_load_gets_its_plots(page: str) -> None:
    parts = _sections(page)
    assert list(parts) == ["t0", "t1", "t2", "t3", "t4"]
    kill, stress, oom, sweep, idle = (_images(parts[k]) for k in parts)
    assert set(kill) == {"throughput", "latency", "resources", "recovery-0"}
    assert set(stress) == {"throughput", "latency", "resources"}
    assert set(oom) == {"throughput", "latency", "resources", "oom-0"}
    assert set(sweep) == {"usl"}
    assert idle == {}
    assert "<img" not in parts["t4"]
    assert "no plots: this test drove no load and recorded no series" in parts["t4"]
    for svg in (*kill.values(), *stress.values()):
        assert svg.startswith("<?xml")
        assert svg.rstrip().endswith("</svg>")
    assert "<script" not in page


def test_throughput_shows_prometheus_errors_and_the_generator_rate(kill_plots: list[plots.Plot]) -> None:
    svg = _plot(kill_plots, "throughput")
    assert 'id="accepted-rate"' in svg
    assert 'id="generator-rate"' in svg
    assert 'id="errors-0"' in svg  # outcome "error" from order_rate_by_outcome
    assert "error/s (Prometheus)" in svg
    assert "generator 2xx/s (1 run)" in svg


def test_latency_puts_client_quantiles_against_server_p99(kill_plots: list[plots.Plot]) -> None:
    svg = _plot(kill_plots, "latency")
    for gid in ("client-p50", "client-p99", "server-p99-ms"):
        assert f'id="{gid}"' in svg
    assert "client p99" in svg
    assert "server p99 (Prometheus)" in svg


def test_chaos_windows_are_shaded_labelled_and_marked_on_every_plot(stress_plots: list[plots.Plot]) -> None:
    figures = stress_plots
    for key in ("throughput", "latency"):
        svg = _plot(figures, key)
        assert 'id="chaos-window-0"' in svg  # the axvspan
        assert "stress-cpu backend" in svg  # its label
        assert 'id="injection-0"' in svg
        assert 'id="removal-0"' in svg
    resources = _plot(figures, "resources")
    for suffix in ("", "-ax1", "-ax2", "-ax3"):  # all four panels are shaded
        assert f'id="chaos-window-0{suffix}"' in resources
    assert 'id="cpu-limit-by-pod"' in resources
    assert 'id="memory-limit-by-pod"' in resources
    for pod in samples.PODS:
        assert pod in resources
    # No chaos: no shading, and still all three figures.
    calm = samples.cpu_stress()
    calm.chaos = []
    figures = plots.record_plots(calm)
    assert [p.key for p in figures] == ["throughput", "latency", "resources"]
    assert all("chaos-window" not in (p.svg or "") for p in figures)


def test_a_pod_kill_timeline_marks_the_dip_and_the_recovery_time(kill_plots: list[plots.Plot]) -> None:
    figures = kill_plots
    svg = _plot(figures, "recovery-0")
    assert 'id="recovery-time"' in svg
    assert "recovery 4.00 s" in svg
    assert 'id="recovery-floor"' in svg
    assert 'id="recovery-dip"' in svg
    assert "seconds since the fault at" in svg
    # The recovery is also marked on the test's other time axes.
    assert "recovered (+4.0 s)" in _plot(figures, "throughput")  # sharing a label with close events
    assert 'id="recovery-0"' in _plot(figures, "latency")


def test_a_recovery_that_never_came_says_so() -> None:
    test = samples.pod_kill()
    r = test.chaos[0].recovery
    assert r is not None
    test.chaos[0].recovery = dataclasses.replace(r, recovered_at=None, recovery_s=None)
    plot = next(p for p in plots.record_plots(test) if p.key == "recovery-0")
    assert plot.svg is not None
    assert "did not recover while observed" in plot.svg
    assert "recovery-time" not in plot.svg
    assert any("did not recover" in n for n in plot.notes)


def test_memory_pressure_shows_oomkilled_then_crashloopbackoff() -> None:
    svg = _plot(plots.record_plots(samples.memory_oom()), "oom-0")
    assert "OOMKilled then CrashLoopBackOff" in svg
    assert 'id="state-OOMKilled"' in svg
    assert 'id="state-CrashLoopBackOff"' in svg
    assert svg.index('id="state-OOMKilled"') < svg.index('id="state-CrashLoopBackOff"')
    assert 'id="restarts"' in svg
    assert "engine-0 working set" in svg
    assert 'id="memory-limit"' in svg


def test_a_missed_slo_links_to_its_plot_and_every_anchor_exists(page: str) -> None:
    ids = set(re.findall(r"\bid='([^']+)'", page))
    hrefs = re.findall(r"href='#([^']+)'", page)
    assert hrefs
    assert set(hrefs) <= ids
    kill, stress, oom = samples.pod_kill(), samples.cpu_stress(), samples.memory_oom()
    rows = dict(re.findall(r"<tr class='bad'><td>([a-z0-9_]+) <a href='#([^']+)'>", page))
    assert rows == {
        "throughput": html.anchor(kill.nodeid) + "-throughput",
        "p99_order_latency_ms": html.anchor(kill.nodeid) + "-latency",
        "client_p99_latency_ms": html.anchor(stress.nodeid) + "-latency",
        "no_oomkilled": html.anchor(oom.nodeid) + "-oom-0",
    }
    # A failure message gets the same link without the page.
    assert html.slo_link(kill, kill.slos[1]) == "#" + html.anchor(kill.nodeid) + "-latency"
    assert html.slo_link(oom, oom.slos[1]) == "#" + html.anchor(oom.nodeid) + "-oom-0"
    idle = samples.no_load()
    assert html.slo_link(idle, idle.slos[0]) == "#" + html.anchor(idle.nodeid)  # no figure: the section
    assert "<td>recovery_time</td>" in page  # a held SLO has no link


def test_anchors_are_stable_readable_and_unique() -> None:
    a = html.anchor("suites/test_resilience.py::test_pod_kill_engine[<x> y]")
    assert a == html.anchor("suites/test_resilience.py::test_pod_kill_engine[<x> y]")
    assert re.fullmatch(r"t-[A-Za-z0-9_-]+", a)
    assert "test_pod_kill_engine" in a
    assert a != html.anchor("suites/test_resilience.py::test_pod_kill_engine[<x> z]")
    twice = samples.session([samples.no_load(), samples.no_load()])
    page = html.render(twice)
    assert page.count("<section id=") == 2
    assert len(set(re.findall(r"<section id='([^']+)'>", page))) == 2


def test_the_usl_figure_shows_points_the_curve_and_n_star(page: str) -> None:
    sweep = samples.sweep().sweep
    assert sweep is not None
    svg = _plot([plots.usl_plot(sweep)], "usl")
    assert 'id="usl-points"' in svg
    assert 'id="usl-curve"' in svg
    assert 'id="usl-nstar"' in svg
    assert "N* ≈ 2.9" in svg
    assert "knee N=4" in svg
    part = _sections(page)["t3"]
    assert "ceiling 3,163 orders/s at N=4, N* ≈ 2.9" in part
    assert "<td>σ (contention)</td><td>0.585</td><td>0.41 - 0.76</td>" in part
    assert "<td>κ (coherency)</td><td>0.05</td><td>0.031 - 0.069</td>" in part
    assert "2653 (fixed to X(1))" in part
    assert "<td>N* = √((1-σ)/κ)</td><td>2.88</td><td>2.4 - 3.6</td>" in part
    assert "X_max = X(N*)" in part
    assert "Bottleneck at the knee: backend pods" in part


def test_the_bottleneck_verdict_is_a_sentence_and_a_ranked_table(page: str) -> None:
    part = _sections(page)["t1"]
    assert "<h3>Bottleneck: backend pods</h3>" in part
    assert "throttled 41% of periods" in part
    ranks = re.findall(r"<tr(?: class='bad')?><td>(\d)</td><td>([a-z ]+)</td><td>([^<]+)</td>", part)
    assert [(r, c) for r, c, _ in ranks] == [
        ("1", "backend pods"), ("2", "backend pods"), ("3", "node"), ("4", "postgres"), ("5", "redis"),
    ]  # fmt: skip
    assert "<tr class='bad'><td>1</td>" in part  # saturated rows stand out
    assert "<tr><td>3</td>" in part
    assert "<td>99%</td>" in part
    assert "<td>no data</td>" in part  # redis: a missing signal says so


def test_the_score_shows_how_it_was_computed(page: str) -> None:
    section = page[page.index("<h2 id='score'>") : page.index("<section")]
    assert "58.3 / 100" in section
    assert "= 7 / 12 x 100 = 58.3 (3 of 6 checks held)" in section
    assert "<tr><td>critical</td><td>3</td><td>1</td><td>1</td></tr>" in section
    assert "<tr><td>warning</td><td>1</td><td>1</td><td>0</td></tr>" in section
    assert section.count("<tr class='bad'>") == 3
    assert "sum(weight x passed) / sum(weight) x 100" in section
    empty = html.render(
        dataclasses.replace(
            samples.session([]), score=dataclasses.replace(samples.score(), score=None, items=[])
        )
    )
    assert "no resilience SLO was evaluated" in empty


def _bare_load(**overrides: object) -> LoadSummary:
    w = Window(100.0, 110.0)
    values: dict[str, object] = {
        "name": "x", "mode": "open", "offered_rate": 10.0, "duration_s": 10.0, "window": w, "order_window": w,
        "users": 1, "registrations_ok": 1, "registrations_failed": 0, "scheduled": 0, "sent": 0, "completed": 0,
        "ok": 0, "achieved_rate": 0.0, "statuses": {}, "errors": {}, "latency_ms": {}, "cpu": {}, "schedule": {},
        "valid": False,
    }  # fmt: skip
    values.update(overrides)
    return LoadSummary(**values)  # type: ignore[arg-type]


def test_rendering_survives_missing_short_and_nan_data() -> None:
    nan = math.nan
    w = Window(100.0, 110.0)
    odd = [
        # A load with no timelines and no series at all.
        TestRecord(nodeid="a", window=w, loads=[_bare_load()]),
        # Series that are all nan, one sample long, empty; chaos without a window; a dry run.
        TestRecord(
            nodeid="b", window=w, series_window=Window(95.0, 115.0), loads=[_bare_load(timeline=Series("t", 100.0, 0.1, ()))],
            series=[Series("accepted_rate", 95.0, 1.0, (nan, nan, nan)), Series("server_p99_ms", 100.0, 1.0, (5.0,)),
                    Series("cpu_cores_by_pod", 95.0, 1.0, (), labels={"pod": "p"}),
                    Series("memory_by_pod", 95.0, 1.0, (nan, 1e6), labels={"pod": "p"})],
            chaos=[ChaosRecord(experiment="pod-kill x", requested_at=101.0),
                   ChaosRecord(experiment="stress-cpu y", dry_run=True, window=Window(102.0, 102.0)),
                   ChaosRecord(experiment="kill z", recovery=Recovery(fault_at=103.0, floor_rate=0.0)),
                   ChaosRecord(experiment="mem", oom_sequence=OomSequence(container="p/c"))],
        ),
        # No window anywhere, a series of nothing but nan.
        TestRecord(nodeid="c", series=[Series("accepted_rate", 0.0, 1.0, (nan,))]),
        # A sweep where nothing was sustainable and no fit was made.
        TestRecord(nodeid="d", sweep=SweepResult(points=[SweepPoint(backends=1, max_rate=None, throughput=None)])),
        TestRecord(nodeid="e", sweep=SweepResult(points=[])),
    ]  # fmt: skip
    page = html.render(samples.session(odd))
    parts = _sections(page)
    assert "nothing to plot" in parts["t0"]
    assert "no generator timeline" in parts["t0"]
    assert "failed:" not in page  # no figure fell back to the exception note
    assert "no sustainable rate at N=1" in parts["t3"]
    assert "nothing to plot: no sustainable throughput was measured" in parts["t4"]
    assert set(re.findall(r"href='#([^']+)'", page)) <= set(re.findall(r"\bid='([^']+)'", page))
    figures = {p.key: p for p in plots.record_plots(odd[1])}
    assert figures["throughput"].svg is None  # all nan: said, not drawn empty
    assert figures["latency"].svg is not None  # one sample of server p99 is still a point
    assert "OOMKilled was not seen" in figures["oom-3"].notes


def test_a_summary_json_round_trip_renders_the_same_figures(kill_plots: list[plots.Plot]) -> None:
    """What summary.json holds (nan as null) comes back through from_dict and draws the same."""
    report = samples.session([samples.pod_kill()])
    data = json.loads(json.dumps(to_dict(report)))
    again = from_dict(SessionReport, data)
    assert None in again.tests[0].series[0].values  # the missed scrape, as JSON has it
    figures = plots.record_plots(again.tests[0])
    assert [p.key for p in figures if p.svg] == [p.key for p in kill_plots if p.svg]
    assert "recovery 4.00 s" in _plot(figures, "recovery-0")


def test_a_nine_test_report_stays_small(nine_test_report: pathlib.Path) -> None:
    size = nine_test_report.stat().st_size
    assert size < 2_000_000, size
    assert len(_images(nine_test_report.read_text())) == 27


def test_nothing_leaks_into_the_users_matplotlib() -> None:
    """No pyplot, no backend switch, rcParams as they were; importing the report costs no matplotlib."""
    code = f"""
import sys
sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r})
from pytest_hftk8s.report import html
assert "matplotlib" not in sys.modules, "the report imported matplotlib eagerly"
import matplotlib
def snapshot():  # without resolving the backend (that alone would import pyplot)
    return {{k: matplotlib.rcParams._get(k) for k in matplotlib.rcParams}}
rc = snapshot()
import samples
page = html.render(samples.session(samples.session().tests[:3]))
assert page.count("<img") == 11, page.count("<img")
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
after = snapshot()
assert after == rc, {{k: (rc[k], after[k]) for k in rc if rc[k] != after[k]}}
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
