"""The concentrated likelihood behind SARIMAX and UCM gives statsmodels' own answers, faster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.statespace import sarimax as sm_sarimax
from statsmodels.tsa.statespace.mlemodel import MLEModel
from statsmodels.tsa.statespace.structural import UnobservedComponents
from threadpoolctl import threadpool_limits

from forecasting.models import SARIMAX, UCM
from forecasting.models._profile import FixedErrors, Profile, filter_columns
from forecasting.models.base import ENGINE_THREADS
from forecasting.models.sarimax import DEFAULT_ORDERS
from tests.forecasting.synthetic import encounter_series

ORDER, SEASONAL = DEFAULT_ORDERS[0]


@pytest.fixture(scope="module")
def data() -> tuple[pd.Series, pd.DataFrame]:
    y, X = encounter_series(n=108, effect=-0.30, seed=7)
    # A second regressor with no effect: a pulse that decays over a few months.
    on = X.index >= "2018-03-01"
    pulse = np.zeros(len(X))
    pulse[on] = 0.7 ** np.arange(on.sum())
    return y, X.assign(pulse=pulse)


def test_columns_filter_like_separate_series(data):
    y, X = data
    model = UnobservedComponents(np.log1p(y).to_numpy(), level="local level", seasonal=12)
    params = model.start_params
    v, V, F, state = filter_columns(model, params, X.to_numpy())
    np.testing.assert_allclose(v, model.filter(params).forecasts_error[0])
    for j, column in enumerate(X.columns):
        alone = model.clone(X[column].to_numpy()).filter(params)
        np.testing.assert_allclose(V[:, j], alone.forecasts_error[0], atol=1e-9)
        np.testing.assert_allclose(F, alone.forecasts_error_cov[0, 0])
        np.testing.assert_allclose(state[:, j], alone.predicted_state[:, -1], atol=1e-9)


def test_concentrated_fit_reaches_the_joint_maximum(data):
    y, X = data
    model = SARIMAX(orders=((ORDER, SEASONAL),), min_t=0).fit(y, X)
    # The pulse's fractional values enter as the fit read them (multiplicatively).
    exog = model.linearise(X)
    with threadpool_limits(ENGINE_THREADS):
        joint = sm_sarimax.SARIMAX(
            np.log1p(y), exog=exog, order=ORDER, seasonal_order=SEASONAL, loglikelihood_burn=13
        ).fit(disp=False, maxiter=200)
    assert model.results_.llf >= joint.llf - 1e-6
    assert model.results_.llf == pytest.approx(joint.llf, abs=1e-3)
    # Orders are chosen on the plain reading, before the fit rereads the pulse.
    with threadpool_limits(ENGINE_THREADS):
        plain = sm_sarimax.SARIMAX(
            np.log1p(y), exog=X, order=ORDER, seasonal_order=SEASONAL, loglikelihood_burn=13
        ).fit(disp=False, maxiter=200)
    assert model.aic_[(ORDER, SEASONAL)] == pytest.approx(plain.aic, abs=1e-2)
    np.testing.assert_allclose(model.results_.params[X.columns], joint.params[X.columns], atol=1e-3)


@pytest.mark.parametrize("family", [SARIMAX(orders=((ORDER, SEASONAL),), min_t=0), UCM(min_t=0)])
def test_oim_covariance_is_statsmodels_own(family, data):
    y, X = data
    results = family.fit(y, X).results_
    model, params = results.model, results.params.to_numpy()
    fast = model.observed_information_matrix(params)
    loop = MLEModel.observed_information_matrix(model, params)
    np.testing.assert_allclose(fast, loop, rtol=1e-6, atol=1e-9 * np.abs(loop).max())


def test_t_values_at_fixed_errors_are_the_oim_ones(data):
    y, X = data
    fitted = UCM(min_t=0).fit(y, X)
    results = fitted.results_
    profile = Profile(UCM()._build(np.log1p(y).to_numpy(), None), fitted.linearise(X))
    params = results.params[profile.model.param_names].to_numpy()
    t = FixedErrors(profile, params).t_values(list(X.columns))
    names = [f"beta.{c}" for c in X.columns]
    expected = (results.params[names] / results.bse[names]).abs().to_numpy()
    np.testing.assert_allclose(t, expected, rtol=1e-5)
