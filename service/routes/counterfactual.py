"""``/v1/counterfactual``: the series under a scenario (what if an event had not happened, or
happens next), from the served model of that series.

A series' :class:`~forecasting.counterfactual.CounterfactualEngine` is built when its bundle
loads (coefficient draws and baseline paths), so a request on a catalog scenario is array
arithmetic (~5 ms), but an added event's regressors, a long span, ``pre_period`` or ``controls``
(which refit the model on the months before the change: seconds) cost more. So an uncached answer
is computed on the expensive requests' executor (:mod:`service.expensive`: its own processes,
bounded, 429 when full); answers are kept per bundle, keyed by the validated request, and a
repeated request is a dict read on the event loop.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic_core import PydanticCustomError

import forecasting.counterfactual as cf
from forecasting.errors import DataError, ScenarioError
from forecasting.frame import COUNTERFACTUAL, CUMULATIVE_EFFECT, EFFECT, REFERENCE, interval_list
from forecasting.interventions import Scenario
from service import charts
from service.deps import RegistryDep, ServedDep
from service.errors import NotAnswerable, RequestError, StrictJSONRoute
from service.openapi import MARK, catalog_ids, unknown_id
from service.routes.forecast import JSON, PNG, LevelQuery, check_request
from service.schemas import (
    EXPENSIVE_ERRORS,
    CounterfactualRequest,
    CounterfactualResponse,
    json_scenario,
)
from service.served import Served, dumps

router = APIRouter(tags=["counterfactuals"], route_class=StrictJSONRoute)
#: The row quantities that carry intervals.
QUANTITIES = (REFERENCE, COUNTERFACTUAL, EFFECT, CUMULATIVE_EFFECT)


def _loc(where: str, exc: Exception) -> tuple[str, str]:
    text = str(exc)
    for field in ("start", "end"):
        if text.startswith(field):
            return (where, field)
    # named_controls' errors start "control <key>" or "controls names".
    if text.startswith("control"):
        return (where, "controls")
    return (where, "scenario")


def run(
    served: Served,
    series: str,
    scenario: Scenario,
    start: str | None,
    end: str | None,
    method: str,
    level: list[int] | None,
    where: str,
    controls: list[str] | None = None,
) -> cf.CounterfactualResult:
    """The counterfactual from the series' engine; errors as 404/422."""
    levels = check_request(served, 1, level, where)
    if controls and method != cf.CONTROLS:
        raise RequestError(
            (where, "controls"), f"controls are named for method controls only; got {method}"
        )
    engine, capability = served.engine(series)
    if engine is None:
        raise RequestError(
            (where, "series"),
            f"{capability.reason}; series with counterfactuals in model version "
            f"{served.version}: {served.supported('counterfactual') or 'none'}",
        )
    unknown_events(served, scenario, (where, "scenario"))
    try:
        with served.engine_lock(series):
            return engine.run(scenario, start, end, method, levels, controls)
    except (ScenarioError, DataError, ValueError) as exc:
        raise NotAnswerable(_loc(where, exc), str(exc)) from exc


def unknown_events(served: Served, scenario: Scenario, loc: tuple[str, str]) -> None:
    """422 when the scenario names an id outside the served catalog (the schema's enum)."""
    named = [c.event for c in (*scenario.remove, *scenario.scale)]
    known = catalog_ids(served.bundle.catalog)
    for name in named:
        if name not in known:
            raise RequestError(loc, unknown_id(name, known))


def payload(served: Served, result: cf.CounterfactualResult) -> dict:
    data = {"series": result.series, "model_version": served.version, **result.to_dict()}
    for row in data["rows"]:
        row["intervals"] = {q: interval_list(row, result.level, q) for q in QUANTITIES}
    return data


def _body(served: Served, request: CounterfactualRequest) -> bytes:
    result = run(
        served,
        request.series,
        request.scenario,
        request.start,
        request.end,
        request.method,
        request.level,
        "body",
        request.controls,
    )
    return dumps(payload(served, result))


@router.post("/counterfactual", response_model=CounterfactualResponse, responses=EXPENSIVE_ERRORS)
async def counterfactual(
    served: ServedDep, registry: RegistryDep, request: CounterfactualRequest, http: Request
) -> Response:
    """The series under a scenario over a span of months (past, future or both): per month the
    reference, counterfactual, effect and cumulative effect with intervals, and a summary."""
    body = await registry.expensive.respond(
        http,
        served.responses,
        ("cf.json", request.model_dump_json()),
        lambda: _body(served, request),
    )
    return Response(body, media_type=JSON)


def parse_scenario(text: str, where: str = "query") -> Scenario:
    """A scenario given as JSON text (a query parameter); never a file path."""
    try:
        data = json.loads(text)
        # Some OpenAPI clients encode a JSON `content` parameter twice: a JSON string of it.
        if isinstance(data, str):
            data = json.loads(data)
    except json.JSONDecodeError as exc:
        raise RequestError((where, "scenario"), f"scenario must be JSON text: {exc}") from exc
    try:
        json_scenario(data)
    except PydanticCustomError as exc:
        raise RequestError((where, "scenario"), str(exc)) from exc
    try:
        return Scenario.from_data(data)
    except ScenarioError as exc:
        # As in a request body: the scenario models' own checks are what the schema cannot say.
        raise NotAnswerable((where, "scenario"), str(exc)) from exc


@router.get("/counterfactual.png", response_class=Response, responses={**EXPENSIVE_ERRORS, **PNG})
async def counterfactual_chart(
    served: ServedDep,
    registry: RegistryDep,
    http: Request,
    series: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="Series key; one whose served model answers counterfactuals.",
            examples=["southwest/usbp/citizenship=mexico"],
            json_schema_extra={MARK: "counterfactual"},
        ),
    ],
    scenario: Annotated[
        str,
        Query(
            max_length=10_000,
            description="The scenario as JSON text, e.g. "
            '{"remove": [{"event": "mx_enforcement_2023_12"}]}.',
        ),
    ],
    start: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
    end: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
    method: Literal["regressor", "pre_period", "controls"] = "regressor",
    level: LevelQuery = None,
) -> Response:
    """Fan chart of the reference and the counterfactual with history and event markers."""
    parsed = parse_scenario(scenario)
    levels = check_request(served, 1, level, "query")
    key = (
        "counterfactual.png",
        series,
        parsed.model_dump_json(),
        start,
        end,
        method,
        tuple(levels),
    )
    png = await registry.expensive.respond(
        http,
        served.charts,
        key,
        lambda: charts.counterfactual_png(
            served, run(served, series, parsed, start, end, method, levels, "query")
        ),
    )
    return Response(png, media_type="image/png")
