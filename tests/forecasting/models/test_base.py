"""Helpers of the Forecaster contract: levels, back-transforms, hyperparameter checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.frame import check_level
from forecasting.models import SARIMAX, Ensemble, Naive, SeasonalNaive
from forecasting.models.base import future_index
from forecasting.models.predictive import lognormal_frame
from forecasting.selection import weighted_median
from tests.forecasting.synthetic import encounter_series


def test_check_level():
    assert check_level([95, 80, 95]) == [80, 95]
    for bad in ([0.8], [100], [True], 80):
        with pytest.raises(ValueError, match="percent integers"):
            check_level(bad)


def test_lognormal_frame_mean_is_a_mean():
    mu, var = np.array([np.log(101.0)]), np.array([0.04])
    frame = lognormal_frame(mu, var, [80])
    # exp(mu + var / 2) - 1, not the median exp(mu) - 1 = 100
    assert frame["mean"].iloc[0] == pytest.approx(101 * np.exp(0.02) - 1)
    assert frame["hi_80"].iloc[0] == pytest.approx(101 * np.exp(1.281552 * 0.2) - 1, rel=1e-6)


def test_future_index():
    index = future_index(pd.Timestamp("2024-11-01"), 3)
    assert list(index.strftime("%Y-%m")) == ["2024-12", "2025-01", "2025-02"]
    assert index.name == "ds"


def test_hyperparameters_are_checked_at_fit():
    y, X = encounter_series(n=48)
    model = SARIMAX(min_t=-1)  # construction only stores
    with pytest.raises(ValueError, match="min_t must be a number >= 0; got -1"):
        model.fit(y, X)
    with pytest.raises(ValueError, match=r"orders must be .*got \[\(1, 1\)\]"):
        SARIMAX(orders=[(1, 1)]).fit(y, X)
    with pytest.raises(ValueError, match="weights must be 2 finite numbers >= 0"):
        Ensemble(members=["naive", "seasonal_naive"], weights=[1.0]).fit(y)


def test_a_failed_refit_leaves_the_model_unfitted():
    y, _ = encounter_series(n=48)
    model = SeasonalNaive().fit(y)
    with pytest.raises(ValueError):
        model.fit(y.iloc[:5])
    assert not hasattr(model, "cutoff_")


def test_ensemble_takes_the_weighted_median_of_means_and_quantiles():
    y, _ = encounter_series(n=48)
    naive, seasonal = Naive().fit(y).predict(6), SeasonalNaive().fit(y).predict(6)
    # A member outweighing the others together decides; two equal weights give the average.
    heavy = Ensemble(members=[Naive(), "seasonal_naive"], weights=[1, 3]).fit(y).predict(6)
    pd.testing.assert_frame_equal(heavy, seasonal)
    even = Ensemble(members=[Naive(), "seasonal_naive"]).fit(y).predict(6)
    pd.testing.assert_frame_equal(even, (naive + seasonal) / 2)


def test_a_member_that_breaks_cannot_drag_the_combination():
    values = np.array([[1090.0, 5.0], [1099.0, 7.0], [31284.0, 6.0]])
    np.testing.assert_allclose(weighted_median(values, np.array([0.39, 0.31, 0.30])), [1099, 6])
    np.testing.assert_allclose(weighted_median(values, np.array([0.1, 0.1, 0.8])), [31284, 6])
