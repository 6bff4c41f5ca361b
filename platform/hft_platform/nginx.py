"""Renders the nginx configuration from ``platform/nginx/nginx.conf.template`` for N backends.

A pure function of its arguments (plus reading the template file); it starts nothing.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Sequence

TEMPLATE_PATH = pathlib.Path(__file__).resolve().parents[1] / "nginx" / "nginx.conf.template"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class TemplateError(ValueError):
    """The template and the values given do not match."""


def render_nginx_conf(
    *,
    backends: Sequence[str],
    listen: str = "8080",
    keepalive: int = 64,
    worker_processes: int | str = 1,
    pid_path: str = "/tmp/nginx.pid",
    error_log: str = "/dev/stderr",
    temp_dir: str = "/tmp",
    main_extra: str = "",
    max_body: str = "4k",
    connect_timeout: str = "2s",
    io_timeout: str = "15s",
    template: str | None = None,
) -> str:
    """The config text; ``backends`` are ``host:port`` strings, one upstream ``server`` line each."""
    if not backends:
        raise TemplateError("expected at least one backend host:port, saw none")
    text = TEMPLATE_PATH.read_text() if template is None else template
    values = {
        "upstream_servers": "\n".join(f"        server {b} max_fails=0;" for b in backends),
        "listen": listen,
        "keepalive": str(keepalive),
        "worker_processes": str(worker_processes),
        "pid_path": pid_path,
        "error_log": error_log,
        "temp_dir": temp_dir,
        "main_extra": main_extra,
        "max_body": max_body,
        "connect_timeout": connect_timeout,
        "io_timeout": io_timeout,
    }
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise TemplateError(f"expected values for every placeholder, missing {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def kubernetes_conf() -> str:
    """The config for the Kubernetes manifests: one Service name as the only upstream server."""
    return render_nginx_conf(backends=["backend:8000"], listen="80", worker_processes="auto")
