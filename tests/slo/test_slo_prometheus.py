"""SLO evaluation against a real Prometheus scraping a real exporter whose counters the tests drive."""

from __future__ import annotations

import time

import pytest
from slo_servers import Exporter

from pytest_hftk8s.errors import SloViolation
from pytest_hftk8s.results import Window
from pytest_hftk8s.slo import builtin
from pytest_hftk8s.slo.evaluate import check, evaluate
from pytest_hftk8s.slo.model import Slo
from pytest_hftk8s.slo.prom import PromClient

pytestmark = pytest.mark.slow


def _settle() -> None:
    time.sleep(1.1)  # two scrapes at 500 ms: a series created now has a sample before the window


def _one_scrape() -> None:
    # increase()/rate() only see samples inside the range: a change made before the window's first
    # sample is invisible, so let one scrape land inside the window first.
    time.sleep(0.6)


def test_no_crashloop_passes_fails_and_reports_no_data(exporter: Exporter, prom: PromClient) -> None:
    for pod in ("backend-0", "engine-0"):
        exporter.ctl("set", "kube_pod_status_ready", namespace="clean", pod=pod, condition="true")
        exporter.ctl("set", "kube_pod_status_ready", namespace="crashy", pod=pod, condition="true")
    exporter.ctl(
        "set",
        "kube_pod_container_status_waiting_reason",
        namespace="crashy",
        pod="engine-0",
        container="engine",
        reason="CrashLoopBackOff",
    )
    start = time.time()
    time.sleep(1.6)
    window = Window(start, time.time())
    slo = [builtin.no_crashloop()]
    (clean,) = evaluate(slo, window, prom, variables={"namespace": "clean"})
    (crashy,) = evaluate(slo, window, prom, variables={"namespace": "crashy"})
    (absent,) = evaluate(slo, window, prom, variables={"namespace": "nobody-home"})
    assert (clean.passed, clean.observed) == (True, 0.0)
    assert (crashy.passed, crashy.observed) == (False, 1.0)
    assert (absent.passed, absent.observed) == (False, None)
    assert absent.message.startswith("no data: Prometheus returned no samples")
    with pytest.raises(SloViolation, match="no_crashloopbackoff: expected == 0, observed 1"):
        check([crashy])


def test_oomkilled_then_crashloop_in_order_reversed_and_not_seen(
    exporter: Exporter, prom: PromClient
) -> None:
    def reason(metric: str, ns: str, value: str) -> None:
        exporter.ctl("set", metric, namespace=ns, pod="backend-0", container="backend", reason=value)

    start = time.time()
    _one_scrape()
    reason("kube_pod_container_status_last_terminated_reason", "oom-in-order", "OOMKilled")
    reason("kube_pod_container_status_waiting_reason", "oom-reversed", "CrashLoopBackOff")
    reason("kube_pod_container_status_last_terminated_reason", "oom-only", "OOMKilled")
    time.sleep(1.1)
    reason("kube_pod_container_status_waiting_reason", "oom-in-order", "CrashLoopBackOff")
    reason("kube_pod_container_status_last_terminated_reason", "oom-reversed", "OOMKilled")
    time.sleep(1.1)
    window = Window(start, time.time())
    check_ = builtin.oom_then_crashloop(container="backend")
    results = {ns: evaluate([check_], window, prom, variables={"namespace": ns})[0]
               for ns in ("oom-in-order", "oom-reversed", "oom-only")}  # fmt: skip
    assert results["oom-in-order"].passed, results["oom-in-order"].message
    assert results["oom-in-order"].detail.oom_killed_at < results["oom-in-order"].detail.crashloop_at
    assert (results["oom-reversed"].passed, results["oom-reversed"].observed) == (False, "reversed")
    assert "came before OOMKilled" in results["oom-reversed"].message
    assert (results["oom-only"].passed, results["oom-only"].observed) == (False, "not seen")
    assert "CrashLoopBackOff at None" in results["oom-only"].message


def test_restarts_counted_only_inside_the_window(exporter: Exporter, prom: PromClient) -> None:
    labels = {"namespace": "restarts", "pod": "backend-0", "container": "backend"}
    exporter.ctl("inc", "kube_pod_container_status_restarts_total", value=0, **labels)
    exporter.ctl("set", "kube_pod_status_ready", namespace="restarts", pod="backend-0", condition="true")
    _settle()
    quiet_start = time.time()
    time.sleep(1.6)
    quiet = Window(quiet_start, time.time())
    _one_scrape()
    exporter.ctl("inc", "kube_pod_container_status_restarts_total", value=2, **labels)
    time.sleep(1.6)
    busy = Window(quiet.end, time.time())  # the increment happened after _one_scrape() below
    slo = [builtin.bounded_restarts(max_restarts=1)]
    (before,) = evaluate(slo, quiet, prom, variables={"namespace": "restarts"})
    (during,) = evaluate(slo, busy, prom, variables={"namespace": "restarts"})
    assert before.passed
    assert before.observed == pytest.approx(0.0)
    assert not during.passed
    assert during.observed >= 2.0  # increase() extrapolates to the window's edges: at least the real 2


def test_p99_latency_from_the_histogram(exporter: Exporter, prom: PromClient) -> None:
    import urllib.request

    start = time.time()
    _one_scrape()
    for _ in range(200):
        req = urllib.request.Request(f"{exporter.url}/v1/orders", data=b"{}", headers={"X-Latency": "0.03"})
        urllib.request.urlopen(req, timeout=5).close()
    time.sleep(1.6)
    window = Window(start, time.time())
    tight, loose = evaluate([builtin.p99_latency(max_ms=20), builtin.p99_latency(max_ms=60)], window, prom)
    # every observation sits in the (20 ms, 50 ms] bucket: histogram_quantile interpolates inside it
    assert 20.0 < tight.observed <= 50.0
    assert not tight.passed
    assert loose.passed
    assert tight.unit == "ms"


def test_custom_slo_with_between_and_oneof(exporter: Exporter, prom: PromClient) -> None:
    exporter.ctl("set", "kube_pod_status_ready", namespace="custom", pod="a", condition="true")
    exporter.ctl("set", "kube_pod_status_ready", namespace="custom", pod="b", condition="true")
    _settle()
    window = Window(time.time() - 1.0, time.time())
    expr = 'count(kube_pod_status_ready{namespace="custom"})'
    results = evaluate(
        [
            Slo(name="two_pods", expr=expr, comparator="oneOf", threshold=[2, 4]),
            Slo(name="few_pods", expr=expr, comparator="between", threshold=[0, 1]),
        ],
        window,
        prom,
    )
    assert [(r.name, r.observed, r.passed) for r in results] == [
        ("two_pods", 2.0, True),
        ("few_pods", 2.0, False),
    ]


def test_unreachable_prometheus_is_no_data() -> None:
    from slo_servers import free_port

    client = PromClient(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    (result,) = evaluate(
        [builtin.bounded_restarts()],
        Window(0, 10),
        client,
        variables={"namespace": "x"},
        settle_timeout_s=0.2,
    )
    assert not result.passed
    assert "no data: Prometheus at http://127.0.0.1:" in result.message


def test_missing_variable_is_no_data_not_a_crash(prom: PromClient) -> None:
    (result,) = evaluate([builtin.throughput()], Window(time.time() - 2, time.time()), prom)
    assert not result.passed
    assert "needs $offered_rate" in result.message
