"""No request starves another: the expensive routes' own bounded executor (429 when full, work
stopped when the client goes away), bounded scenarios and caches keyed on the validated request.
Servers over real HTTP where timing and processes matter; the real app in-process otherwise."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.served import BoundedCache
from service.settings import Settings
from tests.service.conftest import EVENT, NAIVE_KEY, UCM_KEY, Server, copy_home

pytestmark = pytest.mark.slow

FLOOD = 60
#: The cheap routes' answers may take this long while the flood runs (they took up to 21 s).
CHEAP_S = 1.0


@pytest.fixture(scope="module")
def lone(champion, tmp_path_factory):
    """One worker, one expensive slot and two waiting: what the flood has to get past."""
    srv = Server(
        champion.home,
        tmp_path_factory.mktemp("lone"),
        workers=1,
        ENCOUNTERS_POLL_SECONDS="0",
        ENCOUNTERS_MAX_CONCURRENT_FITS="1",
        ENCOUNTERS_EXPENSIVE_QUEUE="2",
    )
    yield srv
    srv.stop()


def sensitivity(i: int) -> dict:
    """The ``i``-th of many distinct sensitivity requests (none cached)."""
    shifts = sorted({(i % 12) + 1, -((i // 12) % 12) - 1, 7})
    return {"series": UCM_KEY, "event": EVENT, "shifts": shifts, "level": [80]}


CHEAP = ("/v1/models", "/metrics", "/health", "/v1/series")


async def _flood(url: str) -> tuple[list[httpx.Response], list[float]]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        for path in CHEAP:  # the first /v1/series reads the store: not what is measured
            await client.get(path)
        floods = [
            asyncio.create_task(client.post("/v1/sensitivity", json=sensitivity(i)))
            for i in range(FLOOD)
        ]
        await asyncio.sleep(0.5)
        cheap = []
        for path in CHEAP:
            started = time.perf_counter()
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            cheap.append(time.perf_counter() - started)
        started = time.perf_counter()
        uncached = await client.get("/v1/forecast", params={"series": NAIVE_KEY, "h": 7})
        assert uncached.status_code == 200
        cheap.append(time.perf_counter() - started)
        return list(await asyncio.gather(*floods)), cheap


def test_a_flood_of_sensitivity_requests_is_refused_with_429_and_starves_nothing(lone):
    responses, cheap = asyncio.run(_flood(lone.url))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    refused = [r for r in responses if r.status_code == 429]
    assert 0 < len(refused) < FLOOD, statuses
    for r in refused:
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["content-type"] == "application/problem+json"
        assert "too many expensive requests" in r.json()["detail"]
    assert all(r.json()["rows"] for r in responses if r.status_code == 200)
    assert max(cheap) < CHEAP_S, cheap


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its children, live and reaped."""
    pids = [pid] + [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _parent(int(p.name)) == pid
    ]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        # utime, stime, cutime, cstime (fields 14-17 of stat; after the name, from index 11).
        total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def test_work_stops_when_the_client_goes_away(lone):
    every_shift = {**sensitivity(999), "shifts": list(range(-12, 13))}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{lone.url}/v1/sensitivity", json=every_shift, timeout=1.0)
    time.sleep(1.0)
    before = _cpu_seconds(lone.proc.pid)
    time.sleep(3.0)
    burned = _cpu_seconds(lone.proc.pid) - before
    assert burned < 0.5, f"the server burned {burned:.1f} s of CPU after the client went away"
    assert "client went away" in lone.logs()


@pytest.fixture(scope="module")
def client(champion):
    settings = Settings(home=champion.home, tracking_uri=champion.tracking_uri, poll_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_scenario_of_ten_thousand_events_is_refused_at_once(client):
    added = [
        {"id": f"e{i}", "start": "2025-01", "effect_pct": -10, "shape": "step"}
        for i in range(10_000)
    ]
    started = time.perf_counter()
    response = client.post(
        "/v1/counterfactual", json={"series": UCM_KEY, "scenario": {"add": added}}
    )
    assert time.perf_counter() - started < 5
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "scenario"]
    assert "at most 200 changes" in error["msg"] and "got 10000" in error["msg"]


def _cached(app) -> tuple[int, int]:
    """Entries and bytes of every cache the served bundle holds."""
    caches = [c for c in vars(app.state.registry.current).values() if isinstance(c, BoundedCache)]
    return sum(len(c) for c in caches), sum(getattr(c, "bytes", 0) for c in caches)


def test_junk_query_parameters_neither_grow_nor_flush_the_forecast_cache(client):
    params = {"series": NAIVE_KEY, "h": 4}
    first = client.get("/v1/forecast", params=params)
    entries, size = _cached(client.app)
    for i in range(300):
        again = client.get("/v1/forecast", params={**params, f"junk{i}": "x" * 100})
        assert again.status_code == 200 and again.content == first.content
    # A new spelling of the same request is the same entry too.
    assert client.get("/v1/forecast", params={**params, "h": "04"}).content == first.content
    assert _cached(client.app) == (entries, size)


def test_a_broken_store_is_not_ok_on_health_and_503_where_it_is_read(champion, tmp_path):
    home = copy_home(champion, tmp_path / "home")
    settings = Settings(home=home.home, tracking_uri=home.tracking_uri, poll_seconds=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["status"] == "ok"
        next((home.home / "store" / "releases").glob("*.parquet")).unlink()
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert "the store is broken" in health["reason"] and "is missing" in health["reason"]
        # The history was read before: it stays served; a fresh app reads the store anew.
    with TestClient(create_app(settings)) as client:
        response = client.get(f"/v1/series/{NAIVE_KEY}")
        assert response.status_code == 503, response.text
        assert "the store is broken" in response.json()["detail"]
