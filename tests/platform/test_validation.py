"""Every bad-input rule answers 4xx with a body that says what is wrong, never 5xx."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx
import pytest
from hft_platform.devstack.stack import LoopbackStack
from platform_support import RATE_LIMIT, db_rows, new_coid, order, register

pytestmark = pytest.mark.slow


def _raw(fields: str) -> bytes:
    head = f'"client_order_id":"{new_coid("raw")}","symbol":"AAPL","side":"buy","type":"limit"'
    return ("{" + head + "," + fields + "}").encode()


BAD_BODIES = {
    "zero qty": (order(qty=0), "qty"),
    "negative qty": (order(qty=-5), "qty"),
    "fractional qty": (order(qty=1.5), "qty"),
    "qty as string": (order(qty="10"), "qty"),
    "price as string": (order(price="100"), "price"),
    "negative price": (order(price=-1.0), "price"),
    "unknown side": (order(side="hold"), "side"),
    "unknown type": (order(type="stop"), "type"),
    "missing qty": ({k: v for k, v in order().items() if k != "qty"}, "qty"),
    "extra field": (order(leverage=100), "leverage"),
    "bad client order id": (order(client_order_id="has space"), "client_order_id"),
    "empty client order id": (order(client_order_id=""), "client_order_id"),
    "lower-case symbol": (order(symbol="aapl"), "symbol"),
    "unknown symbol": (order(symbol="ZZZZ"), "unknown symbol"),
    "price off tick": (order(price=100.001), "multiple of 0.01"),
    "price above range": (order(price=10_000.01), "price"),
    "limit without price": (order(price=None), "expected a price"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_bad_order_is_422_and_says_why(api: httpx.Client, auth: dict[str, str], case: str) -> None:
    body, hint = BAD_BODIES[case]
    resp = api.post("/v1/orders", json=body, headers=auth)
    assert resp.status_code == 422, resp.text
    assert hint in resp.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_price_is_rejected(api: httpx.Client, auth: dict[str, str], literal: str) -> None:
    resp = api.post(
        "/v1/orders",
        content=_raw(f'"price":{literal},"qty":1'),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    # Refused by the strict JSON parser already (orjson), before validation.
    assert resp.json()["detail"][0]["type"] == "json_invalid"
    assert "JSON" in resp.json()["detail"][0]["msg"]
    json.loads(resp.content)  # the error body itself is valid JSON (no bare NaN)


def test_malformed_json_is_422(api: httpx.Client, auth: dict[str, str]) -> None:
    resp = api.post("/v1/orders", content=b'{"qty": ', headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "json_invalid"


def test_non_finite_price_in_parsed_json_is_rejected_by_the_model() -> None:
    # Belt and braces: even if a parser let NaN through, the model refuses it.
    from hft_platform.backend.models import OrderIn
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="price"):
        OrderIn.model_validate(
            {"client_order_id": "x", "symbol": "AAPL", "side": "buy", "price": float("nan"), "qty": 1}
        )


def test_oversized_body_is_413_with_and_without_length(api: httpx.Client, auth: dict[str, str]) -> None:
    big = json.dumps(order(client_order_id="x" * 60, pad="y" * 10_000)).encode()
    resp = api.post("/v1/orders", content=big, headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert "at most" in resp.json()["detail"]

    def chunks():
        yield big[:2000]
        yield big[2000:]

    chunked = api.post("/v1/orders", content=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert chunked.status_code == 413


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "hft_not-a-key"}, {"X-API-Key": ""}])
def test_missing_or_bad_key_is_401(api: httpx.Client, headers: dict[str, str]) -> None:
    resp = api.post("/v1/orders", json=order(), headers=headers)
    assert resp.status_code == 401
    assert "API key" in resp.json()["detail"] or "X-API-Key" in resp.json()["detail"]
    assert api.get("/v1/orders/1", headers=headers).status_code == 401


def test_bad_registration_is_422(api: httpx.Client) -> None:
    assert api.post("/v1/users", json={"name": ""}).status_code == 422
    assert api.post("/v1/users", json={"name": 5}).status_code == 422
    assert api.post("/v1/users", json={}).status_code == 422


def test_bad_paths_are_4xx(api: httpx.Client, auth: dict[str, str]) -> None:
    assert api.get("/v1/orders/0", headers=auth).status_code == 422
    assert api.get("/v1/orders/99999999999999999999", headers=auth).status_code == 422
    assert api.get("/v1/orders/abc", headers=auth).status_code == 422
    assert api.get("/v1/orders/123456789", headers=auth).status_code == 404
    assert api.get("/v1/book/ZZZZ").status_code == 404
    assert api.get("/v1/book/AAPL", params={"levels": 0}).status_code == 422


def test_rate_limit_is_429_per_key(api: httpx.Client, stack: LoopbackStack) -> None:
    greedy, polite = register(api, "greedy"), register(api, "polite")
    n = RATE_LIMIT * 4
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(lambda _: api.post("/v1/orders", json=order(price=6.0), headers=greedy), range(n))
        )
    seconds_spanned = int(time.time()) - int(started) + 1  # the limiter counts per wall-clock second
    codes = [r.status_code for r in replies]
    assert set(codes) <= {200, 429}, [r.text for r in replies if r.status_code not in (200, 429)]
    accepted = codes.count(200)
    assert accepted <= RATE_LIMIT * seconds_spanned
    if seconds_spanned <= 3:  # fast enough to exceed the budget: some must have been refused
        assert 429 in codes, codes
    assert api.post("/v1/orders", json=order(price=6.0), headers=polite).status_code == 200
    resp = api.post("/v1/orders", json=order(price=6.0), headers=greedy)
    if resp.status_code == 429:
        assert "orders/s" in resp.json()["detail"]
    # Refused orders never reached the engine or the database.
    user_rows = db_rows(
        stack, "SELECT count(*) FROM orders o JOIN users u USING (user_id) WHERE u.name = 'greedy'"
    )
    assert int(user_rows[0][0]) <= accepted + 1
