"""Prophet on ``log1p`` counts, with the interventions as extra regressors.

On ``log1p(y)`` Prophet's additive seasonality and regressors act multiplicatively on the counts
(a regressor's effect is ``100 * (exp(coef) - 1)`` percent, as in the state-space families), and a
trend that falls cannot take the forecast below zero (on counts, a linear trend fitted through a
collapse extrapolates far from the last month, and a multiplicative season flips sign with it).
Intervals are quantiles of Prophet's predictive samples, back-transformed; the mean is the
lognormal mean from Prophet's point forecast and the samples' variance on the log scale, so it is
a mean (Prophet's ``interval_width`` is not used).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from forecasting.frame import DS, EFFECT, MEAN, Y, hi_col, lo_col
from forecasting.models.base import Capability, Forecaster


class _NoPlotlyNotice(logging.Filter):
    """Drops the ERROR Prophet logs on import when plotly is absent: this project never plots
    with it. Installed when this module is imported, which unpickling a fitted model does before
    it imports prophet, so a service loading a bundle does not log it either."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "plotly" not in record.getMessage()


logging.getLogger("prophet.plot").addFilter(_NoPlotlyNotice())


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    # Prophet draws its predictive samples from numpy's global generator; seed it for this call
    # only and give the caller's global state back.
    state = np.random.get_state()
    if seed is not None:
        np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


class Prophet(Forecaster):
    """Prophet on ``log1p`` counts with yearly seasonality and one regressor per intervention.

    Args:
        changepoint_prior_scale: flexibility of the piecewise-linear trend.
        seasonality_prior_scale: strength of the yearly seasonality prior.
        regressor_prior_scale: scale of the normal prior on each regressor coefficient.
        uncertainty_samples: predictive samples drawn for the intervals.
        random_state: seed for the predictive samples (``None``: numpy's global state).
        use_regressors: ``False`` fits the family without the intervention regressors.

    Attributes set by :meth:`fit` (besides the base ones):
        model_: the fitted ``prophet.Prophet``.
    """

    declared = frozenset({Capability.REGRESSORS, Capability.EFFECTS, Capability.SAMPLE_PATHS})
    min_obs = 24

    def __init__(
        self,
        changepoint_prior_scale: float = 0.05,
        seasonality_prior_scale: float = 10.0,
        regressor_prior_scale: float = 10.0,
        uncertainty_samples: int = 500,
        random_state: int | None = 0,
        use_regressors: bool = True,
    ):
        self.changepoint_prior_scale = changepoint_prior_scale
        self.seasonality_prior_scale = seasonality_prior_scale
        self.regressor_prior_scale = regressor_prior_scale
        self.uncertainty_samples = uncertainty_samples
        self.random_state = random_state
        self.use_regressors = use_regressors

    def _check_params(self) -> None:
        n = self.uncertainty_samples
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"uncertainty_samples must be an integer >= 2; got {n!r}")

    def _frame(self, index: pd.DatetimeIndex, X: pd.DataFrame) -> pd.DataFrame:
        # Internal regressor names cannot collide with Prophet's reserved column names.
        out = pd.DataFrame({DS: index})
        for name, col in self._names_.items():
            out[name] = X[col].to_numpy()
        return out

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        import cmdstanpy
        import prophet

        self._names_ = {f"regressor_{i}": col for i, col in enumerate(X.columns)}
        model = prophet.Prophet(
            growth="linear",
            yearly_seasonality=True,
            weekly_seasonality=False,
            daily_seasonality=False,
            changepoint_prior_scale=self.changepoint_prior_scale,
            seasonality_prior_scale=self.seasonality_prior_scale,
            uncertainty_samples=self.uncertainty_samples,
        )
        for name in self._names_:
            model.add_regressor(name, prior_scale=self.regressor_prior_scale, standardize=False)
        frame = self._frame(y.index, X)
        frame[Y] = np.log1p(y.to_numpy())
        # cmdstanpy logs two INFO lines per fit to its own stream handler.
        with cmdstanpy.disable_logging():
            model.fit(frame)
        self.model_ = model

    def _samples(self, future: pd.DataFrame, n: int, seed: int | None) -> np.ndarray:
        """``n`` predictive sample paths of ``log1p(y)``, shape (n, months)."""
        # predictive_samples draws `uncertainty_samples` paths; ask for n by setting it per call.
        fitted_n, self.model_.uncertainty_samples = self.model_.uncertainty_samples, n
        try:
            with _seeded(seed):
                return self.model_.predictive_samples(future)["yhat"].T
        finally:
            self.model_.uncertainty_samples = fitted_n

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        future = self._frame(X_df.index, X_df)
        samples = self._samples(future, self.uncertainty_samples, self.random_state)
        with _seeded(self.random_state):
            mu = self.model_.predict(future)["yhat"].to_numpy()
        out = pd.DataFrame({MEAN: np.expm1(mu + samples.var(axis=0) / 2)})
        for lv in level:
            tail = (100 - lv) / 200
            out[lo_col(lv)] = np.expm1(np.quantile(samples, tail, axis=0))
            out[hi_col(lv)] = np.expm1(np.quantile(samples, 1 - tail, axis=0))
        return out

    def _effects(self, level: list[int]) -> pd.DataFrame:
        # A MAP fit has no coefficient uncertainty, so the intervals are NaN.
        from prophet.utilities import regressor_coefficients

        coefs = regressor_coefficients(self.model_).set_index("regressor")["coef"]
        out = pd.DataFrame(index=pd.Index(list(self._names_.values())))
        out[EFFECT] = 100 * np.expm1(coefs.reindex(list(self._names_)).to_numpy())
        for lv in level:
            out[lo_col(lv)] = np.nan
            out[hi_col(lv)] = np.nan
        return out

    def _sample_paths(
        self, h: int, X_df: pd.DataFrame, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        # A MAP fit has no coefficient uncertainty: paths vary by trend changes and noise only.
        seed = int(rng.integers(2**32 - 1))
        return np.expm1(self._samples(self._frame(X_df.index, X_df), n, seed))
