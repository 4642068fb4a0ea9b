"""Small CBP files in the aor and state layouts, built from their published headers."""

from __future__ import annotations

from pathlib import Path

from forecasting.data.readers import AOR_HEADER, STATE_HEADER

AOR_ROWS = [
    # FY, grouping, month, component, region, AOR, abbv, demographic, citizenship, title,
    # type, count
    (
        "2024",
        "FYTD",
        "OCT",
        "U.S. Border Patrol",
        "Southwest Land Border",
        "Rio Grande Valley Sector",
        "RGV",
        "Single Adults",
        "MEXICO",
        "Title 8",
        "Apprehensions",
        "100",
    ),
    (
        "2024",
        "FYTD",
        "OCT",
        "U.S. Border Patrol",
        "Southwest Land Border",
        "Tucson Sector",
        "TCA",
        "FMUA",
        "CHINA, PEOPLES REPUBLIC OF",
        "Title 8",
        "Apprehensions",
        "40",
    ),
    (
        "2024",
        "FYTD",
        "OCT",
        "Office of Field Operations",
        "Southwest Land Border",
        "El Paso Field Office",
        "ELP",
        "UAC",
        "MEXICO",
        "Title 8",
        "Inadmissibles",
        "7",
    ),
    (
        "2024",
        "FYTD",
        "OCT",
        "Office of Field Operations",
        "Other",
        "Miami Field Office",
        "MIA",
        "Single Adults",
        "CUBA",
        "Title 8",
        "Inadmissibles",
        "1000",
    ),
    (
        "2024",
        "FYTD",
        "NOV",
        "U.S. Border Patrol",
        "Southwest Land Border",
        "Rio Grande Valley Sector",
        "RGV",
        "Single Adults",
        "MEXICO",
        "Title 8",
        "Apprehensions",
        "90",
    ),
    (
        "2024",
        "FYTD",
        "NOV",
        "Office of Field Operations",
        "Southwest Land Border",
        "El Paso Field Office",
        "ELP",
        "UAC",
        "OTHER",
        "Title 8",
        "Inadmissibles",
        "3",
    ),
    (
        "2024",
        "FYTD",
        "NOV",
        "U.S. Border Patrol",
        "Northern Land Border",
        "Blaine Sector",
        "BLW",
        "Single Adults",
        "CANADA",
        "Title 8",
        "Apprehensions",
        "12",
    ),
    (
        "2024",
        "FYTD",
        "OCT",
        "U.S. Border Patrol",
        "Northern Land Border",
        "Blaine Sector",
        "BLW",
        "Single Adults",
        "CANADA",
        "Title 8",
        "Apprehensions",
        "11",
    ),
]
STATE_ROWS = [
    (
        "2025 (FYTD)",
        "FYTD",
        "DEC",
        "Southwest Land Border",
        "Texas",
        "Single Adults",
        "MEXICO",
        "Title 8",
        "500",
    ),
    (
        "2025 (FYTD)",
        "FYTD",
        "DEC",
        "Southwest Land Border",
        "Arizona",
        "FMUA",
        "GUATEMALA",
        "Title 8",
        "20",
    ),
    (
        "2025 (FYTD)",
        "FYTD",
        "JAN",
        "Southwest Land Border",
        "Texas",
        "Single Adults",
        "MEXICO",
        "Title 8",
        "450",
    ),
]


def write_csv(path: Path, header: str, rows: list[tuple[str, ...]]) -> Path:
    lines = [header] + [",".join(f'"{v}"' if "," in v else v for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def aor_file(folder: Path, rows=AOR_ROWS, name="nationwide-encounters-fy24-aor.csv") -> Path:
    return write_csv(folder / name, AOR_HEADER, rows)


def state_file(folder: Path, rows=STATE_ROWS, name="nationwide-encounters-fy25-state.csv") -> Path:
    return write_csv(folder / name, STATE_HEADER, rows)


def revised_copy(source: Path, folder: Path) -> Path:
    """The file re-published with one figure revised (the last digit of its last row's count):
    a second release of the same size that takes as long to read."""
    lines = source.read_bytes().rstrip(b"\n").split(b"\n")
    head, _, count = lines[-1].rpartition(b",")
    digits = count.strip()
    bumped = digits[:-1] + str((int(digits[-1:]) + 1) % 10).encode()
    lines[-1] = head + b"," + count.replace(digits, bumped)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / source.name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
