"""Rolling-origin backtests: layout, no hindsight in the regressors, per-step scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest, carry_forward, score
from forecasting.errors import DataError
from forecasting.models import Naive, SeasonalNaive
from forecasting.models.base import Capability, Forecaster
from forecasting.models.predictive import normal_frame
from tests.forecasting.synthetic import encounter_series


class Recorder(Forecaster):
    """Forecasts the last value and records the regressors each fit and predict received."""

    declared = frozenset({Capability.REGRESSORS})
    seen: list[dict] = []

    def _fit(self, y, X):
        self.last_ = float(y.iloc[-1])
        Recorder.seen.append({"cutoff": y.index[-1], "X": X.copy()})

    def _predict(self, h, X_df, level):
        Recorder.seen[-1]["X_df"] = X_df.copy()
        return normal_frame(np.full(h, self.last_), np.ones(h), level)


@pytest.fixture
def y() -> pd.Series:
    return encounter_series(n=72)[0]  # 2016-01 .. 2021-12


def test_frame_layout(y):
    frame = backtest(Naive(), y, origins=["2020-12-01", "2021-06-01"], h=9)
    assert list(frame.columns) == [
        "cutoff",
        "ds",
        "step",
        "y",
        "mean",
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
    ]
    assert len(frame) == 18
    first = frame[frame["cutoff"] == "2020-12-01"]
    assert list(first["step"]) == list(range(1, 10))
    assert first["ds"].iloc[0] == pd.Timestamp("2021-01-01")
    assert (first["mean"] == y["2020-12-01"]).all()
    np.testing.assert_array_equal(first["y"], y["2021-01-01":"2021-09-01"])
    # The second origin's horizon runs past the data: its actuals are missing, not dropped.
    assert frame[frame["cutoff"] == "2021-06-01"]["y"].isna().sum() == 3


def test_each_origin_refits_on_data_up_to_its_cutoff(y):
    frame = backtest(Naive, y, origins=["2019-03-01", "2018-01-01"], h=1)
    assert list(frame["cutoff"]) == [pd.Timestamp("2018-01-01"), pd.Timestamp("2019-03-01")]
    assert list(frame["mean"]) == [y["2018-01-01"], y["2019-03-01"]]


def test_regressors_carry_no_hindsight(y):
    index = y.index
    X_full = pd.DataFrame(
        {
            "step": (index >= "2020-06-01").astype(float),
            "pulse": (index == "2020-12-01").astype(float),
            "announced": (index >= "2020-11-01").astype(float),  # anticipation before the start
        },
        index=index,
    )
    Recorder.seen = []
    backtest(
        Recorder,
        y,
        X_full,
        origins=["2020-03-01", "2020-12-01"],
        h=4,
        event_starts={"announced": "2021-01-01"},
    )
    early, late = Recorder.seen
    # Before the step: its column is all zero, so the model never sees it.
    assert list(early["X"].columns) == []
    assert (early["X_df"].shape[1]) == 0
    # An event that starts after the cutoff is withheld even where its column is non-zero.
    assert list(late["X"].columns) == ["step", "pulse"]
    # What is in force at the cutoff stays in force: the pulse is frozen at its cutoff value.
    assert (late["X_df"]["step"] == 1).all()
    assert (late["X_df"]["pulse"] == 1).all()
    assert late["X_df"].index[0] == pd.Timestamp("2021-01-01")


def test_carry_forward():
    index = pd.date_range("2020-01-01", periods=3, freq="MS")
    X = pd.DataFrame({"a": [0.0, 0.5, 0.8], "b": [1.0, 1.0, 0.0]}, index=index)
    out = carry_forward(X, 2)
    assert list(out.index) == [pd.Timestamp("2020-04-01"), pd.Timestamp("2020-05-01")]
    assert out.to_dict("list") == {"a": [0.8, 0.8], "b": [0.0, 0.0]}


def test_bad_arguments(y):
    with pytest.raises(DataError, match=r"origins must be months of y .*got \['2030-01-01'\]"):
        backtest(Naive(), y, origins=["2030-01-01"])
    X = pd.DataFrame({"step": 0.0}, index=y.index)
    with pytest.raises(DataError, match=r"event_starts names columns \['nope'\]"):
        backtest(Naive(), y, X, origins=["2020-01-01"], event_starts={"nope": "2020-01-01"})
    with pytest.raises(DataError, match="X_full must cover every month of y"):
        backtest(Naive(), y, X.iloc[5:], origins=["2020-01-01"])


def test_a_failing_origin_is_named(y):
    with pytest.raises(DataError, match="needs at least 13") as info:
        backtest(SeasonalNaive(), y, origins=["2016-06-01"])
    assert "backtest origin 2016-06" in "".join(info.value.__notes__)


def test_score_known_values():
    c1, c2 = pd.Timestamp("2020-01-01"), pd.Timestamp("2020-02-01")
    frame = pd.DataFrame(
        {
            "cutoff": [c1, c1, c2, c2],
            "ds": pd.to_datetime(["2020-02-01", "2020-03-01", "2020-03-01", "2020-04-01"]),
            "step": [1, 2, 1, 2],
            "y": [10.0, 20.0, 20.0, np.nan],
            "mean": [12.0, 14.0, 20.0, 25.0],
            "lo_80": [11.0, 15.0, 18.0, 20.0],  # the first interval misses 10 by 1
            "hi_80": [13.0, 25.0, 22.0, 30.0],
        }
    )
    # MASE scales (season 1): history to c1 has |diffs| 2, 2 -> 2; to c2 also 4 -> 8/3.
    histories = {c1: pd.Series([1.0, 3.0, 5.0]), c2: pd.Series([1.0, 3.0, 5.0, 9.0])}
    by_step = score(frame, histories, season=1)
    assert list(by_step.index) == [1, 2]
    assert by_step.loc[1, "n"] == 2
    assert by_step.loc[2, "n"] == 1  # the row past the data is left out
    assert by_step.loc[1, "mae"] == pytest.approx(1.0)  # errors 2 and 0
    assert by_step.loc[1, "mase"] == pytest.approx((2 / 2 + 0) / 2)
    # RMSSE squares against the squared scale: (4 / mean(4, 4) + 0) / 2 -> sqrt(0.5)
    assert by_step.loc[1, "rmsse"] == pytest.approx(np.sqrt(0.5))
    assert by_step.loc[1, "coverage_80"] == 0.5
    # 2/0.2 * 1 for the miss: mean(2 + 10, 4)
    assert by_step.loc[1, "winkler_80"] == pytest.approx(8.0)
    # MSIS: each origin's interval score over its own scale: mean(12 / 2, 4 / (8/3))
    assert by_step.loc[1, "msis_80"] == pytest.approx((6 + 1.5) / 2)
    # WIS with one level: (|y - mean| / 2 + 0.1 * IS) / 1.5: mean((1 + 1.2), (0 + 0.4)) / 1.5
    assert by_step.loc[1, "wis"] == pytest.approx((2.2 + 0.4) / 2 / 1.5)
    overall = score(frame, histories, by=None, season=1)
    assert overall.loc["all", "n"] == 3
    assert overall.loc["all", "coverage_80"] == pytest.approx(2 / 3)
    # widths 2, 10, 4 over actuals 10, 20, 20
    assert overall.loc["all", "width_80"] == pytest.approx((16 / 3) / (50 / 3))
    bench = frame.assign(mean=[10.0, 10.0, 10.0, 10.0])
    assert score(frame, histories, by=None, benchmark=bench, season=1).loc[
        "all", "rel_mae"
    ] == pytest.approx((2 + 6 + 0) / (0 + 10 + 10))
