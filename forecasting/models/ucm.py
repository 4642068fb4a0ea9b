"""Unobserved components on ``log1p`` counts: level (or trend) + seasonal + regression + noise.

The seasonal component is stochastic by default: on the southwest series the January-over-December
ratio went from about 2.0 (2000s) to 0.9 (2014-2022), so a fixed seasonal profile fitted on the
whole history would misread a policy month such as January 2024 as "seasonal". Regressors follow
the rule of :mod:`forecasting.models._statespace`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.models._profile import UnobservedComponents
from forecasting.models._statespace import StateSpaceForecaster

TRENDS = ("local level", "local linear trend", "smooth trend", "random walk with drift")


class UCM(StateSpaceForecaster):
    """Structural time-series model with regressors on ``log1p(y)``.

    Args:
        trend: the level/trend specification, one of ``'local level'`` (random-walk level),
            ``'local linear trend'``, ``'smooth trend'``, ``'random walk with drift'``; each
            includes an irregular term.
        stochastic_seasonal: let the seasonal profile evolve (a random walk per month).
        season_length: months per season.
        min_t: a regressor whose coefficient has ``|t|`` below this is dropped, weakest first,
            and the model refitted; ``0`` keeps every non-constant regressor.
        keep: regressor columns never dropped, whatever their ``|t|``.
        use_regressors: ``False`` fits the family without the intervention regressors.

    Attributes set by :meth:`fit` (besides the base ones):
        results_: the statsmodels results of the final fit.
        exog_: the regressor columns the final fit uses.
        theta_: the effect at which each fractional column is read (see ``_statespace``).
    """

    def __init__(
        self,
        trend: str = "local level",
        stochastic_seasonal: bool = True,
        season_length: int = 12,
        min_t: float = 1.0,
        keep: tuple[str, ...] = (),
        use_regressors: bool = True,
    ):
        self.trend = trend
        self.stochastic_seasonal = stochastic_seasonal
        self.season_length = season_length
        self.min_t = min_t
        self.keep = keep
        self.use_regressors = use_regressors

    def _check_params(self) -> None:
        super()._check_params()
        if self.trend not in TRENDS:
            raise ValueError(f"trend must be one of {list(TRENDS)}; got {self.trend!r}")
        m = self.season_length
        if isinstance(m, bool) or not isinstance(m, int) or m < 2:
            raise ValueError(f"season_length must be an integer >= 2; got {m!r}")

    def _build(
        self, endog: pd.Series | np.ndarray, exog: pd.DataFrame | None
    ) -> UnobservedComponents:
        return UnobservedComponents(
            endog,
            level=self.trend,
            seasonal=self.season_length,
            stochastic_seasonal=self.stochastic_seasonal,
            exog=exog,
        )

    def _exog_param(self, column: str) -> str:
        return f"beta.{column}"
