"""The accuracy ceiling's hindsight choices and simple rules (experiments/accuracy/ceiling.py)."""

import numpy as np
import pandas as pd
import pytest

from experiments.accuracy.ceiling import _drift, _rules, combination_rel, hindsight
from experiments.accuracy.run import BENCHMARK
from forecasting.frame import CUTOFF, DS, UNIQUE_ID, Y

CUTOFFS = pd.to_datetime(["2020-01-01", "2020-04-01"])


def _frame(errors: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """Forecast rows whose absolute error per (series, cutoff) is given, actual 100, one month."""
    rows = []
    for model, by_series in errors.items():
        for key, per_cutoff in by_series.items():
            for cutoff, err in zip(CUTOFFS, per_cutoff, strict=True):
                ds = cutoff + pd.offsets.MonthBegin(1)
                rows.append(
                    {
                        UNIQUE_ID: key,
                        CUTOFF: cutoff,
                        DS: ds,
                        Y: 100.0,
                        "model": model,
                        "mean": 100.0 + err,
                    }
                )
    return pd.DataFrame(rows)


def test_hindsight_picks_per_series_and_for_all():
    rel = pd.DataFrame(
        {"a": [0.5, 0.5, 2.0, 2.0], "b": [1.0, 1.0, 1.0, 1.0]},
        index=pd.MultiIndex.from_product([["s1", "s2"], CUTOFFS], names=[UNIQUE_ID, CUTOFF]),
    )
    scores = hindsight(rel)
    assert scores["best candidate for all series"] == pytest.approx(1.0)
    assert scores["each series' best candidate"] == pytest.approx(np.sqrt(0.5))


def test_a_combination_beats_its_members_when_their_errors_cancel():
    frame = _frame(
        {
            BENCHMARK: {"s1": [10.0, 10.0]},
            "project:a": {"s1": [4.0, 4.0]},
            "project:b": {"s1": [-3.0, -2.0]},
        }
    )
    bench = frame[frame["model"] == BENCHMARK]
    bench_mae = (
        (bench["mean"] - bench[Y])
        .abs()
        .set_axis(pd.MultiIndex.from_frame(bench[[UNIQUE_ID, CUTOFF]]))
    )
    best = combination_rel(frame, ["project:a", "project:b"], bench_mae)
    # a alone: 0.4 and 0.4; b alone: 0.3 and 0.2; their mean: 0.05 and 0.1.
    assert best == pytest.approx(np.sqrt(0.05 * 0.1))


def test_seasonal_drift_repeats_an_exactly_seasonal_series():
    months = pd.date_range("2010-01-01", periods=120, freq="MS")
    pattern = np.array([5, 6, 9, 10, 10, 8, 7, 7, 6, 6, 5, 4], dtype=float) * 100
    history = pd.Series(np.tile(pattern, 10), index=months)
    future_months = np.arange(1, 13)
    forecast = _rules(history.to_numpy(), future_months, _drift(history))
    np.testing.assert_allclose(forecast["last value + seasonal drift"], pattern)
    np.testing.assert_allclose(forecast["mean of the last 2 months"], np.full(12, 450.0))
