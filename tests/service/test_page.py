"""The chart page in headless Chromium (Debian's `chromium`): it loads offline and shows a chart."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service.conftest import EVENT, NAIVE_KEY, UCM_KEY

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
    # Virtual time waits for the page's fetches and the chart's decode.
    "--virtual-time-budget=30000",
]


def _chromium(tmp_path, name: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{name}"
    return subprocess.run(
        ["chromium", *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _chart_pixels(path) -> tuple[float, float]:
    """Share of non-white pixels, and of coloured ones (the fan's bands and lines: the rest of
    the page is black, grey and white), in the screenshot."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    inked = (rgb.min(axis=-1) < 235).mean()
    coloured = (rgb.max(axis=-1) - rgb.min(axis=-1) > 30).mean()
    return float(inked), float(coloured)


@pytest.mark.parametrize(
    ("query", "caption"),
    [("", None), (f"?series={UCM_KEY}&event={EVENT}", "counterfactual")],
    ids=["forecast", "counterfactual"],
)
def test_page_shows_a_chart(server, tmp_path, query, caption):
    # Draw the charts first: virtual time does not always wait out a first matplotlib render.
    scenario = json.dumps({"remove": [{"event": EVENT}]})
    for path, params in (
        ("/v1/forecast.png", {"series": NAIVE_KEY, "h": 12}),
        ("/v1/counterfactual.png", {"series": UCM_KEY, "scenario": scenario}),
    ):
        assert httpx.get(f"{server.url}{path}", params=params, timeout=60).status_code == 200
    url = f"{server.url}/{query}"
    for attempt in range(3):
        dom = _chromium(tmp_path, f"dom{attempt}", "--dump-dom", url).stdout
        if 'data-chart="pending"' not in dom:
            break
    assert 'data-chart="loaded"' in dom, dom[-2000:]
    assert 'id="chart"' in dom and 'src="blob:' in dom
    if caption:
        assert f"without {EVENT}" in dom and "The effect (reference" in dom
    shot = tmp_path / "page.png"
    _chromium(tmp_path, "shot", f"--screenshot={shot}", url)
    inked, fan = _chart_pixels(shot)
    # The title, controls and links alone ink about 1 % of the window; a drawn chart adds 4 %
    # or more, depending on how wide its fan is.
    assert inked > 0.025, f"the page is nearly blank ({inked:.1%} inked)"
    assert fan > 0.003, f"no forecast fan in the screenshot ({fan:.2%} coloured)"
