"""Everything a request needs that outlives it: pools, clients, caches, settings-derived values.

Built once in the app's lifespan and stored on ``app.state.ctx``; routes get it through ``deps``.
Construction and teardown only; no request logic.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from hft_platform.backend.services.engine_client import EngineRouter
from hft_platform.backend.services.order_path import OrderPath
from hft_platform.backend.services.resp import RespClient
from hft_platform.backend.services.users import KeyDirectory
from hft_platform.domain import shard_of_order
from hft_platform.schema import apply_schema
from hft_platform.settings import Settings

PROBE_TIMEOUT_S = 1.0
STARTUP_DEADLINE_S = 60.0


@dataclass
class BackendContext:
    settings: Settings
    pool: asyncpg.Pool  # users (HFT_DB_*)
    redis: aioredis.Redis
    engine: EngineRouter
    resp: RespClient
    order_path: OrderPath
    keys: KeyDirectory
    order_pools: tuple[asyncpg.Pool, ...] = ()  # one per order database (settings.order_databases)

    def pool_for_order(self, order_id: int) -> asyncpg.Pool:
        """The pool of the database that stored ``order_id`` (the users' pool when not sharded)."""
        if not self.order_pools:
            return self.pool
        return self.order_pools[shard_of_order(order_id, shards=len(self.order_pools))]

    @property
    def _pools(self) -> list[asyncpg.Pool]:
        return list(dict.fromkeys([self.pool, *self.order_pools]))  # distinct, users' first

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.settings.routed_symbols

    @property
    def rate_limit(self) -> int:
        return self.settings.rate_limit

    async def readiness(self) -> dict[str, bool]:
        async def one(pool: asyncpg.Pool) -> bool:
            try:
                return await asyncio.wait_for(pool.fetchval("SELECT 1"), PROBE_TIMEOUT_S) == 1
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False

        async def pg() -> bool:
            return all(await asyncio.gather(*(one(p) for p in self._pools)))

        pg_ok, redis_ok, shards = await asyncio.gather(
            pg(),
            self.order_path.ping(timeout_s=PROBE_TIMEOUT_S),
            self.engine.ping_all(timeout_s=PROBE_TIMEOUT_S),
        )
        return {"postgres": pg_ok, "redis": redis_ok, **{f"engine:{k}": v for k, v in shards.items()}}

    async def close(self) -> None:
        await self.engine.close()
        await self.resp.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        for pool in self._pools:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 5)


async def _pool_with_retry(settings: Settings, dsn: str, where: str) -> asyncpg.Pool:
    loop = asyncio.get_running_loop()
    stop = loop.time() + STARTUP_DEADLINE_S
    delay = 0.1
    while True:
        try:
            return await asyncpg.create_pool(dsn, min_size=1, max_size=settings.db_pool_size, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as e:
            if loop.time() + delay > stop:
                raise ConnectionError(
                    f"expected PostgreSQL at {where} within {STARTUP_DEADLINE_S:.0f}s, last error {e!r}; "
                    "check HFT_DB_* and HFT_DB_SHARDS"
                ) from e
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _open_pools(settings: Settings) -> tuple[asyncpg.Pool, tuple[asyncpg.Pool, ...]]:
    """The users' pool, and one pool per order database (the users' pool where it is the same one)."""
    by_dsn: dict[str, asyncpg.Pool] = {}
    try:
        pool = by_dsn[settings.db_dsn] = await _pool_with_retry(
            settings, settings.db_dsn, f"{settings.db_host}:{settings.db_port}"
        )
        for db in settings.db_shards:
            dsn = settings.dsn_for(db)
            if dsn not in by_dsn:
                by_dsn[dsn] = await _pool_with_retry(settings, dsn, db.address)
    except BaseException:
        for opened in by_dsn.values():
            opened.terminate()
        raise
    for opened in by_dsn.values():
        async with opened.acquire() as conn:
            await apply_schema(conn)
    return pool, tuple(by_dsn[settings.dsn_for(db)] for db in settings.db_shards)


async def open_context(settings: Settings) -> BackendContext:
    pool, order_pools = await _open_pools(settings)
    redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    engine = EngineRouter(settings.shards)
    engine.start()
    resp = RespClient(settings.redis_url, on_connect=OrderPath.on_connect)
    resp.start()
    return BackendContext(
        settings=settings,
        pool=pool,
        redis=redis,
        engine=engine,
        resp=resp,
        order_path=OrderPath(resp, engine, rate_limit=settings.rate_limit),
        keys=KeyDirectory(pool, redis),
        order_pools=order_pools,
    )
