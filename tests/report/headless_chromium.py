"""Open a report in headless Chromium through the DevTools protocol: do its images load, does the page
log errors, and what does it look like (a full-page screenshot).

Test tooling, not plugin code. Also a script, for a real report::

    python3 tests/report/headless_chromium.py hft-report/index.html   # writes hft-report/screenshot.png

Chromium (Debian's ``chromium``) runs in its own process group with a throw-away profile and
``--remote-debugging-port=0``; the port comes from ``DevToolsActivePort`` in the profile. Every wait
is bounded, and the process group is killed in a ``finally``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import websocket

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
MAX_SCREENSHOT_HEIGHT = 16000  # px; a taller page is captured whole at a smaller scale

IMAGES = """(() => {
  const imgs = Array.from(document.images);
  return {
    count: imgs.length,
    loaded: imgs.every(i => i.complete && i.naturalWidth > 0),
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 80)),
    svgs: Array.from(document.querySelectorAll('svg')).map(s => {
      const r = s.getBoundingClientRect(); return [r.width, r.height];
    }),
    anchors: Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href').slice(1)),
    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
    height: document.documentElement.scrollHeight,
    width: document.documentElement.scrollWidth,
  };
})()"""


@dataclass
class PageCheck:
    """What Chromium saw of one page."""

    images: int = 0
    images_loaded: bool = False
    broken_images: list[str] = field(default_factory=list)
    svg_sizes: list[tuple[float, float]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    screenshot: pathlib.Path | None = None
    seconds: float = 0.0


def find_chromium() -> str | None:
    return next((p for p in (shutil.which(c) for c in CANDIDATES) if p), None)


class _DevTools:
    """A minimal CDP client over one page's websocket: commands by id, events kept as they arrive."""

    def __init__(self, url: str, timeout: float) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, deadline: float, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = self._receive(deadline)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def wait_for(self, event: str, deadline: float) -> dict[str, Any]:
        for seen in self.events:
            if seen.get("method") == event:
                return seen
        while True:
            message = self._receive(deadline)
            if message.get("method") == event:
                return message

    def _receive(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("Chromium did not answer in time")
        self.ws.settimeout(remaining)
        message = json.loads(self.ws.recv())
        if "method" in message:
            self.events.append(message)
        return dict(message)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            out.append(
                "console.error: "
                + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
            )
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            out.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            out.append(
                "exception: " + str(details.get("exception", {}).get("description") or details.get("text"))
            )
    return out


def _port(profile: pathlib.Path, proc: subprocess.Popen[bytes], deadline: float) -> int:
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before it listened")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            lines = marker.read_text().splitlines()
            if lines and lines[0].strip():
                return int(lines[0])
        time.sleep(0.05)
    raise TimeoutError("chromium wrote no DevToolsActivePort in time")


def _page_socket(port: int, deadline: float) -> str:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                targets = json.loads(answer.read())
            page = next((t for t in targets if t.get("type") == "page" and "webSocketDebuggerUrl" in t), None)
            if page:
                return str(page["webSocketDebuggerUrl"])
        time.sleep(0.1)
    raise TimeoutError("chromium listed no page target in time")


def check_page(index: pathlib.Path, screenshot: pathlib.Path | None = None, *, timeout: float = 60.0,
               chromium: str | None = None) -> PageCheck:  # fmt: skip
    """Load ``index`` (a file) in headless Chromium; report images, inline SVG sizes, console errors,
    the page's anchors and ids; save a full-page PNG to ``screenshot`` (default: beside the page)."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed")
    started = time.monotonic()
    deadline = started + timeout
    screenshot = screenshot or index.parent / "screenshot.png"
    result = PageCheck()
    with tempfile.TemporaryDirectory(prefix="hft-chromium-") as profile_dir:
        profile = pathlib.Path(profile_dir)
        proc = subprocess.Popen(
            [binary, "--headless=new", "--disable-gpu", "--no-sandbox", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--hide-scrollbars", "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        cdp: _DevTools | None = None
        try:
            port = _port(profile, proc, deadline)
            cdp = _DevTools(_page_socket(port, deadline), timeout=max(1.0, deadline - time.monotonic()))
            for domain in ("Page", "Runtime", "Log"):
                cdp.call(f"{domain}.enable", deadline)
            cdp.call("Page.navigate", deadline, url=index.resolve().as_uri())
            cdp.wait_for("Page.loadEventFired", deadline)
            seen = cdp.call("Runtime.evaluate", deadline, expression=IMAGES, returnByValue=True)
            value = seen.get("result", {}).get("value") or {}
            result.images = int(value.get("count", 0))
            result.images_loaded = bool(value.get("loaded"))
            result.broken_images = list(value.get("broken", []))
            result.svg_sizes = [(float(w), float(h)) for w, h in value.get("svgs", [])]
            result.anchors = list(value.get("anchors", []))
            result.ids = list(value.get("ids", []))
            width = max(1, int(value.get("width", 1280)))
            height = max(1, int(value.get("height", 900)))
            scale = min(1.0, MAX_SCREENSHOT_HEIGHT / height)  # a very long page: all of it, smaller
            shot = cdp.call("Page.captureScreenshot", deadline, format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": scale})  # fmt: skip
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result.screenshot = screenshot
            with contextlib.suppress(TimeoutError, websocket.WebSocketTimeoutException):
                cdp.call(
                    "Runtime.evaluate", min(deadline, time.monotonic() + 1.0), expression="0"
                )  # drain late events
            result.console_errors = _errors(cdp.events)
        finally:
            if cdp is not None:
                cdp.close()
            _kill(proc)
    result.seconds = time.monotonic() - started
    return result


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Chromium and its helpers (renderer, zygote, GPU) are one process group: end it whole."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # helpers that outlived their parent


def main(argv: list[str]) -> int:
    index = pathlib.Path(argv[0] if argv else "hft-report/index.html")
    check = check_page(index)
    print(f"{index}: {check.images} images, all loaded: {check.images_loaded}; broken: {check.broken_images}")
    print(
        f"console errors: {check.console_errors or 'none'}; screenshot: {check.screenshot} ({check.seconds:.1f} s)"
    )
    return 0 if check.images_loaded and not check.console_errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
