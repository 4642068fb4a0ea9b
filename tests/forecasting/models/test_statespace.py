"""The regression protocol of the state-space families: coefficients and path simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import NotFittedError
from forecasting.interventions import design_matrix
from forecasting.models import UCM, Naive
from forecasting.models._statespace import regression_of
from tests.forecasting.fitted_series import USBP, sarimax, series, ucm


@pytest.mark.parametrize("fitted", [sarimax, ucm], ids=["sarimax", "ucm"])
def test_simulated_paths_match_the_models_forecast(fitted):
    f = fitted(USBP)
    reg = f.model.regression()
    assert reg.columns == tuple(f.model.exog_)
    months = pd.date_range(f.y.index[-1], periods=13, freq="MS")[1:]
    X_future = design_matrix(f.catalog, USBP, months[0], months[-1])[list(reg.columns)]
    z = f.model.simulate_log_paths(X_future.to_numpy(), 20000, np.random.default_rng(3))
    forecast = f.model.results_.get_forecast(12, exog=X_future.to_numpy())
    np.testing.assert_allclose(z.mean(axis=0), forecast.predicted_mean, atol=0.01)
    np.testing.assert_allclose(z.var(axis=0), forecast.var_pred_mean, rtol=0.05)


def test_regression_needs_a_fitted_state_space_model():
    with pytest.raises(NotFittedError):
        regression_of(UCM())
    y, _ = series(USBP)
    with pytest.raises(NotImplementedError, match="Naive is not a regression.*SARIMAX or UCM"):
        regression_of(Naive().fit(y))
