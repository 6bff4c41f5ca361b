"""Third-party servers of the loopback stack from Debian's packages: PostgreSQL 15, Redis, nginx.

PostgreSQL refuses to run as root, so it runs as the ``postgres`` system user in a data directory
owned by it. Durability settings stay at PostgreSQL's defaults (fsync on, synchronous_commit on).
"""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import signal
import subprocess

from hft_platform.devstack.procs import Child, StackError, free_port, http_status, port_open
from hft_platform.nginx import render_nginx_conf

PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 60.0


class Postgres:
    def __init__(self, base: pathlib.Path, *, port: int | None = None, fsync: bool = True) -> None:
        self.dir = base / "pg"
        self.port = port or free_port()
        self.fsync = fsync
        self.child: Child | None = None

    def start(self) -> None:
        if not (PG_BIN / "postgres").exists():
            raise StackError(f"expected PostgreSQL 15 binaries in {PG_BIN}; apt-get install postgresql")
        pg = pwd.getpwnam("postgres")
        data = self.dir / "data"
        sock = self.dir / "sock"
        if not data.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            sock.mkdir(exist_ok=True)
            for path in (self.dir, sock):
                os.chown(path, pg.pw_uid, pg.pw_gid)
            subprocess.run(
                [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
                user="postgres", check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(sock),
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on",
            "shared_buffers": "256MB",
            "wal_buffers": "16MB",
            "max_wal_size": "4GB",
            "checkpoint_timeout": "30min",
            "max_connections": "200",
        }
        argv = [str(PG_BIN / "postgres"), "-D", str(data)]
        for k, v in settings.items():
            argv += ["-c", f"{k}={v}"]
        self.child = Child(
            "postgres", argv, str(self.dir / "postgres.log"), user="postgres", cwd=str(self.dir)
        )
        self.child.start()
        self.child.wait_until(
            self._accepting, timeout=START_TIMEOUT_S, what=f"PostgreSQL on port {self.port}"
        )
        self.psql("CREATE ROLE hft LOGIN")
        self.psql("CREATE DATABASE hft OWNER hft")

    def _accepting(self) -> bool:
        out = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            timeout=10,
        )
        return out.returncode == 0

    def psql(self, sql: str, *, db: str = "postgres") -> str:
        out = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if out.returncode != 0 and "already exists" not in out.stderr:
            raise StackError(f"expected psql to run {sql!r}, it failed: {out.stderr.strip()}")
        return out.stdout.strip()

    @property
    def dsn(self) -> str:
        return f"postgresql://hft@127.0.0.1:{self.port}/hft"

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(sig=signal.SIGINT, timeout=30)  # "fast" shutdown


class Redis:
    def __init__(self, base: pathlib.Path, *, port: int | None = None) -> None:
        self.dir = base / "redis"
        self.port = port or free_port()
        self.child: Child | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise StackError("expected redis-server on PATH; apt-get install redis-server")
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--protected-mode", "no"]  # fmt: skip
        self.child = Child("redis", argv, str(self.dir / "redis.log"))
        self.child.start()
        self.child.wait_until(
            lambda: port_open(self.port), timeout=START_TIMEOUT_S, what=f"Redis on {self.port}"
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


class Nginx:
    def __init__(self, base: pathlib.Path, *, backends: list[str], port: int | None = None) -> None:
        self.dir = base / "nginx"
        self.port = port or free_port()
        self.backends = backends
        self.child: Child | None = None

    def start(self) -> None:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = render_nginx_conf(
            backends=self.backends,
            listen=f"127.0.0.1:{self.port}",
            pid_path=str(self.dir / "nginx.pid"),
            error_log=str(self.dir / "error.log"),
            temp_dir=str(self.dir),
            main_extra="daemon off;\nuser root;",
            keepalive=128,
        )
        (self.dir / "nginx.conf").write_text(conf)
        argv = [
            exe,
            "-c",
            str(self.dir / "nginx.conf"),
            "-p",
            str(self.dir),
            "-e",
            str(self.dir / "error.log"),
        ]
        self.child = Child("nginx", argv, str(self.dir / "nginx.out"))
        self.child.start()
        self.child.wait_until(
            lambda: http_status(self.port, "/nginx-health") == 200,
            timeout=START_TIMEOUT_S,
            what="nginx health",
        )

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(sig=signal.SIGQUIT)
