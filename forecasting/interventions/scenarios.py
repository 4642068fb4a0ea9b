"""Scenarios: what-if changes to interventions, as data, applied to a series' design matrix.

A scenario removes events over some months (what if it had not happened), scales an event's
intensity, or adds a hypothetical event whose effect is given in percent or borrowed from a
catalog event's fitted effect. Scenarios name events or groups; an event modelled inside a group
acts on its group's column, and the result's notes say so. The format is described in
``README.md`` in this package.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import yaml
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from forecasting.data.indicators import PUBLICATION_LAGS, is_indicator
from forecasting.errors import DataError, ScenarioError
from forecasting.frame import INDICATOR_PREFIX, indicator_column
from forecasting.interventions._base import StrictModel, describe
from forecasting.interventions.catalog import ID_PATTERN, Catalog
from forecasting.interventions.scope import Scope, SeriesKey, parse_series_key
from forecasting.interventions.shapes import Shape, monthly_values


def _year_month(value: object) -> object:
    """``"2024-03"`` (and YAML's ``2024-03``) reads as the first day of that month."""
    if isinstance(value, str) and len(value) == 7 and value[4] == "-":
        try:
            return dt.date(int(value[:4]), int(value[5:]), 1)
        except ValueError as exc:
            raise ValueError(f"expected a month as YYYY-MM; got '{value}'") from exc
    return value


#: A month: ``YYYY-MM`` or any date in it, held as the month's first day.
Month = Annotated[
    dt.date, BeforeValidator(_year_month), AfterValidator(lambda day: day.replace(day=1))
]
#: A day: ``YYYY-MM-DD``, or ``YYYY-MM`` for the month's first day.
Day = Annotated[dt.date, BeforeValidator(_year_month)]


class _Window(StrictModel):
    start: Month | None = None
    end: Month | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end:%Y-%m} is before start {self.start:%Y-%m}")
        return self

    def mask(self, months: pd.DatetimeIndex) -> np.ndarray:
        """True for the months of ``months`` inside the window."""
        inside = np.ones(len(months), dtype=bool)
        if self.start is not None:
            inside &= months >= pd.Timestamp(self.start)
        if self.end is not None:
            inside &= months <= pd.Timestamp(self.end)
        return inside

    @property
    def window(self) -> str:
        start = f"{self.start:%Y-%m}" if self.start else "the first month"
        end = f"{self.end:%Y-%m}" if self.end else "the last month"
        return f"{start} to {end}"


class Remove(_Window):
    """What if the event had not happened: its regressor is 0 from ``start`` to ``end``.

    Attributes:
        event: an event or group id.
        start, end: months (``YYYY-MM``), both included; default: every month.
    """

    event: str


class Scale(_Window):
    """The event at another intensity: its regressor times ``factor`` from ``start`` to ``end``.

    Attributes:
        event: an event or group id.
        factor: 0 or more; 0 is a removal, 2 doubles the intensity.
        start, end: months (``YYYY-MM``), both included; default: every month.
    """

    event: str
    factor: float = Field(ge=0, allow_inf_nan=False)


class Add(StrictModel):
    """A hypothetical event, with its effect given (``effect_pct``) or borrowed (``like``).

    Attributes:
        id: its column name; must not be a catalog id.
        name: optional description.
        shape: as in the catalog (``step``, ``pulse``, ``{type: ramp, ramp_months: n}``, …).
        start: first day in force (``YYYY-MM-DD``, or ``YYYY-MM`` for the first of the month).
        end: last day in force, or None.
        scope: the series it acts on (default ``all``).
        effect_pct: its effect on the level while fully in force, in percent (-30: 30 % fewer).
        like: an event or group id whose fitted effect it borrows.
    """

    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    shape: Shape
    start: Day
    end: Day | None = None
    scope: Scope = Scope()
    effect_pct: float | None = Field(default=None, gt=-100, allow_inf_nan=False)
    like: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Add:
        if (self.effect_pct is None) == (self.like is None):
            raise ValueError(
                "give exactly one of effect_pct (the effect in percent, e.g. -30) or like "
                "(the id of an event or group whose fitted effect to borrow)"
            )
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def values(self, months: pd.DatetimeIndex) -> np.ndarray:
        """This event's value in each month (month starts)."""
        return monthly_values(self.shape, self.start, self.end, months)


class MoveIndicator(_Window):
    """A measured indicator at another level from ``start`` to ``end``: held at one month's
    level, or scaled by a factor.

    The indicator acts through its fitted regressor (``log1p`` of its count), so the model must
    have been fitted with it.

    Attributes:
        key: the indicator's series key, e.g. ``mexico/inm/presented``.
        hold: a month whose level the indicator keeps (``YYYY-MM``).
        scale: a factor >= 0 its count is multiplied by (0.5 halves it).
        start, end: months (``YYYY-MM``), both included; default: every month.
    """

    key: str
    hold: Month | None = None
    scale: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> MoveIndicator:
        if not is_indicator(self.key):
            raise ValueError(
                f"key '{self.key}' is not an indicator series; indicator keys start with "
                f"{sorted(PUBLICATION_LAGS)}, e.g. mexico/inm/presented"
            )
        if (self.hold is None) == (self.scale is None):
            raise ValueError(
                "give exactly one of hold (a month whose level the indicator keeps, e.g. "
                "'2023-11') or scale (a factor >= 0, e.g. 0.5)"
            )
        return self


class Scenario(StrictModel):
    """A list of changes to interventions; the empty scenario changes nothing.

    Attributes:
        remove: events (or groups) that did not happen, over some months.
        add: hypothetical events.
        scale: events (or groups) at another intensity.
        indicators: measured indicators moved (held at a month's level, or scaled).
    """

    remove: tuple[Remove, ...] = ()
    add: tuple[Add, ...] = ()
    scale: tuple[Scale, ...] = ()
    indicators: tuple[MoveIndicator, ...] = ()

    @property
    def indicator_keys(self) -> list[str]:
        """The indicators the scenario moves, each once, in order."""
        return list(dict.fromkeys(m.key for m in self.indicators))

    @model_validator(mode="after")
    def _unique_added_ids(self) -> Scenario:
        ids = [a.id for a in self.add]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"added event id(s) {', '.join(repeated)} appear more than once")
        return self

    @classmethod
    def from_data(cls, data: object, label: str = "scenario") -> Scenario:
        """Validate a parsed scenario (a mapping with ``remove``, ``add``, ``scale``).

        Raises:
            ScenarioError: the data does not validate; the message names each problem.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ScenarioError(
                f"{label}: must be a mapping with keys remove, add, scale, indicators; got "
                f"{type(data).__name__}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(f"{label}: {describe(exc)}") from exc

    @classmethod
    def from_json_or_yaml(cls, source: str | Path) -> Scenario:
        """Read a scenario from JSON or YAML text, or from a ``.json`` / ``.yaml`` file.

        Args:
            source: a path (``Path``, or a string naming an existing file) or the text itself.

        Raises:
            ScenarioError: unreadable file, invalid JSON/YAML, or a scenario that does not
                validate.
        """
        path = Path(source) if isinstance(source, Path) or _names_file(source) else None
        label = str(path) if path else "scenario"
        try:
            text = path.read_text(encoding="utf-8") if path else source
            data = yaml.safe_load(text)
        except OSError as exc:
            raise ScenarioError(f"{label}: cannot read it: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{label}: not valid JSON or YAML: {exc}") from exc
        return cls.from_data(data, label)


def _names_file(text: str) -> bool:
    if "\n" in text or len(text) > 1024:
        return False
    try:
        return Path(text).expanduser().is_file()
    except OSError:
        return False


@dataclass(frozen=True)
class AddedRegressor:
    """An added event's column and the effect the model should give it.

    Attributes:
        id: the column in the counterfactual matrix.
        effect_pct: the stated effect in percent, or None when borrowed.
        like: the event or group id named by the scenario, or None.
        like_regressor: the column whose fitted effect to borrow (``like``'s group when it is
            grouped), or None.
    """

    id: str
    effect_pct: float | None
    like: str | None
    like_regressor: str | None


@dataclass(frozen=True)
class CounterfactualDesign:
    """A scenario applied to one series' design matrix.

    Attributes:
        X: the counterfactual matrix: the reference matrix's index and columns with removals and
            scalings applied, then one column per added event in the series' scope.
        added: the added columns and their effects, in scenario order.
        notes: what the scenario did that a reader might not expect (an event acting through
            its group, an event out of the series' scope, a window outside the months).
    """

    X: pd.DataFrame
    added: tuple[AddedRegressor, ...]
    notes: tuple[str, ...]


def _check_design(X: pd.DataFrame) -> None:
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"design matrix must be a pandas DataFrame; got {type(X).__name__}")
    if not isinstance(X.index, pd.DatetimeIndex) or not X.index.is_month_start.all():
        raise DataError(
            "design matrix must be indexed by month starts (a DatetimeIndex, as design_matrix "
            f"returns); got {type(X.index).__name__}"
        )


def _target(
    catalog: Catalog, name: str, key: SeriesKey, in_scope: dict, notes: list[str]
) -> str | None:
    """The column a remove/scale of ``name`` acts on, or None when out of the series' scope."""
    regressor = catalog.resolve(name)
    grouped = regressor != name
    if (grouped and not catalog.get(name).scope.matches(key)) or regressor not in in_scope:
        notes.append(f"{name} is not in scope for {key.key}; it changes nothing there")
        return None
    if grouped:
        others = [e.id for e in in_scope[regressor] if e.id != name]
        notes.append(
            f"{name} is modelled in group {regressor} (with {', '.join(others)}); the scenario "
            "acts on the group"
        )
    return regressor


def apply_scenario(
    catalog: Catalog, scenario: Scenario, series_key: str, X: pd.DataFrame
) -> CounterfactualDesign:
    """The counterfactual design matrix of a series under a scenario.

    Removals set a regressor to 0 over their months and scalings multiply it; both act on the
    named event's column, or its group's column when it is grouped. Added events in the series'
    scope become new columns evaluated like catalog events. The empty scenario returns a copy
    of ``X``.

    Args:
        catalog: the catalog ``X`` was built from.
        scenario: the changes.
        series_key: the series ``X`` belongs to.
        X: the reference design matrix, as :func:`design_matrix` returns it.

    Returns:
        The counterfactual matrix, the added columns with their effects, and notes.

    Raises:
        ScenarioError: an unknown event or group id (close ids suggested), an added id that
            repeats a catalog id or a column, or an in-scope regressor missing from ``X``.
        DataError: ``X`` is not indexed by month starts.
        ValueError: a malformed series key.
    """
    _check_design(X)
    key = parse_series_key(series_key)
    in_scope = catalog.regressors(key)
    out = X.copy()
    notes: list[str] = []
    _remove_and_scale(catalog, scenario, key, in_scope, out, notes)
    _move_indicators(scenario, key, X, out, notes)
    added = [
        regressor
        for add in scenario.add
        if (regressor := _add(catalog, add, key, in_scope, out, notes)) is not None
    ]
    return CounterfactualDesign(out, tuple(added), tuple(notes))


def _remove_and_scale(catalog, scenario, key, in_scope, out: pd.DataFrame, notes) -> None:
    """Set removed events' columns to 0 over their months and multiply scaled ones, in place."""
    changes = [(r, 0.0) for r in scenario.remove] + [(s, s.factor) for s in scenario.scale]
    for change, factor in changes:
        regressor = _target(catalog, change.event, key, in_scope, notes)
        if regressor is None:
            continue
        if regressor not in out.columns:
            raise ScenarioError(
                f"the design matrix has no column '{regressor}', a regressor of {key.key}; "
                f"columns: {list(out.columns)}; build it with design_matrix(catalog, "
                f"'{key.key}', start, end) from the same catalog"
            )
        mask = change.mask(out.index)
        if not mask.any():
            notes.append(
                f"{change.event}: no month of the design matrix falls in {change.window}; "
                "it changes nothing"
            )
        out.loc[mask, regressor] *= factor


def _move_indicators(scenario, key, X: pd.DataFrame, out: pd.DataFrame, notes) -> None:
    """Hold or scale the indicator columns over their months, in place."""
    for move in scenario.indicators:
        column = indicator_column(move.key)
        if column not in out.columns:
            fitted = [
                c.removeprefix(INDICATOR_PREFIX) for c in out if c.startswith(INDICATOR_PREFIX)
            ]
            raise ScenarioError(
                f"the model of {key.key} was not fitted with indicator '{move.key}' "
                f"(its indicators: {fitted or 'none'}); fit it with that indicator"
            )
        mask = move.mask(out.index)
        if not mask.any():
            notes.append(f"{move.key}: no month falls in {move.window}; it changes nothing")
        if move.hold is not None:
            month = pd.Timestamp(move.hold)
            if month not in X.index:
                raise ScenarioError(
                    f"indicator {move.key}: hold month {month:%Y-%m} is outside the months "
                    f"{X.index[0]:%Y-%m}..{X.index[-1]:%Y-%m}"
                )
            out.loc[mask, column] = X.loc[month, column]
        else:
            out.loc[mask, column] = np.log1p(move.scale * np.expm1(X.loc[mask, column]))


def _add(catalog, add, key, in_scope, out: pd.DataFrame, notes) -> AddedRegressor | None:
    """Add a hypothetical event's column to ``out`` when it is in the series' scope."""
    if add.id in catalog or add.id in out.columns:
        raise ScenarioError(
            f"added event id '{add.id}' is already a catalog id or a column; choose another"
        )
    like_regressor = None
    if add.like is not None:
        like_regressor = catalog.resolve(add.like)
        if like_regressor != add.like:
            notes.append(
                f"{add.id} borrows the effect of {add.like}, which is modelled in group "
                f"{like_regressor}: it borrows the group's effect"
            )
        if like_regressor not in in_scope:
            notes.append(
                f"{add.id} borrows the effect of {like_regressor}, which is not a regressor "
                f"of {key.key}: the effect must come from a series it is fitted on"
            )
    if not add.scope.matches(key):
        notes.append(f"added event {add.id} is not in scope for {key.key}; no column added")
        return None
    out[add.id] = add.values(out.index)
    return AddedRegressor(add.id, add.effect_pct, add.like, like_regressor)
