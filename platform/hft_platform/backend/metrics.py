"""Prometheus series of the backend (names from DESIGN.md "Metric contract"). Declarations only."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ORDERS = Counter(
    "hft_orders",
    "Order requests by outcome: accepted, rejected (by the engine), duplicate (retry answered with "
    "the stored ack), invalid, unauthorized, rate_limited, unavailable",
    ["outcome"],
)
REGISTRATIONS = Counter("hft_registrations", "User registrations by outcome: ok, invalid, error", ["outcome"])
ORDER_LATENCY = Histogram(
    "hft_order_latency_seconds",
    "Backend time per order request, from handler entry to a durable acknowledgement",
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0),
)
REDIS_LATENCY = Histogram(
    "hft_redis_seconds",
    "Round trip of one Redis call as the backend sees it (command sent to reply handled), by op: "
    "gate (the order path's rate-limit and idempotency script), key_get, key_set",
    ["op"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)

ORDER_OUTCOMES = (
    "accepted",
    "rejected",
    "duplicate",
    "invalid",
    "unauthorized",
    "rate_limited",
    "unavailable",
)
for _outcome in ORDER_OUTCOMES:
    ORDERS.labels(_outcome)
for _outcome in ("ok", "invalid", "error"):
    REGISTRATIONS.labels(_outcome)
for _op in ("gate", "key_get", "key_set"):
    REDIS_LATENCY.labels(_op)
