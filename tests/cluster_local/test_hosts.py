"""Cluster DNS files: Service and pod names, loopback-only resolver, in-place rewrites."""

from __future__ import annotations

from pathlib import Path

from pytest_hftk8s.cluster.local.hosts import ClusterDns, render_hosts


def test_hosts_lists_every_service_spelling_per_address() -> None:
    text = render_hosts(
        pods=[("postgres-0", "127.0.9.6", ["postgres-0.postgres"])],
        services={("backend", "hft"): ["127.0.9.2", "127.0.9.3"]},
    )
    lines = [line.split() for line in text.splitlines() if not line.startswith("#")]
    assert ["127.0.9.6", "postgres-0", "postgres-0.postgres"] in lines
    for ip in ("127.0.9.2", "127.0.9.3"):
        assert [ip, "backend", "backend.hft", "backend.hft.svc", "backend.hft.svc.cluster.local"] in lines


def test_rewrites_keep_the_inode_and_never_shrink(tmp_path: Path) -> None:
    dns = ClusterDns(tmp_path)
    inode = dns.hosts.stat().st_ino
    long = render_hosts(pods=[(f"p{i}", f"127.0.9.{i}", []) for i in range(2, 200)], services={})
    assert dns.write(long)
    size = dns.hosts.stat().st_size
    assert size >= len(long)
    assert dns.write("127.0.0.1\tlocalhost\n")
    assert dns.hosts.stat().st_ino == inode  # bind mounts keep seeing the same file
    assert dns.hosts.stat().st_size == size
    content = dns.hosts.read_text()
    assert content.startswith("127.0.0.1\tlocalhost\n")
    assert "p5" not in content
    assert not dns.write("127.0.0.1\tlocalhost\n")  # unchanged: no write


def test_resolver_never_leaves_loopback(tmp_path: Path) -> None:
    dns = ClusterDns(tmp_path)
    servers = [
        line.split()[1] for line in dns.resolv.read_text().splitlines() if line.startswith("nameserver")
    ]
    assert servers
    assert all(s.startswith("127.") for s in servers)
