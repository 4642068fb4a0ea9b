"""Resource bounds: issue 18's hostile files are refused fast, in little memory, in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from forecasting.data import read_release
from forecasting.data.limits import MAX_CELL_CHARS, MAX_FILE_BYTES
from forecasting.errors import DataError
from tests.forecasting.data.hostile import rezip, sbo_lines, workbook_part, write_lines

#: Issue 18's targets for one refusal. Time is the refusal's CPU time: on a shared CI machine the
#: wall clock also counts other processes' turns (it is in the failure message).
MAX_SECONDS = 5.0
MAX_PEAK_MB = 500

MEASURE = """
import json, sys, time
from forecasting.data import read_release
from forecasting.errors import DataError
start, cpu = time.perf_counter(), time.process_time()
try:
    read_release(sys.argv[1])
    message = None
except DataError as exc:
    message = str(exc)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a large pytest
# process would report its parent's peak.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - start, "message": message,
                  "cpu_seconds": time.process_time() - cpu,
                  "peak_mb": int(hwm.split()[1]) / 1024}))
"""


def refuse_measured(path: Path) -> dict:
    """read_release in a fresh process: its time, its peak memory and its refusal."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_row_of_100000_trailing_commas_is_refused_fast_naming_its_line(tmp_path, sbo_file):
    lines = sbo_lines(sbo_file)
    lines[5] = lines[5].rstrip("\r\n") + "," * 100_000 + "\r\n"
    path = write_lines(tmp_path / "commas.csv", lines)
    assert 250_000 < path.stat().st_size < 300_000
    got = refuse_measured(path)
    assert got["message"] is not None and "line 6 has 100," in got["message"]
    assert "\n" not in got["message"] and len(got["message"]) < 300
    assert got["cpu_seconds"] < MAX_SECONDS and got["peak_mb"] < MAX_PEAK_MB, got


def test_a_50_million_character_cell_in_a_1_mb_workbook_is_refused_fast(tmp_path, ohss_file):
    data = ohss_file.read_bytes()
    strings = workbook_part(data, "xl/sharedStrings.xml")
    huge = strings.replace("<t>Afghanistan</t>", "<t>" + "A" * 50_000_000 + "</t>", 1)
    path = tmp_path / "huge-cell.xlsx"
    path.write_bytes(rezip(data, {"xl/sharedStrings.xml": huge.encode()}))
    assert path.stat().st_size < 2_000_000
    got = refuse_measured(path)
    assert got["message"] is not None and f"more than {MAX_CELL_CHARS:,} char" in got["message"]
    assert len(got["message"]) < 300
    assert got["cpu_seconds"] < MAX_SECONDS and got["peak_mb"] < MAX_PEAK_MB, got


def test_unknown_layout_echoes_a_short_excerpt_of_a_10_mb_first_line(tmp_path):
    path = tmp_path / "one-line.csv"
    path.write_bytes(b"a" * 10_000_000)
    with pytest.raises(DataError, match=r"one-line.csv: line 1 has 10,000,000 characters") as err:
        read_release(path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_an_unknown_header_is_one_line(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("Year,Month,Count\n2024,JAN,5\n")
    with pytest.raises(DataError, match=r"unknown layout \(header 'Year,Month,Count'\)") as err:
        read_release(path)
    assert "\n" not in str(err.value)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(DataError, match=rf"big.csv: {MAX_FILE_BYTES + 1:,} bytes; files of at"):
        read_release(path)


def test_a_zip_that_is_not_an_xlsx_is_an_unknown_layout(tmp_path):
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    with pytest.raises(DataError, match=r"archive.xlsx: unknown layout \(a zip archive that"):
        read_release(path)


def test_corrupt_workbook_xml_is_refused_naming_the_part(tmp_path, ohss_file):
    data = ohss_file.read_bytes()
    sheet = workbook_part(data, "xl/worksheets/sheet6.xml").replace('<row r="2"', '<row r="2"<', 1)
    path = tmp_path / "corrupt.xlsx"
    path.write_bytes(rezip(data, {"xl/worksheets/sheet6.xml": sheet.encode()}))
    with pytest.raises(DataError, match=r"part 'xl/worksheets/sheet6.xml' is not well-formed XML"):
        read_release(path)


def test_a_zip_bomb_is_refused_while_unpacking(tmp_path, ohss_file):
    data = ohss_file.read_bytes()
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(rezip(data, {"xl/media/padding.bin": b"\0" * (129 * 1024 * 1024)}))
    with pytest.raises(DataError, match=r"bomb.xlsx: unpacks to more than"):
        read_release(path)


def test_a_cell_far_beyond_the_sheet_is_refused(tmp_path, ohss_file):
    data = ohss_file.read_bytes()
    part = "xl/worksheets/sheet6.xml"
    sheet = workbook_part(data, part).replace('<c r="D907"', '<c r="XFD907"', 1)
    path = tmp_path / "wide.xlsx"
    path.write_bytes(rezip(data, {part: sheet.encode()}))
    with pytest.raises(DataError, match=r"cell 'XFD907' makes the sheet 907 rows by 16,384 col"):
        read_release(path)


def test_a_sheet_padded_to_a_huge_grid_is_refused_fast(tmp_path, ohss_file):
    data = ohss_file.read_bytes()
    part = "xl/worksheets/sheet6.xml"
    far = '<row r="999999"><c r="BL999999"><v>1</v></c></row></sheetData>'
    sheet = workbook_part(data, part).replace("</sheetData>", far, 1)
    path = tmp_path / "grid.xlsx"
    path.write_bytes(rezip(data, {part: sheet.encode()}))
    got = refuse_measured(path)
    assert got["message"] is not None and "999,999 rows by 4 columns" in got["message"], got
    assert got["cpu_seconds"] < MAX_SECONDS and got["peak_mb"] < MAX_PEAK_MB, got
