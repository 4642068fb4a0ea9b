"""Monthly panels from a release's records: what every reader, encounters and indicators alike,
does last."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from forecasting.errors import DataError
from forecasting.frame import DS, FILLED, UNIQUE_ID, Y


def assemble(
    name: str,
    records: pd.DataFrame,
    complete: Callable[[str], bool],
    empty: str,
    totals: str,
) -> pd.DataFrame:
    """Sum records per (key, month), each key over its months from first to last: a missing
    month of a key ``complete`` names is refused (``totals`` says which those are), any other's
    is 0 and ``filled``. ``empty`` says what was missing when there are no records."""
    if records.empty:
        raise DataError(f"{name}: {empty}; nothing to ingest")
    panel = records.groupby([UNIQUE_ID, DS], as_index=False)[Y].sum()
    out = []
    for key, group in panel.groupby(UNIQUE_ID, sort=True):
        months = pd.date_range(group[DS].min(), group[DS].max(), freq="MS")
        series = group.set_index(DS)[Y].reindex(months)
        missing = series.isna().to_numpy()
        if missing.any() and complete(str(key)):
            raise DataError(
                f"{name}: total '{key}' has no figure for {months[missing][0]:%Y-%m}; {totals} "
                "must cover every month between its first and last"
            )
        out.append(
            pd.DataFrame(
                {UNIQUE_ID: key, DS: months, Y: series.fillna(0).astype("int64"), FILLED: missing}
            )
        )
    return pd.concat(out, ignore_index=True)
