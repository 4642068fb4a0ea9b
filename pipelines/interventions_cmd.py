"""``encounters interventions``: the intervention catalog, or the events in scope for a series."""

from __future__ import annotations

import json

import click

from forecasting.data import ObservationStore
from forecasting.data.store import close_keys
from forecasting.errors import DataError, ScenarioError, UnknownSeriesError
from forecasting.frame import UNIQUE_ID
from forecasting.home import encounters_home
from forecasting.interventions import Catalog, Event, load_catalog

TABLE_COLUMNS = ("start", "end", "id", "group", "shape", "scope")


def _record(event: Event) -> dict:
    return {
        "id": event.id,
        "name": event.name,
        "start": event.start.isoformat(),
        "end": event.end.isoformat() if event.end else None,
        "actor": event.actor,
        "kind": event.kind,
        "scope": event.scope.model_dump(),
        "shape": event.shape.model_dump(),
        "group": event.group,
        "expected_sign": event.expected_sign,
        "source": event.source,
        "note": event.note,
    }


def _table(events: list[Event]) -> str:
    rows = [
        (
            str(e.start),
            str(e.end or "-"),
            e.id,
            e.group or "-",
            e.shape.label,
            e.scope.label,
        )
        for e in events
    ]
    header = tuple(c.upper() for c in TABLE_COLUMNS)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _summary(catalog: Catalog, events: list[Event], series_key: str | None) -> str:
    regressors = len({e.regressor for e in events})
    where = f" in scope for {series_key}" if series_key else ""
    return (
        f"{len(events)} events{where}, {regressors} regressor columns "
        f"(catalog: {'; '.join(catalog.sources)})"
    )


@click.command("interventions")
@click.option("--series", "series_key", metavar="KEY", help="Only the events in scope for KEY.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of events.")
def interventions(series_key: str | None, as_json: bool) -> None:
    """List the intervention catalog, or the events in scope for one series.

    The default catalog plus $ENCOUNTERS_HOME/interventions.yaml and the file named by
    $ENCOUNTERS_CATALOG, when present. Events are listed by start date.
    """
    try:
        known = ObservationStore(encounters_home()).panel()[UNIQUE_ID].unique().tolist()
        catalog = load_catalog(known_series=known)
        if series_key is not None and series_key not in known:
            raise UnknownSeriesError(series_key, close_keys(series_key, known))
        events = list(catalog.events) if series_key is None else catalog.in_scope(series_key)
    except (DataError, ScenarioError, UnknownSeriesError) as exc:
        raise click.ClickException(str(exc)) from exc
    events.sort(key=lambda e: (e.start, e.id))
    if as_json:
        click.echo(json.dumps([_record(e) for e in events], indent=2))
        return
    click.echo(_table(events))
    click.echo(_summary(catalog, events, series_key))
