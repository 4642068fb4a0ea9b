"""Fixtures for the pipelines: a tiny experiment, a private MLflow store, a real MLflow server."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from tests.processes import free_port
from tests.stack import MlflowServer

TINY = """
name: tiny
mlflow_experiment: tiny-test
registered_model: border-encounters
series: [southwest/usbp, southwest/usbp/sector=yuma]
models:
  - name: seasonal_naive
  - name: naive
  - name: ets
  - name: sarimax
  - name: sarimax
    alias: sarimax_broken
    params: {orders: []}
train_start: 2016-01
backtest: {first_cutoff: 2022-11, step_months: 6, h: 12}
level: [80, 95]
max_h: 24
"""


@pytest.fixture
def tiny_experiment(tmp_path) -> Path:
    """Two series, four working candidates and one that always fails to fit."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture
def mlflow_home(home, monkeypatch):
    """A private embedded MLflow store under the test's ENCOUNTERS_HOME; a test that leaves a
    run active fails (the run is ended first, so the next test starts clean)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield home
    fail_on_leaked_runs()


def fail_on_leaked_runs() -> None:
    """End any MLflow run a test left active, then fail the test naming them."""
    leaked = []
    while run := mlflow.active_run():
        leaked.append(run.info.run_id)
        mlflow.end_run()
    if leaked:
        pytest.fail(f"the test left MLflow runs active: {leaked}; end every run it starts")


@pytest.fixture
def mlflow_server(tmp_path, monkeypatch):
    """A real ``mlflow server`` on 127.0.0.1, stopped with its whole process group."""
    root = tmp_path / "server"
    root.mkdir()
    argv = ["mlflow", "server", "--host", "127.0.0.1", "--port", str(free_port())]
    argv += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    argv += ["--artifacts-destination", str(root / "artifacts"), "--workers", "1"]
    server = MlflowServer(argv, cwd=root)
    uri = server.url
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri
    finally:
        try:
            fail_on_leaked_runs()
        finally:
            server.stop()
