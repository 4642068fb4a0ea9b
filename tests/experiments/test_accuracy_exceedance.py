"""Exceedance probabilities in the accuracy benchmark: from each model's bounds, scored by Brier."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from experiments.accuracy import exceedance
from forecasting.frame import CUTOFF, DS, MEAN, UNIQUE_ID, Y, hi_col, lo_col

LEVEL = [80, 95]
CUTOFFS = pd.date_range("2019-01-01", periods=40, freq="MS")


def _case(sigma_model: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A series whose months are lognormal around 1,000 with log sd 0.3, and a model forecasting
    the median with lognormal bounds of log sd ``sigma_model``, at every origin, 3 months ahead."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2019-01-01", periods=44, freq="MS")
    y = np.round(1000 * np.exp(rng.normal(0, 0.3, len(months))))
    panel = pd.DataFrame({UNIQUE_ID: "s", DS: months, Y: y})
    rows = []
    for cutoff in CUTOFFS:
        for step in (1, 2, 3):
            row = {"model": "m", UNIQUE_ID: "s", CUTOFF: cutoff}
            row[DS] = cutoff + pd.DateOffset(months=step)
            row[MEAN] = 1000.0
            for lv in LEVEL:
                z = stats.norm.ppf(0.5 + lv / 200)
                row[lo_col(lv)] = np.expm1(np.log1p(1000) - z * sigma_model)
                row[hi_col(lv)] = np.expm1(np.log1p(1000) + z * sigma_model)
            rows.append(row)
    return pd.DataFrame(rows), panel


def test_probabilities_follow_the_bounds_and_the_origin_month():
    forecasts, panel = _case(0.3)
    found = exceedance.probabilities(forecasts, panel, LEVEL)
    assert len(found) == len(forecasts) * len(exceedance.MULTIPLES)
    one = found[(found[CUTOFF] == CUTOFFS[5]) & (found[DS] == CUTOFFS[6])]
    origin = panel.set_index(DS).loc[CUTOFFS[5], Y]
    expected = stats.norm.sf(
        (np.log1p(origin * np.array(exceedance.MULTIPLES)) - np.log1p(1000)) / 0.3
    )
    assert np.allclose(one[exceedance.PROBABILITY], expected, atol=0.02)
    actual = panel.set_index(DS).loc[CUTOFFS[6], Y]
    assert list(one[exceedance.ABOVE]) == [float(actual > origin * m) for m in exceedance.MULTIPLES]


def test_brier_prefers_the_calibrated_spread():
    calibrated = exceedance.brier(exceedance.probabilities(*_case(0.3), LEVEL))
    overconfident = exceedance.brier(exceedance.probabilities(*_case(0.03), LEVEL))
    assert calibrated.loc["m", "brier"] < overconfident.loc["m", "brier"]
    table = exceedance.reliability(exceedance.probabilities(*_case(0.3), LEVEL), "m")
    assert table["rows"].sum() == 40 * 3 * len(exceedance.MULTIPLES)
