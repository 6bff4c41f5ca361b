"""The local cluster's preflight: this machine's real rows, and the cgroup v2 rules on fake trees.

The fake trees are directories laid out like a cgroup2 mount (file formats only, no kernel): that is
how the v2 delegation rules - which this Debian 12 machine (v1) cannot show - are checked here. The
PR workflow then runs the real-machine test on a cgroup v2 runner.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from local_workloads import NEEDS_ROOT

from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.cluster.local import LocalCluster, cgroups, images, model, preflight
from pytest_hftk8s.cluster.local.remote import RemoteCluster
from pytest_hftk8s.errors import ClusterError
from pytest_hftk8s.results import PreflightCheck

AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0, reason="cgroup detection answers 'not root' before it reads any tree"
)
CHECKS = {
    "cgroup v2 or v1", "cgroup cpu, memory controllers", "root, user postgres", "pod tools (util-linux)",
    "postgres 15", "redis-server", "nginx", "prometheus", "stress-ng (chaos)", "platform packages",
}  # fmt: skip


def _table(rows: list[PreflightCheck]) -> str:
    return "\n".join(f"{r.check}: {'ok' if r.ok else 'FAIL'}: {r.found} | {r.action}" for r in rows)


def _by_check(rows: list[PreflightCheck]) -> dict[str, PreflightCheck]:
    return {r.check: r for r in rows}


def _v2_tree(
    root: Path, *, controllers: str, subtree: str, procs: str = "", hierarchy_root: bool = False
) -> list[tuple[str, str, set[str]]]:
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text(subtree + "\n")
    (root / "cgroup.procs").write_text(procs)
    if not hierarchy_root:  # the kernel shows cgroup.type on every cgroup but the hierarchy's root
        (root / "cgroup.type").write_text("domain\n")
    return [(str(root), "cgroup2", {"rw"})]


@NEEDS_ROOT
def test_this_machine_passes_every_local_check_also_through_the_control_socket(
    make_cluster: Callable[..., LocalCluster],
) -> None:
    cluster = make_cluster()
    assert isinstance(cluster, Cluster)
    rows = cluster.preflight(images=("hftk8s/backend:0.1.0", "postgres:15"))
    assert {r.check for r in rows} == CHECKS
    assert all(r.ok and r.blocking for r in rows), _table(rows)
    assert "stress-ng (chaos)" not in {r.check for r in cluster.preflight(chaos=False)}

    remote = RemoteCluster.connect(cluster.share())
    assert isinstance(remote, Cluster)
    assert remote.preflight(chaos=False) == cluster.preflight(chaos=False)


@AS_ROOT
def test_v2_without_memory_offered_nor_cpu_delegated_says_what_is_missing_and_how_to_delegate(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cgroup"
    mounts = _v2_tree(root, controllers="cpu io pids", subtree="io", procs="1\n7\n")
    hierarchy, controllers = preflight.cgroup_rows(mounts=mounts)
    assert hierarchy.ok
    assert hierarchy.found == f"cgroup2 at {root}"
    assert not controllers.ok
    assert controllers.blocking
    assert (
        f"{root}/cgroup.controllers offers ['cpu', 'io', 'pids'] controllers, not memory" in controllers.found
    )
    assert (
        f"{root}/cgroup.subtree_control enables ['io'] controllers, not cpu and memory" in controllers.found
    )
    assert "holds 2 process(es) of its own" in controllers.found
    offered_step, delegate_step = controllers.action.splitlines()
    assert "`echo +cpu +memory > /sys/fs/cgroup/cgroup.subtree_control`" in offered_step
    assert "Delegate=yes" in offered_step
    assert "--privileged --cgroupns=host" in offered_step
    assert f"echo $pid > {root}/init/cgroup.procs" in delegate_step
    assert delegate_step.endswith(f"echo +cpu +memory > {root}/cgroup.subtree_control`")

    support = cgroups.detect(mounts=mounts)
    assert (support.version, support.bases) == ("", {})
    assert support.reason == controllers.found


@AS_ROOT
def test_v2_delegation_that_the_cluster_can_do_itself_passes(tmp_path: Path) -> None:
    # The kernel's root cgroup may enable controllers whatever it holds; any other cgroup only while
    # it holds no processes. Both then get "+cpu +memory" at the first deploy.
    for name, kwargs in {
        "root": {"procs": "1\n", "hierarchy_root": True},
        "empty": {"procs": ""},
    }.items():
        mounts = _v2_tree(tmp_path / name, controllers="cpu memory pids", subtree="", **kwargs)
        _, controllers = preflight.cgroup_rows(mounts=mounts)
        assert controllers.ok, controllers
        assert controllers.found.endswith("enabled in cgroup.subtree_control at the first deploy, writable")
        assert cgroups.detect(mounts=mounts).bases == {"unified": tmp_path / name}
    busy = _v2_tree(tmp_path / "busy", controllers="cpu memory", subtree="cpu memory", procs="9\n")
    _, delegated = preflight.cgroup_rows(mounts=busy)
    assert delegated.ok  # already delegated: its own processes no longer matter
    assert "cpu and memory delegated" in delegated.found


@AS_ROOT
def test_a_refused_cgroup_write_becomes_a_cluster_error_with_the_missing_controllers(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _v2_tree(root, controllers="cpu pids", subtree="", procs="3\n")
    cg = cgroups.ContainerCgroup(
        cgroups.CgroupSupport("v2", {"unified": root}), run_dir_name="hft-x", name="p_c"
    )
    (root / "hft-x" / "cgroup.subtree_control").mkdir(parents=True)  # any write there fails (EISDIR)
    with pytest.raises(ClusterError) as caught:
        cg.create(cpu_millis=100, memory_bytes=2**20)
    message = str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert message.startswith(f"expected to create container cgroups with cpu and memory limits below {root}")
    assert "not memory" in message
    assert "Delegate=yes" in message
    assert f"{root}/init/cgroup.procs" in message


def test_missing_tools_and_servers_name_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: redis-server, stress-ng, nsenter, ...
    (tmp_path / "lib" / "16" / "bin").mkdir(parents=True)
    (tmp_path / "lib" / "16" / "bin" / "postgres").write_text("")
    monkeypatch.setattr(images, "PG_BIN", tmp_path / "lib" / "15" / "bin")
    monkeypatch.setattr(preflight, "PG_ROOT", tmp_path / "lib")
    monkeypatch.setattr(preflight, "PLATFORM_PACKAGES", ("hft_platform", "hftk8s_not_installed"))
    rows = _by_check(preflight.checks())
    assert (rows["redis-server"].ok, rows["redis-server"].action) == (False, "apt-get install redis-server")
    assert rows["redis-server"].found == "missing: expected redis-server on PATH"
    assert (rows["stress-ng (chaos)"].ok, rows["stress-ng (chaos)"].action) == (
        False,
        "apt-get install stress-ng",
    )
    assert not rows["pod tools (util-linux)"].ok
    assert "nsenter" in rows["pod tools (util-linux)"].found
    pg = rows["postgres 15"]
    assert not pg.ok
    assert pg.action.startswith("apt-get install postgresql-15")
    assert "installed: PostgreSQL 16" in pg.found
    assert rows["platform packages"].found == "hftk8s_not_installed not importable"
    assert "pip install -e ./engine_cpp -e ./platform" in rows["platform packages"].action
    assert all(r.blocking for r in rows.values())


def _argv0(image: str, conf_path: str, conf: str, tmp_path: Path) -> str:
    conf_file = tmp_path / f"{image.replace('/', '_')}.conf"
    conf_file.write_text(conf)
    pod_dir = tmp_path / f"pod-{image.replace('/', '_')}"
    pod_dir.mkdir()
    ctx = images.LaunchContext(
        pod_name="p", pod_ip="127.0.9.2", pod_dir=pod_dir, env={}, binds=[(conf_file, conf_path)]
    )
    spec = model.ContainerSpec(name="c", image=image, command=None, args=None, env=(), ports=())
    return images.plan(spec, ctx, base_env={}).argv[0]


def test_the_checked_server_paths_are_the_ones_the_image_table_runs(tmp_path: Path) -> None:
    nginx = _argv0("nginx:1.27", "/etc/nginx/nginx.conf", "events {}\nhttp {}\n", tmp_path)
    prometheus = _argv0("prom/prometheus:v3.1.0", "/etc/prometheus/prometheus.yml", "{}\n", tmp_path)
    assert (nginx, prometheus) == (str(preflight.NGINX), str(preflight.PROMETHEUS))


@NEEDS_ROOT
def test_a_preflight_only_cluster_leaves_nothing_behind_when_closed(tmp_path: Path) -> None:
    cluster = LocalCluster(namespace="preflight-only", state_dir=tmp_path / "state")
    runtime_dir = cluster.runtime_dir
    assert runtime_dir.is_dir()
    cluster.preflight(chaos=False)
    cluster.close()  # --hft-preflight closes without a teardown: nothing ran, so nothing may stay
    assert not runtime_dir.exists()
    assert not list((tmp_path / "state").glob("*.json"))
