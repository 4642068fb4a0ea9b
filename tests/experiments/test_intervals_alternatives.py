"""The interval experiment's alternatives (experiments/intervals/alternatives.py): signed
quantiles lean towards the side the errors fell on, and statsforecast's conformal intervals come
back in a calibrated backtest's layout, from what each origin knew."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.intervals.alternatives import signed_pooled, statsforecast_conformal
from forecasting.backtest import backtest
from forecasting.frame import CUTOFF, DS, MEAN, STEP, Y, hi_col, lo_col
from forecasting.models import make_model
from forecasting.pooled_calibration import PooledCalibrator

LEVEL = [80, 95]


def _histories() -> dict[str, pd.Series]:
    """Two series that rise by 2 % a month: a last-value forecast errs low far more than high."""
    rng = np.random.default_rng(4)
    index = pd.date_range("2000-01-01", periods=180, freq="MS")
    out = {}
    for i, key in enumerate(["a", "b"]):
        steps = rng.normal(0.02, 0.03, len(index))
        out[key] = pd.Series(np.round(1000 * (i + 1) * np.exp(np.cumsum(steps))), index=index)
    return out


def test_signed_quantiles_lean_towards_the_errors_side_and_stay_well_formed():
    histories = _histories()
    origins = pd.date_range("2004-01-01", "2013-10-01", freq="3MS")
    frames = {
        k: backtest(lambda: make_model("naive"), y, None, origins, 12, LEVEL)
        for k, y in histories.items()
    }
    found = signed_pooled(frames, histories, LEVEL, PooledCalibrator(LEVEL, 60, None))
    late = found["a"][found["a"][CUTOFF] == found["a"][CUTOFF].max()].sort_values(STEP)
    centre = np.log1p(late[MEAN])
    up = np.log1p(late[hi_col(95)]) - centre
    down = centre - np.log1p(late[lo_col(95)])
    assert (up > down).all()  # a rising series: actuals come in above the last value
    for side in (up, down):
        assert (np.diff(side.to_numpy()) >= -1e-12).all()
    assert (late[lo_col(95)] < late[lo_col(80)]).all()
    assert (late[hi_col(80)] < late[hi_col(95)]).all()
    # Only what was known: the first origins had no earlier errors and are not issued.
    assert found["a"][CUTOFF].min() > origins[0]


def test_statsforecast_conformal_rows_come_from_each_cutoffs_past():
    histories = _histories()
    cutoffs = [pd.Timestamp("2001-06-01"), pd.Timestamp("2010-01-01")]
    found = statsforecast_conformal(histories, cutoffs, LEVEL, n_windows=2)
    rows = found["a"]
    # 2001-06 has 18 months: fewer than two 12-month windows and a month, so it is left out.
    assert set(rows[CUTOFF]) == {cutoffs[1]}
    assert list(rows[STEP]) == list(range(1, 13))
    assert (rows[DS] > cutoffs[1]).all()
    assert np.allclose(rows[MEAN], histories["a"].loc[cutoffs[1]])
    assert np.allclose(rows[Y], histories["a"].reindex(rows[DS]))
    assert (rows[lo_col(95)] <= rows[lo_col(80)] + 1e-9).all()
    assert (rows[hi_col(80)] <= rows[hi_col(95)] + 1e-9).all()
