"""The design matrix of a series: which columns, and their values."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forecasting.frame import DS
from forecasting.interventions import design_matrix, load_catalog, month_index
from tests.forecasting.interventions.conftest import event

VENEZUELA = "southwest/usbp/citizenship=venezuela"


def ids_scoped(catalog, predicate) -> set[str]:
    return {e.regressor for e in catalog.events if predicate(e.scope)}


def test_venezuela_holds_venezuela_scoped_and_all_scope_events_and_no_cuba_only_ones(catalog):
    X = design_matrix(catalog, VENEZUELA, "2000-01", "2025-12")
    venezuela = ids_scoped(catalog, lambda s: "venezuela" in s.citizenships)
    everywhere = ids_scoped(catalog, lambda s: s.is_all)
    cuba_only = {
        e.id
        for e in catalog.events
        if "cuba" in e.scope.citizenships and "venezuela" not in e.scope.citizenships
    }
    assert {"mx_visa_venezuela_2022", "chnv_2022", "us_venezuela_removal_flights_2023"} <= venezuela
    assert cuba_only >= {"ni_visa_free_cubans_2021", "mx_accepts_t42_cuba_nicaragua_2022"}
    assert venezuela | everywhere <= set(X.columns)
    assert not cuba_only & set(X.columns)
    # Field Operations only: not a Border Patrol series; Border Patrol only: it is.
    assert "cbp_one_2023" not in X.columns and "securing_border_2024" in X.columns


def test_design_matrix_is_monthly_float_in_unit_interval(catalog):
    X = design_matrix(catalog, VENEZUELA, "2019-01", "2025-12")
    assert X.index.equals(pd.date_range("2019-01-01", "2025-12-01", freq="MS", name=DS))
    assert X.index.freqstr == "MS"
    assert (X.dtypes == np.float64).all()
    assert ((X >= 0) & (X <= 1)).all().all()


def test_columns_depend_on_the_series_not_the_months(catalog):
    past = design_matrix(catalog, VENEZUELA, "2000-01", "2000-03")
    future = design_matrix(catalog, VENEZUELA, "2031-01", "2031-12")
    assert list(past.columns) == list(future.columns) == list(catalog.regressors(VENEZUELA))
    assert future["title42_2020"].eq(0).all()  # ended May 2023
    assert future["mx_visa_venezuela_2022"].eq(1).all()  # still in force


def test_day_precise_start_is_the_fraction_of_the_month(catalog):
    X = design_matrix(catalog, VENEZUELA, "2021-12", "2022-02")
    # Mexico's visa requirement from 21 Jan 2022: 11 of January's 31 days.
    assert X["mx_visa_venezuela_2022"].tolist() == pytest.approx([0, 11 / 31, 1])


def test_group_column_is_its_strongest_in_scope_member(catalog):
    X = design_matrix(catalog, "southwest/usbp", "2023-11", "2024-02")
    # Mexico's surge from about 22 Dec 2023 leads the Dec 27 talks and the Jan 2024 meeting.
    assert X["mx_enforcement_2023_12"].tolist() == pytest.approx([0, 10 / 31, 1, 1])
    assert "mx_enforcement_surge_2023_12" not in X.columns


def test_group_starts_per_series_with_its_in_scope_members(catalog):
    # Venezuelans: Mexico took Title 42 returns from 12 Oct 2022; Cubans: from 5 Jan 2023.
    venezuela = design_matrix(catalog, VENEZUELA, "2022-10", "2023-01")["chnv_2022"]
    cuba = design_matrix(catalog, "southwest/usbp/citizenship=cuba", "2022-10", "2023-01")
    assert venezuela.tolist() == pytest.approx([20 / 31, 1, 1, 1])
    assert cuba["chnv_2022"].tolist() == pytest.approx([0, 0, 0, 27 / 31])


@pytest.mark.parametrize(
    ("key", "present", "absent"),
    [
        ("southwest/usbp", {"title42_2020", "securing_border_2024"}, {"chnv_2022", "cbp_one_2023"}),
        ("southwest/ofo", {"cbp_one_2023"}, {"securing_border_2024"}),
        ("southwest/cbp", {"cbp_one_2023", "securing_border_2024"}, {"mx_visa_venezuela_2022"}),
        ("southwest/usbp/sector=del-rio", {"us_operation_streamline_2005"}, set()),
        ("southwest/usbp/sector=laredo", set(), {"us_operation_streamline_2005"}),
        (
            "southwest/usbp/family=unaccompanied-children",
            {"us_daca_announcement_2012", "us_t42_uac_injunction_2020"},
            {"mx_tamaulipas_family_refusal_2021"},
        ),
        ("southwest/cbp/demographic=family-units", {"mx_tamaulipas_family_refusal_2021"}, set()),
        ("southwest/cbp/citizenship=mexico", {"us_mx_nonessential_travel_restriction_2020"}, set()),
    ],
)
def test_scope_decides_the_columns(catalog, key, present, absent):
    columns = set(design_matrix(catalog, key, "2020-01", "2020-01").columns)
    assert present <= columns and not absent & columns


def test_month_bounds_accept_dates_and_reject_reversed_or_bad_ones(catalog):
    assert month_index(dt.date(2024, 1, 15), "2024-03-31").strftime("%Y-%m").tolist() == [
        "2024-01",
        "2024-02",
        "2024-03",
    ]
    with pytest.raises(ValueError, match="end 2023-01 is before start 2024-01"):
        design_matrix(catalog, VENEZUELA, "2024-01", "2023-01")
    with pytest.raises(ValueError, match="start must be a month such as '2019-06'; got 'soon'"):
        design_matrix(catalog, VENEZUELA, "soon", "2024-01")
    with pytest.raises(ValueError, match="unknown component"):
        design_matrix(catalog, "southwest/bp", "2024-01", "2024-01")


def test_event_in_a_user_file_reaches_the_design_matrix_of_its_series(write_catalog):
    path = write_catalog(
        [
            event(
                id="mx_visa_colombia_2030", start="2030-01-15", scope={"citizenships": ["colombia"]}
            )
        ]
    )
    catalog = load_catalog([path])
    colombia = design_matrix(catalog, "southwest/usbp/citizenship=colombia", "2029-12", "2030-02")
    assert colombia["mx_visa_colombia_2030"].tolist() == pytest.approx([0, 17 / 31, 1])
    assert "mx_visa_colombia_2030" not in design_matrix(catalog, VENEZUELA, "2030-01", "2030-01")
