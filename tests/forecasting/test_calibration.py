"""Conformal calibration: known factors, pooling, nesting, real-time (rolling) use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.calibration import Calibrator, min_scores, rolling_calibrate
from forecasting.errors import DataError, EncountersWarning, NotFittedError
from forecasting.frame import hi_col, lo_col

M = np.log1p(100.0)  # every point forecast is 100; every model interval's log-scale arm is 1


def rows(scores, step=1, start="2015-01-01"):
    """Backtest rows whose actuals sit ``score`` from the forecast on the log1p scale,
    alternating sides."""
    scores = np.asarray(scores, dtype=float)
    cutoffs = pd.date_range(start, periods=len(scores), freq="MS")
    sides = np.where(np.arange(len(scores)) % 2 == 0, 1.0, -1.0)
    frame = pd.DataFrame(
        {
            "cutoff": cutoffs,
            "ds": cutoffs + pd.DateOffset(months=step),
            "step": step,
            "y": np.expm1(M + sides * scores),
            "mean": 100.0,
        }
    )
    for lv in (80, 95):
        frame[lo_col(lv)] = np.expm1(M - 1)
        frame[hi_col(lv)] = np.expm1(M + 1)
    return frame


def test_min_scores():
    assert (min_scores(80), min_scores(95), min_scores(90)) == (4, 19, 9)


def test_factors_are_conformal_quantiles_of_the_scores():
    frame = rows(np.arange(1, 20) / 10)  # scores 0.1 .. 1.9
    calibrator = Calibrator().fit(frame)
    # rank ceil(20 * 0.8) = 16 and ceil(20 * 0.95) = 19 of 19
    assert calibrator.factors_.loc[1, 80] == pytest.approx(1.6)
    assert calibrator.factors_.loc[1, 95] == pytest.approx(1.9)
    assert calibrator.bandwidth_.loc[1].tolist() == [0, 0]


def test_a_thin_step_pools_its_neighbours():
    frame = pd.concat([rows(np.arange(1, 20) / 10), rows([5.0, 5.0, 5.0], step=2)])
    calibrator = Calibrator().fit(frame)
    # step 2 alone has 3 scores; with step 1 it has 22: ranks ceil(23 * 0.8) = 19 and 22
    assert calibrator.bandwidth_.loc[2].tolist() == [1, 1]
    assert calibrator.factors_.loc[2, 80] == pytest.approx(1.9)
    assert calibrator.factors_.loc[2, 95] == pytest.approx(5.0)


def test_transform_sets_the_log_error_quantiles_around_the_forecast():
    calibrator = Calibrator().fit(rows(np.arange(1, 20) / 10))
    forecast = rows([0.0]).drop(columns=["cutoff", "ds", "step", "y"])
    out = calibrator.transform(forecast)
    assert out["hi_80"].iloc[0] == pytest.approx(np.expm1(M + 1.6))
    assert out["lo_80"].iloc[0] == pytest.approx(np.expm1(M - 1.6))
    assert out["hi_95"].iloc[0] == pytest.approx(np.expm1(M + 1.9))
    assert out["mean"].iloc[0] == 100.0
    # The model's own interval does not enter: a hundredfold wider one gives the same bounds.
    wide = forecast.assign(lo_95=0.0, hi_95=100.0 * forecast["hi_95"])
    pd.testing.assert_frame_equal(calibrator.transform(wide), out)
    # Beyond the backtest's last step the half-width grows as the square root of the step.
    with pytest.warns(EncountersWarning, match="steps beyond 1"):
        longer = calibrator.transform(pd.concat([forecast] * 4, ignore_index=True))
    np.testing.assert_allclose(np.log1p(longer["hi_95"]) - M, 1.9 * np.sqrt([1, 2, 3, 4]))


def test_a_wider_level_never_lies_inside_a_narrower_one():
    # Step 2 has four large errors: enough for its own 80 % quantile (3.0), while its 95 %
    # quantile pools step 1's hundred small ones and comes out at 0.1.
    frame = pd.concat([rows([0.1] * 100), rows([3.0] * 4, step=2, start="2030-01-01")])
    calibrator = Calibrator().fit(frame)
    assert calibrator.factors_.loc[2].tolist() == pytest.approx([3.0, 0.1])
    forecast = rows([0.0, 0.0]).drop(columns=["cutoff", "ds", "step", "y"])
    out = calibrator.transform(forecast).iloc[1]
    assert out["hi_95"] == out["hi_80"] == pytest.approx(np.expm1(M + 3.0))
    assert out["lo_95"] == out["lo_80"]


def test_calibrated_intervals_cover_nominally_out_of_sample():
    rng = np.random.default_rng(0)

    def frame(n):
        # The model says sd 0.1 on the log scale; the truth is 0.25.
        z = 1.959964 * 0.1
        out = rows(np.zeros(n), start="1700-01-01")  # thousands of months need room
        out["y"] = np.expm1(M + rng.normal(0, 0.25, n))
        out["lo_95"], out["hi_95"] = np.expm1(M - z), np.expm1(M + z)
        out["lo_80"], out["hi_80"] = np.expm1(M - 0.128155), np.expm1(M + 0.128155)
        return out

    calibrator = Calibrator().fit(frame(400))
    test = calibrator.transform(frame(4000))
    for lv in (80, 95):
        covered = (test[lo_col(lv)] <= test["y"]) & (test["y"] <= test[hi_col(lv)])
        assert covered.mean() == pytest.approx(lv / 100, abs=0.03)


def test_rolling_calibration_uses_only_errors_known_at_each_cutoff():
    # Twenty calm origins, then ten where the actual lands 3 arms away.
    frame = rows([0.5] * 20 + [3.0] * 10)
    out = rolling_calibrate(frame)
    cutoffs = sorted(frame["cutoff"].unique())
    # 19 earlier scores are needed for 95 %: the first 19 origins cannot be calibrated.
    assert sorted(out["cutoff"].unique()) == cutoffs[19:]
    hi = out.set_index("cutoff")["hi_95"]
    assert hi[cutoffs[19]] == pytest.approx(np.expm1(M + 0.5))
    assert hi[cutoffs[20]] == pytest.approx(np.expm1(M + 0.5))
    # Origin 21 has seen one 3.0 score among 21: rank ceil(22 * 0.95) = 21 picks it.
    assert hi[cutoffs[21]] == pytest.approx(np.expm1(M + 3.0))


def test_errors():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Calibrator().transform(rows([1.0]))
    with pytest.raises(DataError, match="needs at least 19 backtest rows with an actual; got 5"):
        Calibrator().fit(rows([1.0] * 5))
    # Fitting reads only step, y and mean; replacing bounds needs them.
    fitted = Calibrator(level=[90]).fit(rows([1.0] * 20))
    with pytest.raises(DataError, match=r"missing interval columns \['lo_90', 'hi_90'\]"):
        fitted.transform(rows([1.0]))


def test_rolling_calibration_forgets_origins_older_than_its_window():
    # Thirty stormy origins, then forty calm ones, a month apart.
    frame = rows([3.0] * 30 + [0.5] * 40)
    last = frame["cutoff"].max()
    windowed = rolling_calibrate(frame, window_months=36).set_index("cutoff")["hi_95"]
    assert windowed[last] == pytest.approx(np.expm1(M + 0.5))
    # The whole history still holds the storm: 30 of 69 scores are 3.0.
    whole = rolling_calibrate(frame, window_months=None).set_index("cutoff")["hi_95"]
    assert whole[last] == pytest.approx(np.expm1(M + 3.0))


def test_a_calibrator_of_an_earlier_kind_is_refused():
    calibrator = Calibrator().fit(rows(np.arange(1, 20) / 10))
    del calibrator.score_  # as pickled before the scores were absolute log errors
    with pytest.raises(NotFittedError, match="fitted by an earlier version"):
        calibrator.transform(rows([0.0]).drop(columns=["cutoff", "ds", "step", "y"]))
