"""The one catalogue of PromQL in the project: SLOs, diagnostics, intensity, rates and dashboards.

Every query reads only DESIGN.md's metric contract (and ``kube_pod_container_resource_limits`` of
kube-state-metrics for the limits), byte-for-byte the same on both backends. Placeholders are filled
at evaluation: ``$window`` and ``$window_wide`` (ranges, see :class:`~pytest_hftk8s.results.Window`),
``$namespace``, ``$offered_rate``, ``$pod`` and ``$container``; the dashboards fill ``$window`` with
Grafana's ``$__rate_interval`` and keep ``$namespace`` as their own variable. Pure data: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Query:
    name: str
    expr: str
    unit: str = ""
    description: str = ""

    def render(self, **values: Any) -> str:
        return render(self.expr, values)


def render(expr: str, values: Mapping[str, Any]) -> str:
    """``expr`` with ``$name`` placeholders replaced (longest names first, so ``$window_wide`` is
    never clobbered by ``$window``); kube-burner's ``{{.elapsed}}`` stands for ``$window``."""
    text = expr.replace("{{.elapsed}}", "$window")
    for key in sorted(values, key=len, reverse=True):
        text = text.replace("$" + key, str(values[key]))
    return text


NS = 'namespace="$namespace"'
ONE = f'{NS},pod="$pod",container="$container"'

# -- orders, registrations, latency (the platform's own series) -----------------------------------
ACCEPTED_RATE = Query(
    "accepted_rate",
    'sum(rate(hft_orders_total{outcome="accepted"}[$window]))',
    "orders/s",
    "accepted orders/s",
)
ORDERS_BY_OUTCOME = Query(
    "orders_by_outcome",
    "sum by (outcome) (increase(hft_orders_total[$window]))",
    "orders",
    "orders by outcome",
)
ORDER_RATE_BY_OUTCOME = Query(
    "order_rate_by_outcome",
    "sum by (outcome) (rate(hft_orders_total[$window]))",
    "orders/s",
    "orders/s by outcome",
)
FILLS_RATE = Query(
    "fills_rate", "sum(rate(hft_fills_total[$window]))", "fills/s", "executions committed per second"
)
THROUGHPUT_RATIO = Query(
    "throughput",
    'sum(rate(hft_orders_total{outcome="accepted"}[$window])) / $offered_rate',
    "ratio",
    "accepted orders/s over the offered order rate",
)
REGISTRATIONS_BY_OUTCOME = Query(
    "registrations_by_outcome", "sum by (outcome) (increase(hft_registrations_total[$window_wide]))"
)
REGISTRATION_SUCCESS = Query(
    "registration_success",
    'sum(increase(hft_registrations_total{outcome=~"ok|success|created|registered"}[$window_wide]))'
    " / sum(increase(hft_registrations_total[$window_wide]))",
    "ratio",
)


def order_latency_ms(quantile: float) -> Query:
    """The backend's handler latency quantile (server side: after parsing and auth, answered requests)."""
    return Query(
        f"order_latency_p{quantile * 100:g}_ms",
        f"1000 * histogram_quantile({quantile:g}, sum by (le) (rate(hft_order_latency_seconds_bucket[$window])))",
        "ms",
    )


SERVER_P99_MS = order_latency_ms(0.99)
SERVER_P50_MS = order_latency_ms(0.5)
COMMIT_P99_MS = Query(
    "commit_p99_ms",
    "1000 * histogram_quantile(0.99, sum by (le) (rate(hft_db_commit_seconds_bucket[$window])))",
    "ms",
)
BATCH_SIZE_MEAN = Query(
    "batch_size_mean",
    "sum(rate(hft_db_batch_size_sum[$window])) / sum(rate(hft_db_batch_size_count[$window]))",
)
ENGINE_QUEUE_MAX = Query("engine_queue_depth_max", "max(max_over_time(hft_engine_queue_depth[$window]))")
#: Samples Prometheus holds of the backend's order counter: rate() needs a few before a window opens.
ORDER_COUNTER_SAMPLES = Query(
    "order_counter_samples", 'min(count_over_time(hft_orders_total{outcome="accepted"}[1m]))'
)
#: The oldest latest sample over every target: Prometheus has scraped past this time.
LATEST_SCRAPE = Query("latest_scrape", "min(timestamp(up))")

# -- kube-state-metrics ---------------------------------------------------------------------------
PODS_SEEN = f"0 * count(max_over_time(kube_pod_status_ready{{{NS}}}[$window_wide]))"
CRASHLOOP = Query(
    "no_crashloopbackoff",
    "sum(max_over_time(kube_pod_container_status_waiting_reason"
    f'{{{NS},reason="CrashLoopBackOff"}}[$window_wide])) or ' + PODS_SEEN,
)
OOMKILLED = Query(
    "no_oomkilled",
    "sum(max_over_time(kube_pod_container_status_last_terminated_reason"
    f'{{{NS},reason="OOMKilled"}}[$window_wide])) or ' + PODS_SEEN,
)
RESTARTS = Query("restarts", f"sum(increase(kube_pod_container_status_restarts_total{{{NS}}}[$window_wide]))")
RESTARTS_BY_CONTAINER = Query(
    "restarts_by_container",
    f"sum by (pod, container) (increase(kube_pod_container_status_restarts_total{{{NS}}}[$window_wide]))",
)
WAITING_REASONS = Query(
    "waiting_reasons",
    f"max by (pod, container, reason) (max_over_time(kube_pod_container_status_waiting_reason{{{NS}}}[$window_wide]))",
)
OOMKILLED_SELECTOR = (
    f'kube_pod_container_status_last_terminated_reason{{{NS},container="$container",reason="OOMKilled"}}'
)
CRASHLOOP_SELECTOR = (
    f'kube_pod_container_status_waiting_reason{{{NS},container="$container",reason="CrashLoopBackOff"}}'
)


def first_seen(selector: str) -> Query:
    """The earliest time in ``[$start, end]`` at which ``selector`` had value 1 (a reason series
    keeps its value after the event, so samples stamped before ``$start`` are an earlier event)."""
    return Query(
        "first_seen", f"min(min_over_time((timestamp({selector} == 1) >= $start)[$seconds:250ms]))", "epoch s"
    )


# -- cAdvisor, per pod and per container ----------------------------------------------------------
CPU_BY_POD = Query(
    "cpu_cores_by_pod", f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{NS}}}[$window]))", "cores"
)
THROTTLED_BY_POD = Query(
    "cpu_throttled_periods_by_pod",
    f"sum by (pod) (increase(container_cpu_cfs_throttled_periods_total{{{NS}}}[$window]))",
)
THROTTLED_SHARE_BY_POD = Query(
    "cpu_throttled_share_by_pod",
    f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{NS}}}[$window]))"
    f" / sum by (pod) (rate(container_cpu_cfs_periods_total{{{NS}}}[$window]))",
    "ratio",
)
MEMORY_MAX_BY_POD = Query(
    "memory_working_set_max_bytes",
    f"max by (pod) (max_over_time(container_memory_working_set_bytes{{{NS}}}[$window]))",
    "bytes",
)
OOM_EVENTS_BY_POD = Query("oom_events_by_pod", f"sum by (pod) (container_oom_events_total{{{NS}}})")

# One container's usage against its limit: what a stress experiment achieved (see slo.intensity).
CONTAINER_CPU_CORES = Query(
    "container_cpu_cores", f"sum(rate(container_cpu_usage_seconds_total{{{ONE}}}[$window]))", "cores"
)
CONTAINER_CPU_LIMIT = Query(
    "container_cpu_limit", f'max(kube_pod_container_resource_limits{{{ONE},resource="cpu"}})', "cores"
)
CONTAINER_MEMORY_PEAK = Query(
    "container_memory_peak",
    f"max(max_over_time(container_memory_working_set_bytes{{{ONE}}}[$window]))",
    "bytes",
)
CONTAINER_MEMORY_NOW = Query("container_memory", f"max(container_memory_working_set_bytes{{{ONE}}})", "bytes")
CONTAINER_MEMORY_LIMIT = Query(
    "container_memory_limit", f'max(kube_pod_container_resource_limits{{{ONE},resource="memory"}})', "bytes"
)
CONTAINER_OOM_EVENTS = Query(
    "container_oom_events", f"sum(increase(container_oom_events_total{{{ONE}}}[$window_wide]))"
)

# -- saturation: what bottleneck attribution reads (slo.bottleneck) -------------------------------
# Real containers only: kubelet's cAdvisor also exposes each pod's own cgroup (container="") and the
# pause container ("POD"), which would count a pod's CPU twice. The local exporter has neither.
CONTAINERS = f'{NS},container!="",container!="POD"'
SAT_CPU_BY_POD = Query(
    "sat_cpu_cores_by_pod",
    f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{CONTAINERS}}}[$window]))",
    "cores",
    "CPU used per pod",
)
SAT_CPU_LIMIT_BY_POD = Query(
    "sat_cpu_limit_by_pod",
    f'sum by (pod) (kube_pod_container_resource_limits{{{NS},resource="cpu"}})',
    "cores",
    "CPU limit per pod",
)
SAT_THROTTLED_SHARE_BY_POD = Query(
    "sat_throttled_share_by_pod",
    f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{CONTAINERS}}}[$window]))"
    f" / sum by (pod) (rate(container_cpu_cfs_periods_total{{{CONTAINERS}}}[$window]))",
    "ratio",
    "share of CFS periods throttled per pod",
)
# The node as cAdvisor sees it: the root cgroup's usage against the machine's cores, per scrape
# target (one kubelet, or the local exporter), so both series of a node share ``instance``.
SAT_NODE_CPU_BY_INSTANCE = Query(
    "sat_node_cpu_cores",
    'sum by (instance) (rate(container_cpu_usage_seconds_total{id="/"}[$window]))',
    "cores",
    "CPU used on the node (root cgroup)",
)
SAT_NODE_CORES_BY_INSTANCE = Query(
    "sat_node_cores", "max by (instance) (machine_cpu_cores)", "cores", "the node's CPUs"
)
SAT_COMMIT_P99_MS = Query("sat_commit_p99_ms", COMMIT_P99_MS.expr, "ms", "group-commit p99")
SAT_BATCH_SIZE_MEAN = Query(
    "sat_batch_size_mean", BATCH_SIZE_MEAN.expr, "orders/commit", "orders per group commit"
)
SAT_ENGINE_QUEUE_MAX = Query(
    "sat_engine_queue_max",
    "max_over_time(sum(hft_engine_queue_depth)[$window:])",
    "requests",
    "engine requests received, not yet acknowledged (all shards, highest in the window)",
)
SAT_ACCEPTED_RATE = Query("sat_accepted_rate", ACCEPTED_RATE.expr, "orders/s", "accepted orders/s")
SAT_REDIS_P99_MS_BY_OP = Query(
    "sat_redis_p99_ms",
    "1000 * histogram_quantile(0.99, sum by (le, op) (rate(hft_redis_seconds_bucket[$window])))",
    "ms",
    "Redis round trip p99 as the backend sees it, per op",
)
SAT_SERVER_P99_MS = Query("sat_server_p99_ms", SERVER_P99_MS.expr, "ms", "server-side order p99")
#: Everything ``slo.bottleneck.attribute`` evaluates, at the window's end over the window.
SATURATION = (
    SAT_CPU_BY_POD,
    SAT_CPU_LIMIT_BY_POD,
    SAT_THROTTLED_SHARE_BY_POD,
    SAT_NODE_CPU_BY_INSTANCE,
    SAT_NODE_CORES_BY_INSTANCE,
    SAT_COMMIT_P99_MS,
    SAT_BATCH_SIZE_MEAN,
    SAT_ENGINE_QUEUE_MAX,
    SAT_ACCEPTED_RATE,
    SAT_REDIS_P99_MS_BY_OP,
    SAT_SERVER_P99_MS,
)

#: What a failure bundle shows of a failed test's window (not SLOs: nothing here passes or fails).
DIAGNOSTICS = (
    ORDERS_BY_OUTCOME,
    REGISTRATIONS_BY_OUTCOME,
    SERVER_P50_MS,
    SERVER_P99_MS,
    ENGINE_QUEUE_MAX,
    RESTARTS_BY_CONTAINER,
    WAITING_REASONS,
    CPU_BY_POD,
    THROTTLED_BY_POD,
    MEMORY_MAX_BY_POD,
)

# -- the dashboards' own rows: resources against limits, scaling, and the chaos annotation --------
CPU_SHARE_OF_LIMIT_BY_POD = Query(
    "cpu_share_of_limit_by_pod",
    f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{NS}}}[$window]))"
    f' / sum by (pod) (kube_pod_container_resource_limits{{{NS},resource="cpu"}})',
    "ratio",
)
MEMORY_SHARE_OF_LIMIT_BY_POD = Query(
    "memory_share_of_limit_by_pod",
    f"sum by (pod) (container_memory_working_set_bytes{{{NS}}})"
    f' / sum by (pod) (kube_pod_container_resource_limits{{{NS},resource="memory"}})',
    "ratio",
)
BACKENDS_AVAILABLE = Query(
    "backends_available", f'sum(kube_deployment_status_replicas_available{{{NS},deployment="backend"}})'
)
ACCEPTED_RATE_PER_BACKEND = Query(
    "accepted_rate_per_backend",
    'sum(rate(hft_orders_total{outcome="accepted"}[$window]))'
    f' / sum(kube_deployment_status_replicas_available{{{NS},deployment="backend"}})',
    "orders/s",
)
#: 1 while a chaos experiment is injected (kube-state-metrics' custom resource state on Kubernetes,
#: the local exporter on the local cluster): the dashboards' annotation of each experiment's window.
CHAOS_INJECTED = Query("chaos_injected", f"hftk8s_chaos_injected{{{NS}}} == 1")

#: The dashboards' panels: (row, [(panel title, unit, [(legend, query)])]).
DASHBOARD_ROWS: tuple[tuple[str, tuple[tuple[str, str, tuple[tuple[str, Query], ...]], ...]], ...] = (
    (
        "Orders",
        (
            ("Orders/s by outcome", "reqps", (("{{outcome}}", ORDER_RATE_BY_OUTCOME),)),
            ("Order latency (server side)", "ms", (("p50", SERVER_P50_MS), ("p99", SERVER_P99_MS))),
            (
                "Registrations/s by outcome",
                "reqps",
                (
                    (
                        "{{outcome}}",
                        Query(
                            "registrations_rate", "sum by (outcome) (rate(hft_registrations_total[$window]))"
                        ),
                    ),
                ),
            ),
            ("Fills/s", "ops", (("fills", FILLS_RATE),)),
        ),
    ),
    (
        "Database and engine",
        (
            ("Commit latency p99", "ms", (("p99", COMMIT_P99_MS),)),
            ("Orders per commit (group commit batch size)", "none", (("mean", BATCH_SIZE_MEAN),)),
            (
                "Engine queue depth",
                "none",
                (("{{pod}}", Query("engine_queue_depth", "max by (pod) (hft_engine_queue_depth)")),),
            ),
        ),
    ),
    (
        "Pods",
        (
            ("CPU (cores)", "none", (("{{pod}}", CPU_BY_POD),)),
            ("CPU throttled (share of CFS periods)", "percentunit", (("{{pod}}", THROTTLED_SHARE_BY_POD),)),
            (
                "Memory working set",
                "bytes",
                (
                    (
                        "{{pod}}",
                        Query("memory_by_pod", f"sum by (pod) (container_memory_working_set_bytes{{{NS}}})"),
                    ),
                ),
            ),
            (
                "Restarts",
                "none",
                (
                    (
                        "{{pod}}/{{container}}",
                        Query(
                            "restarts_rate",
                            f"increase(kube_pod_container_status_restarts_total{{{NS}}}[$window])",
                        ),
                    ),
                ),
            ),
            (
                "Waiting and last-terminated reasons",
                "none",
                (
                    (
                        "waiting {{pod}} {{reason}}",
                        Query("waiting", f"kube_pod_container_status_waiting_reason{{{NS}}} > 0"),
                    ),
                    (
                        "terminated {{pod}} {{reason}}",
                        Query("terminated", f"kube_pod_container_status_last_terminated_reason{{{NS}}} > 0"),
                    ),
                ),
            ),
            ("OOM events", "none", (("{{pod}}", OOM_EVENTS_BY_POD),)),
            (
                "Pods ready",
                "none",
                (("{{pod}}", Query("pods_ready", f'kube_pod_status_ready{{{NS},condition="true"}}')),),
            ),
            (
                "Deployment replicas available",
                "none",
                (
                    (
                        "{{deployment}}",
                        Query("replicas_available", f"kube_deployment_status_replicas_available{{{NS}}}"),
                    ),
                ),
            ),
        ),
    ),
    (
        "Per-pod resources against their limits",
        (
            ("CPU used of the limit", "percentunit", (("{{pod}}", CPU_SHARE_OF_LIMIT_BY_POD),)),
            ("Memory working set of the limit", "percentunit", (("{{pod}}", MEMORY_SHARE_OF_LIMIT_BY_POD),)),
        ),
    ),
    (
        "Scaling",
        (
            ("Backends available", "none", (("backends", BACKENDS_AVAILABLE),)),
            ("Orders/s per backend available", "reqps", (("per backend", ACCEPTED_RATE_PER_BACKEND),)),
        ),
    ),
)

# -- preflight: are the kube-state-metrics and cAdvisor series of the namespace there at all -------
KSM_SERIES = Query(
    "ksm_series",
    f"count(kube_pod_status_ready{{{NS}}})",
    "series",
    "kube-state-metrics series of the namespace",
)
CADVISOR_SERIES = Query(
    "cadvisor_series",
    f"count(container_cpu_usage_seconds_total{{{NS}}})",
    "series",
    "cAdvisor series of the namespace",
)
KSM_NAMESPACES = Query("ksm_namespaces", "count by (namespace) (kube_pod_status_ready)", "series")
CADVISOR_NAMESPACES = Query(
    "cadvisor_namespaces", "count by (namespace) (container_cpu_usage_seconds_total)", "series"
)

# -- the report's plots: range queries over a test's window plus a margin -------------------------
# Evaluated with ``$window`` set to a short range (a few scrape intervals) at every step, so each
# point is the rate around that moment. The report draws them (it never sees PromQL).
PLOT_ACCEPTED_RATE = Query("accepted_rate", ACCEPTED_RATE.expr, "orders/s", "accepted orders/s (Prometheus)")
PLOT_ORDER_RATE_BY_OUTCOME = Query(
    "order_rate_by_outcome", ORDER_RATE_BY_OUTCOME.expr, "orders/s", "orders/s by outcome"
)
PLOT_SERVER_P50_MS = Query("server_p50_ms", SERVER_P50_MS.expr, "ms", "server-side p50")
PLOT_SERVER_P99_MS = Query("server_p99_ms", SERVER_P99_MS.expr, "ms", "server-side p99")
PLOT_CPU_BY_POD = Query("cpu_cores_by_pod", CPU_BY_POD.expr, "cores", "CPU by pod")
PLOT_CPU_LIMIT_BY_POD = Query(
    "cpu_limit_by_pod", f'sum by (pod) (kube_pod_container_resource_limits{{{NS},resource="cpu"}})', "cores"
)
PLOT_THROTTLED_SHARE_BY_POD = Query(
    "cpu_throttled_share_by_pod", THROTTLED_SHARE_BY_POD.expr, "ratio", "share of CFS periods throttled"
)
PLOT_MEMORY_BY_POD = Query(
    "memory_by_pod", f"sum by (pod) (container_memory_working_set_bytes{{{NS}}})", "bytes", "working set"
)
PLOT_MEMORY_LIMIT_BY_POD = Query(
    "memory_limit_by_pod",
    f'sum by (pod) (kube_pod_container_resource_limits{{{NS},resource="memory"}})',
    "bytes",
)
PLOT_RESTARTS_BY_POD = Query(
    "restarts_by_pod", f"sum by (pod) (kube_pod_container_status_restarts_total{{{NS}}})", "restarts"
)
#: What the report plots for every test with load (``TestRecord.series``, by these names).
PLOTS = (
    PLOT_ACCEPTED_RATE,
    PLOT_ORDER_RATE_BY_OUTCOME,
    PLOT_SERVER_P50_MS,
    PLOT_SERVER_P99_MS,
    PLOT_CPU_BY_POD,
    PLOT_CPU_LIMIT_BY_POD,
    PLOT_THROTTLED_SHARE_BY_POD,
    PLOT_MEMORY_BY_POD,
    PLOT_MEMORY_LIMIT_BY_POD,
    PLOT_RESTARTS_BY_POD,
)
