"""The Forecaster contract, run over every registered model family."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import DataError, EncountersWarning, NotFittedError
from forecasting.frame import control_column, forecast_columns
from forecasting.models import MODELS, UCM, make_model
from forecasting.models._statespace import regression_of
from forecasting.models.base import NEEDS_REGRESSORS, Capability, Forecaster
from tests.forecasting.synthetic import encounter_series, future

H = 12
#: Constructor arguments a family needs to be built at all; every other family uses its defaults.
PARAMS = {"ensemble": {"members": ["seasonal_naive", UCM()], "weights": [0.3, 0.7]}}


def build(name: str) -> Forecaster:
    return make_model(name, **PARAMS.get(name, {}))


@pytest.fixture(scope="module")
def data() -> tuple[pd.Series, pd.DataFrame]:
    y, X = encounter_series()
    # An event that has not started by the cutoff: all zero over the fit window.
    return y, X.assign(later=0.0)


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, data) -> Forecaster:
    y, X = data
    model = build(request.param)
    if model.supports_regressors:
        return model.fit(y, X)
    with pytest.warns(EncountersWarning, match="takes no regressors"):
        return model.fit(y, X)


@pytest.fixture(scope="module")
def X_future(data) -> pd.DataFrame:
    return future(data[1], H)


def x_df(model: Forecaster, X_future: pd.DataFrame) -> pd.DataFrame | None:
    return X_future[model.regressors_] if model.regressors_ else None


def test_registry_builds_every_model():
    for name in MODELS:
        assert isinstance(build(name), MODELS[name])
    with pytest.raises(ValueError, match="unknown model 'arima'; registered models are"):
        make_model("arima")
    with pytest.raises(ValueError, match="does not take parameters"):
        make_model("naive", order=1)


def test_forecast_frame_layout(fitted, X_future):
    forecast = fitted.predict(H, x_df(fitted, X_future))
    assert list(forecast.columns) == ["mean", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert forecast.index.equals(X_future.index)
    assert forecast.index.name == "ds"
    assert np.isfinite(forecast.to_numpy()).all()


def test_intervals_are_nested_and_non_negative(fitted, X_future):
    f = fitted.predict(H, x_df(fitted, X_future))
    assert (f >= 0).all().all()
    assert (f["lo_95"] <= f["lo_80"]).all()
    assert (f["lo_80"] <= f["mean"]).all()
    assert (f["mean"] <= f["hi_80"]).all()
    assert (f["hi_80"] <= f["hi_95"]).all()
    assert (f["hi_95"] > f["lo_95"]).all()


def test_mean_is_on_the_count_scale(fitted, data, X_future):
    y = data[0]
    mean = fitted.predict(H, x_df(fitted, X_future))["mean"]
    assert y.iloc[-24:].min() / 3 < mean.mean() < y.iloc[-24:].max() * 3


def test_levels_come_as_requested(fitted, X_future):
    forecast = fitted.predict(3, x_df(fitted, X_future.iloc[:3]), level=[95, 50])
    assert list(forecast.columns) == forecast_columns([50, 95])
    with pytest.raises(ValueError, match=r"percent integers in \(0, 100\).*got \[0.8\]"):
        fitted.predict(3, x_df(fitted, X_future.iloc[:3]), level=[0.8])


def test_predict_before_fit_raises(data):
    for name in MODELS:
        with pytest.raises(NotFittedError, match="not fitted yet"):
            build(name).predict(H)


def test_bad_h_raises(fitted):
    with pytest.raises(ValueError, match="h must be a positive integer number of months; got 0"):
        fitted.predict(0)


def test_missing_regressor_is_named(fitted, X_future):
    if not fitted.supports_regressors:
        # The contract for families without regressors: they learn none, so X_df is not needed.
        assert fitted.regressors_ == []
        assert len(fitted.predict(H)) == H
        return
    assert fitted.regressors_ == ["step", "later"]
    with pytest.raises(DataError, match=r"X_df is missing regressor columns \['step'\]"):
        fitted.predict(H, X_future.drop(columns="step"))
    with pytest.raises(DataError, match="missing regressor columns"):
        fitted.predict(H)


def test_wrong_number_of_months_raises(fitted, X_future):
    if not fitted.supports_regressors:
        assert len(fitted.predict(6)) == 6
        return
    with pytest.raises(DataError, match=r"X_df must be indexed by the h=6 months .*got .*12 rows"):
        fitted.predict(6, X_future)


def test_extra_regressor_warns(fitted, X_future):
    extra = X_future.assign(unknown=1.0)
    with pytest.warns(EncountersWarning, match=r"\['unknown'\] were not learned in fit"):
        fitted.predict(H, extra[[*fitted.regressors_, "unknown"]])


def test_effects(fitted):
    if not fitted.supports_regressors:
        with pytest.raises(NotImplementedError, match="takes none, so it has no regressor"):
            fitted.effects()
        return
    if not fitted.can(Capability.EFFECTS):
        with pytest.raises(NotImplementedError, match="cannot attribute change"):
            fitted.effects()
        return
    effects = fitted.effects()
    assert list(effects.index) == ["step", "later"]
    assert list(effects.columns) == ["effect", "lo_80", "hi_80", "lo_95", "hi_95", "status"]
    assert effects.loc["later", "status"] == "all zero over the fit window"
    assert np.isnan(effects.loc["later", "effect"])


def test_sample_paths(fitted, X_future):
    if not fitted.can(Capability.SAMPLE_PATHS):
        with pytest.raises(NotImplementedError, match="cannot simulate sample paths"):
            fitted.sample_paths(H, x_df(fitted, X_future), n=10, rng=1)
        return
    paths = fitted.sample_paths(H, x_df(fitted, X_future), n=4000, rng=1)
    assert paths.shape == (4000, H)
    assert (paths >= 0).all()
    mean = fitted.predict(H, x_df(fitted, X_future))["mean"].to_numpy()
    np.testing.assert_allclose(paths.mean(axis=0), mean, rtol=0.1)


def test_clone_is_unfitted_with_the_same_parameters(fitted):
    twin = fitted.clone()
    assert type(twin) is type(fitted)
    assert twin.get_params().keys() == fitted.get_params().keys()
    assert not hasattr(twin, "cutoff_")


def test_bad_series_is_rejected(data):
    y, _ = data
    model = build("naive")
    with pytest.raises(DataError, match="consecutive months without gaps"):
        model.fit(y.drop(y.index[10]))
    with pytest.raises(DataError, match="counts >= 0"):
        model.fit(y.where(y.index != y.index[5], -1.0))
    with pytest.raises(DataError, match="month starts"):
        model.fit(pd.Series(y.to_numpy(), index=y.index + pd.Timedelta(days=1)))
    with pytest.raises(DataError, match="X must be indexed like y"):
        build("sarimax").fit(y, pd.DataFrame({"step": 0.0}, index=y.index[1:]))
    with pytest.raises(DataError, match="needs at least 36 monthly observations; got 20"):
        build("ets").fit(y.iloc[:20])


@pytest.mark.parametrize(
    "name", sorted(n for n, cls in MODELS.items() if "use_regressors" in cls().get_params())
)
def test_a_family_built_without_regressors_ignores_them_quietly(name, data, X_future):
    y, X = data
    model = make_model(name, use_regressors=False)
    assert model.takes_regressors and not model.supports_regressors
    assert not model.capabilities & NEEDS_REGRESSORS
    assert model.clone().get_params()["use_regressors"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", EncountersWarning)
        model.fit(y, X)
    assert model.regressors_ == []
    alone = make_model(name).fit(y)
    pd.testing.assert_frame_equal(model.predict(H), alone.predict(H))
    with pytest.raises(NotImplementedError, match="built with use_regressors=False"):
        model.effects()
    with pytest.raises(ValueError, match="use_regressors must be true or false; got 'no'"):
        make_model(name, use_regressors="no").fit(y, X)


def test_only_families_that_take_regressors_can_be_built_without():
    takers = {n for n, cls in MODELS.items() if Capability.REGRESSORS in cls.declared}
    built = {n for n, cls in MODELS.items() if "use_regressors" in cls().get_params()}
    # The ensemble passes regressors to the members that use them and has no switch of its own.
    assert built == takers - {"ensemble"}
    assert built == {"sarimax", "ucm", "prophet", "sklearn"}


def test_the_regression_protocol_where_declared(fitted, X_future):
    if not fitted.can(Capability.REGRESSION):
        with pytest.raises(NotImplementedError, match="is not a regression on log1p counts"):
            regression_of(fitted)
        return
    model = regression_of(fitted)
    reg = model.regression()
    assert reg.columns == tuple(model.exog_) and reg.cov.shape == (len(reg.beta),) * 2
    future = model.linearise(X_future[list(reg.columns)]).to_numpy()
    assert model.forecast_gap(future).shape == (H, len(reg.columns))
    paths = model.simulate_log_paths(future, 50, np.random.default_rng(0))
    assert paths.shape == (50, H) and np.isfinite(paths).all()
    assert np.isfinite(model.aic)


def test_components_where_declared(fitted, data):
    if not fitted.can(Capability.COMPONENTS):
        assert not hasattr(fitted, "component_draws")
        return
    betas = fitted.regression().draws(20, np.random.default_rng(0))
    last = len(data[0]) - 1
    states = fitted.component_draws((last - 12, last), betas, np.random.default_rng(1))
    assert states.shape == (20, 4) and np.isfinite(states).all()


def test_order_search_and_kept_refits_where_declared(fitted, data):
    y, X = data
    if fitted.can(Capability.ORDERS):
        assert fitted.aic_ and (fitted.order_, fitted.seasonal_order_) in fitted.aic_
        alone = fitted.clone(orders=((fitted.order_, fitted.seasonal_order_),)).fit(y, X)
        assert list(alone.aic_) == [(fitted.order_, fitted.seasonal_order_)]
    if fitted.can(Capability.KEEP):
        kept = fitted.clone(keep=("step",), min_t=50.0).fit(y, X)
        assert "step" in kept.exog_


def test_every_family_declares_only_known_capabilities():
    for name, cls in MODELS.items():
        assert cls.declared <= set(Capability), name
        assert isinstance(build(name).capabilities, frozenset)


def test_control_columns_are_read_linearly_where_declared(fitted, data):
    if not fitted.can(Capability.CONTROLS):
        assert not fitted.can(Capability.REGRESSION)
        return
    y, X = data
    rng = np.random.default_rng(0)
    # A control series' log1p count moving with the series: fractional values, never a shape.
    control = np.log1p(y.to_numpy()) + rng.normal(0, 0.1, len(y))
    with_control = X.assign(**{control_column("northern/usbp"): control})
    model = fitted.clone(min_t=0).fit(y, with_control)
    column = control_column("northern/usbp")
    assert column in model.exog_ and column not in model.theta_
    linear = model.linearise(with_control)
    np.testing.assert_array_equal(linear[column], with_control[column])
    assert model.regression().beta[model.exog_.index(column)] > 0
