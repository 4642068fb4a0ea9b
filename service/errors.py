"""HTTP errors as ``application/problem+json`` (RFC 9457): the project's exceptions as 404 / 422 /
503 bodies that say what is accepted.

Every error body has ``type``, ``title`` and ``status`` beside ``detail``, which keeps its shape:
a 422's ``detail`` is FastAPI's list (``[{"loc", "msg", "type"}]``), so a client reads one format
whether pydantic or the forecasting layer refused the request. 422 is a request outside the
OpenAPI schema, and also one the schema accepts that cannot be answered as asked (a month outside
the served data, an event out of the series' scope, dates out of order): what JSON Schema cannot
express, refused as the same kind of error clients already handle (STYLE.md: bad scenario → 422).

Bodies are bounded whatever the input: every string in a problem document is cut to a short
excerpt and lists to a few items, so a 10 MB key or series name is never echoed back. JSON bodies
are read strictly: ``NaN`` and ``Infinity`` are not JSON, and are refused as a JSON error (422).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from forecasting.data.store import StoreBroken
from forecasting.errors import UnknownSeriesError
from service.observability import REQUEST_ID_HEADER, current_request_id

log = logging.getLogger("service")
PROBLEM = "application/problem+json"
#: A problem document cuts any word (a run without spaces: an echoed key, id or value) longer
#: than WORD characters, and any string longer than TEXT, to an excerpt; it lists MAX_ITEMS items.
WORD = 120
TEXT = 4_000
MAX_ITEMS = 20


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

    def __reduce__(self):
        # Raised in the expensive routes' worker processes and re-raised here (pickled).
        return type(self), (self.loc, self.msg)


class NotAnswerable(RequestError):
    """A request the schema accepts that cannot be answered as asked (the served version's data,
    the series' scope, dates out of order): 422, like any other invalid input."""


class NoModelError(Exception):
    """No bundle is loaded yet (no champion, or it failed to load): 503."""


class Busy(Exception):
    """The expensive routes' executor is full: 429 with ``Retry-After`` (seconds)."""

    def __init__(self, msg: str, retry_after: int):
        super().__init__(msg)
        self.retry_after = retry_after


class Overrun(Busy):
    """An expensive request ran past its time limit and was stopped: 503 with ``Retry-After``."""


class ClientGone(Exception):
    """The client went away while its expensive request waited or ran: its work was stopped."""


def _cut(text: str, most: int) -> str:
    return f"{text[:most]}... ({len(text):,} characters)"


_LONG_WORD = re.compile(rf"\S{{{WORD + 1},}}")


def excerpt(text: str) -> str:
    """``text`` with long words, and the whole when still long, cut to excerpts."""
    text = _LONG_WORD.sub(lambda m: _cut(m[0], WORD), text)
    return text if len(text) <= TEXT else _cut(text, TEXT)


def _bounded(obj: object) -> object:
    if isinstance(obj, str):
        return excerpt(obj)
    if isinstance(obj, dict):
        return {excerpt(str(k)): _bounded(v) for k, v in list(obj.items())[:MAX_ITEMS]}
    if isinstance(obj, list | tuple):
        return [_bounded(v) for v in obj[:MAX_ITEMS]]
    return obj


def validation_body(loc: Sequence[str | int], msg: str) -> dict:
    return {"detail": [{"loc": list(loc), "msg": msg, "type": "value_error"}]}


def problem(status: int, body: dict, headers: dict[str, str] | None = None) -> JSONResponse:
    """``body`` (with its ``detail``) as a problem document of ``status``."""
    title = HTTPStatus(status).phrase
    slug = title.lower().replace(" ", "-")
    document = {"type": f"/problems/{slug}", "title": title, "status": status, **_bounded(body)}
    return JSONResponse(document, status_code=status, headers=headers, media_type=PROBLEM)


async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return problem(exc.status, validation_body(exc.loc, exc.msg))


def _error(e: dict) -> dict:
    kept = {k: v for k, v in e.items() if k in ("loc", "msg", "type")}
    if e.get("type") == "json_invalid" and "error" in e.get("ctx", {}):
        kept["msg"] = f"{e['msg']}: {e['ctx']['error']}"
    return kept


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_error(e) for e in exc.errors()[:MAX_ITEMS]]
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


async def _store_broken(request: Request, exc: StoreBroken) -> JSONResponse:
    return problem(503, {"detail": str(exc)}, {"Retry-After": "60"})


async def _busy(request: Request, exc: Busy) -> JSONResponse:
    status = 503 if isinstance(exc, Overrun) else 429
    return problem(status, {"detail": str(exc)}, {"Retry-After": str(exc.retry_after)})


async def _client_gone(request: Request, exc: ClientGone) -> Response:
    # Nobody reads it: nginx's "client closed request", for the access log and the metrics.
    return Response(status_code=499)


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
    app.add_exception_handler(Busy, _busy)
    app.add_exception_handler(StoreBroken, _store_broken)
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(Exception, _internal)


class _NotJSON(Exception):
    def __init__(self, constant: str):
        self.constant = constant


def _refuse_constant(name: str) -> object:
    raise _NotJSON(name)


class StrictJSONRequest(Request):
    """Reads a JSON body as JSON (RFC 8259): ``NaN``, ``Infinity`` and ``-Infinity`` are errors."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = (await self.body()).decode("utf-8", errors="replace")
            try:
                self._json = json.loads(body, parse_constant=_refuse_constant)
            except _NotJSON as exc:
                raise json.JSONDecodeError(
                    f"{exc.constant} is not JSON; send a finite number (or null where allowed)",
                    body,
                    max(body.find(exc.constant), 0),
                ) from None
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is read by :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
