"""The whole loopback stack, composed: PostgreSQL + Redis + engine shard(s) + backend(s) + optional nginx.

Engine and backend run as real ``python -m hft_platform.*`` processes configured only through
``HFT_*`` variables, exactly as the manifests configure them.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Mapping

from hft_platform.devstack.procs import Child, free_port, http_status
from hft_platform.devstack.servers import Nginx, Postgres, Redis

SERVICE_START_TIMEOUT_S = 60.0


class LoopbackStack:
    def __init__(
        self,
        *,
        symbols: tuple[str, ...] = ("AAPL", "MSFT", "GOOG", "AMZN"),
        backends: int = 1,
        with_nginx: bool = False,
        fsync: bool = True,
        echo: bool = False,
        rate_limit: int = 1000,
        extra_env: Mapping[str, str] | None = None,
        base_dir: pathlib.Path | None = None,
    ) -> None:
        self.base = base_dir or pathlib.Path(tempfile.mkdtemp(prefix="hft-stack-"))
        self.base.chmod(0o755)
        self.symbols = symbols
        self.postgres = Postgres(self.base, fsync=fsync)
        self.redis = Redis(self.base)
        self.engine_port = free_port()
        self.engine_metrics_port = free_port()
        self.backend_ports = [free_port() for _ in range(backends)]
        self.engine: Child | None = None
        self.backends: list[Child | None] = [None] * backends
        self.nginx = (
            Nginx(self.base, backends=[f"127.0.0.1:{p}" for p in self.backend_ports]) if with_nginx else None
        )
        self._echo = echo
        self._rate_limit = rate_limit
        self._extra_env = dict(extra_env or {})

    # -- environment -------------------------------------------------------------------------
    def env(self, **overrides: str) -> dict[str, str]:
        src = str(pathlib.Path(__file__).resolve().parents[2])
        env = {k: v for k, v in os.environ.items() if not k.startswith("HFT_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
        env.update(
            HFT_BIND_HOST="127.0.0.1",
            HFT_DB_HOST="127.0.0.1",
            HFT_DB_PORT=str(self.postgres.port),
            HFT_DB_NAME="hft",
            HFT_DB_USER="hft",
            HFT_REDIS_URL=self.redis.url,
            HFT_SYMBOLS=",".join(self.symbols),
            HFT_ENGINE_SHARDS=f"127.0.0.1:{self.engine_port}",
            HFT_ENGINE_PORT=str(self.engine_port),
            HFT_METRICS_PORT=str(self.engine_metrics_port),
            HFT_SHARD="engine-0",
            HFT_RATE_LIMIT=str(self._rate_limit),
            HFT_ECHO="1" if self._echo else "0",
        )
        env.update(self._extra_env)
        env.update(overrides)
        return env

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LoopbackStack:
        try:
            self.postgres.start()
            self.redis.start()
            self.start_engine()
            for i in range(len(self.backends)):
                self.start_backend(i)
            if self.nginx is not None:
                self.nginx.start()
        except BaseException:
            self.stop()
            raise
        return self

    def start_engine(self, *, wrapper: list[str] | None = None) -> Child:
        self.engine = Child(
            "engine", [*(wrapper or []), sys.executable, "-m", "hft_platform.engine"],
            str(self.base / "engine.log"), env=self.env(),
        )  # fmt: skip
        self.engine.start()
        self.engine.wait_until(
            lambda: http_status(self.engine_metrics_port, "/readyz") == 200,
            timeout=SERVICE_START_TIMEOUT_S,
            what="engine /readyz",
        )
        return self.engine

    def start_backend(self, i: int = 0) -> Child:
        port = self.backend_ports[i]
        child = Child(
            f"backend-{i}", [sys.executable, "-m", "hft_platform.backend"],
            str(self.base / f"backend-{i}.log"), env=self.env(HFT_HTTP_PORT=str(port)),
        )  # fmt: skip
        child.start()
        self.backends[i] = child
        child.wait_until(
            lambda: http_status(port, "/readyz", timeout=3) == 200,
            timeout=SERVICE_START_TIMEOUT_S,
            what=f"backend-{i} /readyz",
        )
        return child

    def backend_url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.backend_ports[i]}"

    @property
    def front_url(self) -> str:
        assert self.nginx is not None
        return f"http://127.0.0.1:{self.nginx.port}"

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for child in self.backends:
            if child is not None:
                child.stop()
        if self.engine is not None:
            self.engine.stop()
        self.redis.stop()
        self.postgres.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LoopbackStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
