"""A small real HTTP server that exports contract metrics with prometheus_client (test helper).

Run as ``python exporter_app.py PORT``. It serves, on one keep-alive HTTP/1.1 port:
  GET  /metrics        prometheus_client exposition
  POST /v1/users       counts hft_registrations_total{outcome="success"}, returns {"api_key": ...}
  POST /v1/orders      counts hft_orders_total{outcome="accepted"} and observes
                       hft_order_latency_seconds (value from X-Latency header, default 1 ms)
  POST /ctl            {"op": "inc"|"set"|"grow", "metric": ..., "labels": {...}, "value": n} drives
                       any metric below directly, e.g. a CrashLoopBackOff waiting reason; "grow"
                       adds n per second to a counter until set to 0 (CPU seconds of a container)
It stands in for the platform only in tests of the plugin's own machinery (SLOs, load, report).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import uvloop
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REG = CollectorRegistry()
ORDERS = Counter("hft_orders", "orders by outcome", ["outcome"], registry=REG)
REGS = Counter("hft_registrations", "registrations by outcome", ["outcome"], registry=REG)
LATENCY = Histogram(
    "hft_order_latency_seconds",
    "order latency",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REG,
)
# Export the common outcomes at 0 from the start: rate() cannot see the jump of a series that is
# born mid-window, so a counter must exist before the window opens (the platform does the same).
ORDERS.labels(outcome="accepted")
ORDERS.labels(outcome="rejected")  # the platform exports every outcome from the start too
REGS.labels(outcome="success")
POD = ["namespace", "pod", "container"]
METRICS = {
    "hft_orders_total": ORDERS,
    "hft_registrations_total": REGS,
    "kube_pod_status_ready": Gauge(
        "kube_pod_status_ready", "ready", ["namespace", "pod", "condition"], registry=REG
    ),
    "kube_pod_container_status_waiting_reason": Gauge(
        "kube_pod_container_status_waiting_reason", "waiting", [*POD, "reason"], registry=REG
    ),
    "kube_pod_container_status_last_terminated_reason": Gauge(
        "kube_pod_container_status_last_terminated_reason", "terminated", [*POD, "reason"], registry=REG
    ),
    "kube_pod_container_status_restarts_total": Counter(
        "kube_pod_container_status_restarts", "restarts", POD, registry=REG
    ),
    # What a kube context's kube-state-metrics and kubelet cAdvisor export about a container.
    "kube_pod_container_resource_limits": Gauge(
        "kube_pod_container_resource_limits", "limits", [*POD, "resource", "unit"], registry=REG
    ),
    "container_cpu_usage_seconds_total": Counter("container_cpu_usage_seconds", "cpu", POD, registry=REG),
    "container_memory_working_set_bytes": Gauge(
        "container_memory_working_set_bytes", "memory", POD, registry=REG
    ),
    "container_oom_events_total": Counter("container_oom_events", "oom", POD, registry=REG),
}
#: (metric, labels) -> amount added per second by the ticker: a counter that grows like CPU seconds.
GROWING: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}


def respond(status: int, body: bytes, ctype: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    if method == "GET" and path == "/metrics":
        return respond(200, generate_latest(REG), "text/plain; version=0.0.4")
    if method == "POST" and path == "/v1/orders":
        ORDERS.labels(outcome="accepted").inc()
        LATENCY.observe(float(headers.get("x-latency", "0.001")))
        return respond(200, b'{"status":"accepted"}')
    if method == "POST" and path == "/v1/users":
        REGS.labels(outcome="success").inc()
        return respond(201, json.dumps({"api_key": uuid.uuid4().hex}).encode())
    if method == "POST" and path == "/ctl":
        cmd = json.loads(body)
        labels = cmd.get("labels", {})
        if cmd["op"] == "grow":  # {"op": "grow", "value": per second}: 0 stops it
            GROWING[(cmd["metric"], tuple(sorted(labels.items())))] = float(cmd.get("value", 0))
            METRICS[cmd["metric"]].labels(**labels)
            return respond(200, b"{}")
        metric = METRICS[cmd["metric"]].labels(**labels)
        getattr(metric, cmd["op"])(cmd.get("value", 1))
        return respond(200, b"{}")
    return respond(404, b'{"detail":"not found"}')


class Conn(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)
            }
            size = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + size:
                return
            body = bytes(self.buf[end + 4 : end + 4 + size])
            del self.buf[: end + 4 + size]
            self.t.write(handle(method, path.split("?", 1)[0], headers, body))  # type: ignore[attr-defined]


async def grow(tick: float = 0.1) -> None:
    while True:
        await asyncio.sleep(tick)
        for (name, labels), per_second in list(GROWING.items()):
            if per_second:
                METRICS[name].labels(**dict(labels)).inc(per_second * tick)


async def main(port: int) -> None:
    asyncio.get_running_loop().create_task(grow())
    server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
