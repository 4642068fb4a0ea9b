"""``ETag`` and ``Cache-Control`` on the answers that change only with the served model version.

A forecast, a chart, the model list, the served series and the catalog are functions of the
registered version (and the request), so a client may keep them for a minute and revalidate with
``If-None-Match`` after that: a 304 costs no body. The tag is the version and a digest of the
body, so a swap changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.served import Served

#: The GET routes whose answers depend on nothing but the request and the served version.
PATHS = frozenset(
    {
        "/v1/forecast",
        "/v1/forecast.png",
        "/v1/counterfactual.png",
        "/v1/models",
        "/v1/series",
        "/v1/interventions",
    }
)
#: How long a client may reuse an answer without asking: about one poll for a new champion.
MAX_AGE = 60
CACHE_CONTROL = f"public, max-age={MAX_AGE}"
_DROPPED_ON_304 = {b"content-length", b"content-type"}


def etag(version: str, body: bytes) -> str:
    return f'"{version}-{hashlib.blake2b(body, digest_size=8).hexdigest()}"'


class ValidatorsMiddleware:
    """Adds the validators to a 200 answer of :data:`PATHS`; answers 304 when the client's
    ``If-None-Match`` names the same tag.

    Args:
        app: the wrapped app (the edge cache included, so its answers get them too).
        served: returns the bundle being served (or None).
    """

    def __init__(self, app: ASGIApp, served: Callable[[], Served | None]):
        self.app = app
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        served = self.served()
        start: dict = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._answer(scope, send, start, b"".join(chunks), served)

        await self.app(scope, receive, hold)

    async def _answer(
        self, scope: Scope, send: Send, start: dict, body: bytes, served: Served | None
    ) -> None:
        if start["status"] != 200 or served is None:
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        tag = etag(served.version, body)
        validators = [(b"etag", tag.encode()), (b"cache-control", CACHE_CONTROL.encode())]
        asked = dict(scope["headers"]).get(b"if-none-match", b"").decode("latin-1")
        if tag in [t.strip() for t in asked.split(",")]:
            headers = [h for h in start["headers"] if h[0].lower() not in _DROPPED_ON_304]
            await send({**start, "status": 304, "headers": [*headers, *validators]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": [*start["headers"], *validators]})
        await send({"type": "http.response.body", "body": body})
