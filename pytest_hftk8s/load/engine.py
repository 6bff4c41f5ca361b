"""The request engine: a hand-written HTTP/1.1 keep-alive client on asyncio protocols and uvloop.

Open loop (constant rate): request *i* is due at ``t0 + i/rate`` whether or not earlier ones have
answered; its latency is measured from that intended time, so a slow server cannot hide behind a
slow generator (no coordinated omission). A request that times out is recorded at the moment it
timed out; one never sent, or lost with its connection, is counted as unanswered (a failure).
Closed loop: each connection sends its next request as soon as the previous one answered. Every
request has a timeout and the run a hard deadline.

It runs on one event loop in the calling thread and knows nothing about pytest, the platform's API
or Prometheus: it sends the bytes a ``RequestFactory`` builds, counts status codes, and hands each
answer's body to an optional ``on_answer`` callback (an order flow learns its order ids that way).

It measures its own CPU (the calling thread's: ``RUSAGE_THREAD`` where it exists, Linux;
``time.thread_time()`` elsewhere, macOS) and, through ``extra_cpu``, the CPU of other threads of
this process that carry its traffic - an in-process port-forward's - so the run can judge whether
the generator side, not the target, was the bottleneck. It does not know what those threads are.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

RequestFactory = Callable[[int], bytes]
#: ``on_answer(seq, status, body)``, called on the event loop for every complete answer.
AnswerHook = Callable[[int, int, bytes], None]
#: Cumulative CPU seconds of some other threads of this process (sampled at the start and the end).
CpuSource = Callable[[], float]


def thread_cpu_seconds() -> float:
    """CPU seconds (user + system) of the calling thread so far.

    ``resource.RUSAGE_THREAD`` is Linux-only; macOS has no per-thread ``getrusage``, and there
    ``time.thread_time()`` (``CLOCK_THREAD_CPUTIME_ID`` / the Mach thread's times) measures the same.
    """
    who = getattr(resource, "RUSAGE_THREAD", None)  # looked up per call: a test may remove it
    if who is None:
        return time.thread_time()
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


_HIST_MAX_US = 120_000_000
#: Width of one ``EngineResult.timeline`` bucket, seconds.
TIMELINE_BUCKET_S = 0.1


@dataclass
class EngineSpec:
    host: str
    port: int
    make_request: RequestFactory
    mode: str = "open"  # "open" (constant rate) | "closed"
    rate: float = 1000.0  # open loop: requests per second
    duration_s: float = 10.0
    connections: int = 32
    request_timeout_s: float = 2.0
    drain_s: float = 2.0  # after the schedule ends, how long to wait for in-flight answers
    on_answer: AnswerHook | None = None
    #: Other threads of this process carrying the traffic (an in-process port-forward): their CPU
    #: over the run is added to the generator's in the validity judgement (they share its GIL).
    extra_cpu: CpuSource | None = None


@dataclass
class EngineResult:
    scheduled: int = 0
    sent: int = 0
    completed: int = 0
    ok: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    started: float = 0.0  # wall clock (time.time()) of the first intended send
    ended: float = 0.0  # wall clock when the schedule ended
    cpu_s: float = 0.0
    extra_cpu_s: float = 0.0  # of EngineSpec.extra_cpu over the run (0 without one)
    wall_s: float = 0.0
    max_lag_s: float = 0.0
    late_ticks: int = 0
    ticks: int = 0
    timed_out: int = 0  # recorded in the histogram at the moment they timed out
    unanswered: int = 0  # never sent, or lost with their connection: failures, not latencies
    histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, _HIST_MAX_US, 3))
    # 2xx answers per TIMELINE_BUCKET_S of wall clock (key: int(time.time() / bucket)), for recovery
    # times after a fault; and the sequence numbers the server acknowledged (2xx), in answer order.
    timeline: dict[int, int] = field(default_factory=dict)
    acked: list[int] = field(default_factory=list)
    # Per second of *intended* send time (key: whole seconds since ``started``): every latency in ms
    # (answers and timeouts, the same requests as the histogram) and the requests that failed
    # (non-2xx, timed out, unanswered or never sent), for the report's plots over time.
    perf_origin: float = 0.0  # time.perf_counter() at ``started``
    latencies_by_second: dict[int, list[float]] = field(default_factory=dict)
    failures_by_second: dict[int, int] = field(default_factory=dict)

    def error(self, kind: str, n: int = 1) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + n

    def second_of(self, intended: float) -> int:
        return max(0, int(intended - self.perf_origin))

    def latency(self, intended: float, seconds: float) -> None:
        self.histogram.record_value(max(1, int(seconds * 1e6)))
        self.latencies_by_second.setdefault(self.second_of(intended), []).append(seconds * 1e3)

    def failure(self, intended: float, n: int = 1) -> None:
        key = self.second_of(intended)
        self.failures_by_second[key] = self.failures_by_second.get(key, 0) + n


class _Conn(asyncio.Protocol):
    """One persistent connection; it parses responses (Content-Length bodies) incrementally."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1  # body bytes still expected for the current response, -1 = reading headers
        self.status = 0
        self.intended = 0.0
        self.seq = -1
        self.sent_at = 0.0
        self.busy = False
        self.closing = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they do have write() and close()
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, intended: float, seq: int) -> None:
        self.intended = intended
        self.seq = seq
        self.sent_at = time.perf_counter()
        self.busy = True
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                del buf[: end + 4]
                try:
                    self.status = int(head[9:12])
                except ValueError:
                    self._fail("bad_response")
                    return
                self.closing = b"connection: close" in head
                i = head.find(b"content-length:")
                if i >= 0:
                    j = head.find(b"\r\n", i)
                    self.need = int(head[i + 15 : j if j >= 0 else len(head)])
                elif b"transfer-encoding: chunked" in head:
                    self._fail("chunked_unsupported")
                    return
                else:
                    self.need = 0
            if len(buf) < self.need:
                return
            body = bytes(buf[: self.need]) if self.engine.spec.on_answer is not None else b""
            del buf[: self.need]
            self.need = -1
            self.busy = False
            self.engine.on_response(self, self.status, body)
            if self.closing:
                self._fail("server_closed", count=False)
                return
            if not buf:
                return

    def _fail(self, kind: str, *, count: bool = True) -> None:
        if count and self.busy:
            self.engine.on_failure(self, kind)
            self.busy = False
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost:
            self.lost = True
            if self.busy:
                self.busy = False
                self.engine.on_failure(self, "connection_lost")
        self.engine.on_lost(self)


class _Engine:
    def __init__(self, spec: EngineSpec, stop: asyncio.Event, result: EngineResult) -> None:
        self.spec = spec
        self.result = result
        self.stop = stop
        self.pending: collections.deque[float] = collections.deque()
        self.idle: list[_Conn] = []
        self.conns: set[_Conn] = set()
        self.seq = 0
        self.schedule_done = False
        self.running = False
        self.loop = asyncio.get_running_loop()

    # -- callbacks ------------------------------------------------------------------------------

    def on_failure(self, conn: _Conn, kind: str) -> None:
        """A sent request ended without an answer: a timeout is a latency, anything else a failure."""
        r = self.result
        r.error(kind)
        r.failure(conn.intended)
        if kind == "timeout":
            r.timed_out += 1
            r.latency(conn.intended, time.perf_counter() - conn.intended)
        else:
            r.unanswered += 1

    def on_response(self, conn: _Conn, status: int, body: bytes = b"") -> None:
        now = time.perf_counter()
        r = self.result
        r.completed += 1
        r.statuses[status] = r.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            r.ok += 1
            r.acked.append(conn.seq)
            bucket = int(time.time() / TIMELINE_BUCKET_S)
            r.timeline[bucket] = r.timeline.get(bucket, 0) + 1
        else:
            r.failure(conn.intended)
        r.latency(conn.intended, now - conn.intended)
        if self.spec.on_answer is not None:
            self.spec.on_answer(conn.seq, status, body)
        if conn.closing:
            return
        self._next(conn, now)

    def on_lost(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if not self.schedule_done and not self.stop.is_set():
            self.loop.create_task(self._connect())

    def _next(self, conn: _Conn, now: float) -> None:
        if not self.running:
            self.idle.append(conn)
        elif self.spec.mode == "closed":
            if self.schedule_done or self.stop.is_set():
                self.idle.append(conn)
                return
            self._send(conn, now)
        elif self.pending:
            self._send(conn, self.pending.popleft())
        else:
            self.idle.append(conn)

    def _send(self, conn: _Conn, intended: float) -> None:
        seq = self.seq
        self.seq += 1
        self.result.sent += 1
        conn.send(self.spec.make_request(seq), intended, seq)

    # -- tasks ----------------------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            transport, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Conn(self), self.spec.host, self.spec.port),
                timeout=self.spec.request_timeout_s,
            )
        except (OSError, TimeoutError):
            self.result.error("connect_failed")
            await asyncio.sleep(0.05)
            if not self.schedule_done and not self.stop.is_set():
                self.loop.create_task(self._connect())
            return
        conn.transport = transport  # uvloop may call connection_made after returning
        self.conns.add(conn)
        self._next(conn, time.perf_counter())

    async def _schedule_open(self, t0: float) -> None:
        spec, r = self.spec, self.result
        total = int(spec.rate * spec.duration_s)
        r.scheduled = total
        interval = 1.0 / spec.rate
        i = 0
        while i < total and not self.stop.is_set():
            now = time.perf_counter()
            due = min(total, int((now - t0) * spec.rate) + 1)
            if due > i:
                lag = now - (t0 + i * interval)
                r.ticks += 1
                r.max_lag_s = max(r.max_lag_s, lag)
                if lag > 0.005:
                    r.late_ticks += 1
                pending = self.pending
                for k in range(i, due):
                    pending.append(t0 + k * interval)
                i = due
                idle = self.idle
                while pending and idle:
                    self._send(idle.pop(), pending.popleft())
            # uvloop timers have 1 ms resolution: shorter sleeps would spin; dispatch per 1 ms tick
            # instead (latency still counts from each request's intended time).
            await asyncio.sleep(max(0.001, t0 + i * interval - time.perf_counter()))

    async def _sweep(self) -> None:
        timeout = self.spec.request_timeout_s
        while True:
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            for conn in list(self.conns):
                if conn.busy and now - conn.sent_at > timeout:
                    conn._fail("timeout")

    async def run(self) -> EngineResult:
        spec, r = self.spec, self.result
        cpu0 = thread_cpu_seconds()
        extra0 = spec.extra_cpu() if spec.extra_cpu is not None else 0.0
        wall0 = time.perf_counter()
        sweeper = self.loop.create_task(self._sweep())
        try:
            await asyncio.gather(*(self._connect() for _ in range(spec.connections)))
            t0 = time.perf_counter()
            r.started = time.time()
            r.perf_origin = t0
            self.running = True
            if spec.mode == "closed":
                for conn in list(self.idle):
                    self.idle.remove(conn)
                    self._send(conn, time.perf_counter())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=spec.duration_s)
                r.scheduled = r.sent
            else:
                await self._schedule_open(t0)
            self.schedule_done = True
            r.ended = r.started + (time.perf_counter() - t0)
            drain_until = time.perf_counter() + spec.drain_s + spec.request_timeout_s
            while time.perf_counter() < drain_until and not self.stop.is_set():
                if not self.pending and not any(c.busy for c in self.conns):
                    break
                await asyncio.sleep(0.01)
        finally:
            self.schedule_done = True
            sweeper.cancel()
            if self.pending:
                r.error("unsent", len(self.pending))
                r.unanswered += len(self.pending)
                for intended in self.pending:
                    r.failure(intended)
                self.pending.clear()
            for conn in list(self.conns):
                if conn.busy:
                    conn._fail("abandoned_at_deadline")
                elif conn.transport is not None:
                    conn.lost = True
                    conn.transport.close()
            await asyncio.sleep(0)
            r.cpu_s = thread_cpu_seconds() - cpu0
            if spec.extra_cpu is not None:
                r.extra_cpu_s = max(0.0, spec.extra_cpu() - extra0)
            r.wall_s = time.perf_counter() - wall0
            if not r.ended:
                r.ended = time.time()
        return r


async def run_engine(
    spec: EngineSpec, stop: asyncio.Event, result: EngineResult | None = None
) -> EngineResult:
    """Run one load phase on the current loop; ``stop`` ends it early (the result stays valid).

    Pass ``result`` to watch its counters from another thread while it runs (plain int reads).
    """
    if spec.mode not in ("open", "closed"):
        raise ValueError(f"mode must be 'open' or 'closed', got {spec.mode!r}")
    return await _Engine(spec, stop, result or EngineResult()).run()
