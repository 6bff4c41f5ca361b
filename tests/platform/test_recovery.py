"""Durability under kill -9: nothing acknowledged is lost, retries are idempotent across the crash,
rebuilt books equal the database, and fills are never applied twice.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from hft_platform.devstack.stack import LoopbackStack
from platform_support import SYMBOLS, db_book, db_rows, engine_book, fill_mismatches, new_coid, register

pytestmark = pytest.mark.slow


@dataclass
class Stream:
    """Background traders sending crossing limit orders until stopped; records every outcome."""

    url: str
    users: list[dict[str, str]]
    acked: dict[str, tuple[dict[str, str], dict, dict]] = field(
        default_factory=dict
    )  # coid -> (auth, body, ack)
    failed: dict[str, tuple[dict[str, str], dict]] = field(default_factory=dict)  # coid -> (auth, body)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=15) as client:
            while not self.stop.is_set():
                auth = rnd.choice(self.users)
                side = rnd.choice(("buy", "sell"))
                body = {
                    "client_order_id": new_coid(f"s{seed}"),
                    "symbol": rnd.choice(SYMBOLS),
                    "side": side,
                    "type": "limit",
                    "price": round(50 + rnd.randint(-5, 5) * 0.01, 2),
                    "qty": rnd.randint(1, 20),
                }
                try:
                    resp = client.post("/v1/orders", json=body, headers=auth)
                    ok = resp.status_code == 200
                except httpx.TransportError:
                    ok, resp = False, None
                with self.lock:
                    if ok:
                        self.acked[body["client_order_id"]] = (auth, body, resp.json())
                    else:
                        self.failed[body["client_order_id"]] = (auth, body)
                        time.sleep(0.02)

    def run_around(self, action, *, threads: int = 4, before_s: float = 1.0, after_s: float = 0.5) -> None:
        workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for w in workers:
            w.start()
        try:
            time.sleep(before_s)
            action()
            time.sleep(after_s)
        finally:
            self.stop.set()
            for w in workers:
                w.join(timeout=30)
        assert not any(w.is_alive() for w in workers)


def _retry_failed(api: httpx.Client, stream: Stream) -> dict[str, dict]:
    """Retry every request whose outcome the client never learned; each must now be acknowledged."""
    acks: dict[str, dict] = {}
    for coid, (auth, body) in stream.failed.items():
        for _ in range(50):
            resp = api.post("/v1/orders", json=body, headers=auth)
            if resp.status_code == 200:
                acks[coid] = resp.json()
                break
            assert resp.status_code in (429, 503), resp.text
            time.sleep(0.1)
        else:
            pytest.fail(f"retry of {coid} never acknowledged")
    return acks


def _assert_consistent(
    api: httpx.Client, stack: LoopbackStack, stream: Stream, retried: dict[str, dict]
) -> None:
    sent = {**{c: a[2] for c, a in stream.acked.items()}, **retried}
    coids = ",".join(f"'{c}'" for c in sent)
    stored = {
        coid: int(oid)
        for coid, oid in db_rows(
            stack, f"SELECT client_order_id, order_id FROM orders WHERE client_order_id IN ({coids})"
        )
    }
    # Nothing acknowledged is lost, and each ack names the stored order.
    assert {c: a["order_id"] for c, a in sent.items()} == stored
    # One order per (user, client_order_id), ever.
    assert db_rows(stack, "SELECT count(*) - count(DISTINCT (user_id, client_order_id)) FROM orders") == [
        ["0"]
    ]
    # Fills applied once: every order's filled qty equals the sum of its fills; the fill PK holds.
    assert fill_mismatches(stack) == []
    # The engine's books (rebuilt or live) equal the open orders stored in PostgreSQL.
    for symbol in SYMBOLS:
        assert engine_book(api, symbol) == db_book(stack, symbol), symbol


def test_engine_kill9_mid_stream_loses_nothing_acked(api: httpx.Client, stack: LoopbackStack) -> None:
    stream = Stream(stack.backend_url(), [register(api, f"eng-{i}") for i in range(6)])
    assert stack.engine is not None
    before = db_rows(stack, "SELECT count(*) FROM orders")[0][0]

    def crash_and_restart() -> None:
        stack.engine.kill9()
        stack.start_engine()

    stream.run_around(crash_and_restart)
    assert stream.acked, "expected some orders acknowledged around the crash"
    assert int(db_rows(stack, "SELECT count(*) FROM orders")[0][0]) > int(before)
    retried = _retry_failed(api, stream)
    _assert_consistent(api, stack, stream, retried)
    log = (stack.base / "engine.log").read_text()
    assert log.count("ready: symbols=") >= 2  # it really restarted and rebuilt


def test_backend_kill9_mid_stream_loses_nothing_acked(api: httpx.Client, stack: LoopbackStack) -> None:
    stream = Stream(stack.backend_url(), [register(api, f"be-{i}") for i in range(6)])
    backend = stack.backends[0]
    assert backend is not None

    def crash_and_restart() -> None:
        backend.kill9()
        stack.start_backend(0)

    stream.run_around(crash_and_restart)
    with httpx.Client(base_url=stack.backend_url(), timeout=15) as fresh:
        retried = _retry_failed(fresh, stream)
        _assert_consistent(fresh, stack, stream, retried)


def test_retry_after_engine_restart_returns_the_stored_ack(api: httpx.Client, stack: LoopbackStack) -> None:
    auth = register(api, "replayer")
    body = {"client_order_id": new_coid("replay"), "symbol": "GOOG", "side": "sell", "type": "limit",
            "price": 77.0, "qty": 3}  # fmt: skip
    first = api.post("/v1/orders", json=body, headers=auth)
    assert first.status_code == 200
    stack.redis.child.stop()  # no Redis fast path: the answer must come from the engine and PostgreSQL
    stack.redis.start()
    assert stack.engine is not None
    stack.engine.kill9()
    stack.start_engine()
    for _ in range(100):
        again = api.post("/v1/orders", json=body, headers=auth)
        if again.status_code == 200:
            break
        time.sleep(0.1)
    assert again.content == first.content
    assert again.headers.get("idempotent-replay") == "true"
    assert db_rows(
        stack, f"SELECT count(*) FROM orders WHERE client_order_id = '{body['client_order_id']}'"
    ) == [["1"]]


def test_readyz_is_false_while_redis_is_down(api: httpx.Client, stack: LoopbackStack) -> None:
    assert api.get("/readyz").status_code == 200
    stack.redis.child.stop()
    try:
        resp = api.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["checks"]["redis"] is False
        assert resp.json()["checks"]["postgres"] is True
        auth = {"X-API-Key": "hft_unknown"}
        assert api.post("/v1/orders", json={"client_order_id": "x"}, headers=auth).status_code < 500
    finally:
        stack.redis.start()
    deadline = time.monotonic() + 10
    while api.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "expected /readyz to recover within 10s after Redis restarted"
        time.sleep(0.1)


def test_readyz_is_false_while_the_engine_is_down(api: httpx.Client, stack: LoopbackStack) -> None:
    assert stack.engine is not None
    stack.engine.kill9()
    try:
        resp = api.get("/readyz")
        assert resp.status_code == 503
        assert False in resp.json()["checks"].values()
    finally:
        stack.start_engine()
    deadline = time.monotonic() + 10
    while api.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_failed_commit_stops_the_engine_and_restart_rebuilds(api: httpx.Client, stack: LoopbackStack) -> None:
    """Fail-stop: when PostgreSQL cannot commit, the engine exits non-zero instead of serving a book
    that is ahead of the database; after PostgreSQL and the engine restart, book == database."""
    auth = register(api, "failstop")
    body = {"client_order_id": new_coid("fs"), "symbol": "MSFT", "side": "buy", "type": "limit",
            "price": 12.0, "qty": 2}  # fmt: skip
    assert stack.engine is not None
    stack.postgres.stop()
    try:
        resp = api.post("/v1/orders", json=body, headers=auth)
        assert resp.status_code == 503, resp.text
        assert stack.engine.proc is not None
        assert stack.engine.proc.wait(timeout=30) == 70
    finally:
        stack.postgres.start()
        stack.start_engine()
    for _ in range(100):
        resp = api.post("/v1/orders", json=body, headers=auth)
        if resp.status_code == 200:
            break
        time.sleep(0.1)
    assert resp.status_code == 200, resp.text
    assert db_rows(
        stack, f"SELECT count(*) FROM orders WHERE client_order_id = '{body['client_order_id']}'"
    ) == [["1"]]
    assert engine_book(api, "MSFT") == db_book(stack, "MSFT")
