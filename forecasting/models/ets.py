"""Exponential smoothing with additive errors and seasonality on ``log1p`` counts (statsmodels).

Additive on the log scale is multiplicative on counts, which suits series whose seasonal swing
scales with their level. The predictive distribution of ``log1p(y)`` is Gaussian with the exact
ETS forecast variance, back-transformed by :func:`forecasting.models.base.lognormal_frame`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.tsa.exponential_smoothing.ets import ETSModel, ETSResults

from forecasting.errors import EncountersWarning
from forecasting.models._statespace import MAXITER, quiet_statsmodels
from forecasting.models.base import Capability, Forecaster
from forecasting.models.predictive import lognormal_frame

#: trend choice -> statsmodels (trend, damped_trend) candidates; ``auto`` keeps the lower AIC.
TRENDS: dict[str, list[tuple[str | None, bool]]] = {
    "none": [(None, False)],
    "additive": [("add", False)],
    "damped": [("add", True)],
    "auto": [(None, False), ("add", True)],
}


class ETS(Forecaster):
    """ETS(A, N|A|Ad, A) on ``log1p(y)``; takes no regressors.

    Args:
        trend: ``'none'``, ``'additive'``, ``'damped'`` (additive damped), or ``'auto'`` (no trend
            or damped trend, whichever has the lower AIC; an undamped trend on the log scale
            compounds over a 12-24 month horizon).
        season_length: months per season.

    Attributes set by :meth:`fit` (besides the base ones):
        results_: the statsmodels results of the chosen model.
        aic_: AIC per candidate ``(trend, damped_trend)``.
    """

    declared = frozenset({Capability.SAMPLE_PATHS})
    min_obs = 36

    def __init__(self, trend: str = "auto", season_length: int = 12):
        self.trend = trend
        self.season_length = season_length

    def _check_params(self) -> None:
        if self.trend not in TRENDS:
            raise ValueError(f"trend must be one of {list(TRENDS)}; got {self.trend!r}")
        m = self.season_length
        if isinstance(m, bool) or not isinstance(m, int) or m < 2:
            raise ValueError(f"season_length must be an integer >= 2; got {m!r}")

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        z = np.log1p(y)
        fits: dict[tuple[str | None, bool], ETSResults] = {}
        for trend, damped in TRENDS[self.trend]:
            model = ETSModel(
                z,
                error="add",
                trend=trend,
                damped_trend=damped,
                seasonal="add",
                seasonal_periods=self.season_length,
            )
            with quiet_statsmodels():
                fits[(trend, damped)] = model.fit(disp=False, maxiter=MAXITER)
        self.aic_ = {key: float(res.aic) for key, res in fits.items()}
        self.results_ = fits[min(self.aic_, key=self.aic_.__getitem__)]
        if not (self.results_.mle_retvals or {}).get("converged", True):
            warnings.warn(
                f"ETS fit did not converge in {MAXITER} iterations (series ending "
                f"{y.index[-1]:%Y-%m}); its forecasts may be poor",
                EncountersWarning,
                stacklevel=4,
            )

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        n = self.results_.nobs
        with quiet_statsmodels():
            prediction = self.results_.get_prediction(start=n, end=n + h - 1)
        mu = np.asarray(prediction.predicted_mean)
        var = np.asarray(prediction.var_pred_mean)
        return lognormal_frame(mu, var, level)

    def _sample_paths(
        self, h: int, X_df: pd.DataFrame, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        with quiet_statsmodels():
            simulated = self.results_.simulate(h, anchor="end", repetitions=n, rng=rng)
        return np.expm1(np.asarray(simulated).reshape(h, n).T)
