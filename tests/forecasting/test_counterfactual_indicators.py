"""An indicator as a continuous regressor: scenarios that hold or scale it, and their errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.counterfactual import CounterfactualEngine, describe_scenario
from forecasting.errors import ScenarioError
from forecasting.frame import indicator_column
from forecasting.interventions import Scenario, load_catalog
from forecasting.models import SARIMAX
from tests.forecasting.fitted_series import ORDERS
from tests.forecasting.synthetic import encounter_series

KEY = "southwest/usbp/citizenship=venezuela"
INDICATOR = "mexico/inm/presented/citizenship=venezuela"
COLUMN = indicator_column(INDICATOR)
ELASTICITY = 0.4


@pytest.fixture(scope="module")
def fitted():
    y, _ = encounter_series(n=96, seed=3)
    rng = np.random.default_rng(5)
    presented = pd.Series(
        np.round(20_000 * np.exp(np.cumsum(rng.normal(0, 0.15, len(y))))), index=y.index
    )
    y = np.round(y * (presented / 20_000) ** ELASTICITY)
    X = pd.DataFrame({COLUMN: np.log1p(presented)}, index=y.index)
    model = SARIMAX(orders=ORDERS, min_t=0).fit(y, X)
    engine = CounterfactualEngine(model, y, X, load_catalog(), KEY, n_paths=20000)
    return model, y, X, engine


def expected(fitted, delta: np.ndarray, months: slice) -> np.ndarray:
    model, y = fitted[0], fitted[1]
    coef = model.results_.params[COLUMN]
    var = model.results_.cov_params().loc[COLUMN, COLUMN]
    return (y.loc[months].to_numpy() + 1) * np.exp(-delta * coef + delta**2 * var / 2) - 1


def test_the_fit_recovers_the_indicator_s_elasticity(fitted):
    assert fitted[0].results_.params[COLUMN] == pytest.approx(ELASTICITY, abs=0.1)
    assert fitted[0].regressors_ == [COLUMN]


def test_scaling_an_indicator_moves_the_series_by_its_elasticity(fitted):
    X, engine = fitted[2], fitted[3]
    scenario = Scenario.from_data(
        {"indicators": [{"key": INDICATOR, "scale": 0.5, "start": "2021-03", "end": "2021-05"}]}
    )
    result = engine.run(scenario, "2021-01", "2021-06")
    x = X.loc["2021-03":"2021-05", COLUMN].to_numpy()
    delta = x - np.log1p(0.5 * np.expm1(x))
    frame = result.frame.set_index("ds")
    np.testing.assert_allclose(
        frame.loc["2021-03":"2021-05", "counterfactual"],
        expected(fitted, delta, slice("2021-03", "2021-05")),
        rtol=0.01,
    )
    # Outside the window nothing moves.
    assert (frame.loc[["2021-01", "2021-02", "2021-06"], "effect"] == 0).all()
    assert "at 0.5× its count (2021-03 to 2021-05)" in describe_scenario(scenario)


def test_holding_an_indicator_at_a_month_s_level(fitted):
    X, engine = fitted[2], fitted[3]
    scenario = Scenario.from_data(
        {
            "indicators": [
                {"key": INDICATOR, "hold": "2022-11", "start": "2022-12", "end": "2023-06"}
            ]
        }
    )
    result = engine.run(scenario, "2022-12", "2023-06")
    x = X.loc["2022-12":"2023-06", COLUMN].to_numpy()
    delta = x - X.loc["2022-11-01", COLUMN]
    np.testing.assert_allclose(
        result.frame["counterfactual"],
        expected(fitted, delta, slice("2022-12", "2023-06")),
        rtol=0.01,
    )
    assert "held at its 2022-11 level" in result.summary


def test_an_indicator_the_model_was_not_fitted_with_is_refused(fitted):
    scenario = Scenario.from_data({"indicators": [{"key": "panama/darien/transits", "scale": 2}]})
    with pytest.raises(
        ScenarioError, match="was not fitted with indicator 'panama/darien/transits'"
    ):
        fitted[3].run(scenario)
    late = Scenario.from_data({"indicators": [{"key": INDICATOR, "hold": "1999-01"}]})
    with pytest.raises(ScenarioError, match="hold month 1999-01 is outside the months"):
        fitted[3].run(late)


@pytest.mark.parametrize(
    ("move", "message"),
    [
        ({"key": "southwest/usbp", "scale": 0.5}, "'southwest/usbp' is not an indicator series"),
        ({"key": INDICATOR}, "give exactly one of hold"),
        ({"key": INDICATOR, "hold": "2023-11", "scale": 2}, "give exactly one of hold"),
        ({"key": INDICATOR, "scale": -1}, "greater than or equal to 0"),
        (
            {"key": INDICATOR, "scale": 1, "start": "2024-05", "end": "2024-01"},
            "end 2024-01 is before",
        ),
        ({"key": INDICATOR, "scale": 1, "factor": 2}, "factor"),
    ],
)
def test_indicator_moves_are_validated(move, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_data({"indicators": [move]})
