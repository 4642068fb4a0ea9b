"""Benchmarks: the last value and the value twelve months earlier.

Both are the textbook random walks on the count scale (as in statsforecast), so their ``mean`` is
the benchmark every relative score divides by. Intervals are Gaussian with the in-sample residual
RMS, widened by ``sqrt(h)`` (naive) or ``sqrt(number of seasons ahead)`` (seasonal naive), and
clipped at zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.models.base import Forecaster, normal_frame


class Naive(Forecaster):
    """Forecast the last observed value for every future month."""

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        values = y.to_numpy()
        self.last_ = float(values[-1])
        self.sigma_ = float(np.sqrt(np.mean(np.diff(values) ** 2)))

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        steps = np.arange(1, h + 1)
        return normal_frame(np.full(h, self.last_), self.sigma_ * np.sqrt(steps), level)


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
        self.sigma_ = float(np.sqrt(np.mean((values[m:] - values[:-m]) ** 2)))

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        m = self.season_length
        steps = np.arange(h)
        seasons_ahead = steps // m + 1
        mean = self.last_season_[steps % m]
        return normal_frame(mean, self.sigma_ * np.sqrt(seasons_ahead), level)
