"""The local exporter's node series, named and labelled as kubelet's cAdvisor has them."""

from __future__ import annotations

import os
import time

from pytest_hftk8s.cluster.local.exporter import MetricsSnapshot, node_cpu_seconds, render_cadvisor

STAT = "cpu  100 5 50 1000 40 7 3 2 9 0\ncpu0 50 5 25 500 20 3 2 1 9 0\n"


def test_node_busy_seconds_are_the_root_cgroups_columns_of_proc_stat() -> None:
    # user + nice + system + irq + softirq + steal; idle and iowait are not busy, guest is inside user.
    assert node_cpu_seconds(STAT) == (100 + 5 + 50 + 7 + 3 + 2) / os.sysconf("SC_CLK_TCK")
    assert node_cpu_seconds("intr 1 2 3\n") is None


def test_node_busy_seconds_grow_with_work_on_this_machine() -> None:
    before = node_cpu_seconds()
    assert before is not None
    end = time.process_time() + 0.3
    while time.process_time() < end:  # 0.3 s of this process's CPU is the machine's too
        pass
    after = node_cpu_seconds()
    assert after is not None
    assert after - before >= 0.25


def test_cadvisor_page_has_the_machine_cores_and_the_root_cgroup() -> None:
    page = render_cadvisor(
        MetricsSnapshot(namespace="hft", node="node", pods=(), workloads=(), containers=())
    )
    assert f"machine_cpu_cores {os.cpu_count()}" in page.splitlines()
    (root,) = [
        line for line in page.splitlines() if line.startswith('container_cpu_usage_seconds_total{id="/"}')
    ]
    assert float(root.split()[-1]) > 0
    assert "# TYPE machine_cpu_cores gauge" in page
