"""Client side of the engine wire protocol: one persistent, pipelined connection per shard.

Requests made during one event-loop tick are packed into one frame and written once; replies are
matched to waiting futures by ``req_id``. If the connection drops, every waiting request fails with
:class:`Unavailable` (its outcome is unknown to the caller, so it must retry with the same
client_order_id) and the client reconnects in the background with capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from hft_platform import wire
from hft_platform.backend.services.errors import Unavailable
from hft_platform.backend.services.reconnecting import ReconnectingClient
from hft_platform.domain import Ack
from hft_platform.settings import Shard

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0
_REQ_MASK = 0xFFFFFFFF


class ShardClient(ReconnectingClient):
    """Connection to one engine shard. Also the asyncio protocol of that connection."""

    closing_reason = "backend shutting down"

    def __init__(self, shard: Shard, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__(host=shard.host, port=shard.port)
        self.shard = shard
        self._timeout_s = timeout_s
        self._reader = wire.FrameReader()
        # req_id -> (future, sent at, counts toward _unanswered)
        self._pending: dict[int, tuple[asyncio.Future, float, bool]] = {}
        self._orders: list[bytes] = []
        self._cancels: list[bytes] = []
        self._flush_scheduled = False
        # Orders/cancels sent but not yet answered. New ones wait while any are in flight: the
        # engine commits in groups anyway, and one frame per commit cycle instead of one per tick
        # saves loopback writes, the dominant per-order cost of this process.
        self._unanswered = 0
        self._next_req = 0

    def peer(self) -> str:
        return f"engine shard {self.shard.address}"

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            deadline = time.monotonic() - self._timeout_s
            for req_id, (fut, sent, counted) in list(self._pending.items()):
                if sent < deadline:
                    del self._pending[req_id]
                    self._answered(counted)
                    if not fut.done():
                        fut.set_exception(
                            Unavailable(self._unavailable(f"no reply in {self._timeout_s:.0f}s"))
                        )

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._reader = wire.FrameReader()
        log.info("connected to engine shard %s", self.shard.address)

    def connection_lost(self, exc: Exception | None) -> None:
        self._orders.clear()
        self._cancels.clear()
        self._unanswered = 0
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        pending = self._pending
        try:
            frames = self._reader.feed(data)
        except wire.FrameError as e:
            log.error("bad frame from engine shard %s: %s", self.shard.address, e)
            if self._transport is not None:
                self._transport.close()
            return
        for frame in frames:
            if frame.kind == wire.T_ACKS:
                for rec in wire.ACK_REC.iter_unpack(frame.body):
                    entry = pending.pop(rec[0], None)
                    if entry is not None:
                        self._unanswered -= 1
                        if not entry[0].done():
                            entry[0].set_result(rec)
                if self._unanswered <= 0 and (self._orders or self._cancels):
                    self._schedule_flush()
            elif frame.kind == wire.T_CONTROL_REPLY:
                body = orjson.loads(frame.body)
                entry = pending.pop(body.get("req_id"), None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(body)

    # -- requests ----------------------------------------------------------------------------
    def enqueue(
        self,
        fut: asyncio.Future,
        *,
        user_id: int,
        client_order_id: str,
        symbol: str,
        side: int,
        kind: int,
        price: int,
        qty: int,
    ) -> None:
        """Add an order to this tick's frame; ``fut`` gets the raw ACK_REC tuple or Unavailable."""
        transport = self._transport
        if transport is None or transport.is_closing():
            fut.set_exception(Unavailable(self._unavailable("not connected")))
            return
        self._next_req = req_id = (self._next_req + 1) & _REQ_MASK
        self._pending[req_id] = (fut, time.monotonic(), True)
        self._orders.append(
            wire.ORDER_REC.pack(
                req_id, user_id, price, qty, side, kind, symbol.encode(), client_order_id.encode()
            )
        )
        self._schedule_flush()

    async def cancel(self, *, user_id: int, order_id: int, symbol: str) -> Ack:
        req_id, fut = self._register(counted=True)
        self._cancels.append(wire.CANCEL_REC.pack(req_id, user_id, order_id, symbol.encode()))
        self._schedule_flush()
        return ack_from_record(await fut)

    async def control(self, op: str, **fields: object) -> dict:
        req_id, fut = self._register()
        assert self._transport is not None
        self._transport.write(
            wire.encode(wire.T_CONTROL, orjson.dumps({"req_id": req_id, "op": op, **fields}))
        )
        return await fut

    def _register(self, *, counted: bool = False) -> tuple[int, asyncio.Future]:
        if self._transport is None or self._transport.is_closing():
            raise Unavailable(self._unavailable("not connected"))
        self._next_req = req_id = (self._next_req + 1) & _REQ_MASK
        assert self._loop is not None
        fut = self._loop.create_future()
        self._pending[req_id] = (fut, time.monotonic(), counted)
        return req_id, fut

    def _answered(self, counted: bool) -> None:
        if counted:
            self._unanswered -= 1
            if self._unanswered <= 0 and (self._orders or self._cancels):
                self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._unanswered > 0:
            return  # the next ACKS frame triggers the flush
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self._transport
        if transport is None:
            return
        out = b""
        if self._orders:
            out = wire.encode(wire.T_ORDERS, b"".join(self._orders))
            self._unanswered += len(self._orders)
            self._orders.clear()
        if self._cancels:
            out += wire.encode(wire.T_CANCELS, b"".join(self._cancels))
            self._unanswered += len(self._cancels)
            self._cancels.clear()
        if out:
            transport.write(out)

    def _fail_all(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for fut, _, _ in pending.values():
            if not fut.done():
                fut.set_exception(Unavailable(self._unavailable(why)))

    def _unavailable(self, why: str) -> str:
        return (
            f"engine shard {self.shard.address} unavailable ({why}); the order may or may not have been "
            "accepted: retry with the same client_order_id"
        )


def ack_from_record(rec: tuple) -> Ack:
    _, status, state, dup, order_id, filled, resting = rec
    return Ack(order_id, status, state, filled, resting, bool(dup))


class EngineRouter:
    """Routes by symbol to the shard that owns it (HFT_ENGINE_SHARDS)."""

    def __init__(self, shards: tuple[Shard, ...]) -> None:
        self.clients = [ShardClient(shard) for shard in shards]
        self._by_symbol = {sym: c for c in self.clients for sym in c.shard.symbols}

    def start(self) -> None:
        for client in self.clients:
            client.start()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()

    def for_symbol(self, symbol: str) -> ShardClient | None:
        return self._by_symbol.get(symbol)

    async def ping_all(self, *, timeout_s: float) -> dict[str, bool]:
        async def one(client: ShardClient) -> bool:
            try:
                reply = await asyncio.wait_for(client.control("ping"), timeout=timeout_s)
            except (Unavailable, TimeoutError):
                return False
            return bool(reply.get("ok"))

        results = await asyncio.gather(*(one(c) for c in self.clients))
        return {c.shard.address: ok for c, ok in zip(self.clients, results, strict=True)}
