"""Fixtures shared by every test: the official files, a private data home, a fresh PostgreSQL
database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on 127.0.0.1:5432 (trust auth), dropped afterwards."""
    try:
        import psycopg2
    except ImportError:
        pytest.skip("psycopg2 is not installed: install the project's `server` extra")
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0]
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({reason})")
    admin.autocommit = True
    name = f"encounters_test_{uuid.uuid4().hex[:12]}"
    cur = admin.cursor()
    try:
        cur.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://{admin.info.user}@127.0.0.1:5432/{name}"
    finally:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
