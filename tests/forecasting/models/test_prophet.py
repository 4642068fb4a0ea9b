"""Prophet on real series that collapsed: its forecasts must stay near where the series is."""

from __future__ import annotations

import pytest

from forecasting.backtest import carry_forward
from forecasting.models import Prophet
from tests.forecasting.fitted_series import USBP, VENEZUELA, series


@pytest.mark.parametrize("key", [USBP, VENEZUELA])
def test_forecasts_follow_a_series_after_its_collapse(key):
    # Both series fell tenfold and more in 2023-2025; a linear trend on counts forecast zeros
    # from there. Within a factor of 5 leaves room for Venezuela's wild seasonal swings.
    y, X = series(key)
    X = X.loc[:, (X != 0).any()]
    model = Prophet().fit(y, X)
    mean = model.predict(12, carry_forward(X, 12))["mean"]
    last = y.iloc[-1]
    assert (mean > last / 5).all() and (mean < 5 * last).all(), (last, mean.round().tolist())
    effects = model.effects()
    assert effects["effect"].dropna().gt(-100).all()
