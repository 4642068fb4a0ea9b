"""Benchmarks: the last value and the value twelve months earlier.

Both keep the textbook point forecast (as in statsforecast), so their ``mean`` is the benchmark
every relative score divides by. Their intervals are multiplicative: Gaussian on ``log1p`` with the
in-sample RMS of the log changes, widened by ``sqrt(h)`` (naive) or ``sqrt(seasons ahead)``
(seasonal naive). Count-scale Gaussian intervals would keep the spread of a 250,000-a-month year
when the series has fallen to 6,000, and clip at zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.models.base import Forecaster
from forecasting.models.predictive import multiplicative_frame


class Naive(Forecaster):
    """Forecast the last observed value for every future month."""

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        values = y.to_numpy()
        self.last_ = float(values[-1])
        self.sigma_ = float(np.sqrt(np.mean(np.diff(np.log1p(values)) ** 2)))

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        steps = np.arange(1, h + 1)
        return multiplicative_frame(np.full(h, self.last_), self.sigma_ * np.sqrt(steps), level)


class SeasonalNaive(Forecaster):
    """Forecast each month with the value observed one season earlier.

    Args:
        season_length: months per season.
    """

    def __init__(self, season_length: int = 12):
        self.season_length = season_length

    def _check_params(self) -> None:
        m = self.season_length
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"season_length must be a positive integer; got {m!r}")

    @property
    def min_obs(self) -> int:  # type: ignore[override]
        # One full season to repeat plus one seasonal difference to scale the intervals.
        return self.season_length + 1

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        values = y.to_numpy()
        m = self.season_length
        self.last_season_ = values[-m:].copy()
        logs = np.log1p(values)
        self.sigma_ = float(np.sqrt(np.mean((logs[m:] - logs[:-m]) ** 2)))

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        m = self.season_length
        steps = np.arange(h)
        seasons_ahead = steps // m + 1
        mean = self.last_season_[steps % m]
        return multiplicative_frame(mean, self.sigma_ * np.sqrt(seasons_ahead), level)
