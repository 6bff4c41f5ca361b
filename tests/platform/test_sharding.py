"""Sharding by symbol (the multinode profile): each engine shard journals to its own database, order
ids name the database that stored them, and the backend finds every order where it lives.

The settings and the id arithmetic are checked as pure functions; the routing with real servers: one
PostgreSQL with two databases (shard 0 also holds the users), two engine shards, one backend.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hft_platform.devstack.procs import Child, free_port, http_status
from hft_platform.devstack.stack import SERVICE_START_TIMEOUT_S, LoopbackStack
from hft_platform.domain import ID_BLOCK, shard_block, shard_of_order
from hft_platform.settings import DbShard, SettingsError, load_settings
from platform_support import new_coid, order

SHARDS = "e0:9000=AAPL,MSFT;e1:9001=GOOG,AMZN"


def test_an_engine_with_a_shard_index_owns_its_entry_and_its_database() -> None:
    env = {"HFT_ENGINE_SHARDS": SHARDS, "HFT_DB_SHARDS": "pg-0,pg-1:6543/orders", "HFT_DB_NAME": "hft"}
    engine = load_settings({**env, "HFT_SHARD_INDEX": "1"})
    assert engine.symbols == ("GOOG", "AMZN")
    assert (engine.db_host, engine.db_port, engine.db_name) == ("pg-1", 6543, "orders")
    assert engine.id_shard == (1, 2)
    backend = load_settings({**env, "HFT_DB_HOST": "pg-0"})
    assert backend.db_host == "pg-0"  # users stay in HFT_DB_*
    assert backend.order_databases == (DbShard("pg-0", 5432, "hft"), DbShard("pg-1", 6543, "orders"))
    assert backend.id_shard == (0, 1)
    lone = load_settings({})
    assert lone.order_databases == (DbShard("postgres", 5432, "hft"),)
    assert lone.id_shard == (0, 1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HFT_DB_SHARDS": "pg-0"}, "one database per engine shard"),
        ({"HFT_DB_SHARDS": "pg-0,pg-1", "HFT_SHARD_INDEX": "2"}, r"HFT_SHARD_INDEX in 0\.\.1"),
        ({"HFT_DB_SHARDS": "pg-0,pg-0"}, "each database once"),
        ({"HFT_DB_SHARDS": "pg-0:x,pg-1"}, r"host\[:port\]"),
    ],
)
def test_inconsistent_shard_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"HFT_ENGINE_SHARDS": SHARDS, **env})


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_interleaved_id_blocks_never_overlap_and_name_their_shard(shards: int) -> None:
    seen: set[int] = set()
    for shard in range(shards):
        starts = [shard_block(b * ID_BLOCK + 1, shard=shard, shards=shards) for b in range(200)]
        assert starts == sorted(starts)  # ids only grow within a shard, also across restarts
        for start in starts:
            block = set(range(start, start + ID_BLOCK))
            assert not block & seen
            seen |= block
            assert {shard_of_order(i, shards=shards) for i in (start, start + ID_BLOCK - 1)} == {shard}
    if shards == 1:
        assert shard_block(3 * ID_BLOCK + 1, shard=0, shards=1) == 3 * ID_BLOCK + 1


@dataclass
class ShardedStack:
    stack: LoopbackStack
    backend_port: int

    def rows(self, database: str, sql: str) -> list[list[str]]:
        out = self.stack.postgres.psql(sql, db=database)
        return [line.split("|") for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def sharded() -> Iterator[ShardedStack]:
    if shutil.which("redis-server") is None or os.geteuid() != 0:
        pytest.skip("needs redis-server and root (PostgreSQL runs as the postgres user)")
    stack = LoopbackStack(symbols=("AAPL", "MSFT", "GOOG", "AMZN"), backends=0)
    children: list[Child] = []
    try:
        stack.postgres.start()
        stack.redis.start()
        stack.postgres.psql("CREATE DATABASE hft_s1 OWNER hft")
        rpc, probes, http = [free_port(), free_port()], [free_port(), free_port()], free_port()
        pg = f"127.0.0.1:{stack.postgres.port}"
        common = {
            "HFT_ENGINE_SHARDS": f"127.0.0.1:{rpc[0]}=AAPL,MSFT;127.0.0.1:{rpc[1]}=GOOG,AMZN",
            "HFT_DB_SHARDS": f"{pg}/hft,{pg}/hft_s1",
        }
        for i in (0, 1):
            env = stack.env(**common, HFT_SHARD_INDEX=str(i), HFT_SHARD=f"engine-{i}",
                            HFT_ENGINE_PORT=str(rpc[i]), HFT_METRICS_PORT=str(probes[i]))  # fmt: skip
            child = Child(f"engine-{i}", [sys.executable, "-m", "hft_platform.engine"],
                          str(stack.base / f"engine-{i}.log"), env=env)  # fmt: skip
            children.append(child)
            child.start()
            child.wait_until(lambda i=i: http_status(probes[i], "/readyz") == 200,
                             timeout=SERVICE_START_TIMEOUT_S, what=f"engine-{i} /readyz")  # fmt: skip
        backend = Child("backend", [sys.executable, "-m", "hft_platform.backend"],
                        str(stack.base / "backend.log"), env=stack.env(**common, HFT_HTTP_PORT=str(http)))  # fmt: skip
        children.append(backend)
        backend.start()
        backend.wait_until(lambda: http_status(http, "/readyz", timeout=3) == 200,
                           timeout=SERVICE_START_TIMEOUT_S, what="backend /readyz")  # fmt: skip
        yield ShardedStack(stack, http)
    finally:
        for child in reversed(children):
            child.stop()
        stack.stop()


@pytest.mark.slow
def test_orders_live_in_their_symbols_database_and_the_backend_finds_them(sharded: ShardedStack) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{sharded.backend_port}", timeout=15) as api:
        key = api.post("/v1/users", json={"name": "sharded"})
        assert key.status_code == 201, key.text
        auth = {"X-API-Key": key.json()["api_key"]}
        placed = {}
        for symbol in ("AAPL", "GOOG"):
            resp = api.post("/v1/orders", json=order(symbol=symbol, side="sell", price=50.0), headers=auth)
            assert resp.status_code == 200, resp.text
            placed[symbol] = resp.json()["order_id"]
        assert shard_of_order(placed["AAPL"], shards=2) == 0
        assert shard_of_order(placed["GOOG"], shards=2) == 1
        for symbol, order_id in placed.items():
            got = api.get(f"/v1/orders/{order_id}", headers=auth)
            assert got.status_code == 200, got.text
            assert got.json()["symbol"] == symbol
        fill = api.post(
            "/v1/orders",
            json=order(client_order_id=new_coid("x"), symbol="GOOG", side="buy", price=50.0, qty=4),
            headers=auth,
        )
        assert fill.json()["status"] == "filled", fill.text
        cancelled = api.delete(f"/v1/orders/{placed['GOOG']}", headers=auth)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["cancelled_qty"] == 6
    assert sharded.rows("hft", "SELECT symbol FROM orders") == [["AAPL"]]
    goog = sharded.rows("hft_s1", "SELECT order_id, state, filled FROM orders ORDER BY order_id")
    assert [int(goog[0][0]), int(goog[0][1]), int(goog[0][2])] == [placed["GOOG"], 2, 4]  # cancelled
    assert sharded.rows("hft_s1", "SELECT count(*) FROM fills") == [["1"]]
    assert sharded.rows("hft", "SELECT count(*) FROM fills") == [["0"]]
    assert sharded.rows("hft_s1", "SELECT count(*) FROM users") == [["0"]]  # users live in HFT_DB_*
