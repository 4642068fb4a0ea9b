"""``/v1/decompose``: a month's change split into seasonal, trend, each event and the rest.

A decomposition may refit the structural model, so an uncached one runs on the expensive
requests' executor (:mod:`service.expensive`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

import forecasting.decompose as dec
from forecasting.errors import DataError
from forecasting.frame import interval_list
from service.deps import RegistryDep, ServedDep
from service.errors import NotAnswerable, RequestError, StrictJSONRoute
from service.routes.forecast import JSON, check_request
from service.schemas import EXPENSIVE_ERRORS, DecomposeRequest, DecomposeResponse
from service.served import Served, dumps

router = APIRouter(tags=["counterfactuals"], route_class=StrictJSONRoute)


def _body(served: Served, request: DecomposeRequest, levels: list[int]) -> bytes:
    entry = served.entry(request.series)
    model = served.structural_model(request.series)
    if model is None:
        supported = served.supported("decompose")
        raise RequestError(
            ("body", "series"),
            f"decompositions need a structural (ucm) model; model version {served.version} has "
            f"none for {request.series} (its model is {entry.model_name}); series with "
            f"decompositions: {supported or 'none'}",
        )
    try:
        result = dec.decompose(
            model,
            entry.y,
            entry.X,
            served.bundle.catalog,
            request.series,
            request.month,
            request.vs,
            levels,
        )
    except (DataError, ValueError) as exc:
        raise NotAnswerable(("body", "month"), str(exc)) from exc
    data = {"model_version": served.version, **result.to_dict()}
    for component in data["components"]:
        component["intervals"] = interval_list(component, levels, dec.CHANGE)
    return dumps(data)


@router.post("/decompose", response_model=DecomposeResponse, responses=EXPENSIVE_ERRORS)
async def decompose(
    served: ServedDep, registry: RegistryDep, request: DecomposeRequest, http: Request
) -> Response:
    """Why a month differs from the month before (or a year before), by component, with
    intervals; needs a structural (UCM) model of the series in the bundle."""
    levels = check_request(served, 1, request.level, "body")
    key = ("decompose", request.series, request.month, request.vs, tuple(levels))
    body = await registry.expensive.respond(
        http, served.responses, key, lambda: _body(served, request, levels)
    )
    return Response(body, media_type=JSON)
