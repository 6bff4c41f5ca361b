"""The ``postgres:15`` image's docker-entrypoint.sh, for the local backend (runs as a script, stdlib only).

Its job, like the official image: on an empty ``$PGDATA``, initdb with ``POSTGRES_USER`` /
``POSTGRES_PASSWORD`` (scram-sha-256 for TCP), create ``POSTGRES_DB``; then drop root and exec the
server with the given arguments. Differences: the database is created in single-user mode (no temporary
server), initdb runs with ``--no-sync`` (the data directory is deleted at teardown anyway) and
``--auth-host`` (here every client is a loopback client, so 127.0.0.1 must not mean trust), and
``/docker-entrypoint-initdb.d`` is not supported. It must not import anything from the plugin.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"


def _fail(message: str) -> None:
    print(f"pg_entrypoint: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def _init(pgdata: Path) -> None:
    user = os.environ.get("POSTGRES_USER", "postgres")
    password = os.environ.get("POSTGRES_PASSWORD", "")
    auth = os.environ.get("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256")
    if not password and auth != "trust":
        _fail("database is uninitialized and POSTGRES_PASSWORD is not set (same rule as the official image)")
    pwfile = pgdata.parent / f".pwfile-{os.getpid()}"
    pwfile.write_text(password + "\n")
    os.chown(pwfile, pwd.getpwnam(USER).pw_uid, -1)
    try:
        argv = [
            str(BIN / "initdb"),
            "-D",
            str(pgdata),
            f"--username={user}",
            f"--pwfile={pwfile}",
            "--no-sync",
        ]
        # Every client here connects from 127.0.0.1 (in a pod network none does), so initdb's loopback
        # lines get the image's host auth method instead of trust; the unix socket stays trust.
        argv += [f"--auth-host={auth}", "--auth-local=trust"]
        argv += os.environ.get("POSTGRES_INITDB_ARGS", "").split()
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False,
            user=USER, group=pwd.getpwnam(USER).pw_gid, extra_groups=[],
        )  # fmt: skip
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        _fail(f"initdb exited {done.returncode}: {done.stderr.strip()}")
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write(f"\nhost all all all {auth}\n")
    database = os.environ.get("POSTGRES_DB", user)
    if database != "postgres":
        sql = f'CREATE DATABASE "{database}";\n'
        done = subprocess.run(
            [str(BIN / "postgres"), "--single", "-D", str(pgdata), "-j", "postgres"],
            input=sql, capture_output=True, text=True, timeout=60, check=False,
            user=USER, group=pwd.getpwnam(USER).pw_gid, extra_groups=[],
        )  # fmt: skip
        if done.returncode != 0 or "ERROR:" in done.stdout + done.stderr:
            _fail(f"creating database {database!r} failed: {(done.stdout + done.stderr).strip()[-500:]}")
    print(f"pg_entrypoint: initialized {pgdata} (user {user}, database {database})", flush=True)


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        argv = ["postgres", *argv]
    if argv[0] != "postgres":
        os.execvp(argv[0], argv)
    pgdata = Path(os.environ.get("PGDATA", "/var/lib/postgresql/data"))
    entry = pwd.getpwnam(USER)
    if os.geteuid() == 0:
        run = Path("/var/run/postgresql")  # the pod's private socket directory, as in the image
        if run.is_dir():
            os.chown(run, entry.pw_uid, entry.pw_gid)
            run.chmod(0o3777)
        pgdata.mkdir(parents=True, exist_ok=True)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        _init(pgdata)
    if os.geteuid() == 0:
        os.setgid(entry.pw_gid)
        os.initgroups(USER, entry.pw_gid)
        os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir
    os.execv(str(BIN / "postgres"), ["postgres", "-D", str(pgdata), *argv[1:]])


if __name__ == "__main__":
    main(sys.argv[1:])
