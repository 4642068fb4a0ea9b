"""Decompose a month-over-month (or year-over-year) change into trend, season, events and the rest.

A structural model (:class:`~forecasting.models.UCM`) writes ``log1p(y_t)`` as

    level_t + seasonal_t + x_t' beta + irregular_t

so the change between month ``a`` and month ``b`` on that scale splits exactly into the change of
the smoothed level (``trend``), of the smoothed seasonal (``seasonal``), ``(x_b - x_a)_j beta_j``
per regressor that moves, and the rest (``remainder``: the irregular terms, what no component
explains).

**From logs to counts.** A log change ``dz_c`` becomes ``L * dz_c`` encounters, ``L`` the
logarithmic mean of ``y_a + 1`` and ``y_b + 1`` (``(y_b - y_a) / (z_b - z_a)``): the split of the
logarithmic-mean Divisia index, which adds up to the observed change exactly, does not depend on
the order of the components, and gives each the same share of the count change as of the log
change.

**Intervals** come from joint draws of the smoothed level and seasonal in both months (their
smoothed covariances and the smoothed cross-covariance between the months) and of the
coefficients (the fit's covariance). The smoothed states depend linearly on the coefficients, so
each coefficient draw moves them by a fixed amount, computed once. The remainder is what the draw
leaves of the observed change, so every draw adds up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.draws import summarise
from forecasting.errors import DataError
from forecasting.frame import (
    CHANGE,
    COMPONENT,
    DEFAULT_LEVEL,
    LOG_CHANGE,
    NAME,
    OTHER_INTERVENTIONS,
    REMAINDER,
    SEASONAL,
    TOTAL,
    TREND,
    check_level,
    interval_columns,
)
from forecasting.interventions import Catalog, month_index
from forecasting.models._statespace import Regression, regression_of
from forecasting.models.base import Capability, Forecaster
from forecasting.narrative import COMPONENT_NAMES, decomposition_summary

#: Regressors that move less than this between the two months are summed into one row.
MIN_REGRESSOR_CHANGE = 0.01
#: ``vs`` → months back to the month compared with.
VS = {"previous": 1, "year": 12}
DEFAULT_DRAWS = 4000


@dataclass(frozen=True)
class DecompositionResult:
    """The change of one series between two months, split by component.

    Attributes:
        series: the series key.
        month: the month explained.
        compared_to: the month it is compared with.
        vs: ``previous`` or ``year``.
        level: interval levels in percent.
        values: the observed counts of ``compared_to`` and ``month``.
        frame: one row per component: ``seasonal``, ``trend``, each regressor whose value
            changes between the months, ``remainder``, then ``total``. Columns ``component``,
            ``name`` (plain words), ``change`` (encounters, mean over draws), ``change_lo_<l>``,
            ``change_hi_<l>`` and ``log_change`` (on the ``log1p`` scale).
        summary: one plain-language paragraph with the figures.
        notes: how the split was made and what it leaves out.
    """

    series: str
    month: pd.Timestamp
    compared_to: pd.Timestamp
    vs: str
    level: tuple[int, ...]
    values: tuple[float, float]
    frame: pd.DataFrame
    summary: str
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready: ``series``, ``month``, ``compared_to`` (``YYYY-MM``), ``vs``, ``level``,
        ``from``, ``to``, ``change``, ``components`` (the frame's rows), ``summary``, ``notes``."""
        rows = self.frame.copy()
        numeric = rows.columns.difference([COMPONENT, NAME, LOG_CHANGE])
        rows[numeric] = rows[numeric].round(1)
        rows[LOG_CHANGE] = rows[LOG_CHANGE].round(4)
        return {
            "series": self.series,
            "month": f"{self.month:%Y-%m}",
            "compared_to": f"{self.compared_to:%Y-%m}",
            "vs": self.vs,
            "level": list(self.level),
            "from": self.values[0],
            "to": self.values[1],
            "change": self.values[1] - self.values[0],
            "components": rows.to_dict(orient="records"),
            "summary": self.summary,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)


def _regressor_name(catalog: Catalog, column: str) -> str:
    for group in catalog.groups:
        if group.id == column:
            return group.name
    return catalog.get(column).name


def _months(y: pd.Series, month: object, vs: str) -> tuple[int, int]:
    """Positions in ``y`` of the month compared with and the month explained."""
    if vs not in VS:
        raise ValueError(f"vs must be one of {list(VS)}; got {vs!r}")
    try:
        target = month_index(month, month)[0]
    except ValueError as exc:
        raise DataError(f"month must be a month such as '2024-01'; got {month!r}") from exc
    base = target - pd.DateOffset(months=VS[vs])
    for m in (base, target):
        if m not in y.index:
            raise DataError(
                f"{m:%Y-%m} is outside the fitted months {y.index[0]:%Y-%m}..{y.index[-1]:%Y-%m}"
                f"; month and the month it is compared with ({vs}) must both be observed"
            )
    return y.index.get_loc(base), y.index.get_loc(target)


def _check_fit(model: Forecaster, y: pd.Series, X: pd.DataFrame) -> None:
    nobs = model.results_.nobs
    if not isinstance(y, pd.Series) or len(y) != nobs or y.index[-1] != model.cutoff_:
        raise DataError(
            f"y must be the series the model was fitted on ({nobs} months to {model.cutoff_:%Y-%m})"
        )
    if not isinstance(X, pd.DataFrame) or not X.index.equals(y.index):
        raise DataError("X must be the design matrix the model was fitted with, indexed like y")


def _regressor_parts(
    model: Forecaster, reg: Regression, X: pd.DataFrame, at: tuple[int, int], betas: np.ndarray
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each moving regressor's log change per draw (small ones summed), and notes."""
    # On the scale the coefficients act on (fractional values are read multiplicatively).
    linear = model.linearise(X)
    dx = linear.iloc[at[1]] - linear.iloc[at[0]]
    parts: dict[str, np.ndarray] = {}
    notes, small = [], []
    for column in X.columns[(dx != 0).to_numpy()]:
        if column not in reg.columns:
            reason = model.dropped_regressors_.get(column, "not fitted by the model")
            notes.append(
                f"{column} changes between the two months but has no fitted effect ({reason}); "
                "its part is in the trend and the remainder"
            )
            continue
        part = dx[column] * betas[:, reg.index(column)]
        if abs(dx[column]) < MIN_REGRESSOR_CHANGE:
            # Keep the table to the events that move: a decade-old decay changes by 1e-6 a month.
            small.append(column)
            parts[OTHER_INTERVENTIONS] = parts.get(OTHER_INTERVENTIONS, 0) + part
        else:
            parts[column] = part
    if small:
        parts[OTHER_INTERVENTIONS] = parts.pop(OTHER_INTERVENTIONS)
        notes.append(
            f"{OTHER_INTERVENTIONS} sums regressors whose value changes by less than "
            f"{MIN_REGRESSOR_CHANGE:g} between the months: {', '.join(small)}"
        )
    return parts, notes


def _table(
    parts: dict[str, np.ndarray], values: tuple[float, float], dz: float, catalog: Catalog, levels
) -> pd.DataFrame:
    y_a, y_b = values
    # Logarithmic mean of y + 1: turns log changes into counts that add up to y_b - y_a.
    weight = (y_b - y_a) / dz if dz != 0 else y_a + 1
    rows = []
    for component, log_draws in parts.items():
        name = COMPONENT_NAMES.get(component) or _regressor_name(catalog, component)
        row = {COMPONENT: component, NAME: name}
        row.update({k: float(v) for k, v in summarise(weight * log_draws, levels, CHANGE).items()})
        row[LOG_CHANGE] = float(log_draws.mean())
        rows.append(row)
    total = {COMPONENT: TOTAL, NAME: COMPONENT_NAMES[TOTAL], CHANGE: y_b - y_a, LOG_CHANGE: dz}
    total.update(dict.fromkeys(interval_columns(levels, CHANGE), y_b - y_a))
    return pd.DataFrame([*rows, total])


def _method_notes(n_draws: int) -> list[str]:
    return [
        "contributions are changes on the log1p scale times the logarithmic mean of the two "
        f"months' counts, so they add up to the observed change; intervals from {n_draws} "
        "joint draws of the smoothed level, seasonal and coefficients",
        "the trend is the smoothed level: it holds the lasting part of moves no component "
        "explains; the remainder holds only the transient part (the irregular term)",
    ]


def decompose(
    model: Forecaster,
    y: pd.Series,
    X: pd.DataFrame,
    catalog: Catalog,
    series_key: str,
    month: object,
    vs: str = "previous",
    level: Sequence[int] = DEFAULT_LEVEL,
    n_draws: int = DEFAULT_DRAWS,
    rng: np.random.Generator | int | None = 0,
) -> DecompositionResult:
    """Split the change of a series into a month from the month before (or a year before).

    Args:
        model: a fitted model with level and seasonal components and a regression on
            ``log1p`` counts (:attr:`~forecasting.models.base.Capability.COMPONENTS`: a UCM).
        y: the series it was fitted on (month-start index ending at its cutoff).
        X: the design matrix it was fitted with.
        catalog: the catalog ``X`` came from (for the events' names).
        series_key: the series.
        month: the month to explain (``"2024-01"``).
        vs: ``previous`` (month over month) or ``year`` (year over year).
        level: interval levels in percent.
        n_draws: joint draws of states and coefficients behind the intervals.
        rng: seed or generator.

    Returns:
        The split, with a summary paragraph; see :class:`DecompositionResult`.

    Raises:
        NotImplementedError: the model has no level and seasonal components.
        DataError: ``y`` / ``X`` do not match the model, or a month outside ``y``.
        ValueError: unknown ``vs`` or bad levels.
    """
    levels = check_level(level)
    reg = regression_of(model).regression()
    model.require(
        Capability.COMPONENTS,
        "has no level and seasonal components; decomposing a change needs a structural model (UCM)",
    )
    _check_fit(model, y, X)
    a, b = _months(y, month, vs)
    draws_rng = np.random.default_rng(rng)
    betas = reg.draws(n_draws, draws_rng)
    states = model.component_draws((a, b), betas, draws_rng)
    z = np.log1p(y.to_numpy(dtype=float))
    parts = {SEASONAL: states[:, 3] - states[:, 1], TREND: states[:, 2] - states[:, 0]}
    moved, notes = _regressor_parts(model, reg, X, (a, b), betas)
    parts.update(moved)
    parts[REMAINDER] = z[b] - z[a] - sum(parts.values())
    values = (float(y.iloc[a]), float(y.iloc[b]))
    frame = _table(parts, values, z[b] - z[a], catalog, levels)
    notes += _method_notes(n_draws)
    months = (y.index[a], y.index[b])
    summary = decomposition_summary(series_key, months, values, frame, max(levels))
    return DecompositionResult(
        series_key, months[1], months[0], vs, tuple(levels), values, frame, summary, tuple(notes)
    )
