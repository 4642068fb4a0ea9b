"""Flood benchmark: ``GET /v1/forecast`` latency while expensive requests pour in.

    python -m experiments.serving.flood [--home DIR] [--duration 20] [--expensive 60]

Without ``--home`` it trains ``bench.yaml`` (as ``bench.py`` does) into a temporary data home. It
starts the service as ``encounters serve --workers 2 --no-access-log`` runs it (default settings:
one expensive slot and four waiting per worker), then:

1. times forecasts alone for ``--duration`` seconds (the baseline);
2. times them again while a separate process keeps ``--expensive`` distinct expensive requests in
   flight (``/v1/sensitivity`` refits with every combination of shifts: none cached), each
   answered request replaced by a new one (after a 429, one second later: sooner than
   ``Retry-After`` asks);

and prints the forecasts' p50 / p99 / max over real HTTP in both phases, and how the expensive
requests were answered (200, 429 with Retry-After, other). Forecasts are the serving bench's mix:
a 12-month forecast at levels 80 and 95, the served series in turn, from 4 keep-alive connections
in 4 threads (a closed loop). Everything runs on 127.0.0.1; the server is stopped with its group.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from experiments.serving.bench import LEVEL, H, serve_ours, server_env, train

log = logging.getLogger("serving-flood")
EVENT = "mx_enforcement_2023_12"
PROBES = 4
#: How long a refused flooder waits before its next request.
RETRY_S = 1.0
TARGET_P99_MS = 25


def _expensive_requests(keys: list[str]):
    """Distinct sensitivity requests (refits), endlessly: no two the same, so none is cached."""
    shifts = [s for s in range(-12, 13) if s]
    for size in itertools.count(1):
        for combo in itertools.combinations(shifts, size):
            for key in keys:
                yield "/v1/sensitivity", {"series": key, "event": EVENT, "shifts": list(combo)}


async def _flood(url: str, keys: list[str], in_flight: int, seconds: float, out) -> None:
    statuses: Counter[str] = Counter()
    requests = _expensive_requests(keys)
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:

        async def one_after_another() -> None:
            while time.monotonic() < deadline:
                path, body = next(requests)
                response = await client.post(path, json=body)
                label = str(response.status_code)
                if response.status_code == 429 and "retry-after" in response.headers:
                    label = "429 with Retry-After"
                statuses[label] += 1
                if response.status_code == 429:
                    # Sooner than Retry-After asks: a client that keeps pushing.
                    await asyncio.sleep(RETRY_S)

        await asyncio.gather(*(one_after_another() for _ in range(in_flight)))
    out.send(dict(statuses))


def flood(url: str, keys: list[str], in_flight: int, seconds: float, out) -> None:
    asyncio.run(_flood(url, keys, in_flight, seconds, out))


def probe(url: str, keys: list[str], seconds: float) -> tuple[np.ndarray, int]:
    """Forecast latencies (ms) from PROBES closed-loop connections, and the errors."""
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds
    params = [{"series": k, "h": H, "level": list(LEVEL)} for k in keys]

    def loop(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in itertools.count(offset):
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                response = client.get("/v1/forecast", params=params[i % len(params)])
                latencies.append((time.perf_counter() - started) * 1000)
                errors[0] += response.status_code != 200

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(PROBES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(latencies), errors[0]


def _summary(name: str, ms: np.ndarray, errors: int) -> str:
    p50, p99 = np.percentile(ms, [50, 99])
    return (
        f"{name}: {len(ms)} forecasts, {errors} errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {ms.max():.1f} ms"
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request skews the timing
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="A data home with a champion (default: train)")
    parser.add_argument("--duration", type=float, default=20, help="Seconds per phase.")
    parser.add_argument("--expensive", type=int, default=60, help="Expensive requests in flight.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="serving-flood-"))
    home = (args.home or work / "home").resolve()
    env = server_env(home)
    if args.home is None:
        train(home, work, env)
    server, url = serve_ours(work, env, "service")
    try:
        served = httpx.get(f"{url}/v1/series", timeout=60).json()["series"]
        keys = [s["series"] for s in served if s.get("counterfactual")]
        probe(url, keys, 2)  # warm the response caches: the forecasts measured are the hot path
        alone, alone_errors = probe(url, keys, args.duration)
        cpu = server.cpu_seconds()
        reader, writer = multiprocessing.Pipe(duplex=False)
        flooder = multiprocessing.get_context("fork").Process(
            target=flood, args=(url, keys, args.expensive, args.duration + 2, writer)
        )
        flooder.start()
        time.sleep(1)  # the flood is on
        under, under_errors = probe(url, keys, args.duration)
        statuses = reader.recv()
        flooder.join()
        cpu = server.cpu_seconds() - cpu
    finally:
        server.stop()
    p99 = float(np.percentile(under, 99))
    answers = ", ".join(f"{v} {k}" for k, v in statuses.items())
    verdict = "met" if p99 <= TARGET_P99_MS else "NOT met"
    lines = [
        f"server: 2 workers, default settings; load average {os.getloadavg()[0]:.1f}",
        _summary("alone", alone, alone_errors),
        _summary(f"under {args.expensive} expensive requests in flight", under, under_errors),
        f"expensive requests answered: {sum(statuses.values())} ({answers})",
        f"server CPU during the flood phase (all its processes): {cpu:.1f} s",
        f"target /v1/forecast p99 <= {TARGET_P99_MS} ms under the flood: {verdict} ({p99:.1f})",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
