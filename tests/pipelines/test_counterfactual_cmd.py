"""``encounters counterfactual``, ``decompose`` and ``sensitivity --refit``, invoked as click
commands.

With ``--refit`` the commands fit a model per call; these tests swap in the models fitted once per
session on 2015 onwards, except the test of the real fit. Answers from the registered champion
are tested against the API in ``tests/service/test_answers.py``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from forecasting.data import ObservationStore
from forecasting.home import encounters_home
from forecasting.interventions import ENV_CATALOG
from pipelines import counterfactual_cmd
from pipelines.counterfactual_cmd import FittedSeries, counterfactual, decompose, sensitivity
from tests.controls_note import listed_controls
from tests.forecasting import fitted_series

REMOVE = "{remove: [{event: mx_enforcement_2023_12}]}"
VENEZUELA = fitted_series.VENEZUELA
USBP = fitted_series.USBP


def _fitted(fit):
    def fitted(key: str, indicators: list[str] = ()) -> FittedSeries:
        assert not indicators, "these tests move no indicator"
        f = fit(key)
        panel = ObservationStore(encounters_home()).panel()
        return FittedSeries(f.model, f.y, f.X, f.catalog, panel=panel)

    return fitted


@pytest.fixture
def run(home, monkeypatch):
    monkeypatch.delenv(ENV_CATALOG, raising=False)
    monkeypatch.setattr(counterfactual_cmd, "_fitted_model", _fitted(fitted_series.sarimax))
    monkeypatch.setattr(counterfactual_cmd, "_fitted_structural_model", _fitted(fitted_series.ucm))
    runner = CliRunner()

    def invoke(command, *args: str):
        return runner.invoke(command, [*args, "--refit"])

    return invoke


def test_counterfactual_json_rows_carry_every_quantity_and_level(run):
    result = run(
        counterfactual,
        VENEZUELA,
        "--scenario",
        REMOVE,
        "--start",
        "2024-01",
        "--end",
        "2024-06",
        "--level",
        "90",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["series"] == VENEZUELA and data["method"] == "regressor"
    assert (data["model_version"], data["refit"]) == (None, True)
    assert data["level"] == [90]
    assert len(data["rows"]) == 6
    row = data["rows"][0]
    expected = ["ds", "observed"]
    for q in ("reference", "counterfactual", "effect", "cumulative_effect"):
        expected += [q, f"{q}_lo_90", f"{q}_hi_90"]
    assert list(row) == expected
    assert row["ds"] == "2024-01-01" and row["observed"] is True
    assert data["rows"][-1]["cumulative_effect"] < 0
    assert data["summary"].startswith(f"{VENEZUELA}, January 2024 to June 2024")


def test_counterfactual_reads_a_scenario_file_and_prints_a_table(run, tmp_path):
    path = tmp_path / "what-if.yaml"
    path.write_text("remove:\n  - event: mx_enforcement_2023_12\n    start: 2025-09\n")
    result = run(counterfactual, USBP, "--scenario", str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "month",
        "reference",
        "counterfactual",
        "95%",
        "effect",
        "95%",
        "cumulative",
        "95%",
    ]
    assert lines[1].split()[:2] == ["2025-09", "fcst"]
    assert len([line for line in lines if line.startswith("20")]) == 12
    assert any(line.startswith(f"{USBP}, September 2025 to August 2026") for line in lines)
    assert lines[-1] == (
        "model: a SARIMAX fitted now on the store's data (--refit), not the registered champion"
    )


def test_counterfactual_pre_period_method(run):
    result = run(
        counterfactual,
        VENEZUELA,
        "--scenario",
        REMOVE,
        "--start",
        "2024-01",
        "--end",
        "2024-03",
        "--method",
        "pre_period",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["method"] == "pre_period"
    assert any(note.startswith("pre_period:") for note in data["notes"])


DARIEN = "panama/darien/transits/citizenship=venezuela"
HONDURAS = "honduras/inm/irregular-entries/citizenship=venezuela"


def _controls(run, scenario: str, start: str, end: str, *named: str) -> dict:
    args = ["--scenario", scenario, "--start", start, "--end", end, "--method", "controls"]
    result = run(
        counterfactual, VENEZUELA, *args, *(a for k in named for a in ("--control", k)), "--json"
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_counterfactual_controls_method_lists_its_controls(run):
    parole = _controls(run, "{remove: [{event: us_venezuela_parole_2022}]}", "2022-10", "2023-03")
    assert parole["method"] == "controls"
    assert all(
        k.startswith("southwest/usbp/citizenship=") for k in listed_controls(parole["notes"])
    )
    # The seed's question: Mexico's surge acts on every encounter series; the flows counted
    # before migrants reach Mexico are the controls.
    surge = _controls(run, REMOVE, "2024-01", "2024-06")
    assert surge["method"] == "controls"
    assert all(
        k.startswith(("panama/darien/", "honduras/inm/")) for k in listed_controls(surge["notes"])
    )
    # Named by the user instead: used as named, in that order.
    named = _controls(run, REMOVE, "2024-01", "2024-06", DARIEN, HONDURAS)
    assert listed_controls(named["notes"]) == [DARIEN, HONDURAS]
    assert named["totals"] != surge["totals"]


def test_a_named_control_the_choice_would_exclude_is_used_and_flagged(run):
    mexicans = "southwest/usbp/citizenship=mexico"
    answer = _controls(run, REMOVE, "2024-01", "2024-06", mexicans)
    assert listed_controls(answer["notes"]) == [mexicans]
    assert any(
        n == f"controls: {mexicans} was named by the request; the automatic choice would exclude "
        "it (in the scope of an event the scenario changes)"
        for n in answer["notes"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--control", "panama/darien/nope"], "control 'panama/darien/nope' is not a candidate"),
        (["--control", VENEZUELA], f"control '{VENEZUELA}' is not a candidate"),
        (["--method", "regressor", "--control", DARIEN], "controls are named for method controls"),
        (["--control", "southwest/cbp/citizenship=mexico"], "is not observed in every month"),
    ],
)
def test_bad_named_controls_exit_with_the_reason(run, args, message):
    base = ["--scenario", REMOVE, "--start", "2024-01", "--end", "2024-06", "--method", "controls"]
    result = run(counterfactual, VENEZUELA, *base, *args)
    assert result.exit_code != 0
    assert message in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "{remove: [{event: nope}]}"], "unknown event or group id 'nope'"),
        (["--scenario", REMOVE, "--start", "2024-1"], "expected a month as YYYY-MM"),
        (["--scenario", REMOVE, "--level", "100"], "strictly between 0 and 100"),
        (["--scenario", REMOVE, "--method", "causal"], "'causal' is not one of"),
        (["--scenario", REMOVE, "--start", "1990-01"], "outside the months"),
    ],
)
def test_counterfactual_bad_input_exits_with_the_reason(run, args, message):
    result = run(counterfactual, USBP, *args)
    assert result.exit_code != 0
    assert message in result.output


def test_unknown_series_exits_1_with_close_keys(home, monkeypatch):
    monkeypatch.delenv(ENV_CATALOG, raising=False)
    result = CliRunner().invoke(
        counterfactual,
        ["southwest/usbp/citizenship=venezuala", "--scenario", REMOVE, "--refit"],
    )
    assert result.exit_code == 1
    assert "unknown series 'southwest/usbp/citizenship=venezuala'; did you mean" in result.output


def test_decompose_prints_the_split_and_the_summary(run):
    result = run(decompose, USBP, "--month", "2024-01")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["component", "change", "95%"]
    assert [line.split()[0] for line in lines[1:3]] == ["seasonal", "trend"]
    assert any(line.startswith("mx_enforcement_2023_12") for line in lines)
    assert any(
        line.startswith("Between December 2023 and January 2024 southwest/usbp encounters fell")
        for line in lines
    )


def test_decompose_json_year_over_year(run):
    result = run(decompose, USBP, "--month", "2024-01", "--vs", "year", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["month"], data["compared_to"], data["vs"]) == ("2024-01", "2023-01", "year")
    assert data["components"][-1]["component"] == "total"


def test_decompose_needs_a_month(run):
    result = run(decompose, USBP)
    assert result.exit_code == 2
    assert "Missing option '--month'" in result.output


def test_the_commands_fit_the_default_model_on_the_whole_history(home, monkeypatch):
    monkeypatch.delenv(ENV_CATALOG, raising=False)
    fitted = counterfactual_cmd._fitted_model(USBP)
    assert type(fitted.model).__name__ == "SARIMAX"
    assert fitted.y.index[0].year == 1999 and fitted.X.index.equals(fitted.y.index)
    assert fitted.model.cutoff_ == fitted.y.index[-1]


def test_sensitivity_json_and_table(run):
    result = run(sensitivity, VENEZUELA, "--event", "mx_enforcement_2023_12", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {
        *("series", "event", "regressor", "level", "rows", "summary"),
        *("model_version", "refit"),
    }
    assert data["model_version"] is None and data["refit"] is True
    assert [r["shift"] for r in data["rows"]] == [-2, -1, 0, 1, 2]
    at_catalog = data["rows"][2]
    assert at_catalog["onset"] == "2023-12-22" and at_catalog["status"] == "kept"
    assert at_catalog["effect"] < 0 and data["rows"][1]["effect"] < 0
    # Venezuela halted repatriation flights weeks later: moved a month on, the two events fall
    # in the same months and their effects are not identified, which the summary says.
    assert data["rows"][3]["closest_regressor"] == "ve_halts_repatriation_flights_2024"
    assert data["rows"][3]["months_apart"] == 0
    assert "it coincides with" in data["summary"] and "ve_halts_repatriation" in data["summary"]
    table = run(sensitivity, VENEZUELA, "--event", "mx_enforcement_2023_12", "--shift", "1")
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split()[:6] == [
        "shift",
        "onset",
        "effect",
        "%",
        "95%",
        "AIC",
    ]
    assert [line.split()[0] for line in table.output.splitlines()[1:3]] == ["+0", "+1"]
    bad = run(sensitivity, VENEZUELA, "--event", "mx_visa_venezuela_2022x")
    assert bad.exit_code == 1 and "unknown event or group id" in bad.output


def test_an_indicator_scenario_fits_the_indicator_over_its_months(home, monkeypatch):
    """The real fit (no stand-in): Mexico's presentations of Venezuelans as a regressor, from
    their first month (2018-01), held at November 2023's level."""
    scenario = json.dumps(
        {
            "indicators": [
                {
                    "key": "mexico/inm/presented/citizenship=venezuela",
                    "hold": "2023-11",
                    "start": "2023-12",
                    "end": "2024-02",
                }
            ]
        }
    )
    fits = []
    real = counterfactual_cmd._fitted_model
    monkeypatch.setattr(
        counterfactual_cmd, "_fitted_model", lambda *a: fits.append(real(*a)) or fits[-1]
    )
    result = CliRunner().invoke(
        counterfactual,
        [VENEZUELA, "--scenario", scenario, "--start", "2023-11", "--json", "--refit"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = {r["ds"][:7]: r for r in data["rows"]}
    assert rows["2023-11"]["effect"] == 0 and rows["2024-03"]["effect"] == 0
    assert all(rows[m]["effect"] != 0 for m in ("2023-12", "2024-01", "2024-02"))
    assert "held at its 2023-11 level (2023-12 to 2024-02)" in data["summary"]
    (fitted,) = fits
    assert fitted.y.index[0] == pd.Timestamp("2018-01-01")
    assert "indicator:mexico/inm/presented/citizenship=venezuela" in fitted.model.regressors_


def test_without_a_champion_the_commands_say_how_to_get_an_answer(home, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(counterfactual, [USBP, "--scenario", REMOVE])
    assert result.exit_code == 1
    assert "no border-encounters@champion" in result.output and "--refit" in result.output
