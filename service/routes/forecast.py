"""``/v1/forecast``: calibrated forecasts of one or several series, as JSON or a fan chart.

The hot path is a lookup: each series' full-horizon forecast is computed when its bundle loads,
and each distinct request's JSON bytes are kept (per bundle) under its validated parameters; a
repeated request is answered by :mod:`service.edge` before routing. Anything not cached yet is
computed in the thread pool, off the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from service import charts
from service.deps import ServedDep
from service.edge import DEFAULT_H, forecast_key
from service.errors import RequestError, StrictJSONRoute
from service.openapi import MARK
from service.schemas import (
    MAX_H,
    MAX_LEVELS,
    MAX_THRESHOLDS,
    SERIES_ERRORS,
    ForecastBatch,
    ForecastRequest,
    ForecastResponse,
    Level,
    Threshold,
)
from service.served import Served, dumps

router = APIRouter(tags=["forecasts"], route_class=StrictJSONRoute)

JSON = "application/json"
PNG = {200: {"content": {"image/png": {}}, "description": "A PNG fan chart."}}

SeriesQuery = Annotated[
    str,
    Query(min_length=1, max_length=200, description="Series key.", examples=["southwest/usbp"]),
]
HQuery = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_H,
        description="Months ahead (at most the bundle's max_h).",
        json_schema_extra={MARK: "max_h"},
    ),
]
LevelQuery = Annotated[
    list[Level] | None,
    Query(
        max_length=MAX_LEVELS, description="Interval levels, repeatable; default: all calibrated."
    ),
]
ThresholdQuery = Annotated[
    list[Threshold] | None,
    Query(max_length=MAX_THRESHOLDS, description="Counts; each row gets P(month > count)."),
]


def check_request(served: Served, h: int, level: list[int] | None, where: str) -> list[int]:
    """``h`` and ``level`` against what the bundle serves; 422 naming the field."""
    bundle = served.bundle
    if not 1 <= h <= bundle.max_h:
        raise RequestError(
            (where, "h"), f"h must be a whole number of months in 1..{bundle.max_h}; got {h}"
        )
    levels = sorted(set(level)) if level else list(bundle.level)
    unknown = [lv for lv in levels if lv not in bundle.level]
    if unknown:
        raise RequestError(
            (where, "level"),
            f"level {unknown} is not calibrated; accepted levels are {list(bundle.level)}",
        )
    return levels


def _payload(served: Served, series: str, h: int, level, threshold, where: str) -> dict:
    levels = check_request(served, h, level, where)
    return served.forecast_payload(series, h, levels, list(threshold or ()))


@router.get("/forecast", response_model=ForecastResponse, responses=SERIES_ERRORS)
async def forecast(
    served: ServedDep,
    series: SeriesQuery,
    h: HQuery = DEFAULT_H,
    level: LevelQuery = None,
    threshold: ThresholdQuery = None,
) -> Response:
    """Forecast of one series: per month `mean`, `lo_<L>`, `hi_<L>`; with `threshold`, the
    probability each month exceeds it (see `exceedance_method`)."""
    body = await served.respond(
        forecast_key(series, h, level, threshold),
        lambda: dumps(_payload(served, series, h, level, threshold, "query")),
    )
    return Response(body, media_type=JSON)


def _batch(served: Served, request: ForecastRequest) -> bytes:
    forecasts = [
        _payload(served, series, request.h, request.level, request.threshold, "body")
        for series in request.series
    ]
    return dumps({"model_version": served.version, "forecasts": forecasts})


@router.post("/forecast", response_model=ForecastBatch, responses=SERIES_ERRORS)
async def forecast_many(served: ServedDep, request: ForecastRequest) -> Response:
    """Forecasts of several series in one call, one object per series in the order asked."""
    body = await served.respond(
        ("post", request.model_dump_json()), lambda: _batch(served, request)
    )
    return Response(body, media_type=JSON)


@router.get("/forecast.png", response_class=Response, responses={**SERIES_ERRORS, **PNG})
def forecast_chart(
    served: ServedDep,
    series: SeriesQuery,
    h: HQuery = 24,
    level: LevelQuery = None,
) -> Response:
    """Fan chart of a series' forecast with six years of history and event markers."""
    levels = check_request(served, h, level, "query")
    key = ("forecast.png", series, h, tuple(levels))
    png = served.charts.get(key)
    if png is None:
        png = served.charts.put(key, charts.forecast_png(served, series, h, levels))
    return Response(png, media_type="image/png")
