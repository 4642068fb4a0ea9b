"""API keys and CORS, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.service.conftest import NAIVE_KEY, Server

pytestmark = pytest.mark.slow

ORIGIN = "http://charts.example.test"
KEY = {"X-API-Key": "alpha-key"}


@pytest.fixture(scope="module")
def guarded(champion, tmp_path_factory):
    srv = Server(
        champion.home,
        tmp_path_factory.mktemp("guarded"),
        ENCOUNTERS_API_KEYS="alpha-key, beta-key",
        ENCOUNTERS_CORS_ORIGINS=ORIGIN,
        ENCOUNTERS_POLL_SECONDS="0",
    )
    yield srv
    srv.stop()


def test_v1_needs_one_of_the_keys(guarded):
    url = f"{guarded.url}/v1/forecast"
    params = {"series": NAIVE_KEY}
    missing = httpx.get(url, params=params)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    assert httpx.get(url, params=params, headers={"X-API-Key": "gamma"}).status_code == 401
    ok = httpx.get(url, params=params, headers={"X-API-Key": "beta-key"})
    assert ok.status_code == 200 and ok.json()["series"] == NAIVE_KEY


def test_only_health_is_open(guarded):
    assert httpx.get(f"{guarded.url}/health").status_code == 200
    for path in ("/metrics", "/", "/docs", "/openapi.json", "/static/app.js", "/v1/models"):
        refused = httpx.get(f"{guarded.url}{path}")
        assert refused.status_code == 401, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert "X-API-Key" in refused.json()["detail"]
        assert httpx.get(f"{guarded.url}{path}", headers=KEY).status_code == 200, path
    schemes = httpx.get(f"{guarded.url}/openapi.json", headers=KEY).json()["components"][
        "securitySchemes"
    ]
    assert any(s.get("name") == "X-API-Key" and s["in"] == "header" for s in schemes.values())


def test_settings_open_the_metrics_and_the_docs(champion, tmp_path):
    srv = Server(
        champion.home,
        tmp_path,
        ENCOUNTERS_API_KEYS="alpha-key",
        ENCOUNTERS_OPEN_METRICS="true",
        ENCOUNTERS_OPEN_DOCS="true",
        ENCOUNTERS_POLL_SECONDS="0",
    )
    try:
        for path in ("/health", "/metrics", "/", "/docs", "/openapi.json"):
            assert httpx.get(f"{srv.url}{path}").status_code == 200, path
        assert httpx.get(f"{srv.url}/v1/models").status_code == 401
    finally:
        srv.stop()


def test_cors_allows_the_configured_origin_only(guarded):
    preflight = httpx.options(
        f"{guarded.url}/v1/forecast",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(
        f"{guarded.url}/v1/forecast",
        headers={"Origin": "http://elsewhere.test", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers
    simple = httpx.get(f"{guarded.url}/health", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_cached_answers_still_need_the_key_and_carry_cors_headers(guarded):
    url, params = f"{guarded.url}/v1/forecast", {"series": NAIVE_KEY, "h": 5}
    headers = {"X-API-Key": "alpha-key", "Origin": ORIGIN}
    first = httpx.get(url, params=params, headers=headers)
    again = httpx.get(url, params=params, headers=headers)  # from the edge cache
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert again.headers["access-control-allow-origin"] == ORIGIN
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert httpx.get(url, params=params).status_code == 401
    assert httpx.get(url, params=params, headers={"X-API-Key": "alpha"}).status_code == 401
