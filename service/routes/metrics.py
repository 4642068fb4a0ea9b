"""``/metrics``: Prometheus exposition (request counts and latency by route, model version)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics of this server (all workers when PROMETHEUS_MULTIPROC_DIR is set)."""
    body, content_type = request.app.state.metrics.exposition()
    return Response(body, media_type=content_type)
