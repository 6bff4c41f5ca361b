"""Happy paths of the HTTP API against the real stack: register, trade, book, look up, cancel, retry."""

from __future__ import annotations

import httpx
import pytest
from hft_platform.devstack.stack import LoopbackStack
from platform_support import db_rows, engine_book, new_coid, order, register

pytestmark = pytest.mark.slow


def test_register_returns_a_working_key(api: httpx.Client) -> None:
    resp = api.post("/v1/users", json={"name": "alice"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["api_key"].startswith("hft_")
    assert body["user_id"] > 0
    placed = api.post("/v1/orders", json=order(), headers={"X-API-Key": body["api_key"]})
    assert placed.status_code == 200, placed.text


def test_orders_match_and_rows_are_committed_before_the_ack(
    api: httpx.Client, auth: dict[str, str], stack: LoopbackStack
) -> None:
    sell = api.post("/v1/orders", json=order(symbol="MSFT", side="sell", price=250.5, qty=10), headers=auth)
    assert sell.status_code == 200, sell.text
    ack_sell = sell.json()
    assert ack_sell["status"] == "open"
    assert ack_sell["resting_qty"] == 10

    buy = api.post("/v1/orders", json=order(symbol="MSFT", side="buy", price=251.0, qty=4), headers=auth)
    ack_buy = buy.json()
    assert (ack_buy["status"], ack_buy["filled_qty"], ack_buy["resting_qty"]) == ("filled", 4, 0)

    # Acknowledged means committed: the rows are there the moment the reply arrives.
    rows = db_rows(
        stack,
        f"SELECT order_id, filled, remaining, state FROM orders "
        f"WHERE order_id IN ({ack_sell['order_id']}, {ack_buy['order_id']}) ORDER BY order_id",
    )
    assert rows == [[str(ack_sell["order_id"]), "4", "6", "0"], [str(ack_buy["order_id"]), "4", "0", "1"]]
    fills = db_rows(stack, f"SELECT maker_id, price, qty FROM fills WHERE taker_id = {ack_buy['order_id']}")
    assert fills == [[str(ack_sell["order_id"]), "25050", "4"]]

    assert engine_book(api, "MSFT")["asks"].get(250.5, (0, 0))[0] >= 6
    got = api.get(f"/v1/orders/{ack_sell['order_id']}", headers=auth).json()
    assert (got["status"], got["filled_qty"], got["remaining_qty"], got["price"]) == ("open", 4, 6, 250.5)


def test_market_and_ioc_never_rest(api: httpx.Client, auth: dict[str, str]) -> None:
    market = api.post("/v1/orders", json=order(symbol="GOOG", type="market", price=None, qty=3), headers=auth)
    assert market.status_code == 200, market.text
    assert market.json()["resting_qty"] == 0
    ioc = api.post(
        "/v1/orders", json=order(symbol="GOOG", type="ioc", side="sell", price=9999.0), headers=auth
    )
    assert ioc.json()["resting_qty"] == 0
    assert ioc.json()["status"] in ("expired", "filled")


def test_cancel_open_order_then_conflict(
    api: httpx.Client, auth: dict[str, str], stack: LoopbackStack
) -> None:
    ack = api.post("/v1/orders", json=order(symbol="AMZN", price=1.0, qty=7), headers=auth).json()
    oid = ack["order_id"]
    before = engine_book(api, "AMZN")["bids"][1.0]
    resp = api.delete(f"/v1/orders/{oid}", headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"order_id": oid, "status": "cancelled", "cancelled_qty": 7}
    assert db_rows(stack, f"SELECT state, remaining FROM orders WHERE order_id = {oid}") == [["2", "0"]]
    after = engine_book(api, "AMZN")["bids"].get(1.0, (0, 0))
    assert after == (before[0] - 7, before[1] - 1)
    again = api.delete(f"/v1/orders/{oid}", headers=auth)
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]


def test_other_users_orders_are_invisible(api: httpx.Client, auth: dict[str, str]) -> None:
    oid = api.post("/v1/orders", json=order(price=2.0), headers=auth).json()["order_id"]
    other = register(api, "mallory")
    assert api.get(f"/v1/orders/{oid}", headers=other).status_code == 404
    assert api.delete(f"/v1/orders/{oid}", headers=other).status_code == 404
    assert api.get(f"/v1/orders/{oid}", headers=auth).status_code == 200


def test_retry_gives_one_order_and_the_same_ack(
    api: httpx.Client, auth: dict[str, str], stack: LoopbackStack
) -> None:
    body = order(symbol="AAPL", side="sell", price=500.0, qty=5)
    first = api.post("/v1/orders", json=body, headers=auth)
    second = api.post("/v1/orders", json=body, headers=auth)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers.get("idempotent-replay") == "true"
    assert "idempotent-replay" not in first.headers
    count = db_rows(stack, f"SELECT count(*) FROM orders WHERE client_order_id = '{body['client_order_id']}'")
    assert count == [["1"]]


def test_concurrent_retries_create_one_order(
    api: httpx.Client, auth: dict[str, str], stack: LoopbackStack
) -> None:
    import concurrent.futures

    body = order(client_order_id=new_coid("race"), price=3.0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: api.post("/v1/orders", json=body, headers=auth), range(8)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.json()["order_id"] for r in replies}) == 1
    count = db_rows(stack, f"SELECT count(*) FROM orders WHERE client_order_id = '{body['client_order_id']}'")
    assert count == [["1"]]


def test_same_client_order_id_for_two_users_is_two_orders(api: httpx.Client) -> None:
    a, b = register(api, "a"), register(api, "b")
    body = order(client_order_id=new_coid("shared"), price=4.0)
    oa = api.post("/v1/orders", json=body, headers=a).json()["order_id"]
    ob = api.post("/v1/orders", json=body, headers=b).json()["order_id"]
    assert oa != ob


def test_probes_metrics_and_openapi(api: httpx.Client, stack: LoopbackStack) -> None:
    assert api.get("/healthz").status_code == 200
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    text = api.get("/metrics").text
    for series in ("hft_orders_total", "hft_registrations_total", "hft_order_latency_seconds_bucket"):
        assert series in text
    engine = httpx.get(f"http://127.0.0.1:{stack.engine_metrics_port}/metrics").text
    for series in ("hft_engine_queue_depth", "hft_engine_latency_seconds_bucket", "hft_fills_total",
                   "hft_db_commit_seconds_bucket", "hft_db_batch_size_bucket"):  # fmt: skip
        assert series in engine
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/users", "/v1/orders", "/v1/orders/{order_id}", "/v1/book/{symbol}"} <= set(paths)
    assert "/v1/echo" not in paths  # only with HFT_ECHO=1


def test_through_nginx(stack: LoopbackStack) -> None:
    with httpx.Client(base_url=stack.front_url, timeout=10) as front:
        headers = register(front, "via-nginx")
        resp = front.post("/v1/orders", json=order(price=5.0), headers=headers)
        assert resp.status_code == 200, resp.text
        big = front.post("/v1/orders", content=b"{" + b" " * 10_000 + b"}", headers=headers)
        assert big.status_code == 413
