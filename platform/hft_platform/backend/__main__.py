"""Entry point of the backend: ``python -m hft_platform.backend`` (or ``hft-backend``).

One uvicorn worker per process (uvloop + httptools), as in the field report; scale by processes.
"""

from __future__ import annotations

import gc

import uvicorn

from hft_platform.backend.app import create_app
from hft_platform.settings import load_settings


def main() -> None:
    settings = load_settings()
    # The app's long-lived objects never die; keep the cyclic GC from rescanning them every few
    # hundred allocations (a per-request cost on a hot path that allocates a lot).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.http_port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=75,
        proxy_headers=False,  # behind nginx we need no client-address rewriting; it costs per request
    )


if __name__ == "__main__":
    main()
