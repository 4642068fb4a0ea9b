"""``/v1/interventions``: the event catalog the served model was trained with."""

from __future__ import annotations

from fastapi import APIRouter, Query

from forecasting.data.store import close_keys
from forecasting.errors import UnknownSeriesError
from forecasting.interventions import Event
from service.deps import RegistryDep, ServedDep
from service.errors import NotAnswerable
from service.schemas import SERIES_ERRORS, InterventionList

router = APIRouter(tags=["interventions"])


def event_record(event: Event) -> dict:
    return {**event.model_dump(mode="json"), "regressor": event.regressor}


@router.get("/interventions", response_model=InterventionList, responses=SERIES_ERRORS)
def interventions(
    served: ServedDep,
    registry: RegistryDep,
    series: str | None = Query(
        default=None, max_length=200, description="Only the events in scope for this series."
    ),
) -> dict:
    """The intervention catalog, by start date; with `series`, the events in scope for it."""
    catalog = served.bundle.catalog
    if series is None:
        events = list(catalog.events)
    else:
        known = set(served.bundle.keys) | set(registry.history.keys())
        if series not in known:
            raise UnknownSeriesError(series, close_keys(series, sorted(known)))
        try:
            events = catalog.in_scope(series)
        except ValueError as exc:
            raise NotAnswerable(("query", "series"), str(exc)) from exc
    events.sort(key=lambda e: (e.start, e.id))
    return {
        "series": series,
        "model_version": served.version,
        "count": len(events),
        "events": [event_record(e) for e in events],
    }
