"""summary.html in a real browser: headless Chromium, driven over the DevTools protocol.

The report must load from a file with no server: every image decoded, nothing on the console
at error level, and no sideways scroll at 1400 px (a wide table scrolls inside its own box).
Screenshots of the whole page, of its opening sections and of each figure go to a folder the
test prints, and also to $NNLADDER_SCREENSHOTS when it is set, to be looked at. Skipped, with
the reason, where Chromium (Debian's chromium package) or the websocket-client package is
missing. `python -m tests.test_browser PAGE.html DIR` screenshots any page the same way.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from harness.report import summary as report
from harness.results import ceilings
from tests.report_tables import CEILINGS, synthetic

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)"
)
websocket = pytest.importorskip(
    "websocket", reason="websocket-client is not installed (pip install -e .[dev])"
)
WIDTH, HEIGHT = 1400, 1000  # the viewport a reader on a laptop has
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    f"--window-size={WIDTH},{HEIGHT}",
]
# The parts of the page shot one by one: its sections by id, each figure by its title.
PARTS = (
    "Array.from(document.querySelectorAll('section[id], figure')).map(e => {"
    " const r = e.getBoundingClientRect();"
    " const name = e.id || e.querySelector('figcaption b').textContent;"
    " return [name, r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })"
)


class Browser:
    """One headless Chromium with a fresh profile, and a DevTools session on its page."""

    def __init__(self, profile: Path):
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", returnByValue=True, expression=expression)["result"][
            "value"
        ]

    def wait_for(self, event: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout_s} s")
            self.events.append(json.loads(self.ws.recv()))

    def shoot(self, path: Path, x: float, y: float, width: float, height: float) -> None:
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": x, "y": y, "width": width, "height": height, "scale": 1},
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self):
        if hasattr(self, "ws"):
            self.ws.close()
        self.proc.kill()
        self.proc.wait()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]


def inspect(html_path: Path, profile: Path, shots: Path | None = None) -> dict:
    """Open a file at 1400 px -> {"images": [(complete, naturalWidth)], "errors": [console
    errors], "width": (scrollWidth, clientWidth), "shots": [paths]}; with `shots`, the page
    and each of its parts are saved there as PNGs."""
    browser = Browser(profile)
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable")
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.call("Page.navigate", url=html_path.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        images = browser.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
        )
        width = browser.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        saved = []
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            size = browser.call("Page.getLayoutMetrics")["cssContentSize"]
            parts = [("page", 0, 0, size["width"], size["height"])] + browser.evaluate(PARTS)
            for i, (name, *box) in enumerate(parts):
                saved.append(shots / f"{i:02d}-{slug(name)}.png")
                browser.shoot(saved[-1], *box)
        errors = [
            e
            for e in browser.events
            if (
                e.get("method") == "Runtime.consoleAPICalled"
                and e["params"]["type"] in ("error", "assert")
            )
            or e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]
        return {
            "images": [tuple(i) for i in images],
            "errors": errors,
            "width": tuple(width),
            "shots": saved,
        }
    finally:
        browser.close()


def test_the_checker_sees_broken_images_console_errors_and_overflow(tmp_path):
    """The checks can fail: a broken image, a console error and a page too wide are caught."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!doctype html><html><body><img src="data:image/png;base64,AAAA">'
        '<div style="width: 2000px">wide</div>'
        '<script>console.error("deliberate")</script></body></html>'
    )
    seen = inspect(page, tmp_path / "profile")
    assert seen["images"] == [(True, 0)]
    assert len(seen["errors"]) == 1
    assert seen["width"][0] > seen["width"][1]


def test_summary_loads_every_image_fits_1400_px_and_is_shot(tmp_path):
    ceilings.write(CEILINGS, tmp_path)
    out = report.render(synthetic(), tmp_path / "summary.html", tmp_path)
    seen = inspect(out, tmp_path / "profile", tmp_path / "shots")
    print(f"screenshots: {tmp_path / 'shots'}")
    assert len(seen["images"]) == 6 + 4  # six figures of the cells, four of training
    assert all(complete and width > 0 for complete, width in seen["images"]), seen["images"]
    assert seen["errors"] == []
    scroll_width, client_width = seen["width"]
    assert scroll_width <= client_width  # no sideways scroll
    assert WIDTH - 20 <= client_width <= WIDTH  # the viewport, less a vertical scroll bar
    names = [p.name for p in seen["shots"]]
    assert names[:4] == ["00-page.png", "01-glance.png", "02-statuses.png", "03-headline.png"]
    assert len(names) == 4 + 10 and all(p.stat().st_size > 2_000 for p in seen["shots"])
    if os.environ.get("NNLADDER_SCREENSHOTS"):
        folder = Path(os.environ["NNLADDER_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        for shot in seen["shots"]:
            shutil.copy(shot, folder / shot.name)
        print(f"screenshots copied to {folder}")


if __name__ == "__main__":  # python -m tests.test_browser PAGE.html DIR
    # chromium may still be writing to its profile as it exits: what it leaves is no error
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        found = inspect(Path(sys.argv[1]), Path(profile), Path(sys.argv[2]))
    print(json.dumps({k: found[k] for k in ("width", "errors")}), *found["shots"], sep="\n")
