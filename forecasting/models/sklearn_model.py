"""A scikit-learn regressor on lag features of ``log1p`` counts, forecasting recursively.

The target is the year-over-year change ``z_t - z_{t-12}`` of ``z = log1p(y)``, so the model
forecasts a deviation from seasonal naive, and every feature is a change too, so no row carries the
series' level:

- ``z_{t-k} - z_{t-k-12}`` for ``k = 1, 2, 3`` (recent year-over-year changes),
- ``z_{t-1} - z_{t-2}`` (last month's momentum),
- month of year (one-hot),
- ``x_t - x_{t-12}`` per regressor (an event's change in intensity against a year earlier).

Level-free rows from different series can be stacked to train one global model; :func:`design`
builds one series' rows for that purpose. Forecasts are simulated recursively: each path adds a
prediction and a resampled out-of-fold residual per month, and the forecast frame is the mean and
quantiles of ``expm1`` of the paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict

from forecasting.models.base import Capability, Forecaster
from forecasting.models.predictive import sample_frame

#: the seasonal lag the target is measured against, and the longest lag the features read.
SEASON = 12
MAX_LAG = SEASON + 3
LAG_FEATURES = ["yoy_lag1", "yoy_lag2", "yoy_lag3", "mom_lag1"]
MONTH_FEATURES = [f"month_{m}" for m in range(1, 13)]
#: contiguous folds for the out-of-fold residuals that drive the simulated noise.
RESIDUAL_FOLDS = 5


def _lag_features(z: np.ndarray, t: int | np.ndarray) -> np.ndarray:
    """Lag features for target positions ``t`` of ``z`` (shape (..., T)), last axis features."""
    return np.stack(
        [
            z[..., t - 1] - z[..., t - 1 - SEASON],
            z[..., t - 2] - z[..., t - 2 - SEASON],
            z[..., t - 3] - z[..., t - 3 - SEASON],
            z[..., t - 1] - z[..., t - 2],
        ],
        axis=-1,
    )


def _month_features(months: np.ndarray) -> np.ndarray:
    return (months[:, None] == np.arange(1, 13)[None, :]).astype(float)


def design(y: pd.Series, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature rows and targets of one series, for fitting a single or a global model.

    Args:
        y: counts on a monthly index (checked by the caller).
        X: regressors on the same index.

    Returns:
        ``(features, target)``: a frame of ``len(y) - 15`` rows indexed by target month with the
        lag, month and regressor-change columns, and the year-over-year ``log1p`` changes.
    """
    z = np.log1p(y.to_numpy())
    t = np.arange(MAX_LAG, len(z))
    lags = _lag_features(z, t)
    months = _month_features(y.index.month.to_numpy()[t])
    x = X.to_numpy()
    dx = x[t] - x[t - SEASON]
    columns = LAG_FEATURES + MONTH_FEATURES + [f"dx12_{c}" for c in X.columns]
    features = pd.DataFrame(np.hstack([lags, months, dx]), index=y.index[t], columns=columns)
    return features, z[t] - z[t - SEASON]


def default_estimator() -> Ridge:
    """A penalised linear model: a seasonal AR on year-over-year changes.

    The penalty was chosen on warm-up origins only (2009-11..2017-11, 23 series;
    ``experiments/tuning``): alpha 10 gave relMAE 1.044 against seasonal naive, 1.0 1.075 and 0.1
    1.102. Boosted trees on one series carry one regime's surge into another's forecasts; trees
    are for a global model, trained across series.
    """
    return Ridge(alpha=10.0)


class SklearnForecaster(Forecaster):
    """Recursive forecaster around any scikit-learn regressor.

    Args:
        estimator: an unfitted scikit-learn regressor (cloned at fit); ``None`` for
            :func:`default_estimator`.
        n_paths: simulated paths behind the mean and intervals of :meth:`predict`.
        random_state: seed for the simulated paths of :meth:`predict`.
        use_regressors: ``False`` fits the family without the intervention regressors.

    Attributes set by :meth:`fit` (besides the base ones):
        estimator_: the fitted regressor.
        residuals_: out-of-fold residuals of the year-over-year target, ``log1p`` scale.
    """

    declared = frozenset({Capability.REGRESSORS, Capability.SAMPLE_PATHS})
    #: three years: the fifteen months of lags leave 21 training rows.
    min_obs = 36

    def __init__(
        self,
        estimator: Any = None,
        n_paths: int = 500,
        random_state: int | None = 0,
        use_regressors: bool = True,
    ):
        self.estimator = estimator
        self.n_paths = n_paths
        self.random_state = random_state
        self.use_regressors = use_regressors

    def _check_params(self) -> None:
        if self.estimator is not None and not (
            hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict")
        ):
            raise ValueError(
                "estimator must be a scikit-learn regressor with fit and predict; "
                f"got {type(self.estimator).__name__}"
            )
        n = self.n_paths
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"n_paths must be an integer >= 2; got {n!r}")

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        features, target = design(y, X)
        template = default_estimator() if self.estimator is None else self.estimator
        # In-sample residuals of a flexible regressor are too small to simulate with.
        oof = cross_val_predict(
            clone(template), features, target, cv=KFold(RESIDUAL_FOLDS, shuffle=False)
        )
        self.residuals_ = target - oof
        self.estimator_ = clone(template).fit(features, target)
        self._columns_ = list(features.columns)
        self._z_tail_ = np.log1p(y.to_numpy()[-MAX_LAG:])
        self._x_tail_ = X.to_numpy()[-SEASON:]

    def _simulate(self, X_df: pd.DataFrame, n: int, rng: np.random.Generator) -> np.ndarray:
        h = len(X_df)
        z = np.tile(np.concatenate([self._z_tail_, np.zeros(h)]), (n, 1))
        months = _month_features(X_df.index.month.to_numpy())
        x = np.vstack([self._x_tail_, X_df.to_numpy()])
        dx = x[SEASON:] - x[:-SEASON]
        for step in range(h):
            t = MAX_LAG + step
            rows = np.hstack(
                [
                    _lag_features(z, t),
                    np.repeat(months[step][None, :], n, axis=0),
                    np.repeat(dx[step][None, :], n, axis=0),
                ]
            )
            change = self.estimator_.predict(pd.DataFrame(rows, columns=self._columns_))
            z[:, t] = z[:, t - SEASON] + change + rng.choice(self.residuals_, size=n)
        return np.expm1(z[:, MAX_LAG:])

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        paths = self._simulate(X_df, self.n_paths, np.random.default_rng(self.random_state))
        return sample_frame(np.clip(paths, 0, None), level)

    def _sample_paths(
        self, h: int, X_df: pd.DataFrame, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        # Paths carry the noise of the recursion only, not the estimator's parameter uncertainty.
        return self._simulate(X_df, n, rng)
