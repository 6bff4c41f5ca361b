"""The rendered prometheus.yml, run by a real Prometheus on the targets each backend's discovery gives.

On a cluster, Prometheus' Kubernetes discovery attaches ``__meta_kubernetes_*`` labels; here a
file_sd file carries the same labels (shaped like kube-state-metrics' upstream manifests, its Helm
chart and this repository's add-on, and a node). The local backend's own translation
(:mod:`pytest_hftk8s.cluster.local.promsd`) is run on the same config beside it. Prometheus then
reports which targets each job keeps and the URL it would scrape.
"""

from __future__ import annotations

import copy
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_support import by_kind, render

from pytest_hftk8s.cluster.local import promsd

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
M = "__meta_kubernetes_"


def _endpoint(namespace: str, service: str, port_name: str, address: str, **labels: str) -> dict[str, Any]:
    meta = {f"{M}namespace": namespace, f"{M}service_name": service, f"{M}endpoints_name": service,
            f"{M}endpoint_port_name": port_name, f"{M}endpoint_ready": "true"}  # fmt: skip
    meta |= {f"{M}service_label_{k}": v for k, v in labels.items()}
    return {"targets": [address], "labels": meta}


#: What Kubernetes discovery would see on a cluster, per role.
CLUSTER_TARGETS = {
    "endpoints": [
        _endpoint(
            "hft",
            "kube-state-metrics",
            "http-metrics",
            "10.0.0.5:8080",
            app_kubernetes_io_name="kube-state-metrics",
        ),
        _endpoint(
            "hft",
            "kube-state-metrics",
            "telemetry",
            "10.0.0.5:8081",
            app_kubernetes_io_name="kube-state-metrics",
        ),
        _endpoint(
            "monitoring",
            "prom-kube-state-metrics",
            "http",
            "10.0.1.7:8080",
            app_kubernetes_io_name="kube-state-metrics",
        ),
        _endpoint("kube-system", "kube-state-metrics", "http-metrics", "10.0.2.2:8080"),
        _endpoint("hft", "backend", "http", "10.0.0.9:8000", app="backend"),
    ],
    "node": [{"targets": ["172.18.0.2:10250"], "labels": {f"{M}node_name": "node-a"}}],
    "pod": [
        {
            "targets": ["10.0.0.9:8000"],
            "labels": {
                f"{M}namespace": "hft",
                f"{M}pod_name": "backend-0",
                f"{M}pod_container_name": "backend",
                f"{M}pod_phase": "Running",
                f"{M}pod_annotation_prometheus_io_scrape": "true",
                f"{M}pod_annotation_prometheus_io_port": "8000",
                f"{M}pod_annotation_prometheus_io_path": "/metrics",
            },
        }
    ],
}


def _cluster_jobs(config: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    """The config's jobs as they run in a cluster, with discovery replaced by the files above."""
    token = tmp / "token"
    token.write_text("test-token")
    jobs = []
    for job in copy.deepcopy(config["scrape_configs"]):
        role = job.pop("kubernetes_sd_configs")[0]["role"]
        path = tmp / f"cluster-{job['job_name']}.json"
        path.write_text(json.dumps(CLUSTER_TARGETS[role]))
        job["file_sd_configs"] = [{"files": [str(path)]}]
        if "tls_config" in job:  # the service account's files, here stand-ins that exist
            job["tls_config"]["ca_file"] = str(CA_BUNDLE)
            job["authorization"]["credentials_file"] = str(token)
        job["job_name"] = f"cluster-{job['job_name']}"
        jobs.append(job)
    return jobs


def _local_jobs(config: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    """The config's jobs as the local backend runs them (its translation and its discovery)."""
    translated, files = promsd.translate(config, sd_dir=tmp / "local-sd", own_namespace="hft")
    exporter = "127.0.9.1:8080"
    backend = promsd.SdPod(
        name="backend-1", namespace="hft", ip="127.0.9.2", ready=True, phase="Running", node="hftk8s-local",
        controller_kind="ReplicaSet", controller_name="backend-x", labels={"app": "backend"},
        annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "8000", "prometheus.io/path": "/metrics"},
        containers=(promsd.SdContainer("backend", "hftk8s/backend:0.1.0", (("http", 8000, "TCP"),)),),
    )  # fmt: skip
    promsd.write(files, promsd.Discovery(
        pods=(backend,),
        endpoints=(promsd.SdEndpoint("kube-state-metrics", "kube-system", "http-metrics", 8080, "127.0.9.1", True),),
        nodes=(promsd.SdNode("hftk8s-local", exporter),),
    ))  # fmt: skip
    for job in translated["scrape_configs"]:
        job["job_name"] = f"local-{job['job_name']}"
    return translated["scrape_configs"]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("prom")
    cm = by_kind(render("kind"), "ConfigMap")["prometheus-config"]
    config = yaml.safe_load(cm["data"]["prometheus.yml"])
    config["global"] |= {"scrape_interval": "1m", "scrape_timeout": "1s"}  # discovery only
    config["scrape_configs"] = _cluster_jobs(config, tmp) + _local_jobs(config, tmp)
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, seen = time.monotonic() + 30, None
        jobs = {j["job_name"] for j in config["scrape_configs"]}
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            try:
                seen = _get(f"http://127.0.0.1:{port}/api/v1/targets?state=any")
            except OSError:
                seen = None
            if seen and jobs <= {
                t["discoveredLabels"]["job"] for t in seen["activeTargets"] + seen["droppedTargets"]
            }:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"Prometheus did not discover every job within 30s: {seen}")
        yield seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _active(targets: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return [t for t in targets["activeTargets"] if t["labels"]["job"] == job]


def test_cadvisor_goes_through_the_api_servers_node_proxy_on_a_cluster(targets: dict[str, Any]) -> None:
    (node,) = _active(targets, "cluster-kubernetes-cadvisor")
    assert (
        node["scrapeUrl"] == "https://kubernetes.default.svc:443/api/v1/nodes/node-a/proxy/metrics/cadvisor"
    )
    assert node["labels"]["node"] == "node-a"


def test_cadvisor_is_the_local_exporter_on_the_local_backend(targets: dict[str, Any]) -> None:
    (node,) = _active(targets, "local-kubernetes-cadvisor")
    assert node["scrapeUrl"] == "http://127.0.9.1:8080/metrics/cadvisor"
    assert node["labels"]["node"] == "hftk8s-local"


def test_kube_state_metrics_is_found_wherever_it_runs(targets: dict[str, Any]) -> None:
    kept = {t["scrapeUrl"] for t in _active(targets, "cluster-kube-state-metrics")}
    assert kept == {
        "http://10.0.0.5:8080/metrics",  # the add-on in the session's namespace
        "http://10.0.1.7:8080/metrics",  # a Helm release in another namespace
        "http://10.0.2.2:8080/metrics",  # the upstream manifests in kube-system
    }  # not its telemetry port, not the backend
    assert {t["scrapeUrl"] for t in _active(targets, "local-kube-state-metrics")} == {
        "http://127.0.9.1:8080/metrics"
    }


@pytest.mark.parametrize(
    ("job", "url", "pod"),
    [("cluster-hft-pods", "http://10.0.0.9:8000/metrics", "backend-0"),
     ("local-hft-pods", "http://127.0.9.2:8000/metrics", "backend-1")],
)  # fmt: skip
def test_annotated_pods_are_scraped_with_namespace_pod_and_container(
    targets: dict[str, Any], job: str, url: str, pod: str
) -> None:
    (target,) = _active(targets, job)
    assert target["scrapeUrl"] == url
    assert {k: target["labels"][k] for k in ("namespace", "pod", "container")} == {
        "namespace": "hft", "pod": pod, "container": "backend",
    }  # fmt: skip
