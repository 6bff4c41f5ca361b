"""The report in a real browser: headless Chromium (Debian's ``chromium``) loads index.html from the
file system, every image decodes, the page logs no errors, and a screenshot is saved beside it."""

from __future__ import annotations

import pathlib
import struct

import headless_chromium
import pytest


@pytest.mark.skipif(
    headless_chromium.find_chromium() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_the_report_opens_in_headless_chromium(nine_test_report: pathlib.Path) -> None:
    check = headless_chromium.check_page(nine_test_report, timeout=60)
    assert check.images == 27
    assert check.images_loaded, check.broken_images
    assert check.broken_images == []
    assert all(w > 0 and h > 0 for w, h in check.svg_sizes), check.svg_sizes
    assert check.console_errors == []
    # Every in-page link lands on an element the browser knows.
    assert check.anchors
    assert set(check.anchors) <= set(check.ids)
    shot = check.screenshot
    assert shot == nine_test_report.parent / "screenshot.png"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000
    assert height > 5000  # the whole page, not one viewport
    assert len(data) > 200_000  # plots and tables, not a blank page


def test_a_broken_image_and_a_console_error_are_caught(tmp_path: pathlib.Path) -> None:
    """The checker itself: a page with a broken image and a failing script fails it."""
    if headless_chromium.find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = tmp_path / "index.html"
    page.write_text(
        "<!doctype html><html><body><h1>x</h1>"
        "<img alt='broken' src='data:image/svg+xml;base64,bm90IGFuIGltYWdl'>"
        "<script>console.error('boom'); undefined_function();</script></body></html>"
    )
    check = headless_chromium.check_page(page, timeout=60)
    assert check.images == 1
    assert not check.images_loaded
    assert check.broken_images == ["broken"]
    assert any("boom" in e for e in check.console_errors)
    assert any("undefined_function" in e for e in check.console_errors)
    assert check.screenshot is not None
    assert check.screenshot.exists()
