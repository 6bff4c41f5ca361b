"""The session's SLOs and comparison verdicts as JUnit XML, so CI shows them as test results.

:func:`build` gives a ``<testsuites>`` with a ``hftk8s.slo`` suite (one test case per evaluated SLO
of every test) and, when the run was compared with a baseline, a ``hftk8s.compare`` suite (one test
case per compared measure). :func:`write` writes it as its own file; :func:`append_to` adds the same
suites to the file pytest's ``--junitxml`` wrote. Both write atomically (temp file + rename).

How the outcomes map, for a CI user who reads only pass / fail / skip:

- a missed blocking SLO is a ``<failure>``; a missed non-blocking one (severity warning or info)
  passes, with a ``<system-out>`` that says it was missed;
- a new regression is a ``<failure>`` when ``--hft-fail-on-regression`` is on, else ``<skipped>``
  ("regressed (report only)"): never a pass. A known regression (the baseline had regressed too) and
  an inconclusive measure are ``<skipped>`` with the reason; improved and unchanged pass.

Reads :mod:`pytest_hftk8s.results` (and raises from :mod:`pytest_hftk8s.errors`); the standard
library's ``xml.etree.ElementTree`` writes it.
"""

from __future__ import annotations

import datetime
import math
import pathlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.results import Comparison, MeasureComparison, SessionReport, SloResult, TestRecord

__all__ = ["COMPARE_SUITE", "SLO_SUITE", "JunitFileError", "append_to", "build", "write"]

SLO_SUITE = "hftk8s.slo"
COMPARE_SUITE = "hftk8s.compare"
_COUNTS = ("tests", "failures", "errors", "skipped")


class JunitFileError(ConfigError, ValueError):
    """The JUnit file to add the results to is missing, unreadable or not JUnit XML (most often: not
    the path given to ``--junitxml``). A :class:`~pytest_hftk8s.errors.ConfigError`, and a
    ``ValueError`` for callers outside the plugin."""


def build(report: SessionReport) -> ET.Element:
    """``<testsuites>``: the SLO suite, and the comparison suite when the run was compared."""
    root = ET.Element("testsuites", {"name": "pytest-hftk8s"})
    root.append(_slo_suite(report))
    if report.comparison is not None:
        root.append(_compare_suite(report.comparison, report))
    _total(root)
    return root


def write(report: SessionReport, path: pathlib.Path) -> pathlib.Path:
    """Write :func:`build`'s XML to ``path`` (e.g. ``hft-report/junit.xml``)."""
    root = build(report)
    ET.indent(root)
    _write(root, path)
    return path


def append_to(report: SessionReport, junit_path: pathlib.Path) -> None:
    """Add the suites of :func:`build` to an existing JUnit file (pytest's ``--junitxml``), keeping
    what is there; suites of an earlier call are replaced, not repeated. Run it after pytest wrote
    the file (its ``pytest_sessionfinish``)."""
    what = f"cannot add the pytest-hftk8s results to the JUnit file {junit_path}"
    try:
        tree = ET.parse(junit_path)
    except FileNotFoundError as e:
        raise JunitFileError(
            f"{what}: it does not exist. Expected the file pytest's --junitxml writes, written before the "
            "results are added; pass the same path to both, or write a separate file instead."
        ) from e
    except ET.ParseError as e:
        raise JunitFileError(
            f"{what}: it is not XML ({e}). Expected the JUnit XML pytest's --junitxml writes; "
            "delete the file and run again."
        ) from e
    except OSError as e:
        raise JunitFileError(f"{what}: it cannot be read ({e}); check its permissions.") from e
    root = tree.getroot()
    if root.tag == "testsuite":  # a lone suite: wrap it so ours can sit beside it
        wrapper = ET.Element("testsuites")
        wrapper.append(root)
        root = wrapper
    elif root.tag != "testsuites":
        raise JunitFileError(
            f"{what}: its root element is <{root.tag}>, expected <testsuites> or <testsuite>; "
            "is this the file pytest's --junitxml wrote?"
        )
    ours = build(report)
    for old in [s for s in root.findall("testsuite") if s.get("name") in (SLO_SUITE, COMPARE_SUITE)]:
        root.remove(old)
    for suite in ours.findall("testsuite"):
        ET.indent(suite, level=1)
        root.append(suite)
    if any(root.get(k) is not None for k in _COUNTS):  # keep the file's own totals true, if it has any
        _total(root)
    _write(root, junit_path)


def _write(root: ET.Element, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)


def _total(root: ET.Element) -> None:
    suites = root.findall("testsuite")
    for key in _COUNTS:
        root.set(key, str(sum(int(s.get(key) or 0) for s in suites)))
    root.set("time", f"{sum(float(s.get('time') or 0.0) for s in suites):.3f}")


def _suite(name: str, report: SessionReport, cases: Iterable[ET.Element]) -> ET.Element:
    cases = list(cases)
    suite = ET.Element("testsuite", {"name": name})
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    suite.set("time", f"{sum(float(c.get('time') or 0.0) for c in cases):.3f}")
    if report.started:
        suite.set("timestamp", _iso(report.started))
    if report.identity is not None and report.identity.machine:
        suite.set("hostname", report.identity.machine)
    suite.extend(cases)
    return suite


def _properties(case: ET.Element, values: dict[str, Any]) -> None:
    props = ET.SubElement(case, "properties")
    for name, value in values.items():
        if value is not None and value != "":
            ET.SubElement(props, "property", {"name": name, "value": _text(value)})


# -- SLOs ------------------------------------------------------------------------------------------


def _slo_suite(report: SessionReport) -> ET.Element:
    return _suite(SLO_SUITE, report, (_slo_case(t, s) for t in report.tests for s in t.slos))


def _slo_case(test: TestRecord, slo: SloResult) -> ET.Element:
    case = ET.Element(
        "testcase", {"classname": test.nodeid, "name": slo.name, "time": f"{slo.window.seconds:.3f}"}
    )
    _properties(
        case,
        {
            "observed": slo.observed,
            "threshold": f"{slo.comparator} {_text(slo.threshold)}",
            "unit": slo.unit,
            "severity": slo.severity,
            "query": slo.query,
        },
    )
    if slo.passed:
        return case
    unit = f" {slo.unit}" if slo.unit else ""
    summary = (
        f"{slo.name}: observed {_text(slo.observed)}{unit}, expected {slo.comparator} "
        f"{_text(slo.threshold)}{unit}"
    )
    detail = "\n".join(
        line
        for line in (
            summary,
            f"query: {slo.query}",
            f"window: {_iso(slo.window.start)} - {_iso(slo.window.end)} ({slo.window.seconds:.1f} s)",
            f"severity: {slo.severity}",
            slo.message,
        )
        if line
    )
    if slo.blocking:
        ET.SubElement(case, "failure", {"message": summary, "type": "SloViolation"}).text = detail
    else:
        ET.SubElement(
            case, "system-out"
        ).text = f"missed, but not blocking (severity {slo.severity}): the test passes\n{detail}"
    return case


# -- comparison ------------------------------------------------------------------------------------


def _compare_suite(c: Comparison, report: SessionReport) -> ET.Element:
    return _suite(COMPARE_SUITE, report, (_measure_case(m, c) for m in c.measures))


def _measure_case(m: MeasureComparison, c: Comparison) -> ET.Element:
    name = f"{m.load}::{m.measure}" if m.load else m.measure
    case = ET.Element("testcase", {"classname": m.test, "name": name, "time": "0"})
    _properties(
        case,
        {
            "verdict": "known regression" if m.verdict == "regressed" and m.known else m.verdict,
            "effect": _pct(m.effect),
            "ci": f"[{_pct(m.ci[0])}, {_pct(m.ci[1])}]" if m.ci is not None else None,
            "confidence": f"{c.confidence:.0%}",
            "min_effect": f"{max(m.min_effect, m.noise or 0.0):.1%}",
            "noise": f"{m.noise:.1%}" if m.noise is not None else None,
            "baseline": m.baseline,
            "current": m.current,
            "unit": m.unit,
            "better": m.better,
            "p_value": m.p_value,
            "samples": f"{m.n_baseline} / {m.n_current}",
            "method": m.method,
        },
    )
    change = (
        f"{m.measure} {_pct(m.effect) or '(no effect estimate)'}"
        + (f" [{_pct(m.ci[0])}, {_pct(m.ci[1])}]" if m.ci is not None else "")
        + f" against the baseline ({m.better} is better, minimum effect {max(m.min_effect, m.noise or 0.0):.1%})"
    )
    reason = f": {m.reason}" if m.reason else ""
    if m.verdict == "regressed" and not m.known:
        if c.fail_on_regression:
            ET.SubElement(
                case, "failure", {"message": f"regressed: {change}", "type": "Regression"}
            ).text = _measure_detail(m, c)
        else:
            ET.SubElement(
                case, "skipped", {"message": f"regressed (report only): {change}"}
            ).text = _measure_detail(m, c)
    elif m.verdict == "regressed":  # regressed in the baseline's own comparison too: not a new alert
        message = f"known regression: {change}{reason}"
        ET.SubElement(case, "skipped", {"message": message}).text = _measure_detail(m, c)
    elif m.verdict in ("improved", "unchanged"):
        ET.SubElement(case, "system-out").text = f"{m.verdict}: {change}{reason}"
    else:  # inconclusive, or a verdict this module does not know: not a pass
        ET.SubElement(case, "skipped", {"message": f"{m.verdict}{reason}"}).text = _measure_detail(m, c)
    return case


def _measure_detail(m: MeasureComparison, c: Comparison) -> str:
    base = c.baseline
    unit = f" {m.unit}" if m.unit else ""
    return "\n".join(
        line
        for line in (
            f"baseline {_text(m.baseline)}{unit}, current {_text(m.current)}{unit}",
            f"samples {m.n_baseline} / {m.n_current}, repeats {m.repeats_baseline} / {m.repeats_current}",
            f"p-value {m.p_value:.2g}" if m.p_value is not None else "",
            f"method: {m.method}" if m.method else "",
            m.reason,
            f"baseline run: {base.commit[:10] or 'no commit'} on {base.machine or '?'} {base.path}".rstrip(),
        )
        if line
    )


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{x:+.1%}"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else "no data"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return "no data" if value is None else str(value)


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).isoformat(timespec="seconds")
