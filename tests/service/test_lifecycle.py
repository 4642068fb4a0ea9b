"""The model lifecycle over real HTTP: swap under load, a version that will not load, a start
without the tracking server (cached bundle), and a start with nothing to serve."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import defaultdict

import httpx
import pytest
from mlflow import MlflowClient

from tests.processes import free_port, request_until
from tests.service.conftest import (
    CATALOG_SCENARIO,
    NAIVE_KEY,
    NAME,
    SECTOR_KEY,
    UCM_KEY,
    Server,
    copy_home,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swapping(champion, server, tmp_path_factory):
    """Two workers polling every 0.3 s on their own copy of the registry."""
    del server  # started first: it fills the serving cache the other tests copy
    root = tmp_path_factory.mktemp("swapping")
    own = copy_home(champion, root / "home")
    srv = Server(own.home, root / "logs", workers=2, ENCOUNTERS_POLL_SECONDS="0.3")
    yield own, srv
    srv.stop()


LOAD = [
    ("GET", "/v1/forecast", {"params": {"series": NAIVE_KEY, "h": 12}}),
    ("GET", "/v1/forecast", {"params": {"series": UCM_KEY, "h": 6, "threshold": 5000}}),
    ("POST", "/v1/counterfactual", {"json": {"series": UCM_KEY, "scenario": CATALOG_SCENARIO}}),
    ("POST", "/v1/forecast", {"json": {"series": [SECTOR_KEY, NAIVE_KEY]}}),
]


def test_swap_under_load_fails_no_request(swapping):
    own, srv = swapping

    def until(seen) -> None:
        time.sleep(1.5)
        own.client().set_registered_model_alias(NAME, "champion", "2")
        _until_all_see_version_2(seen)

    seen, errors = _under_load(srv.url, LOAD, until)
    assert not errors, errors[:5]
    answers = [v for s in seen.values() for v in s]
    assert len(answers) > 100
    assert set(answers) == {"1", "2"}
    for versions in seen.values():
        # One connection may move between workers, but never back once both have swapped.
        assert versions[-10:] == ["2"] * 10
    health = httpx.get(f"{srv.url}/health").json()
    assert health["model"]["version"] == "2" and health["status"] == "ok"
    metrics = httpx.get(f"{srv.url}/metrics").text
    assert 'encounters_model_version{alias="champion",model="border-encounters"} 2.0' in metrics
    swaps = [
        line for line in metrics.splitlines() if line.startswith("encounters_model_swaps_total")
    ]
    assert swaps and float(swaps[0].split()[-1]) >= 1


def test_a_version_that_will_not_load_keeps_the_one_served(swapping, tmp_path):
    own, srv = swapping
    client = own.client()
    current = httpx.get(f"{srv.url}/health").json()["model"]["version"]
    bad = client.create_model_version(NAME, str(tmp_path))  # no MLmodel there
    client.set_registered_model_alias(NAME, "champion", bad.version)
    try:
        health = _wait_for(srv.url, lambda h: h["degraded"])
        assert health["model"]["version"] == current
        assert f"version {bad.version} failed to load" in health["reason"]
        response = httpx.get(f"{srv.url}/v1/forecast", params={"series": NAIVE_KEY})
        assert response.status_code == 200 and response.json()["model_version"] == current
    finally:
        client.set_registered_model_alias(NAME, "champion", current)
    health = _wait_for(srv.url, lambda h: not h["degraded"])
    assert health["status"] == "ok"


def _wait_for(url: str, condition, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = httpx.get(f"{url}/health").json()
        if condition(health) or time.monotonic() > deadline:
            return health
        time.sleep(0.2)


def test_unreachable_tracking_server_at_start_serves_the_cached_bundle(champion, server, tmp_path):
    del server  # its start left the bundle in the serving cache
    home = tmp_path / "home"
    shutil.copytree(champion.home / "serving", home / "serving")
    closed = f"http://127.0.0.1:{free_port()}"
    srv = Server(
        home,
        tmp_path / "logs",
        MLFLOW_TRACKING_URI=closed,
        ENCOUNTERS_TRACKING_RETRIES="0",
        ENCOUNTERS_TRACKING_TIMEOUT_SECONDS="2",
        ENCOUNTERS_POLL_SECONDS="0.5",
    )
    try:
        health = httpx.get(f"{srv.url}/health").json()
        assert health["status"] == "degraded" and health["degraded"]
        assert health["model"]["source"] == "cache" and health["model"]["version"] == "1"
        assert "locally cached bundle" in health["reason"]
        assert "cannot resolve models:/border-encounters@champion" in health["reason"]
        assert health["data"]["newest_month"] == "2025-08"
        forecast = httpx.get(f"{srv.url}/v1/forecast", params={"series": NAIVE_KEY})
        assert forecast.status_code == 200 and forecast.json()["model_version"] == "1"
        cf = httpx.post(
            f"{srv.url}/v1/counterfactual",
            json={"series": UCM_KEY, "scenario": CATALOG_SCENARIO},
            timeout=30,
        )
        assert cf.status_code == 200
        polled = _wait_for(srv.url, lambda h: h["last_poll_at"] is not None)
        assert "the last poll of the registry failed" in polled["reason"]
    finally:
        srv.stop()


def test_nothing_to_serve_is_503_with_the_reason(tmp_path):
    srv = Server(
        tmp_path / "empty",
        tmp_path / "logs",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
        ENCOUNTERS_TRACKING_RETRIES="0",
        ENCOUNTERS_POLL_SECONDS="0",
    )
    try:
        health = httpx.get(f"{srv.url}/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable" and body["model"] is None
        assert "no model loaded" in body["reason"]
        response = httpx.get(f"{srv.url}/v1/forecast", params={"series": NAIVE_KEY})
        assert response.status_code == 503 and response.headers["retry-after"]
        assert "encounters train" in response.json()["detail"]
    finally:
        srv.stop()


def test_an_empty_worker_loads_the_champion_at_the_first_request_not_its_next_poll(
    champion, tmp_path
):
    """``encounters up`` registers its stand-in while the workers run: once one answers, all do."""
    own = copy_home(champion, tmp_path / "home")
    own.client().delete_registered_model_alias(NAME, "champion")
    # No poll in the test's lifetime: only a request can make a worker look at the alias.
    srv = Server(own.home, tmp_path / "logs", workers=2, ENCOUNTERS_POLL_SECONDS="3600")
    try:
        assert httpx.get(f"{srv.url}/health").json()["model"] is None
        own.client().set_registered_model_alias(NAME, "champion", "1")
        answers = [  # new connections, so both workers take some
            httpx.get(f"{srv.url}/v1/forecast", params={"series": NAIVE_KEY}, timeout=60)
            for _ in range(8)
        ]
        assert [a.status_code for a in answers] == [200] * 8, answers[0].text[:300]
        assert {a.json()["model_version"] for a in answers} == {"1"}
        health = [httpx.get(f"{srv.url}/health").json()["model"] for _ in range(8)]
        assert {m["version"] for m in health} == {"1"}
    finally:
        srv.stop()


def _until_all_see_version_2(seen: dict[int, list[str]], timeout: float = 60) -> None:
    """Until every client's last ten answers come from version 2 (both workers swapped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if all(len(s) > 10 and set(s[-10:]) == {"2"} for s in seen.values()):
            break
    time.sleep(0.5)


def _under_load(url: str, requests, until) -> tuple[dict[int, list[str]], list[str]]:
    """Four clients sending ``requests`` in turn while ``until()`` runs; the versions each saw
    and every failed request."""
    stop = threading.Event()
    seen: dict[int, list[str]] = defaultdict(list)
    errors: list[str] = []
    threads = [
        threading.Thread(target=request_until, args=(url, stop, seen[i], errors, requests))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    try:
        until(seen)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    return seen, errors


def test_lifecycle_on_the_compose_mlflow_server(
    postgres_uri, tmp_path, monkeypatch, ohss_file, sbo_file
):
    """Train, register, serve, retrain and swap under load against `mlflow server` with the
    compose flags on a fresh PostgreSQL database, as `docker compose up` runs them."""
    from forecasting.data import ObservationStore
    from pipelines.config import Experiment
    from pipelines.ingest import ingest
    from pipelines.retrain import retrain
    from pipelines.tracking import CHALLENGER, log_training
    from pipelines.train import train
    from tests.pipelines.test_retrain import RETRAIN_TINY
    from tests.stack import MlflowServer, mlflow_argv

    tracking = MlflowServer(
        mlflow_argv(free_port(), postgres_uri, tmp_path / "mlartifacts"), tmp_path
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    home = tmp_path / "home"
    try:
        store = ObservationStore(home)
        ingest(store, [str(ohss_file)])
        experiment = Experiment.from_text(RETRAIN_TINY, "retrain-tiny")
        first = log_training(train(experiment, store, workers=1), RETRAIN_TINY, home)
        assert first.promoted and first.model_version == "1"
        api = Server(
            home,
            tmp_path / "logs",
            workers=2,
            MLFLOW_TRACKING_URI=tracking.url,
            ENCOUNTERS_POLL_SECONDS="0.5",
        )
        try:
            _retrain_under_load(api, home, sbo_file, CHALLENGER, retrain)
        finally:
            api.stop()
    finally:
        tracking.stop()


def _retrain_under_load(api, home, sbo_file, challenger, retrain) -> None:
    requests = [
        ("GET", "/v1/forecast", {"params": {"series": NAIVE_KEY, "h": 12}}),
        ("POST", "/v1/forecast", {"json": {"series": [SECTOR_KEY, NAIVE_KEY]}}),
    ]
    decisions = []

    def until(seen) -> None:
        time.sleep(1)
        # The CBP release arrives: the retrain promotes a no-worse challenger.
        decisions.append(retrain(home, [str(sbo_file)], workers=1))
        _until_all_see_version_2(seen)

    seen, errors = _under_load(api.url, requests, until)
    assert not errors, errors[:5]
    (decision,) = decisions
    assert decision.outcome == "promoted", decision.reasons
    answers = [v for s in seen.values() for v in s]
    assert set(answers) == {"1", "2"} and len(answers) > 100
    assert all(s[-10:] == ["2"] * 10 for s in seen.values())
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert client.get_model_version_by_alias(NAME, challenger).version == "2"
    assert client.get_model_version_by_alias(NAME, "champion").version == "2"
