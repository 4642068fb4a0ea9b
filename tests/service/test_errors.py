"""API errors are 4xx problem documents of bounded size, whatever the input (in-process, the
real app on the session's champion)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.service.conftest import NAIVE_KEY, UCM_KEY

#: Generous for a few errors with their messages; the inputs below are megabytes.
MAX_BODY = 16_000


@pytest.fixture(scope="module")
def client(champion):
    settings = Settings(home=champion.home, tracking_uri=champion.tracking_uri, poll_seconds=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def post(client, path: str, text: str):
    return client.post(path, content=text, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "path, text",
    [
        ("/v1/forecast", f'{{"series": ["{NAIVE_KEY}"], "threshold": [NaN]}}'),
        ("/v1/forecast", f'{{"series": ["{NAIVE_KEY}"], "threshold": [Infinity]}}'),
        ("/v1/forecast", f'{{"series": ["{NAIVE_KEY}"], "h": -Infinity}}'),
        (
            "/v1/counterfactual",
            f'{{"series": "{UCM_KEY}", "scenario": {{"scale": '
            '[{"event": "mx_enforcement_2023_12", "factor": NaN}]}}',
        ),
        ("/v1/sensitivity", f'{{"series": "{UCM_KEY}", "event": "x", "shifts": [NaN]}}'),
    ],
)
def test_nan_and_infinity_literals_are_422(client, path, text):
    response = post(client, path, text)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["detail"]
    assert "NaN" in error["msg"] or "Infinity" in error["msg"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/forecast", {"series": ["x" * 5_000_000]}),
        ("/v1/forecast", {"series": [NAIVE_KEY], "k" * 5_000_000: 1}),
        (
            "/v1/counterfactual",
            {"series": UCM_KEY, "scenario": {"remove": [{"event": "e" * 5_000_000}]}},
        ),
        ("/v1/counterfactual", {"series": "s" * 5_000_000, "scenario": {}}),
        ("/v1/sensitivity", {"series": UCM_KEY, "event": "e" * 5_000_000}),
        ("/v1/decompose", {"series": UCM_KEY, "month": "2024-01" * 700_000}),
    ],
)
def test_422_bodies_do_not_echo_large_inputs(client, path, body):
    response = client.post(path, json=body)
    assert 400 <= response.status_code < 500, response.text[:500]
    assert len(response.content) <= MAX_BODY
    assert response.headers["content-type"] == "application/problem+json"
    json.loads(response.content)


def test_404_for_a_huge_series_key_is_bounded(client):
    response = client.get("/v1/series/" + "s" * 30_000)
    assert response.status_code == 404 and len(response.content) <= MAX_BODY
