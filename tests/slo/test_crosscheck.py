"""Cross-check: for one window, Prometheus' throughput and the load generator's own count agree
within 2%. The generator drives a real HTTP server that counts accepted orders with
prometheus_client; a real Prometheus scrapes it."""

from __future__ import annotations

import pytest
from slo_servers import Exporter

from pytest_hftk8s.load.api import order_body, order_request
from pytest_hftk8s.load.driver import LoadDriver
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.evaluate import evaluate
from pytest_hftk8s.slo.model import Slo
from pytest_hftk8s.slo.prom import PromClient

pytestmark = pytest.mark.slow


def test_prometheus_throughput_matches_generator_count_within_2_percent(
    exporter: Exporter, prom: PromClient, tmp_path
) -> None:
    driver = LoadDriver(("127.0.0.1", exporter.port), results_dir=tmp_path)
    host = f"127.0.0.1:{exporter.port}"

    def make(seq: int) -> bytes:
        body = order_body(
            client_order_id=f"x-{seq}", symbol="AAPL", side="buy", kind="limit", qty=1, price=99.0
        )
        return order_request(body, api_key="k", host=host)

    with driver.constant_rate(rate=800, duration=6, make_request=make, connections=8) as run:
        pass
    summary = run.summary
    assert summary is not None
    assert summary.valid, summary.invalid_reasons
    assert summary.errors == {}
    window = summary.order_window
    own_rate = summary.ok / window.seconds
    (prom_rate,) = evaluate(
        [Slo(name="rate", expr=queries.ACCEPTED_RATE.expr, comparator=">", threshold=0)],
        window,
        prom,
    )
    deviation = abs(prom_rate.observed / own_rate - 1)
    print(
        f"cross-check: prometheus {prom_rate.observed:.1f}/s, generator {own_rate:.1f}/s, deviation {deviation:.2%}"
    )
    assert deviation <= 0.02, (prom_rate.observed, own_rate)
    assert (tmp_path / pathlib_name(summary.results_file)).exists()


def pathlib_name(path: str) -> str:
    import pathlib

    return pathlib.Path(path).name
