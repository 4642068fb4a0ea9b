"""Readers for the publishers' layouts, chosen by a file's header (never its name).

Each reader turns one official file into a :class:`Release`: the tidy monthly panel
(``unique_id``, ``ds``, ``y``, plus ``filled`` for breakdown months the publisher omitted) and the
file's provenance. Nothing here writes; the store decides what to keep.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.data import indicators, keys
from forecasting.errors import DataError
from forecasting.frame import DS, FILLED, UNIQUE_ID, Y

SBO_HEADER = (
    "Fiscal Year,Month Grouping,Month (abbv),Component,Demographic,Citizenship Grouping,"
    "Title of Authority,Encounter Type,Encounter Count"
)
AOR_HEADER = (
    "Fiscal Year,Month Grouping,Month (abbv),Component,Land Border Region,Area of Responsibility,"
    "AOR (Abbv),Demographic,Citizenship,Title of Authority,Encounter Type,Encounter Count"
)
STATE_HEADER = (
    "Fiscal Year,Month Grouping,Month (abbv),Land Border Region,State,Demographic,Citizenship,"
    "Title of Authority,Encounter Count"
)
#: The OHSS workbook's monthly sheets this project reads, with the header each must carry.
OHSS_SHEETS = {
    "Monthly Region": ["Fiscal Year", "Month", "Region", "Quantity"],
    "Monthly Rgn and Sector": ["Fiscal Year", "Month", "Region", "Sector", "Quantity"],
    "Monthly Rgn and Citp": ["Fiscal Year", "Month", "Region", "Citizenship", "Quantity"],
    "Monthly Rgn and Fam Status": ["Fiscal Year", "Month", "Region", "Family Status", "Quantity"],
}
KNOWN_LAYOUTS = {
    "ohss-khsm-usbp": "DHS OHSS 'KHSM Encounters (USBP)' workbook (.xlsx) with sheets "
    + ", ".join(f"'{s}'" for s in OHSS_SHEETS),
    "cbp-sbo": f"CBP sbo-encounters CSV with header: {SBO_HEADER}",
    "cbp-aor": f"CBP nationwide-encounters AOR CSV with header: {AOR_HEADER}",
    "cbp-state": f"CBP nationwide-encounters state CSV with header: {STATE_HEADER}",
    **indicators.KNOWN_LAYOUTS,
}
PUBLISHERS = {
    "ohss-khsm-usbp": "DHS Office of Homeland Security Statistics",
    "cbp-sbo": "U.S. Customs and Border Protection",
    "cbp-aor": "U.S. Customs and Border Protection",
    "cbp-state": "U.S. Customs and Border Protection",
    **indicators.PUBLISHERS,
}
#: CBP's land-border region column also books airports and seaports as "Other": not a border series.
NON_BORDER_REGIONS = {"other"}
CBP_MONTHS = {
    m: i
    for i, m in enumerate(
        ["OCT", "NOV", "DEC", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP"]
    )
}


@dataclass(frozen=True)
class Release:
    """One official file, read: its tidy panel and where it came from.

    Attributes:
        source: the path or URL the user gave.
        name: the file's name.
        layout: one of :data:`KNOWN_LAYOUTS`.
        sha256: hex digest of the file's bytes.
        rows: data rows read from the file.
        panel: ``unique_id``, ``ds`` (month start), ``y`` (int count), ``filled`` (bool: a breakdown
            month the publisher omitted, booked as 0).
    """

    source: str
    name: str
    layout: str
    sha256: str
    rows: int
    panel: pd.DataFrame

    @property
    def publisher(self) -> str:
        return PUBLISHERS[self.layout]

    @property
    def vintage(self) -> pd.Timestamp:
        """The last month the release covers: a newer vintage wins where releases overlap."""
        return self.panel[DS].max()


def read_release(path: str | Path, source: str | None = None) -> Release:
    """Read one official file of any known layout, detected from its content.

    Args:
        path: a local file.
        source: what to record as its origin (a URL it was downloaded from); defaults to ``path``.

    Raises:
        DataError: unknown layout (the message lists the known headers), or a value that cannot be
            trusted (the message names file, row and column).
    """
    path = Path(path)
    data = path.read_bytes()
    name = path.name
    digest = hashlib.sha256(data).hexdigest()
    if indicators.is_rdata(data):
        layout, panel, rows = indicators.read(path, name)
        return Release(str(source or path), name, layout, digest, rows, panel)
    if zipfile.is_zipfile(io.BytesIO(data)):
        layout, records, rows = "ohss-khsm-usbp", *_read_ohss(name, data)
    else:
        layout, reader = _csv_layout(name, data)
        frame = _read_csv(name, data)
        rows = len(frame)
        records = reader(name, frame)
    panel = _assemble(name, records)
    return Release(str(source or path), name, layout, digest, rows, panel)


def _unknown_layout(name: str, got: str) -> DataError:
    known = "\n".join(f"  - {k}: {v}" for k, v in KNOWN_LAYOUTS.items())
    return DataError(f"{name}: unknown layout (header {got!r}); known layouts:\n{known}")


def _csv_layout(name: str, data: bytes) -> tuple[str, Callable[[str, pd.DataFrame], pd.DataFrame]]:
    first = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip()
    header = ",".join(c.strip() for c in first.split(","))
    readers = {
        SBO_HEADER: ("cbp-sbo", _sbo),
        AOR_HEADER: ("cbp-aor", _aor),
        STATE_HEADER: ("cbp-state", _state),
    }
    if header not in readers:
        raise _unknown_layout(name, header)
    return readers[header]


def _read_csv(name: str, data: bytes) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: not a readable CSV file: {exc}") from exc
    frame.columns = [c.strip() for c in frame.columns]
    # Line numbers as a person sees them in an editor: the header is line 1.
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    return frame.apply(lambda col: col.str.strip())


def _where(name: str, sheet: str | None, row: int, column: str) -> str:
    place = f"sheet '{sheet}', row {row}" if sheet else f"row {row}"
    return f"{name}: {place}, column '{column}'"


def _counts(name: str, sheet: str | None, values: pd.Series, column: str) -> pd.Series:
    text = values.astype(str).str.replace(",", "", regex=False).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers != np.floor(numbers))
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{_where(name, sheet, row, column)}: count {values[row]!r} is not accepted; "
            "counts must be whole numbers >= 0"
        )
    return numbers.astype("int64")


def _months(
    name: str, sheet: str | None, fy: pd.Series, month: pd.Series, fy_column: str, month_column: str
) -> pd.Series:
    """Fiscal year + month label → calendar month start (FY2024 October is October 2023)."""
    year = pd.to_numeric(
        fy.astype(str).str.extract(r"^\s*(\d{4})\b", expand=False), errors="coerce"
    )
    if year.isna().any():
        row = year.isna().idxmax()
        raise DataError(
            f"{_where(name, sheet, row, fy_column)}: fiscal year {fy[row]!r} is not "
            "accepted; expected a year such as 2024 or '2025 (FYTD)'"
        )
    label = month.astype(str).str.strip().str.upper()
    # OHSS numbers its months in fiscal order ("01 October"); CBP abbreviates them ("OCT").
    index = label.map(CBP_MONTHS)
    ohss = label.str.extract(r"^(\d{2})\s+([A-Z]+)$")
    numbered = ohss[0].notna()
    index = index.where(~numbered, pd.to_numeric(ohss[0], errors="coerce") - 1)
    consistent = ~numbered | (ohss[1].str[:3].map(CBP_MONTHS) == index)
    bad = index.isna() | ~index.between(0, 11) | ~consistent
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{_where(name, sheet, row, month_column)}: month {month[row]!r} is not "
            "accepted; expected 'OCT'..'SEP' or '01 October'..'12 September'"
        )
    cal_month = (index.astype(int) + 9) % 12 + 1
    cal_year = year.astype(int) - (cal_month >= 10).astype(int)
    return pd.to_datetime(pd.DataFrame({"year": cal_year, "month": cal_month, "day": 1}))


def _no_duplicates(name: str, sheet: str | None, frame: pd.DataFrame, dims: list[str]) -> None:
    dup = frame.duplicated(dims, keep=False)
    if dup.any():
        rows = list(frame.index[dup][:2])
        raise DataError(
            f"{name}: {'sheet ' + repr(sheet) + ', ' if sheet else ''}rows {rows[0]} "
            f"and {rows[1]} repeat the same {', '.join(dims)}; one release may book "
            "each figure once"
        )


def _records(frame: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """Rows that map to a key (NaN key: not a series this project keeps) as (key, ds, y)."""
    keep = key.notna()
    return pd.DataFrame({UNIQUE_ID: key[keep], DS: frame.loc[keep, DS], Y: frame.loc[keep, Y]})


def _mapped(
    name: str, sheet: str | None, values: pd.Series, column: str, fn: Callable[[str], str | None]
) -> pd.Series:
    out = {}
    for label in values.unique():
        try:
            out[label] = fn(label)
        except KeyError as exc:
            row = values.index[values == label][0]
            raise DataError(f"{_where(name, sheet, row, column)}: {exc.args[0]}") from None
    return values.map(out)


def _region(label: str) -> str | None:
    if keys.slug(label) in NON_BORDER_REGIONS:
        return None
    return keys.lookup(keys.REGIONS, label, "region")


def _read_ohss(name: str, data: bytes) -> tuple[pd.DataFrame, int]:
    try:
        sheets = pd.read_excel(
            io.BytesIO(data), sheet_name=list(OHSS_SHEETS), dtype=object, engine="openpyxl"
        )
    except ValueError as exc:
        raise _unknown_layout(
            name, f"workbook without the sheets {list(OHSS_SHEETS)}: {exc}"
        ) from exc
    records, rows = [], 0
    for sheet, expected in OHSS_SHEETS.items():
        frame = sheets[sheet]
        # OHSS wraps "Fiscal\nYear" in its header cell.
        frame.columns = [" ".join(str(c).split()) for c in frame.columns]
        if list(frame.columns) != expected:
            raise DataError(
                f"{name}: sheet '{sheet}' has columns {list(frame.columns)}; expected {expected}"
            )
        frame = frame.dropna(how="all")
        frame.index = frame.index + 2
        rows += len(frame)
        _no_duplicates(name, sheet, frame, expected[:-1])
        frame[Y] = _counts(name, sheet, frame["Quantity"], "Quantity")
        frame[DS] = _months(
            name, sheet, frame["Fiscal Year"], frame["Month"], "Fiscal Year", "Month"
        )
        region = _mapped(name, sheet, frame["Region"], "Region", _region)
        if sheet == "Monthly Region":
            key = region + "/usbp"
        else:
            dim_column = expected[3]
            dimension, fn = {
                "Sector": ("sector", keys.sector_slug),
                "Citizenship": ("citizenship", keys.citizenship_slug),
                "Family Status": (
                    "family",
                    lambda v: keys.lookup(keys.DEMOGRAPHICS, v, "family status"),
                ),
            }[dim_column]
            value = _mapped(name, sheet, frame[dim_column], dim_column, fn)
            # Breakdowns are kept for the southwest, the border this service forecasts.
            key = ("southwest/usbp/" + dimension + "=" + value).where(region == "southwest")
        records.append(_records(frame, key))
    return pd.concat(records), rows


def _cbp_frame(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    dims = [c for c in frame.columns if c != "Encounter Count"]
    _no_duplicates(name, None, frame, dims)
    frame = frame.copy()
    frame[Y] = _counts(name, None, frame["Encounter Count"], "Encounter Count")
    frame[DS] = _months(
        name, None, frame["Fiscal Year"], frame["Month (abbv)"], "Fiscal Year", "Month (abbv)"
    )
    return frame


def _cbp_records(
    name: str,
    frame: pd.DataFrame,
    region: pd.Series,
    component: pd.Series | None,
    citizenship_column: str,
    sector: pd.Series | None = None,
) -> pd.DataFrame:
    """CBP rows → totals per component and for CBP, and southwest breakdowns."""
    citizenship = _mapped(
        name, None, frame[citizenship_column], citizenship_column, keys.citizenship_slug
    )
    demographic = _mapped(
        name,
        None,
        frame["Demographic"],
        "Demographic",
        lambda v: keys.lookup(keys.DEMOGRAPHICS, v, "demographic"),
    )
    southwest = region == "southwest"
    residual = citizenship.isin(keys.RESIDUAL_CITIZENSHIPS)
    parts = [
        _records(frame, region + "/cbp"),
        _records(frame, ("southwest/cbp/citizenship=" + citizenship).where(southwest)),
        _records(frame, ("southwest/cbp/demographic=" + demographic).where(southwest)),
    ]
    if component is not None:
        usbp = southwest & (component == "usbp")
        parts += [
            _records(frame, region + "/" + component),
            # A residual "Other" would sit beside OHSS's full list of countries as if it were one.
            _records(frame, ("southwest/usbp/citizenship=" + citizenship).where(usbp & ~residual)),
            _records(frame, ("southwest/usbp/family=" + demographic).where(usbp)),
        ]
        if sector is not None:
            parts.append(_records(frame, ("southwest/usbp/sector=" + sector).where(usbp)))
    return pd.concat(parts)


def _component(name: str, frame: pd.DataFrame) -> pd.Series:
    return _mapped(
        name,
        None,
        frame["Component"],
        "Component",
        lambda v: keys.lookup(keys.COMPONENTS, v, "component"),
    )


def _sbo(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame = _cbp_frame(name, frame)
    region = pd.Series("southwest", index=frame.index)
    return _cbp_records(name, frame, region, _component(name, frame), "Citizenship Grouping")


def _aor(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame = _cbp_frame(name, frame)
    region = _mapped(name, None, frame["Land Border Region"], "Land Border Region", _region)
    frame, region = frame[region.notna()], region[region.notna()]
    sector = _mapped(
        name, None, frame["Area of Responsibility"], "Area of Responsibility", keys.sector_slug
    )
    return _cbp_records(name, frame, region, _component(name, frame), "Citizenship", sector)


def _state(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame = _cbp_frame(name, frame)
    region = _mapped(name, None, frame["Land Border Region"], "Land Border Region", _region)
    frame, region = frame[region.notna()], region[region.notna()]
    return _cbp_records(name, frame, region, None, "Citizenship")


def _assemble(name: str, records: pd.DataFrame) -> pd.DataFrame:
    """Sum records per (key, month); totals must be complete, breakdown gaps are filled with 0."""
    if records.empty:
        raise DataError(f"{name}: no rows for any border region; nothing to ingest")
    panel = records.groupby([UNIQUE_ID, DS], as_index=False)[Y].sum()
    out = []
    for key, group in panel.groupby(UNIQUE_ID, sort=True):
        months = pd.date_range(group[DS].min(), group[DS].max(), freq="MS")
        series = group.set_index(DS)[Y].reindex(months)
        missing = series.isna()
        if missing.any() and keys.is_total(str(key)):
            gap = months[missing.to_numpy()][0]
            raise DataError(
                f"{name}: total '{key}' has no figure for {gap:%Y-%m}; a region or "
                "component total must cover every month between its first and last"
            )
        out.append(
            pd.DataFrame(
                {
                    UNIQUE_ID: key,
                    DS: months,
                    Y: series.fillna(0).astype("int64"),
                    FILLED: missing.to_numpy(),
                }
            )
        )
    return pd.concat(out, ignore_index=True)
