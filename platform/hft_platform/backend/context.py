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
from hft_platform.schema import apply_schema
from hft_platform.settings import Settings

PROBE_TIMEOUT_S = 1.0
STARTUP_DEADLINE_S = 60.0


@dataclass
class BackendContext:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    engine: EngineRouter
    resp: RespClient
    order_path: OrderPath
    keys: KeyDirectory

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.settings.routed_symbols

    @property
    def rate_limit(self) -> int:
        return self.settings.rate_limit

    async def readiness(self) -> dict[str, bool]:
        async def pg() -> bool:
            try:
                return await asyncio.wait_for(self.pool.fetchval("SELECT 1"), PROBE_TIMEOUT_S) == 1
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False

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
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.close(), 5)


async def _pool_with_retry(settings: Settings) -> asyncpg.Pool:
    loop = asyncio.get_running_loop()
    stop = loop.time() + STARTUP_DEADLINE_S
    delay = 0.1
    while True:
        try:
            return await asyncpg.create_pool(
                settings.db_dsn, min_size=1, max_size=settings.db_pool_size, timeout=5
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as e:
            if loop.time() + delay > stop:
                raise ConnectionError(
                    f"expected PostgreSQL at {settings.db_host}:{settings.db_port} within "
                    f"{STARTUP_DEADLINE_S:.0f}s, last error {e!r}; check HFT_DB_*"
                ) from e
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def open_context(settings: Settings) -> BackendContext:
    pool = await _pool_with_retry(settings)
    async with pool.acquire() as conn:
        await apply_schema(conn)
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
    )
