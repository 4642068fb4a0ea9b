"""Fixtures for the service: a tiny champion trained once per session, the app in-process, and
real servers.

The champion bundle holds three series: two whose chosen model is a naive family (forecasts only,
threshold probabilities from the lognormal) and one UCM (counterfactuals, decompositions, sample
paths). Route logic is tested in-process (``in_process``: the real app and lifespan through
FastAPI's TestClient); what depends on the server itself (workers, logs, the swap) runs against
``python -m pipelines.serve_cmd`` subprocesses on 127.0.0.1, stopped with their process group.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from service.main import create_app
from service.settings import Settings
from tests.processes import clean_env, free_port, stop_group

NAME = "border-encounters"
NAIVE_KEY = "southwest/usbp"
SECTOR_KEY = "southwest/usbp/sector=yuma"
UCM_KEY = "southwest/usbp/citizenship=mexico"
EVENT = "mx_enforcement_2023_12"
CATALOG_SCENARIO = {"remove": [{"event": EVENT}]}

FORECASTS = """
name: service-test
mlflow_experiment: service-test
registered_model: border-encounters
series: [southwest/usbp, southwest/usbp/sector=yuma]
models: [{name: seasonal_naive}, {name: naive}]
train_start: 2016-01
backtest: {first_cutoff: 2022-11, step_months: 6, h: 12}
level: [80, 95]
max_h: 36
"""
# Trained apart and merged into the same bundle: a UCM for the counterfactual routes. min_t 0
# keeps every regressor, which skips the refits that make a UCM fit slow.
STRUCTURAL = """
name: service-test-ucm
mlflow_experiment: service-test
registered_model: border-encounters
series: [southwest/usbp/citizenship=mexico]
models: [{name: ucm, params: {min_t: 0}}]
train_start: 2016-01
backtest: {first_cutoff: 2022-11, step_months: 6, h: 12}
level: [80, 95]
max_h: 36
"""


@dataclass(frozen=True)
class Champion:
    """A data home whose embedded MLflow store has the champion (v1) and a copy of it (v2)."""

    root: Path
    home: Path
    tracking_uri: str

    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri, self.tracking_uri)


def _train(root: Path, home: Path) -> str:
    from forecasting.data import ObservationStore
    from pipelines.config import Experiment
    from pipelines.tracking import log_training
    from pipelines.train import Training, train

    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENCOUNTERS_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        # Experiments created on a tracking URI put their artifacts under ./mlruns: keep them here.
        mp.chdir(root)
        store = ObservationStore(home)
        store.seed()
        forecasts = Experiment.model_validate(yaml.safe_load(FORECASTS))
        structural = Experiment.model_validate(yaml.safe_load(STRUCTURAL))
        a = train(forecasts, store, workers=1)
        b = train(structural, store, workers=1, catalog=a.catalog)
        merged = Training(
            forecasts,
            a.results + b.results,
            {},
            a.catalog,
            a.vintage,
            a.seconds + b.seconds,
            upstream=a.upstream,
        )
        logged = log_training(merged, FORECASTS, home)
        assert mlflow.active_run() is None, "log_training left its run active"
    assert logged.promoted and logged.model_version == "1"
    client = MlflowClient(uri, uri)
    v1 = client.get_model_version(NAME, "1")
    # A second version of the same artefact: what a retrain registers, without the minute.
    client.create_model_version(
        NAME, v1.source, run_id=v1.run_id, model_id=v1.source.removeprefix("models:/")
    )
    return uri


@pytest.fixture(scope="session")
def champion(tmp_path_factory) -> Champion:
    root = tmp_path_factory.mktemp("service")
    home = root / "home"
    uri = _train(root, home)
    return Champion(root, home, uri)


def copy_home(champion: Champion, dest: Path) -> Champion:
    """A home with its own copy of the MLflow database (aliases move independently); the
    artifacts stay where the original run put them."""
    dest.mkdir(parents=True)
    shutil.copytree(champion.home / "store", dest / "store")
    shutil.copyfile(champion.home / "mlflow.db", dest / "mlflow.db")
    return Champion(champion.root, dest, f"sqlite:///{dest / 'mlflow.db'}")


class Server:
    """``encounters serve`` in a subprocess (its own process group), logs in files."""

    def __init__(self, home: Path, logs: Path, workers: int = 1, **settings: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path, self.stderr_path = logs / "stdout.log", logs / "stderr.log"
        self._out = self.stdout_path.open("w")
        self._err = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines.serve_cmd",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "info",
            ],
            env=clean_env(home, **settings),
            cwd=logs,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )
        self._wait()

    def _wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=2)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"server did not start:\n{self.logs()[-3000:]}") from None
                time.sleep(0.2)

    def logs(self) -> str:
        self._out.flush()
        self._err.flush()
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def stop(self) -> None:
        stop_group(self.proc)
        self._out.close()
        self._err.close()


@pytest.fixture(scope="session")
def server(champion, tmp_path_factory):
    """The champion served by two workers, as `encounters serve` runs it."""
    srv = Server(
        champion.home, tmp_path_factory.mktemp("server"), workers=2, ENCOUNTERS_POLL_SECONDS="30"
    )
    yield srv
    srv.stop()


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def in_process(champion):
    """The app as `encounters serve` builds it, in this process: its lifespan loads the champion
    from the tracking store exactly as a worker does (no poll: nothing moves the alias here)."""
    settings = Settings(home=champion.home, tracking_uri=champion.tracking_uri, poll_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield client
