"""What the statsmodels state-space families (SARIMAX, UCM) share: regression on ``log1p`` counts.

The model is ``log1p(y_t) = x_t' beta + e_t`` with ``e_t`` a linear Gaussian state-space process
(SARIMA errors, or level + seasonal components). Four pieces live here:

- **Fitting with beta concentrated out.** The likelihood is maximised over the error parameters
  alone, ``beta`` being the GLS estimate at each trial (:mod:`forecasting.models._profile`): the
  joint maximum at the cost of fitting the error model, where a joint numerical search over
  ``beta`` too took ~50x longer with the 19 intervention regressors of the southwest series.
- **Regressors earn their place.** Constant columns never reach ``_fit`` (the base class drops
  them). The rest are fitted together; while the weakest has ``|t| < min_t`` (``t`` from the
  ``'oim'`` covariance; the default ``'opg'`` overstates regressor standard errors several-fold on
  these series) it is dropped. Drops are decided one at a time at fixed error parameters (each
  costs a least-squares solve), then the error model is refitted and the rule applied again,
  until a refit drops nothing. ``min_t=1`` keeps a regressor whose inclusion lowers the residual
  variance at all; ``min_t=0`` keeps every non-constant regressor. Columns named in ``keep`` are
  never dropped: a counterfactual about an event needs its estimate and interval, and a dropped
  column would claim an effect of exactly zero with no uncertainty.
- **Forecasts with coefficient uncertainty.** Given the other parameters the forecast mean is linear
  in ``beta``: ``mean(beta) = K(z) + (X_future - K(X)) beta``, where ``K`` is the Kalman forecast
  of the fitted error process applied to a series (``K(X)`` filters each regressor column). So the
  coefficient covariance adds ``D Cov(beta) D'`` (``D = X_future - K(X)``) to the predictive
  variance, and each sample path adds ``D (beta_draw - beta_hat)`` to a simulated path, exactly
  and without refiltering per draw.
- **Fractional regressor values are read multiplicatively.** A value ``v`` in (0, 1) (part of a
  month in force, a ramp, a decay) means the share ``v`` of the event's effect ``theta`` acts: the
  count is multiplied by ``1 + theta v``, not ``(1 + theta) ** v``. So the fit uses the column
  ``log1p(theta v) / log1p(theta)`` with ``theta = expm1(beta)`` estimated along (see
  ``_read_shapes``); 0 and 1 are unchanged. Read log-linearly, a -50 % pulse halving every two
  months made the cumulative effect about 15-25 % too large (``experiments/counterfactual``).
- **Back-transform.** The mean is the lognormal mean ``exp(mu + var / 2) - 1``; bounds are
  quantiles.

The same facts make counterfactuals cheap and exact, which is why these families declare
:attr:`~forecasting.models.base.Capability.REGRESSION` and implement :class:`LogRegression`:
an intervention acts only in its own months (the errors do not depend on ``x``, so changing
``x_t`` moves ``log1p(y_t)`` by ``(x'_t - x_t)' beta`` and nothing else); coefficient uncertainty
is one draw of ``beta ~ N(beta_hat, Cov)`` per path; and a path simulated at ``beta_hat`` moves by
``D (beta - beta_hat)`` for any draw, without refiltering.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.statespace.mlemodel import MLEModel

from forecasting.errors import EncountersWarning, NotFittedError
from forecasting.frame import MEASURED_PREFIXES
from forecasting.models._profile import FixedErrors, Profile, ProfileFit, filter_columns
from forecasting.models.base import Capability, Forecaster
from forecasting.models.predictive import effect_frame, lognormal_frame

#: statsmodels' information-matrix covariance; see the module docstring for why not ``'opg'``.
COV_TYPE = "oim"
MAXITER = 200
#: Refits at most, and the change of a coefficient that ends them, when reading fractional
#: regressor values multiplicatively (see the module docstring).
SHAPE_ITERATIONS = 6
SHAPE_TOL = 1e-3
#: How far ``obs_intercept`` may be from ``X beta`` and still count as the regression.
_INTERCEPT_TOL = 1e-6


@dataclass(frozen=True)
class Regression:
    """The regression part of a fitted log-linear state-space forecaster.

    Attributes:
        columns: the regressor columns the fit uses (``model.exog_``), in order.
        params: their coefficient names in the statsmodels results.
        beta: estimated coefficients on the ``log1p`` scale, shape (k,).
        cov: their covariance, shape (k, k).
    """

    columns: tuple[str, ...]
    params: tuple[str, ...]
    beta: np.ndarray
    cov: np.ndarray

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` coefficient vectors from ``N(beta, cov)``, shape (n, k)."""
        if not self.columns:
            return np.zeros((n, 0))
        # eigh tolerates the near-singular covariances that collinear event columns produce.
        return rng.multivariate_normal(self.beta, self.cov, size=n, method="eigh")

    def index(self, column: str) -> int:
        """Position of ``column`` among :attr:`columns`."""
        return self.columns.index(column)


class LogRegression(Protocol):
    """A fitted model with :attr:`~forecasting.models.base.Capability.REGRESSION`: what the
    counterfactual engine and decompositions use of it."""

    cutoff_: pd.Timestamp
    regressors_: list[str]
    dropped_regressors_: dict[str, str]
    exog_: list[str]
    #: The final fit's Akaike information criterion.
    aic: float

    def regression(self) -> Regression:
        """The fitted coefficients and their covariance."""
        ...

    def linearise(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` on the scale the coefficients act on."""
        ...

    def simulate_log_paths(
        self, X_future: np.ndarray, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Paths of ``log1p(y)`` after the cutoff at the estimated coefficients, (n, h)."""
        ...

    def forecast_gap(self, X_future: np.ndarray) -> np.ndarray:
        """``D``: how the forecast mean of ``log1p(y)`` moves per unit of each coefficient."""
        ...


def regression_of(model: Forecaster) -> LogRegression:
    """``model`` as a :class:`LogRegression`, checked.

    Raises:
        NotImplementedError: the family does not declare the regression capability.
        NotFittedError: the model is not fitted.
    """
    model.require(
        Capability.REGRESSION,
        "is not a regression on log1p counts with state-space errors; counterfactuals and "
        "decompositions need the SARIMAX or UCM family",
    )
    if not hasattr(model, "cutoff_"):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit(y, X) before using it"
        )
    return model  # type: ignore[return-value]


def _static(matrix: np.ndarray, name: str) -> np.ndarray:
    if matrix.shape[-1] != 1:
        raise NotImplementedError(
            f"the model's {name} matrix varies over time; path simulation here needs a "
            "time-invariant state-space model"
        )
    return matrix[..., 0]


@contextmanager
def quiet_statsmodels() -> Iterator[None]:
    """Silence statsmodels' per-fit chatter; convergence is checked and reported by the caller."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*starting .*parameters", category=UserWarning)
        yield


class StateSpaceForecaster(Forecaster):
    """Base of regression models with state-space errors on ``log1p(y)``.

    Subclasses implement ``_build(endog, exog)`` (the statsmodels model for the chosen
    specification, with :class:`~forecasting.models._profile.FastInformation`) and
    ``_exog_param(column)`` (the name statsmodels gives the column's coefficient). They may
    override ``_select(z, X)`` to choose among specifications, and ``_error_scale`` /
    ``_error_model`` to estimate on another scale with the same likelihood (SARIMAX differences).

    Attributes set by :meth:`fit`:
        results_: the statsmodels results of the final fit.
        exog_: the regressor columns the final fit uses.
    """

    declared = frozenset(
        {
            Capability.REGRESSORS,
            Capability.EFFECTS,
            Capability.SAMPLE_PATHS,
            Capability.REGRESSION,
            Capability.KEEP,
            Capability.CONTROLS,
        }
    )
    min_obs = 36
    min_t: float
    keep: Sequence[str]
    #: The parameter every variance is proportional to, concentrated out of the likelihood.
    _scale_param: str | None = None

    def _check_params(self) -> None:
        t = self.min_t
        if isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0:
            raise ValueError(f"min_t must be a number >= 0; got {t!r}")
        keep = self.keep
        if not isinstance(keep, list | tuple) or not all(isinstance(c, str) for c in keep):
            raise ValueError(f"keep must be a list of regressor column names; got {keep!r}")

    def _build(self, endog: pd.Series | np.ndarray, exog: pd.DataFrame | None) -> MLEModel:
        raise NotImplementedError

    def _exog_param(self, column: str) -> str:
        raise NotImplementedError

    def _error_scale(self, values: np.ndarray) -> np.ndarray:
        """The series or regressors (months along axis 0) on the scale the error model is fitted."""
        return values

    def _error_model(self, endog: np.ndarray) -> MLEModel:
        """The error model alone, on the estimation scale.

        Its parameters are named as ``_build``'s and its likelihood covers the same months.
        """
        return self._build(endog, None)

    def _select(self, z: pd.Series, X: pd.DataFrame) -> tuple[Profile, ProfileFit]:
        """Choose the specification ``_build`` uses and return its fit with every column of X."""
        return self._profile_fit(z, X)

    def _profile_fit(self, z: pd.Series, X: pd.DataFrame) -> tuple[Profile, ProfileFit]:
        endog = self._error_scale(z.to_numpy(dtype=float))
        exog = self._error_scale(X.to_numpy(dtype=float))
        resid = endog
        if exog.shape[1]:
            resid = endog - exog @ np.linalg.lstsq(exog, endog, rcond=None)[0]
        profile = Profile(
            self._error_model(endog), pd.DataFrame(exog, columns=X.columns), self._scale_param
        )
        with quiet_statsmodels():
            # statsmodels' starting values, from the series less an OLS fit of the regressors.
            start = self._error_model(resid).start_params
            return profile, profile.fit(start, MAXITER)

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        z = np.log1p(y)
        profile, fit = self._select(z, X)
        columns = list(X.columns)
        while columns and self.min_t > 0:
            fixed = FixedErrors(profile, fit.params)
            dropped = False
            while columns:
                t = fixed.t_values(columns)
                t[[c in self.keep for c in columns]] = np.inf
                worst = int(np.argmin(t))
                if t[worst] >= self.min_t:
                    break
                self.dropped_regressors_[columns[worst]] = (
                    f"|t| = {t[worst]:.2f} < min_t = {self.min_t:g}: "
                    "effect not supported by the data"
                )
                columns.pop(worst)
                dropped = True
            if not dropped:
                break
            profile = profile.subset(columns)
            with quiet_statsmodels():
                fit = profile.fit(fit.params, MAXITER)
        profile, fit = self._read_shapes(profile, fit, X[columns])
        if not fit.converged:
            warnings.warn(
                f"{type(self).__name__} fit did not converge in {MAXITER} iterations "
                f"(series ending {y.index[-1]:%Y-%m}); its forecasts may be poor",
                EncountersWarning,
                stacklevel=4,
            )
        model = self._build(z, self.linearise(X[columns]) if columns else None)
        found = dict(zip(profile.model.param_names, fit.params, strict=True))
        found |= {self._exog_param(c): b for c, b in zip(columns, fit.beta, strict=True)}
        params = np.array([found[name] for name in model.param_names])
        with quiet_statsmodels():
            # Smoothed, as statsmodels' own fit returns: the decomposition reads smoothed states.
            self.results_ = model.smooth(params, cov_type=COV_TYPE)
        self.exog_ = columns

    # -- multiplicative shapes ---------------------------------------------------------------

    def _read_shapes(
        self, profile: Profile, fit: ProfileFit, X: pd.DataFrame
    ) -> tuple[Profile, ProfileFit]:
        """Refit until each fractional column is read at its own estimated effect.

        ``log1p(theta v) / log1p(theta)`` depends on the effect ``theta`` it describes,
        so the fit alternates: read the columns at the current ``theta``, refit, take the new
        ``theta = expm1(beta)``, until ``beta`` moves by less than ``SHAPE_TOL``.
        """
        self.theta_: dict[str, float] = {}
        values = X.to_numpy(dtype=float)
        # An indicator or a control series is a measured level (log1p of a count), linear on
        # the log scale.
        fractional = [
            c
            for j, c in enumerate(X.columns)
            if np.any((values[:, j] % 1) != 0) and not c.startswith(MEASURED_PREFIXES)
        ]
        for _ in range(SHAPE_ITERATIONS):
            beta = dict(zip(X.columns, fit.beta, strict=True))
            # An effect beyond a factor of e^3 (-95 %, +1,900 %) is not a reading worth
            # refining, and at -100 % the reread column would vanish.
            theta = {c: float(np.expm1(beta[c])) for c in fractional if abs(beta[c]) <= 3}
            if theta.keys() == self.theta_.keys() and all(
                abs(beta[c] - np.log1p(self.theta_[c])) < SHAPE_TOL for c in theta
            ):
                break
            self.theta_ = theta
            exog = self._error_scale(self.linearise(X).to_numpy(dtype=float))
            profile = Profile(
                profile.model, pd.DataFrame(exog, columns=X.columns), profile.scale_name
            )
            with quiet_statsmodels():
                fit = profile.fit(fit.params, MAXITER)
        return profile, fit

    def linearise(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` on the scale the fitted coefficients act on (see the module docstring).

        A value ``v`` of a column with estimated effect ``theta`` becomes
        ``log1p(theta v) / log1p(theta)`` up to 1, and stays ``v`` above 1 (a scenario's
        doubled intensity compounds the effect); other columns are unchanged.
        """
        out = X.astype(float)
        for column, theta in getattr(self, "theta_", {}).items():
            if column in out and abs(np.log1p(theta)) > SHAPE_TOL:
                v = out[column].to_numpy()
                inside = np.minimum(v, 1.0)
                out[column] = np.where(v <= 1, np.log1p(theta * inside) / np.log1p(theta), v)
        return out

    # -- the regression protocol (LogRegression) --------------------------------------------

    @property
    def aic(self) -> float:
        """The final fit's Akaike information criterion."""
        return float(self.results_.aic)

    def regression(self) -> Regression:
        """The coefficients of :attr:`exog_` and their covariance (``cov_type='oim'``)."""
        params = tuple(self._exog_param(c) for c in self.exog_)
        beta = self.results_.params[list(params)].to_numpy(dtype=float)
        cov = self.results_.cov_params().loc[list(params), list(params)].to_numpy(dtype=float)
        return Regression(tuple(self.exog_), params, beta, cov)

    def forecast_gap(self, X_future: np.ndarray) -> np.ndarray:
        """``D = X_future - K(X)``, shape (h, k): how the forecast mean of ``log1p(y)`` moves
        per unit of each coefficient (``X_future``: linearised values of :attr:`exog_`)."""
        h = len(X_future)
        if not self.exog_:
            return np.zeros((h, 0))
        fitted = self.results_.model
        # A clone, so concurrent forecasts never filter the fitted model's own matrices.
        model = fitted.clone(fitted.data.orig_endog, exog=fitted.data.orig_exog)
        exog = np.asarray(model.exog, dtype=float)
        _, _, _, state = filter_columns(model, self.results_.params.to_numpy(), exog)
        design, transition = model.ssm["design"][0], model.ssm["transition"]
        k_of_x = np.empty((h, len(self.exog_)))
        for i in range(h):
            k_of_x[i] = design @ state
            state = transition @ state
        return X_future - k_of_x

    def simulate_log_paths(
        self, X_future: np.ndarray, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Sample paths of ``log1p(y)`` after the cutoff at the estimated coefficients.

        Vectorised over paths (``MLEResults.simulate`` loops over repetitions, about 1.5 s for
        1,000 paths of 24 months): the state at the first future month is drawn from its
        predicted distribution given the data, then the time-invariant system runs forward.

        Args:
            X_future: linearised future values of :attr:`exog_`, shape (h, k).
            n: number of paths.
            rng: random generator.

        Returns:
            Array of shape (n, h).
        """
        res, reg = self.results_, self.regression()
        fr = res.filter_results
        X_fit = np.asarray(res.model.exog if reg.columns else np.zeros((res.nobs, 0)), float)
        if not np.allclose(fr.obs_intercept[0], X_fit @ reg.beta, atol=_INTERCEPT_TOL, rtol=0):
            raise NotImplementedError(
                "the model's observation intercept is not its regression on the regressors; "
                "path simulation needs a regression with state-space errors"
            )
        Z = _static(fr.design, "design")[0]
        T = _static(fr.transition, "transition")
        R = _static(fr.selection, "selection")
        Q = _static(fr.state_cov, "state_cov")
        H = float(_static(fr.obs_cov, "obs_cov")[0, 0])
        c = _static(fr.state_intercept, "state_intercept")
        h = X_future.shape[0]
        d = X_future @ reg.beta
        alpha = rng.multivariate_normal(
            res.predicted_state[:, -1], res.predicted_state_cov[:, :, -1], size=n, method="eigh"
        )
        eps = rng.standard_normal((h, n)) * np.sqrt(max(H, 0.0))
        eta = rng.multivariate_normal(np.zeros(len(Q)), Q, size=(h, n), method="eigh")
        z = np.empty((n, h))
        for s in range(h):
            z[:, s] = alpha @ Z + d[s] + eps[s]
            alpha = alpha @ T.T + c + eta[s] @ R.T
        return z

    # -- hooks ------------------------------------------------------------------------------

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        X_future = self.linearise(X_df[self.exog_]).to_numpy() if self.exog_ else None
        with quiet_statsmodels():
            forecast = self.results_.get_forecast(h, exog=X_future)
        mu = forecast.predicted_mean.to_numpy()
        var = forecast.var_pred_mean.to_numpy()
        if self.exog_:
            gap = self.forecast_gap(X_future)
            var = var + np.einsum("ij,jk,ik->i", gap, self.regression().cov, gap)
        return lognormal_frame(mu, var, level)

    def _effects(self, level: list[int]) -> pd.DataFrame:
        names = [self._exog_param(c) for c in self.exog_]
        coef = pd.Series(self.results_.params[names].to_numpy(), index=self.exog_)
        se = pd.Series(self.results_.bse[names].to_numpy(), index=self.exog_)
        return effect_frame(coef, se, level)

    def _sample_paths(
        self, h: int, X_df: pd.DataFrame, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        X_future = self.linearise(X_df[self.exog_]).to_numpy() if self.exog_ else None
        with quiet_statsmodels():
            simulated = self.results_.simulate(
                h, anchor="end", repetitions=n, exog=X_future, rng=rng
            )
        z = np.asarray(simulated).reshape(h, n).T
        if self.exog_:
            cov = self.regression().cov
            draws = rng.multivariate_normal(np.zeros(len(cov)), cov, size=n)
            z = z + draws @ self.forecast_gap(X_future).T
        return np.expm1(z)
