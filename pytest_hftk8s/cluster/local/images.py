"""The image table: how each manifest image runs as a local command.

Its job: turn (container spec, pod context) into a :class:`LaunchPlan` - argv, env, working dir,
user, stop signal and bind mounts - following Kubernetes' command/args rules over each image's
ENTRYPOINT/CMD. Only what a pod's own network namespace would make unnecessary is rewritten, and
each rewrite is listed here:

- servers bind the pod's loopback address instead of all addresses (postgres ``listen_addresses``,
  redis ``--bind``, nginx ``listen``, prometheus ``--web.listen-address``);
- nginx: ``pid`` moves into the pod directory, the error log goes to stderr (``-e stderr``);
- prometheus: ``kubernetes_sd_configs`` become ``file_sd_configs`` (see :mod:`.promsd`);
- paths under a volume mountPath that does not exist on this host are rewritten to the pod's volume
  directory (mountPaths that do exist are bind-mounted instead, like kubelet).

It must not start processes or touch cgroups.
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pytest_hftk8s.cluster.local import promsd
from pytest_hftk8s.cluster.local.model import ContainerSpec, expand
from pytest_hftk8s.errors import ConfigError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_ENTRYPOINT = Path(__file__).with_name("pg_entrypoint.py")


@dataclass
class LaunchContext:
    """What the pod gives a container: its address, directory, env and volume mounts."""

    pod_name: str
    pod_ip: str
    pod_dir: Path
    env: dict[str, str]
    namespace: str = ""
    binds: list[tuple[Path, str]] = field(default_factory=list)  # (host path, container path)
    rewrites: list[tuple[str, Path]] = field(default_factory=list)  # (container prefix, host path)

    def host_path(self, container_path: str) -> Path:
        """Where a container path's content lives on this host (the path itself if not mounted)."""
        for host, target in [*reversed(self.binds), *((h, t) for t, h in self.rewrites)]:
            if container_path == target:
                return host
            if container_path.startswith(target.rstrip("/") + "/"):
                return host / container_path[len(target.rstrip("/")) + 1 :]
        return Path(container_path)

    def translate(self, text: str) -> str:
        """Rewrite container paths under non-bindable mountPaths (in argv, env values, workingDir)."""
        for prefix, host in self.rewrites:
            pattern = re.compile(rf"(^|=){re.escape(prefix.rstrip('/'))}(?=/|$)")
            text = pattern.sub(lambda m, host=str(host): m.group(1) + host, text)  # type: ignore[misc]
        return text

    def override_file(self, container_path: str, content: str) -> Path:
        """Give the container a rewritten copy of a file, at the same container path."""
        host = self.pod_dir / "overrides" / container_path.strip("/").replace("/", "__")
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(content)
        if Path(container_path).exists() or any(t == container_path for _, t in self.binds):
            self.binds.append((host, container_path))
        else:
            self.rewrites.insert(0, (container_path, host))
        return host


@dataclass
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    binds: list[tuple[Path, str]]
    user: str = ""  # drop to this user after the mounts (postgres refuses root)
    stop_signal: int = signal.SIGTERM
    prometheus_sd: list[promsd.SdFile] = field(default_factory=list)


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    workdir: str = ""
    stop_signal: int = signal.SIGTERM
    adapt: Callable[[list[str], LaunchContext, LaunchPlan], None] | None = None


def _python(argv: list[str], ctx: LaunchContext, plan: LaunchPlan) -> None:
    if argv and argv[0] in ("python", "python3", "/usr/local/bin/python", "/usr/bin/python3"):
        argv[0] = sys.executable


def _postgres(argv: list[str], ctx: LaunchContext, plan: LaunchPlan) -> None:
    if argv and argv[0] == "docker-entrypoint.sh":
        argv[:1] = [sys.executable, "-I", str(PG_ENTRYPOINT)]
    argv += ["-c", f"listen_addresses={ctx.pod_ip}"]
    plan.env["PATH"] = f"{PG_BIN}:{plan.env.get('PATH', '/usr/bin:/bin')}"
    plan.env.setdefault("PGDATA", str(ctx.host_path("/var/lib/postgresql/data")))
    run = ctx.pod_dir / "run-postgresql"
    run.mkdir(exist_ok=True)
    plan.binds.append((run, "/var/run/postgresql"))  # private socket dir, so exec probes see only this pod


def _redis(argv: list[str], ctx: LaunchContext, plan: LaunchPlan) -> None:
    if argv and argv[0] == "docker-entrypoint.sh":
        argv.pop(0)
    if not argv or argv[0].startswith("-"):
        argv.insert(0, "redis-server")
    if "--bind" in argv:
        argv[argv.index("--bind") + 1] = ctx.pod_ip
    else:
        argv += ["--bind", ctx.pod_ip]
    argv += ["--daemonize", "no"]


_LISTEN = re.compile(r"^(\s*)listen\s+([^;]+);", re.MULTILINE)


def nginx_conf_for_pod(conf: str, *, pod_ip: str, pid_file: Path) -> str:
    """The two rewrites nginx needs without a network namespace: listen address and pid file."""

    def listen(m: re.Match[str]) -> str:
        addr, *rest = m.group(2).split()
        if addr.startswith("["):  # IPv6 listens have no per-pod loopback twin here
            return f"{m.group(1)}# (local cluster) dropped: listen {m.group(2)};"
        port = addr.rsplit(":", 1)[-1]
        if ":" in addr and not addr.startswith(("*:", "0.0.0.0:")):
            return m.group(0)
        return f"{m.group(1)}listen {pod_ip}:{port}{' ' + ' '.join(rest) if rest else ''};"

    conf = _LISTEN.sub(listen, conf)
    if re.search(r"^\s*pid\s+[^;]+;", conf, re.MULTILINE):
        return re.sub(r"^(\s*)pid\s+[^;]+;", rf"\1pid {pid_file};", conf, count=1, flags=re.MULTILINE)
    return f"pid {pid_file};\n{conf}"


def _nginx(argv: list[str], ctx: LaunchContext, plan: LaunchPlan) -> None:
    if argv and argv[0] in ("/docker-entrypoint.sh", "docker-entrypoint.sh"):
        argv.pop(0)
    conf_path = argv[argv.index("-c") + 1] if "-c" in argv else "/etc/nginx/nginx.conf"
    conf = ctx.host_path(conf_path).read_text()
    ctx.override_file(
        conf_path, nginx_conf_for_pod(conf, pod_ip=ctx.pod_ip, pid_file=ctx.pod_dir / "nginx.pid")
    )
    plan.binds = ctx.binds
    argv[0] = "/usr/sbin/nginx"
    argv[1:1] = ["-e", "stderr"]


def _prometheus(argv: list[str], ctx: LaunchContext, plan: LaunchPlan) -> None:
    argv[0] = "/usr/bin/prometheus"
    flags = {a.split("=", 1)[0]: i for i, a in enumerate(argv) if a.startswith("--")}
    if "--web.listen-address" in flags:
        i = flags["--web.listen-address"]
        port = argv[i].rsplit(":", 1)[-1]
        argv[i] = f"--web.listen-address={ctx.pod_ip}:{port}"
    else:
        argv.append(f"--web.listen-address={ctx.pod_ip}:9090")
    conf_path = (
        argv[flags["--config.file"]].split("=", 1)[1]
        if "--config.file" in flags
        else "/etc/prometheus/prometheus.yml"
    )
    try:
        config = yaml.safe_load(ctx.host_path(conf_path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"prometheus config {conf_path} of pod {ctx.pod_name} is unreadable: {e}") from e
    translated, plan.prometheus_sd = promsd.translate(
        config, sd_dir=ctx.pod_dir / "sd", own_namespace=ctx.namespace
    )
    ctx.override_file(conf_path, yaml.safe_dump(translated, sort_keys=False))
    plan.binds = ctx.binds


IMAGES: dict[str, Image] = {
    "hftk8s/backend": Image((), ("python", "-m", "hft_platform.backend"), adapt=_python),
    "hftk8s/engine": Image((), ("python", "-m", "hft_platform.engine"), adapt=_python),
    "postgres": Image(("docker-entrypoint.sh",), ("postgres",), stop_signal=signal.SIGINT, adapt=_postgres),
    "redis": Image(("docker-entrypoint.sh",), ("redis-server",), workdir="/data", adapt=_redis),
    "nginx": Image(
        ("/docker-entrypoint.sh",), ("nginx", "-g", "daemon off;"), stop_signal=signal.SIGQUIT, adapt=_nginx
    ),
    "prom/prometheus": Image(
        ("/bin/prometheus",),
        ("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
        workdir="/prometheus",
        adapt=_prometheus,
    ),
}
#: Any other image runs its manifest ``command`` as given (``python`` -> this interpreter).
GENERIC = Image((), (), adapt=_python)


def repository(image: str) -> str:
    """``docker.io/library/nginx:1.22`` -> ``nginx``; ``prom/prometheus:v2.42.0`` -> ``prom/prometheus``."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    name = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    for prefix in ("docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name


def plan(container: ContainerSpec, ctx: LaunchContext, *, base_env: dict[str, str]) -> LaunchPlan:
    """The command line and environment for one start of ``container``."""
    image = IMAGES.get(repository(container.image), GENERIC)
    if container.command is not None:
        argv = [*container.command, *(container.args or ())]
    else:
        argv = [*image.entrypoint, *(container.args if container.args is not None else image.cmd)]
    if not argv:
        raise ConfigError(
            f"container {container.name}: image {container.image!r} has no local command mapping and the "
            f"manifest gives no command. Known images: {sorted(IMAGES)}."
        )
    argv = [ctx.translate(expand(a, ctx.env)) for a in argv]  # Kubernetes' $(VAR) in command/args
    env = {**base_env, "HOSTNAME": ctx.pod_name, **{k: ctx.translate(v) for k, v in ctx.env.items()}}
    workdir = container.working_dir or image.workdir
    cwd = ctx.host_path(workdir) if workdir else ctx.pod_dir
    cwd = Path(ctx.translate(str(cwd)))
    result = LaunchPlan(argv=argv, env=env, cwd=cwd, binds=ctx.binds, stop_signal=image.stop_signal)
    if image.adapt is not None:
        image.adapt(argv, ctx, result)
    if not cwd.is_dir():
        result.cwd = ctx.pod_dir
    return result
