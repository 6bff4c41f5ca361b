"""The order hot path, batched per event-loop tick: Redis gate, then the engine shard.

Every order needs two answers before it reaches the engine: is its API key under the rate limit,
and has this (user, client_order_id) already been acknowledged? All orders submitted during one
tick are answered by ONE Redis ``EVALSHA`` (a Lua script doing the INCRBYs and HGETs server-side).
From that reply's callback the admitted orders go straight into each shard's next frame, so a
request's coroutine waits on one future and resumes once. Acknowledgements are cached back with one
fire-and-forget ``HSET`` per tick. Redis is a cache here: PostgreSQL's unique constraint remains
the truth, so a lost entry costs a trip to the engine, never a duplicate order.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

import hiredis

from hft_platform.backend.metrics import REDIS_LATENCY
from hft_platform.backend.services.engine_client import EngineRouter
from hft_platform.backend.services.errors import RateLimited, Unavailable
from hft_platform.backend.services.resp import RespClient, RespUnavailable

ACK_BUCKET_S = 60  # acks live in per-minute hashes; the current and previous minute are checked
ACK_TTL_S = 2 * ACK_BUCKET_S + 5
ACK_FLUSH_S = 0.005

# KEYS: n rate-limit counters, then the current and previous ack hash.
# ARGV: n, then n increments, then the hash fields to look up.
# Returns n counter values followed by one ack (or false) per field.
GATE_LUA = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local inc = tonumber(ARGV[1 + i])
  local c = redis.call('INCRBY', KEYS[i], inc)
  if c == inc then redis.call('EXPIRE', KEYS[i], 2) end
  out[i] = c
end
local cur, prev = KEYS[n + 1], KEYS[n + 2]
for k = n + 2, #ARGV do
  local v = redis.call('HGET', cur, ARGV[k])
  if not v then v = redis.call('HGET', prev, ARGV[k]) end
  out[#out + 1] = v or false
end
return out
"""
GATE_SHA = hashlib.sha1(GATE_LUA.encode()).hexdigest()
_GATE_LATENCY = REDIS_LATENCY.labels("gate")


@dataclass(frozen=True, slots=True)
class Pending:
    user_id: int
    client_order_id: str
    symbol: str
    side: int
    kind: int
    price: int
    qty: int
    fut: asyncio.Future


class OrderPath:
    """Resolves each submitted order's future to cached ack bytes (a replay) or an engine ack record."""

    def __init__(self, resp: RespClient, engine: EngineRouter, *, rate_limit: int) -> None:
        self._resp = resp
        self._engine = engine
        self._rate_limit = rate_limit
        self._waiting: list[Pending] = []
        self._acks: list[tuple[str, bytes]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # At most one gate call in flight: orders arriving meanwhile form the next (bigger) batch,
        # so the number of writes (loopback syscalls, the dominant cost) falls as load rises.
        self._in_flight = False
        self._scheduled = False
        self._acks_timer: asyncio.TimerHandle | None = None

    @staticmethod
    def on_connect() -> list[tuple]:
        """Commands to run on every (re)connection: make sure the script is cached by Redis."""
        return [("SCRIPT", "LOAD", GATE_LUA)]

    def submit(
        self, *, user_id: int, client_order_id: str, symbol: str, side: int, kind: int, price: int, qty: int
    ) -> asyncio.Future:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiting.append(Pending(user_id, client_order_id, symbol, side, kind, price, qty, fut))
        if not self._in_flight and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    def remember(self, *, user_id: int, client_order_id: str, ack: bytes) -> None:
        """Cache an acknowledgement for fast retries (fire and forget). It rides along with the next
        gate call's write, or goes on its own after ``ACK_FLUSH_S`` if none comes."""
        if not self._acks and self._acks_timer is None:
            assert self._loop is not None
            self._acks_timer = self._loop.call_later(ACK_FLUSH_S, self._flush_acks)
        self._acks.append((f"{user_id}:{client_order_id}", ack))

    def _flush(self) -> None:
        self._scheduled = False
        if self._acks:
            self._flush_acks()
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        self._in_flight = True
        now = int(time.time())
        counts: dict[int, int] = {}
        for p in waiting:
            counts[p.user_id] = counts.get(p.user_id, 0) + 1
        users = list(counts)
        bucket = now // ACK_BUCKET_S
        keys = [f"rl:{u}:{now}" for u in users]
        keys += [f"ack:{bucket}", f"ack:{bucket - 1}"]
        args = [len(users), *counts.values()]
        args += [f"{p.user_id}:{p.client_order_id}" for p in waiting]
        sent = time.perf_counter()
        reply = self._resp.command("EVALSHA", GATE_SHA, len(keys), *keys, *args)
        reply.add_done_callback(lambda r: self._admit(waiting, users, counts, r, sent))

    def _admit(
        self,
        waiting: list[Pending],
        users: list[int],
        counts: dict[int, int],
        reply: asyncio.Future,
        sent: float,
    ) -> None:
        self._in_flight = False
        if self._waiting and not self._scheduled:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)
        exc = reply.exception()
        out = None if exc is not None else reply.result()
        if out is not None:  # answered (an error reply too): the round trip as this process saw it
            _GATE_LATENCY.observe(time.perf_counter() - sent)
        if out is None or isinstance(out, hiredis.ReplyError):
            err = Unavailable(f"Redis unavailable for rate limiting ({exc or out}); retry shortly")
            for p in waiting:
                if not p.fut.done():
                    p.fut.set_exception(err)
            return
        # A key's requests in this tick are numbered on from its count before the tick.
        seen = {u: out[i] - counts[u] for i, u in enumerate(users)}
        base = len(users)
        limit = self._rate_limit
        for j, p in enumerate(waiting):
            if p.fut.done():
                continue
            n = seen[p.user_id] = seen[p.user_id] + 1
            if n > limit:
                p.fut.set_exception(
                    RateLimited(f"more than {limit} orders/s for this API key; slow down and retry")
                )
                continue
            cached = out[base + j]
            if cached is not None:
                p.fut.set_result(cached)
                continue
            client = self._engine.for_symbol(p.symbol)
            if client is None:
                p.fut.set_exception(Unavailable(f"no engine shard routes {p.symbol!r}"))
                continue
            client.enqueue(
                p.fut, user_id=p.user_id, client_order_id=p.client_order_id, symbol=p.symbol,
                side=p.side, kind=p.kind, price=p.price, qty=p.qty,
            )  # fmt: skip

    def _flush_acks(self) -> None:
        if self._acks_timer is not None:
            self._acks_timer.cancel()
            self._acks_timer = None
        acks, self._acks = self._acks, []
        if not acks:
            return
        key = f"ack:{int(time.time()) // ACK_BUCKET_S}"
        args: list[object] = ["HSET", key]
        for field, value in acks:
            args += (field, value)
        self._resp.send_and_forget(*args)
        self._resp.send_and_forget("EXPIRE", key, ACK_TTL_S)

    async def ping(self, *, timeout_s: float) -> bool:
        try:
            return await asyncio.wait_for(self._resp.command("PING"), timeout_s) == b"PONG"
        except (RespUnavailable, TimeoutError):
            return False
