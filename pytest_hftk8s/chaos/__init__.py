"""Chaos experiments: typed builders, safety rails and the drivers that inject them.

``experiments`` builds Chaos Mesh v2.8 objects (pure data); ``safety`` holds the context allow-list
and dry-run rendering; ``registry`` guarantees removal on SIGINT and at exit; ``on_kubernetes``
injects through Chaos Mesh custom resources. The local path lives beside them and reads the same
builders. This package never talks to Prometheus, the load generator or the report.
"""

from __future__ import annotations

from pytest_hftk8s.chaos.experiments import (
    Experiment,
    NetworkDelay,
    NetworkLoss,
    PodChaos,
    Schedule,
    StressCpu,
    StressMemory,
    container_kill,
    network_delay,
    network_loss,
    pod_failure,
    pod_kill,
    schedule,
    stress_cpu,
    stress_memory,
)

__all__ = [
    "Experiment",
    "NetworkDelay",
    "NetworkLoss",
    "PodChaos",
    "Schedule",
    "StressCpu",
    "StressMemory",
    "container_kill",
    "network_delay",
    "network_loss",
    "pod_failure",
    "pod_kill",
    "schedule",
    "stress_cpu",
    "stress_memory",
]
