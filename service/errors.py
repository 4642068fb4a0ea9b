"""HTTP errors as ``application/problem+json`` (RFC 9457): the project's exceptions as 404 / 422 /
503 bodies that say what is accepted.

Every error body has ``type``, ``title`` and ``status`` beside ``detail``, which keeps its shape:
a 422's ``detail`` is FastAPI's list (``[{"loc", "msg", "type"}]``), so a client reads one format
whether pydantic or the forecasting layer refused the request. 422 is a request outside the
OpenAPI schema, and also one the schema accepts that cannot be answered as asked (a month outside
the served data, an event out of the series' scope, dates out of order): what JSON Schema cannot
express, refused as the same kind of error clients already handle (STYLE.md: bad scenario → 422).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from forecasting.errors import UnknownSeriesError
from service.observability import REQUEST_ID_HEADER, current_request_id

log = logging.getLogger("service")
PROBLEM = "application/problem+json"


class RequestError(Exception):
    """Input the forecasting layer refused: 422 naming the field and what is accepted.

    Args:
        loc: where, as FastAPI writes it: ``("query", "h")``, ``("body", "scenario")``.
        msg: what was wrong and what is accepted.
    """

    status = 422

    def __init__(self, loc: Sequence[str | int], msg: str):
        super().__init__(msg)
        self.loc = tuple(loc)
        self.msg = msg


class NotAnswerable(RequestError):
    """A request the schema accepts that cannot be answered as asked (the served version's data,
    the series' scope, dates out of order): 422, like any other invalid input."""


class NoModelError(Exception):
    """No bundle is loaded yet (no champion, or it failed to load): 503."""


def validation_body(loc: Sequence[str | int], msg: str) -> dict:
    return {"detail": [{"loc": list(loc), "msg": msg, "type": "value_error"}]}


def problem(status: int, body: dict, headers: dict[str, str] | None = None) -> JSONResponse:
    """``body`` (with its ``detail``) as a problem document of ``status``."""
    title = HTTPStatus(status).phrase
    slug = title.lower().replace(" ", "-")
    document = {"type": f"/problems/{slug}", "title": title, "status": status, **body}
    return JSONResponse(document, status_code=status, headers=headers, media_type=PROBLEM)


async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return problem(exc.status, validation_body(exc.loc, exc.msg))


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
    # Only the models' own checks refused it (`value_error`: an end before its start, both an
    # effect and a borrowed one): what JSON Schema cannot say, so the schema accepted it.
    semantic = all(e["type"] == "value_error" for e in errors)
    return problem(NotAnswerable.status if semantic else 422, {"detail": errors})


def _allowed(request: Request) -> str:
    """The methods the API documents at this path (Starlette's 405 names one route's only)."""
    documented = request.app.openapi()["paths"].get(request.url.path, {})
    return ", ".join(sorted(method.upper() for method in documented))


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed(request)):
        headers["Allow"] = allowed
    return problem(exc.status_code, {"detail": exc.detail}, headers)


async def _unknown_series(request: Request, exc: UnknownSeriesError) -> JSONResponse:
    return problem(404, {"detail": str(exc), "series": exc.key, "close": list(exc.close)})


async def _no_model(request: Request, exc: NoModelError) -> JSONResponse:
    return problem(503, {"detail": str(exc)}, {"Retry-After": "30"})


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    # Runs in the outermost middleware, still inside the request's context: the id is set.
    log.error("unhandled error", exc_info=exc)
    rid = current_request_id()
    return problem(
        500,
        {"detail": "internal error; quote the request id when reporting it", "request_id": rid},
        {REQUEST_ID_HEADER: rid},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(UnknownSeriesError, _unknown_series)
    app.add_exception_handler(NoModelError, _no_model)
    app.add_exception_handler(Exception, _internal)
