"""Request and response bodies of the HTTP API (pydantic), i.e. the published OpenAPI schema.

Shapes and field-level rules only; cross-field and catalogue rules (known symbol, tick size,
price required for limit orders) live in ``services.orders``. No I/O.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from hft_platform.domain import MAX_CLIENT_ORDER_ID, MAX_PRICE_TICKS, MAX_QTY, MAX_SYMBOL, TICKS_PER_UNIT

MAX_ORDER_ID = 2**63 - 1

Price = Annotated[float, Field(strict=True, gt=0, le=MAX_PRICE_TICKS / TICKS_PER_UNIT, allow_inf_nan=False)]


class OrderIn(BaseModel):
    """A new order. ``price`` is required for ``limit`` and ``ioc`` and ignored for ``market``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    client_order_id: str = Field(
        min_length=1, max_length=MAX_CLIENT_ORDER_ID, pattern=r"^[A-Za-z0-9._:-]+$", strict=True
    )
    symbol: str = Field(min_length=1, max_length=MAX_SYMBOL, pattern=r"^[A-Z0-9.]+$", strict=True)
    side: Literal["buy", "sell"]
    type: Literal["limit", "market", "ioc"] = "limit"
    price: Price | None = None
    qty: Annotated[StrictInt, Field(gt=0, le=MAX_QTY)]


class AckOut(BaseModel):
    """The acknowledgement: sent only once the order is committed. Retries get the same body."""

    order_id: int
    client_order_id: str
    status: Literal["open", "filled", "cancelled", "rejected", "expired"]
    filled_qty: int
    resting_qty: int
    reject_reason: str | None = None


class OrderOut(BaseModel):
    """Current state of a stored order."""

    order_id: int
    client_order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    type: Literal["limit", "market", "ioc"]
    price: float | None
    qty: int
    filled_qty: int
    remaining_qty: int
    status: Literal["open", "filled", "cancelled", "rejected", "expired"]


class CancelOut(BaseModel):
    order_id: int
    status: Literal["cancelled"]
    cancelled_qty: int


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, strict=True)


class UserOut(BaseModel):
    user_id: int
    api_key: str


class Level(BaseModel):
    price: float
    qty: int
    orders: int


class BookOut(BaseModel):
    symbol: str
    bids: list[Level]
    asks: list[Level]


class Problem(BaseModel):
    """Body of every 4xx/5xx: what is wrong and what to do."""

    detail: str | list[dict]


class EchoOut(BaseModel):
    client_order_id: str
    symbol: str
    side: str
    type: str
    price: float | None
    qty: int
