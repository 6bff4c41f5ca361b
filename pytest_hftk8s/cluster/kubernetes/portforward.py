"""A local loopback listener that forwards each connection to a pod port (``kubectl port-forward``).

Each accepted connection opens its own port-forward stream through the callable it is given (the
cluster passes one built on ``kubernetes.stream.portforward``) and copies bytes both ways. It only
listens on 127.0.0.1, owns its threads and sockets, and :meth:`LocalPortForward.close` stops them all,
bounded. It knows nothing about Services or the Kubernetes client.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LocalPortForward"]

#: Opens one port-forward stream and returns an object with ``.socket(port)`` (and ``.close()``).
OpenStream = Callable[[], Any]


class LocalPortForward:
    def __init__(self, *, open_stream: OpenStream, remote_port: int, name: str) -> None:
        self.name = name
        self.remote_port = remote_port
        self._open_stream = open_stream
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.last_error: BaseException | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self._spawn(self._accept_loop, f"hft-pf-accept-{name}")

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            with self._lock:
                self._sockets.append(client)
            self._spawn(self._serve, f"hft-pf-conn-{self.name}", client)

    def _serve(self, client: socket.socket) -> None:
        stream = None
        try:
            stream = self._open_stream()
            remote = stream.socket(self.remote_port)
            remote.setblocking(True)
            with self._lock:
                self._sockets.append(remote)
            self._pump(client, remote)
        except Exception as e:  # reported through last_error; the client sees a closed connection
            self.last_error = e
        finally:
            with contextlib.suppress(OSError):
                client.close()
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._stop.is_set():
            readable, _, _ = select.select([a, b], [], [], 0.2)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)

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
