"""Cluster DNS for the local backend: one hosts file and one resolv.conf, bind-mounted into every pod.

Its job: write ``/etc/hosts`` content the way kubelet plus cluster DNS would answer - each pod's own
name, StatefulSet pod names ``<pod>.<service>``, and every Service as ``<svc>``, ``<svc>.<ns>``,
``<svc>.<ns>.svc`` and ``<svc>.<ns>.svc.cluster.local`` mapped to its ready pod addresses (all of them,
like a headless Service). A ClusterIP Service with no ready pod still resolves (to its pods, which
refuse connections like a VIP without endpoints), so clients that resolve at start keep working. The
resolv.conf points at a loopback address of the cluster's own subnet, so no lookup ever leaves this
machine. The hosts file is rewritten
in place (same inode: it is bind-mounted) and never shrinks, so readers never see a missing file. It
must not start processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

#: No DNS server listens there: lookups missing from the hosts file fail at once, on loopback.
RESOLV_TEMPLATE = "nameserver {nameserver}\noptions timeout:1 attempts:1 ndots:1\n"
_BLOCK = 4096


def service_names(service: str, namespace: str) -> list[str]:
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def render_hosts(
    *,
    pods: Sequence[tuple[str, str, Sequence[str]]],
    services: Mapping[tuple[str, str], Sequence[str]],
) -> str:
    """``pods``: (pod name, ip, extra aliases); ``services``: (name, namespace) -> addresses."""
    lines = [
        "# Kubernetes-managed hosts file (hftk8s local cluster).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    lines += [f"{ip}\t{' '.join([name, *aliases])}" for name, ip, aliases in pods]
    for (svc, namespace), addresses in sorted(services.items()):
        lines += [f"{ip}\t{' '.join(service_names(svc, namespace))}" for ip in addresses]
    return "\n".join(lines) + "\n"


class ClusterDns:
    """The two files every container sees at /etc/hosts and /etc/resolv.conf."""

    def __init__(self, etc_dir: Path, *, nameserver: str = "127.0.0.1") -> None:
        """``nameserver``: a loopback address of this cluster's own subnet where nothing serves DNS."""
        etc_dir.mkdir(parents=True, exist_ok=True)
        self.hosts = etc_dir / "hosts"
        self.resolv = etc_dir / "resolv.conf"
        self.resolv.write_text(RESOLV_TEMPLATE.format(nameserver=nameserver))
        self.hosts.write_text(" " * _BLOCK)
        self._size = _BLOCK
        self._content = ""

    def write(self, content: str) -> bool:
        """Replace the hosts content in place; returns False when nothing changed."""
        if content == self._content:
            return False
        data = content.encode()
        size = max(self._size, -(-(len(data) + 2) // _BLOCK) * _BLOCK)
        padded = data + b"#" + b" " * (size - len(data) - 2) + b"\n"
        fd = os.open(self.hosts, os.O_WRONLY)
        try:
            os.pwrite(fd, padded, 0)
        finally:
            os.close(fd)
        self._size, self._content = size, content
        return True
