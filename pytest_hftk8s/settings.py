"""The one settings object of a session, and the table of every setting it holds.

Each setting has a flag (``--hft-cluster``), an ini key (``hft_cluster``) and an environment variable
(``HFT_CLUSTER``); precedence is flag > environment > ini > default. This module parses and checks
the values (bad input raises :class:`~pytest_hftk8s.errors.ConfigError` saying what was expected,
what was seen and where it came from) and is the only module of the plugin that reads the
environment. It knows nothing of pytest: :mod:`pytest_hftk8s.options` registers the table with
pytest's parser and hands the raw values in.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_hftk8s.errors import ConfigError

KNOWN_CLUSTERS = ("local", "orbstack", "kind", "k3d", "minikube")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def parse_cluster(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise ConfigError(
            f"--hft-cluster: expected 'local', {', '.join(KNOWN_CLUSTERS[1:])} or a kube context name; got {value!r}"
        )
    return value


def parse_namespace(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ConfigError(
            f"--hft-namespace: expected a DNS-1123 label (lowercase letters, digits, '-', at most 63); got {value!r}"
        )
    return value


def parse_profile(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ConfigError(f"--hft-profile: expected an overlay name under manifests/overlays/; got {value!r}")
    return value


def parse_grafana_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"--hft-grafana-url: expected http(s)://host[:port][/path]; got {value!r}")
    return value.rstrip("/")


def parse_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"--hft-prometheus-url: expected http(s)://host:port; got {value!r}")
    return value.rstrip("/")


def _positive(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"expected {what} > 0; got {value!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise ConfigError(f"expected {what} > 0; got {value!r}")
    return number


def parse_seconds(value: str) -> float:
    return _positive(value, "a number of seconds")


def parse_rate(value: str) -> float:
    return _positive(value, "a rate in requests per second")


def parse_rate_or_auto(value: str) -> float | None:
    """``auto`` (None: a share of the measured capacity) or a rate in requests per second."""
    return None if value.strip().lower() == "auto" else parse_rate(value)


def _unit(value: str, what: str) -> float:
    """A number in (0, 1]."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 < number <= 1:
        raise ConfigError(f"{what}: expected a number in (0, 1]; got {value!r}")
    return number


def parse_share(value: str) -> float:
    return _unit(value, "a share of the capacity")


def parse_ms(value: str) -> float:
    return _positive(value, "a latency bound in milliseconds")


def parse_replica_counts(value: str) -> tuple[int, ...]:
    """``1,2,4,8``: distinct replica counts >= 1, in ascending order (the scaling sweep's N)."""
    items = [item for item in re.split(r"[,\s]+", value.strip()) if item]
    try:
        counts = [int(item) for item in items]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or max(counts) > 64 or len(set(counts)) != len(counts):
        raise ConfigError(
            "--hft-sweep-backends: expected a comma-separated list of distinct backend replica counts "
            f"from 1 to 64 (e.g. 1,2,4,8); got {value!r}"
        )
    return tuple(sorted(counts))


def parse_ratio(value: str) -> float:
    return _unit(value, "a share of the offered orders")


def parse_scale(value: str) -> float:
    return _unit(value, "--hft-backoff-scale")


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"expected a boolean (1/0, true/false, yes/no); got {value!r}")


#: Providers whose clusters have an overlay of their own (manifests/overlays/<name>).
PROVIDER_PROFILES = ("kind", "orbstack", "emulated")


def default_profile(cluster: str) -> str:
    """The overlay a cluster gets without --hft-profile: its provider's (kind, orbstack), else local."""
    for provider in PROVIDER_PROFILES:
        if cluster == provider or cluster.startswith(f"{provider}-"):
            return provider
    return "local"


def _choice(flag: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ConfigError(f"{flag}: expected one of {', '.join(choices)}; got {value!r}")
        return lowered

    return parse


IMAGES_CHOICES = ("skip", "build", "load")
DELETE_CHOICES = ("always", "on-success", "never")
ACCESS_CHOICES = ("auto", "loadbalancer", "nodeport", "port-forward")


def parse_registry(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value or any(c.isspace() for c in value) or "://" in value:
        raise ConfigError(
            f"--hft-registry: expected a registry host[:port][/path] such as ghcr.io/acme; got {value!r}"
        )
    return value


def parse_secret_name(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", value):
        raise ConfigError(f"--hft-db-secret: expected a Secret name (DNS-1123 subdomain); got {value!r}")
    return value


def parse_context(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise ConfigError(f"--hft-allow-context: expected a kube context name; got {value!r}")
    return value


#: --hft-emulate-fault names; the emulated bridge checks the value (pytest_hftk8s.cluster.emulated.bridge).
FAULT_NAMES = ("unpullable", "unschedulable", "stuck-finalizer", "missing", "unready", "deny")


def parse_fault(value: str) -> str:
    name, sep, target = (part.strip() for part in value.partition("="))
    if name not in FAULT_NAMES or not sep or not target:
        raise ConfigError(
            f"--hft-emulate-fault: expected NAME=VALUE with NAME one of {', '.join(FAULT_NAMES)} "
            f"(e.g. unpullable=backend); got {value!r}"
        )
    return f"{name}={target}"


def parse_repeat(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 50:
        raise ConfigError(f"--hft-repeat: expected a whole number of repeats from 1 to 50; got {value!r}")
    return number


def parse_compare(value: str) -> pathlib.Path:
    """A previous ``hft-report/`` directory or its ``summary.json`` (checked when the session reads it)."""
    value = value.strip()
    if not value:
        raise ConfigError(
            "--hft-compare: expected a previous hft-report/ directory or its summary.json; got ''"
        )
    return pathlib.Path(value).expanduser()


def parse_min_effect(value: str) -> float:
    try:
        number = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
    except ValueError:
        number = math.nan
    if not 0 < number < 1:
        raise ConfigError(
            f"--hft-min-effect: expected a relative change in (0, 1), e.g. 0.05 or 5%; got {value!r}"
        )
    return number


def parse_cpu_limit_scale(value: str) -> str:
    """``WORKLOAD=FACTOR``: scale that workload's CPU limits (and requests above them) by FACTOR in (0, 4]."""
    name, sep, factor = (part.strip() for part in value.partition("="))
    try:
        number = float(factor)
    except ValueError:
        number = math.nan
    if not sep or not _DNS_LABEL.match(name) or not 0 < number <= 4:
        raise ConfigError(
            "--hft-cpu-limit-scale: expected WORKLOAD=FACTOR with a Deployment or StatefulSet name and a "
            f"factor in (0, 4], e.g. backend=0.7 (a 30% cut); got {value!r}"
        )
    return f"{name}={number:g}"


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    parse: Callable[[str], Any] | None = None
    default: Any = None
    is_flag: bool = False
    repeatable: bool = False  # flag may be given several times; env and ini take a comma list
    needs_cluster: bool = False  # meaningless without --hft-cluster: refused alone

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return self.dest.upper()

    @property
    def field(self) -> str:
        return self.dest[4:]


OPTIONS = (
    Option(
        "--hft-cluster",
        "cluster: 'local' (this machine as a one-node cluster), 'emulated' (the kubernetes backend "
        "against an emulated API whose pods are local processes), orbstack, kind, k3d, minikube or any "
        "kube context; without it the plugin stays inert",
        parse_cluster,
    ),
    Option(
        "--hft-profile",
        "manifests overlay to deploy (manifests/overlays/<profile>; default: kind or orbstack on those "
        "clusters, else local)",
        parse_profile,
        "local",
        needs_cluster=True,
    ),
    Option(
        "--hft-namespace",
        "namespace to deploy into (default: hft)",
        parse_namespace,
        "hft",
        needs_cluster=True,
    ),
    Option(
        "--hft-keep",
        "keep the platform running after the session (no teardown)",
        parse_bool,
        False,
        True,
        needs_cluster=True,
    ),
    Option(
        "--hft-delete",
        "when to delete what the session deployed: always, on-success or never (default: always; "
        "--hft-keep is never). The plugin only ever deletes a namespace it created",
        _choice("--hft-delete", DELETE_CHOICES),
        "always",
        needs_cluster=True,
    ),
    Option(
        "--hft-preflight",
        "check the cluster's prerequisites, print the table and exit without deploying",
        parse_bool,
        False,
        True,
        needs_cluster=True,
    ),
    Option(
        "--hft-images",
        "kube contexts: skip (the images must be on the nodes or pullable), build them, or build and "
        "load them into the provider (kind, k3d, minikube, orbstack) or --hft-registry (default: skip)",
        _choice("--hft-images", IMAGES_CHOICES),
        "skip",
        needs_cluster=True,
    ),
    Option(
        "--hft-registry",
        "push the platform images to this registry (host[:port][/path]) instead of loading them into "
        "the provider; the manifests then name them there",
        parse_registry,
        needs_cluster=True,
    ),
    Option(
        "--hft-access",
        "how the load reaches nginx on a kube context: auto (LoadBalancer on orbstack, NodePort on kind, "
        "else port-forward), loadbalancer, nodeport or port-forward (default: auto)",
        _choice("--hft-access", ACCESS_CHOICES),
        "auto",
        needs_cluster=True,
    ),
    Option(
        "--hft-db-secret",
        "an existing Secret (key: password) holding the database password; default: a password is "
        "generated for each deployment and never written to disk",
        parse_secret_name,
        needs_cluster=True,
    ),
    Option(
        "--hft-report-dir",
        "where summary.json, index.html and failure bundles go (default: hft-report)",
        None,
        "hft-report",
    ),
    Option("--hft-prometheus-url", "Prometheus to query SLOs from (default: the deployed one)", parse_url),
    Option(
        "--hft-grafana",
        "kube contexts: also deploy Grafana with the project's dashboards (manifests/components/grafana); "
        "the local and emulated clusters do not run Grafana, but every run writes the dashboards' JSON "
        "to the report directory",
        parse_bool,
        False,
        True,
        needs_cluster=True,
    ),
    Option(
        "--hft-grafana-url",
        "Grafana that shows the dashboards (e.g. http://localhost:3000 after a port-forward): a failed "
        "SLO then links to its panel for the test's window (default: the message names the panel)",
        parse_grafana_url,
    ),
    Option("--hft-slo-file", "YAML alert profile (kube-burner style) of SLOs for every platform test", None),
    Option(
        "--hft-manifests-dir",
        "the manifests/ directory with base/ and overlays/ (default: the one shipped with the plugin)",
        None,
    ),
    Option(
        "--hft-deploy-timeout",
        "seconds allowed to render and apply the manifests (default: 120)",
        parse_seconds,
        120.0,
        needs_cluster=True,
    ),
    Option(
        "--hft-gate-timeout",
        "seconds allowed for all readiness gates together (default: 120)",
        parse_seconds,
        120.0,
        needs_cluster=True,
    ),
    Option(
        "--hft-load-timeout",
        "hard deadline of any single load run, seconds (default: 600)",
        parse_seconds,
        600.0,
    ),
    Option(
        "--hft-measure-timeout",
        "how long a test waits for another xdist worker's load or chaos to finish before it errors, "
        "seconds (default: 1800)",
        parse_seconds,
        1800.0,
    ),
    Option(
        "--hft-backoff-scale",
        "local cluster only: scale Kubernetes' restart backoff (10 s..5 min) by this factor in (0, 1]",
        parse_scale,
        1.0,
        needs_cluster=True,
    ),
    Option(
        "--hft-allow-context",
        "kube context where destructive chaos may run (repeatable; env/ini: comma-separated); "
        "'local' is always allowed, every other context is refused",
        parse_context,
        (),
        repeatable=True,
    ),
    Option(
        "--hft-emulate-fault",
        "emulated cluster only: make a failure path happen (repeatable; env/ini: comma-separated): "
        "unpullable=<workload> (ImagePullBackOff), unschedulable=<workload> (Pending, Unschedulable), "
        "stuck-finalizer=<StressChaos|PodChaos|NetworkChaos|all> (chaos objects never released), "
        "missing=<chaos-mesh|storage-class>, unready=chaos-daemon, deny=<verb>:<resource> (RBAC)",
        parse_fault,
        (),
        repeatable=True,
        needs_cluster=True,
    ),
    Option(
        "--hft-chaos-dry-run",
        "print the chaos objects (YAML) instead of injecting them; nothing is changed",
        parse_bool,
        False,
        True,
    ),
    # -- the bundled suites' figures (what a trading desk signs; change them for other machines) --
    Option(
        "--hft-baseline-rate",
        "constant offered rate of the baseline and the resilience runs, requests/s, or 'auto': "
        "--hft-baseline-utilization of the capacity measured at the start (default: auto)",
        parse_rate_or_auto,
        None,
    ),
    # A closed loop saturates the backend, where batching makes each request cheapest; an open loop
    # at a steady rate pays the full cost of every request. Measured on the CI machine kind (backend
    # limit 300m): 60/s left it unthrottled, 90/s throttled 30% of its CFS periods, 120/s 96%, while
    # the closed-loop capacity was ~250/s. A baseline runs unthrottled: 0.3 of the closed loop.
    Option(
        "--hft-baseline-utilization",
        "with --hft-baseline-rate=auto: the share of the measured closed-loop capacity to offer (default: 0.3)",
        parse_share,
        0.3,
    ),
    Option("--hft-baseline-seconds", "length of the baseline load run, s (default: 10)", parse_seconds, 10.0),
    Option(
        "--hft-baseline-p99-ms",
        "server-side p99 order latency bound of the baseline, ms (default: 50)",
        parse_ms,
        50.0,
    ),
    Option(
        "--hft-baseline-client-p99-ms",
        "client-side p99 order latency bound of the baseline (from each request's intended send time, "
        "timeouts at their time, unanswered requests as failures), ms (default: 100)",
        parse_ms,
        100.0,
    ),
    Option(
        "--hft-resilience-load-seconds",
        "constant-rate load under CPU pressure and of the scaled run, s (default: 8)",
        parse_seconds,
        8.0,
    ),
    Option(
        "--hft-kill-load-seconds",
        "constant-rate load around each pod kill, s (default: 20)",
        parse_seconds,
        20.0,
    ),
    Option(
        "--hft-capacity-seconds",
        "closed-loop capacity runs before/under stress, s (default: 4)",
        parse_seconds,
        4.0,
    ),
    Option(
        "--hft-recovery-max-s",
        "recovery time bound after a pod kill: throughput back at >= 90%% of the baseline for a full "
        "second, s (default: 10)",
        parse_seconds,
        10.0,
    ),
    # -- nightly comparisons (pytest_hftk8s/slo/compare.py) --
    Option(
        "--hft-repeat",
        "run each load phase of the bundled suites (every test that uses hft_load) N times on the same "
        "deployment; each repeat is recorded, and a comparison resamples repeats as blocks (default: 1)",
        parse_repeat,
        1,
    ),
    Option(
        "--hft-compare",
        "a previous run's hft-report/ directory (or its summary.json) to compare this run with: a "
        "verdict per test and measure (regressed, improved, unchanged, inconclusive) with its interval",
        parse_compare,
        needs_cluster=True,
    ),
    Option(
        "--hft-min-effect",
        "the smallest relative change a comparison calls a regression or an improvement, when the "
        "baseline's repeat-to-repeat noise is not wider (default: 0.05)",
        parse_min_effect,
        0.05,
    ),
    Option(
        "--hft-fail-on-regression",
        "with --hft-compare: a new regression fails the session (exit status 1); without it the "
        "comparison only reports",
        parse_bool,
        False,
        True,
    ),
    Option(
        "--hft-cpu-limit-scale",
        "scale a workload's CPU limit in the rendered overlay, WORKLOAD=FACTOR (e.g. backend=0.7, a 30%% "
        "cut: the regression gate's known slowdown); may be given several times",
        parse_cpu_limit_scale,
        (),
        repeatable=True,
        needs_cluster=True,
    ),
    # -- the scaling sweep (-m sweep; pytest_hftk8s/suites/test_sweep.py) --
    Option(
        "--hft-sweep",
        "run the scaling sweep (tests marked sweep) even when -m does not name it; without this or "
        "-m sweep they are deselected",
        parse_bool,
        False,
        True,
    ),
    Option(
        "--hft-sweep-backends",
        "backend replica counts the sweep deploys, comma-separated (default: 1,2,4,8)",
        parse_replica_counts,
        (1, 2, 4, 8),
    ),
    Option(
        "--hft-sweep-budget",
        "time budget of the whole sweep (deploys, gates and probes), s; on exhaustion it stops and "
        "says so (default: 900)",
        parse_seconds,
        900.0,
    ),
    Option(
        "--hft-sweep-probe-seconds",
        "length of each open-loop probe of the sweep, s (default: 5)",
        parse_seconds,
        5.0,
    ),
    Option(
        "--hft-sweep-p99-ms",
        "client-side p99 order latency bound of a sustainable sweep probe, ms (default: 100)",
        parse_ms,
        100.0,
    ),
    Option(
        "--hft-sweep-min-ratio",
        "accepted orders over offered orders of a sustainable sweep probe, in (0, 1] (default: 0.95)",
        parse_ratio,
        0.95,
    ),
)


@dataclass(frozen=True)
class HftSettings:
    """The resolved settings of one session."""

    cluster: str | None
    profile: str = "local"
    namespace: str = "hft"
    keep: bool = False
    delete: str = "always"  # always | on-success | never (--hft-keep forces never)
    preflight: bool = False  # run the preflight, print it and exit
    images: str = "skip"  # skip | build | load
    registry: str | None = None
    access: str = "auto"  # auto | loadbalancer | nodeport | port-forward
    db_secret: str | None = None
    report_dir: pathlib.Path = pathlib.Path("hft-report")
    prometheus_url: str | None = None
    grafana: bool = False  # add manifests/components/grafana to the overlay (kube contexts only)
    grafana_url: str | None = None  # where SLO failure messages link their panels
    slo_file: pathlib.Path | None = None
    manifests_dir: pathlib.Path | None = None
    deploy_timeout: float = 120.0
    gate_timeout: float = 120.0
    load_timeout: float = 600.0
    measure_timeout: float = 1800.0
    backoff_scale: float = 1.0
    allow_context: tuple[str, ...] = ()  # kube contexts where chaos may run ('local' always may)
    emulate_fault: tuple[str, ...] = ()  # --hft-cluster=emulated: the bridge's fault switches
    chaos_dry_run: bool = False
    baseline_rate: float | None = None  # None: baseline_utilization x the measured capacity
    baseline_utilization: float = 0.3
    baseline_seconds: float = 10.0
    baseline_p99_ms: float = 50.0
    baseline_client_p99_ms: float = 100.0
    resilience_load_seconds: float = 8.0
    kill_load_seconds: float = 20.0
    capacity_seconds: float = 4.0
    recovery_max_s: float = 10.0
    sweep: bool = False  # run the tests marked sweep without -m sweep
    sweep_backends: tuple[int, ...] = (1, 2, 4, 8)
    sweep_budget: float = 900.0
    sweep_probe_seconds: float = 5.0
    sweep_p99_ms: float = 100.0
    sweep_min_ratio: float = 0.95
    repeat: int = 1
    compare: pathlib.Path | None = None  # a previous report directory or summary.json
    min_effect: float = 0.05
    fail_on_regression: bool = False
    cpu_limit_scale: tuple[str, ...] = ()  # "WORKLOAD=FACTOR"
    explicit: frozenset[str] = frozenset()  # settings the user gave (flag, env or ini)

    @property
    def active(self) -> bool:
        return self.cluster is not None


def resolve(
    flags: Mapping[str, Any],
    ini: Mapping[str, str],
    *,
    rootpath: pathlib.Path,
    environ: Mapping[str, str] | None = None,
) -> HftSettings:
    """Settings from parsed flags (``dest`` -> value or None), raw ini strings and the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    explicit: set[str] = set()
    for opt in OPTIONS:
        value = flags.get(opt.dest)
        if opt.repeatable:
            values[opt.field] = _repeated(opt, value, env, ini.get(opt.dest, ""), explicit)
            continue
        if value is None and env.get(opt.env, "") != "":
            value = _parsed(opt, env[opt.env], f"environment variable {opt.env}")
        if value is None and ini.get(opt.dest):
            value = _parsed(opt, str(ini[opt.dest]), f"ini key {opt.dest}")
        if value is None or (value is False and opt.is_flag):
            value = opt.default
        else:
            explicit.add(opt.dest)
        values[opt.field] = value
    for key in ("report_dir", "slo_file", "manifests_dir"):
        if values[key]:
            path = pathlib.Path(values[key])
            values[key] = path if path.is_absolute() else rootpath / path
    values["keep"] = bool(values["keep"])
    if "hft_profile" not in explicit and values["cluster"]:
        values["profile"] = default_profile(values["cluster"])
    values["preflight"] = bool(values["preflight"])
    if values["keep"]:
        if "hft_delete" in explicit and values["delete"] != "never":
            raise ConfigError(f"--hft-keep means --hft-delete=never; got --hft-delete={values['delete']}")
        values["delete"] = "never"
    values["chaos_dry_run"] = bool(values["chaos_dry_run"])
    values["grafana"] = bool(values["grafana"])
    values["sweep"] = bool(values["sweep"])
    values["fail_on_regression"] = bool(values["fail_on_regression"])
    if values["compare"] is not None and not values["compare"].is_absolute():
        values["compare"] = rootpath / values["compare"]
    settings = HftSettings(**values, explicit=frozenset(explicit))
    _check_combinations(settings)
    return settings


def _repeated(
    opt: Option, given: list[str] | None, env: Mapping[str, str], ini: str, explicit: set[str]
) -> tuple[str, ...]:
    """A repeatable option: the flags if any were given, else the environment's, else the ini's list."""
    if given:
        explicit.add(opt.dest)
        return tuple(given)
    for raw, source in (
        (env.get(opt.env, ""), f"environment variable {opt.env}"),
        (ini, f"ini key {opt.dest}"),
    ):
        items = [item for item in re.split(r"[,\s]+", raw or "") if item]
        if items:
            explicit.add(opt.dest)
            return tuple(_parsed(opt, item, source) for item in items)
    return tuple(opt.default)


def _parsed(opt: Option, raw: str, source: str) -> Any:
    if opt.parse is None:
        return raw
    try:
        return opt.parse(raw)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e


def _check_combinations(s: HftSettings) -> None:
    needs_cluster = sorted(o.flag for o in OPTIONS if o.needs_cluster and o.dest in s.explicit)
    if s.cluster is None and needs_cluster:
        raise ConfigError(
            f"{', '.join(needs_cluster)} only make sense with a cluster: add --hft-cluster=local "
            "(or a kube context), or set HFT_CLUSTER"
        )
    if s.cluster not in (None, "local", "emulated") and "hft_backoff_scale" in s.explicit:
        raise ConfigError(
            f"--hft-backoff-scale applies to the embedded local cluster only; --hft-cluster={s.cluster} uses "
            "Kubernetes' own kubelet backoff. Drop the option or use --hft-cluster=local (or emulated)"
        )
    if s.cluster != "emulated" and s.emulate_fault:
        raise ConfigError(
            f"--hft-emulate-fault applies to --hft-cluster=emulated only (its bridge plays the faults); "
            f"got --hft-cluster={s.cluster}. Drop the option or use --hft-cluster=emulated"
        )
    if s.fail_on_regression and s.compare is None:
        raise ConfigError(
            "--hft-fail-on-regression needs a baseline to find a regression against: add "
            "--hft-compare=<a previous hft-report/ directory>"
        )
    if s.grafana and s.cluster in ("local", "emulated"):
        raise ConfigError(
            f"--hft-grafana deploys Grafana on a kube context; --hft-cluster={s.cluster} runs its pods as "
            "processes of this machine, and Debian has no Grafana package, so Grafana is not run there. "
            "The dashboards are still written to the report directory (dashboards/*.json, importable into "
            "any Grafana). Drop --hft-grafana or name a kube context"
        )
    if s.cluster == "local":
        kube_only = sorted(
            f"--{d.replace('_', '-')}"
            for d in ("hft_images", "hft_registry", "hft_access", "hft_db_secret")
            if d in s.explicit
        )
        if kube_only:
            raise ConfigError(
                f"{', '.join(kube_only)} apply to kube contexts only; --hft-cluster=local runs the platform "
                "from this checkout. Drop them or name a kube context"
            )
    if s.slo_file is not None and not s.slo_file.is_file():
        raise ConfigError(f"--hft-slo-file: expected an existing YAML file, {s.slo_file} does not exist")
    if s.manifests_dir is not None and not (s.manifests_dir / "overlays").is_dir():
        raise ConfigError(
            f"--hft-manifests-dir: expected a directory with overlays/ inside, {s.manifests_dir} has none"
        )
