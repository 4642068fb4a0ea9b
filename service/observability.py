"""Request ids in every log line, and Prometheus metrics.

One pure ASGI middleware does both (a ``BaseHTTPMiddleware`` costs a task per request, which the
forecast hot path cannot afford). The request id comes from the ``X-Request-ID`` header when it
is a sane token, else a new one; it is echoed in the response and held in a context variable that
:class:`RequestIdFilter` copies onto every log record, so uvicorn's access lines carry it too.

Metrics live in a registry per app; when ``PROMETHEUS_MULTIPROC_DIR`` is set (``encounters
serve --workers N`` sets it), every worker writes to that folder and ``/metrics`` sums them.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from contextvars import ContextVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode()
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NO_REQUEST = "-"
UNMATCHED = "unmatched"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

_request_id: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)


def current_request_id() -> str:
    """The id of the request being handled, or ``-`` outside one."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record passing a handler (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


def install_request_id_logging(level: str = "INFO") -> None:
    """Put the filter on every handler of the root and uvicorn loggers (idempotent).

    ``encounters serve`` passes uvicorn a log config whose formats show the id (``LOG_FORMAT``);
    a server started another way keeps its own formats, and its records still carry the id.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                handler.addFilter(RequestIdFilter())
    logging.getLogger("service").setLevel(level)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The service's Prometheus metrics (one set per app)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # In multiprocess mode the values go to files and are collected at scrape time.
        self.registry = None if self.multiprocess else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "encounters_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "encounters_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template.",
            ["method", "route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=r,
        )
        self.model_version = Gauge(
            "encounters_model_version",
            "Registered model version being served (0: none).",
            ["model", "alias"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_loaded = Gauge(
            "encounters_model_loaded_timestamp_seconds",
            "When the served bundle was loaded (Unix time).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.degraded = Gauge(
            "encounters_degraded",
            "1 while /health reports degraded.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.swaps = Counter(
            "encounters_model_swaps_total", "Bundles swapped in after the alias moved.", registry=r
        )
        self.poll_errors = Counter(
            "encounters_model_poll_errors_total",
            "Polls of the registry that failed (unreachable, or the new version would not load).",
            registry=r,
        )

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST

    @staticmethod
    def worker_exit() -> None:
        if multiprocess_dir():
            multiprocess.mark_process_dead(os.getpid())


class ObservabilityMiddleware:
    """Request id in and out, and request count / latency by route template.

    Args:
        app: the wrapped app.
        metrics: where to count.
        templates: full path templates of routes included under a prefix, by ``id(route)``
            (a route included through a prefixed router knows only its own part of the path).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: dict[int, str] | None = None):
        self.app = app
        self.metrics = metrics
        self.templates = templates or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                text = value.decode("latin-1")
                rid = text if _SANE_ID.match(text) else None
                break
        rid = rid or uuid.uuid4().hex
        # Not reset afterwards: each request runs in its own task (its own context), and the
        # error handler and uvicorn's error log, which run after this returns, still need it.
        _request_id.set(rid)
        header = (_HEADER, rid.encode())
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = self.templates.get(id(route)) or getattr(route, "path", None) or UNMATCHED
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
