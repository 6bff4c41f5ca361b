"""A userspace TCP fault proxy (Toxiproxy-style) for NetworkChaos on a kernel without ``sch_netem``.

Its job: listen on a loopback address of the cluster's subnet, on the target pod's ports, and forward
every connection to the pod, adding latency (+- uniform jitter, with netem-like correlation) to the
chunks of the faulted direction, and "loss": a new connection is reset (RST) with probability
``loss``, and a chunk of a surviving connection is held back one TCP retransmission timeout (200 ms,
Linux's minimum RTO) with probability ``loss`` - what a lost segment costs a TCP stream. It runs an
asyncio loop on its own daemon thread, so it dies with the process that owns it. It must not edit
discovery (the cluster points the Service name at it) nor know about Chaos Mesh objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_hftk8s.errors import ChaosError

#: Linux's minimum retransmission timeout: what one lost segment delays a TCP stream by.
RETRANSMIT_SECONDS = 0.2
_CHUNK = 65536


@dataclass(frozen=True)
class Faults:
    """What the proxy does. Times in seconds, probabilities in [0, 1].

    ``direction`` follows Chaos Mesh: ``to`` faults the target's egress (responses, and the
    handshake's SYN-ACK, so a connection's first byte back waits too), ``from`` its ingress
    (requests), ``both`` both.
    """

    latency: float = 0.0
    jitter: float = 0.0
    correlation: float = 0.0
    loss: float = 0.0
    direction: str = "to"


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    delayed_chunks: int = 0
    retransmit_delays: int = 0
    forwarded_bytes: int = 0


@dataclass
class _Correlated:
    """netem's correlation: the next draw keeps the previous value with probability ``correlation``."""

    rng: random.Random
    correlation: float
    last: float = field(default=0.0)

    def draw(self) -> float:
        fresh = self.rng.random()
        self.last = self.last * self.correlation + fresh * (1 - self.correlation)
        return self.last


class FaultProxy:
    """``listen_host:port`` -> ``upstream_host:port`` for each port, with :class:`Faults` applied."""

    def __init__(
        self,
        *,
        listen_host: str,
        upstream_host: str,
        ports: tuple[int, ...],
        faults: Faults,
        seed: int | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.listen_host = listen_host
        self.upstream_host = upstream_host
        self.ports = ports
        self.faults = faults
        self.connect_timeout = connect_timeout
        self.stats = ProxyStats()
        rng = random.Random(seed)
        self._delay_draw = _Correlated(rng, faults.correlation)
        self._loss_draw = _Correlated(random.Random(rng.random()), faults.correlation)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = threading.Event()

    # -- lifecycle (called from any thread) ---------------------------------------------------

    def start(self, *, timeout: float = 5.0) -> None:
        """Bind every port and serve on a daemon thread; :class:`ChaosError` if a bind fails."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._bind())
            except BaseException as e:  # reported to start(); the thread ends
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()
                self._stopped.set()

        self._thread = threading.Thread(target=run, name=f"hft-netproxy-{self.listen_host}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            self.stop()
            raise ChaosError(
                f"network fault proxy could not listen on {self.listen_host}:{list(self.ports)}: expected a "
                f"free loopback address and ports; got {failure[0] if failure else 'no answer in time'}. "
                "Check that nothing else binds that address."
            ) from (failure[0] if failure else None)

    def stop(self, *, timeout: float = 5.0) -> None:
        """Close the listeners and abort every proxied connection; idempotent."""
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # already closed between the check and the call
                loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- inside the loop -----------------------------------------------------------------------

    async def _bind(self) -> None:
        for port in self.ports:
            server = await asyncio.start_server(
                self._handler(port),
                host=self.listen_host,
                port=port,
                reuse_address=True,
            )
            self._servers.append(server)

    def _handler(self, port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]:
        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(self._handle(reader, writer, port))
            self._tasks.add(task)  # tracked, so stop() can cancel every live connection
            task.add_done_callback(self._tasks.discard)

        return accept

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    def _lost(self) -> bool:
        return self.faults.loss > 0 and self._loss_draw.draw() < self.faults.loss

    def _delay(self) -> float:
        f = self.faults
        if f.latency <= 0 and f.jitter <= 0:
            return 0.0
        return max(0.0, f.latency + (2 * self._delay_draw.draw() - 1) * f.jitter)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        self.stats.connections += 1
        egress = self.faults.direction in ("to", "both")  # target -> client
        ingress = self.faults.direction in ("from", "both")  # client -> target
        if self._lost():
            self.stats.resets += 1
            _reset(writer)
            return
        try:
            if egress:  # the SYN-ACK leaves the target late: nothing flows before that
                await asyncio.sleep(self._delay())
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(self.upstream_host, port), self.connect_timeout
            )
        except (TimeoutError, OSError):
            _reset(writer)  # the pod refuses: so does its proxy
            return
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, faulted=ingress),
                self._pipe(up_reader, writer, faulted=egress),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                w.transport.abort() if w.transport.is_closing() else w.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, faulted: bool
    ) -> None:
        """Copy one direction; faulted chunks leave at arrival + delay, in order (no reordering)."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def read() -> None:
            last_release = 0.0
            try:
                while data := await reader.read(_CHUNK):
                    release = time.monotonic()
                    if faulted:
                        extra = self._delay()
                        if self._lost():
                            extra += RETRANSMIT_SECONDS
                            self.stats.retransmit_delays += 1
                        if extra > 0:
                            self.stats.delayed_chunks += 1
                        release += extra
                    last_release = max(last_release, release)
                    await queue.put((last_release, data))
            finally:
                await queue.put(None)

        async def write() -> None:
            while (item := await queue.get()) is not None:
                release, data = item
                wait = release - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                self.stats.forwarded_bytes += len(data)
            if writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()

        await asyncio.gather(read(), write())


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
