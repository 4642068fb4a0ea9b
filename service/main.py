"""The FastAPI app: a factory and a lifespan that loads the champion bundle.

Nothing loads at import; ``uvicorn --factory service.main:create_app`` (what ``encounters
serve`` runs) builds the app in each worker, and its lifespan loads the model, starts the poll
and stops it on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

import forecasting
from service import errors, openapi
from service.deps import API_KEY_HEADER, KeyGuardMiddleware, require_api_key
from service.edge import EdgeCacheMiddleware
from service.observability import (
    REQUEST_ID_HEADER,
    Metrics,
    ObservabilityMiddleware,
    install_request_id_logging,
)
from service.registry import ModelRegistry
from service.routes import (
    counterfactual,
    decompose,
    forecast,
    health,
    interventions,
    metrics,
    models,
    page,
    sensitivity,
    series,
)
from service.settings import Settings, get_settings
from service.validators import ValidatorsMiddleware

log = logging.getLogger("service")
V1 = "/v1"

DESCRIPTION = """
Monthly forecasts and counterfactuals of U.S. southwest-border encounters from the registered
champion model (one MLflow model version: every series' chosen model, calibrated intervals).

- Levels are percents and must be among the bundle's calibrated levels (`GET /v1/models`).
- Errors are `application/problem+json`. Unknown series answer 404 with close matches; a request
  outside this schema, or one it accepts that cannot be answered as asked (a month outside the
  served data, an event outside the series' scope), 422 naming the field and what is accepted;
  503 while no model is loaded.
- This schema is the served version's: its calibrated levels, horizon, series and catalog ids.
- Threshold probabilities come from the model's sample paths mapped onto the calibrated intervals
  (`exceedance_method: sample_paths`), or, for models that cannot simulate, from a lognormal
  fitted to the calibrated bounds (`lognormal`).
- With `ENCOUNTERS_API_KEYS` set, every path but `/health` needs an `X-API-Key` header
  (`ENCOUNTERS_OPEN_METRICS` / `ENCOUNTERS_OPEN_DOCS` open `/metrics` / the docs and page).
  Every response carries `X-Request-ID` (sent, or made up).
- Refits, sensitivity and uncached counterfactuals and decompositions run in their own bounded
  executor: when it is full they answer 429 with `Retry-After`.
- Answers that change only with the model version carry `ETag` and `Cache-Control`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    install_request_id_logging(settings.log_level)
    registry = ModelRegistry(settings, app.state.metrics)
    app.state.registry = registry
    # Loading takes seconds (download, unpickle, warm): off the event loop.
    await run_in_threadpool(registry.start)
    try:
        yield
    finally:
        registry.stop()
        Metrics.worker_exit()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` defaults to the environment's (``get_settings``)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Border encounters forecasts",
        version=forecasting.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs is the page router's, from vendored files; ReDoc would load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    errors.install(app)

    # The forecast router first: routes are matched in order, and it carries the load.
    templates: dict[int, str] = {}
    # Without keys the schema declares no key header: requests need none.
    guard = [Depends(require_api_key)] if settings.api_keys else []
    for module in (forecast, counterfactual, series, interventions, models, decompose, sensitivity):
        app.include_router(module.router, prefix=V1, dependencies=guard)
        templates.update({id(r): V1 + r.path for r in module.router.routes})
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(page.router)
    openapi.install(
        app, lambda: getattr(app.state, "registry", None) and app.state.registry.current
    )
    static = resources.files("service").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    # Middleware runs outermost-last-added: request id and metrics, then CORS, then the cache
    # validators, then the API key, then the edge cache, so cached answers get CORS headers, an
    # ETag, a request id and a count like any other, and need the key.
    forecast_route = next(r for r in forecast.router.routes if r.path == "/forecast")
    app.add_middleware(
        EdgeCacheMiddleware,
        served=lambda: getattr(app.state, "registry", None) and app.state.registry.current,
        route=forecast_route,
    )
    if settings.api_keys:
        app.add_middleware(KeyGuardMiddleware, settings=settings)
    app.add_middleware(
        ValidatorsMiddleware,
        served=lambda: getattr(app.state, "registry", None) and app.state.registry.current,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, REQUEST_ID_HEADER, "Content-Type"],
            expose_headers=[REQUEST_ID_HEADER],
        )
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics, templates=templates)
    return app
