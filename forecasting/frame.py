"""Column names of the shared frames and the one check every public entry point runs on a panel."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from forecasting.errors import DataError

UNIQUE_ID = "unique_id"
DS = "ds"
Y = "y"
#: The series key is called ``series`` at the API and pyfunc edge, ``unique_id`` inside.
SERIES = "series"

PANEL_COLUMNS = [UNIQUE_ID, DS, Y]


def check_panel(df: pd.DataFrame, required: Iterable[str] = PANEL_COLUMNS) -> pd.DataFrame:
    """Check that ``df`` is a long monthly panel and return it unchanged.

    Args:
        df: frame with at least ``unique_id`` (str), ``ds`` (month-start timestamps) and ``y``.
        required: the columns that must be present.

    Raises:
        DataError: a column is missing, ``ds`` is not month starts, or a (unique_id, ds) repeats.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"panel must be a pandas DataFrame; got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"panel is missing columns {missing}; got {list(df.columns)}")
    if DS in df.columns and len(df):
        if not pd.api.types.is_datetime64_any_dtype(df[DS]):
            raise DataError(f"panel column '{DS}' must hold datetimes; got dtype {df[DS].dtype}")
        if not df[DS].dt.is_month_start.all():
            bad = df.loc[~df[DS].dt.is_month_start, DS].iloc[0]
            raise DataError(f"panel column '{DS}' must hold month starts; got {bad:%Y-%m-%d}")
    if UNIQUE_ID in df.columns and DS in df.columns and df.duplicated([UNIQUE_ID, DS]).any():
        dup = df.loc[df.duplicated([UNIQUE_ID, DS]), [UNIQUE_ID, DS]].iloc[0]
        raise DataError(
            f"panel repeats ({UNIQUE_ID}, {DS}) = ({dup[UNIQUE_ID]}, {dup[DS]:%Y-%m-%d}); "
            "each series may hold one value per month"
        )
    return df


def series_history(
    panel: pd.DataFrame, key: str, start: str | pd.Timestamp | None = None
) -> pd.Series:
    """One series of a panel as a float Series on a gap-free month-start index.

    Releases of different layouts can leave a gap between them (a total one publisher stopped and
    another took up later); a model needs consecutive months, so the last unbroken stretch is
    returned, from ``start`` on when given.

    Args:
        panel: long frame with ``unique_id``, ``ds``, ``y``.
        key: the series key.
        start: first month to keep, or ``None`` for the whole stretch.

    Raises:
        DataError: the key has no rows (from ``start`` on).
    """
    rows = panel.loc[panel[UNIQUE_ID] == key, [DS, Y]].sort_values(DS)
    if start is not None:
        rows = rows[rows[DS] >= pd.Timestamp(start)]
    if rows.empty:
        raise DataError(f"series '{key}' has no observations" + (f" from {start}" if start else ""))
    gaps = rows[DS].diff() > pd.Timedelta(days=31)
    rows = rows[gaps.cumsum() == gaps.sum()]
    y = pd.Series(
        rows[Y].to_numpy(dtype=float), index=pd.DatetimeIndex(rows[DS], name=DS), name=key
    )
    return y.asfreq("MS")
