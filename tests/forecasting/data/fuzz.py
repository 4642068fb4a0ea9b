"""Mutations of the official files and an independent reference parser of what they say.

A mutant is the official CBP sbo CSV or OHSS workbook with one change (a cell rewritten, a row
repeated or dropped, trailing commas, bytes inserted, a part corrupted). The reference parser reads
a mutant by the published rules with the standard library (csv) and openpyxl, not with the
project's readers, and returns its figures, or None where the rules say the file must be refused.
:func:`ingest_outcome` ingests a mutant and classifies what the project did with it; the fuzz test
(short profile) and ``experiments/fuzz/bench.py`` (long profile) share it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import openpyxl
import pandas as pd
from hypothesis import strategies as st

from forecasting.data import ObservationStore, keys
from forecasting.data.readers import OHSS_SHEETS, SBO_HEADER
from forecasting.errors import DataError
from pipelines.cli import MAX_ERROR_CHARS
from pipelines.ingest import ingest
from tests.forecasting.data.hostile import OHSS_PARTS, rezip, sbo_lines

MAX_COUNT = 10_000_000
MAX_CELL = 1_000
MONTHS = ["OCT", "NOV", "DEC", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP"]
Figures = dict[tuple[str, pd.Timestamp], int]

# -- values a hostile but fair user would write into a cell --------------------------------------
HOSTILE = [
    "",
    " ",
    "9223372036854775807",
    "9223372036854775808",
    "1e30",
    "1e3",
    "1.000",
    "1,000",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "-5",
    "+5",
    "0x10",
    "١٢٣",
    "10000001",
    "2200",
    "2263",
    "0000",
    "0001",
    "2022 garbage",
    "2000.5",
    "2025 (FYTD)",
    "2025 (fytd)",
    "FY2024",
    "OCTOBER",
    "oct",
    "13",
    "01 October",
    "Title 42",
    "\x00",
    "a\tb",
    "é",
    "Mexico",
    "MEXICO",
    " Mexico ",
    "Other",
    "U.S. Border Patrol",
    "u.s. border patrol",
    "FMUA",
    "UAC",
    "Single Adults",
    "Remaining",
    '"',
    '"quoted"',
    "x" * 2_000,
    "Southwest Land Border",
    "Coastal Border",
    "TRUE",
]
cell_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(min_value=-10, max_value=10**20).map(str),
    st.text(max_size=12),
)


# -- the CBP sbo CSV ------------------------------------------------------------------------------
@st.composite
def sbo_mutants(draw, lines: list[str]) -> tuple[str, bytes]:
    """One change to the official sbo file's lines (line endings kept)."""
    lines = list(lines)
    row = draw(st.integers(1, len(lines) - 1))
    op = draw(
        st.sampled_from(["cell", "cell", "cell", "repeat", "drop", "commas", "insert", "header"])
    )
    if op == "cell":
        column = draw(st.integers(0, 8))
        lines[row] = _set(lines[row], column, draw(cell_text))
    elif op == "repeat":
        twist = draw(st.sampled_from(["same", "upper", "lower", "spaced", "grouping"]))
        line = lines[row]
        line = {
            "same": line,
            "upper": line.upper(),
            "lower": line.lower(),
            "spaced": line.replace(",", " , "),
            "grouping": _set(line, 1, "Remaining" if ",FYTD," in line else "FYTD"),
        }[twist]
        lines.insert(draw(st.integers(1, len(lines))), line)
    elif op == "drop":
        del lines[row]
    elif op == "commas":
        lines[row] = lines[row].rstrip("\r\n") + "," * draw(st.integers(1, 200_000)) + "\r\n"
    elif op == "insert":
        at = draw(st.integers(0, len(lines[row])))
        lines[row] = lines[row][:at] + draw(st.text(min_size=1, max_size=4)) + lines[row][at:]
    else:
        lines[0] = _set(lines[0], draw(st.integers(0, 8)), draw(cell_text))
    return op, "".join(lines).encode("utf-8", errors="surrogatepass")


def _set(line: str, column: int, value: str) -> str:
    body = line.rstrip("\r\n")
    cells = body.split(",")
    cells[min(column, len(cells) - 1)] = value
    return ",".join(cells) + line[len(body) :]


def reference_sbo(data: bytes) -> Figures | None:
    """The figures an sbo CSV states by the published rules, or None where it must be refused."""
    try:
        text = data.decode("utf-8-sig")
        lines = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows = [r for r in lines if r and r != [""]]
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows or [c.strip() for c in rows[0]] != SBO_HEADER.split(","):
        return None
    today = dt.date.today()
    seen, records = set(), []
    for row in rows[1:]:
        if len(row) != 9:
            return None
        cells = [c.strip() for c in row]
        if any(len(c) > MAX_CELL or not c.isprintable() for c in cells):
            return None
        fy, _grouping, month, component, demographic, citizenship, title, kind, count = cells
        ds = _month(fy, month, today)
        if ds is None or not re.fullmatch(r"[0-9]+", count) or int(count) > MAX_COUNT:
            return None
        component = keys.COMPONENTS.get(component.lower())
        demographic = keys.DEMOGRAPHICS.get(demographic.lower())
        citizenship = keys.citizenship_slug(citizenship)
        if None in (component, demographic) or not citizenship:
            return None
        same = (ds, component, demographic, citizenship, keys.slug(title), keys.slug(kind))
        if same in seen:
            return None
        seen.add(same)
        records.append((ds, component, demographic, citizenship, int(count)))
    figures: Figures = {}
    for ds, component, demographic, citizenship, count in records:
        named = [
            "southwest/cbp",
            f"southwest/{component}",
            f"southwest/cbp/citizenship={citizenship}",
            f"southwest/cbp/demographic={demographic}",
        ]
        if component == "usbp":
            named.append(f"southwest/usbp/family={demographic}")
            if citizenship not in keys.RESIDUAL_CITIZENSHIPS:
                named.append(f"southwest/usbp/citizenship={citizenship}")
        for key in named:
            figures[key, ds] = figures.get((key, ds), 0) + count
    return _complete(figures)


def _month(fy: object, month: object, today: dt.date) -> pd.Timestamp | None:
    """Fiscal year + month label → month start, or None outside FY2000..now."""
    if type(fy) is int:
        year = fy
    elif isinstance(fy, str) and (m := re.fullmatch(r"([0-9]{4})( \(FYTD\))?", fy, re.I)):
        year = int(m.group(1))
    else:
        return None
    if not isinstance(month, str):
        return None
    label = month.strip().upper()
    if label in MONTHS:
        index = MONTHS.index(label)
    elif (m := re.fullmatch(r"(\d{2})\s+([A-Z]+)", label)) and 1 <= int(m.group(1)) <= 12:
        index = int(m.group(1)) - 1
        if m.group(2)[:3] != MONTHS[index]:
            return None
    else:
        return None
    calendar = (index + 9) % 12 + 1
    if not 2000 <= year <= today.year + 1:
        return None
    ds = pd.Timestamp(year - (calendar >= 10), calendar, 1)
    return ds if ds <= pd.Timestamp(today.year, today.month, 1) else None


def _complete(figures: Figures) -> Figures | None:
    """None when a total misses a month between its first and last, or there is nothing."""
    if not figures:
        return None
    months: dict[str, set[pd.Timestamp]] = {}
    for key, ds in figures:
        months.setdefault(key, set()).add(ds)
    for key, held in months.items():
        if key.count("/") <= 1:
            span = pd.date_range(min(held), max(held), freq="MS")
            if len(span) != len(held):
                return None
    return figures


# -- the OHSS workbook ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Workbook:
    """The official workbook's bytes, the XML of the parts a mutation rewrites, and where in
    them the data rows (past the header) and the shared strings (past the headers') lie."""

    data: bytes
    parts: dict[str, str]
    spans: dict[str, list[tuple[int, int]]]

    @classmethod
    def load(cls, path: Path) -> Workbook:
        data = path.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [*OHSS_PARTS.values(), "xl/sharedStrings.xml"]
            parts = {n: archive.read(n).decode() for n in names}
        spans = {
            p: [m.span() for m in re.finditer(r'<row r="\d+".*?</row>', parts[p])][1:]
            for p in OHSS_PARTS.values()
        }
        strings = re.finditer(r"<t>([^<]*)</t>", parts["xl/sharedStrings.xml"])
        spans["xl/sharedStrings.xml"] = [m.span(1) for m in strings][3:]
        return cls(data, parts, spans)


@st.composite
def ohss_mutants(draw, book: Workbook) -> tuple[str, bytes]:
    """One change to the official workbook: a cell, a row, a shared string or a part's bytes."""
    op = draw(st.sampled_from(["cell", "cell", "cell", "repeat", "string", "bytes", "drop-part"]))
    if op == "drop-part":
        part = draw(st.sampled_from([*OHSS_PARTS.values(), "xl/workbook.xml"]))
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(book.data)) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                if info.filename != part:
                    dst.writestr(info, src.read(info.filename))
        return op, out.getvalue()
    part = draw(st.sampled_from(list(OHSS_PARTS.values()))) if op != "string" else None
    if op == "string":
        part = "xl/sharedStrings.xml"
        xml = book.parts[part]
        start, end = draw(st.sampled_from(book.spans[part]))
        old = xml[start:end]
        new = draw(st.one_of(st.sampled_from([old.upper(), f" {old} ", old + "x"]), cell_text))
        xml = xml[:start] + _xml_text(new) + xml[end:]
    elif op == "bytes":
        xml = book.parts[part]
        at = draw(st.integers(0, len(xml)))
        xml = xml[:at] + draw(st.sampled_from(["<", "&", "</row>", '"', "\x00", "<c>"])) + xml[at:]
    else:
        xml = book.parts[part]
        start, end = draw(st.sampled_from(book.spans[part]))
        row = xml[start:end]
        if op == "repeat":
            last = int(re.findall(r'<row r="(\d+)"', xml)[-1]) + 1
            number = re.search(r'<row r="(\d+)"', row).group(1)
            copy = re.sub(rf'r="([A-Z]+){number}"', rf'r="\g<1>{last}"', row)
            copy = copy.replace(f'<row r="{number}"', f'<row r="{last}"', 1)
            xml = xml.replace("</sheetData>", copy + "</sheetData>", 1)
        else:
            cells = list(re.finditer(r'<c r="([A-Z]+)(\d+)"[^>]*?(?:/>|>.*?</c>)', row))
            cell = draw(st.sampled_from(cells))
            ref = cell.group(1) + cell.group(2)
            value = draw(cell_text)
            kind = draw(st.sampled_from(["number", "string", "empty"]))
            new = {
                "number": f'<c r="{ref}"><v>{_xml_text(value)}</v></c>',
                "string": f'<c r="{ref}" t="inlineStr"><is><t>{_xml_text(value)}</t></is></c>',
                "empty": "",
            }[kind]
            row = row[: cell.start()] + new + row[cell.end() :]
            xml = xml[:start] + row + xml[end:]
    return op, rezip(book.data, {part: xml.encode("utf-8", errors="surrogatepass")})


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def reference_ohss(data: bytes) -> Figures | None:
    """The figures an OHSS workbook states by the published rules (read with openpyxl), or None."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheets = {name: list(book[name].iter_rows(values_only=True)) for name in OHSS_SHEETS}
    except Exception:  # noqa: BLE001 - any failure to read means the file must be refused
        return None
    today = dt.date.today()
    figures: Figures = {}
    for sheet, expected in OHSS_SHEETS.items():
        rows = sheets[sheet]
        width = len(expected)
        if not rows or any(len(r) > width and any(v is not None for v in r[width:]) for r in rows):
            return None
        header = [" ".join(str(v).split()) if v is not None else None for v in rows[0][:width]]
        if header != expected:
            return None
        seen = set()
        for row in rows[1:]:
            row = tuple(row[:width]) + (None,) * (width - len(row))
            if all(v is None for v in row):
                continue
            fy, month, region, *dim, quantity = row
            labels = [month, region, *dim]
            if not all(isinstance(v, str) and v.strip() and v.isprintable() for v in labels):
                return None
            if type(quantity) is float and quantity.is_integer():
                quantity = int(quantity)
            if type(fy) is float and fy.is_integer():
                fy = int(fy)
            if isinstance(quantity, str) and re.fullmatch(r"\s*[0-9]+\s*", quantity):
                quantity = int(quantity)
            if type(quantity) is not int or not 0 <= quantity <= MAX_COUNT:
                return None
            ds = _month(fy, month, today)
            if ds is None:
                return None
            region_slug = keys.slug(region)
            if region_slug == "other":
                continue
            area = keys.REGIONS.get(region.strip().lower())
            if area is None:
                return None
            if not dim:
                key = f"{area}/usbp"
                same = (ds, region_slug)
            else:
                column = expected[3]
                if column == "Family Status":
                    value = keys.DEMOGRAPHICS.get(dim[0].strip().lower())
                    dimension = "family"
                elif column == "Sector":
                    value, dimension = keys.sector_slug(dim[0]), "sector"
                else:
                    value, dimension = keys.citizenship_slug(dim[0]), "citizenship"
                if not value:
                    return None
                key = f"southwest/usbp/{dimension}={value}" if area == "southwest" else None
                same = (ds, region_slug, value)
            if same in seen:
                return None
            seen.add(same)
            if key is not None:
                figures[key, ds] = figures.get((key, ds), 0) + quantity
    return _complete(figures)


def target(official: Path):
    """The mutation strategy, reference parser and file suffix for an official file."""
    if official.suffix == ".xlsx":
        return ohss_mutants(Workbook.load(official)), reference_ohss, ".xlsx"
    return sbo_mutants(sbo_lines(official)), reference_sbo, ".csv"


# -- one mutant through ingest --------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What ingest did with one mutant."""

    kind: str  # refused | accepted-correct | accepted-wrong | traceback | store-changed
    seconds: float  # wall clock: on a shared machine it counts other processes' turns too
    cpu_seconds: float
    detail: str = ""


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def mutant_outcome(store: ObservationStore, path: Path, data: bytes, reference) -> Outcome:
    """Write a mutant to ``path``, ingest it and judge the result by ``reference``."""
    path.write_bytes(data)
    return ingest_outcome(store, path, lambda: reference(data))


def ingest_outcome(
    store: ObservationStore, path: Path, expected: Callable[[], Figures | None]
) -> Outcome:
    """Ingest ``path`` and classify the result against the reference figures (computed only
    when the file is accepted: the reference parser is the slow part).

    An accepted release is read back from the store, then taken out again.
    """
    before = tree_digest(store.root)
    start, cpu = time.perf_counter(), time.process_time()

    def took(kind: str, detail: str = "") -> Outcome:
        return Outcome(kind, time.perf_counter() - start, time.process_time() - cpu, detail)

    try:
        results = ingest(store, [str(path)], force=True)
    except DataError as exc:
        outcome = took("refused", str(exc))
        if tree_digest(store.root) != before:
            return replace(outcome, kind="store-changed")
        if "\n" in outcome.detail or len(outcome.detail) > MAX_ERROR_CHARS:
            return replace(outcome, kind="long-message", detail=outcome.detail[:200])
        return outcome
    except Exception as exc:  # noqa: BLE001 - the fuzz counts any other exception as a traceback
        return took("traceback", f"{type(exc).__name__}: {exc}")
    outcome = took("accepted-correct")
    got = pd.read_parquet(store.root / "releases" / f"{results[0].sha256}.parquet")
    store.remove(r.sha256 for r in results if r.status == "added")
    observed = got[~got["filled"]]
    columns = observed[["unique_id", "ds", "y"]].to_numpy()
    figures = {(k, pd.Timestamp(d)): int(y) for k, d, y in columns}
    expected = expected()
    if expected is not None and figures == expected:
        return outcome
    if expected is None:
        return replace(outcome, kind="accepted-wrong", detail="accepted a file the rules refuse")
    diff = sorted(set(figures.items()) ^ set(expected.items()), key=str)[:3]
    return replace(outcome, kind="accepted-wrong", detail=f"figures differ: {diff}")
