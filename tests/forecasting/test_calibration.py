"""Conformal calibration: known factors, pooling, nesting, real-time (rolling) use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.calibration import (
    NEST_GAP,
    Calibrator,
    bands,
    min_scores,
    rolling_calibrate,
    well_formed,
)
from forecasting.errors import DataError, EncountersWarning, NotFittedError
from forecasting.frame import hi_col, lo_col
from forecasting.pooled_calibration import PooledCalibrator, rolling_calibrate_pooled, volatility

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
    # quantile pools step 1's hundred small ones and comes out at 0.1: the 95 % half-width is
    # raised to just beyond the 80 %'s (NEST_GAP), so the bands are strictly nested.
    calibrator = Calibrator().fit(frame)
    assert calibrator.factors_.loc[2].tolist() == pytest.approx([3.0, 3.0 + NEST_GAP])
    forecast = rows([0.0, 0.0]).drop(columns=["cutoff", "ds", "step", "y"])
    out = calibrator.transform(forecast).iloc[1]
    assert out["hi_80"] == pytest.approx(np.expm1(M + 3.0))
    assert out["hi_95"] == pytest.approx(np.expm1(M + 3.0 + NEST_GAP))
    assert out["lo_95"] < out["lo_80"]


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
    # Every score is 0.5: the 80 % half-width is 0.5, the 95 % one just beyond it.
    assert hi[cutoffs[19]] == pytest.approx(np.expm1(M + 0.5 + NEST_GAP))
    assert hi[cutoffs[20]] == pytest.approx(np.expm1(M + 0.5 + NEST_GAP))
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
    assert windowed[last] == pytest.approx(np.expm1(M + 0.5 + NEST_GAP))
    # The whole history still holds the storm: 30 of 69 scores are 3.0, and so does even the
    # 80 % quantile (rank ceil(70 * 0.8) = 56).
    whole = rolling_calibrate(frame, window_months=None).set_index("cutoff")["hi_95"]
    assert whole[last] == pytest.approx(np.expm1(M + 3.0 + NEST_GAP))


def test_a_calibrator_of_an_earlier_kind_is_refused():
    calibrator = Calibrator().fit(rows(np.arange(1, 20) / 10))
    del calibrator.score_  # as pickled before the scores were absolute log errors
    with pytest.raises(NotFittedError, match="fitted by an earlier version"):
        calibrator.transform(rows([0.0]).drop(columns=["cutoff", "ds", "step", "y"]))


def _series(changes: float, months: int = 60, start: str = "2010-01-01") -> pd.Series:
    """A series whose log1p alternates up and down by ``changes``: volatility ``changes``."""
    logs = M + changes * (np.arange(months) % 2)
    return pd.Series(np.expm1(logs), index=pd.date_range(start, periods=months, freq="MS"))


def _backtest(y: pd.Series, scale: float, steps=(1, 2)) -> pd.DataFrame:
    """Origins every month of ``y``'s second half; at each step the actual sits ``scale`` times
    0.2, 0.4, .., 2.0 (cycling) from the forecast of 100 on the log1p scale, alternating sides."""
    cutoffs = y.index[len(y) // 2 : -max(steps)]
    parts = []
    for i, cutoff in enumerate(cutoffs):
        for step in steps:
            score = scale * (1 + i % 10) / 5
            side = 1.0 if (i + step) % 2 else -1.0
            parts.append(
                {
                    "cutoff": cutoff,
                    "ds": cutoff + pd.DateOffset(months=step),
                    "step": step,
                    "y": np.expm1(M + side * score),
                    "mean": 100.0,
                }
            )
    frame = pd.DataFrame(parts)
    for lv in (80, 95):
        frame[lo_col(lv)], frame[hi_col(lv)] = 0.0, 1e9
    return frame


def test_pooled_half_widths_scale_with_each_series_volatility():
    quiet, loud = _series(0.1), _series(0.4)
    # Errors proportional to each series' volatility: their scaled scores are alike, so the
    # pooled quantiles hold for both and each series' half-width is its volatility times them.
    backtests = {"quiet": _backtest(quiet, 0.1), "loud": _backtest(loud, 0.4)}
    histories = {"quiet": quiet, "loud": loud}
    pooled = PooledCalibrator([80, 95], volatility_months=12, window_months=None)
    pooled.fit(backtests, histories, quiet.index[-1])
    # 28 origins a series: scaled scores 0.2 .. 1.6 six times at a step (both series), 1.8 and
    # 2.0 four times; of the 56, rank ceil(57 * 0.8) = 46 is 1.6
    assert pooled.quantiles_.loc[1, 80] == pytest.approx(1.6)
    loud_widths, quiet_widths = pooled.calibrator(loud).factors_, pooled.calibrator(quiet).factors_
    assert (loud_widths[80] / quiet_widths[80]).tolist() == pytest.approx([4.0, 4.0])
    assert (quiet_widths[95] > quiet_widths[80]).all()
    assert volatility(quiet, 12).iloc[-1] == pytest.approx(0.1)


def test_pooled_calibration_is_recency_weighted_when_asked():
    y = _series(0.1, months=120)
    early, late = _backtest(y, 0.1), _backtest(y, 0.1)
    late = late[late["cutoff"] >= y.index[90]]
    early = early[early["cutoff"] < y.index[90]]
    early["y"] = np.expm1(M + 3.0)  # a storm long ago
    frame = pd.concat([early, late])
    flat = PooledCalibrator([80], 12, None).fit({"a": frame}, {"a": y}, y.index[-1])
    recent = PooledCalibrator([80], 12, None, half_life_months=3).fit(
        {"a": frame}, {"a": y}, y.index[-1]
    )
    assert flat.quantiles_.loc[1, 80] == pytest.approx(30.0)  # 3.0 / volatility 0.1
    assert recent.quantiles_.loc[1, 80] < 2.5


def test_well_formed_widens_with_the_horizon_and_nests_strictly():
    factors = pd.DataFrame(
        {80: [0.3, 0.2, 0.5], 95: [0.3, 0.6, 0.4]}, index=pd.Index([1, 2, 3], name="step")
    )
    out = well_formed(factors)
    assert out[80].tolist() == pytest.approx([0.3, 0.3, 0.5])
    assert out[95].tolist() == pytest.approx([0.3 + NEST_GAP, 0.6, 0.6])
    assert_well_formed(bands(np.full(3, 100.0), out), [80, 95])


def assert_well_formed(frame: pd.DataFrame, levels) -> None:
    """Bands strictly nested at every month (a shared bound only at zero) and no narrower on
    the log1p scale from one month to the next: the test the served bands must pass."""
    levels = sorted(levels)
    for narrow, wide in zip(levels, levels[1:], strict=False):
        assert (frame[hi_col(wide)] > frame[hi_col(narrow)]).all(), (narrow, wide)
        below = frame[lo_col(narrow)] > 0
        assert (frame[lo_col(wide)][below] < frame[lo_col(narrow)][below]).all(), (narrow, wide)
    for lv in levels:
        width = np.log1p(frame[hi_col(lv)].to_numpy()) - np.log1p(frame[lo_col(lv)].to_numpy())
        assert (np.diff(width) >= -1e-9).all(), lv


def test_the_well_formed_check_fails_on_bands_that_touch_or_shrink():
    good = bands(np.full(3, 100.0), pd.DataFrame({80: [0.2, 0.3, 0.3], 95: [0.4, 0.5, 0.6]}))
    assert_well_formed(good, [80, 95])
    touching = good.assign(hi_95=good["hi_80"])
    with pytest.raises(AssertionError):
        assert_well_formed(touching, [80, 95])
    shrinking = good.assign(hi_80=good["hi_80"][::-1].to_numpy())
    with pytest.raises(AssertionError):
        assert_well_formed(shrinking, [80, 95])


def test_rolling_pooled_calibration_uses_only_errors_known_at_each_cutoff():
    y = _series(0.1, months=80)
    frame = _backtest(y, 0.1)
    storm = frame["cutoff"] >= y.index[70]
    frame.loc[storm, "y"] = np.expm1(M + 3.0)  # errors at origins from month 70 on
    pooled = PooledCalibrator([80], 12, None)
    out = rolling_calibrate_pooled({"a": frame}, {"a": y}, pooled)["a"].set_index("cutoff")
    before = out.loc[y.index[70], "hi_80"]
    # origin 70 has seen no storm (its outcomes come after its cutoff): the calm width
    assert before.max() < np.expm1(M + 0.3)
    assert out.loc[y.index[-3], "hi_80"].max() > np.expm1(M + 2.9)


def test_adaptive_conformal_widens_after_misses():
    y = _series(0.1, months=160)
    frame = _backtest(y, 0.1)
    storm = frame["cutoff"] >= y.index[140]
    frame.loc[storm, "y"] = np.expm1(M + 0.25)  # scaled 2.5: beyond every calm score
    pooled = PooledCalibrator([80], 12, None)
    plain = rolling_calibrate_pooled({"a": frame}, {"a": y}, pooled)["a"]
    adaptive = rolling_calibrate_pooled({"a": frame}, {"a": y}, pooled, aci_gamma=0.02)["a"]
    at = (plain["cutoff"] == y.index[150]).to_numpy()
    # the plain quantile still holds the calm months' 2.0; the adaptive one, after a run of
    # misses, has moved up to the storm's 2.5
    assert plain.loc[at, "hi_80"].to_numpy() == pytest.approx(np.expm1(M + 0.2))
    assert adaptive.loc[at, "hi_80"].to_numpy() == pytest.approx(np.expm1(M + 0.25))
