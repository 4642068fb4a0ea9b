"""The chart page in headless Chromium (Debian's `chromium`): it loads offline and shows a chart.

The browser is driven over the DevTools protocol in real time: the test waits until the page's
script marks the chart loaded (or failed), then reads the DOM and a screenshot of that same page.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect

from tests.processes import stop_group
from tests.service.conftest import EVENT, UCM_KEY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="headless Chromium not installed: apt-get install -y chromium",
    ),
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1100,950",
    "--remote-debugging-port=0",
]
LISTENING = re.compile(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/")


class Page:
    """A Chromium tab's DevTools connection."""

    def __init__(self, ws):
        self.ws = ws
        self.calls = 0

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.ws.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.calls:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for_chart(self, timeout: float = 90) -> str | None:
        """The page's chart state once it is no longer pending (or at the deadline)."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.evaluate("document.body.dataset.chart")
            if state not in (None, "pending"):
                break
            time.sleep(0.2)
        return state

    def screenshot(self) -> Image.Image:
        shot = self.call("Page.captureScreenshot", format="png")["data"]
        return Image.open(io.BytesIO(base64.b64decode(shot)))


def _devtools_port(proc: subprocess.Popen, log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := LISTENING.search(log.read_text()):
            return found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"Chromium gave no DevTools port:\n{log.read_text()[-2000:]}")


def _tab(port: str, url: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        tabs = [t for t in listed if t.get("type") == "page" and t["url"].startswith(url)]
        if tabs:
            return tabs[0]
        time.sleep(0.1)
    raise RuntimeError(f"Chromium did not open {url}")


@contextmanager
def open_page(
    tmp_path: Path, url: str, timeout: float = 60, flags: tuple[str, ...] = ()
) -> Iterator[Page]:
    """Chromium (its own process group, stopped whole) showing `url`, with extra ``flags``."""
    log = tmp_path / "chromium.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            ["chromium", *FLAGS, *flags, f"--user-data-dir={tmp_path / 'profile'}", url],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        tab = _tab(_devtools_port(proc, log, timeout), url, timeout)
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout) as ws:
            yield Page(ws)
    finally:
        stop_group(proc)


def _chart_pixels(image: Image.Image) -> tuple[float, float]:
    """Share of non-white pixels, and of coloured ones (the fan's bands and lines: the rest of
    the page is black, grey and white), in the screenshot."""
    rgb = np.asarray(image.convert("RGB")).astype(int)
    inked = (rgb.min(axis=-1) < 235).mean()
    coloured = (rgb.max(axis=-1) - rgb.min(axis=-1) > 30).mean()
    return float(inked), float(coloured)


@pytest.mark.parametrize(
    ("query", "caption"),
    [("", None), (f"?series={UCM_KEY}&event={EVENT}", "counterfactual")],
    ids=["forecast", "counterfactual"],
)
def test_page_shows_a_chart(server, tmp_path, query, caption):
    with open_page(tmp_path, f"{server.url}/{query}") as page:
        state = page.wait_for_chart()
        dom = page.evaluate("document.documentElement.outerHTML")
        assert state == "loaded", f"chart {state}: {dom[-2000:]}"
        assert 'id="chart"' in dom and 'src="blob:' in dom
        if caption:
            assert f"without {EVENT}" in dom and "The effect (reference" in dom
        inked, fan = _chart_pixels(page.screenshot())
    # The title, controls and links alone ink about 1 % of the window; a drawn chart adds 4 %
    # or more, depending on how wide its fan is.
    assert inked > 0.025, f"the page is nearly blank ({inked:.1%} inked)"
    assert fan > 0.003, f"no forecast fan in the screenshot ({fan:.2%} coloured)"
