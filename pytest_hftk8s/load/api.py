"""The platform's HTTP API as the load generator and the warm-up gate speak it.

Request shapes only (paths, headers, JSON bodies) - no I/O here, so both the raw HTTP/1.1 client
and httpx build identical requests. Keep in step with ``hft_platform``'s routes.
"""

from __future__ import annotations

import json
from typing import TypedDict

USERS_PATH = "/v1/users"
ORDERS_PATH = "/v1/orders"
API_KEY_HEADER = "X-API-Key"
SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "NFLX")


class OrderBody(TypedDict):
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


def order_body(seq: int, *, run_id: str) -> OrderBody:
    """A limit order that alternates sides around a mid price so books cross and fill."""
    side = "buy" if seq % 2 == 0 else "sell"
    price = round(100.0 + ((seq % 7) - 3) / 100, 2)  # two decimals: whole ticks
    return {
        "client_order_id": f"{run_id}-{seq}",
        "symbol": SYMBOLS[seq % len(SYMBOLS)],
        "side": side,
        "type": "limit",
        "price": price,
        "qty": 1 + seq % 5,
    }


def order_request(seq: int, *, run_id: str, api_key: str, host: str) -> bytes:
    """One keep-alive ``POST /v1/orders`` as raw HTTP/1.1 bytes."""
    body = json.dumps(order_body(seq, run_id=run_id), separators=(",", ":")).encode()
    head = (
        f"POST {ORDERS_PATH} HTTP/1.1\r\nHost: {host}\r\n{API_KEY_HEADER}: {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(path: str, *, host: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
