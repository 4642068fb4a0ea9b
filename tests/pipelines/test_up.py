"""``encounters up`` as a new user runs it: a quick stand-in first, the full champion later.

The real command in a subprocess on a fresh data home (the embedded snapshot), with a small
experiment (``up-small.yaml``, three series) so the background training takes a minute or two.
Forecast requests run from several clients the whole time the stand-in is served, while the
background training runs and through the swap; none may fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pipelines.background import settled
from tests.processes import clean_env, free_port, request_until, stop_group

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SMALL = Path(__file__).with_name("up-small.yaml")
ENCOUNTERS = Path(sys.executable).parent / "encounters"
CLIENTS = 3
#: Generous: the machine the tests run on is shared and imports alone take seconds.
TIMEOUT = 900


def _start(home: Path, port: int) -> tuple[subprocess.Popen, Path]:
    log = home / "up.log"
    env = clean_env(home)
    argv = [str(ENCOUNTERS), "up", "--experiment", str(SMALL), "--port", str(port)]
    with log.open("a") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, log


def _wait(proc, log: Path, check, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"encounters up exited:\n{log.read_text()[-4000:]}"
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} in {timeout}s:\n{log.read_text()[-4000:]}")


def _get(url: str):
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None


#: What each client asks, over and over.
FORECAST = [("GET", "/v1/forecast", {"params": {"series": "southwest/usbp", "h": 12}})]


def test_up_serves_a_stand_in_then_swaps_to_the_full_champion_under_load(tmp_path):
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    base = f"http://127.0.0.1:{port}"
    proc, log = _start(home, port)
    # Per client: a client's keep-alive connection stays with one worker, and the two workers
    # swap at their own polls, so the answers of all clients together interleave versions.
    stop, seen, errors = threading.Event(), [[] for _ in range(CLIENTS)], []
    clients = [
        threading.Thread(target=request_until, args=(base, stop, mine, errors, FORECAST))
        for mine in seen
    ]
    try:
        _wait(proc, log, lambda: _get(f"{base}/v1/forecast?series=southwest/usbp&h=12"), "answer")
        first = httpx.get(f"{base}/health").json()
        assert first["model"]["version"] == "1"
        assert "quick stand-in" in first["model"]["provisional"]
        models = httpx.get(f"{base}/v1/models").json()
        assert models["provisional"] == first["model"]["provisional"]
        assert {s["model"] for s in models["series"]} <= {"naive", "seasonal_naive", "derived"}
        for client in clients:
            client.start()

        def promoted():
            health = httpx.get(f"{base}/health").json()
            training = health["training"]
            assert training["state"] not in ("failed", "stopped", "rejected"), training
            progress.append(training)
            return health if health["model"]["version"] == "2" else None

        progress: list[dict] = []
        health = _wait(proc, log, promoted, "swap to version 2")
        # Every client reaches the new version too (both workers swapped).
        _wait(
            proc,
            log,
            lambda: all(len(s) > 10 and set(s[-10:]) == {"2"} for s in seen),
            "answers of v2 on every client",
        )
    finally:
        stop.set()
        for client in clients:
            if client.is_alive():
                client.join(timeout=60)
        stop_group(proc)
    assert errors == [], errors[:5]
    assert any("1" in mine for mine in seen)
    assert all(mine[-1] == "2" for mine in seen)
    assert health["model"]["provisional"] is None
    assert health["data"]["experiment"] == "up-small"
    training = health["training"]
    assert training["state"] == "promoted" and training["version"] == "2"
    assert training["series_done"] == training["series_total"] == 3
    # Progress was reported while it trained: some series done of three, with an estimate.
    partial = [p for p in progress if p["state"] == "training"]
    assert partial and all(0 < p["series_done"] < 3 for p in partial)
    assert all(p["remaining_seconds"] is not None for p in partial)
    record = json.loads((home / "training.json").read_text())
    assert settled(home, "up-small", record["data_fingerprint"])
    text = log.read_text()
    assert "full training: 1/3 series" in text

    # A second `up` with the full champion serves it at once: no training, no stand-in.
    proc, log = _start(home, port)
    try:
        _wait(proc, log, lambda: _get(f"{base}/v1/forecast?series=southwest/usbp&h=12"), "answer")
        again = httpx.get(f"{base}/health").json()
    finally:
        stop_group(proc)
    assert again["model"]["version"] == "2" and again["model"]["provisional"] is None
    assert "champion: border-encounters version 2\n" in log.read_text()
    assert "pipelines.train" not in log.read_text().split("champion: border-encounters")[-1]
