"""Every route's logic, in-process against the real app serving the tiny champion.

What only a running server shows (workers, log lines) is in ``test_server.py``.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.controls_note import listed_controls
from tests.service.conftest import CATALOG_SCENARIO, EVENT, NAIVE_KEY, SECTOR_KEY, UCM_KEY

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def api(in_process):
    """These tests' client: the in-process app (conftest's ``api`` is the real server's)."""
    return in_process


def test_health_names_the_served_version_and_data(api, champion):
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["degraded"] is False and body["reason"] is None
    model = body["model"]
    assert (model["name"], model["version"], model["alias"], model["source"]) == (
        "border-encounters",
        "1",
        "champion",
        "tracking",
    )
    assert model["run_id"]
    assert body["data"]["newest_month"] == "2025-08"
    assert body["data"]["experiment"] == "service-test"
    assert (champion.home / "serving" / "border-encounters" / "current.json").is_file()


def test_series_lists_the_served_series_and_what_they_answer(api):
    body = api.get("/v1/series").json()
    assert body["model_version"] == "1"
    by_key = {s["series"]: s for s in body["series"]}
    assert set(by_key) == {NAIVE_KEY, SECTOR_KEY, UCM_KEY}
    assert by_key[UCM_KEY]["model"] == "ucm"
    assert by_key[UCM_KEY]["counterfactual"] and by_key[UCM_KEY]["decompose"]
    assert not by_key[NAIVE_KEY]["counterfactual"]
    assert by_key[NAIVE_KEY]["history_end"] == "2025-08"
    # The indicators held beside them, apart, with their publication lags.
    indicators = {s["series"]: s for s in body["indicators"]}
    presented = indicators["mexico/inm/presented/citizenship=venezuela"]
    assert (presented["history_start"], presented["history_end"]) == ("2018-01", "2025-04")
    assert presented["publication_lag_months"] == 2
    assert presented["sources"] == ["irreg_mexico_nat.rda"]
    assert not set(indicators) & set(by_key)


def test_series_history_has_provenance_and_keys_keep_their_slashes(api):
    body = api.get(f"/v1/series/{SECTOR_KEY}").json()
    assert body["series"] == SECTOR_KEY and body["served"] is True
    first, last = body["rows"][0], body["rows"][-1]
    assert set(first) == {"ds", "y", "source", "vintage", "filled"}
    assert first["ds"] == "1999-10-01" and first["source"].startswith("ohss")
    assert last["ds"] == "2024-11-01"
    # A key the store holds but the model does not serve: history, marked not served.
    other = api.get("/v1/series/southwest/usbp/sector=tucson").json()
    assert other["served"] is False and other["model_version"] is None


def test_unknown_series_is_404_with_close_matches(api):
    response = api.get("/v1/series/southwest/usbp/sector=yumaa")
    assert response.status_code == 404
    body = response.json()
    assert body["series"] == "southwest/usbp/sector=yumaa"
    assert SECTOR_KEY in body["close"]
    response = api.get("/v1/forecast", params={"series": "southwest/usbpp"})
    assert response.status_code == 404
    assert NAIVE_KEY in response.json()["close"]


def test_interventions_catalog_and_in_scope_for_a_series(api):
    everything = api.get("/v1/interventions").json()
    assert everything["series"] is None and everything["count"] == len(everything["events"])
    scoped = api.get("/v1/interventions", params={"series": UCM_KEY}).json()
    assert 0 < scoped["count"] <= everything["count"]
    # EVENT is a group: its member events act through its column.
    members = [e for e in scoped["events"] if e["regressor"] == EVENT]
    assert members and all(e["group"] == EVENT for e in members)
    starts = [e["start"] for e in scoped["events"]]
    assert starts == sorted(starts)
    assert api.get("/v1/interventions", params={"series": "nowhere"}).status_code == 404


def test_models_give_each_series_its_model_metrics_and_run(api):
    body = api.get("/v1/models").json()
    assert body["version"] == "1" and body["level"] == [80, 95] and body["max_h"] == 36
    entries = {s["series"]: s for s in body["series"]}
    assert entries[UCM_KEY]["model"] == "ucm" and entries[UCM_KEY]["effect_models"] == ["ucm"]
    assert entries[NAIVE_KEY]["model"] in {"naive", "seasonal_naive"}
    assert entries[NAIVE_KEY]["effect_models"] == []
    for entry in entries.values():
        assert re.fullmatch(r"[0-9a-f]{32}", entry["run_id"])
        assert "rel_mae" in entry["metrics"] and "coverage_80" in entry["metrics"]


def test_forecast_rows_intervals_and_levels(api):
    body = api.get("/v1/forecast", params={"series": NAIVE_KEY, "h": 12}).json()
    assert body["series"] == NAIVE_KEY and body["model_version"] == "1"
    assert body["level"] == [80, 95] and len(body["rows"]) == 12
    assert body["rows"][0]["ds"] == "2025-09-01"
    for row in body["rows"]:
        assert row["lo_95"] <= row["lo_80"] <= row["mean"] <= row["hi_80"] <= row["hi_95"]
    only_80 = api.get("/v1/forecast", params={"series": NAIVE_KEY, "h": 3, "level": [80]}).json()
    assert set(only_80["rows"][0]) == {"ds", "kind", "mean", "lo_80", "hi_80", "intervals"}
    assert body["as_of"] == body["last_observed"] == "2025-08"
    assert {row["kind"] for row in body["rows"]} == {"forecast"}
    assert only_80["rows"][0]["hi_80"] == body["rows"][0]["hi_80"]
    # A cached answer is byte for byte the computed one.
    again = api.get("/v1/forecast", params={"series": NAIVE_KEY, "h": 12})
    assert again.json() == body


@pytest.mark.parametrize("key", [NAIVE_KEY, UCM_KEY])
def test_threshold_probabilities_agree_with_the_calibrated_intervals(api, key):
    base = api.get("/v1/forecast", params={"series": key, "h": 6}).json()
    expected = "lognormal" if key == NAIVE_KEY else "sample_paths"
    checked = 0
    for month, row in enumerate(base["rows"]):
        if row["hi_95"] < 1.01 * row["hi_80"]:
            continue  # the calibrated 80 % and 95 % bounds coincide in this month
        thresholds = [0, row["hi_80"], row["hi_95"], 1e9]
        body = api.get(
            "/v1/forecast", params={"series": key, "h": 6, "threshold": thresholds}
        ).json()
        assert body["exceedance_method"] == expected
        cells = body["rows"][month]["exceedance"]
        assert [c["threshold"] for c in cells] == thresholds
        p = [c["probability"] for c in cells]
        assert p[0] > 0.97 and p[3] < 0.001
        assert p[1] == pytest.approx(0.10, abs=0.04)
        assert p[2] == pytest.approx(0.025, abs=0.02)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"h": 0}, "h", "greater than or equal to 1"),
        ({"h": 37}, "h", "less than or equal to 36"),
        ({"h": "twelve"}, "h", "valid integer"),
        ({"level": 90}, "level", "accepted levels are [80, 95]"),
        ({"level": 100}, "level", "less than 100"),
        ({"threshold": -5}, "threshold", "greater than or equal to 0"),
        ({"threshold": "nan"}, "threshold", "finite number"),
    ],
)
def test_bad_forecast_parameters_are_422_naming_the_field(api, params, field, says):
    response = api.get("/v1/forecast", params={"series": NAIVE_KEY, **params})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["loc"][:2] == ["query", field] and says in d["msg"] for d in detail), detail


def test_post_forecast_answers_several_series_in_order(api):
    body = api.post(
        "/v1/forecast",
        json={"series": [UCM_KEY, NAIVE_KEY], "h": 4, "level": [95], "threshold": [1000]},
    ).json()
    assert body["model_version"] == "1"
    assert [f["series"] for f in body["forecasts"]] == [UCM_KEY, NAIVE_KEY]
    assert all(len(f["rows"]) == 4 for f in body["forecasts"])
    assert set(body["forecasts"][1]["rows"][0]) == {
        "ds",
        "kind",
        "mean",
        "lo_95",
        "hi_95",
        "exceedance",
        "intervals",
    }
    single = api.get("/v1/forecast", params={"series": NAIVE_KEY, "h": 4, "level": 95}).json()
    assert [r["mean"] for r in single["rows"]] == [r["mean"] for r in body["forecasts"][1]["rows"]]
    bad = api.post("/v1/forecast", json={"series": [NAIVE_KEY], "level": [50]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "level"]
    assert api.post("/v1/forecast", json={"series": ["nope"]}).status_code == 404
    assert api.post("/v1/forecast", json={"series": []}).status_code == 422


def test_counterfactual_of_a_catalog_scenario(api):
    response = api.post(
        "/v1/counterfactual",
        json={
            "series": UCM_KEY,
            "scenario": CATALOG_SCENARIO,
            "start": "2024-01",
            "end": "2024-06",
            "level": [80, 95],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["series"] == UCM_KEY and body["model_version"] == "1"
    assert body["method"] == "regressor" and (body["start"], body["end"]) == ("2024-01", "2024-06")
    assert len(body["rows"]) == 6
    row = body["rows"][0]
    for q in ("reference", "counterfactual", "effect", "cumulative_effect"):
        assert row[f"{q}_lo_95"] <= row[q] <= row[f"{q}_hi_95"]
    assert row["observed"] is True
    assert row["effect"] == pytest.approx(row["reference"] - row["counterfactual"], abs=1)
    assert body["totals"]["effect"] == pytest.approx(body["rows"][-1]["cumulative_effect"], abs=1)
    assert EVENT in body["summary"]


def test_counterfactual_of_a_scaled_event_and_an_unnumbered_factor(api):
    """``scale`` is a list of changes for events and a number for indicators: both accepted."""
    scaled = {"scale": [{"event": EVENT, "factor": 0.5}]}
    half = api.post("/v1/counterfactual", json={"series": UCM_KEY, "scenario": scaled})
    assert half.status_code == 200, half.text
    full = api.post("/v1/counterfactual", json={"series": UCM_KEY, "scenario": CATALOG_SCENARIO})
    # Half the event's intensity: a smaller effect of the same sign than removing it.
    assert 0 < abs(half.json()["totals"]["effect"]) < abs(full.json()["totals"]["effect"])
    bad = {"scale": [{"event": EVENT, "factor": "0.5"}]}
    refused = api.post("/v1/counterfactual", json={"series": UCM_KEY, "scenario": bad})
    assert refused.status_code == 422 and "JSON number" in refused.text


def test_counterfactual_pre_period_and_future_span(api):
    pre = api.post(
        "/v1/counterfactual",
        json={
            "series": UCM_KEY,
            "scenario": CATALOG_SCENARIO,
            "start": "2024-01",
            "end": "2024-03",
            "method": "pre_period",
            "level": [95],
        },
    )
    assert pre.status_code == 200, pre.text
    assert any("pre_period" in note for note in pre.json()["notes"])
    future = api.post(
        "/v1/counterfactual",
        json={
            "series": UCM_KEY,
            "scenario": {
                "add": [{"id": "repeat_surge", "shape": "step", "start": "2026-03", "like": EVENT}]
            },
            "start": "2026-01",
            "end": "2026-12",
        },
    )
    assert future.status_code == 200, future.text
    rows = future.json()["rows"]
    assert not any(r["observed"] for r in rows)


def test_counterfactual_controls_method_lists_the_controls_that_answered(api):
    """The served series are a total, a sector and a citizenship, all in the scope of Mexico's
    surge: the bundle's upstream indicators (Darién, Honduras) are the controls."""
    body = {"series": UCM_KEY, "scenario": CATALOG_SCENARIO, "start": "2024-01", "end": "2024-06"}
    controls = api.post("/v1/counterfactual", json={**body, "method": "controls"})
    assert controls.status_code == 200, controls.text
    answer = controls.json()
    assert answer["method"] == "controls"
    chosen = listed_controls(answer["notes"])
    assert chosen and all(k.startswith(("panama/darien/", "honduras/inm/")) for k in chosen)
    regressor = api.post("/v1/counterfactual", json=body).json()
    assert answer["totals"] != regressor["totals"]
    # The user's own controls, in their order, and a different answer.
    named = api.post(
        "/v1/counterfactual",
        json={**body, "method": "controls", "controls": ["honduras/inm/irregular-entries"]},
    ).json()
    assert listed_controls(named["notes"]) == ["honduras/inm/irregular-entries"]
    chart = api.get(
        "/v1/counterfactual.png",
        params={"series": UCM_KEY, "scenario": json.dumps(CATALOG_SCENARIO), "method": "controls"},
    )
    assert chart.status_code == 200 and chart.content.startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            {"method": "regressor", "controls": ["honduras/inm/irregular-entries"]},
            "method controls only",
        ),
        ({"method": "controls", "controls": ["mexico/inm/presented"]}, "is not a candidate"),
        ({"method": "controls", "controls": []}, "at least 1 item"),
        (
            {"method": "controls", "controls": ["honduras/inm/irregular-entries"] * 6},
            "at most 5 items",
        ),
    ],
)
def test_bad_named_controls_are_422_on_the_controls_field(api, extra, says):
    body = {"series": UCM_KEY, "scenario": CATALOG_SCENARIO, "start": "2024-01", "end": "2024-06"}
    response = api.post("/v1/counterfactual", json={**body, **extra})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert says in response.text
    assert any(d["loc"][:2] == ["body", "controls"] for d in problem["detail"]), problem


@pytest.mark.parametrize(
    ("payload", "field", "says", "status"),
    [
        (
            {"scenario": {"remove": [{"event": "mx_enforcement_2023_1"}]}},
            "scenario",
            "did you mean mx_enforcement_2023_12",
            422,
        ),
        # The scenario models' own checks (what JSON Schema cannot say) answer 422 too.
        ({"scenario": {"delete": []}}, "scenario", "unknown key(s) delete", 422),
        ({"scenario": {"remove": [{"event": EVENT}]}, "start": "2024-13"}, "start", "pattern", 422),
        ({"scenario": CATALOG_SCENARIO, "start": "1990-01"}, "start", "outside the months", 422),
        ({"scenario": CATALOG_SCENARIO, "level": [90]}, "level", "accepted levels", 422),
        ({"scenario": CATALOG_SCENARIO, "method": "magic"}, "method", "'regressor'", 422),
        (
            {
                "scenario": {
                    "add": [{"id": "x", "shape": "step", "start": "2026-01", "like": EVENT}]
                },
                "method": "pre_period",
            },
            "scenario",
            "Use method regressor",
            422,
        ),
    ],
)
def test_bad_counterfactual_requests_are_refused_as_problems(api, payload, field, says, status):
    response = api.post("/v1/counterfactual", json={"series": UCM_KEY, **payload})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["type"]) == (
        status,
        f"/problems/{body['title'].lower().replace(' ', '-')}",
    )
    detail = body["detail"]
    assert any(field in d["loc"] and says in d["msg"] for d in detail), detail


def test_counterfactual_on_a_model_without_regressors_says_which_series_can(api):
    response = api.post(
        "/v1/counterfactual", json={"series": NAIVE_KEY, "scenario": CATALOG_SCENARIO}
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "series"] and UCM_KEY in detail["msg"]
    unknown = api.post("/v1/counterfactual", json={"series": "x/y", "scenario": {}})
    assert unknown.status_code == 404


def test_decompose_splits_a_month_into_components(api):
    response = api.post("/v1/decompose", json={"series": UCM_KEY, "month": "2024-01"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["compared_to"] == "2023-12" and body["model_version"] == "1"
    components = {c["component"]: c for c in body["components"]}
    assert {"seasonal", "trend", "remainder", "total"} <= set(components)
    parts = sum(c["change"] for k, c in components.items() if k != "total")
    assert parts == pytest.approx(body["to"] - body["from"], abs=2)
    year = api.post("/v1/decompose", json={"series": UCM_KEY, "month": "2024-01", "vs": "year"})
    assert year.json()["compared_to"] == "2023-01"
    # A month the schema accepts but the series' data does not reach: 422.
    bad = api.post("/v1/decompose", json={"series": UCM_KEY, "month": "2030-01"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "month"]
    naive = api.post("/v1/decompose", json={"series": NAIVE_KEY, "month": "2024-01"})
    assert naive.status_code == 422 and UCM_KEY in naive.json()["detail"][0]["msg"]


def test_forecast_chart_is_a_png(api):
    response = api.get("/v1/forecast.png", params={"series": NAIVE_KEY, "h": 12})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_MAGIC) and len(response.content) > 10_000
    assert api.get("/v1/forecast.png", params={"series": "nope"}).status_code == 404
    assert api.get("/v1/forecast.png", params={"series": NAIVE_KEY, "level": 5}).status_code == 422


def test_counterfactual_chart_is_a_png(api):
    response = api.get(
        "/v1/counterfactual.png",
        params={"series": UCM_KEY, "scenario": json.dumps(CATALOG_SCENARIO)},
    )
    assert response.status_code == 200, response.text
    assert response.content.startswith(PNG_MAGIC)
    bad = api.get("/v1/counterfactual.png", params={"series": UCM_KEY, "scenario": "{remove"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "scenario"]
    path = api.get("/v1/counterfactual.png", params={"series": UCM_KEY, "scenario": "/etc/passwd"})
    assert path.status_code == 422  # text, never a file name


def test_page_and_its_static_files_need_no_network(api):
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert api.get(source).status_code == 200


def test_openapi_documents_the_routes_with_constraints(api):
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/health",
        "/v1/series",
        "/v1/series/{key}",
        "/v1/interventions",
        "/v1/models",
        "/v1/forecast",
        "/v1/counterfactual",
        "/v1/decompose",
        "/v1/forecast.png",
        "/v1/counterfactual.png",
        "/metrics",
    ):
        assert path in paths, path
    params = {p["name"]: p for p in paths["/v1/forecast"]["get"]["parameters"]}
    assert params["h"]["schema"]["maximum"] == 36 and params["h"]["schema"]["minimum"] == 1
    assert "post" in paths["/v1/forecast"]
    assert "404" in paths["/v1/forecast"]["get"]["responses"]


def test_sensitivity_refits_with_the_event_moved(api):
    request = {"series": UCM_KEY, "event": EVENT, "shifts": [1, -1], "level": [80]}
    response = api.post("/v1/sensitivity", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "1" and body["regressor"] == EVENT
    rows = body["rows"]
    assert [r["shift"] for r in rows] == [-1, 0, 1]
    assert [r["onset"] for r in rows] == ["2023-11-22", "2023-12-22", "2024-01-22"]
    for row in rows:
        assert row["status"] == "kept" and row["lo_80"] < row["effect"] < row["hi_80"]
    assert len({r["effect"] for r in rows}) == 3 and all(r["aic"] is not None for r in rows)
    assert body["summary"].startswith("At the catalog's dates (2023-12-22)")
    assert api.post("/v1/sensitivity", json=request).content == response.content
    unknown = api.post("/v1/sensitivity", json={**request, "event": "no_such_event"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "event"]
    assert "GET /v1/interventions lists the ids" in unknown.json()["detail"][0]["msg"]
    naive = api.post("/v1/sensitivity", json={**request, "series": NAIVE_KEY})
    assert naive.status_code == 422 and UCM_KEY in naive.json()["detail"][0]["msg"]
    far = api.post("/v1/sensitivity", json={**request, "shifts": [13]})
    assert far.status_code == 422


def test_intervals_are_a_declared_list_beside_the_level_keys(api):
    row = api.get("/v1/forecast", params={"series": NAIVE_KEY, "h": 2}).json()["rows"][0]
    assert row["intervals"] == [
        {"level": 80, "lo": row["lo_80"], "hi": row["hi_80"]},
        {"level": 95, "lo": row["lo_95"], "hi": row["hi_95"]},
    ]
    cf = api.post(
        "/v1/counterfactual",
        json={"series": UCM_KEY, "scenario": CATALOG_SCENARIO, "level": [95]},
    ).json()["rows"][0]
    assert cf["intervals"]["effect"] == [
        {"level": 95, "lo": cf["effect_lo_95"], "hi": cf["effect_hi_95"]}
    ]
    schema = api.get("/openapi.json").json()["components"]["schemas"]
    assert schema["ForecastRow"]["properties"]["intervals"]["items"] == {
        "$ref": "#/components/schemas/Interval"
    }
    assert set(schema["Interval"]["properties"]) == {"level", "lo", "hi"}


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/forecast?series={NAIVE_KEY}&h=3",
        f"/v1/forecast.png?series={NAIVE_KEY}&h=3",
        "/v1/models",
        "/v1/series",
        "/v1/interventions",
    ],
)
def test_answers_that_change_only_with_the_version_carry_validators(api, path):
    first = api.get(path)
    tag = first.headers["etag"]
    assert tag.startswith('"1-') and first.headers["cache-control"] == "public, max-age=60"
    again = api.get(path)  # the forecast's second answer comes from the edge cache
    assert again.headers["etag"] == tag and again.content == first.content
    unchanged = api.get(path, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    assert api.get(path, headers={"If-None-Match": '"0-other"'}).status_code == 200


def test_errors_are_problem_documents_that_keep_detail(api):
    missing = api.get("/v1/forecast", params={"series": "southwest/usbpp"})
    assert missing.headers["content-type"] == "application/problem+json"
    body = missing.json()
    assert (body["type"], body["title"], body["status"]) == (
        "/problems/not-found",
        "Not Found",
        404,
    )
    assert "southwest/usbpp" in body["detail"] and NAIVE_KEY in body["close"]
    assert "etag" not in missing.headers
    options = api.request("OPTIONS", "/v1/forecast")
    assert options.status_code == 405 and options.headers["allow"] == "GET, POST"
    assert api.post("/v1/counterfactual", content=b"{").status_code == 422
