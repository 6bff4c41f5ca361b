"""kube-burner alert profiles loaded from a YAML file and judged against a real Prometheus.

An alert fires when its range query returns any sample in the window; a silent alert passes only if
the series it reads exist ("no data" fails). Which series are needed depends on the operators:
both sides of ``and``, only the left side of ``unless``, nothing inside ``absent()``. Every test
drives series of its own pod (a uuid name), so tests sharing the session's exporter never meet.
"""

from __future__ import annotations

import pathlib
import time
import uuid

import pytest
from slo_servers import Exporter

from pytest_hftk8s.errors import SloViolation
from pytest_hftk8s.results import SloResult, Window
from pytest_hftk8s.slo.evaluate import check, evaluate
from pytest_hftk8s.slo.model import Alert
from pytest_hftk8s.slo.profile import load_file
from pytest_hftk8s.slo.prom import PromClient

pytestmark = pytest.mark.slow

NS = "alert-profiles"
READY = "kube_pod_status_ready"
WAITING = "kube_pod_container_status_waiting_reason"
RESTARTS = "kube_pod_container_status_restarts_total"


def _pod() -> str:
    return f"alert-{uuid.uuid4().hex[:12]}"


def _profile(tmp_path: pathlib.Path, pod: str, never: str) -> pathlib.Path:
    """A kube-burner alert profile about ``pod``; ``never`` names a pod nothing ever exports."""
    path = tmp_path / "alerts.yml"
    path.write_text(
        f"""\
- expr: up{{job="exporter"}} == 0
  description: exporter down
  severity: error
- expr: increase({RESTARTS}{{namespace="$namespace",pod="{pod}"}}[{{{{.elapsed}}}}]) > 0
  description: restarts
  severity: error
- expr: {WAITING}{{pod="{pod}",reason="CrashLoopBackOff"}} > 0
  description: crashloop
  severity: critical
- expr: {READY}{{pod="{pod}",condition="true"}} == 0 and on(pod) {WAITING}{{pod="{pod}",reason="CrashLoopBackOff"}} > 0
  description: not ready and crashlooping
  severity: error
- expr: {READY}{{pod="{pod}",condition="true"}} == 0 unless on(pod) {WAITING}{{pod="{pod}",reason="ContainerCreating"}} > 0
  description: not ready unless creating
  severity: error
- expr: {WAITING}{{pod="{never}",reason="CrashLoopBackOff"}} > 0
  description: crashloop of a pod never exported
  severity: error
"""
    )
    return path


def _export_healthy(exporter: Exporter, pod: str) -> None:
    """Ready, not crash-looping, no restarts - and every series exists before the window opens."""
    exporter.ctl("set", READY, value=1, namespace=NS, pod=pod, condition="true")
    exporter.ctl("set", WAITING, value=0, namespace=NS, pod=pod, container="c", reason="CrashLoopBackOff")
    exporter.ctl("inc", RESTARTS, value=0, namespace=NS, pod=pod, container="c")
    time.sleep(1.1)  # two scrapes at 500 ms: the series have samples before the window


def _window(seconds: float = 2.1) -> Window:
    start = time.time()
    time.sleep(seconds)  # range query steps at start, start+1 s, start+2 s
    return Window(start, time.time())


def _by_name(results: list[SloResult]) -> dict[str, SloResult]:
    return {r.name: r for r in results}


def test_profile_loads_and_silent_alerts_with_series_pass(
    tmp_path: pathlib.Path, exporter: Exporter, prom: PromClient
) -> None:
    pod, never = _pod(), _pod()
    alerts = load_file(_profile(tmp_path, pod, never))
    assert [a.name for a in alerts] == [
        "exporter_down",
        "restarts",
        "crashloop",
        "not_ready_and_crashlooping",
        "not_ready_unless_creating",
        "crashloop_of_a_pod_never_exported",
    ]
    assert all(isinstance(a, Alert) for a in alerts)
    assert alerts[0].expr == 'up{job="exporter"} == 0'  # once rejected: "no trailing alert comparison"
    assert alerts[2].severity == "critical"

    _export_healthy(exporter, pod)
    results = _by_name(evaluate(alerts[:5], _window(), prom, variables={"namespace": NS}))
    for name, r in results.items():
        assert (name, r.passed, r.observed, r.message) == (name, True, 0, "")
    ready = f'{READY}{{pod="{pod}",condition="true"}}'
    crashloop = f'{WAITING}{{pod="{pod}",reason="CrashLoopBackOff"}}'
    assert results["exporter_down"].extra["required_series"] == 'up{job="exporter"}'
    assert results["restarts"].query.startswith(f'increase({RESTARTS}{{namespace="{NS}",pod="{pod}"}}[')
    assert results["restarts"].extra["required_series"] == f'{RESTARTS}{{namespace="{NS}",pod="{pod}"}}'
    assert results["not_ready_and_crashlooping"].extra["required_series"] == f"all({ready}, {crashloop})"
    # the right side of unless (a ContainerCreating series) was never exported and is not needed
    assert results["not_ready_unless_creating"].extra["required_series"] == ready
    check(list(results.values()))  # nothing blocking missed: no SloViolation


def test_firing_alerts_fail_and_say_what_fired(
    tmp_path: pathlib.Path, exporter: Exporter, prom: PromClient
) -> None:
    pod = _pod()
    alerts = load_file(_profile(tmp_path, pod, _pod()))[:5]
    _export_healthy(exporter, pod)
    start = time.time()
    exporter.ctl("set", READY, value=0, namespace=NS, pod=pod, condition="true")
    exporter.ctl("set", WAITING, value=1, namespace=NS, pod=pod, container="c", reason="CrashLoopBackOff")
    time.sleep(2.1)
    results = _by_name(evaluate(alerts, Window(start, time.time()), prom, variables={"namespace": NS}))

    assert results["exporter_down"].passed
    assert results["restarts"].passed
    for name in ("crashloop", "not_ready_and_crashlooping", "not_ready_unless_creating"):
        r = results[name]
        assert not r.passed, name
        assert isinstance(r.observed, int), name
        assert r.observed >= 1, name  # firing samples: the steps after the first scrape of the change
        assert r.message.startswith("fired: 1 series returned samples in the window, first "), name
    crashloop = results["crashloop"].message
    assert f"namespace={NS},pod={pod},reason=CrashLoopBackOff" in crashloop
    assert "= 1 at " in crashloop
    assert crashloop.endswith("(crashloop)")  # the entry's description
    # "and" keeps the left side's sample: the readiness series, value 0
    combined = results["not_ready_and_crashlooping"].message
    assert "condition=true,instance=" in combined
    assert f"pod={pod} = 0 at " in combined
    assert combined.endswith("(not ready and crashlooping)")
    # "unless" with nothing on its right side lets the left side through: it fires too
    assert f"pod={pod} = 0 at " in results["not_ready_unless_creating"].message
    with pytest.raises(SloViolation, match=r"3 SLO\(s\) did not hold") as info:
        check(list(results.values()))
    assert "crashloop: expected fires never, observed " in str(info.value)


def test_missing_series_is_no_data(tmp_path: pathlib.Path, exporter: Exporter, prom: PromClient) -> None:
    pod, never = _pod(), _pod()
    never_crashloop = f'{WAITING}{{pod="{never}",reason="CrashLoopBackOff"}}'
    path = tmp_path / "alerts.yml"
    path.write_text(
        f"""\
- expr: {never_crashloop} > 0
  description: crashloop of a pod never exported
  severity: error
- expr: {READY}{{pod="{pod}",condition="true"}} == 0 and on(pod) {never_crashloop} > 0
  description: not ready and crashlooping
  severity: error
"""
    )
    alerts = load_file(path)
    _export_healthy(exporter, pod)
    alone, combined = evaluate(alerts, _window(), prom, variables={"namespace": NS})

    assert (alone.passed, alone.observed) == (False, None)
    assert alone.message == (
        "no data: the alert stayed silent, but the series it reads do not exist in the window: "
        f"{never_crashloop}; check the exporter and the scrape targets"
    )
    assert alone.extra["required_series"] == never_crashloop
    # both sides of "and" are needed: the existing readiness series is not reported, the other is
    assert (combined.passed, combined.observed) == (False, None)
    assert combined.message.startswith("no data: the alert stayed silent")
    assert f": {never_crashloop}; check" in combined.message
    assert READY not in combined.message
    with pytest.raises(SloViolation, match="observed no data"):
        check([alone])


def test_unless_needs_only_its_left_side(
    tmp_path: pathlib.Path, exporter: Exporter, prom: PromClient
) -> None:
    pod, never = _pod(), _pod()
    creating = f'{WAITING}{{pod="{pod}",reason="ContainerCreating"}}'
    path = tmp_path / "alerts.yml"
    path.write_text(
        f"""\
- expr: {READY}{{pod="{pod}",condition="true"}} == 0 unless on(pod) {creating} > 0
  description: right side absent
- expr: {READY}{{pod="{never}",condition="true"}} == 0 unless on(pod) {WAITING}{{pod="{pod}",reason="CrashLoopBackOff"}} > 0
  description: left side absent
- expr: {READY}{{pod="{pod}",condition="true"}} == 0 unless on(pod) {WAITING}{{pod="{pod}",reason="CrashLoopBackOff"}} >= 0
  description: right side present
"""
    )
    right_absent, left_absent, right_present = load_file(path)
    _export_healthy(exporter, pod)
    results = evaluate(
        [right_absent, left_absent, right_present], _window(), prom, variables={"namespace": NS}
    )
    assert [(r.passed, r.observed) for r in results] == [(True, 0), (False, None), (True, 0)]
    assert results[1].message.startswith("no data: the alert stayed silent")
    assert f'{READY}{{pod="{never}",condition="true"}}; check' in results[1].message
    assert WAITING not in results[1].message  # the right side exists anyway; only the left is named

    # Not ready now: the alert whose right side is absent fires (unless removes nothing), the one
    # whose right side matches the pod stays silent - the right side is a filter, not a requirement.
    start = time.time()
    exporter.ctl("set", READY, value=0, namespace=NS, pod=pod, condition="true")
    time.sleep(2.1)
    fired, _, filtered = evaluate(
        [right_absent, left_absent, right_present],
        Window(start, time.time()),
        prom,
        variables={"namespace": NS},
    )
    assert not fired.passed
    assert fired.observed >= 1
    assert fired.message.startswith("fired: ")
    assert (filtered.passed, filtered.observed) == (True, 0)


def test_absent_fires_when_its_series_is_missing(
    tmp_path: pathlib.Path, exporter: Exporter, prom: PromClient
) -> None:
    pod, never = _pod(), _pod()
    path = tmp_path / "alerts.yml"
    path.write_text(
        f"""\
- expr: absent({READY}{{pod="{pod}",condition="true"}})
  description: readiness of the pod not exported
- expr: absent({READY}{{pod="{never}",condition="true"}})
  description: readiness of a pod never exported
- expr: absent_over_time({READY}{{pod="{never}",condition="true"}}[{{{{.elapsed}}}}])
  description: readiness of a pod never exported over the window
"""
    )
    present, missing, missing_over_time = load_file(path)
    _export_healthy(exporter, pod)
    results = evaluate([present, missing, missing_over_time], _window(), prom, variables={"namespace": NS})

    assert (results[0].passed, results[0].observed, results[0].message) == (True, 0, "")
    assert results[0].extra["required_series"] == ""  # absent() needs nothing: its silence is the point
    for r in results[1:]:
        assert not r.passed, r.name
        assert r.observed is not None, r.name  # it fired: that is not "no data"
        assert r.observed >= 2, r.name  # absent from the first step on: every step fires
        assert r.message.startswith("fired: 1 series returned samples in the window, first "), r.name
        # absent() returns the equality matchers of its selector as labels
        assert f"condition=true,pod={never} = 1 at " in r.message, r.name


def test_regex_selectors_with_escapes_are_checked(
    tmp_path: pathlib.Path, exporter: Exporter, prom: PromClient
) -> None:
    # A PromQL string escapes its backslashes: "-\\d+" is the regex -\d+. The selector handed to
    # Prometheus to check that the series exist must keep that escaping, or the check itself fails.
    pod = _pod()
    path = tmp_path / "alerts.yml"
    path.write_text(
        f"""\
- expr: {READY}{{pod=~"{pod[:-2]}\\\\w{{2}}",condition="true"}} == 0
  description: not ready
- expr: {READY}{{pod=~"{pod}\\\\.never",condition="true"}} == 0
  description: not ready, no such pod
"""
    )
    (exists, never) = load_file(path)
    assert "\\\\w{2}" in exists.expr
    _export_healthy(exporter, pod)
    exists_result, never_result = evaluate([exists, never], _window(), prom)
    assert (exists_result.passed, exists_result.observed, exists_result.message) == (True, 0, "")
    assert (
        exists_result.extra["required_series"] == f'{READY}{{pod=~"{pod[:-2]}\\\\w{{2}}",condition="true"}}'
    )
    assert (never_result.passed, never_result.observed) == (False, None)
    assert f'{READY}{{pod=~"{pod}\\\\.never",condition="true"}}; check' in never_result.message
