"""The served bundle: calibrated forecasts, request checks, scenario forecasts, the pyfunc edge."""

from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest

from forecasting.bundle import Bundle, BundleModel, SeriesModel, future_regressors
from forecasting.data import ObservationStore
from forecasting.errors import UnknownSeriesError
from forecasting.frame import series_history
from forecasting.interventions import Scenario, design_matrix, load_catalog
from forecasting.models import SARIMAX, UCM, Naive
from forecasting.models.base import Capability

KEY = "southwest/usbp"
REMOVE = {"remove": [{"event": "mx_enforcement_2023_12", "start": "2025-09"}]}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    catalog = load_catalog()
    y = series_history(ObservationStore(tmp_path_factory.mktemp("home")).panel(), KEY, "2016-01")
    X = design_matrix(catalog, KEY, y.index[0], y.index[-1])
    sarimax = SARIMAX().fit(y, X)
    entry = SeriesModel(
        KEY, "naive", Naive().fit(y), None, y, X, effect_models={"sarimax": sarimax}
    )
    return Bundle({KEY: entry}, catalog, [80, 95], 24)


def test_forecast_is_a_slice_of_one_cached_forecast(bundle):
    first = bundle.forecast(KEY, 6, [80])
    assert list(first.columns) == ["ds", "kind", "mean", "lo_80", "hi_80"]
    assert first["ds"].iloc[0] == pd.Timestamp("2025-09-01") and len(first) == 6
    assert (first["kind"] == "forecast").all()
    columns = ["ds", "kind", "mean", "lo_80", "hi_80"]
    assert first.equals(bundle.forecast(KEY, 24)[columns].iloc[:6])


@pytest.mark.parametrize(
    ("h", "level", "message"),
    [
        (0, None, r"h must be a whole number of months in 1\.\.24; got 0"),
        (25, None, r"in 1\.\.24"),
        (12, [90], r"level \[90\] is not calibrated; accepted levels are \[80, 95\]"),
    ],
)
def test_requests_outside_what_is_served_are_refused(bundle, h, level, message):
    with pytest.raises(ValueError, match=message):
        bundle.forecast(KEY, h, level)


def test_unknown_series_suggests_the_served_ones(bundle):
    with pytest.raises(UnknownSeriesError, match="did you mean southwest/usbp"):
        bundle.forecast("southwest/usbpp", 12)


def test_scenario_forecast_uses_the_effect_model(bundle):
    assert isinstance(bundle.effect_model(KEY), SARIMAX)
    reference = bundle.scenario_forecast(KEY, 12, Scenario())
    without = bundle.scenario_forecast(KEY, 12, Scenario.from_data(REMOVE))
    assert (without["mean"] > reference["mean"]).all()
    assert (without["lo_95"] <= without["mean"]).all() and (
        without["mean"] <= without["hi_95"]
    ).all()


def test_pyfunc_serves_plain_and_scenario_rows(bundle):
    model = BundleModel()
    model.bundle = bundle
    request = pd.DataFrame(
        {"series": [KEY, KEY], "h": [3, 3], "scenario": ["{}", json.dumps(REMOVE)]}
    )
    out = model.predict(None, request, params={"level": [80]})
    assert list(out.columns) == ["series", "ds", "kind", "mean", "lo_80", "hi_80"]
    assert len(out) == 6 and out["ds"].iloc[0] == "2025-09-01"
    assert (out["mean"].iloc[3:].to_numpy() > out["mean"].iloc[:3].to_numpy()).all()


def test_a_chosen_regression_without_regressors_defers_to_one_with_them(bundle):
    entry = bundle.series_model(KEY)
    plain = UCM(use_regressors=False).fit(entry.y, entry.X)
    chosen_plain = SeriesModel(
        KEY, "ucm", plain, None, entry.y, entry.X, effect_models=entry.effect_models
    )
    other = Bundle({KEY: chosen_plain}, bundle.catalog, [80, 95], 24)
    assert other.effect_model(KEY) is entry.effect_models["sarimax"]
    assert list(chosen_plain.regressions()) == ["sarimax"]
    with pytest.raises(NotImplementedError, match=r"no model with components \(ucm\) was trained"):
        other.effect_model(KEY, Capability.COMPONENTS)


def test_served_forecasts_hold_each_regressor_at_its_cutoff_value(bundle):
    # The rule the backtest measured: an event in force at the cutoff stays in force, even one
    # the catalog says ends later (that is a scenario question).
    entry = bundle.series_model(KEY)
    sarimax = entry.effect_models["sarimax"]
    future = future_regressors(sarimax, entry.X, 6)
    assert list(future.columns) == sarimax.regressors_
    assert future.index[0] == entry.y.index[-1] + pd.offsets.MonthBegin(1)
    for column in future.columns:
        assert (future[column] == entry.X[column].iloc[-1]).all()
    assert future_regressors(Naive().fit(entry.y), None, 6).shape == (6, 0)


def test_a_bundle_pickled_before_hierarchies_still_serves(bundle, tmp_path):
    path = bundle.save(tmp_path / "bundle.pkl")
    state = pickle.loads(path.read_bytes()).__getstate__()
    del state["hierarchy"]
    old = Bundle.__new__(Bundle)
    old.__setstate__({**state, "format": 1})
    frame = old.forecast(KEY, 3)
    assert list(frame["kind"]) == ["forecast"] * 3 and old.as_of(KEY) == pd.Timestamp("2025-08-01")
    with pytest.raises(ValueError, match=r"bundle format is not one of \(1, 2\)"):
        Bundle.__new__(Bundle).__setstate__({**state, "format": 0})
