"""Dependencies shared by the routes, as ``Annotated`` aliases.

They are ``async def`` on purpose: they only read attributes, and FastAPI runs a plain ``def``
dependency in the thread pool, which cost ~50 us per dependency per request on the hot path.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from service.errors import NoModelError
from service.registry import ModelRegistry
from service.served import Served
from service.settings import Settings

API_KEY_HEADER = "X-API-Key"


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (``create_app``: given, or ``get_settings()``)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


async def get_served(registry: RegistryDep) -> Served:
    """The bundle being served, taken once per request (a swap does not change it mid-request)."""
    served = registry.current
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
    if key is None or not any(
        hmac.compare_digest(key.encode(), k.encode()) for k in settings.api_keys
    ):
        raise HTTPException(
            status_code=401,
            detail=f"missing or unknown API key: send one of the server's keys in {API_KEY_HEADER}",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
