"""summary.html in a real browser: headless Chromium, driven over the DevTools protocol.

The report must load from a file with no server: every image decoded, nothing on the console
at error level. A screenshot of the whole page is kept as reports/browser-summary.png.
Skipped, with the reason, where Chromium (Debian's chromium package) or the websocket-client
package is missing.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness.report import summary as report
from harness.results import ceilings
from harness.results.machine import ROOT
from tests.test_report import CEILINGS, table_of_every_status

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no chromium on PATH (apt-get install chromium)")
websocket = pytest.importorskip("websocket", reason="websocket-client is not installed "
                                                    "(pip install -e .[dev])")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1400,1000"]


class Browser:
    """One headless Chromium with a fresh profile, and a DevTools session on its page."""

    def __init__(self, profile: Path):
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                      "about:blank"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"  # port 0: Chromium picks and writes it
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port within 60 s")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as reply:
            page = next(t for t in json.load(reply) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id, self.events = 0, []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout_s} s")
            self.events.append(json.loads(self.ws.recv()))

    def close(self):
        if hasattr(self, "ws"):
            self.ws.close()
        self.proc.kill()
        self.proc.wait()


def inspect(html_path: Path, profile: Path, screenshot: Path | None = None) -> dict:
    """Open a file -> {"images": [(complete, naturalWidth)], "errors": [console errors]}."""
    browser = Browser(profile)
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable")
        browser.call("Page.navigate", url=html_path.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        images = browser.call("Runtime.evaluate", returnByValue=True, expression=(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth])"))
        if screenshot:
            size = browser.call("Page.getLayoutMetrics")["cssContentSize"]
            shot = browser.call("Page.captureScreenshot", format="png",
                                captureBeyondViewport=True,
                                clip={"x": 0, "y": 0, "width": size["width"],
                                      "height": size["height"], "scale": 1})
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors = [e for e in browser.events if
                  (e.get("method") == "Runtime.consoleAPICalled"
                   and e["params"]["type"] in ("error", "assert"))
                  or e.get("method") == "Runtime.exceptionThrown"
                  or (e.get("method") == "Log.entryAdded"
                      and e["params"]["entry"]["level"] == "error")]
        return {"images": [tuple(i) for i in images["result"]["value"]], "errors": errors}
    finally:
        browser.close()


def test_the_checker_sees_broken_images_and_console_errors(tmp_path):
    """The checks can fail: a page with a broken image and a console error is caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><body><img src="data:image/png;base64,AAAA">'
                    '<script>console.error("deliberate")</script></body></html>')
    seen = inspect(page, tmp_path / "profile")
    assert seen["images"] == [(True, 0)]
    assert len(seen["errors"]) == 1


def test_summary_loads_every_image_without_console_errors(tmp_path):
    ceilings.write(CEILINGS, tmp_path)
    table = table_of_every_status()
    out = report.render(table, tmp_path / "summary.html", tmp_path)
    shot = ROOT / "reports" / "browser-summary.png"
    seen = inspect(out, tmp_path / "profile", screenshot=shot)
    assert len(seen["images"]) == 6
    assert all(complete and width > 0 for complete, width in seen["images"]), seen["images"]
    assert seen["errors"] == []
    assert shot.stat().st_size > 10_000
