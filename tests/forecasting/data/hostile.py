"""Mutated copies of the official files: one cell, one row or one workbook part changed."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path


def sbo_lines(sbo_file: Path) -> list[str]:
    """The CBP sbo file's lines, line endings kept (the header is line 1)."""
    return sbo_file.read_bytes().decode("utf-8-sig").splitlines(keepends=True)


def with_cell(line: str, column: int, value: str) -> str:
    body = line.rstrip("\r\n")
    cells = body.split(",")
    cells[column] = value
    return ",".join(cells) + line[len(body) :]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_bytes("".join(lines).encode())
    return path


def rezip(data: bytes, parts: dict[str, bytes]) -> bytes:
    """The xlsx archive ``data`` with parts replaced (same order and compression) or added."""
    out = io.BytesIO()
    # Level 1: the archive's compression is not its content, and the fuzz rezips thousands.
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", compresslevel=1) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, parts.get(info.filename, src.read(info.filename)))
        for part in parts.keys() - set(src.namelist()):
            dst.writestr(part, parts[part], compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def workbook_part(data: bytes, part: str) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(part).decode()


#: The OHSS workbook's parts of the sheets the reader reads.
OHSS_PARTS = {
    "Monthly Region": "xl/worksheets/sheet6.xml",
    "Monthly Rgn and Citp": "xl/worksheets/sheet12.xml",
    "Monthly Rgn and Fam Status": "xl/worksheets/sheet14.xml",
    "Monthly Rgn and Sector": "xl/worksheets/sheet16.xml",
}


def with_ohss_cell(data: bytes, sheet: str, ref: str, xml: str) -> bytes:
    """Replace cell ``ref`` (e.g. 'A2') of ``sheet`` with the XML ``xml`` ('' removes it)."""
    part = OHSS_PARTS[sheet]
    text = workbook_part(data, part)
    new, n = re.subn(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)', xml, text, count=1)
    assert n == 1, f"cell {ref} not found in {part}"
    return rezip(data, {part: new.encode()})
