"""Scenarios as data, and their counterfactual design matrices."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from forecasting.errors import DataError, ScenarioError
from forecasting.interventions import AddedRegressor, Scenario, apply_scenario, design_matrix

VENEZUELA = "southwest/usbp/citizenship=venezuela"


@pytest.fixture(scope="module")
def X(catalog) -> pd.DataFrame:
    return design_matrix(catalog, VENEZUELA, "2023-10", "2024-06")


def apply(catalog, X, data, key=VENEZUELA):
    return apply_scenario(catalog, Scenario.from_data(data), key, X)


def test_empty_scenario_is_the_identity(catalog, X):
    result = apply_scenario(catalog, Scenario(), VENEZUELA, X)
    pd.testing.assert_frame_equal(result.X, X)
    assert result.X is not X
    assert (result.added, result.notes) == ((), ())


def test_remove_zeroes_the_event_over_its_months_only(catalog, X):
    result = apply(
        catalog, X, {"remove": [{"event": "mx_visa_venezuela_2022", "start": "2024-01"}]}
    )
    column = result.X["mx_visa_venezuela_2022"]
    assert column[:"2023-12"].eq(1).all() and column["2024-01":].eq(0).all()
    others = result.X.columns.drop("mx_visa_venezuela_2022")
    pd.testing.assert_frame_equal(result.X[others], X[others])
    assert result.notes == ()


def test_event_in_a_group_acts_on_the_group_and_the_result_says_so(catalog, X):
    result = apply(catalog, X, {"remove": [{"event": "mx_enforcement_surge_2023_12"}]})
    assert result.X["mx_enforcement_2023_12"].eq(0).all()
    assert result.notes == (
        "mx_enforcement_surge_2023_12 is modelled in group mx_enforcement_2023_12 (with "
        "us_mx_mexico_city_meeting_2023, us_mx_washington_meeting_2024); the scenario acts on "
        "the group",
    )


def test_naming_a_group_acts_on_it_without_a_note(catalog, X):
    result = apply(catalog, X, {"scale": [{"event": "mx_enforcement_2023_12", "factor": 0.5}]})
    assert result.X["mx_enforcement_2023_12"]["2024-02":].eq(0.5).all()
    assert result.notes == ()


def test_scale_multiplies_over_its_window(catalog, X):
    data = {
        "scale": [
            {
                "event": "us_venezuela_removal_flights_2023",
                "factor": 2,
                "start": "2023-11",
                "end": "2023-12",
            }
        ]
    }
    column = apply(catalog, X, data).X["us_venezuela_removal_flights_2023"]
    assert column["2023-10"].item() == pytest.approx(14 / 31)  # from 18 Oct, untouched
    assert column["2023-11":"2023-12"].eq(2).all() and column["2024-01"].item() == 1


def test_events_out_of_the_series_scope_change_nothing_and_say_so(catalog, X):
    # Cuba only; and a Cuba/Haiti/Nicaragua member of a group that is in Venezuela's scope.
    data = {"remove": [{"event": "ni_visa_free_cubans_2021"}, {"event": "us_chn_parole_2023"}]}
    result = apply(catalog, X, data)
    pd.testing.assert_frame_equal(result.X, X)
    assert result.notes == (
        f"ni_visa_free_cubans_2021 is not in scope for {VENEZUELA}; it changes nothing there",
        f"us_chn_parole_2023 is not in scope for {VENEZUELA}; it changes nothing there",
    )


def test_window_outside_the_matrix_says_nothing_changes(catalog, X):
    result = apply(catalog, X, {"remove": [{"event": "chnv_2022", "end": "2020-12"}]})
    pd.testing.assert_frame_equal(result.X, X)
    assert "no month of the design matrix falls in the first month to 2020-12" in result.notes[0]


def test_add_with_effect_pct_adds_a_column_shaped_like_a_catalog_event(catalog, X):
    data = {
        "add": [
            {
                "id": "repeat_surge",
                "shape": {"type": "ramp", "ramp_months": 2},
                "start": "2024-03-16",
                "end": "2024-05-31",
                "effect_pct": -40,
                "scope": {"citizenships": ["venezuela", "cuba"]},
            }
        ]
    }
    result = apply(catalog, X, data)
    assert list(result.X.columns) == [*X.columns, "repeat_surge"]
    assert result.X["repeat_surge"].tolist() == pytest.approx([0, 0, 0, 0, 0, 16 / 31 / 2, 1, 1, 0])
    assert result.added == (AddedRegressor("repeat_surge", -40.0, None, None),)


def test_add_like_borrows_the_fitted_effect_of_the_event_or_its_group(catalog, X):
    data = {
        "add": [
            {
                "id": "repeat_surge",
                "shape": "step",
                "start": "2024-03",
                "like": "mx_enforcement_surge_2023_12",
            }
        ]
    }
    result = apply(catalog, X, data)
    assert result.X["repeat_surge"]["2024-03":].eq(1).all()
    assert result.added == (
        AddedRegressor(
            "repeat_surge", None, "mx_enforcement_surge_2023_12", "mx_enforcement_2023_12"
        ),
    )
    assert "it borrows the group's effect" in result.notes[0]


def test_add_out_of_scope_adds_no_column(catalog, X):
    data = {
        "add": [
            {
                "id": "cuban_visa",
                "shape": "step",
                "start": "2024-03",
                "effect_pct": -10,
                "scope": {"citizenships": ["cuba"]},
            }
        ]
    }
    result = apply(catalog, X, data)
    pd.testing.assert_frame_equal(result.X, X)
    assert result.added == ()
    assert result.notes == (
        f"added event cuban_visa is not in scope for {VENEZUELA}; no column added",
    )


def test_added_like_out_of_the_series_regressors_is_noted(catalog, X):
    data = {
        "add": [{"id": "visa", "shape": "step", "start": "2024-03", "like": "mx_visa_peru_2024"}]
    }
    result = apply(catalog, X, data)
    assert result.added[0].like_regressor == "mx_visa_peru_2024"
    assert "not a regressor of southwest/usbp/citizenship=venezuela" in result.notes[0]


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            {"remove": [{"event": "mx_enforcment_surge_2023_12"}]},
            ScenarioError,
            "unknown event or group id 'mx_enforcment_surge_2023_12'; did you mean "
            "mx_enforcement_surge_2023_12",
        ),
        (
            {"add": [{"id": "chnv_2022", "shape": "step", "start": "2024-01", "effect_pct": 5}]},
            ScenarioError,
            "added event id 'chnv_2022' is already a catalog id or a column",
        ),
        (
            {"add": [{"id": "x", "shape": "step", "start": "2024-01", "like": "nope"}]},
            ScenarioError,
            "unknown event or group id 'nope'",
        ),
    ],
)
def test_scenarios_naming_unknown_or_taken_ids_are_errors(catalog, X, data, error, message):
    with pytest.raises(error, match=message):
        apply(catalog, X, data)


def test_design_matrix_must_be_monthly_and_hold_the_targets(catalog, X):
    with pytest.raises(DataError, match="indexed by month starts"):
        apply(catalog, X.reset_index(drop=True), {})
    with pytest.raises(ScenarioError, match="the design matrix has no column 'chnv_2022'"):
        apply(catalog, X.drop(columns="chnv_2022"), {"remove": [{"event": "chnv_2022"}]})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"remove": [{"event": "chnv_2022", "start": "2024-05", "end": "2024-01"}]},
            r"remove.0: end 2024-01 is before start 2024-05",
        ),
        (
            {"scale": [{"event": "chnv_2022", "factor": -1}]},
            "scale.0.factor: Input should be greater than or equal to 0",
        ),
        (
            {"add": [{"id": "x", "shape": "step", "start": "2024-01"}]},
            "give exactly one of effect_pct .* or like",
        ),
        (
            {
                "add": [
                    {"id": "x", "shape": "step", "start": "2024-01", "effect_pct": 5, "like": "y"}
                ]
            },
            "give exactly one of effect_pct",
        ),
        (
            {"add": [{"id": "x", "shape": "blip", "start": "2024-01", "effect_pct": 5}]},
            "add.0.shape: unknown shape 'blip'; accepted: step",
        ),
        (
            {"add": [{"id": "x", "shape": "step", "start": "2024-01", "effect_pct": -100}]},
            "effect_pct: Input should be greater than -100",
        ),
        (
            {"add": [{"id": "x", "shape": "step", "start": "2024-13", "effect_pct": 5}]},
            "expected a month as YYYY-MM; got '2024-13'",
        ),
        (
            {"remove": [{"event": "chnv_2022"}], "delete": []},
            r"unknown key\(s\) delete; accepted: remove, add, scale",
        ),
        (
            {
                "add": [
                    {"id": "x", "shape": "step", "start": "2024-01", "effect_pct": 1},
                    {"id": "x", "shape": "step", "start": "2024-02", "effect_pct": 1},
                ]
            },
            "added event id.s. x appear more than once",
        ),
        (
            [{"remove": "chnv_2022"}],
            "must be a mapping with keys remove, add, scale, indicators; got list",
        ),
    ],
)
def test_invalid_scenarios_say_what_is_wrong_and_what_is_accepted(data, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_data(data)


def test_scenario_reads_json_or_yaml_text_or_files(tmp_path):
    data = {
        "remove": [{"event": "chnv_2022", "start": "2024-01"}],
        "scale": [{"event": "jan2025_orders", "factor": 0.5}],
    }
    expected = Scenario.from_data(data)
    assert Scenario.from_json_or_yaml(json.dumps(data)) == expected
    yaml_text = (
        "remove:\n  - {event: chnv_2022, start: 2024-01}\n"
        "scale:\n  - {event: jan2025_orders, factor: 0.5}\n"
    )
    assert Scenario.from_json_or_yaml(yaml_text) == expected
    path = tmp_path / "what-if.yaml"
    path.write_text(yaml_text)
    assert Scenario.from_json_or_yaml(path) == Scenario.from_json_or_yaml(str(path)) == expected
    assert Scenario.from_json_or_yaml("") == Scenario()


def test_scenario_windows_read_any_day_as_its_month():
    scenario = Scenario.from_data({"remove": [{"event": "chnv_2022", "start": "2024-01-20"}]})
    assert str(scenario.remove[0].start) == "2024-01-01"


def test_unreadable_scenario_text_is_an_error():
    with pytest.raises(ScenarioError, match="scenario: not valid JSON or YAML"):
        Scenario.from_json_or_yaml('{"remove": [')
