"""The regressor design matrix of one series: one column per event or group in its scope."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forecasting.errors import DataError
from forecasting.frame import DS, UNIQUE_ID, Y, indicator_column
from forecasting.interventions.catalog import Catalog


def month_index(start: object, end: object) -> pd.DatetimeIndex:
    """Month starts from the month of ``start`` to the month of ``end``, both included.

    Args:
        start, end: anything ``pandas.Timestamp`` reads (``"2019-06"``, a date); any day of a
            month stands for that month.

    Returns:
        DatetimeIndex of month starts, ``freq="MS"``, named ``ds``.

    Raises:
        ValueError: a bound does not read as a date, or ``end`` is before ``start``.
    """
    bounds = []
    for name, value in (("start", start), ("end", end)):
        try:
            if not isinstance(value, str | dt.date | np.datetime64) or pd.isna(value):
                raise ValueError(value)
            bounds.append(pd.Timestamp(value).to_period("M").to_timestamp())
        except ValueError as exc:
            raise ValueError(f"{name} must be a month such as '2019-06'; got {value!r}") from exc
    if bounds[1] < bounds[0]:
        raise ValueError(f"end {bounds[1]:%Y-%m} is before start {bounds[0]:%Y-%m}")
    return pd.date_range(bounds[0], bounds[1], freq="MS", name=DS)


def design_matrix(catalog: Catalog, series_key: str, start: object, end: object) -> pd.DataFrame:
    """Intervention regressors of a series over a month range, past or future.

    One float column per regressor in the series' scope (see :meth:`Catalog.regressors`),
    named by the event id, or by the group id for grouped events; a group's value in a month is
    the largest of its in-scope members' values. Each event's monthly value follows its shape
    (see ``forecasting.interventions.shapes``): the fraction of the month in force times the
    shape's profile. The columns depend on the series only, never on the range.

    Args:
        catalog: the intervention catalog, e.g. from :func:`load_catalog`.
        series_key: e.g. ``southwest/usbp/citizenship=venezuela``.
        start, end: first and last month, both included (``"2019-06"``, any date in the month).

    Returns:
        DataFrame indexed by month start (DatetimeIndex named ``ds``, ``freq="MS"``), one
        float64 column per regressor, values in [0, 1].

    Raises:
        ValueError: a malformed series key or month, or ``end`` before ``start``.
    """
    months = month_index(start, end)
    columns = {
        regressor: np.maximum.reduce([event.values(months) for event in events])
        for regressor, events in catalog.regressors(series_key).items()
    }
    return pd.DataFrame(columns, index=months, dtype="float64")


def indicator_span(panel: pd.DataFrame, keys: list[str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last month every indicator in ``keys`` has a figure for.

    Raises:
        DataError: an indicator the panel does not hold, or indicators that never overlap.
    """
    firsts, lasts = [], []
    for key in keys:
        months = panel.loc[panel[UNIQUE_ID] == key, DS]
        if months.empty:
            raise DataError(
                f"indicator '{key}' is not in the store; ingest its file "
                "(encounters ingest ../shared/data/indicators/*.rda)"
            )
        firsts.append(months.min())
        lasts.append(months.max())
    if max(firsts) > min(lasts):
        raise DataError(f"indicators {keys} have no month in common")
    return max(firsts), min(lasts)


def indicator_matrix(
    panel: pd.DataFrame, keys: list[str], months: pd.DatetimeIndex
) -> pd.DataFrame:
    """Measured indicators as continuous regressors: ``log1p`` of each count, concurrent.

    Args:
        panel: long frame (``unique_id``, ``ds``, ``y``) holding the indicators.
        keys: indicator keys, e.g. ``["mexico/inm/presented"]``.
        months: the months to cover (see :func:`indicator_span`).

    Returns:
        DataFrame on ``months`` with one column ``indicator:<key>`` per key.

    Raises:
        DataError: an indicator lacks a month of ``months``.
    """
    columns = {}
    for key in keys:
        rows = panel[panel[UNIQUE_ID] == key].set_index(DS)[Y].astype(float)
        values = rows.reindex(months)
        if values.isna().any():
            gap = months[values.isna().to_numpy()][0]
            raise DataError(f"indicator '{key}' has no figure for {gap:%Y-%m}")
        columns[indicator_column(key)] = np.log1p(values.to_numpy())
    return pd.DataFrame(columns, index=months, dtype="float64")
