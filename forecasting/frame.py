"""The project's vocabulary: every shared column name, the interval-column rule, and the one check
every public entry point runs on a panel.

Frames across the project speak these names (STYLE.md, "one vocabulary"): a panel is
``unique_id, ds, y``; a forecast ``ds, mean, lo_<l>, hi_<l>``; a backtest adds ``cutoff`` and
``step``; a counterfactual holds ``reference``, ``counterfactual``, ``effect`` and
``cumulative_effect``, each with its bounds ``<stem>_lo_<l>`` / ``<stem>_hi_<l>``;
decompositions and onset-sensitivity tables have their own columns below. Interval column names
are made by :func:`interval_col` and nowhere else.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from forecasting.errors import DataError

UNIQUE_ID = "unique_id"
DS = "ds"
Y = "y"
#: A breakdown month the publisher omitted, booked as 0 in the store.
FILLED = "filled"
#: The series key is called ``series`` at the API and pyfunc edge, ``unique_id`` inside.
SERIES = "series"
#: Months ahead of a request (the pyfunc input's column).
H = "h"
MEAN = "mean"
#: A backtest origin: the last month its model was fitted on.
CUTOFF = "cutoff"
#: Months ahead of a backtest row's cutoff, 1..h.
STEP = "step"
#: Effects tables: the regressor (index), its effect in percent and whether the fit kept it.
REGRESSOR = "regressor"
EFFECT = "effect"
STATUS = "status"
KEPT = "kept"
#: Counterfactual frames: whether a month was observed, and the four quantities with intervals.
OBSERVED = "observed"
REFERENCE = "reference"
COUNTERFACTUAL = "counterfactual"
CUMULATIVE_EFFECT = "cumulative_effect"
#: Decompositions: one row per component, its change in counts and on the log1p scale.
COMPONENT = "component"
NAME = "name"
CHANGE = "change"
LOG_CHANGE = "log_change"
#: The components besides each intervention, by id.
SEASONAL = "seasonal"
TREND = "trend"
OTHER_INTERVENTIONS = "other_interventions"
REMAINDER = "remainder"
TOTAL = "total"
#: Onset sensitivity: one row per shift of an event's dates.
SHIFT = "shift"
ONSET = "onset"
AIC = "aic"
CLOSEST_REGRESSOR = "closest_regressor"
MONTHS_APART = "months_apart"
#: Design-matrix columns of measured indicators (continuous regressors, ``log1p`` of the count)
#: are named ``indicator:<key>``; every other column is an intervention's.
INDICATOR_PREFIX = "indicator:"
#: Columns of control series (the ``controls`` counterfactual method: other encounter series as
#: continuous regressors, ``log1p`` of the count) are named ``control:<key>``.
CONTROL_PREFIX = "control:"
#: Design-matrix columns that are measured levels rather than interventions' shapes.
MEASURED_PREFIXES = (INDICATOR_PREFIX, CONTROL_PREFIX)
#: The two ends of an interval.
LO = "lo"
HI = "hi"
BOUNDS = (LO, HI)
DEFAULT_LEVEL = (80, 95)

PANEL_COLUMNS = [UNIQUE_ID, DS, Y]


def interval_col(bound: str, level: int, stem: str | None = None) -> str:
    """The column of one end of a ``level`` % interval: ``lo_80``, or ``effect_hi_95`` for a stem.

    Args:
        bound: ``"lo"`` or ``"hi"``.
        level: the interval's level in percent.
        stem: the quantity the interval is of; ``None`` for a forecast's own ``mean``.
    """
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {list(BOUNDS)}; got {bound!r}")
    return f"{bound}_{level}" if stem is None else f"{stem}_{bound}_{level}"


def indicator_column(key: str) -> str:
    """The design-matrix column of an indicator series, e.g. ``indicator:mexico/inm/presented``."""
    return f"{INDICATOR_PREFIX}{key}"


def control_column(key: str) -> str:
    """The design-matrix column of a control series, e.g. ``control:northern/usbp``."""
    return f"{CONTROL_PREFIX}{key}"


def lo_col(level: int, stem: str | None = None) -> str:
    """The lower bound column of the ``level`` % interval, e.g. ``lo_80``."""
    return interval_col(LO, level, stem)


def hi_col(level: int, stem: str | None = None) -> str:
    """The upper bound column of the ``level`` % interval, e.g. ``hi_80``."""
    return interval_col(HI, level, stem)


def interval_columns(level: Iterable[int], stem: str | None = None) -> list[str]:
    """``lo_<l>, hi_<l>`` (with the stem, if any) for each level in the order given."""
    return [interval_col(b, lv, stem) for lv in level for b in BOUNDS]


def interval_list(row: Mapping, levels: Iterable[int], stem: str | None = None) -> list[dict]:
    """``row``'s intervals of ``stem`` as a declared list ``[{level, lo, hi}]`` (what the JSON
    answers carry beside the ``lo_<L>`` / ``hi_<L>`` keys)."""
    return [
        {"level": lv, LO: row.get(lo_col(lv, stem)), HI: row.get(hi_col(lv, stem))} for lv in levels
    ]


def check_level(level: Sequence[int]) -> list[int]:
    """Return the interval levels sorted and deduplicated.

    Args:
        level: coverage levels in percent, integers strictly between 0 and 100, e.g. ``[80, 95]``.

    Raises:
        ValueError: a level is not an integer percentage in (0, 100).
    """
    if isinstance(level, numbers.Integral) or isinstance(level, str):
        raise ValueError(f"level must be a list of percent integers, e.g. [80, 95]; got {level!r}")
    levels = list(level)
    bad = [
        lv
        for lv in levels
        if isinstance(lv, bool) or not isinstance(lv, numbers.Integral) or not 0 < lv < 100
    ]
    if bad:
        raise ValueError(
            f"level must hold percent integers in (0, 100), e.g. [80, 95]; got {levels}"
        )
    return sorted({int(lv) for lv in levels})


def forecast_columns(level: Sequence[int]) -> list[str]:
    """The forecast frame's columns: ``mean`` then ``lo_<l>, hi_<l>`` for each level, ascending."""
    return [MEAN, *interval_columns(check_level(level))]


def frame_levels(frame: pd.DataFrame, stem: str | None = None) -> list[int]:
    """The interval levels a frame holds both bounds of (for ``stem``, if given), ascending."""
    prefix = "" if stem is None else f"{stem}_"
    pattern = re.compile(rf"{re.escape(prefix)}{LO}_(\d+)")
    found = [int(m.group(1)) for c in frame.columns if (m := pattern.fullmatch(str(c)))]
    return [lv for lv in sorted(found) if hi_col(lv, stem) in frame.columns]


def months_between(start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Whole months from ``start``'s month to ``end``'s (negative when ``end`` is earlier)."""
    return (end.year - start.year) * 12 + end.month - start.month


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
