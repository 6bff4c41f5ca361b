"""GET /v1/book/{symbol}: aggregated depth of one symbol's book (committed state only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hft_platform.backend.deps import Ctx, http_error
from hft_platform.backend.models import BookOut, Problem
from hft_platform.backend.services import orders
from hft_platform.backend.services.errors import ServiceError
from hft_platform.domain import MAX_SYMBOL

router = APIRouter(prefix="/v1/book", tags=["book"])


@router.get("/{symbol}", response_model=BookOut, responses={404: {"model": Problem}, 503: {"model": Problem}})
async def get_book(
    symbol: Annotated[str, Path(min_length=1, max_length=MAX_SYMBOL)],
    ctx: Ctx,
    levels: Annotated[int, Query(ge=1, le=50)] = 10,
) -> BookOut:
    try:
        return BookOut(**await orders.book(ctx, symbol=symbol, levels=levels))
    except ServiceError as e:
        raise http_error(e) from e
