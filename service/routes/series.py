"""``/v1/series``: the served series, and one series' history with provenance."""

from __future__ import annotations

from fastapi import APIRouter, Path

from forecasting.data.indicators import is_indicator, publication_lag
from forecasting.data.store import close_keys
from forecasting.errors import UnknownSeriesError
from service.deps import RegistryDep, ServedDep
from service.schemas import SERIES_ERRORS, SeriesHistory, SeriesList

router = APIRouter(tags=["series"])


@router.get("/series", response_model=SeriesList, responses=SERIES_ERRORS)
def list_series(served: ServedDep, registry: RegistryDep) -> dict:
    """The series the served model forecasts, with its model, the month its data end, its
    hierarchy's as-of month, and what else it can answer; and the indicators held beside."""
    keys = sorted([*served.bundle.keys, *served.bundle.derived_keys])
    return {
        "model_version": served.version,
        "series": [served.series_summary(key) for key in keys],
        "indicators": [
            _indicator_summary(key, registry.history.rows(key) or [])
            for key in registry.history.keys()
            if is_indicator(key)
        ],
    }


def _indicator_summary(key: str, rows: list[dict]) -> dict:
    return {
        "series": key,
        "history_start": rows[0]["ds"][:7],
        "history_end": rows[-1]["ds"][:7],
        "months": len(rows),
        "latest": rows[-1]["y"],
        "sources": sorted({r["source"] for r in rows}),
        "publication_lag_months": publication_lag(key),
    }


@router.get("/series/{key:path}", response_model=SeriesHistory, responses=SERIES_ERRORS)
def series_history(
    served: ServedDep,
    registry: RegistryDep,
    key: str = Path(
        description="Series key; its slashes and '=' stay as they are.",
        examples=["southwest/usbp"],
    ),
) -> dict:
    """One series month by month: `ds`, `y`, and the release (`source`, `vintage`) behind it."""
    rows = registry.history.rows(key)
    if rows is None:
        known = set(registry.history.keys()) | set(served.bundle.keys)
        raise UnknownSeriesError(key, close_keys(key, sorted(known)))
    served_key = key in served.capability
    return {
        "series": key,
        "served": served_key,
        "model_version": served.version if served_key else None,
        "rows": rows,
    }
