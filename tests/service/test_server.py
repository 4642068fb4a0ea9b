"""What only a running `encounters serve` shows: log lines and metrics across its two workers."""

from __future__ import annotations

import re

import pytest

from tests.service.conftest import SECTOR_KEY

pytestmark = pytest.mark.slow


def test_request_id_is_echoed_and_in_the_log_lines(api, server):
    response = api.get("/v1/models", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    made = api.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    # A header that is not a sane token is replaced, not echoed.
    odd = api.get("/health", headers={"X-Request-ID": "a b\tc"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", odd)
    api.get("/v1/forecast", params={"series": "nope"}, headers={"X-Request-ID": "trace-404"})
    logs = server.logs()
    assert re.search(r"\[trace-abc-123\] .*GET /v1/models HTTP/1.1\" 200", logs), logs[-2000:]
    assert "[trace-404]" in logs
    assert re.search(r"\[-\] .*loaded border-encounters version 1", logs)


def test_metrics_count_requests_by_route_across_workers(api):
    for _ in range(6):
        api.get("/v1/forecast", params={"series": SECTOR_KEY})
    api.get(f"/v1/series/{SECTOR_KEY}")
    text = api.get("/metrics").text
    counts = re.findall(
        r'encounters_http_requests_total\{method="GET",route="/v1/forecast",status="200"\} (\S+)',
        text,
    )
    assert counts and float(counts[0]) >= 6
    assert 'encounters_http_request_duration_seconds_bucket{le="0.001",method="GET",' in text
    version = r'encounters_model_version\{alias="champion",model="border-encounters"\} 1'
    assert re.search(version, text)
    assert 'route="/v1/series/{key:path}",status="200"' in text
