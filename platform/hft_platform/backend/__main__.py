"""Entry point of the backend: ``python -m hft_platform.backend`` (or ``hft-backend``).

One uvicorn worker per process (uvloop + httptools), as in the field report; scale by processes.
"""

from __future__ import annotations

import uvicorn

from hft_platform.backend.app import create_app
from hft_platform.settings import load_settings


def main() -> None:
    settings = load_settings()
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
    )


if __name__ == "__main__":
    main()
