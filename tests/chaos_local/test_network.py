"""NetworkChaos on the local cluster: a fault proxy behind the Service name, measured from inside a pod."""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from chaos_workloads import NEEDS_ROOT, PY, deployment, http_server, service, wait_for

from pytest_hftk8s.chaos import network_delay, network_loss
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos

pytestmark = [NEEDS_ROOT, pytest.mark.slow]

#: Run inside the client pod: N fresh-connection GETs of http://web:8080/, each timed or failed.
CLIENT = """
import json, sys, time, urllib.request
out = []
for _ in range(int(sys.argv[1])):
    t = time.monotonic()
    try:
        urllib.request.urlopen("http://web:8080/", timeout=3).read()
        out.append(time.monotonic() - t)
    except OSError as e:
        out.append(repr(e))
print(json.dumps(out))
"""


def _requests(cluster: LocalCluster, client_pod: str, n: int) -> list[Any]:
    pid = cluster.container_pids(client_pod)["client"]
    done = subprocess.run(
        ["nsenter", "-m", "-u", "-t", str(pid), PY, "-c", CLIENT, str(n)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


def _times(results: list[Any]) -> list[float]:
    assert all(isinstance(r, float) for r in results), results
    return [float(r) for r in results]


@pytest.fixture
def web_and_client(make_cluster: Callable[..., LocalCluster]) -> tuple[LocalCluster, str, str]:
    cluster = make_cluster()
    cluster.apply(
        [
            http_server("web"),
            service("web", port=8080, target="http"),
            deployment("client", ["sleep", "120"]),
        ]
    )
    wait_for(lambda: all(w.is_available for w in cluster.workloads()), timeout=15, what="pods ready")
    pods = {p.workload: p.name for p in cluster.pods()}
    return cluster, pods["web"], pods["client"]


def test_delay_adds_latency_through_the_service_name_and_is_removed(
    web_and_client: tuple[LocalCluster, str, str], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster, web, client = web_and_client
    web_ip = next(p.ip for p in cluster.pods() if p.name == web)
    baseline = statistics.median(_times(_requests(cluster, client, 5)))
    with chaos_on(cluster).inject(network_delay(target="web", latency="150ms", duration="60s")) as run:
        proxied = cluster.resolve_in_pod(client, "web")
        assert proxied != [web_ip]  # the Service name now leads to the proxy ...
        assert cluster.resolve_in_pod(client, web) == [web_ip]  # ... the pod's own name does not
        assert cluster.service_address("web", "http").host == proxied[0]
        delayed = _times(_requests(cluster, client, 5))
    # direction "to": the SYN-ACK and the response leave the target 150 ms late -> ~300 ms per request
    added = statistics.median(delayed) - baseline
    assert 0.27 <= added <= 0.6, (baseline, delayed)
    assert min(delayed) >= 0.29
    assert cluster.resolve_in_pod(client, "web") == [web_ip]  # restored
    assert cluster.service_address("web", "http").host == web_ip
    assert statistics.median(_times(_requests(cluster, client, 3))) < baseline + 0.1
    assert "proxy stopped: 5 connections" in run.records[0]["events"][-1]


def test_loss_drops_connections_and_jitter_spreads_delay(
    web_and_client: tuple[LocalCluster, str, str], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster, _web, client = web_and_client
    chaos = chaos_on(cluster, seed=3)
    with chaos.inject(network_loss(target="web", loss=100)):
        results = _requests(cluster, client, 4)
    assert all(isinstance(r, str) for r in results), results  # every connection reset
    with chaos.inject(network_loss(target="web", loss=50)):
        results = _requests(cluster, client, 30)
    failed = sum(isinstance(r, str) for r in results)
    assert 5 <= failed <= 25, results  # about half (binomial: outside this band p < 1e-3)
    with chaos.inject(network_delay(target="web", latency="100ms", jitter="80ms")):
        spread = _times(_requests(cluster, client, 8))
    assert max(spread) - min(spread) > 0.08, spread
    assert all(isinstance(r, float) for r in _requests(cluster, client, 3))  # all gone again
