"""kubernetes_sd_configs -> file_sd_configs: the targets carry the labels Prometheus' own discovery would."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pytest_hftk8s import manifests
from pytest_hftk8s.cluster.local import promsd
from pytest_hftk8s.errors import ConfigError

POD = promsd.SdPod(
    name="backend-1-abcde", namespace="hft", ip="127.0.9.2", ready=True, phase="Running", node="n",
    controller_kind="ReplicaSet", controller_name="backend-1",
    labels={"app": "backend"}, annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "8000"},
    containers=(promsd.SdContainer("backend", "hftk8s/backend:0.1.0", (("http", 8000, "TCP"),)),
                promsd.SdContainer("sidecar", "x", ())),
)  # fmt: skip


def _config() -> dict:
    cm = next(o for o in manifests.render("local") if o["metadata"]["name"] == "prometheus-config")
    return yaml.safe_load(cm["data"]["prometheus.yml"])


def test_pod_targets_carry_kubernetes_sd_labels() -> None:
    groups = promsd.pod_targets((POD,), ("hft",))
    by_container = {g["labels"]["__meta_kubernetes_pod_container_name"]: g for g in groups}
    http = by_container["backend"]
    assert http["targets"] == ["127.0.9.2:8000"]
    labels = http["labels"]
    assert labels["__meta_kubernetes_namespace"] == "hft"
    assert labels["__meta_kubernetes_pod_name"] == "backend-1-abcde"
    assert labels["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] == "true"
    assert labels["__meta_kubernetes_pod_annotationpresent_prometheus_io_port"] == "true"
    assert labels["__meta_kubernetes_pod_label_app"] == "backend"
    assert labels["__meta_kubernetes_pod_container_port_number"] == "8000"
    assert by_container["sidecar"]["targets"] == ["127.0.9.2"]  # no ports: bare pod address
    assert promsd.pod_targets((POD,), ("other",)) == []  # namespaces.names honoured


def test_unsupported_role_is_a_config_error(tmp_path: Path) -> None:
    config = {"scrape_configs": [{"job_name": "x", "kubernetes_sd_configs": [{"role": "ingress"}]}]}
    with pytest.raises(ConfigError, match="ingress"):
        promsd.translate(config, sd_dir=tmp_path)


def test_written_files_match_the_translated_config(tmp_path: Path) -> None:
    translated, files = promsd.translate(_config(), sd_dir=tmp_path / "sd")
    discovery = promsd.Discovery(
        pods=(POD,),
        endpoints=(
            promsd.SdEndpoint("kube-state-metrics", "kube-system", "http-metrics", 8080, "127.0.9.1", True),
        ),
        nodes=(promsd.SdNode("local", "127.0.9.1:8080"),),
    )
    promsd.write(files, discovery)
    referenced = {
        f
        for job in translated["scrape_configs"]
        for sd in job.get("file_sd_configs", [])
        for f in sd["files"]
    }
    assert referenced == {str(f.path) for f in files}
    for f in files:
        groups = json.loads(f.path.read_text())
        assert groups, f"{f.job} has no targets"
    ksm = json.loads(next(f for f in files if f.role == "endpoints").path.read_text())
    assert ksm[0]["labels"]["__meta_kubernetes_service_name"] == "kube-state-metrics"
    # promtool (same version as the Prometheus that loads it) accepts the translated config.
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(translated))
    done = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
