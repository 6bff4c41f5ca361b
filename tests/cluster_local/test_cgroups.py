"""cgroup detection and limits on this machine (real cgroup files; skipped where not root)."""

from __future__ import annotations

import secrets
import subprocess

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
