"""Chaos experiments: typed builders, safety rails, the removal registry and the driver protocol.

``experiments`` builds Chaos Mesh v2.8 objects (pure data); ``safety`` holds the context allow-list
and dry-run rendering; ``registry`` guarantees removal on SIGINT and at exit; ``driver`` is what every
driver returns and offers (:class:`~.driver.ChaosRun`, :class:`~.driver.ChaosDriver`) plus the dry-run
driver. Each cluster backend brings its own driver (``cluster/local``, ``cluster/kubernetes``), built
on these. This package never talks to a cluster, Prometheus, the load generator or the report, and
it judges nothing: whether a stress reached its intensity is decided in ``slo``.
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
