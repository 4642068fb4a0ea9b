"""HTTP errors: the project's exceptions as 404 / 422 / 503 bodies that say what is accepted.

A 422 body has FastAPI's own shape (``{"detail": [{"loc", "msg", "type"}]}``), so a client reads
one format whether pydantic or the forecasting layer refused the request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from forecasting.errors import UnknownSeriesError
from service.observability import REQUEST_ID_HEADER, current_request_id

log = logging.getLogger("service")


class RequestError(Exception):
    """Input the forecasting layer refused: 422 naming the field and what is accepted.

    Args:
        loc: where, as FastAPI writes it: ``("query", "h")``, ``("body", "scenario")``.
        msg: what was wrong and what is accepted.
    """

    def __init__(self, loc: Sequence[str | int], msg: str):
        super().__init__(msg)
        self.loc = tuple(loc)
        self.msg = msg


class NoModelError(Exception):
    """No bundle is loaded yet (no champion, or it failed to load): 503."""


def validation_body(loc: Sequence[str | int], msg: str) -> dict:
    return {"detail": [{"loc": list(loc), "msg": msg, "type": "value_error"}]}


async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse(validation_body(exc.loc, exc.msg), status_code=422)


async def _unknown_series(request: Request, exc: UnknownSeriesError) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc), "series": exc.key, "close": list(exc.close)}, status_code=404
    )


async def _no_model(request: Request, exc: NoModelError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    # Runs in the outermost middleware, still inside the request's context: the id is set.
    log.error("unhandled error", exc_info=exc)
    rid = current_request_id()
    return JSONResponse(
        {"detail": "internal error; quote the request id when reporting it", "request_id": rid},
        status_code=500,
        headers={REQUEST_ID_HEADER: rid},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(UnknownSeriesError, _unknown_series)
    app.add_exception_handler(NoModelError, _no_model)
    app.add_exception_handler(Exception, _internal)
