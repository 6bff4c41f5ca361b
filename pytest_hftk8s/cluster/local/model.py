"""Read rendered Kubernetes objects into the small typed specs the local backend runs.

Its job: turn Deployments, StatefulSets, Services, ConfigMaps and Secrets (plain dicts from
``manifests.render``) into frozen dataclasses, parse quantities, resolve env (``value``,
``fieldRef``, ``secretKeyRef``, ``configMapKeyRef``, ``$(VAR)``). Pure data: no processes, no files.

What the local backend does not run is left out here, in one place: kinds other than workloads,
Services, ConfigMaps and Secrets (NetworkPolicy, PodDisruptionBudget, RBAC: there is one node and no
API server); ``securityContext`` (pods run as this machine's processes; postgres drops root as its
image does); and an ``emptyDir`` mounted on ``/tmp`` (see :data:`SHARED_HOST_DIRS`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_hftk8s.errors import ConfigError

#: Host directories every local container shares. The local cluster keeps its runtime directory (pod
#: volumes, config overrides, logs) under the host's /tmp, and containers reach it by path; an
#: emptyDir mounted over /tmp (which kubelet would give each container, e.g. for a read-only root
#: filesystem) would hide it, so such a mount is left out and the container sees the shared /tmp.
SHARED_HOST_DIRS = ("/tmp",)

_MEMORY_SUFFIX = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
}  # fmt: skip


def cpu_millis(quantity: str | int | float) -> int:
    """``"300m"`` -> 300, ``"1"`` -> 1000, ``0.5`` -> 500."""
    text = str(quantity).strip()
    try:
        return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)
    except ValueError as e:
        raise ConfigError(f"expected a CPU quantity like 300m or 1; saw {quantity!r}") from e


def memory_bytes(quantity: str | int | float) -> int:
    """``"128Mi"`` -> 134217728, ``"1G"`` -> 10**9, ``"2e6"`` -> 2000000."""
    text = str(quantity).strip()
    for suffix, factor in sorted(_MEMORY_SUFFIX.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    else:
        scale = 1
    try:
        return int(float(text) * scale)
    except ValueError as e:
        raise ConfigError(f"expected a memory quantity like 128Mi; saw {quantity!r}") from e


@dataclass(frozen=True)
class ProbeSpec:
    """One probe with Kubernetes' defaults filled in."""

    handler: str  # "httpGet" | "tcpSocket" | "exec"
    port: int = 0
    path: str = "/"
    host: str = ""
    scheme: str = "HTTP"
    command: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str
    sub_path: str = ""


@dataclass(frozen=True)
class ContainerPort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] | None
    args: tuple[str, ...] | None
    env: tuple[Mapping[str, Any], ...]
    ports: tuple[ContainerPort, ...]
    working_dir: str = ""
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    startup: ProbeSpec | None = None
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    mounts: tuple[VolumeMount, ...] = ()

    def port_number(self, port: int | str) -> int:
        """A probe/Service port, numeric or named, as a number."""
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in self.ports:
            if p.name == port:
                return p.port
        raise ConfigError(
            f"container {self.name} has no port named {port!r}; its ports are "
            f"{[p.name for p in self.ports]}. Name the port in the manifest."
        )


@dataclass(frozen=True)
class PodTemplate:
    """What a Deployment or StatefulSet stamps out, plus how many and how they are named."""

    kind: str
    workload: str
    namespace: str
    replicas: int
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    containers: tuple[ContainerSpec, ...]
    volumes: Mapping[str, Mapping[str, Any]]
    grace_seconds: float
    service_name: str = ""  # StatefulSet's governing Service
    template_hash: str = ""

    def pod_names(self) -> list[str]:
        if self.kind == "StatefulSet":
            return [f"{self.workload}-{i}" for i in range(self.replicas)]
        # Deployments: <name>-<pod-template-hash>-<suffix>, deterministic so reruns are comparable.
        return [
            f"{self.workload}-{self.template_hash}-{hashlib.sha1(f'{self.template_hash}{i}'.encode()).hexdigest()[:5]}"
            for i in range(self.replicas)
        ]


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    namespace: str
    selector: Mapping[str, str]
    ports: tuple[ServicePort, ...]
    headless: bool = False
    publish_not_ready: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


def _probe(raw: Mapping[str, Any] | None, container: Mapping[str, Any]) -> ProbeSpec | None:
    if not raw:
        return None
    common: dict[str, Any] = {
        "initial_delay": float(raw.get("initialDelaySeconds", 0)),
        "period": float(raw.get("periodSeconds", 10)),
        "timeout": float(raw.get("timeoutSeconds", 1)),
        "failure_threshold": int(raw.get("failureThreshold", 3)),
        "success_threshold": int(raw.get("successThreshold", 1)),
    }
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}

    def number(port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        if port not in ports:
            raise ConfigError(f"probe of {container['name']} names port {port!r}; container ports: {ports}")
        return int(ports[port])

    if "httpGet" in raw:
        h = raw["httpGet"]
        headers = tuple((x["name"], x["value"]) for x in h.get("httpHeaders", []))
        return ProbeSpec(
            "httpGet", port=number(h["port"]), path=h.get("path", "/"), host=h.get("host", ""),
            scheme=h.get("scheme", "HTTP"), headers=headers, **common,
        )  # fmt: skip
    if "tcpSocket" in raw:
        return ProbeSpec(
            "tcpSocket",
            port=number(raw["tcpSocket"]["port"]),
            host=raw["tcpSocket"].get("host", ""),
            **common,
        )
    if "exec" in raw:
        return ProbeSpec("exec", command=tuple(raw["exec"]["command"]), **common)
    raise ConfigError(f"probe of {container['name']} has no httpGet/tcpSocket/exec handler: {raw}")


def _container(raw: Mapping[str, Any]) -> ContainerSpec:
    limits = raw.get("resources", {}).get("limits", {})
    return ContainerSpec(
        name=raw["name"],
        image=raw["image"],
        command=tuple(raw["command"]) if "command" in raw else None,
        args=tuple(raw["args"]) if "args" in raw else None,
        env=tuple(raw.get("env", [])),
        ports=tuple(ContainerPort(p.get("name", ""), int(p["containerPort"]), p.get("protocol", "TCP")) for p in raw.get("ports", [])),
        working_dir=raw.get("workingDir", ""),
        cpu_limit_millis=cpu_millis(limits["cpu"]) if "cpu" in limits else None,
        memory_limit_bytes=memory_bytes(limits["memory"]) if "memory" in limits else None,
        startup=_probe(raw.get("startupProbe"), raw),
        readiness=_probe(raw.get("readinessProbe"), raw),
        liveness=_probe(raw.get("livenessProbe"), raw),
        mounts=tuple(VolumeMount(m["name"], m["mountPath"], m.get("subPath", "")) for m in raw.get("volumeMounts", [])),
    )  # fmt: skip


def _without_shared_dirs(spec: ContainerSpec, volumes: Mapping[str, Mapping[str, Any]]) -> ContainerSpec:
    """``spec`` minus its emptyDir mounts on :data:`SHARED_HOST_DIRS`."""
    kept = tuple(
        m
        for m in spec.mounts
        if not (m.mount_path.rstrip("/") in SHARED_HOST_DIRS and "emptyDir" in volumes.get(m.name, {}))
    )
    return spec if kept == spec.mounts else replace(spec, mounts=kept)


def pod_templates(objects: Sequence[Mapping[str, Any]], *, namespace: str) -> list[PodTemplate]:
    """Every Deployment and StatefulSet, in manifest order, placed in ``namespace``."""
    out = []
    for obj in objects:
        if obj.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        meta, spec = obj["metadata"], obj["spec"]
        tmpl = spec["template"]
        pod_spec = tmpl["spec"]
        if pod_spec.get("initContainers"):
            raise ConfigError(
                f"{obj['kind']}/{meta['name']} has initContainers; the local backend does not run them yet"
            )
        volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
        for claim in spec.get("volumeClaimTemplates", []):
            volumes[claim["metadata"]["name"]] = {"name": claim["metadata"]["name"], "emptyDir": {}}
        digest = hashlib.sha1(json.dumps(tmpl, sort_keys=True).encode()).hexdigest()
        containers = tuple(_without_shared_dirs(_container(c), volumes) for c in pod_spec["containers"])
        out.append(
            PodTemplate(
                kind=obj["kind"],
                workload=meta["name"],
                namespace=namespace,  # like the kubernetes backend: everything lands in the cluster namespace
                replicas=int(spec.get("replicas", 1)),
                labels=dict(tmpl.get("metadata", {}).get("labels", {})),
                annotations=dict(tmpl.get("metadata", {}).get("annotations", {})),
                containers=containers,
                volumes=volumes,
                grace_seconds=float(pod_spec.get("terminationGracePeriodSeconds", 30)),
                service_name=spec.get("serviceName", ""),
                template_hash=f"{int(digest[:12], 16) % 10**10:010d}"[:10],
            )
        )
    return out


def services(objects: Sequence[Mapping[str, Any]], *, namespace: str) -> list[ServiceSpec]:
    out = []
    for obj in objects:
        if obj.get("kind") != "Service":
            continue
        spec = obj["spec"]
        ports = tuple(
            ServicePort(p.get("name", ""), int(p["port"]), p.get("targetPort", p["port"]))
            for p in spec.get("ports", [])
        )
        out.append(
            ServiceSpec(
                name=obj["metadata"]["name"],
                namespace=namespace,
                selector=dict(spec.get("selector", {})),
                ports=ports,
                headless=spec.get("clusterIP") == "None",
                publish_not_ready=bool(spec.get("publishNotReadyAddresses", False)),
                labels=dict(obj["metadata"].get("labels", {})),
            )
        )
    return out


def config_data(
    objects: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(configmaps, secrets) by name, secret values decoded."""
    configmaps: dict[str, dict[str, str]] = {}
    secrets: dict[str, dict[str, str]] = {}
    for obj in objects:
        name = obj.get("metadata", {}).get("name", "")
        if obj.get("kind") == "ConfigMap":
            configmaps[name] = dict(obj.get("data", {}))
        elif obj.get("kind") == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
            data.update(obj.get("stringData", {}))
            secrets[name] = data
    return configmaps, secrets


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion; unknown references stay as written, like kubelet."""
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def resolve_env(
    container: ContainerSpec,
    *,
    pod_fields: Mapping[str, str],
    configmaps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The container's environment as kubelet computes it, in declaration order."""
    env: dict[str, str] = {}
    for item in container.env:
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
            continue
        source = item.get("valueFrom", {})
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            label = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
            value = pod_fields.get(f"{label.group(1)}/{label.group(2)}") if label else pod_fields.get(path)
            if value is None:
                raise ConfigError(f"env {name} of {container.name}: unsupported fieldRef {path!r}")
            env[name] = value
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            is_secret = "secretKeyRef" in source
            ref = source["secretKeyRef" if is_secret else "configMapKeyRef"]
            store = (secrets if is_secret else configmaps).get(ref["name"])
            kind = "Secret" if is_secret else "ConfigMap"
            if store is None or ref["key"] not in store:
                if ref.get("optional"):
                    continue
                raise ConfigError(
                    f"env {name} of {container.name} refers to {kind} {ref['name']!r} key {ref['key']!r}, "
                    "which the rendered manifests do not contain. Add it to the overlay."
                )
            env[name] = store[ref["key"]]
        elif "resourceFieldRef" in source:
            resource = source["resourceFieldRef"]["resource"]
            if resource == "limits.memory" and container.memory_limit_bytes:
                env[name] = str(container.memory_limit_bytes)
            elif resource == "limits.cpu" and container.cpu_limit_millis:
                env[name] = str(max(1, -(-container.cpu_limit_millis // 1000)))
            else:
                raise ConfigError(
                    f"env {name} of {container.name}: unsupported resourceFieldRef {resource!r}"
                )
        else:
            raise ConfigError(f"env {name} of {container.name} has neither value nor a supported valueFrom")
    return env
