"""The API at the data's ragged edge, in-process (TestClient, the served bundle given through
``dependency_overrides``): sectors and Venezuela end in 2024-11, the total in 2025-08."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from forecasting.bundle import Bundle, SeriesModel
from forecasting.data import ObservationStore
from forecasting.frame import series_history
from forecasting.hierarchy import ShareConfig, find_splits, fit_hierarchy
from forecasting.interventions import load_catalog
from forecasting.models import Naive
from service.deps import get_registry, get_served
from service.history import History
from service.main import create_app
from service.served import ModelInfo, Served
from service.settings import Settings

TOTAL = "southwest/usbp"
SECTORS = ["southwest/usbp/sector=tucson", "southwest/usbp/sector=yuma"]
CITIZENSHIPS = ["southwest/usbp/citizenship=mexico", "southwest/usbp/citizenship=venezuela"]
SERVED = [TOTAL, *SECTORS, *CITIZENSHIPS]
UNLISTED = "southwest/usbp/sector=unlisted"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    frame = ObservationStore(home).panel()
    known = sorted(frame["unique_id"].unique())
    history = {k: series_history(frame, k, "2012-01") for k in SERVED}
    models = {
        k: SeriesModel(k, "naive", Naive().fit(y), None, y, y.to_frame().iloc[:, :0])
        for k, y in history.items()
    }
    hierarchy = fit_hierarchy(
        find_splits(SERVED, known), history, ShareConfig(), [80, 95], max_h=12
    )
    bundle = Bundle(models, load_catalog(), [80, 95], 12, {"experiment": "unit"}, hierarchy)
    info = ModelInfo("m", "3", "champion", None, "tracking", dt.datetime.now(dt.UTC), "x")
    served = Served(bundle, info).warm(counterfactuals=False)
    app = create_app(Settings(home=tmp_path_factory.mktemp("service")))
    app.dependency_overrides[get_served] = lambda: served
    # /v1/series lists the store's indicators beside the served series, from its history.
    app.dependency_overrides[get_registry] = lambda: SimpleNamespace(history=History(home))
    return TestClient(app)


def test_a_sector_is_nowcast_to_the_totals_month_then_forecast(client):
    body = client.get("/v1/forecast", params={"series": SECTORS[1], "h": 3}).json()
    assert (body["last_observed"], body["as_of"]) == ("2024-11", "2025-08")
    kinds = [row["kind"] for row in body["rows"]]
    assert kinds == ["nowcast"] * 9 + ["forecast"] * 3
    assert body["rows"][0]["ds"] == "2024-12-01" and body["rows"][-1]["ds"] == "2025-11-01"
    total = client.get("/v1/forecast", params={"series": TOTAL, "h": 3}).json()
    assert [row["kind"] for row in total["rows"]] == ["forecast"] * 3


def test_served_means_add_up_to_the_total(client):
    total = client.get("/v1/forecast", params={"series": TOTAL, "h": 12}).json()
    parts = [
        client.get("/v1/forecast", params={"series": key, "h": 12}).json()
        for key in [*SECTORS, UNLISTED]
    ]
    forecast = {r["ds"]: r["mean"] for r in total["rows"]}
    for month, mean in forecast.items():
        summed = sum(next(r["mean"] for r in p["rows"] if r["ds"] == month) for p in parts)
        assert summed == pytest.approx(mean, abs=0.2)  # rounded to 0.1 per row


def test_series_list_says_where_each_series_ends_and_its_as_of_month(client):
    body = client.get("/v1/series").json()
    by_key = {s["series"]: s for s in body["series"]}
    assert set(by_key) == {*SERVED, UNLISTED, "southwest/usbp/citizenship=unlisted"}
    yuma = by_key[SECTORS[1]]
    assert (yuma["history_end"], yuma["as_of"], yuma["nowcast_months"]) == ("2024-11", "2025-08", 9)
    assert yuma["next_month"] == "2025-09-01"
    assert by_key[UNLISTED]["model"] == "derived"
    assert by_key[CITIZENSHIPS[0]]["nowcast_months"] == 0
    indicators = {s["series"]: s for s in body["indicators"]}
    assert indicators["panama/darien/transits"]["publication_lag_months"] == 1
    assert not set(indicators) & set(by_key)


def test_thresholds_cover_the_nowcast_rows_too(client):
    body = client.get(
        "/v1/forecast", params={"series": CITIZENSHIPS[1], "h": 2, "threshold": [0, 1e9]}
    ).json()
    assert body["exceedance_method"] == "lognormal"
    probabilities = np.array([[c["probability"] for c in r["exceedance"]] for r in body["rows"]])
    assert probabilities.shape == (11, 2)
    assert (probabilities[:, 0] > 0.95).all() and (probabilities[:, 1] < 0.01).all()


def test_the_chart_shades_the_nowcast_months(client):
    response = client.get("/v1/forecast.png", params={"series": SECTORS[0], "h": 6})
    assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
