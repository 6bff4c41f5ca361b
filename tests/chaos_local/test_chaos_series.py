"""``hftk8s_chaos_injected`` on the local cluster: the exporter serves it while the local chaos driver
has an experiment injected (1, then 0 once its duration is over, as kube-state-metrics shows a Chaos
Mesh object whose AllInjected turned False) and not after the experiment is removed. It is what the
dashboards' chaos annotation reads on both backends."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable

import pytest
from chaos_workloads import NEEDS_ROOT, http_server, wait_for

from pytest_hftk8s.chaos import pod_failure, pod_kill
from pytest_hftk8s.cluster.base import PodStatus
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos
from pytest_hftk8s.cluster.local.exporter import ChaosSample, MetricsSnapshot, render_kube_state
from pytest_hftk8s.slo import queries

SERIES = re.compile(r"^hftk8s_chaos_injected\{([^}]*)\} (\S+)$", re.MULTILINE)


def _chaos_series(text: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for labels, value in SERIES.findall(text):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[(pairs["namespace"], pairs["kind"], pairs["name"])] = float(value)
    return out


def _snapshot(*chaos: ChaosSample) -> MetricsSnapshot:
    pod = PodStatus(name="web-0", workload="web", phase="Running", ip="127.0.30.2", ready=True)
    return MetricsSnapshot(namespace="t", node="local", pods=(pod,), workloads=(), containers=(), chaos=chaos)


def test_the_exporter_shows_each_injected_experiment_like_kube_state_metrics() -> None:
    now = time.time()
    text = render_kube_state(
        _snapshot(
            ChaosSample("PodChaos", "hft-kill-web", until=None),  # a pod kill: injected until removed
            ChaosSample("StressChaos", "hft-cpu-web", until=now + 60),  # within its duration
            ChaosSample("NetworkChaos", "hft-delay-web", until=now - 1),  # recovered, not yet deleted
        )
    )
    assert "# TYPE hftk8s_chaos_injected gauge" in text
    assert _chaos_series(text) == {
        ("t", "PodChaos", "hft-kill-web"): 1.0,
        ("t", "StressChaos", "hft-cpu-web"): 1.0,
        ("t", "NetworkChaos", "hft-delay-web"): 0.0,
    }
    assert _chaos_series(render_kube_state(_snapshot())) == {}
    # the annotation's selector is the labels served here
    assert queries.CHAOS_INJECTED.render(namespace="t") == 'hftk8s_chaos_injected{namespace="t"} == 1'


def _scrape(cluster: LocalCluster) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(f"http://{cluster.exporter.address}/metrics", timeout=5) as answer:
        return _chaos_series(answer.read().decode())


@NEEDS_ROOT
@pytest.mark.slow
def test_a_local_experiment_is_served_while_injected_and_not_after(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web", replicas=2)])
    wait_for(lambda: all(w.is_available for w in cluster.workloads()), timeout=15, what="pods ready")
    chaos = chaos_on(cluster, seed=1)
    assert _scrape(cluster) == {}
    with chaos.inject(pod_failure(target="web", duration="2s")) as failure:
        assert _scrape(cluster) == {("t", "PodChaos", failure.name): 1.0}
        with chaos.inject(pod_kill(target="web")) as kill:
            assert _scrape(cluster) == {
                ("t", "PodChaos", failure.name): 1.0,
                ("t", "PodChaos", kill.name): 1.0,
            }
        assert _scrape(cluster) == {("t", "PodChaos", failure.name): 1.0}
        assert failure.injected_at is not None
        time.sleep(max(0.0, failure.injected_at + 2.2 - time.time()))
        assert _scrape(cluster) == {("t", "PodChaos", failure.name): 0.0}  # its duration is over
    assert _scrape(cluster) == {}
