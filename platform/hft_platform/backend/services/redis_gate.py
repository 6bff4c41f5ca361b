"""Redis on the order path: per-key rate limits and the idempotency fast path, one round trip per tick.

Every order needs two answers before it goes to the engine: is its key under the rate limit, and
has this (user, client_order_id) already been acknowledged? All orders that arrive during one
event-loop tick are answered by a single ``EVALSHA`` (a Lua script doing the INCRBYs and the HGETs
server-side); acknowledgements are written back with one pipelined HSET per tick. Redis is a cache
here: PostgreSQL's unique constraint remains the truth, so a lost Redis entry costs a round trip to
the engine, never a duplicate order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from hft_platform.backend.services.errors import Unavailable

log = logging.getLogger(__name__)

ACK_BUCKET_S = 60  # acks live in per-minute hashes; the current and previous minute are checked
ACK_TTL_S = 2 * ACK_BUCKET_S + 5

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


@dataclass(frozen=True, slots=True)
class GateAnswer:
    allowed: bool
    cached_ack: bytes | None


class RedisGate:
    def __init__(self, client: aioredis.Redis, *, rate_limit: int) -> None:
        self._redis = client
        self._rate_limit = rate_limit
        self._script = client.register_script(GATE_LUA)
        self._waiting: list[tuple[int, str, asyncio.Future]] = []
        self._acks: list[tuple[str, bytes]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task] = set()

    async def check(self, *, user_id: int, client_order_id: str) -> GateAnswer:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        fut = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush_checks)
        self._waiting.append((user_id, client_order_id, fut))
        return await fut

    def remember(self, *, user_id: int, client_order_id: str, ack: bytes) -> None:
        """Store an acknowledgement for fast retries (fire and forget, batched per tick)."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        if not self._acks:
            loop.call_soon(self._flush_acks)
        self._acks.append((f"{user_id}:{client_order_id}", ack))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _flush_checks(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._spawn(self._run_checks(waiting))

    async def _run_checks(self, waiting: list[tuple[int, str, asyncio.Future]]) -> None:
        now = int(time.time())
        counts: dict[int, int] = {}
        for user_id, _, _ in waiting:
            counts[user_id] = counts.get(user_id, 0) + 1
        users = list(counts)
        bucket = now // ACK_BUCKET_S
        keys = [f"rl:{u}:{now}" for u in users] + [f"ack:{bucket}", f"ack:{bucket - 1}"]
        args: list[int | str] = [len(users), *(counts[u] for u in users)]
        args.extend(f"{u}:{c}" for u, c, _ in waiting)
        try:
            try:
                out = await self._script(keys=keys, args=args)
            except (RedisConnectionError, OSError):
                # A pooled connection may predate a Redis restart; one fresh attempt.
                out = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as e:
            err = Unavailable(f"Redis unavailable for rate limiting ({e}); retry shortly")
            for _, _, fut in waiting:
                if not fut.done():
                    fut.set_exception(err)
            return
        # A key's requests in this tick are numbered from its count before the tick.
        seen = {u: out[i] - counts[u] for i, u in enumerate(users)}
        limit = self._rate_limit
        for j, (user_id, _, fut) in enumerate(waiting):
            seen[user_id] += 1
            if not fut.done():
                fut.set_result(GateAnswer(seen[user_id] <= limit, out[len(users) + j]))

    def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        self._spawn(self._store_acks(acks))

    async def _store_acks(self, acks: list[tuple[str, bytes]]) -> None:
        key = f"ack:{int(time.time()) // ACK_BUCKET_S}"
        mapping = dict(acks)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, ACK_TTL_S)
                await pipe.execute()
        except (RedisError, OSError) as e:
            log.warning("could not cache %d acks in Redis (retries will ask the engine): %s", len(acks), e)

    async def ping(self, *, timeout_s: float) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), timeout=timeout_s))
        except (RedisError, OSError, TimeoutError):
            return False
