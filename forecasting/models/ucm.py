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
from forecasting.models.base import Capability

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

    declared = StateSpaceForecaster.declared | {Capability.COMPONENTS}

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

    # -- components (Capability.COMPONENTS) -------------------------------------------------

    def component_draws(
        self, months: tuple[int, int], betas: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Joint draws of the smoothed level and seasonal in two fitted months.

        Drawn from their smoothed distribution (covariances in and across the months), then
        moved by each coefficient draw's departure from the estimate: the smoothed states are
        linear in the coefficients.

        Args:
            months: positions ``(a, b)`` of the two months in the fitted series, ``a < b``.
            betas: coefficient draws, shape (n, k), as :meth:`regression`'s ``draws`` give.
            rng: random generator.

        Returns:
            Array of shape (n, 4): level and seasonal at ``a``, then at ``b``.
        """
        res = self.results_
        idx = [res.level.offset, res.seasonal.offset]
        a, b = months
        mean = np.concatenate([res.smoothed_state[idx, a], res.smoothed_state[idx, b]])
        cross = res.smoother_results.smoothed_state_autocovariance(lag=b - a, t=b)
        cross = cross[np.ix_(idx, idx)]
        cov_a = res.smoothed_state_cov[np.ix_(idx, idx, [a])][..., 0]
        cov_b = res.smoothed_state_cov[np.ix_(idx, idx, [b])][..., 0]
        cov = np.block([[cov_a, cross.T], [cross, cov_b]])
        states = rng.multivariate_normal(mean, cov, size=len(betas), method="eigh")
        reg = self.regression()
        if reg.columns:
            states += (betas - reg.beta) @ self._state_gap(reg, idx, [a, b]).T
        return states

    def _state_gap(self, reg, idx: list[int], at: list[int]) -> np.ndarray:
        """How the smoothed states ``idx`` at times ``at`` move per unit of each coefficient."""
        res = self.results_
        clone = res.model.clone(res.model.data.orig_endog, exog=res.model.data.orig_exog)

        def states(params: pd.Series) -> np.ndarray:
            smoothed = clone.smooth(params, cov_type="none").smoothed_state
            return np.concatenate([smoothed[idx, t] for t in at])

        base = states(res.params)
        gap = np.empty((len(idx) * len(at), len(reg.columns)))
        for j, name in enumerate(reg.params):
            params = res.params.copy()
            params[name] += 1.0
            gap[:, j] = states(params) - base
        return gap
