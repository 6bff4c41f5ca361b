"""The one settings object of the platform, read from ``HFT_*`` environment variables only.

Both processes (backend and engine service) read the same variables; each uses the ones it needs.
This module parses and validates; it opens no connections and starts nothing.

Sharding by symbol (the multinode profile): ``HFT_ENGINE_SHARDS`` lists the engine shards and the
symbols each owns, ``HFT_DB_SHARDS`` the PostgreSQL database of each (same order). An engine started
with ``HFT_SHARD_INDEX=i`` owns the symbols of entry i and journals to database i; the backend keeps
users in ``HFT_DB_*`` and finds an order by its id, which names the database that stored it
(:func:`hft_platform.domain.shard_of_order`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

DEFAULT_SYMBOLS = "AAPL,MSFT,GOOG,AMZN,TSLA,NVDA,META,NFLX"


class SettingsError(ValueError):
    """An ``HFT_*`` variable has a value the platform cannot use."""


@dataclass(frozen=True)
class Shard:
    """One engine shard in the backend's routing table: where it listens and what it owns."""

    host: str
    port: int
    symbols: tuple[str, ...]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DbShard:
    """One PostgreSQL database holding the orders and fills of one engine shard."""

    host: str
    port: int
    name: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.name}"


@dataclass(frozen=True)
class Settings:
    bind_host: str = "0.0.0.0"
    http_port: int = 8000
    engine_port: int = 9000
    metrics_port: int = 9100
    db_host: str = "postgres"
    db_port: int = 5432
    db_name: str = "hft"
    db_user: str = "hft"
    db_password: str = ""
    redis_url: str = "redis://redis:6379/0"
    symbols: tuple[str, ...] = tuple(DEFAULT_SYMBOLS.split(","))
    shards: tuple[Shard, ...] = field(default_factory=tuple)
    db_shards: tuple[DbShard, ...] = field(default_factory=tuple)
    shard_index: int | None = None
    shard_name: str = "engine"
    rate_limit: int = 1000
    echo: bool = False
    max_body_bytes: int = 4096
    group_max_orders: int = 2048
    db_pool_size: int = 4

    @property
    def db_dsn(self) -> str:
        return self.dsn_for(DbShard(self.db_host, self.db_port, self.db_name))

    def dsn_for(self, db: DbShard) -> str:
        """The DSN of ``db`` with this process's database user and password."""
        auth = quote(self.db_user, safe="") + (
            f":{quote(self.db_password, safe='')}" if self.db_password else ""
        )
        return f"postgresql://{auth}@{db.host}:{db.port}/{quote(db.name, safe='')}"

    @property
    def order_databases(self) -> tuple[DbShard, ...]:
        """Where orders live, indexed by :func:`~hft_platform.domain.shard_of_order`: the
        ``HFT_DB_SHARDS``, or the one ``HFT_DB_*`` database when the orders are not sharded."""
        return self.db_shards or (DbShard(self.db_host, self.db_port, self.db_name),)

    @property
    def id_shard(self) -> tuple[int, int]:
        """(shard, shards) for the order ids this engine hands out; (0, 1) when it is the only one."""
        if self.shard_index is None:
            return (0, 1)
        return (self.shard_index, len(self.shards))

    def shard_for(self, symbol: str) -> Shard | None:
        for shard in self.shards:
            if symbol in shard.symbols:
                return shard
        return None

    @property
    def routed_symbols(self) -> tuple[str, ...]:
        return tuple(sym for shard in self.shards for sym in shard.symbols)


def parse_symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    if not symbols:
        raise SettingsError(f"expected a comma list of symbols, saw {text!r}; set HFT_SYMBOLS=AAPL,MSFT")
    return symbols


def parse_shards(text: str, *, default_symbols: tuple[str, ...]) -> tuple[Shard, ...]:
    """Parse ``host:port=SYM,SYM;host:port=SYM``; a lone ``host:port`` owns every symbol."""
    shards: list[Shard] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        address, _, syms = part.partition("=")
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(
                f"expected host:port[=SYM,...] in HFT_ENGINE_SHARDS, saw {part!r}; e.g. engine:9000=AAPL,MSFT"
            )
        symbols = parse_symbols(syms) if syms.strip() else default_symbols
        shards.append(Shard(host=host, port=int(port), symbols=symbols))
    seen: set[str] = set()
    for shard in shards:
        dup = seen.intersection(shard.symbols)
        if dup:
            raise SettingsError(
                f"expected each symbol on one shard, saw {sorted(dup)} twice in HFT_ENGINE_SHARDS"
            )
        seen.update(shard.symbols)
    return tuple(shards)


def parse_db_shards(text: str, *, default_port: int, default_name: str) -> tuple[DbShard, ...]:
    """Parse ``host[:port][/database],...``; port and database default to HFT_DB_PORT and HFT_DB_NAME."""
    out: list[DbShard] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        address, _, name = part.partition("/")
        host, colon, port = address.rpartition(":") if ":" in address else (address, "", "")
        if not host or (colon and not port.isdigit()):
            raise SettingsError(
                f"expected host[:port][/database] in HFT_DB_SHARDS, saw {part!r}; e.g. postgres-0.postgres:5432/hft"
            )
        out.append(DbShard(host=host, port=int(port) if port else default_port, name=name or default_name))
    if len(set(out)) != len(out):
        raise SettingsError(f"expected each database once in HFT_DB_SHARDS, saw {text!r}")
    return tuple(out)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise SettingsError(f"expected an integer in {name}, saw {raw!r}") from e


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    symbols = parse_symbols(env.get("HFT_SYMBOLS", DEFAULT_SYMBOLS))
    shards = parse_shards(env.get("HFT_ENGINE_SHARDS", "engine:9000"), default_symbols=symbols)
    db = DbShard(
        host=env.get("HFT_DB_HOST", "postgres"),
        port=_int(env, "HFT_DB_PORT", 5432),
        name=env.get("HFT_DB_NAME", "hft"),
    )
    db_shards = parse_db_shards(env.get("HFT_DB_SHARDS", ""), default_port=db.port, default_name=db.name)
    if db_shards and len(db_shards) != len(shards):
        raise SettingsError(
            f"expected one database per engine shard: HFT_DB_SHARDS has {len(db_shards)}, "
            f"HFT_ENGINE_SHARDS {len(shards)}; list them in the same order"
        )
    index: int | None = None
    if env.get("HFT_SHARD_INDEX", ""):
        index = _int(env, "HFT_SHARD_INDEX", 0)
        if not 0 <= index < len(shards):
            raise SettingsError(
                f"expected HFT_SHARD_INDEX in 0..{len(shards) - 1} (one per HFT_ENGINE_SHARDS entry), saw {index}"
            )
        symbols = shards[index].symbols  # this engine owns the symbols of its entry ...
        if db_shards:
            db = db_shards[index]  # ... and journals them to its own database
    return Settings(
        bind_host=env.get("HFT_BIND_HOST", "0.0.0.0"),
        http_port=_int(env, "HFT_HTTP_PORT", 8000),
        engine_port=_int(env, "HFT_ENGINE_PORT", 9000),
        metrics_port=_int(env, "HFT_METRICS_PORT", 9100),
        db_host=db.host,
        db_port=db.port,
        db_name=db.name,
        db_user=env.get("HFT_DB_USER", "hft"),
        db_password=env.get("HFT_DB_PASSWORD", ""),
        redis_url=env.get("HFT_REDIS_URL", "redis://redis:6379/0"),
        symbols=symbols,
        shards=shards,
        db_shards=db_shards,
        shard_index=index,
        shard_name=env.get("HFT_SHARD", "engine"),
        rate_limit=_int(env, "HFT_RATE_LIMIT", 1000),
        echo=env.get("HFT_ECHO", "") in ("1", "true", "yes"),
        max_body_bytes=_int(env, "HFT_MAX_BODY_BYTES", 4096),
        group_max_orders=_int(env, "HFT_GROUP_MAX_ORDERS", 2048),
        db_pool_size=_int(env, "HFT_DB_POOL_SIZE", 4),
    )
