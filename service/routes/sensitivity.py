"""``/v1/sensitivity``: how an event's estimated effect moves when its dates move.

Each request refits the series' regression once per shift (a few seconds in all), so it runs on
the expensive requests' executor (:mod:`service.expensive`) like a ``pre_period`` counterfactual;
answers are kept per bundle, keyed by the validated request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from forecasting.errors import DataError, ScenarioError
from forecasting.frame import interval_list
from forecasting.sensitivity import onset_report
from service.deps import RegistryDep, ServedDep
from service.errors import NotAnswerable, RequestError, StrictJSONRoute
from service.openapi import catalog_ids, unknown_id
from service.routes.forecast import JSON, check_request
from service.schemas import EXPENSIVE_ERRORS, SensitivityRequest, SensitivityResponse
from service.served import Served, dumps

router = APIRouter(tags=["counterfactuals"], route_class=StrictJSONRoute)


def _body(served: Served, request: SensitivityRequest) -> bytes:
    levels = check_request(served, 1, request.level, "body")
    entry = served.entry(request.series)
    known = catalog_ids(served.bundle.catalog)
    if request.event not in known:
        raise RequestError(("body", "event"), unknown_id(request.event, known))
    try:
        model = served.bundle.effect_model(request.series)
    except NotImplementedError as exc:
        raise RequestError(
            ("body", "series"),
            f"{exc}; series with a regression on interventions in model version "
            f"{served.version}: {served.supported('counterfactual') or 'none'}",
        ) from exc
    try:
        report = onset_report(
            model,
            entry.y,
            served.bundle.catalog,
            request.series,
            request.event,
            request.shifts,
            levels,
        )
    except ScenarioError as exc:
        raise NotAnswerable(("body", "event"), str(exc)) from exc
    except DataError as exc:
        raise NotAnswerable(("body", "series"), str(exc)) from exc
    for row in report["rows"]:
        row["intervals"] = interval_list(row, levels)
    return dumps({"model_version": served.version, **report})


@router.post("/sensitivity", response_model=SensitivityResponse, responses=EXPENSIVE_ERRORS)
async def sensitivity(
    served: ServedDep, registry: RegistryDep, request: SensitivityRequest, http: Request
) -> Response:
    """An event's estimated effect on the series with its dates moved by whole months: per
    shift the onset, the effect (percent) with intervals, whether the fit kept it, the AIC; and a
    summary. Catalog dates are uncertain by weeks; this shows how much the effect depends on
    them."""
    body = await registry.expensive.respond(
        http,
        served.responses,
        ("sensitivity.json", request.model_dump_json()),
        lambda: _body(served, request),
    )
    return Response(body, media_type=JSON)
