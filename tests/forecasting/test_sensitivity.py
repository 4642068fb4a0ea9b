"""Shifted catalogs and onset sensitivity."""

from __future__ import annotations

import datetime as dt

import pytest

from forecasting.errors import ScenarioError
from forecasting.frame import (
    AIC,
    CLOSEST_REGRESSOR,
    EFFECT,
    MONTHS_APART,
    ONSET,
    STATUS,
)
from forecasting.interventions import design_matrix
from forecasting.models import SARIMAX
from forecasting.sensitivity import onset_sensitivity, shifted_catalog
from tests.forecasting.fitted_series import USBP, default_catalog, series

GROUP = "mx_enforcement_2023_12"
SURGE = "mx_enforcement_surge_2023_12"


def test_shifting_a_group_moves_every_member_with_its_end():
    catalog = default_catalog()
    moved, ids = shifted_catalog(catalog, GROUP, -1)
    assert sorted(ids) == sorted(e.id for e in catalog.events if e.group == GROUP)
    assert moved.get(SURGE).start == dt.date(2023, 11, 22)
    assert moved.get("us_mx_washington_meeting_2024").start == dt.date(2023, 12, 19)
    assert moved.get("mx_inm_funding_halt_2023") == catalog.get("mx_inm_funding_halt_2023")
    pulse, _ = shifted_catalog(catalog, "mx_inm_funding_halt_2023", 2)
    assert (
        pulse.get("mx_inm_funding_halt_2023").start,
        pulse.get("mx_inm_funding_halt_2023").end,
    ) == (dt.date(2024, 2, 1), dt.date(2024, 2, 22))


def test_shifting_a_grouped_event_moves_only_that_event():
    catalog = default_catalog()
    moved, ids = shifted_catalog(catalog, SURGE, 1)
    assert ids == [SURGE]
    assert moved.get(SURGE).start == dt.date(2024, 1, 22)
    assert moved.get("us_mx_mexico_city_meeting_2023").start == dt.date(2023, 12, 27)
    with pytest.raises(ScenarioError, match="did you mean"):
        shifted_catalog(catalog, "mx_enforcement_2023_1", 1)


def test_onset_sensitivity_refits_with_the_dates_moved():
    y, _ = series(USBP)

    def factory():
        # Non-seasonal and every regressor kept: about a second a fit.
        return SARIMAX(orders=(((0, 1, 1), (0, 0, 0, 0)),), min_t=0)

    table = onset_sensitivity(factory, y, default_catalog(), USBP, GROUP, shifts=(-1, 0, 1))
    assert list(table.index) == [-1, 0, 1]
    assert list(table[ONSET]) == ["2023-11-22", "2023-12-22", "2024-01-22"]
    assert list(table.columns) == [
        ONSET,
        EFFECT,
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
        STATUS,
        AIC,
        CLOSEST_REGRESSOR,
        MONTHS_APART,
    ]
    # September 2023's surge of Mexican enforcement starts three months before December's.
    assert table.loc[-1, CLOSEST_REGRESSOR] == "mx_enforcement_2023_09"
    assert list(table[MONTHS_APART]) == [2, 3, 4]
    X = design_matrix(default_catalog(), USBP, y.index[0], y.index[-1])
    at_catalog_dates = factory().fit(y, X).effects().loc[GROUP, EFFECT]
    assert table.loc[0, EFFECT] == pytest.approx(at_catalog_dates)
    assert (table[STATUS] == "kept").all()
    assert table[AIC].notna().all()


def test_onset_sensitivity_needs_a_regressor_of_the_series():
    y, _ = series(USBP)
    with pytest.raises(ScenarioError, match="not a regressor of southwest/usbp"):
        onset_sensitivity(SARIMAX, y, default_catalog(), USBP, "mx_visa_venezuela_2022")
