"""The accuracy benchmark's choice at an origin uses only what was observed by then.

An error planted in months after an origin must not move the choice or the calibrated forecast
made at that origin; the same error planted in months already observed must (so the test can
tell the two apart).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.accuracy.project import (
    BENCH,
    nested_choices,
    per_series_calibrated,
    pooled_calibrated,
    pooled_choices,
)
from forecasting.frame import CUTOFF, DS, MEAN, STEP, Y, hi_col, lo_col
from forecasting.pooled_calibration import PooledCalibrator
from forecasting.selection import choose_at

LEVEL = [80]
CUTOFFS = pd.date_range("2015-01-01", periods=24, freq="MS")
H = 6


def _frame(y: pd.Series, error: float, seed: int) -> pd.DataFrame:
    """A backtest frame at every cutoff: forecasts off by ``error`` (log scale) plus noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for cutoff in CUTOFFS:
        for step in range(1, H + 1):
            ds = cutoff + pd.DateOffset(months=step)
            mean = y[ds] * np.exp(error + rng.normal(0, 0.02))
            rows.append({CUTOFF: cutoff, DS: ds, STEP: step, Y: y[ds], MEAN: mean})
    frame = pd.DataFrame(rows)
    frame[lo_col(80)] = frame[MEAN] * 0.8
    frame[hi_col(80)] = frame[MEAN] * 1.25
    return frame


@pytest.fixture
def frames() -> dict[str, pd.DataFrame]:
    months = pd.date_range("2014-01-01", "2018-01-01", freq="MS")
    y = pd.Series(1000 + 100 * np.sin(np.arange(len(months)) / 2), index=months)
    return {BENCH: _frame(y, 0.3, 0), "good": _frame(y, 0.05, 1), "fair": _frame(y, 0.1, 2)}


def _plant(frames, origin: pd.Timestamp, after: bool) -> dict[str, pd.DataFrame]:
    """``good`` made 50 times worse at the earlier origins' months after (or up to) ``origin``."""
    planted = {k: f.copy() for k, f in frames.items()}
    good = planted["good"]
    months = good[DS] > origin if after else good[DS] <= origin
    rows = (good[CUTOFF] < origin) & months
    good.loc[rows, MEAN] *= 50
    return planted


def test_errors_visible_only_after_the_origin_change_no_choice(frames):
    origin = CUTOFFS[12]
    clean = choose_at(frames, BENCH, origin, top_k=1)
    assert clean[0] == "good"
    assert choose_at(_plant(frames, origin, after=True), BENCH, origin, top_k=1) == clean
    # The same error in months already observed is seen, and the choice moves.
    assert choose_at(_plant(frames, origin, after=False), BENCH, origin, top_k=1)[0] == "fair"


def _issued(frames, origin, pooled_calibration: bool) -> tuple[pd.DataFrame, dict]:
    choices = nested_choices(frames, [origin], 1)
    if pooled_calibration:
        history = frames[BENCH].drop_duplicates(DS).set_index(DS)[Y]
        calibrator = PooledCalibrator(LEVEL, 12, None)
        issued = pooled_calibrated({"a": frames}, {"a": choices}, {"a": history}, calibrator, LEVEL)
        return issued["a"], choices
    return per_series_calibrated(frames, choices, LEVEL, None), choices


@pytest.mark.parametrize("pooled_calibration", [False, True], ids=["per-series", "pooled"])
def test_pooled_choice_and_calibrated_forecast_ignore_later_errors(frames, pooled_calibration):
    origin = CUTOFFS[12]
    later = _plant(frames, origin, after=True)
    assert pooled_choices({"a": frames}, [origin]) == pooled_choices({"a": later}, [origin])
    expected, chosen = _issued(frames, origin, pooled_calibration)
    got, chosen_later = _issued(later, origin, pooled_calibration)
    assert chosen == chosen_later == {origin: ("good", {"good": 1.0})}
    pd.testing.assert_frame_equal(got, expected)
    seen, _ = _issued(_plant(frames, origin, after=False), origin, pooled_calibration)
    assert not np.allclose(seen[hi_col(80)], expected[hi_col(80)])
