"""The chart page's weight and its first paint with data, in headless Chromium.

    python -m experiments.startup.page --url http://127.0.0.1:8000 [--series KEY] [--runs 5]

Against a running service (``encounters up`` or ``encounters serve``): the bytes of the page's
own files (HTML, script, style and the vendored uPlot, as served), then ``--runs`` loads of
``/?series=KEY`` in Debian's ``chromium``, each in a fresh profile (nothing cached), reading the
page's ``data-first-paint``: the milliseconds from navigation start to the first frame after the
forecast fan is drawn from the JSON routes. Prints the figures; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from websockets.sync.client import connect

TARGET_KB = 300
TARGET_MS = 1000
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--window-size=1100,950",
    "--remote-debugging-port=0",
]


def weight(url: str) -> dict[str, int]:
    page = httpx.get(f"{url}/")
    sizes = {"/": len(page.content)}
    for source in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        sizes[source] = len(httpx.get(f"{url}{source}").content)
    return sizes


def first_paint(url: str, timeout: float = 60) -> int:
    with tempfile.TemporaryDirectory() as profile:
        log_path = f"{profile}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                ["chromium", *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stderr=log,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout
            port = None
            while port is None and time.monotonic() < deadline:
                found = re.search(r"ws://127\.0\.0\.1:(\d+)/", open(log_path).read())
                port = found.group(1) if found else time.sleep(0.1)
            tabs = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
            tab = next(t for t in tabs if t["type"] == "page")
            with connect(tab["webSocketDebuggerUrl"], max_size=None) as ws:
                calls = 0

                def call(method, **params):
                    nonlocal calls
                    calls += 1
                    ws.send(json.dumps({"id": calls, "method": method, "params": params}))
                    while True:
                        message = json.loads(ws.recv(timeout=timeout))
                        if message.get("id") == calls:
                            return message.get("result", {})

                call("Page.navigate", url=url)
                while time.monotonic() < deadline:
                    value = call(
                        "Runtime.evaluate",
                        expression="document.body && document.body.dataset.firstPaint",
                        returnByValue=True,
                    )["result"].get("value")
                    if value:
                        return int(value)
                    time.sleep(0.05)
                raise RuntimeError(f"{url} drew no forecast in {timeout}s")
        finally:
            subprocess.run(["kill", "--", f"-{proc.pid}"], check=False)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--series", default="southwest/usbp")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = weight(args.url)
    scripts = sum(v for k, v in sizes.items() if k.endswith(".js"))
    paints = [first_paint(f"{args.url}/?series={args.series}") for _ in range(args.runs)]
    lines = [f"{name}: {size / 1024:.1f} KB" for name, size in sizes.items()]
    lines += [
        f"chart library + page script: {scripts / 1024:.1f} KB (target <= {TARGET_KB} KB); "
        f"everything the page loads: {sum(sizes.values()) / 1024:.1f} KB",
        f"first paint with data, {args.runs} cold loads: median {statistics.median(paints)} ms, "
        f"max {max(paints)} ms (target <= {TARGET_MS} ms); all: {paints}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
