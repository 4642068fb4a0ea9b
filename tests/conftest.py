"""Fixtures shared by every test: the official files, a private data home."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OHSS = SHARED / "data" / "ohss-khsm-encounters-usbp-fy25m11.xlsx"
CBP_SBO = SHARED / "data" / "cbp-sbo-encounters-fy22-fy25-aug.csv"
INDICATORS = SHARED / "data" / "indicators"
INDICATOR_FILES = (
    "irreg_mexico_nat.rda",
    "irreg_mexico_exp.rda",
    "irreg_darien_nat.rda",
    "irreg_honduras.rda",
    "irreg_honduras_nat.rda",
    "irreg_guatemala.rda",
)


def _official(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(
            f"official file {path.name} not found in {path.parent}: these tests need "
            "../shared/data beside the project"
        )
    return path


@pytest.fixture(scope="session")
def ohss_file() -> Path:
    """DHS OHSS KHSM workbook, Oct 1999 – Nov 2024."""
    return _official(OHSS)


@pytest.fixture(scope="session")
def sbo_file() -> Path:
    """CBP southwest encounters by component, Oct 2021 – Aug 2025."""
    return _official(CBP_SBO)


@pytest.fixture(scope="session")
def indicator_files() -> list[Path]:
    """IOM gdidata's R data files: Mexico, Panama (Darién), Honduras, Guatemala."""
    return [_official(INDICATORS / name) for name in INDICATOR_FILES]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private, empty ENCOUNTERS_HOME."""
    path = tmp_path / "home"
    monkeypatch.setenv("ENCOUNTERS_HOME", str(path))
    return path
