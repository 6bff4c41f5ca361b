"""A local loopback listener that forwards each connection to a pod port (``kubectl port-forward``).

Each accepted connection opens its own port-forward websocket through the callable it is given (the
cluster passes :meth:`~pytest_hftk8s.cluster.kubernetes.api.KubeApi.open_websocket` on
``pods/<pod>/portforward``) and copies bytes both ways, speaking ``v4.channel.k8s.io`` itself: one
channel byte per message, channel 0 the data, channel 1 the errors, and the first message on each
channel the two-byte port number. One thread per connection does all the work, so the CPU the
forwarding costs is measured where it is spent (:attr:`LocalPortForward.cpu_seconds`): those threads
share the test process - and its GIL - with the load generator, whose validity judgement must count
them. It only listens on 127.0.0.1, owns its threads and sockets, and :meth:`LocalPortForward.close`
stops them all, bounded. It knows nothing about Services or the Kubernetes client.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["LocalPortForward"]

#: Opens one port-forward websocket (``websocket-client`` API: ``sock``, ``send_binary``,
#: ``recv_data_frame``, ``close``) on the pod's ``portforward`` subresource for the remote port.
OpenStream = Callable[[], Any]

_BINARY, _CLOSE = 0x2, 0x8  # websocket opcodes (RFC 6455)
_DATA, _ERROR = 0, 1  # port-forward channels of the first (only) port


class _CpuMeter:
    """CPU seconds of the threads that report to it, live ones included (``time.thread_time``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finished = 0.0
        self._live: dict[int, float] = {}

    def tick(self, started: float) -> None:
        """Called by a counted thread: its CPU since ``started`` (its own ``thread_time`` at start)."""
        self._live[threading.get_ident()] = time.thread_time() - started  # one writer per key

    def done(self, started: float) -> None:
        spent = time.thread_time() - started
        with self._lock:
            self._live.pop(threading.get_ident(), None)
            self._finished += spent

    @property
    def seconds(self) -> float:
        with self._lock:
            return self._finished + sum(list(self._live.values()))


class LocalPortForward:
    def __init__(self, *, open_stream: OpenStream, remote_port: int, name: str) -> None:
        self.name = name
        self.remote_port = remote_port
        self._open_stream = open_stream
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._cpu = _CpuMeter()
        self.last_error: BaseException | None = None
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self._spawn(self._accept_loop, f"hft-pf-accept-{name}")

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds spent so far by this forward's threads (accepting, framing, copying)."""
        return self._cpu.seconds

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=self._counted, args=(target, *args), name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _counted(self, target: Callable[..., None], *args: Any) -> None:
        started = time.thread_time()
        try:
            target(lambda: self._cpu.tick(started), *args)
        finally:
            self._cpu.done(started)

    def _accept_loop(self, tick: Callable[[], None]) -> None:
        while not self._stop.is_set():
            tick()
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.append(client)
                self.connections += 1
            self._spawn(self._serve, f"hft-pf-conn-{self.name}", client)

    def _serve(self, tick: Callable[[], None], client: socket.socket) -> None:
        ws = None
        try:
            ws = self._open_stream()
            with self._lock:
                self._sockets.append(ws.sock)  # close() shuts the raw socket: no close handshake
            self._pump(client, ws, tick)
        except Exception as e:  # reported through last_error; the client sees a closed connection
            self.last_error = e
        finally:
            with contextlib.suppress(OSError):
                client.close()
            if ws is not None:
                with contextlib.suppress(Exception):
                    ws.close(timeout=0.5)

    def _pump(self, client: socket.socket, ws: Any, tick: Callable[[], None]) -> None:
        wsock = ws.sock
        header_pending = {_DATA: True, _ERROR: True}  # the first message of a channel is its port
        while not self._stop.is_set():
            readable, _, _ = select.select([client, wsock], [], [], 0.2)
            if client in readable:
                data = client.recv(65536)
                if not data:
                    return
                ws.send_binary(bytes((_DATA,)) + data)
            if wsock in readable:
                while True:  # drain what TLS already decrypted: select cannot see it
                    opcode, frame = ws.recv_data_frame(True)
                    if opcode == _CLOSE:
                        return
                    if opcode == _BINARY and frame.data:
                        channel, payload = frame.data[0], frame.data[1:]
                        if header_pending.get(channel):
                            header_pending[channel] = False
                        elif channel == _DATA:
                            client.sendall(payload)
                        elif channel == _ERROR and payload:
                            raise ConnectionError(
                                f"port-forward to {self.name}: {payload.decode('utf-8', 'replace')}"
                            )
                    if not (isinstance(wsock, ssl.SSLSocket) and wsock.pending()):
                        break
            tick()

    def close(self, *, timeout: float = 2.0) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
