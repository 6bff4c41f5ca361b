"""Bottleneck attribution replayed from recordings of real runs where the answer is known.

``data/bottleneck/*.json`` were recorded on the embedded local cluster by ``record_saturation.py``
(each file names its command): the query results ``slo.bottleneck.attribute`` read from Prometheus,
and the load summary. The replay goes through the same ``signals`` -> ``judge`` path as ``attribute``.
The ambiguous cases are the same recordings with a series taken away or another run's series added.
"""

from __future__ import annotations

import copy
import json
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from pytest_hftk8s.results import Bottleneck, LoadSummary, from_dict
from pytest_hftk8s.slo import bottleneck, queries
from pytest_hftk8s.slo.bottleneck import Recording, judge, signals

DATA = pathlib.Path(__file__).parent / "data" / "bottleneck"


def _data(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def _replay(data: dict[str, Any]) -> Bottleneck:
    load = from_dict(LoadSummary, data["load"]) if data.get("load") else None
    recording = Recording.from_dict(data["recording"])
    return judge(signals(recording, load=load), window=recording.window)


def _signal(b: Bottleneck, component: str, signal: str):
    (row,) = [s for s in b.signals if s.component == component and s.signal == signal]
    return row


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.json")))
def test_each_recording_names_the_component_made_to_saturate(name: str) -> None:
    data = _data(name)
    b = _replay(data)
    assert b.verdict == data["expected"], f"{data['how']}: {b.sentence}\n{bottleneck.table(b)}"
    assert b.verdict == data["live_verdict"]  # the replay is the path the live attribution took
    assert b.sentence == data["live_sentence"]


def test_a_throttled_backend_is_named_with_its_numbers_and_what_follows_from_it() -> None:
    b = _replay(_data("throttled_backend"))
    assert b.verdict == "backend"
    throttled = _signal(b, "backend", bottleneck.THROTTLED)
    cpu = _signal(b, "backend", bottleneck.CPU_LIMIT)
    assert throttled.saturated
    assert throttled.observed is not None
    assert throttled.observed >= 0.25
    assert cpu.utilization is not None
    assert cpu.utilization >= 0.9
    assert b.signals[0].component == "backend"  # ranked first
    assert b.sentence.startswith("saturated: backend (throttled ")
    # The backend's CPU accounts for the Redis round trips its event loop measures: a symptom.
    redis = _signal(b, "redis", bottleneck.REDIS_RTT)
    assert redis.saturated  # the stalled event loop waits long for every reply
    assert "following from it: Redis round trip p99" in b.sentence
    assert b.saturated[0] == "backend"
    assert "redis" in b.saturated


def test_a_slow_database_is_named_and_its_commit_latency_shows_the_delay_put_in() -> None:
    data = _data("slow_database")
    b = _replay(data)
    assert b.verdict == "postgres"
    commit = _signal(b, "postgres", bottleneck.COMMIT)
    assert commit.observed is not None
    assert commit.observed >= 30.0
    assert not _signal(b, "backend", bottleneck.CPU_LIMIT).saturated
    assert "PostgreSQL (commit p99 " in b.sentence


def test_a_saturated_generator_is_named_and_its_run_is_invalid() -> None:
    data = _data("saturated_generator")
    b = _replay(data)
    assert b.verdict == "generator"
    gen = _signal(b, "generator", bottleneck.GENERATOR_CPU)
    assert gen.saturated
    assert gen.observed is not None
    # Busy for most of its core and late on its schedule: its own work limited it (not a full node).
    assert gen.observed >= bottleneck.GENERATOR_BEHIND_CORES
    assert not data["load"]["valid"], "the generator marks a saturated run invalid itself"
    assert "fell behind its schedule" in gen.detail
    # nginx at its limit is what the flood did to it, not the finding: the measurement is invalid.
    assert "nginx" in b.saturated


def test_a_node_full_of_other_work_explains_a_starved_generator_and_an_idle_platform() -> None:
    data = _data("starved_generator_busy_node")
    b = _replay(data)
    assert b.verdict == "node"
    node = _signal(b, "node", bottleneck.NODE_CPU)
    assert node.utilization is not None
    assert node.utilization >= bottleneck.NODE_UTILIZATION
    gen = _signal(b, "generator", bottleneck.GENERATOR_CPU)
    assert not gen.saturated  # it fell behind for want of a CPU, not for using its own up
    assert not data["load"]["valid"]


def test_a_calm_run_has_nothing_saturated_and_every_signal_read() -> None:
    b = _replay(_data("calm"))
    assert b.verdict == "none"
    assert b.saturated == []
    assert all(s.observed is not None for s in b.signals if bottleneck.judgeable(s))
    assert b.sentence.startswith("nothing saturated; not saturated: ")


def test_two_saturated_components_that_nothing_separates_are_ambiguous() -> None:
    # The throttled backend's run with the slow database's commit latency: neither explains the other.
    data = copy.deepcopy(_data("throttled_backend"))
    slow = _data("slow_database")["recording"]["results"]
    data["recording"]["results"][queries.SAT_COMMIT_P99_MS.name] = slow[queries.SAT_COMMIT_P99_MS.name]
    b = _replay(data)
    assert b.verdict == "ambiguous"
    assert b.saturated[:2] == ["backend", "postgres"] or b.saturated[:2] == ["postgres", "backend"]
    assert "nothing separates them" in b.sentence
    assert "backend (" in b.sentence
    assert "PostgreSQL (commit p99 " in b.sentence


def test_a_missing_signal_that_could_explain_the_cause_leaves_it_open() -> None:
    # Without the node's series, the backend's throttling could be the node being full.
    data = copy.deepcopy(_data("throttled_backend"))
    del data["recording"]["results"][queries.SAT_NODE_CPU_BY_INSTANCE.name]
    b = _replay(data)
    assert b.verdict == "ambiguous"
    assert "no data for node CPU vs cores, which could explain it" in b.sentence
    node = _signal(b, "node", bottleneck.NODE_CPU)
    assert node.observed is None
    assert node.detail == "no series in the window"


def test_a_missing_signal_that_cannot_explain_the_cause_is_only_reported() -> None:
    # Redis cannot account for PostgreSQL's slow commits: the verdict stands, the gap is named.
    data = copy.deepcopy(_data("slow_database"))
    data["recording"]["results"][queries.SAT_REDIS_P99_MS_BY_OP.name] = []
    b = _replay(data)
    assert b.verdict == "postgres"
    assert "no data: Redis round trip p99" in b.sentence


def test_nothing_saturated_with_a_signal_missing_is_ambiguous_not_none() -> None:
    data = copy.deepcopy(_data("calm"))
    data["recording"]["errors"][queries.SAT_COMMIT_P99_MS.name] = "Prometheus at http://x failed: timeout"
    del data["recording"]["results"][queries.SAT_COMMIT_P99_MS.name]
    b = _replay(data)
    assert b.verdict == "ambiguous"
    assert b.sentence.startswith(
        "ambiguous: nothing observed saturated, but there is no data for PostgreSQL commit p99"
    )
    assert (
        "query failed: Prometheus at http://x failed: timeout"
        in _signal(b, "postgres", bottleneck.COMMIT).detail
    )


def test_prometheus_down_gives_an_ambiguous_verdict_not_an_exception() -> None:
    errors = {q.name: "Prometheus at http://127.0.0.1:9 failed: ConnectionError" for q in queries.SATURATION}
    b = judge(signals(Recording(errors=errors)))
    assert b.verdict == "ambiguous"
    assert b.sentence.startswith("ambiguous: no saturation signal could be read")


def test_the_generator_threshold_is_the_generators_own_validity_bound() -> None:
    from pytest_hftk8s.load import run

    assert bottleneck.GENERATOR_CORES == run.SATURATION


def test_the_table_ranks_causes_then_symptoms_then_the_rest() -> None:
    b = _replay(_data("throttled_backend"))
    lines = bottleneck.table(b).splitlines()
    assert lines[0].split() == ["rank", "component", "signal", "observed", "threshold", "saturated"]
    flags = [line.rsplit(None, 1)[-1] for line in lines[1:]]
    assert flags[0] == "yes"
    assert "no" in flags
    assert flags.index("no") == sum(f == "yes" for f in flags)  # every saturated row before the others
    assert "backend" in lines[1]


def test_recordings_round_trip() -> None:
    data = _data("calm")["recording"]
    assert (
        Recording.from_dict(Recording.from_dict(data).to_dict()).to_dict()
        == Recording.from_dict(data).to_dict()
    )


def test_workloads_from_pod_names() -> None:
    assert bottleneck.workload_of("backend-1904114902-48f2c") == "backend"
    assert bottleneck.workload_of("backend-7d9c8b6f5-x2k9p") == "backend"
    assert bottleneck.workload_of("postgres-0") == "postgres"
    assert bottleneck.workload_of("node-exporter") == "node-exporter"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
def test_saturation_queries_parse_as_promql(tmp_path: pathlib.Path) -> None:
    rules = [
        {"record": f"hftk8s:saturation:{q.name}", "expr": q.render(namespace="hft", window="30000ms")}
        for q in queries.SATURATION
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "saturation", "rules": rules}]}))
    out = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
