"""Resource bounds on input files, checked while streaming, before pandas or openpyxl see them.

A file that passes these checks may still be refused by its reader; one that fails them is refused
in bounded time and memory, whatever it holds (a 10 MB line, 100,000 columns on one row, a
50-million-character cell, a zip bomb).
"""

from __future__ import annotations

import csv
import io
import re
import xml.parsers.expat
import zipfile
import zlib
from collections.abc import Iterator

from forecasting.errors import DataError

#: Official files are a few MB (CBP's largest nationwide CSVs tens of MB): 64 MB leaves room.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: The OHSS workbook unpacks to 12 MB; 10x that for growth.
MAX_XLSX_BYTES = 128 * 1024 * 1024
MAX_ROWS = 1_000_000
MAX_COLUMNS = 64
#: pandas pads a sheet to a full grid (its last row times its last column): the largest official
#: sheet is 14,890 x 5.
MAX_SHEET_CELLS = 2_000_000
#: The longest label the publishers use is under 60 characters.
MAX_CELL_CHARS = 1_000
MAX_LINE_CHARS = MAX_COLUMNS * (MAX_CELL_CHARS + 3)
EXCERPT_CHARS = 40


def excerpt(value: object) -> str:
    """The offending text, cut short, as a quoted one-line literal."""
    text = str(value)
    cut = text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")
    return repr(cut)


def check_size(name: str, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise DataError(
            f"{name}: {size:,} bytes; files of at most {MAX_FILE_BYTES:,} bytes are accepted"
        )


def csv_rows(name: str, data: bytes) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of a UTF-8 CSV file, refusing over-long lines and cells as they come.

    Blank lines are skipped; the header is the first row yielded.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name}: not UTF-8 text (byte {exc.start:,}); a CSV file must be UTF-8"
        ) from None
    reader = csv.reader(_bounded_lines(name, text), strict=True)
    rows = 0
    try:
        for cells in reader:
            if not cells or cells == [""]:
                continue
            rows += 1
            if rows > MAX_ROWS + 1:
                raise DataError(f"{name}: more than {MAX_ROWS:,} rows; at most that are accepted")
            if len(cells) > MAX_COLUMNS:
                raise DataError(
                    f"{name}: row {reader.line_num} has {len(cells):,} columns; at most "
                    f"{MAX_COLUMNS} are accepted"
                )
            longest = max(cells, key=len)
            if len(longest) > MAX_CELL_CHARS:
                raise DataError(
                    f"{name}: row {reader.line_num}, column {cells.index(longest) + 1}: a cell of "
                    f"{len(longest):,} characters ({excerpt(longest)}); at most "
                    f"{MAX_CELL_CHARS:,} are accepted"
                )
            yield reader.line_num, cells
    except csv.Error as exc:
        raise DataError(f"{name}: row {reader.line_num}: not a readable CSV row ({exc})") from None


def _bounded_lines(name: str, text: str) -> Iterator[str]:
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if len(line) > MAX_LINE_CHARS:
            raise DataError(
                f"{name}: line {number} has {len(line):,} characters ({excerpt(line)}); at most "
                f"{MAX_LINE_CHARS:,} are accepted"
            )
        yield line


_CELL_REF = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")
#: Parts openpyxl turns into cells: their text nodes are cell values.
_CELL_PARTS = re.compile(r"xl/(worksheets/[^/]+|sharedStrings)\.xml")


def check_workbook(name: str, data: bytes) -> None:
    """Unpack every part of an xlsx file as a stream and refuse it before openpyxl would load it.

    Refused: not a zip, corrupt members, more than :data:`MAX_XLSX_BYTES` unpacked, XML that is
    not well-formed or declares a DTD, a cell text over :data:`MAX_CELL_CHARS`, a cell beyond
    :data:`MAX_ROWS` rows or :data:`MAX_COLUMNS` columns, a sheet whose grid (last row times last
    column) exceeds :data:`MAX_SHEET_CELLS`.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError) as exc:
        raise DataError(f"{name}: not a readable xlsx workbook ({exc})") from None
    unpacked = 0
    for info in members:
        part = info.filename
        scan = _XmlScan(name, part) if part.endswith((".xml", ".rels")) else None
        try:
            with archive.open(info) as fh:
                while chunk := fh.read(1 << 16):
                    unpacked += len(chunk)
                    if unpacked > MAX_XLSX_BYTES:
                        raise DataError(
                            f"{name}: unpacks to more than {MAX_XLSX_BYTES:,} bytes; at most "
                            "that is accepted"
                        )
                    if scan:
                        scan.feed(chunk)
            if scan:
                scan.feed(b"", final=True)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError) as exc:
            raise DataError(f"{name}: part {excerpt(part)} cannot be unpacked ({exc})") from None


class _XmlScan:
    """A streaming expat pass over one workbook part that counts what openpyxl would build."""

    def __init__(self, name: str, part: str):
        self.name, self.part = name, part
        self.cells = _CELL_PARTS.fullmatch(part) is not None
        self.text = 0
        self.row = self.last_row = self.column = self.last_column = 0
        self.parser = xml.parsers.expat.ParserCreate()
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._chars

    def feed(self, chunk: bytes, final: bool = False) -> None:
        try:
            self.parser.Parse(chunk, final)
        except xml.parsers.expat.ExpatError as exc:
            raise DataError(
                f"{self.name}: part {excerpt(self.part)} is not well-formed XML ({exc})"
            ) from None

    def _refuse(self, what: str) -> DataError:
        return DataError(f"{self.name}: part {excerpt(self.part)}: {what}")

    def _doctype(self, *_args) -> None:
        raise self._refuse("declares a DTD; workbook XML has none")

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self.text = 0
        if not self.cells:
            return
        local = tag.rsplit(":", 1)[-1]
        # Like openpyxl: a row or cell without a reference follows the one before it.
        if local == "row":
            row = attrs.get("r", "")
            self.row = int(row) if row.isdigit() else self.row + 1
            self.column = 0
            self._grid(f"row {excerpt(row)}")
        elif local == "c":
            ref = attrs.get("r")
            if ref is None:
                self.column += 1
            else:
                match = _CELL_REF.fullmatch(ref)
                if match is None:
                    raise self._refuse(f"cell reference {excerpt(ref)} is not like 'D907'")
                self.column = 0
                for letter in match.group(1):
                    self.column = self.column * 26 + ord(letter) - 64
                self.row = max(self.row, int(match.group(2)))
            self._grid(f"cell {excerpt(ref)}")

    def _grid(self, where: str) -> None:
        self.last_row = max(self.last_row, self.row)
        self.last_column = max(self.last_column, self.column)
        if (
            self.last_row > MAX_ROWS
            or self.last_column > MAX_COLUMNS
            or self.last_row * self.last_column > MAX_SHEET_CELLS
        ):
            raise self._refuse(
                f"{where} makes the sheet {self.last_row:,} rows by {self.last_column:,} columns; "
                f"at most {MAX_ROWS:,} rows, {MAX_COLUMNS} columns and {MAX_SHEET_CELLS:,} cells "
                "are accepted"
            )

    def _end(self, _tag: str) -> None:
        self.text = 0

    def _chars(self, text: str) -> None:
        self.text += len(text)
        if self.cells and self.text > MAX_CELL_CHARS:
            raise self._refuse(
                f"a cell text of more than {MAX_CELL_CHARS:,} characters ({excerpt(text)}); at "
                "most that are accepted"
            )
