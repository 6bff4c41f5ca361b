"""The kube-context preflight against an API server stand-in: all green, then each check failing.

The stand-in (``preflight_emulator``) answers SelfSubjectAccessReviews, serves the vendored Chaos Mesh
CRDs in discovery, and holds realistic objects: a kind node with its image list, kind's default
``standard`` StorageClass, the chaos-daemon DaemonSet as Chaos Mesh's chart renders it.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from preflight_emulator import (
    ApiThread,
    PreflightApi,
    chaos_daemon,
    kind_node,
    kube_state_metrics,
    kubeconfig_for,
    standard_storage_class,
)

from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
from pytest_hftk8s.cluster.kubernetes.preflight import REQUEST_TIMEOUT, KubernetesPreflight
from pytest_hftk8s.cluster.kubernetes.preflight_rows import (
    KSM_CHECK,
    node_runtime,
    normalize_image,
    required_access,
)
from pytest_hftk8s.results import PreflightCheck

IMAGES = ("hftk8s/backend:0.1.0-0123456789ab", "hftk8s/engine:0.1.0-ba9876543210")
ON_NODE = [f"docker.io/{i}" for i in IMAGES]  # how containerd names what `kind load` imported
CONTAINERD = (
    "--set chaosDaemon.runtime=containerd --set chaosDaemon.socketPath=/run/containerd/containerd.sock"
)
ALL_CHECKS = [
    "API server",
    "RBAC",
    "default StorageClass",
    "Chaos Mesh CRDs",
    "chaos-daemon",
    KSM_CHECK,
    "platform images",
]


@pytest.fixture
def server() -> Iterator[ApiThread]:
    thread = ApiThread()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def healthy(server: ApiThread) -> ApiThread:
    """A kind cluster with everything the session needs."""

    def seed(api: PreflightApi) -> None:
        api.store("v1/nodes", kind_node(images=ON_NODE))
        api.store("storage.k8s.io/v1/storageclasses", standard_storage_class())
        api.install_crds()
        api.store("apps/v1/daemonsets", chaos_daemon())

    server.call(seed)
    return server


Preflight = Callable[..., dict[str, PreflightCheck]]


@pytest.fixture
def preflight(tmp_path: pathlib.Path) -> Preflight:
    def run(
        server: ApiThread | None, *, context: str = "kind-hft", chaos: bool = True, url: str = ""
    ) -> dict[str, PreflightCheck]:
        config = kubeconfig_for(
            url or (server.url if server else ""), tmp_path / "kubeconfig", context=context
        )
        cluster = KubernetesCluster(context=context, namespace="hft", kubeconfig=config)
        try:
            started = time.monotonic()
            rows = cluster.preflight(images=IMAGES, chaos=chaos)
            run.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
        finally:
            cluster.close()
        return {r.check: r for r in rows}

    return run


def _blocking(rows: dict[str, PreflightCheck]) -> list[str]:
    return [name for name, r in rows.items() if r.blocking and not r.ok]


def test_all_green_on_a_ready_kind_cluster(healthy: ApiThread, preflight: Preflight) -> None:
    rows = preflight(healthy)
    assert list(rows) == ALL_CHECKS
    assert _blocking(rows) == []
    assert rows["API server"].found.startswith("Kubernetes v1.33.1 at http://127.0.0.1:")
    assert rows["default StorageClass"].found == "standard (rancher.io/local-path)"
    assert "1/1 ready, runtime containerd (nodes run containerd://2.1.1)" in rows["chaos-daemon"].found
    assert rows["platform images"].found == f"{', '.join(IMAGES)} on 1 node(s)"
    # No kube-state-metrics in the cluster: a warning that says what the session does instead.
    ksm = rows[KSM_CHECK]
    assert (ksm.ok, ksm.blocking, ksm.action) == (
        False,
        False,
        "the session deploys the overlay's kube-state-metrics",
    )
    assert preflight.elapsed < 5  # type: ignore[attr-defined]


def test_rbac_is_asked_for_every_verb_the_backend_uses(healthy: ApiThread, preflight: Preflight) -> None:
    rows = preflight(healthy)
    reviews = healthy.api.reviews
    assert rows["RBAC"].ok
    assert rows["RBAC"].found == f"all {len(reviews)} verbs the plugin uses are allowed in hft"
    asked = {(r["verb"], r["resource"], r.get("subresource", ""), r.get("namespace")) for r in reviews}
    for wanted in [
        ("patch", "deployments", "", "hft"),  # server-side apply
        ("create", "statefulsets", "", "hft"),  # apply of an object that does not exist yet
        ("delete", "persistentvolumeclaims", "", "hft"),  # teardown
        ("list", "endpointslices", "", "hft"),
        ("create", "pods", "exec", "hft"),  # the DNS gate
        ("create", "pods", "portforward", "hft"),
        ("get", "pods", "log", "hft"),
        ("patch", "clusterroles", "", None),  # cluster-scoped: asked without a namespace
        ("create", "clusterrolebindings", "", None),
        ("create", "stresschaos", "", "hft"),
        ("delete", "schedules", "", "hft"),
    ]:
        assert wanted in asked, wanted
    groups = {r["resource"]: r["group"] for r in reviews}
    assert groups["clusterroles"] == "rbac.authorization.k8s.io"
    assert groups["podchaos"] == "chaos-mesh.org"


def test_rbac_denied_verbs_block_with_the_list(healthy: ApiThread, preflight: Preflight) -> None:
    healthy.call(
        lambda api: api.denied.update({"create pods/exec", "patch clusterroles", "delete stresschaos"})
    )
    rbac = preflight(healthy)["RBAC"]
    assert not rbac.ok
    assert rbac.blocking
    total = len(healthy.api.reviews)
    assert (
        rbac.found == f"3 of {total} denied in hft: patch clusterroles, create pods/exec, delete stresschaos"
    )
    assert "kubectl --context kind-hft auth can-i --list -n hft" in rbac.action


def test_without_chaos_neither_chaos_mesh_nor_its_verbs_are_checked(
    healthy: ApiThread, preflight: Preflight
) -> None:
    healthy.call(lambda api: api.denied.add("delete stresschaos"))
    rows = preflight(healthy, chaos=False)
    assert "Chaos Mesh CRDs" not in rows
    assert "chaos-daemon" not in rows
    assert rows["RBAC"].ok
    assert not any(r["group"] == "chaos-mesh.org" for r in healthy.api.reviews)


def test_no_default_storage_class(healthy: ApiThread, preflight: Preflight) -> None:
    healthy.call(
        lambda api: api.store("storage.k8s.io/v1/storageclasses", standard_storage_class(default=False))
    )
    rows = preflight(healthy)
    sc = rows["default StorageClass"]
    assert not sc.ok
    assert sc.blocking
    assert "no StorageClass is the default (classes: standard)" in sc.found
    assert "kubectl --context kind-hft patch storageclass standard -p" in sc.action
    assert '"storageclass.kubernetes.io/is-default-class": "true"' in sc.action
    assert _blocking(rows) == ["default StorageClass"]


def test_chaos_mesh_not_installed_gives_the_helm_command_for_kind(
    server: ApiThread, preflight: Preflight
) -> None:
    server.call(lambda api: api.store("v1/nodes", kind_node(images=ON_NODE)))
    rows = preflight(server)
    crds, daemon = rows["Chaos Mesh CRDs"], rows["chaos-daemon"]
    assert crds.found == "chaos-mesh.org/v1alpha1 is not served: Chaos Mesh is not installed"
    assert "helm repo add chaos-mesh https://charts.chaos-mesh.org" in crds.action
    install = crds.action.splitlines()[1]
    assert install.startswith(
        "helm upgrade --install chaos-mesh chaos-mesh/chaos-mesh --kube-context kind-hft"
    )
    assert install.endswith(CONTAINERD)
    assert daemon.found == "no DaemonSet labelled app.kubernetes.io/component=chaos-daemon anywhere"
    assert daemon.action == crds.action
    assert {"Chaos Mesh CRDs", "chaos-daemon"} <= set(_blocking(rows))


def test_chaos_daemon_not_ready(healthy: ApiThread, preflight: Preflight) -> None:
    healthy.call(lambda api: api.store("apps/v1/daemonsets", chaos_daemon(ready=0)))
    daemon = preflight(healthy)["chaos-daemon"]
    assert not daemon.ok
    assert daemon.blocking
    assert daemon.found == "chaos-mesh/chaos-daemon: 0/1 ready"
    assert (
        "kubectl --context kind-hft -n chaos-mesh get pods -l app.kubernetes.io/component=chaos-daemon"
        in (daemon.action)
    )


def test_chaos_daemon_with_the_wrong_runtime(healthy: ApiThread, preflight: Preflight) -> None:
    # Installed with the chart's defaults (docker) on containerd nodes: every injection would fail.
    healthy.call(
        lambda api: api.store(
            "apps/v1/daemonsets", chaos_daemon(runtime="docker", socket="/var/run/docker.sock")
        )
    )
    daemon = preflight(healthy)["chaos-daemon"]
    assert not daemon.ok
    assert daemon.blocking
    assert "runs --runtime docker, but the nodes run containerd://2.1.1" in daemon.found
    assert daemon.action.endswith(CONTAINERD)


def test_k3d_gets_the_k3s_containerd_socket(server: ApiThread, preflight: Preflight) -> None:
    node = kind_node("k3d-hft-server-0", images=ON_NODE)
    node["status"]["nodeInfo"].update(
        containerRuntimeVersion="containerd://1.7.23-k3s2", kubeletVersion="v1.31.5+k3s1"
    )
    server.call(lambda api: api.store("v1/nodes", node))
    crds = preflight(server, context="k3d-hft")["Chaos Mesh CRDs"]
    assert crds.action.endswith(
        "--set chaosDaemon.runtime=containerd --set chaosDaemon.socketPath=/run/k3s/containerd/containerd.sock"
    )
    assert "--kube-context k3d-hft" in crds.action


def test_an_image_missing_on_the_node(healthy: ApiThread, preflight: Preflight) -> None:
    healthy.call(lambda api: api.store("v1/nodes", kind_node(images=ON_NODE[:1])))
    rows = preflight(healthy)
    images = rows["platform images"]
    assert not images.ok
    assert images.blocking
    assert images.found == f"missing on hft-control-plane: {IMAGES[1]}"
    assert images.action == (
        "python -m pytest_hftk8s images --provider kind --context kind-hft\nor run the session with --hft-images=load"
    )
    assert _blocking(rows) == ["platform images"]


def test_a_node_at_the_kubelets_image_cap_only_warns(healthy: ApiThread, preflight: Preflight) -> None:
    # 5 preloaded + 45 others = 50 images listed: ours may be present but not reported.
    healthy.call(lambda api: api.store("v1/nodes", kind_node(filler=45)))
    images = preflight(healthy)["platform images"]
    assert not images.ok
    assert not images.blocking
    assert "the kubelet's cap: they may be there" in images.found


def test_registry_images_are_left_to_the_nodes_to_pull(healthy: ApiThread, tmp_path: pathlib.Path) -> None:
    config = kubeconfig_for(healthy.url, tmp_path / "kubeconfig", context="gke_acme_hft")
    cluster = KubernetesCluster(context="gke_acme_hft", namespace="hft", kubeconfig=config)
    try:
        rows = {
            r.check: r
            for r in cluster.preflight(images=["ghcr.io/acme/hftk8s/backend:0.1.0-abc"], chaos=False)
        }
    finally:
        cluster.close()
    assert rows["platform images"].ok
    assert rows["platform images"].found.endswith("pulled at deploy: ghcr.io/acme/hftk8s/backend:0.1.0-abc")


def test_kube_state_metrics_found_is_used(healthy: ApiThread, preflight: Preflight) -> None:
    healthy.call(lambda api: api.store("apps/v1/deployments", kube_state_metrics()))
    ksm = preflight(healthy)[KSM_CHECK]
    assert ksm.ok
    assert ksm.found == "kube-system/kube-state-metrics is ready: the session uses it"


def test_kube_state_metrics_of_an_earlier_session_is_not_the_clusters(
    healthy: ApiThread, preflight: Preflight
) -> None:
    ours = kube_state_metrics(namespace="hft")
    ours["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "pytest-hftk8s"
    healthy.call(lambda api: api.store("apps/v1/deployments", ours))
    ksm = preflight(healthy)[KSM_CHECK]
    assert not ksm.ok
    assert ksm.found == "none running in the cluster"


def test_a_namespace_scoped_user_gets_warnings_not_failures(healthy: ApiThread, preflight: Preflight) -> None:
    healthy.call(lambda api: api.forbidden.update({"/api/v1/nodes", "/apis/apps/v1/daemonsets"}))
    rows = preflight(healthy)
    assert rows["platform images"].found == "cannot list nodes (forbidden): not verified"
    assert rows["chaos-daemon"].found == "cannot list DaemonSets cluster-wide (forbidden): not verified"
    assert not rows["platform images"].blocking
    assert not rows["chaos-daemon"].blocking
    assert _blocking(rows) == []


def test_too_old_a_server(healthy: ApiThread, preflight: Preflight) -> None:
    healthy.call(lambda api: api.version.update(major="1", minor="20", gitVersion="v1.20.15"))
    api_row = preflight(healthy)["API server"]
    assert not api_row.ok
    assert api_row.action == "use a cluster of Kubernetes >= 1.22"


def test_unreachable_api_server_fails_at_once_with_one_row(preflight: Preflight) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    rows = preflight(None, url=f"https://127.0.0.1:{port}")
    assert list(rows) == ["API server"]
    row = rows["API server"]
    assert not row.ok
    assert row.blocking
    assert row.found == (
        f"context 'kind-hft' at https://127.0.0.1:{port} does not answer: "
        "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    assert "kubectl --context kind-hft get ns" in row.action
    assert preflight.elapsed < 3  # type: ignore[attr-defined]


def test_an_api_server_that_never_answers_is_given_up_within_the_request_timeout(
    tmp_path: pathlib.Path,
) -> None:
    assert REQUEST_TIMEOUT <= 5  # the session's bound; 1 s here keeps the test short
    with socket.socket() as listener:  # accepts connections (kernel backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        cluster = KubernetesCluster(
            context="kind-hft",
            namespace="hft",
            kubeconfig=kubeconfig_for(url, tmp_path / "kc", context="kind-hft"),
        )
        try:
            started = time.monotonic()
            rows = KubernetesPreflight(api=cluster.api, namespace="hft", request_timeout=1.0).run(
                images=IMAGES
            )
            elapsed = time.monotonic() - started
        finally:
            cluster.close()
    assert [r.check for r in rows] == ["API server"]
    assert not rows[0].ok
    assert "Read timed out" in rows[0].found
    assert 1.0 <= elapsed < 2.5


def test_checks_past_the_budget_are_reported_not_run(healthy: ApiThread, tmp_path: pathlib.Path) -> None:
    config = kubeconfig_for(healthy.url, tmp_path / "kubeconfig", context="kind-hft")
    cluster = KubernetesCluster(context="kind-hft", namespace="hft", kubeconfig=config)
    try:
        rows = KubernetesPreflight(api=cluster.api, namespace="hft", budget=0.0).run(images=IMAGES)
    finally:
        cluster.close()
    assert rows[0].check == "API server"
    assert rows[0].ok
    assert [r.check for r in rows[1:]] == ALL_CHECKS[1:]
    assert all(r.found == "not checked: the preflight's 0s budget ran out" for r in rows[1:])
    assert healthy.api.reviews == []


# -- the pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "normal"),
    [
        ("hftk8s/backend:0.1.0-abc", "docker.io/hftk8s/backend:0.1.0-abc"),
        ("redis:7", "docker.io/library/redis:7"),
        ("nginx", "docker.io/library/nginx:latest"),
        ("ghcr.io/acme/hftk8s/engine:1", "ghcr.io/acme/hftk8s/engine:1"),
        ("localhost:5001/hftk8s/engine:1", "localhost:5001/hftk8s/engine:1"),
        ("registry.local:5000/x@sha256:ab", "registry.local:5000/x@sha256:ab"),
    ],
)
def test_image_references_are_compared_as_the_runtime_names_them(ref: str, normal: str) -> None:
    assert normalize_image(ref) == normal


def _node(runtime: str, kubelet: str = "v1.33.1") -> dict[str, Any]:
    return {"status": {"nodeInfo": {"containerRuntimeVersion": runtime, "kubeletVersion": kubelet}}}


@pytest.mark.parametrize(
    ("nodes", "provider", "expected"),
    [
        ([_node("containerd://2.1.1")], "kind", ("containerd", "/run/containerd/containerd.sock")),
        (
            [_node("containerd://1.7.23-k3s2", "v1.31.5+k3s1")],
            "k3d",
            ("containerd", "/run/k3s/containerd/containerd.sock"),
        ),
        ([_node("docker://27.4.0")], "orbstack", ("docker", "/var/run/docker.sock")),
        ([_node("docker://28.0.1")], "minikube", ("docker", "/var/run/docker.sock")),
        ([_node("containerd://1.7.27")], "minikube", ("containerd", "/run/containerd/containerd.sock")),
        ([_node("cri-o://1.32.0")], None, ("crio", "/var/run/crio/crio.sock")),
        (None, "orbstack", ("docker", "/var/run/docker.sock")),  # nodes not readable: by provider
        (None, "k3d", ("containerd", "/run/k3s/containerd/containerd.sock")),
    ],
)
def test_chaos_daemon_runtime_follows_the_nodes(
    nodes: list[dict[str, Any]] | None, provider: str | None, expected: tuple[str, str]
) -> None:
    assert node_runtime(nodes, provider)[:2] == expected


def test_required_access_has_no_duplicates() -> None:
    labels = [label for label, _ in required_access(namespace="hft", chaos=True)]
    assert len(labels) == len(set(labels))
    assert len(required_access(namespace="hft", chaos=False)) == len(labels) - 16  # 4 chaos kinds x 4 verbs


def test_cli_prints_the_table_and_exits_1_on_a_missing_prerequisite(
    server: ApiThread, tmp_path: pathlib.Path
) -> None:
    # A kind cluster without Chaos Mesh and without the images of this checkout.
    server.call(lambda api: api.store("v1/nodes", kind_node()))
    server.call(lambda api: api.store("storage.k8s.io/v1/storageclasses", standard_storage_class()))
    config = kubeconfig_for(server.url, tmp_path / "kubeconfig", context="kind-hft")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_hftk8s", "preflight", "--context", "kind-hft", "--namespace", "ci"],
        env={**os.environ, "KUBECONFIG": config},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert "preflight of kind-hft (namespace ci)" in lines
    table = {line.split("  ")[0]: line for line in lines}
    assert " ok " in table["default StorageClass"]
    assert " FAIL " in table["Chaos Mesh CRDs"]
    assert "helm repo add chaos-mesh https://charts.chaos-mesh.org" in done.stdout
    assert " FAIL " in table["platform images"]
    assert "python -m pytest_hftk8s images --provider kind --context kind-hft" in done.stdout
    assert all(r.get("namespace") in (None, "ci") for r in server.api.reviews)
