"""``encounters serve``: the FastAPI service under uvicorn, started by import string.

The pipelines never import ``service``: uvicorn imports ``service.main:create_app`` in each
worker (``factory=True``), and the log config names the service's request-id filter by its
dotted path in the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

import click

APP = "service.main:create_app"
REQUEST_ID_FILTER = "service.observability.RequestIdFilter"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
ACCESS_FORMAT = (
    '%(asctime)s %(levelname)s access [%(request_id)s] %(client_addr)s "%(request_line)s" '
    "%(status_code)s"
)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How long a worker may take to load and warm the champion before uvicorn restarts it.
WORKER_STARTUP_SECONDS = 300


def log_config(level: str = "INFO") -> dict:
    """uvicorn's logging, with the request id on every line (``-`` outside a request)."""
    level = level.upper()
    handler = {"class": "logging.StreamHandler", "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": REQUEST_ID_FILTER}},
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": LOG_FORMAT},
            "access": {"()": "uvicorn.logging.AccessFormatter", "fmt": ACCESS_FORMAT},
        },
        "handlers": {
            "default": {**handler, "formatter": "default", "stream": "ext://sys.stderr"},
            "access": {**handler, "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "": {"handlers": ["default"], "level": level},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }


def urls(host: str, port: int) -> dict[str, str]:
    """Where the API, its docs and the chart page answer."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    base = f"http://{shown}:{port}"
    return {"API": f"{base}/v1", "docs": f"{base}/docs", "chart page": f"{base}/"}


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    access_log: bool = True,
    log_level: str = "info",
    echo: Callable[[str], None] = click.echo,
) -> None:
    """Run the service in the foreground until interrupted (what ``encounters up`` can call).

    Prints the URLs of the API, its docs and the chart page first. The model loads in each
    worker's startup; ``/health`` tells when it is served and from where.
    """
    import uvicorn

    for name, url in urls(host, port).items():
        echo(f"{name + ':':12s}{url}")
    made = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Every worker writes its metrics here and /metrics sums them.
        made = tempfile.mkdtemp(prefix="encounters-metrics-")
        os.environ[MULTIPROC_ENV] = made
    try:
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # uvloop + httptools: plain h11 with several workers stalls ~40 ms on every
            # keep-alive request (uvicorn issue #3149).
            loop="uvloop",
            http="httptools",
            log_config=log_config(log_level),
            log_level=log_level.lower(),
            access_log=access_log,
            timeout_graceful_shutdown=10,
            # uvicorn 0.54 restarts a worker that has not finished start-up within this many
            # seconds (default 5); loading and warming the bundle takes longer on a busy
            # 2-core machine, and the supervisor then kills every new worker in turn.
            timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,
        )
    finally:
        if made is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(made, ignore_errors=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 32),
    default=2,
    show_default=True,
    help="Worker processes (each loads the model).",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve(host: str, port: int, workers: int, access_log: bool, log_level: str) -> None:
    """Serve forecasts, counterfactuals and charts from the champion model.

    Settings come from ENCOUNTERS_* variables (ENCOUNTERS_API_KEYS, ENCOUNTERS_CORS_ORIGINS,
    ENCOUNTERS_POLL_SECONDS, ...) and MLFLOW_TRACKING_URI; see service/settings.py.
    """
    run_server(host, port, workers, access_log, log_level)


if __name__ == "__main__":
    serve()
