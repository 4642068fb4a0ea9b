from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forecasting.data.readers import AOR_HEADER, SBO_HEADER, read_release
from forecasting.errors import DataError
from forecasting.interventions.scope import SECTORS
from tests.forecasting.data.cbp_files import AOR_ROWS, aor_file, state_file, write_csv
from tests.forecasting.data.hostile import sbo_lines, with_cell, with_ohss_cell, write_lines


def _series(release, key: str) -> pd.Series:
    rows = release.panel[release.panel["unique_id"] == key]
    return rows.set_index("ds")["y"]


@pytest.fixture(scope="module")
def ohss(ohss_file):
    return read_release(ohss_file)


def test_ohss_southwest_total_matches_workbook(ohss):
    total = _series(ohss, "southwest/usbp")
    assert len(total) == 302
    assert total.index.min() == pd.Timestamp("1999-10-01")
    assert total.index.max() == pd.Timestamp("2024-11-01")
    assert total[pd.Timestamp("2023-12-01")] == 249_740
    # Fiscal 2000 "01 October" is October 1999 and "04 January" is January 2000.
    assert total[pd.Timestamp("1999-10-01")] == 87_820
    assert total[pd.Timestamp("2000-01-01")] == 175_380
    assert ohss.vintage == pd.Timestamp("2024-11-01")
    assert ohss.layout == "ohss-khsm-usbp"


def test_ohss_sectors_sum_to_region_within_rounding(ohss):
    total = _series(ohss, "southwest/usbp")
    sectors = sum(_series(ohss, f"southwest/usbp/sector={s}") for s in SECTORS)
    # Ten figures, each rounded to the nearest 10: the sum can be off by up to 10 x 5.
    assert (sectors - total).abs().max() <= 50
    assert sectors.index.equals(total.index)


def test_ohss_breakdown_gaps_are_filled_and_recorded(ohss):
    venezuela = ohss.panel[ohss.panel["unique_id"] == "southwest/usbp/citizenship=venezuela"]
    assert venezuela["filled"].sum() == 158
    assert (venezuela.loc[venezuela["filled"], "y"] == 0).all()
    assert venezuela["ds"].diff().dropna().dt.days.between(28, 31).all()


def test_ohss_keys_cover_regions_families_and_normalised_citizenships(ohss):
    keys = set(ohss.panel["unique_id"])
    assert {
        "northern/usbp",
        "coastal/usbp",
        "southwest/usbp/family=single-adults",
        "southwest/usbp/family=family-units",
        "southwest/usbp/family=unaccompanied-children",
        "southwest/usbp/citizenship=china",
    } <= keys
    assert not any(k.startswith("northern/usbp/") for k in keys)


def test_cbp_sbo_exact_counts_and_components(sbo_file):
    sbo = read_release(sbo_file)
    assert _series(sbo, "southwest/usbp")[pd.Timestamp("2024-01-01")] == 124_215
    cbp = _series(sbo, "southwest/cbp")
    assert cbp.index.max() == pd.Timestamp("2025-08-01")
    assert (cbp == _series(sbo, "southwest/usbp") + _series(sbo, "southwest/ofo")).all()
    # The residual "Other" grouping stays off the USBP citizenship keys that OHSS lists in full.
    keys = set(sbo.panel["unique_id"])
    assert "southwest/cbp/citizenship=other" in keys
    assert "southwest/usbp/citizenship=other" not in keys


def test_aor_layout_feeds_components_sectors_and_cbp_keys(tmp_path):
    release = read_release(aor_file(tmp_path))
    assert release.layout == "cbp-aor"
    oct_ = pd.Timestamp("2023-10-01")
    assert _series(release, "southwest/usbp")[oct_] == 140
    assert _series(release, "southwest/ofo")[oct_] == 7
    assert _series(release, "southwest/cbp")[oct_] == 147
    assert _series(release, "northern/usbp").to_list() == [11, 12]
    assert _series(release, "southwest/usbp/sector=rio-grande-valley").to_list() == [100, 90]
    assert _series(release, "southwest/usbp/citizenship=china")[oct_] == 40
    assert _series(release, "southwest/cbp/demographic=unaccompanied-children").to_list() == [7, 3]
    assert _series(release, "southwest/usbp/family=family-units")[oct_] == 40
    # Airports and seaports ("Other" region) are no border series.
    assert not any("cuba" in k for k in release.panel["unique_id"])
    # Tucson had no figure in November: a breakdown gap, booked as 0 and flagged.
    tucson = release.panel[release.panel["unique_id"] == "southwest/usbp/sector=tucson"]
    assert len(tucson) == 1


def test_state_layout_feeds_cbp_keys_only(tmp_path):
    release = read_release(state_file(tmp_path))
    assert release.layout == "cbp-state"
    assert _series(release, "southwest/cbp").to_list() == [520, 450]
    assert _series(release, "southwest/cbp").index[0] == pd.Timestamp("2024-12-01")
    guatemala = release.panel[release.panel["unique_id"] == "southwest/cbp/citizenship=guatemala"]
    assert len(guatemala) == 1
    assert not any(k.startswith("southwest/usbp") for k in release.panel["unique_id"])


def _tampered(tmp_path, row: int, column: int, value: str):
    rows = [list(r) for r in AOR_ROWS]
    rows[row][column] = value
    return aor_file(tmp_path, [tuple(r) for r in rows])


def test_text_in_a_count_names_file_row_and_column(tmp_path):
    path = _tampered(tmp_path, 2, 11, "seven")
    with pytest.raises(
        DataError,
        match=r"fy24-aor.csv: row 4, column 'Encounter Count'.*'seven'"
        r".*whole numbers from 0 to 10,000,000",
    ):
        read_release(path)


def test_negative_count_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"row 2, column 'Encounter Count'.*'-5'"):
        read_release(_tampered(tmp_path, 0, 11, "-5"))


def test_unparseable_month_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"row 3, column 'Month \(abbv\)'.*'OCTOBRE'.*'OCT'..'SEP'"):
        read_release(_tampered(tmp_path, 1, 2, "OCTOBRE"))


def test_unparseable_fiscal_year_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"row 2, column 'Fiscal Year'.*'FY-X'"):
        read_release(_tampered(tmp_path, 0, 0, "FY-X"))


def test_duplicate_rows_within_a_release_are_refused(tmp_path):
    path = aor_file(tmp_path, AOR_ROWS + [AOR_ROWS[0]])
    with pytest.raises(DataError, match=r"rows 2 and 10 repeat"):
        read_release(path)


def test_missing_month_in_a_total_is_refused(tmp_path):
    rows = [r for r in AOR_ROWS if r[2] != "NOV"] + [("2024", "FYTD", "DEC", *AOR_ROWS[0][3:])]
    with pytest.raises(DataError, match=r"total 'southwest/cbp' has no figure for 2023-11"):
        read_release(aor_file(tmp_path, rows))


def test_unknown_header_lists_the_known_layouts(tmp_path):
    path = tmp_path / "whatever.csv"
    path.write_text("Year,Month,Count\n2024,JAN,5\n")
    with pytest.raises(
        DataError, match=r"(?s)unknown layout.*known layouts:.*cbp-sbo.*cbp-aor.*cbp-state"
    ) as err:
        read_release(path)
    assert SBO_HEADER in str(err.value)


def test_missing_column_is_an_unknown_layout(tmp_path):
    header = AOR_HEADER.replace(",AOR (Abbv)", "")
    rows = [r[:6] + r[7:] for r in AOR_ROWS]
    with pytest.raises(DataError, match="unknown layout"):
        read_release(write_csv(tmp_path / "short.csv", header, rows))


def test_unknown_component_names_the_accepted_ones(tmp_path):
    with pytest.raises(DataError, match=r"row 2, column 'Component'.*accepted"):
        read_release(_tampered(tmp_path, 0, 3, "Air and Marine"))


# -- issue 18: one-line changes to the official files that must be refused ------------------------
# Line 3 of the sbo file: 2022, FYTD, OCT, Office of Field Operations, Accompanied Minors,
# Guatemala, Title 42, Expulsions, 3.
FY, GROUPING, COUNT = 0, 1, 8


def _sbo_with(tmp_path, sbo_file, column: int, value: str) -> Path:
    lines = sbo_lines(sbo_file)
    lines[2] = with_cell(lines[2], column, value)
    return write_lines(tmp_path / "sbo.csv", lines)


COUNT_REFUSED = (
    r"column 'Encounter Count': count .* is not accepted; counts must be whole numbers from 0 to "
    r"10,000,000 written as plain integers$"
)
FY_REFUSED = r"column 'Fiscal Year': fiscal year .* is not accepted; expected a year from 2000 to"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        *[
            (COUNT, v, COUNT_REFUSED)
            for v in ["9223372036854775807", "1e30", "1.000", "1e3", "inf", "-5", "10000001", "١٢"]
        ],
        *[
            (FY, v, FY_REFUSED)
            for v in ["2200", "2263", "9999", "0000", "0001", "2022 garbage", "2000.5"]
        ],
    ],
)
def test_a_count_or_fiscal_year_out_of_bounds_is_refused(
    tmp_path, sbo_file, column, value, message
):
    with pytest.raises(DataError, match=rf"^sbo.csv: row 3, {message}"):
        read_release(_sbo_with(tmp_path, sbo_file, column, value))


def test_a_month_after_the_current_one_is_refused(tmp_path, sbo_file):
    today = pd.Timestamp.today()
    this_fy = today.year + (today.month >= 10)
    # September of the current fiscal year lies ahead except in September itself.
    month = "SEP" if today.month != 9 else "AUG"
    lines = sbo_lines(sbo_file)
    lines[2] = with_cell(with_cell(lines[2], FY, str(this_fy)), 2, month)
    with pytest.raises(DataError, match=r"row 3, column 'Month \(abbv\)'.* is after this month"):
        read_release(write_lines(tmp_path / "sbo.csv", lines))


@pytest.mark.parametrize(
    "repeat",
    [
        str.upper,
        lambda line: with_cell(line, GROUPING, "Remaining"),
        lambda line: line.replace(",", " , "),
        lambda line: with_cell(line, FY, "2022 (FYTD)"),
    ],
    ids=["upper-case", "other-grouping", "spaced", "fytd-label"],
)
def test_a_row_repeated_with_other_spelling_or_grouping_is_refused(tmp_path, sbo_file, repeat):
    lines = sbo_lines(sbo_file)
    lines.append(repeat(lines[2]))
    with pytest.raises(DataError, match=rf"sbo.csv: rows 3 and {len(lines)} repeat the same month"):
        read_release(write_lines(tmp_path / "sbo.csv", lines))


def test_a_header_only_csv_is_refused(tmp_path, sbo_file):
    path = write_lines(tmp_path / "sbo.csv", sbo_lines(sbo_file)[:1])
    with pytest.raises(DataError, match=r"^sbo.csv: a header and no data rows; nothing to ingest$"):
        read_release(path)


def test_a_control_character_in_a_label_is_refused(tmp_path, sbo_file):
    with pytest.raises(DataError, match=r"row 3, column 'Citizenship Grouping'.*printable"):
        read_release(_sbo_with(tmp_path, sbo_file, 5, "Guate\x07mala"))


def test_a_row_with_a_column_too_many_is_refused(tmp_path, sbo_file):
    lines = sbo_lines(sbo_file)
    lines[2] = lines[2].rstrip("\r\n") + ",\r\n"
    with pytest.raises(DataError, match=r"sbo.csv: row 3 has 10 columns; expected 9"):
        read_release(write_lines(tmp_path / "sbo.csv", lines))


def test_an_ohss_breakdown_row_in_fiscal_year_2200_is_refused(tmp_path, ohss_file):
    data = with_ohss_cell(
        ohss_file.read_bytes(), "Monthly Rgn and Sector", "A2", '<c r="A2" s="3"><v>2200</v></c>'
    )
    path = tmp_path / "ohss.xlsx"
    path.write_bytes(data)
    with pytest.raises(
        DataError, match=r"sheet 'Monthly Rgn and Sector', row 2, column 'Fiscal Year'.*'2200'"
    ):
        read_release(path)


@pytest.mark.parametrize(
    ("ref", "xml", "message"),
    [
        ("C2", "", r"column 'Region': 'nan' is not accepted; expected a non-empty label"),
        ("D2", '<c r="D2"><v>1E+30</v></c>', r"column 'Quantity': count '1000000000000000019884"),
        ("D2", '<c r="D2"><v>740.5</v></c>', r"column 'Quantity': count '740.5'"),
        ("D2", '<c r="D2"><v>9223372036854775807</v></c>', r"column 'Quantity': count '92233"),
    ],
    ids=["empty-region", "1e30", "fraction", "int64-max"],
)
def test_bad_ohss_cells_are_refused_naming_sheet_row_and_column(
    tmp_path, ohss_file, ref, xml, message
):
    path = tmp_path / "ohss.xlsx"
    path.write_bytes(with_ohss_cell(ohss_file.read_bytes(), "Monthly Region", ref, xml))
    with pytest.raises(DataError, match=rf"ohss.xlsx: sheet 'Monthly Region', row 2, {message}"):
        read_release(path)
