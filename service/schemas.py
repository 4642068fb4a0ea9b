"""Request and response models: what the OpenAPI schema documents and requests are checked against.

Interval columns are named as in the forecasting layer: ``lo_<L>`` / ``hi_<L>`` for each level
``L`` (percent), and ``<quantity>_lo_<L>`` in counterfactual rows; rows allow those extra keys.
Counts are on the original scale, rounded to 0.1.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from forecasting.counterfactual.donors import MAX_CONTROLS
from forecasting.interventions import Scenario
from forecasting.sensitivity import DEFAULT_SHIFTS, MAX_SHIFT
from service.openapi import MARK

SeriesKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="Series key, e.g. `southwest/usbp` or `southwest/usbp/sector=yuma`.",
        examples=["southwest/usbp"],
    ),
]
Level = Annotated[
    int,
    Field(
        gt=0,
        lt=100,
        description="Interval level in percent: one of the served version's calibrated levels.",
        json_schema_extra={MARK: "levels"},
    ),
]
Threshold = Annotated[
    float, Field(ge=0, allow_inf_nan=False, description="A monthly count to exceed.")
]
YearMonth = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="A month, `YYYY-MM`.", examples=["2024-01"]
    ),
]


def _json_number(value: object) -> object:
    """A body's numbers as JSON Schema reads them: ``true`` or ``"12"`` is not a number (pydantic's
    lax mode would take them); ``12.0`` is the integer 12."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "json_number", "expected a JSON number; got {value}", {"value": repr(value)[:40]}
        )
    return value


#: A JSON number in a request body (query strings stay strings that parse).
Number = BeforeValidator(_json_number)


def _numeric_fields(schema: object) -> set[str]:
    """Names of the properties a schema types as numbers, at any depth."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for name, prop in schema.get("properties", {}).items():
            if '"number"' in json.dumps(prop) or '"integer"' in json.dumps(prop):
                found.add(name)
        for value in schema.values():
            found |= _numeric_fields(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _numeric_fields(value)
    return found


#: The scenario models (``forecasting.interventions``) take pydantic's lax numbers; a request
#: is JSON, and its schema says number.
SCENARIO_NUMBERS = frozenset(_numeric_fields(Scenario.model_json_schema()))


#: Changes one scenario may hold (the catalog has about 70 events): a request's size is bounded
#: before any regressor is built.
MAX_CHANGES = 200


def json_scenario(data: object) -> object:
    """``data`` when it holds at most :data:`MAX_CHANGES` changes, every scenario field the
    schema types as a number holds a JSON number, and no value is a JSON boolean (no scenario
    field is one)."""
    if isinstance(data, dict):
        changes = sum(len(v) for v in data.values() if isinstance(v, list))
        if changes > MAX_CHANGES:
            raise PydanticCustomError(
                "too_long",
                "a scenario holds at most {most} changes (remove, add, scale and indicators "
                "together); got {count}",
                {"most": MAX_CHANGES, "count": changes},
            )
    _json_values(data)
    return data


def _json_values(data: object) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            # A name can be a number in one place and a list in another (an indicator's
            # ``scale`` factor, the scenario's ``scale`` changes): pydantic types the lists.
            if key in SCENARIO_NUMBERS and value is not None and not isinstance(value, list):
                _json_number(value)
            _json_values(value)
    elif isinstance(data, list):
        for value in data:
            _json_values(value)
    elif isinstance(data, bool):
        raise PydanticCustomError(
            "json_type", "no scenario field is a boolean; got {value}", {"value": data}
        )


BodyLevel = Annotated[Level, Number]
MAX_H = 36
MAX_LEVELS = 8
MAX_THRESHOLDS = 20
MAX_BATCH = 100


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Rows(BaseModel):
    # Rows carry one pair of interval columns per requested level.
    model_config = ConfigDict(extra="allow")


class Interval(_Out):
    level: int = Field(description="Percent.")
    lo: float | None
    hi: float | None


#: Declared beside the ``lo_<L>`` / ``hi_<L>`` keys, which stay.
INTERVALS = Field(description="Per requested level, the interval `{level, lo, hi}`.")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ------------------------------------------------------------------------------------


class Problem(BaseModel):
    """An error, as ``application/problem+json`` (RFC 9457)."""

    type: str = Field(description="The kind of problem, `/problems/<status title>`.")
    title: str = Field(description="The HTTP status' phrase.")
    status: int
    detail: str = Field(description="What was wrong and what is accepted.")


class NotFound(Problem):
    model_config = ConfigDict(extra="forbid")

    series: str | None = Field(default=None, description="The series key that was asked for.")
    close: list[str] = Field(default_factory=list, description="Known keys that look like it.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where: `["query", "level"]`, `["body", ...]`.')
    msg: str = Field(description="What was wrong and what is accepted.")
    type: str


class Invalid(Problem):
    detail: list[FieldError]  # type: ignore[assignment]


def _problem(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem(Problem, "Missing or unknown API key (when keys are set)."),
    422: _problem(
        Invalid,
        "A parameter outside what the schema accepts, or one the served model version cannot "
        "answer (a month outside its data, an event outside the series' scope); `detail` names it.",
    ),
    503: _problem(Problem, "No model loaded yet."),
}
SERIES_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: _problem(NotFound, "Unknown series; `close` lists near matches."),
}
#: The routes on the expensive requests' executor (``service.expensive``).
EXPENSIVE_ERRORS: dict[int | str, dict[str, Any]] = {
    **SERIES_ERRORS,
    429: _problem(
        Problem,
        "Too many expensive requests (refits, sensitivity, uncached counterfactuals) at once: "
        "retry after the seconds in `Retry-After`.",
    ),
    503: _problem(Problem, "No model loaded yet, or the request ran past the server's time limit."),
}


# -- health ------------------------------------------------------------------------------------


class ServedModel(_Out):
    name: str
    version: str
    alias: str
    run_id: str | None = Field(description="The MLflow run that registered the version.")
    source: Literal["tracking", "cache"] = Field(
        description="`cache`: loaded from the local copy because the registry was unreachable."
    )
    loaded_at: dt.datetime
    tracking_uri: str
    provisional: str | None = Field(
        default=None,
        description="Set when the served version is a quick stand-in (`encounters up` serves "
        "one while the full experiment trains): what it is.",
    )


class TrainingProgress(_Out):
    """A background training started by `encounters up` (its `training.json`)."""

    experiment: str | None = None
    state: Literal[
        "starting", "training", "logging", "promoted", "rejected", "up-to-date", "failed", "stopped"
    ] = Field(description="`stopped`: the training process ended before it finished.")
    series_done: int = 0
    series_total: int | None = None
    elapsed_seconds: float | None = None
    remaining_seconds: float | None = Field(
        default=None, description="Estimated from the series done so far; the fits only."
    )
    started_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    message: str | None = None
    version: str | None = Field(default=None, description="The version it registered, if any.")


class DataVintage(_Out):
    fingerprint: str | None = Field(description="Digest of the releases the model was trained on.")
    newest_month: str | None = Field(description="Last month of the training data, `YYYY-MM`.")
    experiment: str | None = None
    code_version: str | None = None


class Health(_Out):
    status: Literal["ok", "degraded", "unavailable"]
    degraded: bool
    reason: str | None = Field(description="Why degraded (all reasons joined), or null.")
    reasons: list[str]
    model: ServedModel | None
    data: DataVintage | None
    started_at: dt.datetime
    last_poll_at: dt.datetime | None
    poll_seconds: float
    training: TrainingProgress | None = Field(
        default=None, description="The background training `encounters up` runs, if any."
    )


# -- series ------------------------------------------------------------------------------------


class SeriesSummary(_Out):
    series: str
    model: str = Field(
        description="The model family chosen for the series; `derived` for a residual the "
        "hierarchy derives (its parent less the served children)."
    )
    history_start: str
    history_end: str = Field(description="The series' last observed month, `YYYY-MM`.")
    as_of: str = Field(
        description="Its hierarchy's as-of month (the newest any of its series has), `YYYY-MM`: "
        "forecasts start after it."
    )
    nowcast_months: int = Field(description="Months between `history_end` and `as_of`.")
    months: int
    latest: float
    next_month: dt.date
    next_mean: float
    counterfactual: bool = Field(description="Its model answers `POST /v1/counterfactual`.")
    decompose: bool = Field(description="Its model answers `POST /v1/decompose`.")


class IndicatorSummary(_Out):
    series: str
    history_start: str
    history_end: str
    months: int
    latest: float
    sources: list[str] = Field(description="The release files its figures come from.")
    publication_lag_months: int = Field(
        description="Months after which a month is public; backtests use no later month."
    )


class SeriesList(_Out):
    model_version: str
    series: list[SeriesSummary]
    indicators: list[IndicatorSummary] = Field(
        default_factory=list,
        description="Measured flows upstream of the border and Mexico's enforcement, held "
        "beside the encounter series (regressors and scenario levers; not forecast).",
    )


class HistoryRow(_Out):
    ds: dt.date
    y: float
    source: str = Field(description="The release file the figure comes from.")
    vintage: str = Field(description="That release's vintage (its last month), `YYYY-MM`.")
    filled: bool = Field(description="A month the publisher omitted (near zero), filled with 0.")


class SeriesHistory(_Out):
    series: str
    served: bool = Field(description="Whether the served model forecasts this series.")
    model_version: str | None
    rows: list[HistoryRow]


# -- interventions -----------------------------------------------------------------------------


class InterventionOut(_Out):
    id: str
    name: str
    start: dt.date
    end: dt.date | None
    actor: str
    kind: str
    scope: Any = Field(description="`all`, or the citizenships / sectors it acts on.")
    shape: dict[str, Any] = Field(description="`{type: step|pulse|ramp|decay, ...}`.")
    group: str | None
    regressor: str = Field(description="The design-matrix column it acts through.")
    expected_sign: int
    source: str
    note: str


class InterventionList(_Out):
    series: str | None
    model_version: str
    count: int
    events: list[InterventionOut]


# -- models ------------------------------------------------------------------------------------


class SeriesModelOut(_Out):
    series: str
    model: str
    metrics: dict[str, float | None] = Field(description="Backtest metrics of the chosen model.")
    run_id: str | None = Field(description="The MLflow child run that trained it.")
    fallback: str | None = Field(description="Why it fell back to the baseline, if it did.")
    effect_models: list[str] = Field(
        description="Regression families (sarimax, ucm) held for counterfactuals, best first."
    )
    counterfactual: bool
    decompose: bool


class ModelsOut(_Out):
    name: str
    version: str
    alias: str
    run_id: str | None
    experiment: str | None
    parent_run_id: str | None
    provisional: str | None = Field(
        default=None, description="Set when the served version is a quick stand-in: what it is."
    )
    level: list[int] = Field(description="Calibrated interval levels: the only accepted ones.")
    max_h: int
    series: list[SeriesModelOut]


# -- forecasts ---------------------------------------------------------------------------------


class Exceedance(_Out):
    threshold: float
    probability: float = Field(ge=0, le=1)


class ForecastRow(_Rows):
    ds: dt.date = Field(description="Month start.")
    kind: Literal["nowcast", "forecast"] = Field(
        description="`nowcast`: a month up to the as-of month that the series has not published "
        "yet, from what its hierarchy has; `forecast`: a month after the as-of month."
    )
    mean: float
    intervals: list[Interval] = INTERVALS
    exceedance: list[Exceedance] | None = Field(
        default=None, description="P(month > threshold), per requested threshold."
    )


class ForecastResponse(_Out):
    series: str
    model_version: str
    model: str
    level: list[int]
    last_observed: str = Field(description="The series' last observed month, `YYYY-MM`.")
    as_of: str = Field(
        description="Its hierarchy's as-of month, `YYYY-MM`: `h` counts months after it."
    )
    rows: list[ForecastRow] = Field(
        description="The nowcast months, then `h` forecast months: `ds`, `kind`, `mean`, "
        "`lo_<L>`, `hi_<L>` per level."
    )
    exceedance_method: Literal["sample_paths", "lognormal"] | None = Field(
        default=None,
        description="`sample_paths`: the model's simulated paths mapped onto the calibrated "
        "intervals; `lognormal`: a normal log1p(y) fitted to the calibrated bounds (models that "
        "cannot simulate).",
    )


class ForecastRequest(_In):
    series: list[SeriesKey] = Field(min_length=1, max_length=MAX_BATCH)
    h: Annotated[int, Number] = Field(
        default=12, ge=1, le=MAX_H, description="Months ahead.", json_schema_extra={MARK: "max_h"}
    )
    level: list[BodyLevel] | None = Field(
        default=None, max_length=MAX_LEVELS, description="Default: every calibrated level."
    )
    threshold: list[Annotated[Threshold, Number]] | None = Field(
        default=None, max_length=MAX_THRESHOLDS
    )


class ForecastBatch(_Out):
    model_version: str
    forecasts: list[ForecastResponse]


# -- counterfactuals and decompositions --------------------------------------------------------


def _answering(ability: str) -> Any:
    return Field(
        min_length=1,
        max_length=200,
        description=f"Series key; one whose served model answers {ability}s (`GET /v1/series`).",
        examples=["southwest/usbp/citizenship=mexico"],
        json_schema_extra={MARK: ability},
    )


class CounterfactualRequest(_In):
    series: str = _answering("counterfactual")
    scenario: Annotated[Scenario, BeforeValidator(json_scenario)] = Field(
        description="Changes to interventions: `remove`, `add`, `scale` lists (see "
        "forecasting/interventions/README.md).",
        examples=[{"remove": [{"event": "mx_enforcement_2023_12"}]}],
    )
    start: YearMonth | None = Field(
        default=None, description="First month; default: the first month the scenario changes."
    )
    end: YearMonth | None = Field(default=None, description="Last month; default: a year on.")
    method: Literal["regressor", "pre_period", "controls"] = "regressor"
    controls: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CONTROLS,
        description="With method `controls`: the control series to use instead of the "
        "automatic choice (encounter series keys, or upstream indicators such as "
        "`panama/darien/transits/citizenship=venezuela`); the notes say which the automatic "
        "choice would have excluded, and why.",
    )
    level: list[BodyLevel] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LEVELS,
        description="Interval levels; default: the bundle's calibrated levels.",
    )


class CounterfactualRow(_Rows):
    """Quantities are null where they are not finite (an extreme scenario overflows)."""

    ds: dt.date
    observed: bool
    reference: float | None
    counterfactual: float | None
    effect: float | None
    cumulative_effect: float | None
    intervals: dict[
        Literal["reference", "counterfactual", "effect", "cumulative_effect"], list[Interval]
    ] = Field(description="Per quantity, its intervals `{level, lo, hi}`.")


class CounterfactualResponse(_Out):
    series: str
    model_version: str
    scenario: dict[str, Any]
    method: str
    level: list[int]
    start: str
    end: str
    rows: list[CounterfactualRow] = Field(
        description="Per month: each quantity with `<q>_lo_<L>` / `<q>_hi_<L>`."
    )
    totals: dict[str, float | None]
    summary: str
    notes: list[str]


Shift = Annotated[
    int,
    Field(ge=-MAX_SHIFT, le=MAX_SHIFT, description="Months to move the event's dates by."),
    Number,
]


class SensitivityRequest(_In):
    series: str = _answering("counterfactual")
    event: str = Field(
        min_length=1,
        max_length=200,
        description="An event or group id in the series' scope (see /v1/interventions).",
        examples=["mx_enforcement_2023_12"],
        json_schema_extra={MARK: "events"},
    )
    shifts: list[Shift] = Field(
        default=list(DEFAULT_SHIFTS),
        min_length=1,
        max_length=2 * MAX_SHIFT + 1,
        description="Shifts to refit with, in months; 0 (the catalog's dates) is always added.",
    )
    level: list[BodyLevel] | None = Field(default=None, min_length=1, max_length=MAX_LEVELS)


class SensitivityRow(_Rows):
    shift: int
    onset: dt.date
    effect: float | None = Field(description="Percent change while the event is in force.")
    status: str
    aic: float | None
    closest_regressor: str | None = Field(
        description="The fit's other regressor whose values differ from the moved event's in "
        "the fewest months."
    )
    months_apart: int | None = Field(
        description="How many; under 2, the data cannot tell the two effects apart."
    )
    intervals: list[Interval] = INTERVALS


class SensitivityResponse(_Out):
    series: str
    model_version: str
    event: str
    regressor: str
    level: list[int]
    rows: list[SensitivityRow]
    summary: str


class DecomposeRequest(_In):
    series: str = _answering("decompose")
    month: YearMonth
    vs: Literal["previous", "year"] = Field(
        default="previous", description="Compare with the month before or a year before."
    )
    level: list[BodyLevel] | None = Field(default=None, min_length=1, max_length=MAX_LEVELS)


class Component(_Rows):
    component: str
    name: str
    change: float
    log_change: float
    intervals: list[Interval] = Field(description="Per level, the change's interval.")


class DecomposeResponse(_Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    series: str
    model_version: str
    month: str
    compared_to: str
    vs: str
    level: list[int]
    from_: float = Field(alias="from")
    to: float
    change: float
    components: list[Component]
    summary: str
    notes: list[str]
