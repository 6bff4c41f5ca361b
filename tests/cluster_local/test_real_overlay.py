"""The real ``local`` overlay on the local cluster: every pod Ready, DNS, nginx -> backend, Prometheus scraping."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable
from importlib.util import find_spec

import pytest
from local_workloads import NEEDS_ROOT, alive, hft_cgroups, wait_for

from pytest_hftk8s import manifests
from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.slo.database import db_password

pytestmark = [
    NEEDS_ROOT,
    pytest.mark.slow,
    pytest.mark.skipif(
        find_spec("hft_platform") is None or find_spec("hft_engine") is None,
        reason="the platform services (hft_platform, hft_engine) are not installed: pip install -e .",
    ),
]


def _query(prometheus: str, expr: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]["result"]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status


def test_local_overlay_becomes_ready_serves_and_is_scraped(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(backoff_scale=1.0)
    objects = with_db_secret(manifests.render("local"), password=new_password(), secret_name=None)
    cluster.apply(objects)  # rendered for namespace hft; lands in "t" like on kubernetes
    wait_for(
        lambda: all(w.is_available for w in cluster.workloads()), timeout=45, what="every workload available"
    )
    assert isinstance(cluster, Cluster)
    pods = {p.workload: p for p in cluster.pods()}
    assert set(pods) == {"backend", "engine", "nginx", "prometheus", "postgres", "redis"}
    # A platform container may restart once if it loses a start-up race (kubelet restarts the first
    # crash at once); more than that, or an OOM kill, is a deployment problem.
    restarts = {
        p.name: (c.restart_count, c.last_terminated_reason, cluster.pod_logs(p.name, tail=20))
        for p in pods.values()
        for c in p.containers
        if c.restart_count
    }
    assert all(n <= 1 and reason != "OOMKilled" for n, reason, _ in restarts.values()), restarts

    # Cluster DNS as the backend sees it: each Service name is its pod's loopback address.
    for name in ("postgres", "redis", "engine", "backend"):
        assert cluster.resolve_in_pod(pods["backend"].name, name) == [pods[name].ip]
    assert cluster.resolve_in_pod(pods["nginx"].name, "backend.t.svc.cluster.local") == [pods["backend"].ip]

    # PostgreSQL honours POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB over TCP, like the official image.
    password = db_password(objects)
    pg = cluster.service_address("postgres", 5432)
    for pw, expected in ((password, 0), ("wrong", 2)):
        psql = subprocess.run(
            ["/usr/lib/postgresql/15/bin/psql", "-h", pg.host, "-p", str(pg.port), "-U", "hft", "-d", "hft", "-tAc", "select current_database()"],
            env={**os.environ, "PGPASSWORD": pw}, capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        assert psql.returncode == expected, psql.stderr
    assert psql.stderr
    assert "password authentication failed" in psql.stderr

    nginx = cluster.service_address("nginx", "http")
    assert _get(nginx.url + "/nginx-health") == 200
    assert _get(nginx.url + "/healthz") == 200  # proxied to backend:8000 through nginx's upstream

    prometheus = cluster.service_address("prometheus", "web").url

    def scraped() -> bool:
        up = {
            (r["metric"]["job"], r["metric"].get("pod", ""), r["metric"].get("container", "")): r["value"][1]
            for r in _query(prometheus, "up")
        }
        return (
            up.get(("hft-pods", pods["backend"].name, "backend")) == "1"
            and up.get(("hft-pods", pods["engine"].name, "engine")) == "1"
            and up.get(("kube-state-metrics", "", "")) == "1"
            and up.get(("kubernetes-cadvisor", "", "")) == "1"
        )

    wait_for(scraped, timeout=15, what="Prometheus to scrape the annotated pods and the exporter")
    available = _query(
        prometheus, 'kube_deployment_status_replicas_available{namespace="t",deployment="backend"}'
    )
    assert [r["value"][1] for r in available] == ["1"]
    memory = _query(
        prometheus,
        f'container_memory_working_set_bytes{{namespace="t",pod="{pods["backend"].name}",container="backend"}}',
    )
    assert len(memory) == 1
    assert float(memory[0]["value"][1]) > 0

    pids = [pid for p in pods.values() for pid in cluster.container_pids(p.name).values()]
    run_id, runtime = cluster.run_id, cluster.runtime_dir
    cluster.delete_all()
    assert not any(alive(pid) for pid in pids)
    assert hft_cgroups(run_id) == []
    assert not runtime.exists()
