"""The image table and its rewrites, checked on the real platform manifests (no processes started)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import yaml

from pytest_hftk8s import manifests
from pytest_hftk8s.cluster.local import images, model
from pytest_hftk8s.credentials import with_db_secret


@pytest.mark.parametrize(
    ("image", "repo"),
    [("nginx:1.22", "nginx"), ("docker.io/library/postgres:15", "postgres"), ("prom/prometheus:v2.42.0", "prom/prometheus"),
     ("localhost:5000/hftk8s/backend:0.1.0", "localhost:5000/hftk8s/backend"), ("redis@sha256:abc", "redis")],
)  # fmt: skip
def test_repository_strips_registry_defaults_and_tags(image: str, repo: str) -> None:
    assert images.repository(image) == repo


def test_nginx_rewrites_listen_and_pid_only() -> None:
    conf = "pid /var/run/nginx.pid;\nhttp {\n  server {\n    listen 80 default_server;\n    listen [::]:80;\n    location / {}\n  }\n}\n"
    out = images.nginx_conf_for_pod(conf, pod_ip="127.0.9.4", pid_file=Path("/x/nginx.pid"))
    assert "listen 127.0.9.4:80 default_server;" in out
    assert "pid /x/nginx.pid;" in out
    assert "/var/run/nginx.pid" not in out
    assert "# (local cluster) dropped: listen [::]:80;" in out
    assert out.count("location / {}") == 1


def _plans(tmp_path: Path) -> dict[str, images.LaunchPlan]:
    objects = with_db_secret(manifests.render("local"), password="pw-images", secret_name=None)
    configmaps, secrets = model.config_data(objects)
    out = {}
    for tmpl in model.pod_templates(objects, namespace="hft"):
        spec = tmpl.containers[0]
        pod_dir = tmp_path / tmpl.workload
        pod_dir.mkdir()
        env = model.resolve_env(
            spec,
            pod_fields={"status.podIP": "127.0.9.2", "metadata.name": "p"},
            configmaps=configmaps,
            secrets=secrets,
        )
        ctx = images.LaunchContext(pod_name="p", pod_ip="127.0.9.2", pod_dir=pod_dir, env=env)
        for mount in spec.mounts:  # like the cluster: configMaps materialised, others empty dirs
            vol = tmpl.volumes[mount.name]
            host = pod_dir / "volumes" / mount.name
            host.mkdir(parents=True)
            if "configMap" in vol:
                for key, value in configmaps[vol["configMap"]["name"]].items():
                    (host / key).write_text(value)
            host = host / mount.sub_path if mount.sub_path else host
            (
                ctx.binds.append((host, mount.mount_path))
                if Path(mount.mount_path).exists()
                else ctx.rewrites.append((mount.mount_path, host))
            )
        out[tmpl.workload] = images.plan(spec, ctx, base_env={"PATH": "/usr/bin:/bin"})
    return out


def test_platform_images_map_to_local_commands(tmp_path: Path) -> None:
    plans = _plans(tmp_path)
    assert plans["backend"].argv == [sys.executable, "-m", "hft_platform.backend"]
    assert plans["backend"].env["HFT_BIND_HOST"] == "127.0.9.2"
    pg = plans["postgres"]
    assert pg.argv[:3] == [sys.executable, "-I", str(images.PG_ENTRYPOINT)]
    assert pg.argv[-2:] == ["-c", "listen_addresses=127.0.9.2"]
    assert "max_connections=200" in pg.argv
    assert pg.env["PGDATA"] == str(
        tmp_path / "postgres/volumes/data/pgdata"
    )  # /var/lib/postgresql/data rewritten
    assert pg.stop_signal == signal.SIGINT
    redis = plans["redis"]
    assert redis.argv[redis.argv.index("--bind") + 1] == "127.0.9.2"
    assert redis.cwd == tmp_path / "redis/volumes/data"  # image WORKDIR /data is the PVC
    nginx = plans["nginx"]
    assert nginx.argv[:3] == ["/usr/sbin/nginx", "-e", "stderr"]
    assert nginx.stop_signal == signal.SIGQUIT
    nginx_conf = next(
        src for src, dst in nginx.binds if dst == "/etc/nginx/nginx.conf" and "overrides" in str(src)
    )
    assert "listen 127.0.9.2:80 backlog=4096;" in nginx_conf.read_text()
    assert "server backend:8000;" in nginx_conf.read_text()


def test_prometheus_config_is_translated_not_replaced(tmp_path: Path) -> None:
    prom = _plans(tmp_path)["prometheus"]
    assert "--web.listen-address=127.0.9.2:9090" in prom.argv
    assert f"--storage.tsdb.path={tmp_path / 'prometheus/volumes/data'}" in prom.argv
    config_file = next(
        src for src, dst in prom.binds if dst == "/etc/prometheus/prometheus.yml" and "overrides" in str(src)
    )
    config = yaml.safe_load(config_file.read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert all("kubernetes_sd_configs" not in j for j in jobs.values())
    assert {sd.role for sd in prom.prometheus_sd} == {"pod", "endpoints", "node"}
    original = yaml.safe_load(
        next(o for o in manifests.render("local") if o["metadata"]["name"] == "prometheus-config")["data"][
            "prometheus.yml"
        ]
    )
    for job in original["scrape_configs"]:
        assert jobs[job["job_name"]]["relabel_configs"] == job["relabel_configs"]  # the SAME relabel rules
    cadvisor = jobs["kubernetes-cadvisor"]
    assert cadvisor["scheme"] == "http"
    assert "authorization" not in cadvisor
    assert "tls_config" not in cadvisor
