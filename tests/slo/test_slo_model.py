"""SLO comparators, thresholds, placeholders and the two SLO sources (marker kwargs, YAML profiles)."""

from __future__ import annotations

import math
import pathlib

import pytest

from pytest_hftk8s.errors import ConfigError, SloViolation
from pytest_hftk8s.results import SloResult, Window
from pytest_hftk8s.slo import builtin
from pytest_hftk8s.slo.evaluate import check
from pytest_hftk8s.slo.model import Alert, Slo, compare
from pytest_hftk8s.slo.profile import from_marker, load_file, parse_profile


@pytest.mark.parametrize(
    ("observed", "comparator", "threshold", "expected"),
    [
        (0.96, ">=", 0.95, True),
        (0.95, ">=", 0.95, True),
        (0.94, ">=", 0.95, False),
        (10.0, "<=", 10.0, True),
        (10.1, "<=", 10.0, False),
        (1.0, ">", 1.0, False),
        (0.9, "<", 1.0, True),
        (0.0, "==", 0, True),
        (1e-15, "==", 0, True),
        (0.5, "==", 0, False),
        (5.0, "between", [1, 5], True),
        (5.1, "between", [1, 5], False),
        (2.0, "oneOf", [1, 2, 3], True),
        (2.5, "oneOf", [1, 2, 3], False),
        (math.nan, ">=", 0, False),
        (math.nan, "<=", 1e9, False),
    ],
)
def test_compare(observed: float, comparator: str, threshold: object, expected: bool) -> None:
    assert compare(observed, comparator, threshold) is expected


@pytest.mark.parametrize(
    ("comparator", "threshold", "needle"),
    [
        ("~=", 1, "comparator must be one of"),
        (">=", "high", "needs a number"),
        (">=", math.inf, "needs a number"),
        ("between", [5, 1], "low <= high"),
        ("between", [1], "[low, high]"),
        ("oneOf", [], "non-empty list"),
        (">=", True, "needs a number"),
    ],
)
def test_bad_thresholds_are_config_errors(comparator: str, threshold: object, needle: str) -> None:
    with pytest.raises(ConfigError, match="SLO 'x'") as info:
        Slo(name="x", expr="up", comparator=comparator, threshold=threshold)
    assert needle in str(info.value)


def test_render_fills_window_namespace_and_offered_rate() -> None:
    slo = builtin.throughput()
    query = slo.render(Window(100.0, 112.2), variables={"offered_rate": 2000})
    assert query == 'sum(rate(hft_orders_total{outcome="accepted"}[12200ms])) / 2000'
    crash = builtin.no_crashloop().render(Window(0, 5), variables={"namespace": "hft-a"})
    assert '{namespace="hft-a",reason="CrashLoopBackOff"}[5000ms]' in crash
    assert "$" not in crash


def test_kube_burner_elapsed_placeholder() -> None:
    slo = Slo(name="x", expr="rate(up[{{.elapsed}}])", comparator=">=", threshold=0)
    assert slo.render(Window(0, 30)) == "rate(up[30000ms])"


def test_builtin_names_and_parameters() -> None:
    assert builtin.builtin("p99_latency", max_ms=20).threshold == 20
    with pytest.raises(ConfigError, match="unknown built-in SLO 'p98'"):
        builtin.builtin("p98")
    with pytest.raises(ConfigError, match="bad parameters"):
        builtin.builtin("throughput", max_ms=3)
    names = [s.name for s in builtin.baseline()]
    assert names == [
        "throughput",
        "registration_success",
        "p99_order_latency_ms",
        "client_p99_latency_ms",
        "no_crashloopbackoff",
        "bounded_restarts",
        "no_oomkilled",
    ]
    assert builtin.builtin("client_p99_latency", max_ms=80).max_ms == 80


def test_marker_forms() -> None:
    (p99,) = from_marker(("p99_latency",), {"max_ms": 12})
    assert (p99.comparator, p99.threshold) == ("<=", 12)
    (custom,) = from_marker(
        (), {"name": "fills", "expr": "sum(hft_fills_total)", "comparator": ">", "threshold": 0}
    )
    assert custom.name == "fills"
    assert from_marker((p99, custom), {}) == [p99, custom]
    with pytest.raises(ConfigError, match="missing comparator, threshold"):
        from_marker((), {"name": "x", "expr": "up"})
    with pytest.raises(ConfigError, match="not a built-in SLO"):
        from_marker(("nope",), {})


def test_alert_profile_entries_are_kube_burner_alerts(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "alerts.yml"
    path.write_text(
        """
- expr: 1000 * histogram_quantile(0.99, sum by (le) (rate(hft_order_latency_seconds_bucket[{{.elapsed}}]))) > 50
  description: p99 order latency above 50 ms
  severity: error
- expr: up{job="kube-state-metrics"} == 0
  description: kube-state-metrics is down
  severity: warning
- name: accepted
  expr: sum(increase(hft_orders_total{outcome="accepted"}[$window]))
  comparator: between
  threshold: [1, 1000000000]
"""
    )
    p99, down, accepted = load_file(path)
    assert isinstance(p99, Alert)
    assert p99.name == "p99_order_latency_above_50_ms"
    assert p99.blocking
    assert p99.expr.endswith("[{{.elapsed}}]))) > 50")  # the whole alert, comparison included
    assert isinstance(down, Alert)
    assert down.expr == 'up{job="kube-state-metrics"} == 0'  # "== 0" alerts load too
    assert not down.blocking
    assert isinstance(accepted, Slo)
    assert (accepted.comparator, accepted.threshold) == ("between", [1, 1000000000])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[]", "non-empty YAML list"),
        ("- expr: sum(rate(up[5m])\n  description: a typo", "is not valid PromQL"),
        ("- expr: up > 1\n  severity: fatal", "severity must be"),
        ("- expr: up > 1\n  colour: red", "unknown keys ['colour']"),
        ("- expr: up\n  comparator: '>='", "give both 'comparator' and 'threshold'"),
        ("- expr: ''\n  threshold: 1\n  comparator: '>'", "non-empty PromQL"),
        ("- {expr: up > 1, name: a}\n- {expr: up > 2, name: a}", "appears twice"),
        ("- expr: [unclosed", "not valid YAML"),
    ],
)
def test_bad_profiles_say_what_is_wrong(tmp_path: pathlib.Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_profile_mapping_form() -> None:
    (alert,) = parse_profile({"slos": [{"expr": "up < 1", "description": "target down"}]})
    assert isinstance(alert, Alert)
    assert (alert.name, alert.expr) == ("target_down", "up < 1")


def _result(passed: bool, severity: str = "error", observed: float | None = 0.5) -> SloResult:
    return SloResult(
        name="throughput",
        query="sum(rate(x[10s]))",
        comparator=">=",
        threshold=0.95,
        observed=observed,
        passed=passed,
        window=Window(0.0, 10.0),
        severity=severity,
    )


def test_violation_message_shows_query_observed_threshold_and_report() -> None:
    with pytest.raises(SloViolation) as info:
        check([_result(False), _result(True)], report_path="hft-report/index.html")
    text = str(info.value)
    assert "1 SLO(s) did not hold" in text
    assert "expected >= 0.95, observed 0.5" in text
    assert "query: sum(rate(x[10s]))" in text
    assert "report: hft-report/index.html" in text
    assert isinstance(info.value, AssertionError)


def test_warnings_and_passes_do_not_fail() -> None:
    check([_result(True), _result(False, severity="warning")])


def test_no_data_reads_as_no_data() -> None:
    with pytest.raises(SloViolation, match="observed no data"):
        check([_result(False, observed=None)])
