"""Entry point of the engine service: ``python -m hft_platform.engine`` (or ``hft-engine``).

Wires settings, PostgreSQL connections, the books, the sequencer, the group committer and the two
servers together, then runs until SIGTERM or until a fatal error (exit non-zero, so the supervisor
restarts it and the books are rebuilt). Holds no logic of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import asyncpg
import uvloop

from hft_platform.engine import recovery, server
from hft_platform.engine.book import ShardBook
from hft_platform.engine.journal import FAIL_STOP_EXIT, GroupCommitter
from hft_platform.engine.sequencer import Sequencer
from hft_platform.schema import apply_schema
from hft_platform.settings import Settings, load_settings

log = logging.getLogger("hft_platform.engine")
CONNECT_DEADLINE_S = 60.0


async def connect(dsn: str, *, deadline_s: float = CONNECT_DEADLINE_S) -> asyncpg.Connection:
    """Connect, retrying while PostgreSQL is still starting (bounded by ``deadline_s``)."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + deadline_s
    delay = 0.1
    while True:
        try:
            # Custom plans: the generic plan of the unnest joins ignores the (tiny) array sizes and
            # scans the whole orders table; measured 2.4x the per-order cost of a custom plan.
            return await asyncpg.connect(
                dsn, timeout=5, server_settings={"plan_cache_mode": "force_custom_plan"}
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as e:
            if loop.time() + delay > stop:
                raise ConnectionError(
                    f"expected PostgreSQL at {dsn.rpartition('@')[2]} within {deadline_s:.0f}s, last error: {e!r}; "
                    "check HFT_DB_HOST/HFT_DB_PORT and that the server is up"
                ) from e
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def serve(settings: Settings) -> int:
    ready = False
    probes = await server.serve_probes(
        host=settings.bind_host, port=settings.metrics_port, is_ready=lambda: ready
    )
    seq_conn = await connect(settings.db_dsn)
    write_conn = await connect(settings.db_dsn)
    await apply_schema(seq_conn)
    book = ShardBook(settings.symbols)
    committer = GroupCommitter(write_conn, shard=settings.shard_name)
    sequencer = Sequencer(
        book=book,
        committer=committer,
        conn=seq_conn,
        shard=settings.shard_name,
        group_max=settings.group_max_orders,
        id_shard=settings.id_shard,
    )
    restored = await recovery.rebuild(seq_conn, book=book, live=sequencer.live)
    loop = asyncio.get_running_loop()
    rpc = await loop.create_server(
        lambda: server.BackendConnection(sequencer), host=settings.bind_host, port=settings.engine_port
    )
    log.info(
        "engine shard %s ready: symbols=%s restored_open_orders=%d rpc=%s:%d metrics=%s:%d",
        settings.shard_name, ",".join(settings.symbols), restored,
        settings.bind_host, settings.engine_port, settings.bind_host, settings.metrics_port,
    )  # fmt: skip
    ready = True
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(sequencer.run()), asyncio.create_task(committer.run())]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    ready = False
    rpc.close()
    probes.close()
    for task in [*tasks, stopper]:
        task.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            # e.g. PostgreSQL gone during a look-up: same fail-stop as a failed commit.
            log.critical(
                "engine task failed, stopping so a restart rebuilds from PostgreSQL: %r", task.exception()
            )
            return FAIL_STOP_EXIT
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(seq_conn.close(), write_conn.close()), timeout=5)
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    sys.exit(uvloop.run(serve(settings)))


if __name__ == "__main__":
    main()
