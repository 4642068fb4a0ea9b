"""One model answers everywhere: `encounters forecast`, `counterfactual`, `decompose` and
`sensitivity` answer from the registered champion, exactly as the API does, and name the version."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipelines.counterfactual_cmd import counterfactual, decompose, sensitivity
from pipelines.forecast_cmd import forecast
from tests.service.conftest import CATALOG_SCENARIO, EVENT, NAIVE_KEY, SECTOR_KEY, UCM_KEY

pytestmark = pytest.mark.slow


@pytest.fixture
def api(in_process):
    """The API's side: the real app in-process, loading the same champion from the store."""
    return in_process


@pytest.fixture
def cli(champion, monkeypatch):
    monkeypatch.setenv("ENCOUNTERS_HOME", str(champion.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.tracking_uri)
    runner = CliRunner()

    def invoke(command, *args: str) -> dict:
        result = runner.invoke(command, [*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    return invoke


def _same(cli_answer: dict, api_answer: dict, keys: tuple[str, ...]) -> None:
    assert cli_answer["model_version"] == api_answer["model_version"] == "1"
    assert cli_answer["refit"] is False
    for key in keys:
        assert cli_answer[key] == pytest.approx(api_answer[key]), key


@pytest.mark.parametrize("key", [SECTOR_KEY, NAIVE_KEY])
def test_forecast_cli_and_api_give_the_same_answer(cli, api, key):
    ours = cli(forecast, key, "--h", "6", "--level", "80")
    theirs = api.get("/v1/forecast", params={"series": key, "h": 6, "level": 80}).json()
    assert ours == theirs
    assert ours["model_version"] == "1" and len(ours["rows"]) == 6


def test_forecast_text_and_refusals(champion, monkeypatch):
    monkeypatch.setenv("ENCOUNTERS_HOME", str(champion.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.tracking_uri)
    result = CliRunner().invoke(forecast, [SECTOR_KEY, "--h", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["month", "kind", "mean", "80%", "95%"]
    assert lines[-1].startswith(
        f"{SECTOR_KEY}: model naive of border-encounters version 1 (champion); last observed "
        "2024-11, as of 2024-11"
    )
    bad = CliRunner().invoke(forecast, [SECTOR_KEY, "--level", "90"])
    assert bad.exit_code == 1
    assert "level [90] is not calibrated; accepted levels are [80, 95]" in bad.output
    unknown = CliRunner().invoke(forecast, ["southwest/usbp/sector=yumaa"])
    assert unknown.exit_code == 1 and SECTOR_KEY in unknown.output


def test_counterfactual_cli_and_api_give_the_same_answer(cli, api):
    scenario = json.dumps(CATALOG_SCENARIO)
    window = {"start": "2024-01", "end": "2024-06"}
    ours = cli(
        counterfactual, UCM_KEY, "--scenario", scenario, "--start", "2024-01", "--end", "2024-06"
    )
    theirs = api.post(
        "/v1/counterfactual",
        json={"series": UCM_KEY, "scenario": CATALOG_SCENARIO, "level": [80, 95], **window},
    ).json()
    _same(ours, theirs, ("totals", "summary", "notes", "level"))
    assert [r["counterfactual"] for r in ours["rows"]] == pytest.approx(
        [r["counterfactual"] for r in theirs["rows"]]
    )


def test_decompose_cli_and_api_give_the_same_answer(cli, api):
    ours = cli(decompose, UCM_KEY, "--month", "2024-01")
    theirs = api.post(
        "/v1/decompose", json={"series": UCM_KEY, "month": "2024-01", "level": [80, 95]}
    ).json()
    _same(ours, theirs, ("change", "summary"))
    assert [c["change"] for c in ours["components"]] == pytest.approx(
        [c["change"] for c in theirs["components"]]
    )


def test_sensitivity_cli_and_api_give_the_same_answer(cli, api):
    ours = cli(sensitivity, UCM_KEY, "--event", EVENT, "--shift", "1")
    theirs = api.post(
        "/v1/sensitivity",
        json={"series": UCM_KEY, "event": EVENT, "shifts": [1], "level": [80, 95]},
    ).json()
    _same(ours, theirs, ("summary",))
    assert [r["effect"] for r in ours["rows"]] == pytest.approx(
        [r["effect"] for r in theirs["rows"]]
    )


def test_the_text_output_names_the_version(champion, monkeypatch):
    monkeypatch.setenv("ENCOUNTERS_HOME", str(champion.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion.tracking_uri)
    result = CliRunner().invoke(decompose, [UCM_KEY, "--month", "2024-01"])
    assert result.exit_code == 0, result.output
    assert (
        result.output.splitlines()[-1] == "model: border-encounters version 1 (champion), its UCM"
    )
