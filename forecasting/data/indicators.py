"""Indicator series upstream of the border: IOM gdidata's R data files, read into the store.

Each file is an R data file (``.rda``) holding one data frame, as the International Organization
for Migration's ``gdidata`` package ships it; the frame's name and columns (never the file's name)
say which layout it is. Its counts become series beside the encounter series, under keys of the
same form:

- ``mexico/inm/presented`` and ``…/citizenship=<slug>``: foreigners presented to Mexico's
  migration institute for irregular status (UPM *Boletines Estadísticos*, table 3.1.1);
- ``mexico/inm/expelled``, ``…/citizenship=<slug>``, ``…/type=deportation|assisted-return|…``:
  expulsions from Mexico (table 3.2.4);
- ``panama/darien/transits`` and ``…/citizenship=<slug>``: irregular transits through Darién;
- ``honduras/inm/irregular-entries`` and ``…/citizenship=<slug>``: irregular entries into
  Honduras (the total from ``irreg_honduras``, the breakdown from ``irreg_honduras_nat``);
- ``guatemala/igm/returned`` and ``…/from=mexico|united-states``: Guatemalans returned.

Nationalities are ISO 3166-1 alpha-3 codes; they become the encounter series' citizenship slugs
through the country table of ``country_converter`` (its short names are the names OHSS and CBP
use, so :func:`forecasting.data.keys.citizenship_slug` makes the same slug of both). Annual figures
(Darién's 2010–2019, dated to January) are left out: a monthly store has no month to book them in,
and spreading them would invent months.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.data import keys
from forecasting.data.assemble import assemble
from forecasting.errors import DataError
from forecasting.frame import DS, UNIQUE_ID, Y

#: R's serialisation headers ("RDX2"/"RDX3" then a newline), after any compression.
RDATA_MAGIC = (b"RDX2\n", b"RDX3\n")
#: gdidata's nationality codes outside ISO 3166-1: not recorded / other, stateless, Tibetan.
EXTRA_NATIONALITIES = {"OOO": "other", "STL": "stateless", "TIB": "tibet"}
IOM = "compiled by IOM's Global Data Institute (gdidata)"


@dataclass(frozen=True)
class Layout:
    """One gdidata data frame and the series it feeds.

    Attributes:
        frame: the data frame's name inside the file.
        columns: its columns, in order.
        key: the series key of its total (and the stem of its breakdowns).
        dims: (column, key dimension) pairs, one breakdown each.
        publisher: who publishes the figures.
        total: whether the frame feeds the total key.
        complete: whether the total must have every month between its first and last.
    """

    frame: str
    columns: tuple[str, ...]
    key: str
    dims: tuple[tuple[str, str], ...]
    publisher: str
    total: bool = True
    complete: bool = True


LAYOUTS = {
    "iom-mexico-presented": Layout(
        "irreg_mexico_nat",
        ("t", "nat", "n"),
        "mexico/inm/presented",
        (("nat", "citizenship"),),
        f"Mexico, Unidad de Política Migratoria (INM presentations), {IOM}",
    ),
    "iom-mexico-expelled": Layout(
        "irreg_mexico_exp",
        ("t", "nat", "type", "n"),
        "mexico/inm/expelled",
        (("nat", "citizenship"), ("type", "type")),
        f"Mexico, Unidad de Política Migratoria (INM expulsions), {IOM}",
    ),
    "iom-darien-transits": Layout(
        "irreg_darien_nat",
        ("t", "q", "nat", "n"),
        "panama/darien/transits",
        (("nat", "citizenship"),),
        f"Panama, Servicio Nacional de Migración, {IOM}",
        # Panama published no figures for 2020-04, -05 and -07, when its borders were closed.
        complete=False,
    ),
    "iom-honduras-entries": Layout(
        "irreg_honduras",
        ("t", "n"),
        "honduras/inm/irregular-entries",
        (),
        f"Honduras, Instituto Nacional de Migración, {IOM}",
    ),
    "iom-honduras-entries-nat": Layout(
        "irreg_honduras_nat",
        ("t", "nat", "n"),
        "honduras/inm/irregular-entries",
        (("nat", "citizenship"),),
        f"Honduras, Instituto Nacional de Migración, {IOM}",
        # irreg_honduras holds the total, from 2014 on.
        total=False,
    ),
    "iom-guatemala-returned": Layout(
        "irreg_guatemala",
        ("t", "sex", "age", "origin", "n"),
        "guatemala/igm/returned",
        (("origin", "from"),),
        f"Instituto Guatemalteco de Migración, {IOM}",
    ),
}
KNOWN_LAYOUTS = {
    name: f"IOM gdidata R data file (.rda) with data frame '{lay.frame}' of columns "
    f"{list(lay.columns)}"
    for name, lay in LAYOUTS.items()
}
PUBLISHERS = {name: lay.publisher for name, lay in LAYOUTS.items()}
#: The values each other dimension column accepts (``origin`` holds nationality codes); a
#: missing ``origin`` is a return whose origin was not recorded, counted in the total only.
DIMENSION_VALUES = {
    "type": ("deportation", "assisted return", "assisted return of children"),
    "origin": ("MEX", "USA"),
}
NOT_RECORDED = {"origin"}

#: Months after which an indicator month is public, counted against the encounter series: at an
#: origin whose last encounter month is ``c``, months up to ``c - lag`` are known. The reasons are
#: in the README ("Indicators"); when unsure, the longer lag.
PUBLICATION_LAGS = {
    "mexico/inm": 2,
    "panama/darien": 1,
    "honduras/inm": 1,
    "guatemala/igm": 1,
}


def _source(key: str) -> str:
    return "/".join(key.split("/")[:2])


def is_indicator(key: str) -> bool:
    """Whether a series key is an indicator (upstream flows, Mexico's enforcement), not
    an encounter series."""
    return _source(key) in PUBLICATION_LAGS


def publication_lag(key: str) -> int:
    """The months after which an indicator month is public (see :data:`PUBLICATION_LAGS`).

    Raises:
        KeyError: ``key`` is not an indicator's.
    """
    try:
        return PUBLICATION_LAGS[_source(key)]
    except KeyError:
        raise KeyError(
            f"'{key}' is not an indicator series; indicators start with {sorted(PUBLICATION_LAGS)}"
        ) from None


def is_rdata(data: bytes) -> bool:
    """Whether ``data`` is an R data file (``save()`` output), plain or gzip/bzip2/xz-compressed."""
    head = data[:64]
    try:
        if head.startswith(b"\x1f\x8b"):
            head = gzip.GzipFile(fileobj=io.BytesIO(data)).read(5)
        elif head.startswith(b"BZh"):
            # A bzip2 block decompresses whole (up to 900 kB): only its first bytes are kept.
            head = bz2.BZ2Decompressor().decompress(data, max_length=5)
        elif head.startswith(b"\xfd7zXZ\x00"):
            head = lzma.LZMADecompressor().decompress(data, max_length=5)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    return head[:5] in RDATA_MAGIC


def read(path: str | Path, name: str) -> tuple[str, pd.DataFrame, int]:
    """Read one gdidata R data file into the store's panel.

    Args:
        path: the local file.
        name: its name, for messages.

    Returns:
        ``(layout, panel, rows)``: the layout's name, the panel (``unique_id``, ``ds``, ``y``,
        ``filled``) and the number of data rows read.

    Raises:
        DataError: not a readable R data file, an unknown data frame, or a value that cannot be
            trusted (the message names the file, row and column, and what is accepted).
    """
    import pyreadr

    errors = pyreadr.custom_errors
    try:
        frames = pyreadr.read_r(str(path))
    except (errors.PyreadrError, errors.LibrdataError, OSError, ValueError) as exc:
        raise DataError(f"{name}: not a readable R data file: {exc}") from exc
    layout, frame = _layout(name, frames)
    spec = LAYOUTS[layout]
    # Row numbers as R prints them: the first data row is row 1.
    frame = frame.reset_index(drop=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame[Y] = _counts(name, frame["n"])
    frame[DS] = _months(name, frame["t"])
    frame = _monthly(name, frame)
    records = []
    if spec.total:
        records.append(pd.DataFrame({UNIQUE_ID: spec.key, DS: frame[DS], Y: frame[Y]}))
    for column, dimension in spec.dims:
        value = _dimension(name, frame[column], column)
        keep = value.notna()
        key = spec.key + "/" + dimension + "=" + value[keep]
        records.append(pd.DataFrame({UNIQUE_ID: key, DS: frame.loc[keep, DS], Y: frame[Y][keep]}))
    complete = {spec.key} if spec.total and spec.complete else set()
    # gdidata codes some source nationalities alike (two rows for GIN in a month of Mexico's
    # tables): assemble sums them, as one nationality's figure.
    panel = assemble(
        name, pd.concat(records), complete.__contains__, "no monthly rows", "an indicator's total"
    )
    return layout, panel, len(frame)


def _layout(name: str, frames: dict) -> tuple[str, pd.DataFrame]:
    by_frame = {spec.frame: layout for layout, spec in LAYOUTS.items()}
    known = [f for f in frames if f in by_frame]
    if len(known) != 1:
        accepted = "\n".join(f"  - {k}: {v}" for k, v in KNOWN_LAYOUTS.items())
        raise DataError(
            f"{name}: unknown layout (R data frames {list(frames)}); known layouts:\n{accepted}"
        )
    layout = by_frame[known[0]]
    frame = frames[known[0]]
    expected = list(LAYOUTS[layout].columns)
    if list(frame.columns) != expected:
        raise DataError(
            f"{name}: data frame '{known[0]}' has columns {list(frame.columns)}; "
            f"expected {expected}"
        )
    return layout, frame.copy()


def _where(name: str, row: int, column: str) -> str:
    return f"{name}: row {row}, column '{column}'"


def _shown(value: object) -> str:
    """A cell as the message quotes it (a numpy scalar as the plain number it holds)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _counts(name: str, values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    bad = numbers.isna() | (numbers < 0) | (numbers != np.floor(numbers))
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{_where(name, row, 'n')}: count {_shown(values[row])} is not accepted; "
            "counts must be whole numbers >= 0"
        )
    return numbers.astype("int64")


def _months(name: str, values: pd.Series) -> pd.Series:
    """R dates (days since 1970-01-01, or datetimes) → month starts; anything else is refused."""
    if pd.api.types.is_datetime64_any_dtype(values):
        months = values
    else:
        days = pd.to_numeric(values, errors="coerce").astype(float)
        # Month starts between 1900 and 2100 only: a stray number is not read as a date.
        days = days.where(days.between(-25_567, 47_482) & (days == np.floor(days)))
        months = pd.to_datetime(days, unit="D")
    bad = months.isna() | ~months.dt.is_month_start
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{_where(name, row, 't')}: {_shown(values[row])} is not accepted; expected an R Date "
            "on the first day of a month"
        )
    return months


def _monthly(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Leave out annual figures: the years before the first year with more than one month.

    gdidata dates an annual figure to its January; before monthly figures begin, a year holds
    only January rows. A later month in such a year means the layout changed and is refused.
    """
    year = frame[DS].dt.year
    months_per_year = frame.groupby(year)[DS].nunique()
    monthly_years = months_per_year.index[months_per_year > 1]
    if monthly_years.empty:
        return frame
    annual = year < monthly_years.min()
    odd = annual & (frame[DS].dt.month != 1)
    if odd.any():
        row = odd.idxmax()
        raise DataError(
            f"{_where(name, row, 't')}: {frame.loc[row, DS]:%Y-%m} falls in a year of annual "
            "figures (dated to January); expected January or a year of monthly figures"
        )
    return frame[~annual]


def _dimension(name: str, values: pd.Series, column: str) -> pd.Series:
    """Key slugs of a dimension column (NaN where the frame does not record it)."""
    if column == "nat":
        mapping = nationality_slugs(values.dropna().unique())
        what = "an ISO 3166-1 alpha-3 nationality code (e.g. 'VEN')"
    else:
        accepted = DIMENSION_VALUES[column]
        codes = column == "origin"
        mapping = nationality_slugs(accepted) if codes else {v: keys.slug(v) for v in accepted}
        what = f"one of {list(accepted)}"
    unknown = values.notna() & ~values.isin(list(mapping))
    if column not in NOT_RECORDED:
        unknown |= values.isna()
    if unknown.any():
        row = unknown.idxmax()
        raise DataError(
            f"{_where(name, row, column)}: {_shown(values[row])} is not accepted; expected {what}"
        )
    return values.map(mapping)


def nationality_slugs(codes: Iterable[str]) -> dict[str, str]:
    """The citizenship slug of each ISO 3166-1 alpha-3 code the country table knows.

    Codes the table does not know are left out (the caller refuses them); gdidata's own codes
    for "other", stateless and Tibetan map to :data:`EXTRA_NATIONALITIES`.
    """
    names = _country_names()
    out = {}
    for code in codes:
        code = str(code)
        if code in EXTRA_NATIONALITIES:
            out[code] = EXTRA_NATIONALITIES[code]
        elif code in names:
            out[code] = keys.citizenship_slug(names[code])
    return out


def un_region(citizenship: str) -> str | None:
    """The UN geoscheme region of a citizenship slug ("Central America", "South America",
    "Caribbean", …), or None for a slug that is not a country's."""
    regions = _country_table()[1]
    return regions.get(citizenship)


_COUNTRY_TABLE: tuple[dict[str, str], dict[str, str]] | None = None


def _country_names() -> dict[str, str]:
    """ISO3 → short English name, from country_converter's table."""
    return _country_table()[0]


def _country_table() -> tuple[dict[str, str], dict[str, str]]:
    """(ISO3 → short name, citizenship slug → UN region), loaded once (~1 s)."""
    global _COUNTRY_TABLE
    if _COUNTRY_TABLE is None:
        import country_converter

        table = country_converter.CountryConverter().data
        names = dict(zip(table["ISO3"], table["name_short"], strict=True))
        regions = {
            keys.citizenship_slug(name): region
            for name, region in zip(table["name_short"], table["UNregion"], strict=True)
        }
        _COUNTRY_TABLE = (names, regions)
    return _COUNTRY_TABLE
