"""Every interventions test reads the default catalog only, unless it writes a user file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from forecasting.interventions import ENV_CATALOG, Catalog, load_catalog


@pytest.fixture(autouse=True)
def _no_user_catalog(home, monkeypatch) -> None:
    monkeypatch.delenv(ENV_CATALOG, raising=False)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The default catalog (loaded once; user files are isolated per test)."""
    return load_catalog()


def event(**fields) -> dict:
    """A valid catalog event as a mapping, with ``fields`` replacing the defaults."""
    return {
        "id": "test_event_2030",
        "name": "A test event",
        "start": "2030-01-15",
        "actor": "MX",
        "kind": "enforcement_surge",
        "scope": "all",
        "shape": "step",
        "expected_sign": -1,
        "source": "https://example.org/test",
        **fields,
    }


@pytest.fixture
def write_catalog(tmp_path) -> Callable[..., Path]:
    """Write a user catalog file: ``write_catalog(events=[...], groups=[...], name=...)``."""

    def write(events=(), groups=(), name="user.yaml") -> Path:
        path = tmp_path / name
        data = {"events": list(events)} | ({"groups": list(groups)} if groups else {})
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
