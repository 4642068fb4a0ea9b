"""Regression with seasonal ARIMA errors on ``log1p`` counts (statsmodels ``SARIMAX``).

The order is chosen by AIC among a few candidates, fitted with every non-constant regressor; then
regressors that do not earn their place are dropped (see :mod:`forecasting.models._statespace`).
AIC values are comparable across candidates with different differencing only because every
candidate's likelihood skips the same first months (the largest ``d + D * s`` among them), so each
scores the same observations given the same start.

Each candidate is estimated as an ARMA model of the differenced series and regressors, whose
likelihood over those months is the one of the undifferenced model with a diffuse start, with
about half the states to filter; forecasts, intervals and effects come from the undifferenced model
at the estimated parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.tsa.statespace import sarimax as sm_sarimax

from forecasting.models import _profile
from forecasting.models._profile import Profile, ProfileFit
from forecasting.models._statespace import StateSpaceForecaster
from forecasting.models.base import Capability

Order = tuple[int, int, int]
SeasonalOrder = tuple[int, int, int, int]

#: The airline model and neighbours, and a non-seasonal IMA. Chosen on warm-up origins only
#: (2009-11..2017-11, 23 series, every scored month before the accuracy benchmark's window;
#: ``experiments/tuning``): these four gave relMAE 0.885 against seasonal naive, the same four plus
#: two models differenced only seasonally 0.891.
DEFAULT_ORDERS: tuple[tuple[Order, SeasonalOrder], ...] = (
    ((0, 1, 1), (0, 1, 1, 12)),
    ((1, 1, 1), (0, 1, 1, 12)),
    ((1, 1, 0), (0, 1, 1, 12)),
    ((0, 1, 1), (0, 0, 0, 0)),
)


class SARIMAX(StateSpaceForecaster):
    """Regression with SARIMA errors on ``log1p(y)``, order chosen by AIC.

    Args:
        orders: candidate ``((p, d, q), (P, D, Q, s))`` pairs; the one with the lowest AIC wins.
        min_t: a regressor whose coefficient has ``|t|`` below this is dropped, weakest first,
            and the model refitted; ``0`` keeps every non-constant regressor.
        keep: regressor columns never dropped, whatever their ``|t|``.
        use_regressors: ``False`` fits the family without the intervention regressors.

    Attributes set by :meth:`fit` (besides the base ones):
        order_, seasonal_order_: the chosen orders.
        aic_: AIC per candidate ``(order, seasonal_order)``, on a common sample, with fractional
            regressor values read as given (the chosen fit then rereads them multiplicatively).
        theta_: the effect at which each fractional column is read (see ``_statespace``).
        results_: the statsmodels results of the final fit.
        exog_: the regressor columns the final fit uses.
    """

    declared = StateSpaceForecaster.declared | {Capability.ORDERS}
    _scale_param = "sigma2"

    def __init__(
        self,
        orders: tuple[tuple[Order, SeasonalOrder], ...] = DEFAULT_ORDERS,
        min_t: float = 1.0,
        keep: tuple[str, ...] = (),
        use_regressors: bool = True,
    ):
        self.orders = orders
        self.min_t = min_t
        self.keep = keep
        self.use_regressors = use_regressors

    def _check_params(self) -> None:
        super()._check_params()
        try:
            ok = len(self.orders) > 0 and all(
                len(order) == 3
                and len(seasonal) == 4
                and all(isinstance(v, int) and v >= 0 for v in (*order, *seasonal))
                for order, seasonal in self.orders
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                "orders must be a non-empty sequence of ((p, d, q), (P, D, Q, s)) integer "
                f"tuples, e.g. {DEFAULT_ORDERS[0]}; got {self.orders!r}"
            )

    def _build(self, endog: pd.Series | np.ndarray, exog: pd.DataFrame | None) -> _profile.SARIMAX:
        return _profile.SARIMAX(
            endog,
            exog=exog,
            order=self.order_,
            seasonal_order=self.seasonal_order_,
            loglikelihood_burn=self._burn_,
        )

    def _exog_param(self, column: str) -> str:
        return column

    def _error_scale(self, values: np.ndarray) -> np.ndarray:
        (_, d, _), (_, D, _, s) = self.order_, self.seasonal_order_
        for _ in range(D):
            values = values[s:] - values[:-s]
        for _ in range(d):
            values = values[1:] - values[:-1]
        return values

    def _error_model(self, endog: np.ndarray) -> sm_sarimax.SARIMAX:
        (p, d, q), (P, D, Q, s) = self.order_, self.seasonal_order_
        return sm_sarimax.SARIMAX(
            endog,
            order=(p, 0, q),
            seasonal_order=(P, 0, Q, s if P or Q else 0),
            loglikelihood_burn=self._burn_ - d - D * s,
        )

    def _select(self, z: pd.Series, X: pd.DataFrame) -> tuple[Profile, ProfileFit]:
        self._burn_ = max(order[1] + seasonal[1] * seasonal[3] for order, seasonal in self.orders)
        self.aic_: dict[tuple[Order, SeasonalOrder], float] = {}
        fits: dict[tuple[Order, SeasonalOrder], tuple[Profile, ProfileFit]] = {}
        failures: list[Exception] = []
        for order, seasonal in self.orders:
            self.order_, self.seasonal_order_ = tuple(order), tuple(seasonal)
            key = (self.order_, self.seasonal_order_)
            try:
                fits[key] = self._profile_fit(z, X)
            except (np.linalg.LinAlgError, ValueError) as exc:
                failures.append(exc)
                continue
            fit = fits[key][1]
            self.aic_[key] = -2 * fit.llf + 2 * (len(fit.params) + len(X.columns))
        finite = {k: v for k, v in self.aic_.items() if np.isfinite(v)}
        if not finite:
            exc = failures[0] if failures else ValueError("every candidate order had a NaN AIC")
            exc.add_note(f"SARIMAX: no candidate order could be fitted; tried {self.orders}")
            raise exc
        best = min(finite, key=finite.__getitem__)
        self.order_, self.seasonal_order_ = best
        return fits[best]
