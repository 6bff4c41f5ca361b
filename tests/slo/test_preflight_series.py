"""The Prometheus side of the preflight against a real Prometheus: first without kube-state-metrics
or cAdvisor series at all, then with them for another namespace only, then with them arriving late."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from slo_servers import PROMETHEUS, Exporter, Prometheus, exporter_and_prometheus

from pytest_hftk8s.slo.preflight import CADVISOR_SERIES_CHECK, KSM_SERIES_CHECK, series_checks
from pytest_hftk8s.slo.prom import PromClient


@pytest.fixture(scope="module")
def fresh() -> Iterator[tuple[Exporter, Prometheus]]:
    """A Prometheus of its own: no other test has exported cluster series to it."""
    if shutil.which(PROMETHEUS) is None:
        pytest.skip(f"needs Debian's prometheus binary at {PROMETHEUS} (apt-get install prometheus)")
    with exporter_and_prometheus() as pair:
        yield pair


@pytest.mark.slow
def test_missing_then_elsewhere_then_arriving(fresh: tuple[Exporter, Prometheus]) -> None:
    exporter, server = fresh
    prom = PromClient(server.url)
    try:
        # 1. A Prometheus that scrapes the platform but no kube-state-metrics and no cAdvisor.
        rows = {r.check: r for r in series_checks(prom, namespace="hft")}
        ksm, cadvisor = rows[KSM_SERIES_CHECK], rows[CADVISOR_SERIES_CHECK]
        assert not ksm.ok
        assert ksm.blocking
        assert ksm.found == f"Prometheus at {server.url} has no kube_pod_status_ready series at all"
        assert ksm.action.startswith("deploy kube-state-metrics")
        assert f"{server.url}/targets" in ksm.action
        assert (
            cadvisor.found
            == f"Prometheus at {server.url} has no container_cpu_usage_seconds_total series at all"
        )
        assert "/api/v1/nodes/<node>/proxy/metrics/cadvisor" in cadvisor.action

        # 2. Series for another namespace only (an exporter limited to it, or our pods not running).
        exporter.ctl(
            "set", "kube_pod_status_ready", value=1, namespace="other", pod="web-0", condition="true"
        )
        assert prom.wait_scraped_past(time.time(), timeout_s=10)
        ksm = series_checks(prom, namespace="hft")[0]
        assert not ksm.ok
        assert ksm.found == "no kube_pod_status_ready series for namespace hft; there are some for: other"
        assert "kube-state-metrics --namespaces" in ksm.action

        # 3. The namespace's series arrive while the check waits (first scrapes after the pods start).
        def arrive() -> None:
            time.sleep(1.0)
            exporter.ctl(
                "set", "kube_pod_status_ready", value=1, namespace="hft", pod="backend-0", condition="true"
            )
            exporter.ctl(
                "inc",
                "container_cpu_usage_seconds_total",
                value=2,
                namespace="hft",
                pod="backend-0",
                container="backend",
            )

        late = threading.Thread(target=arrive)
        started = time.monotonic()
        late.start()
        rows = {r.check: r for r in series_checks(prom, namespace="hft", timeout_s=10, poll_s=0.2)}
        elapsed = time.monotonic() - started
        late.join()
        assert rows[KSM_SERIES_CHECK].ok, rows[KSM_SERIES_CHECK]
        assert rows[KSM_SERIES_CHECK].found == "1 kube_pod_status_ready series in hft"
        assert rows[CADVISOR_SERIES_CHECK].found == "1 container_cpu_usage_seconds_total series in hft"
        assert 1.0 <= elapsed < 5.0
    finally:
        prom.close()


def test_an_unreachable_prometheus_is_one_row() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed
    prom = PromClient(url, timeout_s=1.0)
    try:
        started = time.monotonic()
        rows = series_checks(prom, namespace="hft", timeout_s=30)
    finally:
        prom.close()
    assert [r.check for r in rows] == ["Prometheus"]
    assert not rows[0].ok
    assert rows[0].found.startswith(
        f"Prometheus at {url} failed on 'count(kube_pod_status_ready{{namespace=\"hft\"}})'"
    )
    assert url in rows[0].action
    assert time.monotonic() - started < 3  # a refused connection is not waited on
