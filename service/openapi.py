"""The OpenAPI schema of the version being served: what the server accepts, exactly.

FastAPI's schema is built from the request models, which cannot know the served bundle; some of
what a request may hold depends on it. Fields mark such a constraint with an ``x-served``
extension (see ``service.schemas``), and :func:`install` fills it in from the bundle being
served, once per version:

- ``levels``: the calibrated interval levels (an ``enum``);
- ``max_h``: the longest horizon (``maximum``);
- ``counterfactual`` / ``decompose``: the series whose model answers that (an ``enum``);
- ``events``: the catalog's event and group ids (an ``enum``).

Without a model the marks stay unfilled (every ``/v1`` route answers 503 then).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from fastapi import FastAPI

from forecasting.data.store import close_keys
from forecasting.interventions import Catalog
from service.errors import PROBLEM
from service.served import Served
from service.validators import CACHE_CONTROL
from service.validators import PATHS as VALIDATED

MARK = "x-served"


def catalog_ids(catalog: Catalog) -> set[str]:
    """The ids a scenario or a sensitivity may name: every event and group."""
    return {e.id for e in catalog.events} | {g.id for g in catalog.groups}


def unknown_id(name: str, known: set[str]) -> str:
    """The 422 message for an id outside the schema's enum of catalog ids."""
    close = close_keys(name, sorted(known))
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"unknown event or group id {name!r}; {hint}GET /v1/interventions lists the ids"


def _values(served: Served, kind: str) -> dict:
    bundle = served.bundle
    if kind == "levels":
        return {"enum": list(bundle.level)}
    if kind == "max_h":
        return {"maximum": bundle.max_h}
    if kind in ("counterfactual", "decompose"):
        return {"enum": served.supported(kind)}
    if kind == "events":
        return {"enum": sorted(catalog_ids(bundle.catalog))}
    raise ValueError(f"unknown {MARK} constraint {kind!r}")


def _fill(node: object, served: Served) -> None:
    if isinstance(node, dict):
        kind = node.pop(MARK, None)
        if kind is not None:
            node.update(_values(served, kind))
        for value in node.values():
            _fill(value, served)
    elif isinstance(node, list):
        for value in node:
            _fill(value, served)


#: The error bodies' models (``service.schemas``).
PROBLEM_MODELS = ("Problem", "NotFound", "Invalid")
#: Query parameters that carry JSON, declared with their schema (not as any string).
JSON_PARAMETERS = {("/v1/counterfactual.png", "get", "scenario"): "Scenario"}
#: Fields of the scenario models (``forecasting.interventions``) that name a catalog id.
CATALOG_IDS = (("Remove", "event"), ("Scale", "event"))
#: Shape models whose ``type`` a request must give (their validator requires it; the models'
#: default makes pydantic call it optional).
SHAPES = ("Step", "Pulse", "Ramp", "Decay")


def _problems(schema: dict) -> None:
    """Errors as ``application/problem+json`` (``service.errors``); a body that is not JSON is
    a 400."""
    for item in schema["paths"].values():
        for operation in item.values():
            responses = operation["responses"]
            if "requestBody" in operation:
                responses["400"] = {
                    "description": "The body is not JSON.",
                    "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            for response in responses.values():
                content = response.get("content", {})
                ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
                if ref.rsplit("/", 1)[-1] in PROBLEM_MODELS:
                    content[PROBLEM] = content.pop("application/json")


def _validators(schema: dict) -> None:
    """The ``ETag`` / ``Cache-Control`` headers and the 304 of ``service.validators``' routes."""
    string = {"schema": {"type": "string"}}
    for path in VALIDATED:
        responses = schema["paths"][path]["get"]["responses"]
        responses["200"]["headers"] = {
            "ETag": {**string, "description": "The served version and a digest of the body."},
            "Cache-Control": {**string, "description": CACHE_CONTROL},
        }
        responses["304"] = {"description": "Not modified: `If-None-Match` named the ETag."}


def _declare(schema: dict) -> dict:
    """FastAPI's schema with errors, validators, JSON query parameters and catalog ids
    declared."""
    schema = copy.deepcopy(schema)
    _problems(schema)
    _validators(schema)
    for (path, method, name), model in JSON_PARAMETERS.items():
        for parameter in schema["paths"][path][method]["parameters"]:
            if parameter["name"] == name:
                del parameter["schema"]
                ref = {"$ref": f"#/components/schemas/{model}"}
                parameter["content"] = {"application/json": {"schema": ref}}
    components = schema["components"]["schemas"]
    for model, field in CATALOG_IDS:
        components[model]["properties"][field][MARK] = "events"
    for shape in SHAPES:
        required = components[shape].setdefault("required", [])
        required += [] if "type" in required else ["type"]
    return schema


def install(app: FastAPI, served: Callable[[], Served | None]) -> None:
    """Serve ``/openapi.json`` (and ``/docs``) with the constraints of the served version."""
    generated = app.openapi
    by_version: dict[str, dict] = {}

    def openapi() -> dict:
        current = served()
        schema = by_version.get(current.version if current else "")
        if schema is None:
            schema = _declare(generated())
            if current is not None:
                _fill(schema, current)
            by_version.clear()
            by_version[current.version if current else ""] = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
