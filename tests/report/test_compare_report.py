"""A run compared with a baseline run, in the report: the "Compared with" section of index.html (both
runs named, the verdict line, one styled row per measure, an overlay figure per regression), the
repeats' spread, the overlay figures themselves, and the JUnit XML (its own file, and appended to
pytest's --junitxml). The comparisons are built by hand: the statistics live in slo/compare.py."""

from __future__ import annotations

import base64
import dataclasses
import math
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import headless_chromium
import pytest
import samples

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.report import html, junit, plots
from pytest_hftk8s.results import (
    Comparison,
    MeasureComparison,
    RunIdentity,
    SessionReport,
    TestRecord,
    Window,
)

STEADY = "suites/test_perf.py::test_steady"
BURST = "suites/test_perf.py::test_burst"
BASELINE = RunIdentity(commit="0123456789abcdef0123", dirty=True, started=samples.T0 - 86_400.0,
                       machine="ci-runner-7", cpu_model="AMD EPYC 7B13", cores=8, path="/nightly/2025-12-02/summary.json")  # fmt: skip
CURRENT = RunIdentity(commit="fedcba9876543210fedc", started=samples.T0 - 10.0, machine="ci-runner-9",
                      cpu_model="Intel Xeon 8375C", cores=16)  # fmt: skip
WARNINGS = ["the baseline ran on another machine (ci-runner-7, 8 cores; now ci-runner-9, 16 cores)"]


def _samples(mean: float, spread: float, n: int = 60) -> list[float]:
    return [mean + spread * math.sin(1.7 * i) for i in range(n)]


def _measures() -> list[MeasureComparison]:
    """Five verdicts, in an order the report must not keep: the regressions are last."""
    return [
        MeasureComparison(test=BURST, load="burst", measure="client_p50_ms", unit="ms", better="lower",
                          verdict="improved", baseline=2.4, current=2.0, effect=-0.167, ci=(-0.21, -0.12),
                          p_value=0.0004, n_baseline=60, n_current=60, repeats_baseline=3, repeats_current=3,
                          reason="the whole interval is below -5.0%"),
        MeasureComparison(test=BURST, load="burst", measure="throughput", unit="orders/s", better="higher",
                          verdict="unchanged", baseline=80.0, current=79.0, effect=-0.0125, ci=(-0.04, 0.02),
                          min_effect=0.05, noise=0.08, n_baseline=60, n_current=60, repeats_baseline=3,
                          repeats_current=3, reason="the interval lies within ±8.0%",
                          baseline_values=_samples(80, 3), current_values=_samples(79, 3)),
        MeasureComparison(test="session", load="", measure="resilience_score", unit="", better="higher",
                          verdict="inconclusive", baseline=83.0, current=75.0, effect=-0.096, ci=(-0.31, 0.12),
                          n_baseline=1, n_current=1, reason="one value each: no interval without repeats"),
        MeasureComparison(test=STEADY, load="steady", measure="client_p99_ms", unit="ms", better="lower",
                          verdict="regressed", known=True, baseline=9.0, current=12.6, effect=0.4,
                          ci=(0.3, 0.52), n_baseline=3, n_current=3, repeats_baseline=3, repeats_current=3,
                          method="block bootstrap over repeats", reason="also regressed in the baseline's run",
                          distribution="quantiles", grid=[50.0, 90.0, 99.0, 99.9, 99.99],
                          baseline_values=[2.0, 4.0, 9.0, 30.0, 80.0], current_values=[2.1, 5.0, 12.6, 45.0, 150.0]),
        MeasureComparison(test=STEADY, load="steady", measure="throughput", unit="orders/s", better="higher",
                          verdict="regressed", baseline=80.0, current=70.4, effect=-0.12, ci=(-0.15, -0.09),
                          p_value=0.001, n_baseline=180, n_current=180, repeats_baseline=3, repeats_current=3,
                          method="block bootstrap over repeats", reason="the whole interval is below -5.0%",
                          baseline_values=_samples(80, 3, 180), current_values=_samples(70.4, 3, 180)),
    ]  # fmt: skip


def _comparison(**overrides: object) -> Comparison:
    measures = _measures()
    values: dict[str, object] = {
        "baseline": BASELINE, "current": CURRENT, "verdict": "regressed", "measures": measures,
        "confidence": 0.95, "resamples": 2000, "warnings": list(WARNINGS),
        "regressions": [measures[4].key], "known_regressions": [measures[3].key],
    }  # fmt: skip
    values.update(overrides)
    return Comparison(**values)  # type: ignore[arg-type]


def _repeated(case: str, load: str, rates: list[float], p99s: list[float], start: float) -> list[TestRecord]:
    out = []
    for i, (rate, p99) in enumerate(zip(rates, p99s, strict=True), 1):
        run = samples.load_run(load, start + 100.0 * i, seconds=20.0, rate=rate, seed=i)
        run = dataclasses.replace(run, achieved_rate=rate, latency_ms={"p50": 2.0, "p99": p99})
        out.append(TestRecord(nodeid=f"{case}[repeat-{i}]", case=case, repeat=i,
                              window=Window(start + 100.0 * i, start + 100.0 * i + 22.0), loads=[run]))  # fmt: skip
    return out


def _tests() -> list[TestRecord]:
    steady = _repeated(STEADY, "steady", [70.0, 71.0, 70.2], [12.0, 12.6, 13.1], samples.T0)
    burst = _repeated(BURST, "burst", [76.0, 84.0, 77.0], [8.0, 8.1, 8.0], samples.T0 + 400.0)
    steady[0].slos = [
        samples._slo("throughput", steady[0].window, observed=0.87, threshold=0.95, comparator=">=",
                     passed=False, unit="ratio"),
        samples._slo("p99_order_latency_ms", steady[0].window, observed=12.0, threshold=50, comparator="<=",
                     passed=True, unit="ms"),
        samples._slo("no_oomkilled", steady[0].window, observed={"engine-0": 1}, threshold=0, comparator="==",
                     passed=False, severity="warning"),
    ]  # fmt: skip
    return steady + burst


def _report(comparison: Comparison | None = None, *, repeat: int = 3) -> SessionReport:
    report = samples.session(_tests())
    report.score = None
    return dataclasses.replace(report, identity=CURRENT, repeat=repeat, comparison=comparison)


@pytest.fixture(scope="module")
def page() -> str:
    return html.render(_report(_comparison()))


def _section(page: str) -> str:
    return page[page.index("<div id='compare'>") : page.index("<details")]


def _rows(page: str) -> dict[str, str]:
    """The verdict table's rows by their id, in page order."""
    return dict(re.findall(r"<tr id='(c-[^']+)'[^>]*>(.*?)</tr>", _section(page)))


def _figures(part: str) -> dict[str, str]:
    found = re.findall(r"<figure id='([^']+)'><img src='data:image/svg\+xml;base64,([^']+)'", part)
    return {ident: base64.b64decode(data).decode() for ident, data in found}


# -- index.html ------------------------------------------------------------------------------------


def test_the_section_names_the_baseline_and_this_run(page: str) -> None:
    section = _section(page)
    heading = re.search(r"<h2>Compared with (.*?)</h2>", section)
    assert heading is not None
    assert heading[1] == ("0123456789 (dirty), 2025-12-02 05:33 UTC, on ci-runner-7 (AMD EPYC 7B13, 8 cores)")
    assert "/nightly/2025-12-02/summary.json" in section
    assert "this run: fedcba9876 (dirty)" not in section  # only the baseline was dirty
    assert (
        "this run: fedcba9876, 2025-12-03 05:33 UTC, on ci-runner-9 (Intel Xeon 8375C, 16 cores)" in section
    )
    # The comparison comes first, before the list of tests.
    assert page.index("<div id='compare'>") < page.index("<details open><summary>tests")


def test_the_verdict_line_settings_and_warnings(page: str) -> None:
    section = _section(page)
    assert "<b class='v-regressed'>&nbsp;REGRESSED&nbsp;</b> " in section
    assert "1 new regression, 1 known regression, 1 improved, 1 unchanged, 1 inconclusive" in section
    assert "--hft-fail-on-regression off: regressions are reported" in section
    assert "95% confidence interval" in section
    assert "(±5.0%," in section
    assert "2000 bootstrap resamples" in section
    warn = re.search(r"<div class='warn'>(.*?)</div>", section)
    assert warn is not None
    assert "another machine (ci-runner-7, 8 cores; now ci-runner-9, 16 cores)" in warn[1]
    assert section.index("<div class='warn'>") < section.index("<table>")  # seen before the table
    failing = _section(html.render(_report(_comparison(fail_on_regression=True, warnings=[]))))
    assert "--hft-fail-on-regression on: a new regression fails the session" in failing
    assert "class='warn'" not in failing


def test_every_verdict_is_a_styled_row_regressions_first(page: str) -> None:
    rows = _rows(page)
    measures = _measures()
    assert list(rows) == [html.compare_anchor(measures[i]) for i in (4, 3, 2, 0, 1)]
    verdicts = [re.search(r"<td class='(v-[a-z]+)'>", r)[1] for r in rows.values()]  # type: ignore[index]
    assert verdicts == ["v-regressed", "v-known", "v-inconclusive", "v-improved", "v-unchanged"]
    new, known, inconclusive, improved, unchanged = rows.values()
    assert "<td>80 orders/s</td><td>70.4 orders/s</td><td class='nw'>-12.0% [-15.0%, -9.0%]</td>" in new
    assert "<td>0.001</td><td>180 / 180 (3 / 3)</td>" in new
    assert ">REGRESSED <a href='#" in new
    assert "the whole interval is below -5.0%" in new
    assert "block bootstrap over repeats" in new
    assert "regressed<span class='tag'>known</span>" in known
    assert "+40.0% [+30.0%, +52.0%]" in known
    assert "<td class='nw'>-16.7% [-21.0%, -12.0%]</td>" in improved
    assert "<td>0.0004</td>" in improved
    assert "one value each: no interval without repeats" in inconclusive
    assert "<td title='session'>session</td><td>-</td><td>resilience_score" in inconclusive  # no test to link
    # The baseline's noise (8%) was wider than the minimum effect (5%): the row says which was used.
    assert "±8.0% <span class='note'>(the baseline's noise; default ±5.0%)</span>" in unchanged
    assert "<td>±5.0%</td>" in improved
    # The test names link to their (first repeat's) section.
    assert f"<a href='#{html.anchor(STEADY + '[repeat-1]')}'>test_steady</a>" in new


def test_each_regression_links_to_its_overlay_and_nothing_else_has_one(page: str) -> None:
    section = _section(page)
    figures = _figures(section)
    measures = _measures()
    new, known = (html.compare_anchor(measures[i]) + "-compare" for i in (4, 3))
    assert set(figures) == {new, known}
    assert f"href='#{new}'" in section
    assert f"href='#{known}'" in section
    for i in (0, 1, 2):  # improved, unchanged, inconclusive: no figure, no plot link
        assert html.compare_anchor(measures[i]) + "-compare" not in section
    assert 'id="baseline-hist"' in figures[new]
    assert 'id="current-mean"' in figures[new]
    assert 'id="baseline-quantiles"' in figures[known]
    ids = set(re.findall(r"\bid='([^']+)'", page))
    assert set(re.findall(r"href='#([^']+)'", page)) <= ids
    assert "<script" not in page


def test_anchors_of_compared_measures_are_stable_and_unique() -> None:
    a, b = _measures()[3:]
    assert html.compare_anchor(a) == html.compare_anchor(dataclasses.replace(a, verdict="unchanged"))
    assert html.compare_anchor(a) != html.compare_anchor(b)
    assert re.fullmatch(r"c-[A-Za-z0-9_-]+", html.compare_anchor(a))
    twice = _comparison(measures=[b, b])
    rows = _rows(html.render(_report(twice)))
    assert len(rows) == 2


def test_no_comparison_no_section_and_no_repeats_table_without_repeats() -> None:
    page = html.render(_report(None, repeat=1))
    assert "Compared with" not in page
    assert "id='compare'" not in page
    assert "id='repeats'" not in page
    empty = html.render(_report(_comparison(measures=[], verdict="inconclusive")))
    assert "no measure was compared" in empty
    assert "0 new regressions, 0 known regressions" in empty


def test_repeats_show_each_value_and_the_spread(page: str) -> None:
    part = page[page.index("<h2 id='repeats'>") :]
    part = part[: part.index("</table>")]
    rows = re.findall(r"<tr><td title='([^']+)'>.*?</td><td>([^<]+)</td><td>([^<]+)</td>(.*?)</tr>", part)
    table = {
        (case, load, measure): re.findall(r"<td[^>]*>([^<]+)</td>", rest)
        for case, load, measure, rest in rows
    }
    assert table == {
        (STEADY, "steady", "achieved /s"): ["70", "71", "70.2", "1.4%"],
        (STEADY, "steady", "client p99 ms"): ["12", "12.6", "13.1", "8.8%"],
        (BURST, "burst", "achieved /s"): ["76", "84", "77", "10.1%"],
        (BURST, "burst", "client p99 ms"): ["8", "8.1", "8", "1.2%"],
    }
    # A spread wider than the minimum effect stands out.
    assert part.count("<td class='bad'>") == 2
    assert "<td class='bad'>10.1%</td>" in part
    assert "<td class='bad'>8.8%</td>" in part
    assert "<a href='#repeats'>3 per test</a>" in page


# -- the overlay figures ---------------------------------------------------------------------------


def test_the_samples_overlay_marks_both_means_and_titles_the_effect() -> None:
    plot = plots.comparison_plot(_measures()[4])
    assert plot.key == "compare"
    assert plot.svg is not None
    assert (
        plot.title
        == "test_steady / steady / throughput: -12.0% [-15.0%, -9.0%] vs baseline (higher is better)"
    )
    for gid in (
        "baseline-hist",
        "current-hist",
        "baseline-mean",
        "current-mean",
        "baseline-ecdf",
        "current-ecdf",
    ):
        assert f'id="{gid}"' in plot.svg
    assert "baseline mean 80" in plot.svg
    assert "current mean 70.4" in plot.svg
    assert "current (n=180)" in plot.svg


def test_the_quantile_overlay_uses_the_nines_scale() -> None:
    m = _measures()[3]
    plot = plots.comparison_plot(m)
    assert plot.svg is not None
    assert 'id="baseline-quantiles"' in plot.svg
    assert 'id="current-quantiles"' in plot.svg
    for tick in ("p50", "p90", "p99", "p99.9", "p99.99"):
        assert f">{tick}<" in plot.svg
    assert "+40.0% [+30.0%, +52.0%]" in plot.title
    assert plot.notes == ()
    short = plots.comparison_plot(dataclasses.replace(m, current_values=m.current_values[:3]))
    assert short.svg is not None
    assert "the first 3 are drawn" in short.notes[0]


def test_an_overlay_without_data_says_so() -> None:
    m = _measures()[4]
    none = plots.comparison_plot(dataclasses.replace(m, current_values=[], baseline_values=[math.nan]))
    assert none.svg is None
    assert none.notes == ("nothing to plot: no baseline and no current samples",)
    flat = plots.comparison_plot(dataclasses.replace(m, baseline_values=[5.0] * 3, current_values=[5.0] * 3))
    assert flat.svg is not None  # every sample the same is still a figure
    page = html.render(_report(_comparison(measures=[dataclasses.replace(m, current_values=[])])))
    assert "nothing to plot: no current samples" in page  # the figure's place says why it is empty


# -- JUnit XML -------------------------------------------------------------------------------------


def _cases(suite: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in suite.iter("testcase")}


def _outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def _skipped(case: ET.Element) -> str:
    found = case.find("skipped")
    assert found is not None
    return found.get("message", "")


def _props(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_junit_has_one_case_per_slo_with_failures_for_blocking_misses() -> None:
    root = junit.build(_report(_comparison()))
    assert root.tag == "testsuites"
    slo = root.find("testsuite[@name='hftk8s.slo']")
    assert slo is not None
    cases = _cases(slo)
    first = STEADY + "[repeat-1]"
    assert set(cases) == {(first, "throughput"), (first, "p99_order_latency_ms"), (first, "no_oomkilled")}
    assert {k[1]: _outcome(c) for k, c in cases.items()} == {
        "throughput": "failure", "p99_order_latency_ms": "passed", "no_oomkilled": "passed",
    }  # fmt: skip
    failure = cases[(first, "throughput")].find("failure")
    assert failure is not None
    assert failure.get("message") == "throughput: observed 0.87 ratio, expected >= 0.95 ratio"
    assert "query: throughput($window)" in (failure.text or "")
    assert "window: 2025-12-03T05:35:00+00:00 - 2025-12-03T05:35:22+00:00 (22.0 s)" in (failure.text or "")
    assert cases[(first, "throughput")].get("time") == "22.000"
    warned = cases[(first, "no_oomkilled")].find("system-out")
    assert warned is not None
    assert "missed, but not blocking (severity warning)" in (warned.text or "")
    assert _props(cases[(first, "no_oomkilled")])["observed"] == "engine-0=1"
    assert (slo.get("tests"), slo.get("failures"), slo.get("skipped"), slo.get("errors")) == (
        "3",
        "1",
        "0",
        "0",
    )
    assert slo.get("hostname") == "ci-runner-9"


def test_junit_has_one_case_per_measure_and_a_regression_never_passes() -> None:
    root = junit.build(_report(_comparison()))
    suite = root.find("testsuite[@name='hftk8s.compare']")
    assert suite is not None
    cases = _cases(suite)
    assert {k: _outcome(c) for k, c in cases.items()} == {
        (STEADY, "steady::throughput"): "skipped",  # a new regression, report only
        (STEADY, "steady::client_p99_ms"): "skipped",  # known
        (BURST, "burst::client_p50_ms"): "passed",
        (BURST, "burst::throughput"): "passed",
        ("session", "resilience_score"): "skipped",  # inconclusive
    }
    skipped = {k[1]: _skipped(c) for k, c in cases.items() if _outcome(c) == "skipped"}
    assert skipped["steady::throughput"].startswith(
        "regressed (report only): throughput -12.0% [-15.0%, -9.0%]"
    )
    assert skipped["steady::client_p99_ms"].startswith("known regression: client_p99_ms +40.0%")
    assert skipped["resilience_score"] == "inconclusive: one value each: no interval without repeats"
    props = _props(cases[(STEADY, "steady::throughput")])
    assert props["effect"] == "-12.0%"
    assert props["ci"] == "[-15.0%, -9.0%]"
    assert props["min_effect"] == "5.0%"
    assert props["verdict"] == "regressed"
    assert _props(cases[(STEADY, "steady::client_p99_ms")])["verdict"] == "known regression"
    assert _props(cases[(BURST, "burst::throughput")])["min_effect"] == "8.0%"  # widened by the noise
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "0", "3")
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("8", "1", "3")
    # With --hft-fail-on-regression the new regression, and only it, fails.
    strict = junit.build(_report(_comparison(fail_on_regression=True)))
    suite = strict.find("testsuite[@name='hftk8s.compare']")
    assert suite is not None
    cases = _cases(suite)
    failure = cases[(STEADY, "steady::throughput")].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("regressed: throughput -12.0%")
    assert "baseline run: 0123456789 on ci-runner-7 /nightly/2025-12-02/summary.json" in (failure.text or "")
    assert _outcome(cases[(STEADY, "steady::client_p99_ms")]) == "skipped"
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "2")


def test_junit_without_a_comparison_has_the_slo_suite_only(tmp_path: pathlib.Path) -> None:
    path = junit.write(_report(None), tmp_path / "out" / "junit.xml")
    assert path == tmp_path / "out" / "junit.xml"
    root = ET.parse(path).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["hftk8s.slo"]
    assert not list(path.parent.glob("*.tmp"))


def _pytest_junit(tmp_path: pathlib.Path) -> pathlib.Path:
    """A real --junitxml file: pytest (without this plugin) on two tests, one passing, one failing."""
    (tmp_path / "test_inner.py").write_text(
        "def test_ok():\n    pass\n\ndef test_bad():\n    assert 1 == 2\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out = tmp_path / "junit.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:hftk8s", "-p", "no:cacheprovider", f"--junitxml={out}",
         "test_inner.py"],
        cwd=tmp_path, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.exists()
    return out


def test_append_to_adds_our_suites_and_keeps_pytests(tmp_path: pathlib.Path) -> None:
    path = _pytest_junit(tmp_path)
    before = ET.parse(path).getroot()
    pytest_suite = ET.tostring(before.find("testsuite[@name='pytest']"))  # type: ignore[arg-type]
    junit.append_to(_report(_comparison()), path)
    junit.append_to(_report(_comparison()), path)  # again: replaced, not repeated
    root = ET.parse(path).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["pytest", "hftk8s.slo", "hftk8s.compare"]
    assert ET.tostring(root.find("testsuite[@name='pytest']")) == pytest_suite  # type: ignore[arg-type]
    assert root.attrib == before.attrib  # pytest's <testsuites> carries no totals: none are invented
    assert len(list(root.iter("testcase"))) == 2 + 3 + 5
    assert not list(tmp_path.glob("*.tmp"))


def test_append_to_a_lone_testsuite_wraps_it(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuite name="pytest" tests="1" failures="0"><testcase classname="a" name="b"/></testsuite>'
    )
    junit.append_to(_report(None), path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == ["pytest", "hftk8s.slo"]


def test_append_to_errors_clearly_on_a_missing_or_broken_file(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.xml"
    with pytest.raises(junit.JunitFileError, match=r"nope\.xml: it does not exist.*--junitxml") as info:
        junit.append_to(_report(None), missing)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ConfigError)  # the plugin's own hierarchy
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not missing.exists()  # nothing was made up in its place
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites><testsuite")
    with pytest.raises(junit.JunitFileError, match=r"broken\.xml: it is not XML"):
        junit.append_to(_report(None), broken)
    assert broken.read_text() == "<testsuites><testsuite"  # left as it was
    other = tmp_path / "other.xml"
    other.write_text("<html/>")
    with pytest.raises(junit.JunitFileError, match=r"root element is <html>"):
        junit.append_to(_report(None), other)


# -- in a browser ----------------------------------------------------------------------------------


@pytest.mark.skipif(
    headless_chromium.find_chromium() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_a_compared_report_opens_in_headless_chromium(tmp_path: pathlib.Path) -> None:
    index = html.write(_report(_comparison()), tmp_path)
    text = index.read_text()
    check = headless_chromium.check_page(index, timeout=60)
    assert check.images == text.count("<img")
    assert check.images >= 2 + 6  # the two overlays and the repeats' own figures
    assert check.images_loaded, check.broken_images
    assert check.broken_images == []
    assert check.console_errors == []
    measures = _measures()
    assert {html.compare_anchor(measures[i]) + "-compare" for i in (3, 4)} <= set(check.ids)
    assert check.anchors
    assert set(check.anchors) <= set(check.ids)
