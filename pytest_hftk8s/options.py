"""Command-line options, ini keys and environment fallbacks of the ``hftk8s`` group.

Each setting has a flag (``--hft-cluster``), an ini key (``hft_cluster``) and an environment
variable (``HFT_CLUSTER``); precedence is flag > environment > ini > default. Values are parsed by
typed parsers that raise ``pytest.UsageError`` with what was expected and seen, and bad
combinations are refused in :func:`resolve`. No I/O beyond reading the environment and checking
that a given SLO file exists; no cluster, no subprocess.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

KNOWN_CLUSTERS = ("local", "orbstack", "kind", "k3d", "minikube")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def parse_cluster(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise pytest.UsageError(
            f"--hft-cluster: expected 'local', {', '.join(KNOWN_CLUSTERS[1:])} or a kube context name; got {value!r}"
        )
    return value


def parse_namespace(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise pytest.UsageError(
            f"--hft-namespace: expected a DNS-1123 label (lowercase letters, digits, '-', at most 63); got {value!r}"
        )
    return value


def parse_profile(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise pytest.UsageError(
            f"--hft-profile: expected an overlay name under manifests/overlays/; got {value!r}"
        )
    return value


def parse_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise pytest.UsageError(f"--hft-prometheus-url: expected http(s)://host:port; got {value!r}")
    return value.rstrip("/")


def parse_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise pytest.UsageError(f"expected a number of seconds > 0 for a timeout; got {value!r}") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise pytest.UsageError(f"expected a number of seconds > 0 for a timeout; got {value!r}")
    return seconds


def parse_scale(value: str) -> float:
    try:
        scale = float(value)
    except ValueError:
        raise pytest.UsageError(f"--hft-backoff-scale: expected a number in (0, 1]; got {value!r}") from None
    if not 0 < scale <= 1:
        raise pytest.UsageError(f"--hft-backoff-scale: expected a number in (0, 1]; got {value!r}")
    return scale


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise pytest.UsageError(f"expected a boolean (1/0, true/false, yes/no); got {value!r}")


def parse_context(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise pytest.UsageError(f"--hft-allow-context: expected a kube context name; got {value!r}")
    return value


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    parse: Callable[[str], Any] | None = None
    default: Any = None
    is_flag: bool = False
    repeatable: bool = False  # flag may be given several times; env and ini take a comma list

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return self.dest.upper()


OPTIONS = (
    Option(
        "--hft-cluster",
        "cluster: 'local' (this machine as a one-node cluster), orbstack, kind, k3d, "
        "minikube or any kube context; without it the plugin stays inert",
        parse_cluster,
    ),
    Option(
        "--hft-profile",
        "manifests overlay to deploy (manifests/overlays/<profile>; default: local)",
        parse_profile,
        "local",
    ),
    Option("--hft-namespace", "namespace to deploy into (default: hft)", parse_namespace, "hft"),
    Option(
        "--hft-keep", "keep the platform running after the session (no teardown)", parse_bool, False, True
    ),
    Option(
        "--hft-report-dir",
        "where summary.json, index.html and failure bundles go (default: hft-report)",
        None,
        "hft-report",
    ),
    Option("--hft-prometheus-url", "Prometheus to query SLOs from (default: the deployed one)", parse_url),
    Option("--hft-slo-file", "YAML alert profile (kube-burner style) of SLOs for every platform test", None),
    Option(
        "--hft-deploy-timeout",
        "seconds allowed to render and apply the manifests (default: 120)",
        parse_seconds,
        120.0,
    ),
    Option(
        "--hft-gate-timeout",
        "seconds allowed for all readiness gates together (default: 120)",
        parse_seconds,
        120.0,
    ),
    Option(
        "--hft-load-timeout",
        "hard deadline of any single load run, seconds (default: 600)",
        parse_seconds,
        600.0,
    ),
    Option(
        "--hft-backoff-scale",
        "local cluster only: scale Kubernetes' restart backoff (10 s..5 min) by this factor in (0, 1]",
        parse_scale,
        1.0,
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
        "--hft-chaos-dry-run",
        "print the chaos objects (YAML) instead of injecting them; nothing is changed",
        parse_bool,
        False,
        True,
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("hftk8s", "HFT platform on Kubernetes: deploy, gate, load, chaos, SLOs")
    for opt in OPTIONS:
        text = f"{opt.help} [env {opt.env}, ini {opt.dest}]"
        if opt.is_flag:
            group.addoption(opt.flag, action="store_true", dest=opt.dest, default=None, help=text)
        elif opt.repeatable:
            group.addoption(
                opt.flag, dest=opt.dest, default=None, action="append", type=opt.parse,
                metavar=opt.dest.upper()[4:], help=text,
            )  # fmt: skip
        else:
            group.addoption(
                opt.flag, dest=opt.dest, default=None, type=opt.parse, metavar=opt.dest.upper()[4:], help=text
            )
        parser.addini(opt.dest, f"{opt.help} (ini equivalent of {opt.flag})", type="string", default="")


@dataclass(frozen=True)
class HftSettings:
    """The resolved settings of one session (stored under a StashKey on the config)."""

    cluster: str | None
    profile: str
    namespace: str
    keep: bool
    report_dir: pathlib.Path
    prometheus_url: str | None
    slo_file: pathlib.Path | None
    deploy_timeout: float
    gate_timeout: float
    load_timeout: float
    backoff_scale: float
    explicit: frozenset[str]  # settings the user gave (flag, env or ini), for combination checks
    allow_contexts: tuple[str, ...] = ()  # kube contexts where chaos may run ('local' always may)
    chaos_dry_run: bool = False

    @property
    def active(self) -> bool:
        return self.cluster is not None


def resolve(config: pytest.Config, *, environ: dict[str, str] | None = None) -> HftSettings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    explicit: set[str] = set()
    for opt in OPTIONS:
        value = config.getoption(opt.dest)
        if opt.repeatable:
            values[opt.dest[4:]] = _repeated(opt, value, env, config, explicit)
            continue
        if value is None and env.get(opt.env, "") != "":
            value = _parsed(opt, env[opt.env], f"environment variable {opt.env}")
        if value is None:
            ini = config.getini(opt.dest)
            if ini:
                value = _parsed(opt, str(ini), f"ini key {opt.dest}")
        if value is None or (value is False and opt.is_flag):
            value = opt.default
        else:
            explicit.add(opt.dest)
        values[opt.dest[4:]] = value
    rootpath = config.rootpath
    report_dir = pathlib.Path(values["report_dir"])
    slo_file = pathlib.Path(values["slo_file"]) if values["slo_file"] else None
    settings = HftSettings(
        cluster=values["cluster"],
        profile=values["profile"],
        namespace=values["namespace"],
        keep=bool(values["keep"]),
        report_dir=report_dir if report_dir.is_absolute() else rootpath / report_dir,
        prometheus_url=values["prometheus_url"],
        slo_file=slo_file if slo_file is None or slo_file.is_absolute() else rootpath / slo_file,
        deploy_timeout=values["deploy_timeout"],
        gate_timeout=values["gate_timeout"],
        load_timeout=values["load_timeout"],
        backoff_scale=values["backoff_scale"],
        explicit=frozenset(explicit),
        allow_contexts=tuple(values["allow_context"]),
        chaos_dry_run=bool(values["chaos_dry_run"]),
    )
    _check_combinations(settings)
    return settings


def _repeated(
    opt: Option, given: list[str] | None, env: dict[str, str] | Any, config: pytest.Config, explicit: set[str]
) -> tuple[str, ...]:
    """A repeatable option: the flags if any were given, else the environment's, else the ini's list."""
    if given:
        explicit.add(opt.dest)
        return tuple(given)
    for raw, source in ((env.get(opt.env, ""), f"environment variable {opt.env}"),
                        (str(config.getini(opt.dest) or ""), f"ini key {opt.dest}")):  # fmt: skip
        items = [item for item in re.split(r"[,\s]+", raw) if item]
        if items:
            explicit.add(opt.dest)
            return tuple(_parsed(opt, item, source) for item in items)
    return tuple(opt.default)


def _parsed(opt: Option, raw: str, source: str) -> Any:
    if opt.parse is None:
        return raw
    try:
        return opt.parse(raw)
    except pytest.UsageError as e:
        raise pytest.UsageError(f"{source}: {e}") from e


def _check_combinations(s: HftSettings) -> None:
    needs_cluster = sorted(
        "--" + d.replace("_", "-")
        for d in s.explicit
        if d
        in (
            "hft_profile",
            "hft_namespace",
            "hft_keep",
            "hft_backoff_scale",
            "hft_deploy_timeout",
            "hft_gate_timeout",
        )
    )
    if s.cluster is None and needs_cluster:
        raise pytest.UsageError(
            f"{', '.join(needs_cluster)} only make sense with a cluster: add --hft-cluster=local "
            "(or a kube context), or set HFT_CLUSTER"
        )
    if s.cluster not in (None, "local") and "hft_backoff_scale" in s.explicit:
        raise pytest.UsageError(
            f"--hft-backoff-scale applies to the embedded local cluster only; --hft-cluster={s.cluster} uses "
            "Kubernetes' own kubelet backoff. Drop the option or use --hft-cluster=local"
        )
    if s.slo_file is not None and not s.slo_file.is_file():
        raise pytest.UsageError(
            f"--hft-slo-file: expected an existing YAML file, {s.slo_file} does not exist"
        )
