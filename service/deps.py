"""Dependencies shared by the routes, as ``Annotated`` aliases.

They are ``async def`` on purpose: they only read attributes, and FastAPI runs a plain ``def``
dependency in the thread pool, which cost ~50 us per dependency per request on the hot path.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import NoModelError, problem
from service.registry import ModelRegistry
from service.served import Served
from service.settings import Settings

API_KEY_HEADER = "X-API-Key"
_API_KEY = API_KEY_HEADER.lower().encode()
KEY_REFUSED = f"missing or unknown API key: send one of the server's keys in {API_KEY_HEADER}"


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (``create_app``: given, or ``get_settings()``)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


async def served_now(registry: ModelRegistry) -> Served | None:
    """The bundle being served; an empty worker looks at the alias first, off the event loop."""
    return registry.current or await run_in_threadpool(registry.ensure_served)


async def get_served(registry: RegistryDep) -> Served:
    """The bundle being served, taken once per request (a swap does not change it mid-request)."""
    served = await served_now(registry)
    if served is None:
        reasons = registry.degraded_reasons()
        raise NoModelError(
            (reasons[0] if reasons else "no model loaded")
            + ": train and register one (`encounters train`), or wait for the next poll"
        )
    return served


ServedDep = Annotated[Served, Depends(get_served)]

_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Required when the server sets ENCOUNTERS_API_KEYS.",
)


async def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(_api_key)] = None
) -> None:
    """401 unless the request carries one of the configured keys (no keys: open)."""
    if not settings.api_keys:
        return
    if key is None or not known_key(key.encode(), [k.encode() for k in settings.api_keys]):
        raise HTTPException(
            status_code=401, detail=KEY_REFUSED, headers={"WWW-Authenticate": API_KEY_HEADER}
        )


def known_key(key: bytes, keys: Sequence[bytes]) -> bool:
    return any(hmac.compare_digest(key, k) for k in keys)


class KeyGuardMiddleware:
    """With API keys set, every path needs one but ``/health``, and ``/metrics`` or the docs
    (``/docs``, ``/openapi.json``, the page and its ``/static`` files) when a setting opens them.
    The ``/v1`` routes also declare the key (``require_api_key``), so their schema shows it.
    """

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.keys = [k.encode() for k in settings.api_keys]
        self.open = {"/health"}
        self.open_prefixes: tuple[str, ...] = ()
        if settings.open_metrics:
            self.open.add("/metrics")
        if settings.open_docs:
            self.open |= {"/docs", "/openapi.json", "/"}
            self.open_prefixes = ("/static/",)

    def _allowed(self, scope: Scope) -> bool:
        path = scope["path"]
        if path in self.open or path.startswith(self.open_prefixes):
            return True
        key = next((v for k, v in scope["headers"] if k == _API_KEY), None)
        return key is not None and known_key(key, self.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        refused = problem(401, {"detail": KEY_REFUSED}, {"WWW-Authenticate": API_KEY_HEADER})
        await refused(scope, receive, send)
