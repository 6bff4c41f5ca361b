"""The API router: includes every resource router (the echo route only when HFT_ECHO=1)."""

from __future__ import annotations

from fastapi import APIRouter

from hft_platform.backend.api.routes import book, echo, health, orders, users


def build_router(*, with_echo: bool) -> APIRouter:
    router = APIRouter()
    router.include_router(users.router)
    router.include_router(orders.router)
    router.include_router(book.router)
    router.include_router(health.router)
    if with_echo:
        router.include_router(echo.router)
    return router
