"""cgroup detection and limits on this machine (real cgroup files; skipped where not root)."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from local_workloads import NEEDS_ROOT

from pytest_hftk8s.cluster.local import cgroups


def test_detect_explains_itself() -> None:
    support = cgroups.detect()
    assert support.version in ("v1", "v2", "")
    assert support.enforced == bool(support.bases)
    if not support.enforced:
        assert support.reason


@NEEDS_ROOT
def test_limits_usage_and_removal() -> None:
    support = cgroups.detect()
    if not support.enforced:
        pytest.skip(f"no writable cgroups here: {support.reason}")
    cg = cgroups.ContainerCgroup(support, run_dir_name=f"hft-test-{secrets.token_hex(3)}", name="pod_c")
    try:
        cg.create(cpu_millis=300, memory_bytes=64 * 2**20)
        if support.version == "v1":
            assert (cg.paths["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "30000"
            assert (cg.paths["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
            assert int((cg.paths["memory"] / "memory.limit_in_bytes").read_text()) == 64 * 2**20
        else:
            assert (cg.paths["unified"] / "cpu.max").read_text().split() == ["30000", "100000"]
        proc = subprocess.Popen(["sleep", "30"])
        for f in cg.procs_files():
            f.write_text(str(proc.pid))
        assert cg.pids() == {proc.pid}
        usage = cg.usage()
        assert usage.memory_limit == 64 * 2**20
        assert usage.oom_kills == 0
        cg.kill_all()
        assert proc.wait(timeout=5) == -9
    finally:
        problems = cg.remove()
        assert not any(p.exists() for p in cg.paths.values())
        problems += cgroups.remove_tree(cg.run_dirs())
    assert problems == []
    assert not any(d.exists() for d in cg.run_dirs())


def test_cgroup_names_must_contain_hft() -> None:
    with pytest.raises(ValueError, match="hft"):
        cgroups.ContainerCgroup(cgroups.CgroupSupport("v1", {}), run_dir_name="other", name="x")


def _fake_v2_root(tmp_path: Path) -> Path:
    """A directory laid out like a cgroup2 root (the kernel is not involved: file formats only)."""
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    return root


@NEEDS_ROOT
def test_v2_is_preferred_when_the_unified_root_offers_cpu_and_memory(tmp_path: Path) -> None:
    root = _fake_v2_root(tmp_path)
    mounts = [(str(root), "cgroup2", {"rw"}), ("/sys/fs/cgroup/cpu", "cgroup", {"rw", "cpu"})]
    support = cgroups.detect(mounts=mounts, own={"": "/"})
    assert support.version == "v2"
    assert support.bases == {"unified": root}
    (root / "cgroup.controllers").write_text("hugetlb\n")  # like this machine's hybrid layout
    fallback = cgroups.detect(mounts=mounts[:1], own={"": "/"})
    assert fallback.version == ""
    assert "hugetlb" in fallback.reason


@NEEDS_ROOT
def test_v2_limit_and_usage_file_formats(tmp_path: Path) -> None:
    root = _fake_v2_root(tmp_path)
    cg = cgroups.ContainerCgroup(
        cgroups.CgroupSupport("v2", {"unified": root}), run_dir_name="hft-x", name="p_c"
    )
    cg.create(cpu_millis=300, memory_bytes=128 * 2**20)
    path = root / "hft-x" / "p_c"
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (path / "cpu.max").read_text() == "30000 100000"
    assert (path / "memory.max").read_text() == str(128 * 2**20)
    (path / "cpu.stat").write_text("usage_usec 2500000\nnr_periods 40\nnr_throttled 7\n")
    (path / "memory.current").write_text("5000\n")
    (path / "memory.stat").write_text("anon 3000\ninactive_file 1000\n")
    (path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    usage = cg.usage()
    assert (usage.cpu_seconds, usage.cfs_periods, usage.cfs_throttled_periods) == (2.5, 40, 7)
    assert (usage.memory_working_set, usage.memory_limit, usage.oom_kills) == (4000, 128 * 2**20, 1)
