"""An edge cache for ``GET /v1/forecast``: a repeated request is answered before routing.

A forecast request that has been answered once (status 200, through the full route: parameter
validation, API key, bundle lookup) leaves its JSON bytes in the served bundle's response cache,
keyed by its validated parameters (:func:`forecast_key`). The middleware reads the same key off
the query string, when every parameter is written plainly (one ``series``, at most one ``h``,
digits for numbers), and answers from there without FastAPI's routing and parameter parsing,
which otherwise cost most of a request's time; any other spelling goes through the route, which
stores nothing new for it. So parameters the API does not know, or a new spelling of a known
request, neither grow the cache nor push answers out of it. The cache belongs to a
:class:`~service.served.Served`, so a swap starts a new, empty one. The API key is checked
before (``service.deps.KeyGuardMiddleware``), on every request, cached or not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from service.served import Served

PATH = "/v1/forecast"
#: The route's default horizon (``routes.forecast``), which a query without ``h`` asks for.
DEFAULT_H = 12
_WHOLE = re.compile(r"[1-9][0-9]{0,2}")
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?")


def forecast_key(
    series: str, h: int, level: Sequence[int] | None, threshold: Sequence[float] | None
) -> Hashable:
    """The response-cache key of a validated ``GET /v1/forecast``."""
    return ("get", series, h, tuple(level or ()), tuple(threshold or ()))


def _plain_key(query_string: bytes) -> Hashable | None:
    """:func:`forecast_key` of a query written plainly, else None (the route decides)."""
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params.setdefault(name, []).append(value)
    series, h = params.get("series", []), params.get("h", [str(DEFAULT_H)])
    level, threshold = params.get("level", []), params.get("threshold", [])
    if (
        len(series) != 1
        or len(h) != 1
        or not all(_WHOLE.fullmatch(v) for v in (*h, *level))
        or not all(_DECIMAL.fullmatch(v) for v in threshold)
    ):
        return None
    return forecast_key(series[0], int(h[0]), [int(v) for v in level], list(map(float, threshold)))


class EdgeCacheMiddleware:
    """Answers a cached ``GET /v1/forecast`` directly.

    Args:
        app: the wrapped app.
        served: returns the bundle being served (or None).
        route: the forecast route, recorded in the scope so metrics name it.
    """

    def __init__(self, app: ASGIApp, served: Callable[[], Served | None], route: object):
        self.app = app
        self.served = served
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == PATH:
            served = self.served()
            key = _plain_key(scope["query_string"]) if served is not None else None
            body = served.responses.get(key) if key is not None else None
            if body is not None:
                scope["route"] = self.route
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
