"""Every chaos builder and template against the Chaos Mesh v2.8 CRD schemas, and builder validation."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import jsonschema
import pytest
import yaml

from pytest_hftk8s import chaos
from pytest_hftk8s.chaos.experiments import MANAGED_BY_LABEL, RUN_ID_LABEL, duration_seconds
from pytest_hftk8s.chaos.safety import check_allowed, render_dry_run
from pytest_hftk8s.errors import ChaosRefused, ConfigError

TEMPLATES = pathlib.Path(__file__).resolve().parents[2] / "chaos"

BUILT = {
    "stress-cpu": lambda: chaos.stress_cpu(target="backend", load=80, workers=1, duration="30s"),
    "stress-cpu-fixed": lambda: chaos.stress_cpu(
        target="backend", load=100, workers=4, mode="fixed", value="2"
    ),
    "stress-memory": lambda: chaos.stress_memory(target="backend", size="256MB", workers=2, duration="1m30s"),
    "stress-memory-pct": lambda: chaos.stress_memory(target="engine", size="50%", containers=("engine",)),
    "pod-kill": lambda: chaos.pod_kill(target="engine"),
    "pod-kill-graceful": lambda: chaos.pod_kill(target="postgres", grace_period=0, mode="all"),
    "container-kill": lambda: chaos.container_kill(target="engine", containers=["engine"]),
    "pod-failure": lambda: chaos.pod_failure(target="redis", duration="45s"),
    "network-delay": lambda: chaos.network_delay(
        target="postgres", latency="50ms", jitter="10ms", correlation=25
    ),
    "network-delay-both": lambda: chaos.network_delay(target="redis", latency="1.5s", direction="both"),
    "network-loss": lambda: chaos.network_loss(target="redis", loss=12.5, correlation=50),
    "schedule-stress": lambda: chaos.schedule(
        cron="@every 2m", experiment=chaos.stress_cpu(target="backend", load=50), starting_deadline_seconds=30
    ),
    "schedule-pod-kill": lambda: chaos.schedule(
        cron="*/5 * * * *", experiment=chaos.pod_kill(target="backend")
    ),
    "schedule-network": lambda: chaos.schedule(
        cron="0 * * * *", experiment=chaos.network_loss(target="redis")
    ),
}

#: The builder call each chaos/<name>.yaml template was generated from.
TEMPLATE_SOURCES = {
    "stress-cpu": lambda: chaos.stress_cpu(target="backend", load=80, workers=1, duration="30s"),
    "stress-memory": lambda: chaos.stress_memory(target="backend", size="256MB", workers=1, duration="30s"),
    "pod-kill": lambda: chaos.pod_kill(target="engine"),
    "container-kill": lambda: chaos.container_kill(target="engine", containers=["engine"]),
    "pod-failure": lambda: chaos.pod_failure(target="redis", duration="30s"),
    "network-delay": lambda: chaos.network_delay(
        target="postgres", latency="50ms", jitter="10ms", correlation=25, duration="30s"
    ),
    "network-loss": lambda: chaos.network_loss(target="redis", loss=10, correlation=25, duration="30s"),
    "schedule": lambda: chaos.schedule(cron="*/5 * * * *", experiment=chaos.pod_kill(target="backend")),
}


@pytest.mark.parametrize("case", sorted(BUILT))
def test_generated_object_matches_crd_schema(case: str, schema_errors: Any) -> None:
    obj = BUILT[case]().to_object(namespace="hft-test", run_id="run-1")
    assert schema_errors(obj) == []
    labels = obj["metadata"]["labels"]
    assert labels == {MANAGED_BY_LABEL: "pytest-hftk8s", RUN_ID_LABEL: "run-1"}
    assert obj["metadata"]["namespace"] == "hft-test"
    spec = obj["spec"].get(
        obj["spec"].get("type", "")[:1].lower() + obj["spec"].get("type", "")[1:], obj["spec"]
    )
    assert spec["selector"]["namespaces"] == ["hft-test"]
    assert len(obj["metadata"]["name"]) <= 63


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.yaml")), ids=lambda p: p.name)
def test_template_matches_crd_schema_and_its_builder(template: pathlib.Path, schema_errors: Any) -> None:
    (obj,) = [d for d in yaml.safe_load_all(template.read_text()) if d]
    assert schema_errors(obj) == []
    built = TEMPLATE_SOURCES[template.stem]().to_object(
        namespace="hft", run_id="template", name=obj["metadata"]["name"]
    )
    assert obj == built, f"{template.name} drifted from its builder; regenerate it from pytest_hftk8s.chaos"


def test_every_kind_has_a_template() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in TEMPLATES.glob("*.yaml")}
    assert kinds == {"StressChaos", "PodChaos", "NetworkChaos", "Schedule"}
    actions = {yaml.safe_load(p.read_text())["spec"].get("action") for p in TEMPLATES.glob("*.yaml")}
    assert {"pod-kill", "container-kill", "pod-failure", "delay", "loss"} <= actions


def _mutate(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    *parents, leaf = path.split(".")
    node = obj
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return obj


@pytest.mark.parametrize(
    ("case", "path", "value", "complaint"),
    [
        ("stress-cpu", "spec.mode", "most", "is not one of"),
        ("stress-cpu", "spec.stressors.cpu.load", 150, "greater than the maximum"),
        ("stress-cpu", "spec.stressors.cpu.workers", "one", "is not of type 'integer'"),
        ("stress-cpu", "spec.stressor", {"cpu": {"workers": 1}}, "Additional properties"),
        ("stress-cpu", "spec.selector", KeyError, "'selector' is a required property"),
        ("stress-memory", "spec.stressors.memory.workers", KeyError, "'workers' is a required property"),
        ("pod-kill", "spec.action", "pod-explode", "is not one of"),
        ("pod-kill-graceful", "spec.gracePeriod", -1, "less than the minimum"),
        ("network-delay", "spec.delay.latency", "fast", "does not match"),
        ("network-delay", "spec.direction", "sideways", "is not one of"),
        ("network-loss", "spec.loss.loss", 10, "is not of type 'string'"),
        ("schedule-pod-kill", "spec.schedule", KeyError, "'schedule' is a required property"),
        ("schedule-pod-kill", "spec.concurrencyPolicy", "Sometimes", "is not one of"),
    ],
)
def test_schema_rejects_bad_objects(
    case: str, path: str, value: Any, complaint: str, schema_errors: Any
) -> None:
    good = BUILT[case]().to_object(namespace="hft", run_id="r")
    assert schema_errors(good) == []
    errors = schema_errors(_mutate(good, path, value))
    assert any(complaint in e for e in errors), errors


def test_int_or_string_and_nullable_extensions(as_jsonschema: Any) -> None:
    schema = as_jsonschema(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "deadline": {"type": "integer", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
            },
        }
    )
    validator = jsonschema.Draft4Validator(schema)
    assert validator.is_valid({"port": 8080, "deadline": None, "free": {"anything": 1}})
    assert validator.is_valid({"port": "http", "deadline": 3})
    assert not validator.is_valid({"port": [8080]})
    assert not validator.is_valid({"deadline": "soon"})
    assert not validator.is_valid({"unknown": 1})


@pytest.mark.parametrize(
    ("build", "mentions"),
    [
        (lambda: chaos.stress_cpu(target="backend", load=101), "load"),
        (lambda: chaos.stress_cpu(target="backend", workers=0), "workers"),
        (lambda: chaos.stress_cpu(target="Backend!"), "target"),
        (lambda: chaos.stress_cpu(target="backend", mode="most"), "mode"),
        (lambda: chaos.stress_cpu(target="backend", mode="fixed"), "value"),
        (lambda: chaos.stress_cpu(target="backend", duration="30"), "duration"),
        (lambda: chaos.stress_cpu(target="backend", lod=80), "lod"),
        (lambda: chaos.stress_memory(target="backend", size="lots"), "size"),
        (lambda: chaos.container_kill(target="engine", containers=[]), "containers"),
        (lambda: chaos.pod_failure(target="engine", duration=None), "duration"),
        (lambda: chaos.network_delay(target="redis", latency="fast"), "latency"),
        (lambda: chaos.network_delay(target="redis", jitter="5"), "jitter"),
        (lambda: chaos.network_loss(target="redis", loss=120), "loss"),
        (lambda: chaos.network_loss(target="redis", correlation=-1), "correlation"),
        (lambda: chaos.schedule(cron="every minute", experiment=chaos.pod_kill(target="x")), "cron"),
        (lambda: chaos.schedule(cron="@every 1m", experiment={"kind": "PodChaos"}), "experiment"),
    ],
)
def test_bad_builder_input_is_a_config_error(build: Any, mentions: str) -> None:
    with pytest.raises(ConfigError, match="expected") as info:
        build()
    assert mentions in str(info.value)


def test_one_shot_and_durations() -> None:
    assert chaos.pod_kill(target="x").one_shot
    assert chaos.container_kill(target="x", containers=["c"]).one_shot
    assert not chaos.pod_failure(target="x").one_shot
    assert not chaos.stress_cpu(target="x").one_shot
    assert duration_seconds("1m30s") == 90.0
    assert duration_seconds("250ms") == 0.25


def test_context_allow_list() -> None:
    check_allowed(context="local", allowed=(), what="StressChaos x")
    check_allowed(context="kind-hft", allowed=["kind-hft"], what="StressChaos x")
    with pytest.raises(ChaosRefused, match=r"--hft-allow-context=prod-eks") as info:
        check_allowed(context="prod-eks", allowed=["kind-hft"], what="PodChaos kill")
    assert "kind-hft" in str(info.value)


def test_dry_run_rendering_round_trips() -> None:
    objs = [BUILT[c]().to_object(namespace="hft", run_id="r") for c in ("stress-cpu", "pod-kill")]
    assert [d for d in yaml.safe_load_all(render_dry_run(objs)) if d] == objs
