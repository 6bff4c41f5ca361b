"""Options, ini keys, environment fallbacks, markers, header and inertness, through pytester."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_hftk8s.options import OPTIONS


def test_help_lists_every_option_with_env_and_ini(pytester: pytest.Pytester, base_args: list[str]) -> None:
    result = pytester.runpytest(*base_args, "--help")
    out = " ".join(result.stdout.str().split())  # help text is wrapped to the terminal width
    assert "HFT platform on Kubernetes" in out
    for opt in OPTIONS:
        assert opt.flag in out
        assert f"env {opt.env}" in out
        assert f"{opt.dest} (string)" in out


def test_fixtures_are_documented_and_need_no_cluster(pytester: pytest.Pytester, base_args: list[str]) -> None:
    result = pytester.runpytest(*base_args, "--fixtures")
    assert result.ret == 0
    out = result.stdout.str()
    for name in ("hft_platform", "hft_cluster", "hft_load", "hft_prom", "hft_slo"):
        result.stdout.fnmatch_lines([f"{name} *-- *plugin.py*"])
    assert "deployed from the manifests once per session" in out


def test_configure_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest;"
        "rc = pytest.main(['--co', '-q', '-p', 'no:cacheprovider', '--hft-cluster=kind', '-W',"
        " 'ignore::pytest.PytestAssertRewriteWarning', '/nonexistent-dir-hft']);"
        "print([m for m in ('kubernetes', 'prometheus_api_client', 'numpy', 'uvloop', 'hdrh') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_markers_registered_for_strict_markers(pytester: pytest.Pytester, base_args: list[str]) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.hft_chaos("pod-kill")
        @pytest.mark.hft_load(rate=10)
        @pytest.mark.resilience
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest(*base_args, "--strict-markers")
    result.assert_outcomes(passed=1)
    markers = pytester.runpytest(*base_args, "--markers").stdout.str()
    for name in ("hft_slo", "hft_chaos", "hft_load", "resilience"):
        assert f"@pytest.mark.{name}" in markers


def test_inert_without_a_cluster(pytester: pytest.Pytester, base_args: list[str]) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_platform(hft_platform):
            raise AssertionError("must not run without a cluster")

        @pytest.mark.hft_slo("no_crashloopbackoff")
        def test_declares_slos():
            raise AssertionError("must not run without a cluster")

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest(*base_args, "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*needs a cluster: run with --hft-cluster=local*", "*declares SLOs*"])
    assert "hftk8s:" not in result.stdout.str()
    assert not (pytester.path / "hft-report").exists()


def test_header_shows_cluster_context_and_profile(pytester: pytest.Pytester, base_args: list[str]) -> None:
    result = pytester.runpytest(*base_args, "--hft-cluster=kind", "--hft-namespace=team-a")
    result.stdout.fnmatch_lines(["hftk8s: cluster=kind context=kind-kind profile=kind namespace=team-a *"])
    local = pytester.runpytest(*base_args, "--hft-cluster=local")
    local.stdout.fnmatch_lines(["hftk8s: cluster=local context=embedded one-node cluster profile=local *"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hft-cluster=local", "--hft-namespace=Bad_NS"], "*--hft-namespace: expected a DNS-1123 label*"),
        (["--hft-cluster=local", "--hft-gate-timeout=-3"], "*expected a number of seconds > 0*"),
        (
            ["--hft-cluster=local", "--hft-backoff-scale=2"],
            "*--hft-backoff-scale: expected a number in (0, 1]*",
        ),
        (["--hft-cluster=local", "--hft-prometheus-url=prom:9090"], "*expected http(s)://host:port*"),
        (["--hft-profile=local"], "*--hft-profile only make sense with a cluster*"),
        (["--hft-keep"], "*--hft-keep only make sense with a cluster*"),
        (["--hft-cluster=kind", "--hft-backoff-scale=0.1"], "*applies to the embedded local cluster only*"),
        (["--hft-cluster=local", "--hft-slo-file=missing.yml"], "*expected an existing YAML file*"),
    ],
)
def test_bad_values_and_combinations_are_usage_errors(
    pytester: pytest.Pytester, base_args: list[str], args: list[str], message: str
) -> None:
    result = pytester.runpytest(*base_args, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_slo_file_is_a_usage_error(pytester: pytest.Pytester, base_args: list[str]) -> None:
    pytester.path.joinpath("slos.yml").write_text("- expr: rate(up[5m]\n  description: a typo\n")
    result = pytester.runpytest(*base_args, "--hft-cluster=local", "--hft-slo-file=slos.yml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--hft-slo-file:*entry 1: expr 'rate(up*: the expression is not valid PromQL: unclosed left parenthesis*"
        ]
    )


def test_precedence_flag_over_env_over_ini(
    pytester: pytest.Pytester, base_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nhft_cluster = kind\nhft_namespace = from-ini\n")
    pytester.runpytest(*base_args).stdout.fnmatch_lines(["hftk8s: cluster=kind * namespace=from-ini *"])
    monkeypatch.setenv("HFT_NAMESPACE", "from-env")
    pytester.runpytest(*base_args).stdout.fnmatch_lines(["hftk8s: cluster=kind * namespace=from-env *"])
    flagged = pytester.runpytest(*base_args, "--hft-namespace=from-flag")
    flagged.stdout.fnmatch_lines(["hftk8s: cluster=kind * namespace=from-flag *"])


def test_bad_env_value_names_its_source(
    pytester: pytest.Pytester, base_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFT_CLUSTER", "local")
    monkeypatch.setenv("HFT_LOAD_TIMEOUT", "soon")
    result = pytester.runpytest(*base_args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environment variable HFT_LOAD_TIMEOUT: expected a number of seconds*"])


def test_allow_context_is_repeatable_with_env_fallback(
    pytester: pytest.Pytester, base_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        """
def pytest_configure(config):
    from pytest_hftk8s.options import settings_from
    s = settings_from(config)
    print("ALLOW", ",".join(s.allow_context), "DRY", s.chaos_dry_run)
"""
    )
    flags = pytester.runpytest_subprocess(
        *base_args, "-s", "--hft-allow-context=a", "--hft-allow-context=b", "--hft-chaos-dry-run"
    )
    flags.stdout.fnmatch_lines(["*ALLOW a,b DRY True*"])
    monkeypatch.setenv("HFT_ALLOW_CONTEXT", "x, y")
    env = pytester.runpytest_subprocess(*base_args, "-s")
    env.stdout.fnmatch_lines(["*ALLOW x,y DRY False*"])
