"""Readers for the publishers' layouts, chosen by a file's header (never its name).

Each reader turns one official file into a :class:`Release`: the tidy monthly panel
(``unique_id``, ``ds``, ``y``, plus ``filled`` for breakdown months the publisher omitted) and the
file's provenance. Nothing here writes; the store decides what to keep.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecasting.data import indicators, keys, limits
from forecasting.data.assemble import assemble
from forecasting.data.limits import excerpt
from forecasting.errors import DataError
from forecasting.frame import DS, UNIQUE_ID, Y

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
#: No single cell of these tables comes near it (the largest monthly total is about 250,000).
MAX_COUNT = 10_000_000
#: The first fiscal year the OHSS and CBP layouts publish.
MIN_FISCAL_YEAR = 2000
_PLAIN_COUNT = re.compile(r"[0-9]{1,12}")
_FISCAL_YEAR = re.compile(r"([0-9]{4})(?: \(FYTD\))?", re.IGNORECASE)
#: Labels that only group rows (e.g. "FYTD" / "Remaining"): they name no cell of the table.
GROUPING_COLUMNS = {"Month Grouping", "AOR (Abbv)"}


def _alias(table: dict[str, str]) -> Callable[[str], str]:
    """A label's meaning through a publisher table (aliases like "FMUA" folded), else its slug."""
    return lambda label: table.get(label.strip().lower(), keys.slug(label))


#: How a label column is normalised to decide whether two rows book the same figure.
NORMALISERS: dict[str, Callable[[str], str]] = {
    "Citizenship Grouping": keys.citizenship_slug,
    "Citizenship": keys.citizenship_slug,
    "Area of Responsibility": keys.sector_slug,
    "Sector": keys.sector_slug,
    "Component": _alias(keys.COMPONENTS),
    "Demographic": _alias(keys.DEMOGRAPHICS),
    "Family Status": _alias(keys.DEMOGRAPHICS),
    "Region": _alias(keys.REGIONS),
    "Land Border Region": _alias(keys.REGIONS),
}
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
    name = path.name
    limits.check_size(name, path.stat().st_size)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if indicators.is_rdata(data):
        layout, panel, rows = indicators.read(path, name)
        return Release(str(source or path), name, layout, digest, rows, panel)
    if zipfile.is_zipfile(io.BytesIO(data)):
        limits.check_workbook(name, data)
        layout, records, rows = "ohss-khsm-usbp", *_read_ohss(name, data)
    else:
        layout, reader, frame = _read_csv(name, data)
        rows = len(frame)
        records = reader(name, frame)
    panel = assemble(
        name, records, keys.is_total, "no rows for any border region", "a region or component total"
    )
    return Release(str(source or path), name, layout, digest, rows, panel)


def _unknown_layout(name: str, got: str) -> DataError:
    known = "; ".join(f"{k}: {v}" for k, v in KNOWN_LAYOUTS.items())
    return DataError(f"{name}: unknown layout ({got}); known layouts: {known}")


def _read_csv(
    name: str, data: bytes
) -> tuple[str, Callable[[str, pd.DataFrame], pd.DataFrame], pd.DataFrame]:
    """The layout, its reader and the file as a frame of stripped text, indexed by line number."""
    readers = {
        SBO_HEADER: ("cbp-sbo", _sbo),
        AOR_HEADER: ("cbp-aor", _aor),
        STATE_HEADER: ("cbp-state", _state),
    }
    rows = limits.csv_rows(name, data)
    first = next(rows, None)
    if first is None:
        raise _unknown_layout(name, "an empty file")
    columns = [c.strip() for c in first[1]]
    header = ",".join(columns)
    if header not in readers:
        raise _unknown_layout(name, f"header {excerpt(header)}")
    lines: list[int] = []
    cells: list[list[str]] = [[] for _ in columns]
    # One object per distinct text: a million rows repeat a few hundred labels.
    seen: dict[str, str] = {}
    for line, row in rows:
        if len(row) != len(columns):
            raise DataError(
                f"{name}: row {line} has {len(row):,} columns; expected {len(columns)} as in "
                "the header"
            )
        lines.append(line)
        for column, values, value in zip(columns, cells, row, strict=True):
            value = value.strip()
            kept = seen.get(value)
            if kept is None:
                if not value.isprintable():
                    raise DataError(
                        f"{_where(name, None, line, column)}: {excerpt(value)} holds control "
                        "characters; cells must be printable text"
                    )
                kept = seen[value] = value
            values.append(kept)
    if not lines:
        raise DataError(f"{name}: a header and no data rows; nothing to ingest")
    frame = pd.DataFrame(dict(zip(columns, cells, strict=True)), index=pd.Index(lines))
    return *readers[header], frame


def _where(name: str, sheet: str | None, row: int, column: str) -> str:
    place = f"sheet '{sheet}', row {row}" if sheet else f"row {row}"
    return f"{name}: {place}, column '{column}'"


def _count(value: object) -> int | None:
    # type(), not isinstance(): True is an int, and openpyxl reads numbers with a '.' as float.
    if type(value) is int:
        return value
    if isinstance(value, str) and _PLAIN_COUNT.fullmatch(value.strip()):
        return int(value)
    return None


def _counts(name: str, sheet: str | None, values: pd.Series, column: str) -> pd.Series:
    numbers = values.map(_count)
    bad = numbers.map(lambda n: n is None or not 0 <= n <= MAX_COUNT)
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{_where(name, sheet, row, column)}: count {excerpt(values[row])} is not accepted; "
            f"counts must be whole numbers from 0 to {MAX_COUNT:,} written as plain integers"
        )
    return numbers.astype("int64")


def _fiscal_year(value: object) -> int | None:
    if type(value) is int:
        return value
    match = _FISCAL_YEAR.fullmatch(value.strip()) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def _months(
    name: str, sheet: str | None, fy: pd.Series, month: pd.Series, fy_column: str, month_column: str
) -> pd.Series:
    """Fiscal year + month label → calendar month start (FY2024 October is October 2023).

    Months after the current one are refused: a release reports the past.
    """
    today = dt.date.today()
    this_fy = today.year + (today.month >= 10)
    year = fy.map(_fiscal_year)
    bad = year.map(lambda y: y is None or not MIN_FISCAL_YEAR <= y <= this_fy)
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{_where(name, sheet, row, fy_column)}: fiscal year {excerpt(fy[row])} is not "
            f"accepted; expected a year from {MIN_FISCAL_YEAR} to {this_fy} such as 2024 or "
            "'2025 (FYTD)'"
        )
    label = month.map(lambda v: v.strip().upper() if isinstance(v, str) else "")
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
            f"{_where(name, sheet, row, month_column)}: month {excerpt(month[row])} is not "
            "accepted; expected 'OCT'..'SEP' or '01 October'..'12 September'"
        )
    cal_month = (index.astype(int) + 9) % 12 + 1
    cal_year = year.astype(int) - (cal_month >= 10).astype(int)
    ds = pd.to_datetime(pd.DataFrame({"year": cal_year, "month": cal_month, "day": 1}))
    future = ds > pd.Timestamp(today.year, today.month, 1)
    if future.any():
        row = future.idxmax()
        raise DataError(
            f"{_where(name, sheet, row, month_column)}: {ds[row]:%Y-%m} (fiscal year "
            f"{excerpt(fy[row])}, {excerpt(month[row])}) is after this month; a release "
            "reports months up to the current one"
        )
    return ds


def _no_duplicates(name: str, sheet: str | None, frame: pd.DataFrame, dims: list[str]) -> None:
    """Refuse two rows that book the same figure: same month and the same normalised labels
    (case, spacing and spelling variants of one name folded), whatever their grouping labels."""
    normalised = pd.DataFrame(
        {c: frame[c].map(NORMALISERS.get(c, keys.slug)) for c in dims}, index=frame.index
    ).assign(**{DS: frame[DS]})
    dup = normalised.duplicated(keep=False)
    if dup.any():
        rows = list(frame.index[dup][:2])
        raise DataError(
            f"{name}: {'sheet ' + repr(sheet) + ', ' if sheet else ''}rows {rows[0]} "
            f"and {rows[1]} repeat the same month and {', '.join(dims)} (ignoring case and "
            "spacing); one release may book each figure once"
        )


def _labels(name: str, sheet: str, values: pd.Series, column: str) -> None:
    """Workbook label cells must hold printable, non-empty text."""
    ok = values.map(lambda v: isinstance(v, str) and v.strip() != "" and v.isprintable())
    if not ok.all():
        row = ok.idxmin()
        raise DataError(
            f"{_where(name, sheet, row, column)}: {excerpt(values[row])} is not accepted; "
            "expected a non-empty label of printable text"
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
        if out[label] == "":
            row = values.index[values == label][0]
            raise DataError(
                f"{_where(name, sheet, row, column)}: {excerpt(label)} is not accepted; a label "
                "needs a letter or digit"
            )
    return values.map(out)


def _region(label: str) -> str | None:
    if keys.slug(label) in NON_BORDER_REGIONS:
        return None
    return keys.lookup(keys.REGIONS, label, "region")


def _read_ohss(name: str, data: bytes) -> tuple[pd.DataFrame, int]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if "xl/workbook.xml" not in archive.namelist():
            raise _unknown_layout(name, "a zip archive that holds no xlsx workbook")
    try:
        sheets = pd.read_excel(
            io.BytesIO(data), sheet_name=list(OHSS_SHEETS), dtype=object, engine="openpyxl"
        )
    except ValueError as exc:
        if "not found" not in str(exc):
            raise DataError(f"{name}: not a readable xlsx workbook ({excerpt(exc)})") from exc
        raise _unknown_layout(
            name, f"workbook without the sheets {list(OHSS_SHEETS)}: {excerpt(exc)}"
        ) from exc
    # openpyxl reports a workbook whose XML is well-formed but whose parts do not fit together
    # (a missing part, a shared-string index out of range, a style it cannot build) with any of
    # these; the limits above have already bounded what it read.
    except (KeyError, IndexError, TypeError, AttributeError, OSError, SyntaxError) as exc:
        raise DataError(f"{name}: not a readable xlsx workbook ({excerpt(exc)})") from exc
    records, rows = [], 0
    for sheet, expected in OHSS_SHEETS.items():
        frame = sheets[sheet]
        # OHSS wraps "Fiscal\nYear" in its header cell.
        frame.columns = [" ".join(str(c).split()) for c in frame.columns]
        if list(frame.columns) != expected:
            raise DataError(
                f"{name}: sheet '{sheet}' has columns {excerpt(list(frame.columns))}; expected "
                f"{expected}"
            )
        frame = frame.dropna(how="all")
        frame.index = frame.index + 2
        rows += len(frame)
        for column in expected[1:-1]:
            _labels(name, sheet, frame[column], column)
        frame[Y] = _counts(name, sheet, frame["Quantity"], "Quantity")
        frame[DS] = _months(
            name, sheet, frame["Fiscal Year"], frame["Month"], "Fiscal Year", "Month"
        )
        _no_duplicates(name, sheet, frame, expected[2:-1])
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
    frame = frame.copy()
    frame[Y] = _counts(name, None, frame["Encounter Count"], "Encounter Count")
    frame[DS] = _months(
        name, None, frame["Fiscal Year"], frame["Month (abbv)"], "Fiscal Year", "Month (abbv)"
    )
    when = {"Fiscal Year", "Month (abbv)", "Encounter Count", Y, DS}
    dims = [c for c in frame.columns if c not in when | GROUPING_COLUMNS]
    _no_duplicates(name, None, frame, dims)
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
