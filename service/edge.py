"""An edge cache for ``GET /v1/forecast``: a repeated request is answered before routing.

A forecast request that has been answered once (status 200, through the full route: parameter
validation, API key, bundle lookup) leaves its JSON bytes in the served bundle's edge cache,
keyed by its exact query string. The same query string is then answered from there without
FastAPI's routing and parameter parsing, which otherwise cost most of a request's time. The
cache belongs to a :class:`~service.served.Served`, so a swap starts a new, empty one; the API key
is checked on every request, cached or not.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from service.served import Served
from service.settings import Settings

PATH = "/v1/forecast"
_API_KEY = b"x-api-key"


class EdgeCacheMiddleware:
    """Answers a cached ``GET /v1/forecast`` query string directly.

    Args:
        app: the wrapped app.
        served: returns the bundle being served (or None).
        settings: the app's settings (API keys).
        route: the forecast route, recorded in the scope so metrics name it.
    """

    def __init__(
        self,
        app: ASGIApp,
        served: Callable[[], Served | None],
        settings: Settings,
        route: object,
    ):
        self.app = app
        self.served = served
        self.keys = [k.encode() for k in settings.api_keys]
        self.route = route

    def _authorised(self, scope: Scope) -> bool:
        if not self.keys:
            return True
        for name, value in scope["headers"]:
            if name == _API_KEY:
                return any(hmac.compare_digest(value, k) for k in self.keys)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == PATH:
            served = self.served()
            body = served.edge.get(scope["query_string"]) if served is not None else None
            if body is not None and self._authorised(scope):
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
