"""The intervention catalog: dated events from YAML files, grouped into regressors.

The default catalog ships with the package (``default_catalog.yaml``); users add events with
files of their own, read in this order: ``$ENCOUNTERS_HOME/interventions.yaml`` if it exists,
the file named by ``$ENCOUNTERS_CATALOG``, then files passed to :func:`load_catalog`. User files
add events and groups; they cannot redefine an id (see ``README.md`` in this package).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError, model_validator

from forecasting.data.indicators import is_indicator
from forecasting.errors import ScenarioError
from forecasting.home import encounters_home
from forecasting.interventions._base import StrictModel, describe
from forecasting.interventions.scope import Scope, SeriesKey, parse_series_key
from forecasting.interventions.shapes import Shape, monthly_values

ENV_CATALOG = "ENCOUNTERS_CATALOG"
#: The user catalog read from the data home when it exists.
HOME_CATALOG = "interventions.yaml"
DEFAULT_CATALOG = "default_catalog.yaml"
ID_PATTERN = r"^[a-z][a-z0-9_]*$"
Actor = Literal["US", "MX", "bilateral", "other"]
Kind = Literal[
    "agreement",
    "enforcement_surge",
    "legal_regime",
    "pandemic",
    "parole_pathway",
    "visa_requirement",
    "other",
]
FILE_KEYS = ("groups", "events")


class Event(StrictModel):
    """One dated intervention.

    Attributes:
        id: lowercase identifier (``[a-z][a-z0-9_]*``), unique across all catalog files.
        name: one-line description.
        start: first day in force.
        end: last day in force (inclusive), or None while still in force.
        actor: ``US``, ``MX``, ``bilateral`` or ``other``.
        kind: one of :data:`Kind` (``agreement``, ``enforcement_surge``, …, ``other``).
        scope: the series it acts on.
        shape: how it acts over time (``step``, ``pulse``, ``ramp``, ``decay``).
        expected_sign: -1 (fewer encounters), 0 (ambiguous) or 1 (more).
        source: where the date and facts come from.
        note: context, caveats, uncertainty of the date.
        group: the regressor group it is modelled in, if any.
    """

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    start: dt.date
    end: dt.date | None = None
    actor: Actor
    kind: Kind
    scope: Scope
    shape: Shape
    expected_sign: Literal[-1, 0, 1]
    source: str = Field(min_length=1)
    note: str = ""
    group: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _end_after_start(self) -> Event:
        if self.end is not None and self.end < self.start:
            raise ValueError(
                f"end {self.end} is before start {self.start}; give an end on or after the "
                "start, or no end while the event is in force"
            )
        return self

    @property
    def regressor(self) -> str:
        """The design-matrix column that carries this event: its group's id, else its own."""
        return self.group or self.id

    def values(self, months: pd.DatetimeIndex) -> np.ndarray:
        """This event's value in each month (month starts); see ``shapes``."""
        return monthly_values(self.shape, self.start, self.end, months)


class Group(StrictModel):
    """Events that no model can tell apart, modelled as one regressor.

    Attributes:
        id: the regressor's column name; must not be an event id.
        name: one-line description.
        reason: why the members are grouped.
    """

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    reason: str = Field(min_length=1)


def _close(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


class Catalog:
    """Events and the groups that merge some of them into one regressor.

    Args:
        events: the events, in the order their files list them.
        groups: group declarations; every event's ``group`` must name one, and every group must
            have at least one member.
        sources: the files the catalog was read from, for messages.

    Raises:
        ScenarioError: repeated ids, an event naming an undeclared group, an empty group.
    """

    def __init__(
        self, events: Iterable[Event], groups: Iterable[Group] = (), sources: Iterable[str] = ()
    ):
        self.events = tuple(events)
        self.groups = tuple(groups)
        self.sources = tuple(sources)
        self._events: dict[str, Event] = {}
        self._groups: dict[str, Group] = {}
        for event in self.events:
            if event.id in self._events:
                raise ScenarioError(f"event id '{event.id}' appears twice; ids must be unique")
            self._events[event.id] = event
        for group in self.groups:
            if group.id in self._groups or group.id in self._events:
                raise ScenarioError(
                    f"group id '{group.id}' repeats a group or event id; ids must be unique"
                )
            self._groups[group.id] = group
        for event in self.events:
            if event.group is not None and event.group not in self._groups:
                raise ScenarioError(
                    f"event '{event.id}' names group '{event.group}', which no catalog file "
                    f"declares{_close(event.group, self._groups)}; declared groups: "
                    f"{', '.join(self._groups) or 'none'}"
                )
        used = {event.group for event in self.events}
        empty = [g for g in self._groups if g not in used]
        if empty:
            raise ScenarioError(
                f"group(s) {', '.join(empty)} have no member events; name them in an event's "
                "'group' field or remove the declaration"
            )

    def __len__(self) -> int:
        return len(self.events)

    def fingerprint(self) -> str:
        """sha256 of every event and group as validated, in order: the catalog a study ran on,
        whichever files it came from (comments and layout do not count)."""
        digest = hashlib.sha256()
        for item in (*self.events, *self.groups):
            digest.update(item.model_dump_json().encode() + b"\n")
        return digest.hexdigest()

    def __contains__(self, name: object) -> bool:
        """True for an event id or a group id."""
        return name in self._events or name in self._groups

    def get(self, event_id: str) -> Event:
        """The event with this id.

        Raises:
            ScenarioError: unknown id, with close ids as suggestions.
        """
        try:
            return self._events[event_id]
        except KeyError:
            raise ScenarioError(
                f"unknown event id '{event_id}'{_close(event_id, self._events)}; the catalog "
                f"has {len(self._events)} events (list them with `encounters interventions`)"
            ) from None

    def resolve(self, name: str) -> str:
        """The regressor (column) id an event or group id acts through.

        Raises:
            ScenarioError: ``name`` is neither an event nor a group id; close ids are suggested.
        """
        if name in self._groups:
            return name
        if name in self._events:
            return self._events[name].regressor
        raise ScenarioError(
            f"unknown event or group id '{name}'{_close(name, [*self._events, *self._groups])}; "
            f"the catalog has {len(self._events)} events and {len(self._groups)} groups "
            "(list them with `encounters interventions`)"
        )

    def members(self, name: str) -> list[Event]:
        """The events an id names: the event itself, or every member of a group.

        Raises:
            ScenarioError: ``name`` is neither an event nor a group id.
        """
        self.resolve(name)
        return [e for e in self.events if name in (e.id, e.group)]

    def in_scope(self, series_key: str | SeriesKey) -> list[Event]:
        """The events whose scope includes the series, in catalog order.

        Raises:
            ValueError: a malformed series key.
        """
        key = series_key if isinstance(series_key, SeriesKey) else parse_series_key(series_key)
        return [e for e in self.events if e.scope.matches(key)]

    def regressors(self, series_key: str | SeriesKey) -> dict[str, list[Event]]:
        """Regressor id → its in-scope events, ordered by first start date, then id.

        The columns of the series' design matrix: a grouped event contributes to its group's
        column, an ungrouped one has its own. They depend on the series, never on a date range,
        so a model fitted on history gets the same columns for its forecast months.
        """
        by_regressor: dict[str, list[Event]] = {}
        for event in self.in_scope(series_key):
            by_regressor.setdefault(event.regressor, []).append(event)
        order = sorted(by_regressor, key=lambda r: (min(e.start for e in by_regressor[r]), r))
        return {r: by_regressor[r] for r in order}

    def unmatched(
        self, known_series: Iterable[str], events: Iterable[Event] | None = None
    ) -> list[Event]:
        """The events (default: all) whose scope matches none of ``known_series`` (indicators,
        in no event's scope, are left out of them)."""
        keys = [parse_series_key(k) for k in known_series if not is_indicator(k)]
        return [
            e
            for e in (self.events if events is None else events)
            if not any(e.scope.matches(k) for k in keys)
        ]


def _read_yaml(path: Path | Traversable, label: str) -> Mapping:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{label}: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{label}: must be a mapping with keys {', '.join(FILE_KEYS)}; got a "
            f"{type(data).__name__}"
        )
    unknown = sorted(str(k) for k in set(data) - set(FILE_KEYS))
    if unknown:
        raise ScenarioError(
            f"{label}: unknown top-level key(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(FILE_KEYS)}"
        )
    return data


def _parse_file(path: Path | Traversable, label: str) -> tuple[list[Event], list[Group]]:
    data = _read_yaml(path, label)
    parsed: dict[str, list] = {"groups": [], "events": []}
    for section, model in (("groups", Group), ("events", Event)):
        entries = data.get(section) or []
        if not isinstance(entries, list):
            raise ScenarioError(f"{label}: '{section}' must be a list of mappings")
        for i, entry in enumerate(entries, start=1):
            ident = entry.get("id") if isinstance(entry, dict) else None
            where = f"{label}: {section[:-1]} #{i}" + (f" ('{ident}')" if ident else "")
            try:
                parsed[section].append(model.model_validate(entry))
            except ValidationError as exc:
                raise ScenarioError(f"{where}: {describe(exc)}") from exc
    return parsed["events"], parsed["groups"]


def user_catalog_files(user_files: Iterable[str | Path] = ()) -> list[Path]:
    """The user catalog files :func:`load_catalog` reads, in order, without repeats.

    ``$ENCOUNTERS_HOME/interventions.yaml`` when it exists, the file named by
    ``$ENCOUNTERS_CATALOG``, then ``user_files``.

    Raises:
        ScenarioError: ``$ENCOUNTERS_CATALOG`` or one of ``user_files`` does not exist.
    """
    paths = []
    home_file = encounters_home() / HOME_CATALOG
    if home_file.is_file():
        paths.append(home_file)
    named = [(f"${ENV_CATALOG}", os.environ[ENV_CATALOG])] if os.environ.get(ENV_CATALOG) else []
    named += [("catalog file", str(p)) for p in user_files]
    for what, value in named:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ScenarioError(f"{what} {path} does not exist; give the path of a YAML catalog")
        paths.append(path)
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def load_catalog(
    user_files: Iterable[str | Path] = (), *, known_series: Iterable[str] | None = None
) -> Catalog:
    """Read the default catalog and the user's catalog files.

    Args:
        user_files: extra YAML catalog files, read after the environment's (see
            :func:`user_catalog_files`).
        known_series: the series keys the data holds; when given, every event from a user file
            must be in scope for at least one of them (this catches a misspelt citizenship).

    Returns:
        The catalog: default events first, then each user file's, in file order.

    Raises:
        ScenarioError: a file is missing or malformed, an event does not validate, an id is
            defined twice (within a file or across files), or a user event's scope matches no
            known series.
    """
    default = resources.files(__package__).joinpath(DEFAULT_CATALOG)
    files: list[tuple[str, Path | Traversable]] = [
        (f"the default catalog ({DEFAULT_CATALOG})", default)
    ]
    files += [(str(p), p) for p in user_catalog_files(user_files)]
    events: list[Event] = []
    groups: list[Group] = []
    origin: dict[str, str] = {}
    user_events: list[Event] = []
    for i, (label, path) in enumerate(files):
        file_events, file_groups = _parse_file(path, label)
        for item in [*file_groups, *file_events]:
            if item.id in origin:
                where = (
                    "earlier in this file" if origin[item.id] == label else f"in {origin[item.id]}"
                )
                raise ScenarioError(
                    f"{label}: id '{item.id}' is already defined {where}; user files add "
                    "events and groups, they cannot redefine one: choose another id"
                )
            origin[item.id] = label
        events += file_events
        groups += file_groups
        if i > 0:
            user_events += file_events
    catalog = Catalog(events, groups, sources=[label for label, _ in files])
    if known_series is not None:
        # Indicators (Mexico's, Panama's, … counts) are in no event's scope.
        known = [k for k in known_series if not is_indicator(k)]
        unmatched = catalog.unmatched(known, user_events)
        if unmatched:
            bad = unmatched[0]
            raise ScenarioError(
                f"{origin[bad.id]}: event '{bad.id}' has scope '{bad.scope.label}', which matches "
                f"none of the {len(known)} known series{_scope_hint(bad.scope, known)}"
            )
    return catalog


def _scope_hint(scope: Scope, known: list[str]) -> str:
    citizenships = {
        k.dims["citizenship"]
        for k in (parse_series_key(key) for key in known)
        if "citizenship" in k.dims
    }
    hints = [_close(c, citizenships) for c in scope.citizenships if c not in citizenships]
    return "".join(h for h in hints if h)
