"""SLO tests run against a real Prometheus (Debian's binary) scraping a real exporter process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from slo_servers import PROMETHEUS, Exporter, Prometheus, exporter_and_prometheus


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[Exporter, Prometheus]]:
    if shutil.which(PROMETHEUS) is None:
        pytest.skip(f"needs Debian's prometheus binary at {PROMETHEUS} (apt-get install prometheus)")
    with exporter_and_prometheus() as pair:
        yield pair


@pytest.fixture
def exporter(servers: tuple[Exporter, Prometheus]) -> Exporter:
    return servers[0]


@pytest.fixture
def prom(servers: tuple[Exporter, Prometheus]) -> Iterator[object]:
    from pytest_hftk8s.slo.prom import PromClient

    client = PromClient(servers[1].url)
    yield client
    client.close()
