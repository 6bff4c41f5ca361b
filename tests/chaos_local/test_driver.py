"""The local driver's pure decisions (selection modes, sizes, hosts redirection) and its dry run."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from chaos_workloads import NEEDS_ROOT, http_server, wait_for

from pytest_hftk8s.chaos import registry, schedule, stress_cpu
from pytest_hftk8s.chaos.driver import ChaosDriver
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos import redirect_hosts
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos, select_pods, size_bytes
from pytest_hftk8s.cluster.local.stress import StressSpec
from pytest_hftk8s.errors import ChaosError, ConfigError

PODS = [f"web-{i}" for i in range(10)]


@pytest.mark.parametrize(
    ("mode", "value", "count"),
    [("all", None, 10), ("one", None, 1), ("fixed", "3", 3), ("fixed", "30", 10), ("fixed-percent", "50", 5),
     ("fixed-percent", "1", 1)],
)  # fmt: skip
def test_selection_modes_pick_as_many_pods_as_chaos_mesh(mode: str, value: str | None, count: int) -> None:
    chosen = select_pods(PODS, mode=mode, value=value, rng=random.Random(7))
    assert len(chosen) == count
    assert set(chosen) <= set(PODS)
    assert len(set(chosen)) == count


def test_random_max_percent_stays_within_its_bound() -> None:
    rng = random.Random(1)
    sizes = {len(select_pods(PODS, mode="random-max-percent", value="40", rng=rng)) for _ in range(200)}
    assert sizes <= {1, 2, 3, 4}
    assert len(sizes) > 1
    assert select_pods([], mode="one", value=None, rng=rng) == []


def test_sizes_follow_chaos_mesh_units() -> None:
    assert size_bytes("256MB") == 256 * 10**6
    assert size_bytes("1GiB") == 2**30
    assert size_bytes("1.5KiB") == 1536
    assert size_bytes("25%", total_memory=4 * 2**30) == 2**30
    with pytest.raises(ConfigError, match="expected e"):
        size_bytes("lots")


def test_only_service_names_are_redirected_to_the_proxy() -> None:
    hosts = (
        "127.0.0.1\tlocalhost\n"
        "127.0.9.2\tweb-abc\n"
        "127.0.9.2\tweb web.t web.t.svc web.t.svc.cluster.local\n"
        "127.0.9.3\tweb web.t web.t.svc web.t.svc.cluster.local\n"
    )
    out = redirect_hosts(hosts, {"127.0.9.2": "127.0.9.254"}, {"web"})
    assert "127.0.9.2\tweb-abc\n" in out  # the pod's own name still leads to the pod
    assert "127.0.9.254\tweb web.t" in out
    assert "127.0.9.3\tweb web.t" in out  # other replicas are untouched
    assert "127.0.9.2\tweb web.t" not in out


@NEEDS_ROOT
@pytest.mark.slow
def test_dry_run_prints_the_object_and_injects_nothing(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web")])
    wait_for(lambda: cluster.container_pids(cluster.pods()[0].name), timeout=10, what="web running")
    printed: list[str] = []
    chaos = chaos_on(cluster, dry_run=True, echo=printed.append)
    assert isinstance(chaos, ChaosDriver)
    with chaos.inject(stress_cpu(target="web", load=90)) as run:
        assert registry.live() == []
        assert run.injected_at is None
        assert run.records == []
        assert not chaos._live
    assert run.dry_run
    assert run.ended_at is not None
    assert len(printed) == 1
    assert "kind: StressChaos" in printed[0]
    assert "load: 90" in printed[0]
    assert "namespace: t" in printed[0]
    assert cluster.pods()[0].containers[0].restart_count == 0

    with (
        pytest.raises(ChaosError, match="Schedule is not supported"),
        chaos_on(cluster).inject(schedule(cron="@every 1m", experiment=stress_cpu(target="web"))),
    ):
        pytest.fail("a Schedule must not run locally")


def test_stress_ng_command_lines_keep_chaos_mesh_meaning() -> None:
    cpu = StressSpec("cpu", 2, load=80, timeout=30).argv("stress-ng")
    assert cpu == ["stress-ng", "--cpu", "2", "--cpu-load", "80", "--timeout", "30s"]
    memory = StressSpec("memory", 2, vm_bytes=64 * 2**20).argv("stress-ng")
    # size is the total over all workers; stress-ng itself divides --vm-bytes among its vm workers
    assert memory[:5] == ["stress-ng", "--vm", "2", "--vm-bytes", str(64 * 2**20)]
    assert "--vm-hang" in memory  # allocate and hold (memStress), no timeout: until removed
    assert "--timeout" not in memory
