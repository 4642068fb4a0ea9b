"""The chart page in headless Chromium (Debian's `chromium`): every panel loads, hover shows the
API's figures, a scenario change redraws.

The browser is driven over the DevTools protocol in real time: the test waits until the page's
script marks each panel loaded (or failed), moves the mouse with real input events, reads the DOM
and keeps a screenshot of that same page in the test's tmp_path (and, with
ENCOUNTERS_README_SCREENSHOTS=1, in docs/page.png for the README).
"""

from __future__ import annotations

import base64
import io
import json
import os
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
from tests.service.conftest import EVENT, NAIVE_KEY, UCM_KEY
from tests.stack import ROOT

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
README_SHOT = ROOT / "docs" / "page.png"
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


PANELS = {
    "forecast": "$('forecast-panel').dataset.state",
    "counterfactual": "$('cf-panel').dataset.state",
    "decomposition": "$('dec-panel').dataset.state",
    "sensitivity": "$('sens-table').dataset.state",
}


def _wait_for(page: Page, expression: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never true: {expression}\n{page.evaluate('document.body.innerText')}")


def _panels(page: Page) -> dict:
    return page.evaluate("({" + ", ".join(f"{k}: {v}" for k, v in PANELS.items()) + "})")


def _settled(page: Page) -> dict:
    states = _wait_for(
        page,
        f"(() => {{ const s = ({{{', '.join(f'{k}: {v}' for k, v in PANELS.items())}}}); "
        "return Object.values(s).every((v) => v && v !== 'pending') ? s : null; })()",
    )
    return states


def _set_and_wait(page: Page, field: str, value: str) -> None:
    """Sets a counterfactual form field as a user would (a change event) and waits for the
    panel's new answer."""
    page.evaluate(
        f"(() => {{ $('cf-panel').dataset.method = ''; $('{field}').value = '{value}';"
        f" $('{field}').dispatchEvent(new Event('change', {{bubbles: true}})); }})()"
    )
    _wait_for(
        page,
        "$('cf-panel').dataset.state === 'loaded' && $('cf-panel').dataset.method !== ''",
    )


def _hover(page: Page, chart: str, ds: str) -> str:
    """Moves the mouse (a real input event) over month ``ds`` of a uPlot chart; the tip's text."""
    x, y = page.evaluate(
        f"(() => {{ const u = state.charts['{chart}']; const r = u.over.getBoundingClientRect();"
        f" return [r.left + u.valToPos(toX('{ds}'), 'x'), r.top + r.height / 2]; }})()"
    )
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    time.sleep(0.2)
    return page.evaluate(
        f"[...$('{chart}').nextElementSibling.children].map((s) => s.innerText).join(' | ')"
    )


def _tip_value(text: str, label: str) -> float:
    found = re.search(rf"(?:^| \| ){label} (-?[\d,]+)", text)
    assert found, f"no {label} in {text!r}"
    return float(found.group(1).replace(",", ""))


def _csv(page: Page, link: str) -> list[str]:
    """The text of a CSV link's blob, as the browser would save it."""
    page.evaluate(
        f"fetch($('{link}').href).then((r) => r.text()).then((t) => {{ window._csv = t; }})"
    )
    return _wait_for(page, "window._csv").strip().splitlines()


def test_every_panel_loads_and_hover_shows_the_api_values(server, api, tmp_path):
    """The forecast fan, counterfactual, decomposition and sensitivity panels of a series whose
    model answers them all; hover text equals the API's figures; a scenario change redraws."""
    with open_page(tmp_path, f"{server.url}/?series={UCM_KEY}&event={EVENT}") as page:
        states = _settled(page)
        assert set(states.values()) == {"loaded"}, (states, page.evaluate("$('message').innerText"))
        levels = page.evaluate("state.levels")
        forecast = api.get(
            "/v1/forecast", params={"series": UCM_KEY, "h": 12, "level": levels}
        ).json()

        # Hover over a forecast month: month, mean and bounds as the API gives them.
        row = next(r for r in forecast["rows"] if r["kind"] == "forecast")
        text = _hover(page, "fan", row["ds"][:7])
        assert row["ds"][:7] in text and "forecast" in text
        assert _tip_value(text, "mean") == round(row["mean"])
        top = max(levels)
        bounds = next(i for i in row["intervals"] if i["level"] == top)
        assert f"{top} % {round(bounds['lo']):,} – {round(bounds['hi']):,}" in text
        # Over an observed month the observed figure, and over an event's month its name.
        history = api.get(f"/v1/series/{UCM_KEY}").json()["rows"]
        text = _hover(page, "fan", history[-1]["ds"][:7])
        assert _tip_value(text, "observed") == round(history[-1]["y"])
        events = api.get("/v1/interventions", params={"series": UCM_KEY}).json()["events"]
        # EVENT is a group of events acting through one regressor; its first event's month.
        event = next(e for e in events if EVENT in (e["id"], e["regressor"]))
        assert event["name"] in _hover(page, "fan", event["start"][:7])

        # The table and the CSV hold what is drawn: the last three years and the horizon, then
        # the full history one click away.
        shown = _csv(page, "fan-csv")
        assert shown[0].startswith("month,kind,observed,mean,lo_")
        assert 36 + 12 <= len(shown) - 1 <= 36 + 12 + 12
        mean_line = next(line for line in shown if line.startswith(row["ds"][:7]))
        assert f",{round(row['mean'])}," in mean_line
        page.evaluate("$('zoom').click()")
        page.evaluate("window._csv = null")
        assert len(_csv(page, "fan-csv")) - 1 == len(history) + len(forecast["rows"])

        # The counterfactual's hover equals the API's answer to the same scenario.
        scenario = json.loads(page.evaluate("$('cf-panel').dataset.scenario"))
        assert scenario["remove"][0]["event"] == event["regressor"]
        answer = api.post(
            "/v1/counterfactual", json={"series": UCM_KEY, "scenario": scenario}
        ).json()
        last = answer["rows"][-1]
        text = _hover(page, "cf-chart", last["ds"][:7])
        assert _tip_value(text, "counterfactual") == round(last["counterfactual"])
        assert _tip_value(text, "cumulative effect") == round(last["cumulative_effect"])
        before = page.evaluate("$('cf-table').textContent")

        # A scenario change (scale the event by a half instead) redraws chart and table.
        page.evaluate(
            "(() => { const row = document.querySelector("
            f"'.event[data-regressor=\"{event['regressor']}\"]');"
            " row.querySelector('select').value = 'scale';"
            " row.querySelector('select').dispatchEvent(new Event('change', {bubbles: true})); })()"
        )
        _wait_for(
            page,
            "$('cf-panel').dataset.scenario.includes('scale') "
            "&& $('cf-panel').dataset.state === 'loaded'",
        )
        assert page.evaluate("$('cf-table').textContent") != before
        scaled = api.post(
            "/v1/counterfactual",
            json={
                "series": UCM_KEY,
                "scenario": {"scale": [{"event": event["regressor"], "factor": 0.5}]},
            },
        ).json()
        text = _hover(page, "cf-chart", scaled["rows"][-1]["ds"][:7])
        assert _tip_value(text, "counterfactual") == round(scaled["rows"][-1]["counterfactual"])

        # The controls method: the page says which method answered (controls, or the regressor
        # it fell back to) and lists the answer's notes, where the controls' weights are.
        body = {
            "series": UCM_KEY,
            "scenario": {"scale": [{"event": event["regressor"], "factor": 0.5}]},
            "method": "controls",
        }
        _set_and_wait(page, "cf-method", "controls")
        controls = api.post("/v1/counterfactual", json=body).json()
        assert page.evaluate("$('cf-panel').dataset.method") == controls["method"]
        notes = page.evaluate("[...$('cf-notes').children].map((li) => li.textContent)")
        assert notes == controls["notes"]
        # The user's own controls replace the automatic choice: the same answer as the API's.
        _set_and_wait(page, "cf-controls", "honduras/inm/irregular-entries")
        named = api.post(
            "/v1/counterfactual", json={**body, "controls": ["honduras/inm/irregular-entries"]}
        ).json()
        assert named["method"] == "controls"
        notes = page.evaluate("[...$('cf-notes').children].map((li) => li.textContent)")
        assert notes == named["notes"] != controls["notes"]
        assert any("weights (elasticities of log1p counts): honduras/inm/" in n for n in notes)

        # The decomposition's waterfall: one bar per component between the two totals, and
        # the CSV of the same; the sensitivity table has a row per shift.
        decomposition = api.post(
            "/v1/decompose",
            json={"series": UCM_KEY, "month": page.evaluate("$('dec-month').value")},
        ).json()
        assert page.evaluate("$('waterfall').querySelectorAll('rect').length") == (
            len(decomposition["components"]) + 2
        )
        page.evaluate("window._csv = null")
        dec = _csv(page, "dec-csv")
        assert len(dec) - 1 == len(decomposition["components"]) + 2
        shifts = page.evaluate("$('sens-table').querySelectorAll('tbody tr').length")
        assert shifts == 5

        run = next(s for s in api.get("/v1/models").json()["series"] if s["series"] == UCM_KEY)
        assert page.evaluate("$('mlflow-run').href").endswith(f"/#/runs/{run['run_id']}")
        # The whole page at its default zoom, hovered over the first forecast month.
        page.evaluate("$('zoom').click()")
        _hover(page, "fan", row["ds"][:7])
        height = page.evaluate("document.documentElement.scrollHeight")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=1100,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = page.screenshot()
    shot.save(tmp_path / "page.png")
    if os.environ.get("ENCOUNTERS_README_SCREENSHOTS"):
        shot.save(README_SHOT)
    inked, coloured = _chart_pixels(shot)
    # Text and controls alone ink about 2 % of the page; the charts add bands and lines.
    assert inked > 0.03 and coloured > 0.003, (inked, coloured)


def test_a_series_without_regression_says_so(server, tmp_path):
    """A naive series: the fan loads; the what-if panels say its model does not answer them."""
    with open_page(tmp_path, f"{server.url}/?series={NAIVE_KEY}") as page:
        states = _settled(page)
        assert states["forecast"] == "loaded"
        assert states["counterfactual"] == states["decomposition"] == "unavailable"
        note = page.evaluate("$('cf-unavailable').innerText")
        assert f"The served model of {NAIVE_KEY}" in note and "counterfactuals" in note
