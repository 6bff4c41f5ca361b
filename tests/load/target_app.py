"""A real HTTP/1.1 target for load-generator tests (test helper; run as ``python target_app.py PORT``).

GET /ok answers 200 at once; GET /hang never answers; POST /pause {"seconds": s} holds every
answer until s seconds from now (a server stall, as a GC pause or a lock would cause).
Keep-alive, Content-Length bodies, one asyncio loop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
paused_until = 0.0


class Conn(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        global paused_until
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buf[:end]).decode("latin-1")
            size = 0
            for line in head.split("\r\n")[1:]:
                if line.lower().startswith("content-length:"):
                    size = int(line.split(":", 1)[1])
            if len(self.buf) < end + 4 + size:
                return
            body = bytes(self.buf[end + 4 : end + 4 + size])
            del self.buf[: end + 4 + size]
            path = head.split(" ", 2)[1]
            if path == "/hang":
                continue
            if path == "/pause":
                paused_until = time.monotonic() + json.loads(body)["seconds"]
            delay = paused_until - time.monotonic()
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self.t.write, OK)  # type: ignore[attr-defined]
            else:
                self.t.write(OK)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", port)
    # The port it got (0 asks the kernel): the parent reads it here, so no other process can take it between.
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
