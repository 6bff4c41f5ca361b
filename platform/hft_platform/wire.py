"""The engine wire protocol: length-prefixed binary frames over persistent TCP connections.

Every frame is ``u32 length`` (little-endian, counting the bytes after it), ``u8 type``, then a body.
Hot-path bodies are arrays of fixed-size little-endian records, so one frame carries any number of
orders and costs one ``struct`` call per record; control bodies are JSON. Requests are pipelined:
a connection may have any number of frames in flight and each reply record carries the ``req_id``
of its request (unique per connection). See ``platform/README.md``. Pure encoding: no sockets here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

HEADER = struct.Struct("<IB")  # length (of type byte + body), frame type

T_ORDERS = 1  # body: n x ORDER_REC
T_CANCELS = 2  # body: n x CANCEL_REC
T_ACKS = 3  # body: n x ACK_REC (reply to ORDERS and CANCELS)
T_CONTROL = 4  # body: JSON {"req_id": int, "op": "ping" | "depth", ...}
T_CONTROL_REPLY = 5  # body: JSON {"req_id": int, ...}

#: req_id, user_id, price (ticks, 0 for market), qty, side, kind, symbol, client_order_id
ORDER_REC = struct.Struct("<IQqqBB12s64s")
#: req_id, user_id, order_id, symbol
CANCEL_REC = struct.Struct("<IQQ12s")
#: req_id, status, state, duplicate, order_id, filled (or cancelled) qty, resting qty
ACK_REC = struct.Struct("<IBBBxQqq")

MAX_FRAME = 16 * 1024 * 1024


class FrameError(ValueError):
    """A peer sent bytes that are not a valid frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    body: bytes


def encode(kind: int, body: bytes) -> bytes:
    return HEADER.pack(len(body) + 1, kind) + body


class FrameReader:
    """Incremental decoder: feed bytes as they arrive, iterate complete frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        frames: list[Frame] = []
        while end - pos >= HEADER.size:
            length, kind = HEADER.unpack_from(buf, pos)
            if length < 1 or length > MAX_FRAME:
                raise FrameError(f"expected a frame length in [1, {MAX_FRAME}], saw {length}")
            stop = pos + 4 + length
            if stop > end:
                break
            frames.append(Frame(kind, bytes(buf[pos + HEADER.size : stop])))
            pos = stop
        del buf[:pos]
        return frames


def records(rec: struct.Struct, body: bytes) -> Iterator[tuple]:
    if len(body) % rec.size:
        raise FrameError(f"expected a body of whole {rec.size}-byte records, saw {len(body)} bytes")
    return rec.iter_unpack(body)
