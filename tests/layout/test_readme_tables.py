"""The READMEs' benchmark tables are what bench/readme_tables.py renders from bench/results/*.json.

The real READMEs are only read here. The tests that show the check can fail work on a copy of
the READMEs and bench/ in tmp_path.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "readme_tables.py"
READMES = ("README.md", "platform/README.md")


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    assert spec is not None, f"expected the script at {SCRIPT}"
    assert spec.loader is not None, f"expected the script at {SCRIPT}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


tables = _load_script()


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of what the script reads (the two READMEs and bench/), to alter without touching the repo."""
    for rel in READMES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    assert tables.stale(tmp_path) == [], (
        "the unaltered copy must check clean, or the tests below prove nothing"
    )
    return tmp_path


def test_readme_tables_match_the_results() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, (
        "the benchmark tables in the READMEs differ from bench/results/*.json:\n"
        f"{out.stdout}{out.stderr}\n"
        "run `python bench/readme_tables.py` and commit the README changes it makes"
    )


def test_check_reports_a_readme_number_edited_by_hand(
    tree: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {rel: (ROOT / rel).read_bytes() for rel in READMES}
    readme = tree / "README.md"
    text = readme.read_text()
    engine = json.loads((ROOT / "bench" / "results" / "engine.json").read_text())
    shown = tables.rate(engine["native_mixed_ops_per_s"], "ops/s")
    edited = tables.rate(engine["native_mixed_ops_per_s"] + 100_000, "ops/s")
    assert f"| {shown} |" in text, f"expected the engine's {shown} row in the README table"
    readme.write_text(text.replace(f"| {shown} |", f"| {edited} |"))

    assert tables.main(["--check", "--root", str(tree)]) == 1
    err = capsys.readouterr().err
    assert "README.md: its benchmark table differs" in err, f"expected README.md reported stale, got: {err}"
    assert "platform/README.md" not in err, f"platform/README.md was not altered but was reported: {err}"
    assert "python bench/readme_tables.py" in err, f"the message must say how to fix it, got: {err}"
    assert f"-| matching engine, native C++, mixed order stream | {edited} |" in err, (
        f"seen value missing: {err}"
    )
    assert f"+| matching engine, native C++, mixed order stream | {shown} |" in err, (
        f"expected missing: {err}"
    )
    assert {rel: (ROOT / rel).read_bytes() for rel in READMES} == before, "the real READMEs must not change"


def test_a_new_result_makes_the_readme_stale_and_the_script_rewrites_it(
    tree: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tree / "bench" / "results" / "engine.json"
    data = json.loads(results.read_text())
    old_p99 = tables.ns(data["native_p99_ns"])
    data["native_p99_ns"] = 455.0 if old_p99 != "455 ns" else 456.0
    results.write_text(json.dumps(data, indent=2) + "\n")
    readme = tree / "README.md"
    old = readme.read_text()

    assert tables.stale(tree) == ["README.md"], "engine.json feeds README.md only"
    assert tables.main(["--root", str(tree)]) == 0
    new = readme.read_text()
    p50, p99 = tables.ns(data["native_p50_ns"]), tables.ns(data["native_p99_ns"])
    assert f"{p50} / {p99} /" in new, "the rewritten table must quote the new p99"
    assert f"{p50} / {old_p99} /" not in new, "the old p99 must be gone from the rewritten table"
    outside = [t.split(tables.BEGIN)[0] + t.split(tables.END)[1] for t in (old, new)]
    assert outside[0] == outside[1], "text outside the bench markers must be left as it was"
    capsys.readouterr()
    assert tables.main(["--check", "--root", str(tree)]) == 0, capsys.readouterr().err


def test_missing_markers_are_an_error_not_a_silent_pass(
    tree: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tree / "platform" / "README.md"
    readme.write_text(readme.read_text().replace(tables.END, ""))
    assert tables.main(["--check", "--root", str(tree)]) == 1
    err = capsys.readouterr().err
    assert "platform/README.md: expected one <!-- bench:begin -->" in err, f"got: {err}"


def test_a_missing_figure_names_the_file_and_the_key(tree: pathlib.Path) -> None:
    results = tree / "bench" / "results" / "platform.json"
    data = json.loads(results.read_text())
    del data["p99_ms"]
    results.write_text(json.dumps(data))
    with pytest.raises(tables.ReadmeTablesError, match=r"platform\.json has no 'p99_ms'"):
        tables.stale(tree)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (tables.rate(15178341, "ops/s"), "15.2M ops/s"),
        (tables.rate(3850.1, "orders/s"), "3,850 orders/s"),
        (tables.ns(410.0), "410 ns"),
        (tables.ns(51.5), "51.5 ns"),
        (tables.ms(14.69), "14.7 ms"),
        (tables.ratio(0.889), "0.89"),
        (tables.ratio(0.8), "0.80"),
        (tables.percent(0.846), "85%"),
        (tables.percent(0.125), "13%"),  # the JSON's decimal half, rounded up as a reader would
        (tables.cores(0.864), "0.86"),
        (tables.count(339264), "339,264"),
    ],
)
def test_numbers_are_formatted_for_reading(text: str, expected: str) -> None:
    assert text == expected
