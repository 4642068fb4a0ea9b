"""Decomposition of a month's change on a real series: (a) southwest/usbp, Dec 2023 -> Jan 2024."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecasting.decompose import DEFAULT_DRAWS, decompose
from forecasting.errors import DataError
from forecasting.frame import (
    CHANGE,
    COMPONENT,
    LOG_CHANGE,
    OTHER_INTERVENTIONS,
    REMAINDER,
    SEASONAL,
    TOTAL,
    TREND,
)
from tests.forecasting.fitted_series import USBP, sarimax, ucm

SURGE = "mx_enforcement_2023_12"


@pytest.fixture(scope="module")
def fitted():
    return ucm(USBP)


@pytest.fixture(scope="module")
def january(fitted):
    return decompose(fitted.model, fitted.y, fitted.X, fitted.catalog, USBP, "2024-01")


def test_january_2024_splits_into_season_trend_the_surge_and_the_rest(january):
    frame = january.frame.set_index(COMPONENT)
    components = list(frame.index)
    assert components[:2] == [SEASONAL, TREND]
    assert components[-2:] == [REMAINDER, TOTAL]
    assert SURGE in components
    assert list(frame.columns) == [
        "name",
        CHANGE,
        "change_lo_80",
        "change_hi_80",
        "change_lo_95",
        "change_hi_95",
        LOG_CHANGE,
    ]
    # OHSS/CBP: 249,740 in December 2023, 124,215 in January 2024.
    assert january.values == (249740.0, 124215.0)
    assert frame.loc[TOTAL, CHANGE] == -125525.0
    parts = frame.drop(index=TOTAL)
    # Every draw adds up, so the means do too.
    assert parts[CHANGE].sum() == pytest.approx(-125525.0, abs=1e-6)
    assert parts[LOG_CHANGE].sum() == pytest.approx(np.log(124216 / 249741))
    # Mexico's enforcement after the December 27 talks lowered encounters.
    assert frame.loc[SURGE, CHANGE] < 0
    assert frame.loc[SURGE, "change_lo_95"] < frame.loc[SURGE, CHANGE]
    assert frame.loc[SURGE, "name"] == (
        "Mexico's enforcement surge after the December 27, 2023 talks"
    )


def test_a_regressor_contributes_its_change_times_its_coefficient(fitted, january):
    # change = L * (x_b - x_a) * beta, L the logarithmic mean of the counts plus one.
    dx = fitted.X.loc["2024-01-01", SURGE] - fitted.X.loc["2023-12-01", SURGE]
    assert dx == pytest.approx(21 / 31)
    # On the coefficient's scale: Dec 2023 had 10 of 31 days of the surge, read multiplicatively.
    linear = fitted.model.linearise(fitted.X)
    dx = linear.loc["2024-01-01", SURGE] - linear.loc["2023-12-01", SURGE]
    assert dx != pytest.approx(21 / 31)
    weight = -125525 / np.log(124216 / 249741)
    # The mean over the coefficient draws decompose makes first from its seed (0).
    reg = fitted.model.regression()
    beta = reg.draws(DEFAULT_DRAWS, np.random.default_rng(0))[:, reg.index(SURGE)].mean()
    row = january.frame.set_index(COMPONENT).loc[SURGE]
    assert row[CHANGE] == pytest.approx(weight * dx * beta, rel=1e-9)


def test_summary_is_one_paragraph_with_the_figures(january):
    summary = january.summary
    assert summary.startswith(
        "Between December 2023 and January 2024 southwest/usbp encounters fell from 249,740 "
        "to 124,215 (−125,525). Of this, the seasonal pattern accounts for "
    )
    assert f"({SURGE}) −" in summary
    assert "remains unexplained." in summary and "\n" not in summary
    assert summary.count("95 % interval") == len(january.frame) - 1


def test_year_over_year_compares_with_the_same_month_a_year_before(fitted):
    result = decompose(fitted.model, fitted.y, fitted.X, fitted.catalog, USBP, "2024-01", "year")
    assert (f"{result.compared_to:%Y-%m}", result.vs) == ("2023-01", "year")
    frame = result.frame.set_index(COMPONENT)
    assert frame[CHANGE].drop(index=TOTAL).sum() == pytest.approx(frame.loc[TOTAL, CHANGE])
    assert {SURGE, "us_circumvention_lawful_pathways_2023"} <= set(frame.index)


def test_tiny_regressor_changes_are_summed_into_one_row(fitted):
    # By January 2019 the 2017 decay moves by 0.008 a month; MPP's ramp starts (0.016).
    result = decompose(fitted.model, fitted.y, fitted.X, fitted.catalog, USBP, "2019-01")
    components = list(result.frame[COMPONENT])
    assert OTHER_INTERVENTIONS in components and "mpp_2019" in components
    assert "us_trump_effect_2017" not in components
    assert any(
        f"{OTHER_INTERVENTIONS} sums" in n and "us_trump_effect_2017" in n for n in result.notes
    )


def test_json_has_the_documented_fields(january):
    data = json.loads(january.to_json())
    assert set(data) == {
        "series",
        "month",
        "compared_to",
        "vs",
        "level",
        "from",
        "to",
        "change",
        "components",
        "summary",
        "notes",
    }
    assert (data["month"], data["compared_to"], data["change"]) == ("2024-01", "2023-12", -125525)
    assert data["components"][-1]["component"] == TOTAL


def test_bad_requests_say_what_is_accepted(fitted):
    args = (fitted.model, fitted.y, fitted.X, fitted.catalog, USBP)
    with pytest.raises(DataError, match="outside the fitted months"):
        decompose(*args, "2015-01")
    with pytest.raises(DataError, match="month must be a month"):
        decompose(*args, "January")
    with pytest.raises(ValueError, match="vs must be one of"):
        decompose(*args, "2024-01", vs="quarter")
    with pytest.raises(DataError, match="the series the model was fitted on"):
        decompose(
            fitted.model, fitted.y.iloc[1:], fitted.X.iloc[1:], fitted.catalog, USBP, "2024-01"
        )
    arima = sarimax(USBP)
    with pytest.raises(NotImplementedError, match="needs a structural model"):
        decompose(arima.model, arima.y, arima.X, arima.catalog, USBP, "2024-01")
