"""Record the saturation queries of real runs where the bottleneck is known, for test_bottleneck.py.

Not collected by the test run (its name is not ``test_*``); run it by hand, under the machine-wide lock:

    flock /tmp/hftk8s-heavy.lock python3 -m pytest tests/slo/record_saturation.py \
        --hft-cluster=local -p no:randomly -p no:cacheprovider -s

One session on the embedded local cluster, five open-loop runs of the trading flow, each attributed
live with ``slo.bottleneck`` and its inputs written to ``tests/slo/data/bottleneck/<scenario>.json``:

- ``calm``: a modest rate, nothing done to the platform;
- ``throttled_backend``: the same rate with stress-ng in the backend's cgroup (its 300m limit);
- ``slow_database``: the same rate with PostgreSQL's ``commit_delay`` at 30 ms (``commit_siblings=0``,
  so every flush waits): the database made slow on purpose, set and reset through ``ALTER SYSTEM``;
- ``overloaded_backend``: the order flow offered far beyond the platform (nothing injected): the
  backend's 300m limit is what saturates;
- ``saturated_generator``: a rate far beyond what the generator's one Python core can send, of
  ``GET /nginx-health`` (answered by nginx itself): the order flow cannot saturate the generator on
  this machine, because the backend (300m) saturates first, at under a tenth of a core of generator.

The files keep what each verdict used (query results, rendered PromQL, the load summary) and the
verdict reached live, so the replay in test_bottleneck.py goes through the same code path.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
import time

import pytest

from pytest_hftk8s.plugin import runtime_key
from pytest_hftk8s.results import to_dict
from pytest_hftk8s.slo import bottleneck

DATA = pathlib.Path(__file__).parent / "data" / "bottleneck"
RATE = 150.0  # requests/s: well inside one backend's capacity on this 2-core machine
FLOOD = 20_000.0  # requests/s: beyond what one Python core sends
SECONDS = 15.0
#: GET /nginx-health costs the generator ~18 us of CPU: 20,000/s is only 0.37 of a core here.
GENERATOR_FLOOD = 100_000.0
COMMIT_DELAY_US = 30_000
COMMAND = (
    "flock /tmp/hftk8s-heavy.lock python3 -m pytest tests/slo/record_saturation.py "
    "--hft-cluster=local -p no:randomly -p no:cacheprovider -s"
)
#: Large or per-request fields of a load summary that no verdict reads.
_DROP = ("histogram", "timeline", "latency_timeline", "errors_timeline", "actions", "results_file")


def _save(scenario: str, expected: str, how: str, run, prom, namespace: str) -> bottleneck.Bottleneck:
    load = run.summary
    window = load.order_window
    recording = bottleneck.record(prom, window, namespace=namespace, settle_timeout_s=5.0)
    verdict = bottleneck.judge(bottleneck.signals(recording, load=load), window=window)
    summary = {k: v for k, v in to_dict(load).items() if k not in _DROP}
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / f"{scenario}.json").write_text(
        json.dumps(
            {
                "scenario": scenario,
                "expected": expected,
                "how": how,
                "command": COMMAND,
                "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": f"{sys.platform}, {os.cpu_count()} CPUs",
                "namespace": namespace,
                "recording": recording.to_dict(),
                "load": summary,
                "live_verdict": verdict.verdict,
                "live_sentence": verdict.sentence,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\n== {scenario} (expected {expected}): {verdict.sentence}\n{bottleneck.table(verdict)}")
    return verdict


async def _sql(db, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password, database=db.database, timeout=10
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def namespace(hft_platform) -> str:
    return hft_platform.namespace


def test_calm(hft_load, hft_prom, namespace) -> None:
    with hft_load.constant_rate(rate=RATE, duration=SECONDS, users=20, name="calm") as run:
        pass
    _save(
        "calm", "none", f"open loop {RATE:g}/s for {SECONDS:g}s, nothing injected", run, hft_prom, namespace
    )


def test_throttled_backend(hft_load, hft_chaos, hft_prom, namespace) -> None:
    with hft_chaos.stress_cpu(target="backend", load=100, workers=2, duration=f"{SECONDS + 10:g}s"):
        time.sleep(1.0)  # stress-ng's workers are in the cgroup and the quota is being hit
        with hft_load.constant_rate(rate=RATE, duration=SECONDS, users=20, name="throttled-backend") as run:
            pass
    _save(
        "throttled_backend", "backend",
        f"open loop {RATE:g}/s for {SECONDS:g}s; hft_chaos.stress_cpu(target='backend', load=100, workers=2)",
        run, hft_prom, namespace,
    )  # fmt: skip


def test_slow_database(request, hft_load, hft_prom, namespace) -> None:
    db = request.config.stash[runtime_key].db_target()
    assert db is not None, "expected the platform's PostgreSQL to be reachable from this process"
    slow = (f"ALTER SYSTEM SET commit_delay = {COMMIT_DELAY_US}", "ALTER SYSTEM SET commit_siblings = 0",
            "SELECT pg_reload_conf()")  # fmt: skip
    reset = (
        "ALTER SYSTEM RESET commit_delay",
        "ALTER SYSTEM RESET commit_siblings",
        "SELECT pg_reload_conf()",
    )
    asyncio.run(_sql(db, *slow))
    try:
        time.sleep(1.0)  # every backend re-reads the configuration on its next command
        with hft_load.constant_rate(rate=RATE, duration=SECONDS, users=20, name="slow-database") as run:
            pass
    finally:
        asyncio.run(_sql(db, *reset))
    _save(
        "slow_database", "postgres",
        f"open loop {RATE:g}/s for {SECONDS:g}s; PostgreSQL commit_delay={COMMIT_DELAY_US} us, commit_siblings=0",
        run, hft_prom, namespace,
    )  # fmt: skip


def test_overloaded_backend(hft_load, hft_prom, namespace) -> None:
    with hft_load.constant_rate(rate=FLOOD, duration=SECONDS, users=50, name="overloaded-backend") as run:
        pass
    _save(
        "overloaded_backend", "backend",
        f"open loop order flow at {FLOOD:g}/s for {SECONDS:g}s, nothing injected",
        run, hft_prom, namespace,
    )  # fmt: skip


def test_saturated_generator(hft_platform, hft_load, hft_prom, namespace) -> None:
    host, port = hft_platform.nginx
    raw = f"GET /nginx-health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    with hft_load.constant_rate(
        rate=GENERATOR_FLOOD,
        duration=SECONDS,
        make_request=lambda _seq: raw,
        name="saturated-generator",
        connections=256,  # enough in flight that the generator's own core, not the round trips, limits it
    ) as run:
        pass
    _save(
        "saturated_generator", "generator",
        f"open loop {GENERATOR_FLOOD:g}/s of GET /nginx-health for {SECONDS:g}s (beyond one Python core), nothing injected",
        run, hft_prom, namespace,
    )  # fmt: skip
