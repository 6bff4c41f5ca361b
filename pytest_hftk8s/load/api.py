"""The platform's HTTP API as the load generator speaks it.

Request shapes only (paths, headers, JSON bodies, raw HTTP/1.1 bytes) - no I/O here, so both the raw
client and httpx build identical requests. Keep in step with ``hft_platform``'s routes
(platform/README.md, "HTTP API").
"""

from __future__ import annotations

import json
from typing import TypedDict

USERS_PATH = "/v1/users"
ORDERS_PATH = "/v1/orders"
API_KEY_HEADER = "X-API-Key"
SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "NFLX")
#: Prices are whole ticks of 0.01.
TICK = 0.01


class OrderBody(TypedDict, total=False):
    client_order_id: str
    symbol: str
    side: str
    type: str
    price: float
    qty: int


def registration_body(username: str) -> dict[str, str]:
    return {"name": username[:64]}


def api_key_from(payload: object) -> str:
    """The API key in a registration response; raises ``KeyError`` naming what was seen."""
    if isinstance(payload, dict):
        for key in ("api_key", "apiKey", "key"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
    raise KeyError(f"expected an 'api_key' string in the registration response, saw {payload!r:.200}")


def order_body(
    *, client_order_id: str, symbol: str, side: str, kind: str, qty: int, price: float | None = None
) -> OrderBody:
    body: OrderBody = {
        "client_order_id": client_order_id,
        "symbol": symbol,
        "side": side,
        "type": kind,
        "qty": qty,
    }
    if price is not None:
        body["price"] = round(price, 2)  # whole ticks
    return body


def order_request(body: OrderBody, *, api_key: str, host: str) -> bytes:
    """One keep-alive ``POST /v1/orders`` as raw HTTP/1.1 bytes."""
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {ORDERS_PATH} HTTP/1.1\r\nHost: {host}\r\n{API_KEY_HEADER}: {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def cancel_request(order_id: int, *, api_key: str, host: str) -> bytes:
    """One keep-alive ``DELETE /v1/orders/{id}`` as raw HTTP/1.1 bytes."""
    return (
        f"DELETE {ORDERS_PATH}/{order_id} HTTP/1.1\r\nHost: {host}\r\n{API_KEY_HEADER}: {api_key}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
