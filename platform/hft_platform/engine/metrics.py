"""Prometheus series of the engine service (names from DESIGN.md "Metric contract").

Declarations only; the HTTP endpoint that serves them is ``hft_platform.engine.probes``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)

FILLS = Counter("hft_fills", "Executions committed by this engine shard", ["shard"])
QUEUE_DEPTH = Gauge(
    "hft_engine_queue_depth", "Requests received but not yet acknowledged (queued or committing)", ["shard"]
)
ENGINE_LATENCY = Histogram(
    "hft_engine_latency_seconds",
    "Engine service time per request: frame received to durable reply sent",
    ["shard"],
    buckets=_LATENCY_BUCKETS,
)
DB_COMMIT = Histogram(
    "hft_db_commit_seconds",
    "Wall time of one group-commit statement (insert orders, move makers, insert fills, commit)",
    ["shard"],
    buckets=_LATENCY_BUCKETS,
)
DB_BATCH = Histogram(
    "hft_db_batch_size",
    "Orders and cancels written per group commit",
    ["shard"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
ENGINE_RUN = Histogram(
    "hft_engine_batch_seconds",
    "Wall time of one submit_batch call into the compiled engine",
    ["shard"],
    buckets=(0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01),
)
