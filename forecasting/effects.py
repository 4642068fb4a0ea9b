"""What counterfactuals and decompositions share: a fitted model's regression on ``log1p`` counts.

The state-space families (:class:`~forecasting.models.SARIMAX`, :class:`~forecasting.models.UCM`)
model ``log1p(y_t) = x_t' beta + u_t`` with ``u_t`` a linear Gaussian state-space process. Three
facts make counterfactuals cheap and exact under that model:

- **An intervention acts only in its own months.** Changing ``x_t`` to ``x'_t`` moves ``log1p(y_t)``
  by ``(x'_t - x_t)' beta`` and nothing else (``x`` as the model reads it, ``model.linearise``),
  because the errors ``u_t`` do not depend on ``x``. In an observed month the error is known, so
  the counterfactual is the observation shifted by that amount; in a future month it is the
  baseline path shifted by it.
- **Coefficient uncertainty is a draw of beta.** ``beta ~ N(beta_hat, Cov)`` with the covariance
  of the fit (``cov_type='oim'``); one draw per path, shared by every month of the path.
- **Future paths are linear in beta.** A baseline path simulated at ``beta_hat`` moves by
  ``D (beta - beta_hat)`` with ``D = X_future - K(X)`` (``K``: the Kalman forecast of the fitted
  error process), so paths for any draw come without refiltering.

This module also holds :func:`onset_sensitivity`: refits with an event's dates shifted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.errors import DataError, NotFittedError, ScenarioError
from forecasting.frame import DEFAULT_LEVEL, EFFECT, STATUS, check_level, hi_col, lo_col
from forecasting.interventions import Catalog, design_matrix
from forecasting.models.base import Forecaster

SHIFT = "shift"
ONSET = "onset"
AIC = "aic"
CLOSEST = "closest_regressor"
APART = "months_apart"
#: Fewer months than this in which the moved event differs (by at least half) from another
#: regressor of the fit, and the data cannot tell the two effects apart.
MIN_MONTHS_APART = 2
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


def _param_name(params: pd.Index, column: str) -> str:
    # SARIMAX names a coefficient by its column, UnobservedComponents by 'beta.<column>'.
    for name in (column, f"beta.{column}"):
        if name in params:
            return name
    raise NotImplementedError(
        f"cannot find the coefficient of regressor '{column}' among the fitted parameters "
        f"{list(params)}; counterfactuals support the SARIMAX and UCM families"
    )


def regression(model: Forecaster) -> Regression:
    """The coefficients and covariance of a fitted SARIMAX or UCM model's regressors.

    Raises:
        NotFittedError: the model is not fitted.
        NotImplementedError: the family is not a regression on ``log1p`` counts with state-space
            errors (it has no ``results_`` and ``exog_``).
    """
    if not hasattr(model, "cutoff_"):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit(y, X) before using it"
        )
    results = getattr(model, "results_", None)
    if results is None or not hasattr(model, "exog_"):
        raise NotImplementedError(
            f"{type(model).__name__} is not a regression on log1p counts with state-space errors; "
            "counterfactuals and decompositions need the SARIMAX or UCM family"
        )
    columns = tuple(model.exog_)
    params = tuple(_param_name(results.params.index, c) for c in columns)
    beta = results.params[list(params)].to_numpy(dtype=float)
    cov = results.cov_params().loc[list(params), list(params)].to_numpy(dtype=float)
    return Regression(columns, params, beta, cov)


def _static(matrix: np.ndarray, name: str) -> np.ndarray:
    if matrix.shape[-1] != 1:
        raise NotImplementedError(
            f"the model's {name} matrix varies over time; path simulation here needs a "
            "time-invariant state-space model (SARIMAX, UCM)"
        )
    return matrix[..., 0]


def simulate_log_paths(
    model: Forecaster, reg: Regression, X_future: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Sample paths of ``log1p(y)`` after the cutoff at the estimated coefficients.

    Vectorised over paths (``MLEResults.simulate`` loops over repetitions, about 1.5 s for 1,000
    paths of 24 months): the state at the first future month is drawn from its predicted
    distribution given the data, then the time-invariant system runs forward.

    Args:
        model: a fitted SARIMAX or UCM forecaster.
        reg: its :func:`regression`.
        X_future: future values of ``reg.columns``, shape (h, k).
        n: number of paths.
        rng: random generator.

    Returns:
        Array of shape (n, h).
    """
    res = model.results_
    fr = res.filter_results
    X_fit = np.asarray(res.model.exog if reg.columns else np.zeros((res.nobs, 0)), dtype=float)
    if not np.allclose(fr.obs_intercept[0], X_fit @ reg.beta, atol=_INTERCEPT_TOL, rtol=0):
        raise NotImplementedError(
            "the model's observation intercept is not its regression on the regressors; "
            "counterfactuals need a regression with state-space errors (SARIMAX, UCM)"
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


def forecast_gap(model: Forecaster, reg: Regression, X_future: np.ndarray) -> np.ndarray:
    """``D = X_future - K(X)``: how the forecast mean of ``log1p(y)`` moves per unit of beta.

    Computed as the change of the forecast mean when one coefficient moves by one, on a clone of
    the statsmodels model (filtering the fitted model itself would leave its system matrices at
    the perturbed parameters).

    Args:
        model: a fitted SARIMAX or UCM forecaster.
        reg: its :func:`regression`.
        X_future: future values of ``reg.columns``, shape (h, k).

    Returns:
        Array of shape (h, k).
    """
    h, k = X_future.shape
    if k == 0:
        return np.zeros((h, 0))
    res = model.results_
    clone = res.model.clone(res.model.data.orig_endog, exog=res.model.data.orig_exog)

    def mean(params: pd.Series) -> np.ndarray:
        fitted = clone.filter(params, cov_type="none", low_memory=True)
        return np.asarray(fitted.forecast(h, exog=X_future), dtype=float)

    base = mean(res.params)
    gap = np.empty((h, k))
    for j, name in enumerate(reg.params):
        params = res.params.copy()
        params[name] += 1.0
        gap[:, j] = mean(params) - base
    return gap


def summarise(draws: np.ndarray, level: Sequence[int], name: str) -> dict[str, np.ndarray]:
    """Mean and central intervals of draws along the first axis.

    Args:
        draws: array of shape (n, ...) of simulated values.
        level: interval levels in percent (checked by the caller).
        name: the column stem, e.g. ``effect`` gives ``effect``, ``effect_lo_80``, ….

    Returns:
        Column name → array of shape ``draws.shape[1:]``: the mean (the mean, not the median:
        on the count scale the two differ) and the ``(100 - l) / 2`` and ``(100 + l) / 2``
        percentiles.
    """
    return summarise_many({name: draws}, level)


def summarise_many(draws: dict[str, np.ndarray], level: Sequence[int]) -> dict[str, np.ndarray]:
    """:func:`summarise` for several arrays of draws with the same first axis, in one pass.

    One quantile computation over the arrays side by side costs about what one array does; on a
    counterfactual request that is most of the time saved.
    """
    n = next(iter(draws.values())).shape[0]
    shapes = {name: d.shape[1:] for name, d in draws.items()}
    flat = np.concatenate([d.reshape(n, -1) for d in draws.values()], axis=1)
    tails = [(100 - lv) / 200 for lv in level]
    qs = np.quantile(flat, [q for t in tails for q in (t, 1 - t)], axis=0)
    means = flat.mean(axis=0)
    out: dict[str, np.ndarray] = {}
    at = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        part = slice(at, at + size)
        out[name] = means[part].reshape(shape)
        for i, lv in enumerate(level):
            out[lo_col(lv, name)] = qs[2 * i, part].reshape(shape)
            out[hi_col(lv, name)] = qs[2 * i + 1, part].reshape(shape)
        at += size
    return out


# -- onset sensitivity ------------------------------------------------------------------------


def _shift_day(day: dt.date, months: int) -> dt.date:
    return (pd.Timestamp(day) + pd.DateOffset(months=months)).date()


def shifted_catalog(catalog: Catalog, name: str, months: int) -> tuple[Catalog, list[str]]:
    """A catalog with an event's (or every member of a group's) start and end moved.

    Args:
        catalog: the catalog.
        name: an event id (only that event moves, even when it is grouped) or a group id (every
            member moves).
        months: months to move, negative for earlier; days of the month are kept (clipped at the
            month's end).

    Returns:
        The new catalog and the ids of the events that moved.

    Raises:
        ScenarioError: ``name`` is neither an event nor a group id.
    """
    moved = [e.id for e in catalog.members(name)]
    events = [
        e.model_copy(
            update={
                "start": _shift_day(e.start, months),
                "end": None if e.end is None else _shift_day(e.end, months),
            }
        )
        if e.id in moved
        else e
        for e in catalog.events
    ]
    return Catalog(events, catalog.groups, catalog.sources), moved


def onset_sensitivity(
    model_factory: Callable[[], Forecaster],
    y: pd.Series,
    catalog: Catalog,
    series_key: str,
    event: str,
    shifts: Iterable[int] = range(-2, 3),
    level: Sequence[int] = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Refit with an event's dates moved by whole months and report its estimated effect.

    Event dates in the catalog are uncertain by weeks (see each event's ``note``); this shows
    how much the fitted effect depends on them. Each shift rebuilds the design matrix from a
    catalog with the event (or every member of the group) moved, and fits a new model.

    Args:
        model_factory: returns a new unfitted forecaster that reports effects (e.g.
            ``lambda: SARIMAX(min_t=0)``; with ``min_t > 0`` a shift can drop the regressor).
        y: the observed series (month-start index).
        catalog: the intervention catalog.
        series_key: the series ``y`` is.
        event: an event or group id in the series' scope.
        shifts: months to move the dates by; 0 is the catalog's dates.
        level: interval levels in percent.

    Returns:
        One row per shift (index ``shift``): ``onset`` (the first moved start, ``YYYY-MM-DD``),
        ``effect`` (percent change of the series while the regressor is 1), ``lo_<l>``,
        ``hi_<l>``, ``status`` (``kept`` or why the model dropped the regressor), ``aic``
        (lower fits better; NaN for families without one), and ``closest_regressor`` /
        ``months_apart``: the other regressor of the fit whose values differ from the moved
        one's (by at least half) in the fewest months, and how many (``None`` / NaN when the fit
        has no other). Moved onto another event's dates, an effect is not identified.

    Raises:
        ScenarioError: unknown id, or the event is not a regressor of the series.
        DataError: ``y`` is not a monthly series the model accepts.
    """
    levels = check_level(level)
    regressor = catalog.resolve(event)
    if regressor not in catalog.regressors(series_key):
        raise ScenarioError(
            f"{event} is not a regressor of {series_key}; its scope does not include the series"
        )
    if not isinstance(y, pd.Series) or not isinstance(y.index, pd.DatetimeIndex) or y.empty:
        raise DataError("y must be a non-empty pandas Series indexed by month starts")
    rows = []
    for shift in shifts:
        moved_catalog, moved = shifted_catalog(catalog, event, int(shift))
        X = design_matrix(moved_catalog, series_key, y.index[0], y.index[-1])
        model = model_factory()
        model.fit(y, X)
        effect = model.effects(levels).loc[regressor]
        results = getattr(model, "results_", None)
        onset = min(moved_catalog.get(i).start for i in moved)
        row = {SHIFT: int(shift), ONSET: onset.isoformat(), EFFECT: effect[EFFECT]}
        for lv in levels:
            row[lo_col(lv)] = effect[lo_col(lv)]
            row[hi_col(lv)] = effect[hi_col(lv)]
        row[STATUS] = effect[STATUS]
        row[AIC] = float(results.aic) if results is not None else np.nan
        others = [
            c for c in model.regressors_ if c != regressor and c not in model.dropped_regressors_
        ]
        apart = (X[others].sub(X[regressor], axis=0).abs() >= 0.5).sum()
        row[CLOSEST] = apart.idxmin() if len(apart) else None
        row[APART] = float(apart.min()) if len(apart) else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index(SHIFT)


#: The shifts an onset report tries by default, in months.
DEFAULT_SHIFTS = (-2, -1, 0, 1, 2)
#: The largest shift accepted, in months: beyond a year the "onset" is another event.
MAX_SHIFT = 12


def onset_report(
    model: Forecaster,
    y: pd.Series,
    catalog: Catalog,
    series_key: str,
    event: str,
    shifts: Iterable[int] = DEFAULT_SHIFTS,
    level: Sequence[int] = DEFAULT_LEVEL,
) -> dict:
    """:func:`onset_sensitivity` for a fitted model, with a plain-language summary.

    Every refit is ``model``'s family with its hyperparameters, keeping the event's regressor
    whatever its ``|t|`` (so each shift has an effect to compare) and, for a SARIMAX, the order
    ``model`` chose (so the AICs compare the onsets, not the orders).

    Args:
        model: a fitted model that reports effects and takes ``keep`` (SARIMAX, UCM).
        y, catalog, series_key, event, level: as for :func:`onset_sensitivity`.
        shifts: whole months, each within ``±MAX_SHIFT``; 0 is added when missing.

    Returns:
        ``series``, ``event``, ``regressor``, ``level``, ``rows`` (one per shift, ascending:
        ``shift``, ``onset``, ``effect``, ``lo_<l>``, ``hi_<l>``, ``status``, ``aic``,
        ``closest_regressor``, ``months_apart``; a value the fit could not give is ``None``) and
        ``summary``.

    Raises:
        ScenarioError: unknown event, not in the series' scope, or a shift out of range.
        NotImplementedError: the model's family cannot keep a regressor.
    """
    shifts = sorted({0, *(_check_shift(s) for s in shifts)})
    levels = check_level(level)
    regressor = catalog.resolve(event)
    params = model.get_params()
    if "keep" not in params:
        raise NotImplementedError(
            f"{type(model).__name__} cannot keep a regressor through refits; onset sensitivity "
            "needs a SARIMAX or UCM"
        )
    changes: dict = {"keep": (regressor,)}
    if "orders" in params and hasattr(model, "order_"):
        changes["orders"] = ((model.order_, model.seasonal_order_),)
    table = onset_sensitivity(
        lambda: model.clone(**changes), y, catalog, series_key, event, shifts, levels
    )
    rows = []
    for shift, row in table.iterrows():
        out = {SHIFT: int(shift), **{k: _plain(v) for k, v in row.items()}}
        if out[APART] is not None:
            out[APART] = int(out[APART])
        rows.append(out)
    return {
        "series": series_key,
        "event": event,
        "regressor": regressor,
        "level": levels,
        "rows": rows,
        "summary": _onset_summary(table, event, series_key, max(levels)),
    }


def _check_shift(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ScenarioError(f"a shift is a whole number of months; got {value!r}")
    if abs(int(value)) > MAX_SHIFT:
        raise ScenarioError(f"shifts must lie within ±{MAX_SHIFT} months; got {value}")
    return int(value)


def _plain(value: object) -> object:
    """A table value as JSON has it: NaN is ``None``, numpy scalars are Python's."""
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    return value


def _onset_summary(table: pd.DataFrame, event: str, key: str, level: int) -> str:
    at = table.loc[0]
    text = (
        f"At the catalog's dates ({at[ONSET]}) {event} changed {key} by {at[EFFECT]:+.1f}% "
        f"({level}% interval {at[lo_col(level)]:+.1f}% to {at[hi_col(level)]:+.1f}%)."
    )
    tangled = table[table[APART] < MIN_MONTHS_APART]
    if 0 in tangled.index:
        text += (
            f" At those dates it differs from {tangled.loc[0, CLOSEST]} in "
            f"{int(tangled.loc[0, APART])} month(s) only, so the data cannot tell the two "
            "effects apart."
        )
    moved = tangled.drop(index=0, errors="ignore")
    if len(moved):
        shifts = ", ".join(f"{s:+d}" for s in moved.index)
        names = ", ".join(sorted(set(moved[CLOSEST])))
        text += (
            f" Moved by {shifts} months it coincides with {names} (under {MIN_MONTHS_APART} "
            "months apart), and those estimates are left out of the range that follows."
        )
    effects = table[EFFECT].drop(index=moved.index).dropna()
    if len(table) > 1 and len(effects):
        text += (
            f" Moving its dates by {table.index.min():+d} to {table.index.max():+d} months, the "
            f"estimate ranges from {effects.min():+.1f}% to {effects.max():+.1f}%."
        )
    aic = table[AIC].dropna()
    if len(aic) > 1 and 0 in aic.index:
        ranked = aic.sort_values()
        best, runner = int(ranked.index[0]), int(ranked.index[1])
        if best == 0:
            gap = ranked.iloc[1] - ranked.iloc[0]
            text += (
                f" The catalog's dates fit the data best; next is a shift of {runner:+d} months, "
                f"AIC {gap:+.1f}."
            )
        else:
            gap = ranked.iloc[0] - aic.loc[0]
            text += (
                f" The data fit best with a shift of {best:+d} months (onset "
                f"{table.loc[best, ONSET]}), AIC {gap:+.1f} against the catalog's dates."
            )
        if abs(gap) < 2:
            text += " An AIC difference under 2 does not single out an onset."
    return text
