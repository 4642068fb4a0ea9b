"""Time to the first answered forecast after ``encounters up`` on a fresh data home.

    python -m experiments.startup.bench [--until-promoted] [--experiment FILE] [--out DIR]

Starts the real ``encounters up`` (``--port`` a free one) as a subprocess in a new, empty
``ENCOUNTERS_HOME`` (what ``make up`` runs once the install has finished) and polls
``GET /v1/forecast?series=southwest/usbp&h=12`` every 0.25 s until it answers 200. With
``--until-promoted`` it then keeps polling ``/health`` until the background training of the
experiment has ended (promoted or not), sending a forecast request every 0.25 s meanwhile and
counting the ones that fail. Reports the seconds to each step, the labels ``/health`` gave,
and the machine's load average before and after (the machine is shared: other load slows every
wall-clock figure here), and the CPU seconds ``up``'s processes had used at the first answer.
Writes ``results.md`` and ``results.json`` beside this file (or in ``--out``).
The server is stopped with its process group.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from experiments.serving.bench import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENCOUNTERS = Path(sys.executable).parent / "encounters"
FORECAST = "/v1/forecast?series=southwest/usbp&h=12"
TARGET_SECONDS = 90
POLL = 0.25


def _cpu_seconds(session: int) -> float:
    """User + system CPU seconds of every live process of ``session`` and of the children they
    waited for (``/proc``): unlike the wall time, hardly moved by other load on the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp session ... utime(12) stime cutime cstime.
        if int(fields[3]) == session:
            total += sum(int(f) for f in fields[11:15])
    return total / tick


def _get(client: httpx.Client, url: str) -> httpx.Response | None:
    try:
        return client.get(url, timeout=10)
    except httpx.HTTPError:
        return None


def run(experiment: str | None, until_promoted: bool, timeout: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="encounters-startup-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [str(ENCOUNTERS), "up", "--port", str(port)]
    if experiment:
        argv += ["--experiment", experiment]
    log_path = home / "up.log"
    out: dict = {
        "argv": argv[1:],
        "home": str(home),
        "load_before": os.getloadavg(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    env = {**os.environ, "ENCOUNTERS_HOME": str(home)}
    with log_path.open("w") as log:
        start = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        with httpx.Client() as client:
            while True:
                elapsed = time.monotonic() - start
                if proc.poll() is not None or elapsed > timeout:
                    raise RuntimeError(f"no answer after {elapsed:.0f}s; see {log_path}")
                response = _get(client, base + FORECAST)
                if response is not None and response.status_code == 200:
                    out["first_forecast_seconds"] = round(elapsed, 1)
                    out["first_forecast_cpu_seconds"] = round(_cpu_seconds(proc.pid), 1)
                    break
                time.sleep(POLL)
            health = client.get(base + "/health").json()
            out["first_model"] = health["model"]
            if until_promoted:
                out.update(_until_ended(client, base, proc, start, timeout))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    out["load_after"] = os.getloadavg()
    out["log_tail"] = log_path.read_text()[-2000:]
    return out


def _until_ended(client, base, proc, start, timeout) -> dict:
    failed = sent = 0
    ended = None
    while ended is None:
        if proc.poll() is not None or time.monotonic() - start > timeout:
            raise RuntimeError("the background training did not end in time")
        response = _get(client, base + FORECAST)
        sent += 1
        failed += response is None or response.status_code != 200
        health = client.get(base + "/health").json()
        training = health.get("training") or {}
        if training.get("state") in ("promoted", "rejected", "up-to-date", "failed", "stopped"):
            ended = training
        time.sleep(POLL)
    served = None
    # The poll swaps the version in within a few seconds of the promotion.
    while time.monotonic() - start < timeout:
        health = client.get(base + "/health").json()
        served = health["model"]
        if ended["state"] != "promoted" or served["version"] == ended.get("version"):
            break
        response = _get(client, base + FORECAST)
        sent += 1
        failed += response is None or response.status_code != 200
        time.sleep(POLL)
    return {
        "training": ended,
        "ended_seconds": round(time.monotonic() - start, 1),
        "served_after": served,
        "requests_during_training": sent,
        "requests_failed": failed,
    }


def report(result: dict) -> str:
    first = result["first_model"]
    lines = [
        "# Time to the first answered forecast",
        "",
        "`python -m experiments.startup.bench"
        + (" --until-promoted" if "training" in result else "")
        + f"` on {result['started_at']} (2 cores, shared; load average "
        f"{result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} after).",
        "",
        "| step | seconds after `encounters up` started |",
        "| --- | --- |",
        f"| first `GET {FORECAST}` answered 200 | {result['first_forecast_seconds']} "
        f"(target ≤ {TARGET_SECONDS}) |",
    ]
    if "training" in result:
        lines.append(
            f"| background training ended: {result['training']['state']} | "
            f"{result['ended_seconds']} |"
        )
    lines += [
        "",
        f"CPU time of `encounters up`'s processes until the first answer: "
        f"{result['first_forecast_cpu_seconds']} s (user + system; on 2 free cores the wall "
        "time is at least half of it).",
        "",
        f"First served: version {first['version']}, provisional: "
        f"{first.get('provisional') or 'no'}",
    ]
    if "training" in result:
        after = result["served_after"]
        lines += [
            "",
            f"Training: {result['training'].get('message')}",
            "",
            f"Served after it: version {after['version']}"
            + (" (still the stand-in)" if after.get("provisional") else " (the full champion)")
            + ". Forecast requests while it trained and swapped: "
            f"{result['requests_during_training']}, failed: {result['requests_failed']}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default=None, help="passed to `encounters up`")
    parser.add_argument("--until-promoted", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    result = run(args.experiment, args.until_promoted, args.timeout)
    text = report(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "results.md").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
