"""Onset sensitivity: an event's fitted effect, refitted with its dates moved by whole months.

Catalog dates are uncertain by weeks; these refits show how much an effect depends on them, and
which other regressor a moved event would coincide with (then the data cannot tell the two
apart).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from forecasting.errors import DataError, ScenarioError
from forecasting.frame import (
    AIC,
    CLOSEST_REGRESSOR,
    DEFAULT_LEVEL,
    EFFECT,
    MONTHS_APART,
    ONSET,
    SHIFT,
    STATUS,
    check_level,
    hi_col,
    lo_col,
)
from forecasting.interventions import Catalog, design_matrix
from forecasting.models._statespace import regression_of
from forecasting.models.base import Capability, Forecaster
from forecasting.narrative import onset_summary


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
        model = model_factory().fit(y, X)
        onset = min(moved_catalog.get(i).start for i in moved)
        rows.append(
            {SHIFT: int(shift), ONSET: onset.isoformat(), **_row(model, X, regressor, levels)}
        )
    return pd.DataFrame(rows).set_index(SHIFT)


def _row(model: Forecaster, X: pd.DataFrame, regressor: str, levels: list[int]) -> dict:
    """The moved regressor's effect in one refit, its AIC, and the regressor closest to it."""
    effect = model.effects(levels).loc[regressor]
    row = {EFFECT: effect[EFFECT]}
    for lv in levels:
        row[lo_col(lv)] = effect[lo_col(lv)]
        row[hi_col(lv)] = effect[hi_col(lv)]
    row[STATUS] = effect[STATUS]
    row[AIC] = regression_of(model).aic if model.can(Capability.REGRESSION) else np.nan
    others = [c for c in model.regressors_ if c != regressor and c not in model.dropped_regressors_]
    apart = (X[others].sub(X[regressor], axis=0).abs() >= 0.5).sum()
    row[CLOSEST_REGRESSOR] = apart.idxmin() if len(apart) else None
    row[MONTHS_APART] = float(apart.min()) if len(apart) else np.nan
    return row


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
    model.require(
        Capability.KEEP,
        "cannot keep a regressor through refits; onset sensitivity needs a SARIMAX or UCM",
    )
    changes: dict = {"keep": (regressor,)}
    if model.can(Capability.ORDERS):
        changes["orders"] = ((model.order_, model.seasonal_order_),)
    table = onset_sensitivity(
        lambda: model.clone(**changes), y, catalog, series_key, event, shifts, levels
    )
    rows = []
    for shift, row in table.iterrows():
        out = {SHIFT: int(shift), **{k: _plain(v) for k, v in row.items()}}
        if out[MONTHS_APART] is not None:
            out[MONTHS_APART] = int(out[MONTHS_APART])
        rows.append(out)
    return {
        "series": series_key,
        "event": event,
        "regressor": regressor,
        "level": levels,
        "rows": rows,
        "summary": onset_summary(table, event, series_key, max(levels)),
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
