"""Users and API keys: registration, and key -> user resolution through three tiers.

Resolution order: in-process cache, then Redis (``key:<sha256>``), then PostgreSQL (the truth).
Only the SHA-256 of a key is stored outside this process. No HTTP here.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hft_platform.backend.metrics import REDIS_LATENCY
from hft_platform.backend.services.errors import Unauthenticated, Unavailable

KEY_TTL_S = 3600
NEGATIVE_TTL_S = 2.0
CACHE_LIMIT = 100_000


def key_hash(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


async def register(pool: asyncpg.Pool, redis: aioredis.Redis, *, name: str) -> tuple[int, str]:
    """Create a user; returns (user_id, api_key). The key is shown once and stored hashed."""
    api_key = "hft_" + secrets.token_urlsafe(24)
    digest = key_hash(api_key)
    try:
        user_id = await pool.fetchval(
            "INSERT INTO users (name, api_key_hash) VALUES ($1, $2) RETURNING user_id", name, digest
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise Unavailable(f"PostgreSQL unavailable for registration ({e!r}); retry") from e
    with contextlib.suppress(RedisError, OSError), REDIS_LATENCY.labels("key_set").time():
        await redis.set(f"key:{digest.hex()}", user_id, ex=KEY_TTL_S)  # a cache: lookups fall through
    return user_id, api_key


class KeyDirectory:
    """Resolves API keys to user ids; caches positives in process and briefly caches negatives."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        self._pool = pool
        self._redis = redis
        self._known: dict[str, int] = {}
        self._unknown: dict[str, float] = {}

    def cached(self, api_key: str) -> int | None:
        return self._known.get(api_key)

    async def resolve(self, *, api_key: str | None) -> int:
        if not api_key:
            raise Unauthenticated("expected an X-API-Key header; register with POST /v1/users to get one")
        user_id = self._known.get(api_key)
        if user_id is not None:
            return user_id
        return await self._resolve_slow(api_key)

    async def _resolve_slow(self, api_key: str) -> int:
        now = time.monotonic()
        if self._unknown.get(api_key, 0.0) > now:
            raise Unauthenticated("unknown API key; register with POST /v1/users to get one")
        digest = key_hash(api_key)
        user_id: int | None = None
        try:
            with REDIS_LATENCY.labels("key_get").time():
                raw = await self._redis.get(f"key:{digest.hex()}")
            user_id = int(raw) if raw is not None else None
        except (RedisError, OSError):
            user_id = None
        if user_id is None:
            try:
                user_id = await self._pool.fetchval(
                    "SELECT user_id FROM users WHERE api_key_hash = $1", digest
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                raise Unavailable(f"cannot check the API key now ({e!r}); retry") from e
            if user_id is not None:
                with contextlib.suppress(RedisError, OSError), REDIS_LATENCY.labels("key_set").time():
                    await self._redis.set(f"key:{digest.hex()}", user_id, ex=KEY_TTL_S)
        if user_id is None:
            if len(self._unknown) > CACHE_LIMIT:
                self._unknown.clear()
            self._unknown[api_key] = now + NEGATIVE_TTL_S
            raise Unauthenticated("unknown API key; register with POST /v1/users to get one")
        if len(self._known) > CACHE_LIMIT:
            self._known.clear()
        self._known[api_key] = user_id
        return user_id
