"""``encounters interventions``, invoked directly as a click command."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from forecasting.interventions import ENV_CATALOG
from pipelines.interventions_cmd import interventions
from tests.forecasting.interventions.conftest import event

VENEZUELA = "southwest/usbp/citizenship=venezuela"


@pytest.fixture
def run(home, monkeypatch):
    monkeypatch.delenv(ENV_CATALOG, raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(interventions, list(args), env=env)

    return invoke


def test_lists_the_catalog_as_a_table_by_start_date(run):
    result = run()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["START", "END", "ID", "GROUP", "SHAPE", "SCOPE"]
    assert lines[1].split()[:3] == ["2001-06-04", "-", "mx_plan_sur_2001"]
    assert len(lines) == 1 + 57 + 1
    assert lines[-1].startswith(
        "57 events, 39 regressor columns (catalog: the default catalog (default_catalog.yaml))"
    )
    row = next(line for line in lines if "us_mx_joint_declaration_2019" in line).split()
    assert row == [
        "2019-06-07",
        "-",
        "us_mx_joint_declaration_2019",
        "jun2019_mx_enforcement",
        "step",
        "all",
    ]


def test_json_prints_each_event_with_its_fields(run):
    records = json.loads(run("--json").output)
    assert len(records) == 57
    by_id = {r["id"]: r for r in records}
    assert set(by_id["us_title42_expulsions_2020"]) >= {
        "id",
        "name",
        "start",
        "end",
        "actor",
        "kind",
        "scope",
        "shape",
        "group",
        "source",
    }
    assert by_id["us_title42_expulsions_2020"] | {"name": "", "source": "", "note": ""} == {
        "id": "us_title42_expulsions_2020",
        "name": "",
        "start": "2020-03-21",
        "end": "2023-05-11",
        "actor": "US",
        "kind": "legal_regime",
        "scope": "all",
        "shape": {"type": "step"},
        "group": "title42_2020",
        "expected_sign": 0,
        "source": "",
        "note": "",
    }
    assert by_id["mx_visa_venezuela_2022"]["scope"] == {"citizenships": ["venezuela"]}
    assert by_id["us_mpp_launch_2019"]["shape"] == {"type": "ramp", "ramp_months": 6}


def test_series_lists_the_events_in_its_scope(run):
    ids = {r["id"] for r in json.loads(run("--series", VENEZUELA, "--json").output)}
    assert {"mx_visa_venezuela_2022", "us_title42_expulsions_2020"} <= ids
    assert not {"ni_visa_free_cubans_2021", "us_cbp_one_scheduling_2023"} & ids
    text = run("--series", VENEZUELA).output
    assert f"in scope for {VENEZUELA}" in text.splitlines()[-1]


def test_event_in_a_user_file_is_listed_for_the_series_it_scopes(run, tmp_path):
    path = tmp_path / "mine.yaml"
    new = event(id="mx_visa_colombia_2030", scope={"citizenships": ["colombia"]})
    path.write_text(yaml.safe_dump({"events": [new]}))
    env = {ENV_CATALOG: str(path)}
    colombia = run("--series", "southwest/usbp/citizenship=colombia", env=env).output
    assert "mx_visa_colombia_2030" in colombia
    assert "mx_visa_colombia_2030" not in run("--series", VENEZUELA, env=env).output


def test_unknown_series_exits_1_with_close_keys(run):
    result = run("--series", "southwest/usbp/citizenship=venezuala")
    assert result.exit_code == 1
    assert "unknown series 'southwest/usbp/citizenship=venezuala'; did you mean " in result.output
    assert VENEZUELA in result.output


def test_bad_user_file_exits_1_with_the_reason(run, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"events": [event(scope={"citizenships": ["venezuala"]})]}))
    result = run(env={ENV_CATALOG: str(path)})
    assert result.exit_code == 1
    assert "matches none of the" in result.output and "did you mean venezuela" in result.output
