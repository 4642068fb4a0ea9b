"""Regression coefficients concentrated out of a state-space likelihood.

For ``z_t = x_t' beta + e_t`` with ``e_t`` a linear Gaussian state-space process, maximising the
likelihood over the error parameters and ``beta`` together by numerical gradients costs a filter
pass per parameter per gradient step; with the 19 intervention regressors of the southwest series
a SARIMAX fit took ~100 s. Two facts make it cheap:

- The Kalman gains ``K_t`` and forecast-error variances ``F_t`` depend on the error parameters
  only. One filter pass gives them, and every regressor column then follows the same linear
  recursion ``a_{t+1} = (T - K_t Z) a_t + K_t x_t`` from ``a_0 = 0``; its forecast errors
  ``V_t = x_t - Z a_t`` are what ``beta`` takes off the series' own: ``v_t(beta) = v_t - V_t beta``.
- So at given error parameters the likelihood is Gaussian in ``beta`` and maximised by generalised
  least squares of ``v / sqrt(F)`` on ``V / sqrt(F)``. Optimising that profile over the 2-4 error
  parameters reaches the joint maximum.

The same columns give Harvey's information matrix, statsmodels' ``cov_type='oim'``, with the
coefficient block in closed form (``dv_t / dbeta = -V_t``, ``dF_t / dbeta = 0``): only the error
parameters need complex-step derivatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from statsmodels.tsa.statespace import sarimax, structural
from statsmodels.tsa.statespace.kalman_filter import (
    INVERT_UNIVARIATE,
    MEMORY_NO_FILTERED,
    MEMORY_NO_PREDICTED,
    MEMORY_NO_SMOOTHING,
    MEMORY_NO_STD_FORECAST,
    SOLVE_LU,
)
from statsmodels.tsa.statespace.mlemodel import MLEModel

#: The filter keeps gains, forecast errors and their variances; nothing per state and month.
_CONSERVE = MEMORY_NO_FILTERED | MEMORY_NO_PREDICTED | MEMORY_NO_SMOOTHING | MEMORY_NO_STD_FORECAST
#: Finite-difference step of the optimiser's gradient. An approximately diffuse start (variance
#: 1e6) leaves ~1e-10 of rounding in the likelihood, which scipy's default step of 1e-8 turns into
#: gradient noise of ~1e-2; on the benchmark's UCM fits this step needed a third fewer evaluations.
_GRADIENT_STEP = 1e-6


def filter_columns(
    model: MLEModel, params: np.ndarray, X: np.ndarray, complex_step: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forecast errors of the model's own series and of each column of ``X``, in one filter pass.

    Args:
        model: a univariate statsmodels state-space model with time-invariant design and
            transition matrices and an approximately diffuse (or stationary) initialisation.
        params: its transformed parameters; complex for complex-step derivatives.
        X: columns on the model's months, shape (n, k).
        complex_step: whether ``params`` are complex.

    Returns:
        ``v`` (n,), the model's one-step forecast errors; ``V`` (n, k), those of the columns
        filtered from a zero state; ``F`` (n,), the forecast-error variances, common to all; and
        the predicted state of each column after the last month, (m, k).
    """
    model.update(params, complex_step=complex_step)
    design, transition = model.ssm["design"], model.ssm["transition"]
    if model.k_endog != 1 or design.ndim != 2 or transition.ndim != 2:
        raise NotImplementedError(
            "filtering regressor columns needs a univariate model with time-invariant design and "
            "transition matrices"
        )
    # Complex-step derivatives need an analytic inversion; statsmodels' own use this one too.
    inversion = {"inversion_method": INVERT_UNIVARIATE | SOLVE_LU} if complex_step else {}
    res = model.ssm.filter(complex_step=complex_step, conserve_memory=_CONSERVE, **inversion)
    if res.nobs_diffuse:
        raise NotImplementedError("filtering regressor columns needs a non-exact-diffuse start")
    gain = res.kalman_gain[:, 0, :].T
    z = design[0]
    n, k = X.shape
    m = len(z)
    # One product per month for all columns at once: a_{t+1} = [T - K_t Z, K_t] @ [a_t; x_t].
    step = np.empty((n, m, m + 1), dtype=gain.dtype)
    step[:, :, :m] = transition - gain[:, :, None] * z
    step[:, :, m] = gain
    states = np.empty((n + 1, m + 1, k), dtype=gain.dtype)
    states[0, :m] = 0.0
    states[:n, m] = X
    if k:
        for t in range(n):
            np.matmul(step[t], states[t], out=states[t + 1, :m])
    V = X - np.einsum("m,tmk->tk", z, states[:n, :m])
    return res.forecasts_error[0], V, res.forecasts_error_cov[0, 0], states[n, :m]


def harvey_information(dv: np.ndarray, dF: np.ndarray, F: np.ndarray) -> np.ndarray:
    """``sum_t 0.5 dF_t dF_t' / F_t^2 + dv_t dv_t' / F_t`` for derivatives of shape (n, p)."""
    a = dF / F[:, None]
    b = dv / np.sqrt(F)[:, None]
    return 0.5 * a.T @ a + b.T @ b


def _complex_steps(params: np.ndarray) -> np.ndarray:
    # statsmodels' step for complex-step derivatives (tools.numdiff._get_epsilon with s=2).
    return np.sqrt(np.finfo(float).eps) * np.maximum(np.abs(params.real), 0.1)


def information(model: MLEModel, params: np.ndarray, regression: Sequence[int]) -> np.ndarray:
    """Harvey's information matrix of a regression with state-space errors, summed over months.

    The matrix statsmodels' ``observed_information_matrix`` computes (times the months it
    averages over), with the coefficients' block in closed form.

    Args:
        model: the statsmodels model, its regressors in ``model.exog`` (as for
            :func:`filter_columns`).
        params: its transformed parameters.
        regression: positions in ``params`` of the coefficients of ``model.exog``'s columns, in
            column order.

    Returns:
        Array of shape (p, p), in the order of ``params``.
    """
    params = np.asarray(params, dtype=float)
    burn = model.ssm.loglikelihood_burn
    exog = np.asarray(model.exog, dtype=float) if regression else np.empty((model.nobs, 0))
    _, V, F, _ = filter_columns(model, params, exog)
    dv = np.zeros((model.nobs, len(params)))
    dF = np.zeros_like(dv)
    dv[:, list(regression)] = -V
    steps = _complex_steps(params)
    for i in sorted(set(range(len(params))) - set(regression)):
        shifted = params.astype(complex)
        shifted[i] += 1j * steps[i]
        v_i, _, F_i, _ = filter_columns(
            model, shifted, np.empty((model.nobs, 0)), complex_step=True
        )
        dv[:, i] = v_i.imag / steps[i]
        dF[:, i] = F_i.imag / steps[i]
    model.update(params)
    return harvey_information(dv[burn:], dF[burn:], F[burn:])


class FastInformation:
    """Mixin for statsmodels regression models: ``cov_type='oim'`` without Python loops.

    statsmodels sums Harvey's information matrix in a Python loop over months and parameter
    pairs, about 3.5 s for 23 parameters on 308 months; :func:`information` gives the same matrix
    in a few filter passes. Subclasses name their regression coefficients.
    """

    def _regression_params(self) -> list[str]:
        raise NotImplementedError

    def observed_information_matrix(
        self,
        params: Any,
        transformed: bool = True,
        includes_fixed: bool = False,
        approx_complex_step: bool | None = None,
        approx_centered: bool = False,
        **kwargs: Any,
    ) -> np.ndarray:
        model: Any = self
        if not transformed or approx_complex_step is False or kwargs or model._has_fixed_params:
            return super().observed_information_matrix(  # type: ignore[misc]
                params,
                transformed=transformed,
                includes_fixed=includes_fixed,
                approx_complex_step=approx_complex_step,
                approx_centered=approx_centered,
                **kwargs,
            )
        regression = [model.param_names.index(name) for name in self._regression_params()]
        burn = model.ssm.loglikelihood_burn
        return information(model, params, regression) / (model.nobs - burn)


# Named as statsmodels' classes, whose result summaries print the model's class name.
class SARIMAX(FastInformation, sarimax.SARIMAX):
    """statsmodels' SARIMAX with the fast ``'oim'`` covariance."""

    def _regression_params(self) -> list[str]:
        return list(self.exog_names or [])


class UnobservedComponents(FastInformation, structural.UnobservedComponents):
    """statsmodels' unobserved-components model with the fast ``'oim'`` covariance."""

    def _regression_params(self) -> list[str]:
        return [f"beta.{name}" for name in self.exog_names or []]


def _gls(
    v: np.ndarray, V: np.ndarray, F: np.ndarray, concentrated: bool
) -> tuple[float, np.ndarray, float]:
    """Log-likelihood, coefficients and scale of ``v - V beta`` at its GLS ``beta``."""
    w = 1 / np.sqrt(F)
    zt, Xt = v * w, V * w[:, None]
    # Scaled columns keep a regressor of tiny values (a decay long past) from reading as rank loss.
    norms = np.linalg.norm(Xt, axis=0)
    norms[norms == 0] = np.inf
    beta = np.linalg.lstsq(Xt / norms, zt, rcond=None)[0] / norms
    resid = zt - Xt @ beta
    n, rss = len(resid), float(resid @ resid)
    if concentrated:
        scale = rss / n
        return -0.5 * (n * np.log(2 * np.pi * scale) + np.log(F).sum() + n), beta, scale
    return -0.5 * (n * np.log(2 * np.pi) + np.log(F).sum() + rss), beta, 1.0


@dataclass(frozen=True)
class ProfileFit:
    """The maximum of a :class:`Profile`.

    Attributes:
        params: the error model's transformed parameters (a concentrated scale at its estimate).
        beta: the regression coefficients, one per column.
        llf: the log-likelihood.
        converged: whether the optimiser reported convergence.
    """

    params: np.ndarray
    beta: np.ndarray
    llf: float
    converged: bool


class Profile:
    """The likelihood of a regression with state-space errors, as a function of the error model.

    Args:
        model: the error model alone (no regressors) on the estimation scale; its
            ``loglikelihood_burn`` sets the months the likelihood leaves out.
        X: the regressors on the same months, one column each.
        scale: the parameter every variance is proportional to (SARIMAX's ``sigma2``), concentrated
            out analytically; ``None`` optimises every parameter.
    """

    def __init__(self, model: MLEModel, X: pd.DataFrame, scale: str | None = None):
        self.model = model
        self.X = X
        self.scale_name = scale
        self.scale = None if scale is None else model.param_names.index(scale)
        self.free = [i for i in range(model.k_params) if i != self.scale]
        self.burn = model.ssm.loglikelihood_burn

    def subset(self, columns: list[str]) -> Profile:
        """The same profile with only ``columns`` as regressors."""
        return Profile(self.model, self.X[columns], self.scale_name)

    def unit_scale(self, params: np.ndarray) -> np.ndarray:
        """``params`` with a concentrated scale set to 1, where the likelihood is evaluated."""
        params = np.array(params, dtype=float)
        if self.scale is not None:
            params[self.scale] = 1.0
        return params

    def evaluate(self, params: np.ndarray) -> tuple[float, np.ndarray, float]:
        """Log-likelihood, GLS coefficients and concentrated scale (1 if none) at ``params``."""
        v, V, F, _ = filter_columns(
            self.model, self.unit_scale(params), self.X.to_numpy(dtype=float)
        )
        b = self.burn
        return _gls(v[b:], V[b:], F[b:], self.scale is not None)

    def fit(self, start: np.ndarray, maxiter: int) -> ProfileFit:
        """Maximise over the error parameters by L-BFGS-B from ``start`` (transformed)."""
        untransformed = self.model.untransform_params(np.asarray(start, dtype=float))

        def params_of(u: np.ndarray) -> np.ndarray:
            full = untransformed.copy()
            full[self.free] = u
            return self.unit_scale(self.model.transform_params(full))

        nobs = self.model.nobs - self.burn

        def minimise(u0: np.ndarray) -> optimize.OptimizeResult:
            return optimize.minimize(
                lambda u: -self.evaluate(params_of(u))[0] / nobs,
                u0,
                method="L-BFGS-B",
                options={"maxiter": maxiter, "eps": _GRADIENT_STEP},
            )

        if self.free:
            found = minimise(untransformed[self.free])
            if not found.success:
                # The line search stalls at optima where a variance is zero and the gradient is
                # noise; a restart, without the stale curvature, tells whether it had converged.
                found = minimise(found.x)
            params, converged = params_of(found.x), bool(found.success)
        else:
            params, converged = params_of(untransformed[self.free]), True
        llf, beta, scale = self.evaluate(params)
        if self.scale is not None:
            params[self.scale] = scale
        return ProfileFit(params, beta, llf, converged)


class FixedErrors:
    """The regression at fixed error parameters: GLS and Wald t-values for any subset of columns.

    Holds the forecast errors of the series and of every column and their complex-step
    derivatives in each error parameter (a concentrated scale's are closed-form), so the t-values
    after dropping a column cost a small least-squares solve, not a refit. The t-values come from
    the full information matrix, so they account for the error parameters' uncertainty as
    statsmodels' ``'oim'`` covariance does.
    """

    def __init__(self, profile: Profile, params: np.ndarray):
        self.columns = list(profile.X.columns)
        self.concentrated = profile.scale is not None
        X = profile.X.to_numpy(dtype=float)
        params = profile.unit_scale(params)
        b = profile.burn
        v, V, F, _ = filter_columns(profile.model, params, X)
        self.v, self.V, self.F = v[b:], V[b:], F[b:]
        steps = _complex_steps(params)
        self.dv, self.dV, self.dF = [], [], []
        for i in profile.free:
            shifted = params.astype(complex)
            shifted[i] += 1j * steps[i]
            v_i, V_i, F_i, _ = filter_columns(profile.model, shifted, X, complex_step=True)
            self.dv.append(v_i[b:].imag / steps[i])
            self.dV.append(V_i[b:].imag / steps[i])
            self.dF.append(F_i[b:].imag / steps[i])

    def t_values(self, columns: list[str]) -> np.ndarray:
        """``|beta / se|`` of each of ``columns`` in the regression on those columns alone."""
        idx = [self.columns.index(c) for c in columns]
        V = self.V[:, idx]
        _, beta, scale = _gls(self.v, V, self.F, self.concentrated)
        dv = [dv - dV[:, idx] @ beta for dv, dV in zip(self.dv, self.dV, strict=True)]
        dF = [scale * dF for dF in self.dF]
        if self.concentrated:
            # F is proportional to the scale and v does not depend on it.
            dv.append(np.zeros_like(self.F))
            dF.append(self.F)
        n, k = V.shape
        info = harvey_information(
            np.column_stack([*dv, -V]),
            np.column_stack([*dF, np.zeros((n, k))]),
            scale * self.F,
        )
        se = np.sqrt(np.diag(np.linalg.pinv(info))[len(dv) :])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(np.abs(beta) / se, nan=0.0)
