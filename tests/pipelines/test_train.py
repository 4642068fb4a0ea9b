"""Training end to end: real MLflow server, registered champion, fresh-process load, Dask parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from forecasting.data import ObservationStore
from forecasting.errors import EncountersWarning
from pipelines.config import Experiment
from pipelines.tracking import CHAMPION, log_training
from pipelines.train import train
from tests.forecasting.test_calibration import assert_well_formed

pytestmark = pytest.mark.slow

LOAD_AND_FORECAST = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model("models:/border-encounters@champion")
remove = '{"remove": [{"event": "mx_enforcement_2023_12", "start": "2025-09"}]}'
out = model.predict(pd.DataFrame({"series": ["southwest/usbp"] * 2, "h": [12, 12],
                                  "scenario": ["", remove]}), params={"level": [80, 95]})
print(json.dumps(out.to_dict(orient="records")))
"""


def test_training_logs_to_a_real_mlflow_server(mlflow_server, home, tiny_experiment):
    exp, text = Experiment.load(tiny_experiment)
    training = train(exp, ObservationStore(home), workers=1)
    logged = log_training(training, text, home)
    assert logged.promoted

    client = MlflowClient(mlflow_server)
    parent = client.get_run(logged.parent_run_id)
    assert parent.data.tags["data_fingerprint"] == ObservationStore(home).fingerprint()
    assert parent.data.tags["data_newest_month"] == "2025-08"
    assert "code_version" in parent.data.tags
    assert parent.data.metrics["candidates_failed"] == 2
    assert parent.data.metrics["series_fell_back"] == 0
    # One candidate for both series, the best by skill pooled over them.
    assert {r.chosen.spec.label for r in training.results} == {training.pooled_choice}
    assert parent.data.params["pooled_choice"] == training.pooled_choice
    assert parent.data.params["calibration_window_months"] == "0"
    assert parent.data.params["calibration.method"] == "pooled"
    artifacts = {a.path for a in client.list_artifacts(logged.parent_run_id)}
    assert "experiment.yaml" in artifacts

    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{logged.parent_run_id}'",
    )
    # Five candidates and their skill-weighted combination per series.
    assert len(children) == 2 * 6
    failed = [r for r in children if r.info.status == "FAILED"]
    assert {r.data.tags["model"] for r in failed} == {"sarimax_broken"}
    assert all("orders must be" in r.data.tags["error"] for r in failed)
    ets = next(
        r
        for r in children
        if r.data.tags["model"] == "ets" and r.data.tags["series"] == "southwest/usbp"
    )
    for metric in ("mase_h1", "mase_h12", "mase", "smape", "rel_mae", "coverage_80", "coverage_95"):
        assert metric in ets.data.metrics
    # The proper scores beside coverage: interval score, its scaled form (MSIS) and the WIS.
    for metric in ("winkler_80", "msis_80", "winkler_95", "msis_95", "wis"):
        assert ets.data.metrics[metric] > 0, metric
    # Per horizon as one metric with step = months ahead, so the UI charts it against horizon.
    for key in (
        "mase_by_h",
        "coverage_80_by_h",
        "coverage_95_model_by_h",
        "width_95_by_h",
        "winkler_80_by_h",
        "msis_95_by_h",
        "wis_by_h",
    ):
        history = client.get_metric_history(ets.info.run_id, key)
        assert [m.step for m in history] == list(range(1, 13)), key
    mase = {m.step: m.value for m in client.get_metric_history(ets.info.run_id, "mase_by_h")}
    assert mase[1] == pytest.approx(ets.data.metrics["mase_h1"])
    assert mase[12] == pytest.approx(ets.data.metrics["mase_h12"])
    # The training panel as a dataset, its digest the data fingerprint, on the parent and on
    # every child, whose tags carry the vintage too.
    fingerprint = parent.data.tags["data_fingerprint"]
    for run in (parent, *children):
        (dataset_input,) = client.get_run(run.info.run_id).inputs.dataset_inputs
        assert dataset_input.dataset.digest == fingerprint
        assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    assert all(r.data.tags["data_fingerprint"] == fingerprint for r in children)
    assert all(r.data.tags["data_newest_month"] == "2025-08" for r in children)
    files = {a.path for a in client.list_artifacts(ets.info.run_id)}
    assert {
        "fan_chart.png",
        "error_by_horizon.png",
        "backtest.csv",
        "by_horizon.csv",
        "forecast.csv",
    } <= files
    forecast = pd.read_csv(client.download_artifacts(ets.info.run_id, "forecast.csv", str(home)))
    assert list(forecast.columns) == ["ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert len(forecast) == 12 and (forecast["lo_95"] <= forecast["mean"]).all()

    version = client.get_model_version_by_alias("border-encounters", CHAMPION)
    assert version.version == logged.model_version
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_FORECAST],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 24
    assert rows[0]["ds"] == "2025-09-01" and rows[12]["ds"] == "2025-09-01"
    assert all(r["lo_95"] <= r["lo_80"] <= r["mean"] <= r["hi_80"] <= r["hi_95"] for r in rows)


def test_dask_local_cluster_gives_identical_forecasts(mlflow_home, tiny_experiment):
    exp, _ = Experiment.load(tiny_experiment)
    store = ObservationStore(mlflow_home)
    local = train(exp, store, workers=1).bundle()
    dask = train(exp, store, executor="dask", workers=2).bundle()
    for key in local.keys:
        assert local.series_model(key).model_name == dask.series_model(key).model_name
        np.testing.assert_array_equal(
            local.forecast(key, 24).drop(columns="ds").to_numpy(),
            dask.forecast(key, 24).drop(columns="ds").to_numpy(),
        )


def _train_one(home, series: str, models: str, backtest: str, extra: str = ""):
    """Train a one-series experiment without MLflow: the training and the series' result."""
    exp = Experiment.from_text(
        f"name: one\nmlflow_experiment: one\nseries: [{series}]\nensemble_top_k: 0\n{extra}"
        f"models: {models}\nbacktest: {backtest}\nlevel: [80, 95]\n",
        "test",
    )
    training = train(exp, ObservationStore(home), workers=1)
    (result,) = training.results
    return training, result


@pytest.mark.filterwarnings("ignore")
def test_a_series_too_short_to_calibrate_serves_its_model_intervals(tmp_path):
    training, result = _train_one(
        tmp_path,
        "southwest/cbp",
        "[{name: seasonal_naive}, {name: naive}]",
        "{first_cutoff: 2018-11, step_months: 6, h: 12}",
    )
    assert len(result.cutoffs) == 2 and result.chosen.calibrator is None
    assert "coverage_80" not in result.chosen.metrics
    frame = training.bundle().forecast("southwest/cbp", 12)
    assert (frame["lo_95"] <= frame["mean"]).all() and (frame["mean"] <= frame["hi_95"]).all()


@pytest.mark.filterwarnings("ignore")
def test_the_backtest_decides_whether_a_family_gets_its_regressors(tmp_path):
    _, result = _train_one(
        tmp_path,
        "southwest/usbp/sector=yuma",
        "[{name: seasonal_naive}, {name: sarimax},"
        " {name: sarimax, alias: sarimax_no_events, params: {use_regressors: false}}]",
        "{first_cutoff: 2023-05, step_months: 6, h: 12}",
        "train_start: 2016-01\n",
    )
    by_label = {c.spec.label: c for c in result.candidates}
    with_x, without = by_label["sarimax"], by_label["sarimax_no_events"]
    assert with_x.model.regressors_ and without.model.regressors_ == []
    assert without.effects is None and with_x.effects is not None
    assert with_x.metrics["rel_mae"] != without.metrics["rel_mae"]
    assert result.chosen.metrics["rel_mae"] == min(c.metrics["rel_mae"] for c in result.candidates)


@pytest.mark.filterwarnings("ignore")
def test_a_pooled_family_is_fitted_across_the_experiment_s_series(tmp_path):
    keys = [
        "southwest/usbp",
        "southwest/usbp/citizenship=cuba",
        "southwest/usbp/citizenship=venezuela",
    ]
    exp = Experiment.from_text(
        f"name: pooled\nmlflow_experiment: pooled\nseries: [{', '.join(keys)}]\n"
        "ensemble_top_k: 0\nmodels: [{name: seasonal_naive}, {name: leading}]\n"
        "backtest: {first_cutoff: 2023-05, step_months: 6, h: 12}\nlevel: [80, 95]\n",
        "test",
    )
    training = train(exp, ObservationStore(tmp_path), workers=1)
    for result in training.results:
        (leading,) = [c for c in result.candidates if c.spec.name == "leading"]
        assert leading.status == "ok", leading.error
        model = leading.model
        assert model.series == result.key and sorted(model.pool.targets) == keys
        # The snapshot's indicators reach it: Darién's Cubans for Cuba.
        assert model.pool.leads[result.key]["mexico"].startswith("mexico/inm/presented")
        assert np.isfinite(leading.metrics["rel_mae"])
    cuba = training.results[1]
    assert cuba.X is not None and cuba.key == keys[1]
    assert training.results[1].candidates[1].model.pool.leads[keys[1]]["darien"] == (
        "panama/darien/transits/citizenship=cuba"
    )
    frame = training.bundle().forecast(keys[2], 12)
    assert frame["mean"].notna().all()


INTERVALS = """
name: intervals
mlflow_experiment: intervals-test
series: [southwest/usbp, northern/usbp, coastal/usbp, southwest/ofo]
models: [{name: seasonal_naive}, {name: naive}]
backtest: {first_cutoff: 2016-11, step_months: 6, h: 12}
level: [50, 80, 95]
max_h: 36
"""


def test_served_bands_are_strictly_nested_and_widen_with_the_horizon(home, tmp_path):
    path = tmp_path / "intervals.yaml"
    path.write_text(INTERVALS)
    exp, _ = Experiment.load(path)
    training = train(exp, ObservationStore(home), workers=1)
    bundle = training.bundle()
    for result in training.results:
        assert {"winkler_80", "msis_95", "wis"} <= set(result.chosen.metrics)
        # Calibrated from the pooled backtests, which run as far as the stalest series is
        # served (coastal/usbp's OHSS data end 9 months before the total's), so no served step
        # is extrapolated (that would warn).
        with warnings.catch_warnings():
            warnings.simplefilter("error", EncountersWarning)
            frame = bundle.forecast(result.key, 36, [50, 80, 95])
        assert_well_formed(frame, [50, 80, 95])
        assert frame["hi_95"].iloc[-1] > frame["hi_95"].iloc[0]
