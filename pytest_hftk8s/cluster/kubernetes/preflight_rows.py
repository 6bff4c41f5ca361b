"""The preflight's judgements: API payloads in, :class:`~pytest_hftk8s.results.PreflightCheck` rows out.

Pure functions over what the API server returned (version, nodes, StorageClasses, DaemonSets,
Deployments, the Chaos Mesh discovery document, denied SelfSubjectAccessReviews), plus the list of
accesses the backend needs and the Helm command that installs Chaos Mesh for the nodes' container
runtime. No requests here: :mod:`.preflight` fetches, this module decides and says what to do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_hftk8s.cluster.kubernetes.kinds import KNOWN_KINDS, TEARDOWN_ORDER, Kind
from pytest_hftk8s.results import PreflightCheck

#: The row orchestration reads to decide whether to deploy the overlay's kube-state-metrics (ok = found).
KSM_CHECK = "kube-state-metrics"
CHAOS_DAEMON_LABEL = ("app.kubernetes.io/component", "chaos-daemon")
CHAOS_PLURALS = ("stresschaos", "podchaos", "networkchaos", "schedules")
#: The Chaos Mesh release whose CRDs are vendored in chaos/crds (v2.8) and whose chart the command installs.
CHAOS_MESH_CHART = "2.8.4"
#: Server-side apply is GA, and discovery.k8s.io/v1 and policy/v1 are served, from 1.22 on.
MIN_VERSION = (1, 22)
#: The kubelet reports at most this many images per node by default (--node-status-max-images).
NODE_IMAGE_CAP = 50
_MANAGED = ("app.kubernetes.io/managed-by", "pytest-hftk8s")
_DEFAULT_SC = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
_SOCKETS = {
    "docker": "/var/run/docker.sock",
    "containerd": "/run/containerd/containerd.sock",
    "k3s": "/run/k3s/containerd/containerd.sock",
    "crio": "/var/run/crio/crio.sock",
}

Obj = Mapping[str, Any]


def version_row(version: Obj, *, host: str) -> PreflightCheck:
    git = str(version.get("gitVersion") or "?")
    digits = [int(re.sub(r"\D.*", "", str(version.get(k) or "0")) or 0) for k in ("major", "minor")]
    ok = tuple(digits) >= MIN_VERSION
    return PreflightCheck(
        check="API server",
        ok=ok,
        found=f"Kubernetes {git} at {host}",
        action="" if ok else f"use a cluster of Kubernetes >= {MIN_VERSION[0]}.{MIN_VERSION[1]}",
    )


# -- RBAC -----------------------------------------------------------------------------------------


def _kind(api_version: str, kind: str) -> Kind:
    return next(k for k in KNOWN_KINDS if (k.api_version, k.kind) == (api_version, kind))


def required_access(*, namespace: str, chaos: bool) -> list[tuple[str, dict[str, str]]]:
    """``(label, resourceAttributes)`` of every request the backend makes, for SelfSubjectAccessReviews.

    Apply is a server-side apply PATCH that may create; teardown lists by label, deletes and reads
    until gone; status reads list; DNS and logs use pods/exec and pods/log, access pods/portforward.
    """
    wanted: list[tuple[str, dict[str, str]]] = []

    def need(kind: Kind, verbs: Sequence[str], *, sub: str = "", name: str = "") -> None:
        for verb in verbs:
            attrs = {"verb": verb, "group": kind.group, "resource": kind.plural}
            if kind.namespaced:
                attrs["namespace"] = namespace
            if sub:
                attrs["subresource"] = sub
            if name and verb != "create":
                attrs["name"] = name
            label = f"{verb} {kind.plural}{'/' + sub if sub else ''}"
            if all(label != seen for seen, _ in wanted):
                wanted.append((label, attrs))

    need(_kind("v1", "Namespace"), ("get", "create", "patch", "delete"), name=namespace)
    for api_version, kind in TEARDOWN_ORDER:
        need(_kind(api_version, kind), ("get", "list", "create", "patch", "delete"))
    for api_version, kind in (("v1", "Pod"), ("v1", "Event"), ("discovery.k8s.io/v1", "EndpointSlice")):
        need(_kind(api_version, kind), ("get", "list"))
    pod = _kind("v1", "Pod")
    need(pod, ("create",), sub="exec")
    need(pod, ("create",), sub="portforward")
    need(pod, ("get",), sub="log")
    if chaos:
        for k in KNOWN_KINDS:
            if k.group == "chaos-mesh.org":
                need(k, ("create", "get", "list", "delete"))
    return wanted


def rbac_row(denied: Sequence[str], *, total: int, context: str, namespace: str) -> PreflightCheck:
    if not denied:
        return PreflightCheck("RBAC", True, f"all {total} verbs the plugin uses are allowed in {namespace}")
    shown = ", ".join(denied[:10]) + (f" and {len(denied) - 10} more" if len(denied) > 10 else "")
    return PreflightCheck(
        check="RBAC",
        ok=False,
        found=f"{len(denied)} of {total} denied in {namespace}: {shown}",
        action=(
            f"grant them, e.g. kubectl --context {context} create rolebinding hftk8s --clusterrole=admin "
            f"--user=<you> -n {namespace}\n(cluster-scoped: clusterroles, clusterrolebindings, namespaces "
            f"need a ClusterRole)\nsee yours: kubectl --context {context} auth can-i --list -n {namespace}"
        ),
    )


# -- storage --------------------------------------------------------------------------------------


def storage_row(classes: Sequence[Obj] | None, *, context: str) -> PreflightCheck:
    check = "default StorageClass"
    if classes is None:
        return PreflightCheck(
            check, False, "cannot list StorageClasses (forbidden)", _sc_hint(context), False
        )
    defaults = [
        c
        for c in classes
        if any(((c.get("metadata") or {}).get("annotations") or {}).get(a) == "true" for a in _DEFAULT_SC)
    ]
    if defaults:
        names = ", ".join(f"{_name(c)} ({c.get('provisioner', '?')})" for c in defaults)
        return PreflightCheck(check, True, names)
    others = ", ".join(_name(c) for c in classes) or "none at all"
    return PreflightCheck(
        check,
        False,
        f"no StorageClass is the default (classes: {others}); the PostgreSQL and Redis volume claims "
        f"would stay Pending",
        _sc_hint(context, next((_name(c) for c in classes), None)),
    )


def _sc_hint(context: str, name: str | None = None) -> str:
    patch = '{"metadata": {"annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}'
    target = name or "<class>"
    first = "" if name else "install a dynamic provisioner (e.g. rancher's local-path-provisioner), then\n"
    return f"{first}kubectl --context {context} patch storageclass {target} -p '{patch}'"


# -- Chaos Mesh -----------------------------------------------------------------------------------


def node_runtime(nodes: Sequence[Obj] | None, provider: str | None) -> tuple[str, str, str]:
    """``(chaosDaemon.runtime, chaosDaemon.socketPath, evidence)`` for the nodes' container runtime.

    The nodes' ``containerRuntimeVersion`` decides (minikube changed its default runtime once, so a
    provider name alone is a guess); k3s (k3d) keeps containerd's socket under /run/k3s.
    """
    infos = [((n.get("status") or {}).get("nodeInfo") or {}) for n in nodes or []]
    reported = next(
        (str(i.get("containerRuntimeVersion")) for i in infos if i.get("containerRuntimeVersion")), ""
    )
    k3s = (
        provider == "k3d"
        or "k3s" in reported
        or any("k3s" in str(i.get("kubeletVersion", "")) for i in infos)
    )
    scheme = reported.partition("://")[0] if "://" in reported else ""
    if not scheme:
        scheme = {"orbstack": "docker"}.get(provider or "", "containerd")
    evidence = f"nodes run {reported}" if reported else f"assumed for {provider or 'this cluster'}"
    if scheme == "docker":
        return "docker", _SOCKETS["docker"], evidence
    if scheme == "cri-o":
        return "crio", _SOCKETS["crio"], evidence
    return "containerd", _SOCKETS["k3s" if k3s else "containerd"], evidence


def helm_install(*, context: str, runtime: str, socket: str) -> str:
    """The two commands that install (or fix) Chaos Mesh for this runtime, one per line."""
    return (
        "helm repo add chaos-mesh https://charts.chaos-mesh.org\n"
        f"helm upgrade --install chaos-mesh chaos-mesh/chaos-mesh --kube-context {context} "
        f"--namespace chaos-mesh --create-namespace --version {CHAOS_MESH_CHART} "
        f"--set chaosDaemon.runtime={runtime} --set chaosDaemon.socketPath={socket}"
    )


def chaos_api_row(
    served: set[str], nodes: Sequence[Obj] | None, *, context: str, provider: str | None
) -> PreflightCheck:
    missing = [p for p in CHAOS_PLURALS if p not in served]
    if not missing:
        return PreflightCheck(
            "Chaos Mesh CRDs", True, f"chaos-mesh.org/v1alpha1 serves {', '.join(CHAOS_PLURALS)}"
        )
    runtime, socket, _ = node_runtime(nodes, provider)
    found = (
        "chaos-mesh.org/v1alpha1 is not served: Chaos Mesh is not installed"
        if not served
        else f"chaos-mesh.org/v1alpha1 lacks {', '.join(missing)}: an old or partial Chaos Mesh"
    )
    return PreflightCheck(
        "Chaos Mesh CRDs", False, found, helm_install(context=context, runtime=runtime, socket=socket)
    )


def chaos_daemon_row(
    daemonsets: Sequence[Obj] | None, nodes: Sequence[Obj] | None, *, context: str, provider: str | None
) -> PreflightCheck:
    check = "chaos-daemon"
    runtime, socket, evidence = node_runtime(nodes, provider)
    install = helm_install(context=context, runtime=runtime, socket=socket)
    if daemonsets is None:
        return PreflightCheck(
            check,
            False,
            "cannot list DaemonSets cluster-wide (forbidden): not verified",
            "ask the cluster's admin whether Chaos Mesh's chaos-daemon runs on every node",
            blocking=False,
        )
    mine = [d for d in daemonsets if _labels(d).get(CHAOS_DAEMON_LABEL[0]) == CHAOS_DAEMON_LABEL[1]]
    if not mine:
        return PreflightCheck(
            check, False, f"no DaemonSet labelled {'='.join(CHAOS_DAEMON_LABEL)} anywhere", install
        )
    ds = mine[0]
    where = f"{(ds.get('metadata') or {}).get('namespace', '?')}/{_name(ds)}"
    status = ds.get("status") or {}
    desired, ready = int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    args = [
        str(a)
        for c in spec.get("containers") or []
        for a in [*(c.get("command") or []), *(c.get("args") or [])]
    ]
    has = args[args.index("--runtime") + 1] if "--runtime" in args[:-1] else ""
    mounted = next(
        (
            str((v.get("hostPath") or {}).get("path", ""))
            for v in spec.get("volumes") or []
            if v.get("name") == "socket-path"
        ),
        "",
    )
    if desired == 0 or ready < desired:
        ns = where.split("/")[0]
        return PreflightCheck(
            check,
            False,
            f"{where}: {ready}/{desired} ready",
            f"kubectl --context {context} -n {ns} get pods -l {'='.join(CHAOS_DAEMON_LABEL)}\n"
            f"kubectl --context {context} -n {ns} describe daemonset {_name(ds)}",
        )
    if has and has != runtime:
        return PreflightCheck(
            check, False, f"{where} runs --runtime {has}, but the {evidence}: injections would fail", install
        )
    if provider and mounted and mounted != socket:
        return PreflightCheck(
            check, False, f"{where} mounts {mounted}, but {provider}'s {runtime} socket is {socket}", install
        )
    return PreflightCheck(check, True, f"{where}: {ready}/{desired} ready, runtime {has or '?'} ({evidence})")


# -- add-ons and images ---------------------------------------------------------------------------


def ksm_row(deployments: Sequence[Obj] | None, *, context: str) -> PreflightCheck:
    """ok = a kube-state-metrics of the cluster's own runs (the session then does not deploy one)."""
    deploy = "the session deploys the overlay's kube-state-metrics"
    if deployments is None:
        return PreflightCheck(
            KSM_CHECK, False, "cannot list Deployments cluster-wide: assumed none", deploy, False
        )
    theirs = [d for d in deployments if _labels(d).get(_MANAGED[0]) != _MANAGED[1]]
    if not theirs:
        return PreflightCheck(KSM_CHECK, False, "none running in the cluster", deploy, False)
    ready = [d for d in theirs if int((d.get("status") or {}).get("readyReplicas") or 0) > 0]
    if ready:
        where = f"{(ready[0].get('metadata') or {}).get('namespace', '?')}/{_name(ready[0])}"
        return PreflightCheck(KSM_CHECK, True, f"{where} is ready: the session uses it", blocking=False)
    d = theirs[0]
    ns = (d.get("metadata") or {}).get("namespace", "?")
    return PreflightCheck(
        KSM_CHECK,
        False,
        f"{ns}/{_name(d)} has no ready replica",
        f"{deploy}; fix that one (kubectl --context {context} -n {ns} describe deployment {_name(d)}) "
        f"or remove it, so Prometheus does not see two",
        blocking=False,
    )


def normalize_image(ref: str) -> str:
    """A reference as the container runtime names it: ``docker.io/[library/]name:tag``."""
    name, _, digest = ref.partition("@")
    tagged = ":" in name.rsplit("/", 1)[-1]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    return name if tagged else f"{name}:latest"


def image_row(
    images: Sequence[str], nodes: Sequence[Obj] | None, *, context: str, provider: str | None
) -> PreflightCheck:
    check = "platform images"
    local = [i for i in images if normalize_image(i).startswith("docker.io/hftk8s/")]
    pulled = [i for i in images if i not in local]
    note = f"; pulled at deploy: {', '.join(pulled)}" if pulled else ""
    action = _provide_hint(context, provider)
    if nodes is None:
        return PreflightCheck(
            check, False, "cannot list nodes (forbidden): not verified" + note, action, False
        )
    if not nodes:
        return PreflightCheck(
            check, False, "the cluster has no nodes", f"kubectl --context {context} get nodes"
        )
    missing: dict[str, list[str]] = {}
    capped = True
    for node in nodes:
        listed = (node.get("status") or {}).get("images") or []
        names = {normalize_image(str(n)) for img in listed for n in img.get("names") or []}
        absent = [i for i in local if normalize_image(i) not in names]
        if absent:
            missing[_name(node)] = absent
            capped = capped and len(listed) >= NODE_IMAGE_CAP
    if not missing:
        return PreflightCheck(
            check, True, f"{', '.join(local) or 'none to check'} on {len(nodes)} node(s){note}"
        )
    found = "; ".join(f"missing on {n}: {', '.join(refs)}" for n, refs in missing.items())
    if capped:
        found += f" (those nodes list {NODE_IMAGE_CAP} images, the kubelet's cap: they may be there)"
    return PreflightCheck(check, False, found + note, action, blocking=not capped)


def _provide_hint(context: str, provider: str | None) -> str:
    if provider == "orbstack":
        return (
            "python -m pytest_hftk8s images --provider orbstack\nor run the session with --hft-images=build"
        )
    if provider is not None:
        return (
            f"python -m pytest_hftk8s images --provider {provider} --context {context}\n"
            f"or run the session with --hft-images=load"
        )
    return (
        "push them where the nodes pull from: python -m pytest_hftk8s images --provider registry "
        "--registry <host/path>\nthen run the session with --hft-registry <host/path>"
    )


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _labels(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}
