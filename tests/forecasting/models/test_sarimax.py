"""SARIMAX (and the shared state-space machinery): effects, regressor selection, simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models import SARIMAX, UCM
from forecasting.models.sarimax import DEFAULT_ORDERS
from tests.forecasting.synthetic import encounter_series, future

H = 12


@pytest.fixture(scope="module")
def data():
    return encounter_series(n=108, effect=-0.30, seed=7)


@pytest.fixture(scope="module")
def sarimax(data):
    y, X = data
    return SARIMAX().fit(y, X)


def test_recovers_an_injected_step_effect(sarimax):
    effect = sarimax.effects().loc["step"]
    assert effect["status"] == "kept"
    assert effect["lo_95"] <= -30 <= effect["hi_95"]
    assert effect["lo_95"] < effect["lo_80"] < effect["effect"] < effect["hi_80"] < effect["hi_95"]
    assert -40 < effect["effect"] < -20


def test_ucm_recovers_the_same_effect(data):
    y, X = data
    effect = UCM().fit(y, X).effects().loc["step"]
    assert effect["lo_95"] <= -30 <= effect["hi_95"]


def test_order_is_chosen_by_aic_on_a_common_sample(sarimax):
    assert sarimax.results_.cov_type == "oim"
    assert set(sarimax.aic_) == {(tuple(o), tuple(s)) for o, s in DEFAULT_ORDERS}
    assert (sarimax.order_, sarimax.seasonal_order_) == min(sarimax.aic_, key=sarimax.aic_.get)
    # Every candidate skips the same first months, the largest d + D * s.
    assert sarimax.results_.model.loglikelihood_burn == 13


def test_weak_regressor_is_dropped_but_still_required(data):
    y, X = data
    model = SARIMAX(orders=(DEFAULT_ORDERS[0],), min_t=100).fit(y, X)
    effects = model.effects()
    assert effects.loc["step", "status"].startswith("|t| = ")
    assert "< min_t = 100" in effects.loc["step", "status"]
    assert np.isnan(effects.loc["step", "effect"])
    assert model.exog_ == []
    assert len(model.predict(H, future(X, H))) == H
    kept = SARIMAX(orders=(DEFAULT_ORDERS[0],), min_t=0).fit(y, X)
    assert kept.exog_ == ["step"]


def test_forecast_mean_is_linear_in_the_coefficient(sarimax, data):
    # The shortcut behind coefficient uncertainty must equal refiltering with a shifted beta.
    X_future = future(data[1], H).to_numpy()
    results = sarimax.results_
    shifted = results.params.copy()
    shifted["step"] += 0.2
    refiltered = results.model.filter(shifted).get_forecast(H, exog=X_future).predicted_mean
    base = results.get_forecast(H, exog=X_future).predicted_mean.to_numpy()
    gap = sarimax.forecast_gap(X_future)
    np.testing.assert_allclose(refiltered.to_numpy(), base + 0.2 * gap[:, 0], atol=1e-8)


def test_coefficient_uncertainty_widens_intervals(sarimax, data):
    forecast = sarimax.predict(H, future(data[1], H))
    results = sarimax.results_
    engine = results.get_forecast(H, exog=future(data[1], H).to_numpy())
    hi_without = np.expm1(
        engine.predicted_mean.to_numpy() + 1.959964 * np.sqrt(engine.var_pred_mean.to_numpy())
    )
    assert (forecast["hi_95"].to_numpy() >= hi_without - 1e-6).all()


def test_mean_is_the_lognormal_mean_not_the_median(sarimax, data):
    forecast = sarimax.predict(H, future(data[1], H))
    median = forecast[["lo_95", "hi_95"]].apply(np.log1p).mean(axis=1).pipe(np.expm1)
    assert (forecast["mean"] > median).all()


def test_sample_paths_carry_the_step_effect(sarimax, data):
    X = data[1]
    with_step = sarimax.sample_paths(H, future(X, H, step=1.0), n=4000, rng=3)
    without = sarimax.sample_paths(H, future(X, H, step=0.0), n=4000, rng=3)
    ratio = with_step.mean(axis=0) / without.mean(axis=0)
    expected = 1 + sarimax.effects().loc["step", "effect"] / 100
    np.testing.assert_allclose(ratio, expected, rtol=0.05)
    # The same seed gives the same paths.
    np.testing.assert_array_equal(
        with_step, sarimax.sample_paths(H, future(X, H, step=1.0), n=4000, rng=3)
    )


def test_a_decaying_pulse_is_read_multiplicatively():
    """A -50 % pulse halving every two months is -25 % two months on, not (1 - 0.5) ** 0.5 - 1."""
    index = pd.date_range("2012-01-01", periods=108, freq="MS", name="ds")
    rng = np.random.default_rng(3)
    k = np.arange(108) - 84
    pulse = np.where(k >= 0, 0.5 ** (np.maximum(k, 0) / 2), 0.0)
    log_y = (
        np.log(20_000)
        + 0.25 * np.sin(2 * np.pi * index.month.to_numpy() / 12)
        + np.cumsum(rng.normal(0, 0.01, 108))
        + rng.normal(0, 0.005, 108)
    )
    y = pd.Series(np.round(np.exp(log_y) * (1 - 0.5 * pulse)), index=index)
    X = pd.DataFrame({"pulse": pulse}, index=index)
    model = SARIMAX(orders=(DEFAULT_ORDERS[0],), min_t=0).fit(y, X)
    beta = model.results_.params["pulse"]
    # The fixed point: the column is read at the effect the fit estimates.
    assert np.log1p(model.theta_["pulse"]) == pytest.approx(beta, abs=1e-3)
    assert model.effects().loc["pulse", "effect"] == pytest.approx(-50, abs=1.5)
    half = model.linearise(pd.DataFrame({"pulse": [0.5]}))["pulse"].iloc[0]
    theta = model.theta_["pulse"]
    assert half == pytest.approx(np.log1p(0.5 * theta) / np.log1p(theta))
    assert 100 * np.expm1(beta * half) == pytest.approx(-25, abs=1.5)
    # Values of 0 and 1, and a scenario's intensity above 1, are not reread.
    np.testing.assert_array_equal(
        model.linearise(pd.DataFrame({"pulse": [0.0, 1.0, 2.0]}))["pulse"], [0.0, 1.0, 2.0]
    )
