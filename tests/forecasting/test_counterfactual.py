"""Counterfactuals on real series: shapes, signs, pairing, known values and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.bundle import future_regressors
from forecasting.counterfactual import (
    CounterfactualEngine,
    counterfactual,
    counterfactual_columns,
    describe_scenario,
)
from forecasting.counterfactual.engine import WHY_REGRESSOR
from forecasting.errors import DataError, NotFittedError, ScenarioError
from forecasting.frame import DS
from forecasting.interventions import Catalog, Scenario
from forecasting.models import SARIMAX, Naive
from forecasting.models.sarimax import DEFAULT_ORDERS
from tests.forecasting.fitted_series import USBP, VENEZUELA, sarimax

SURGE = "mx_enforcement_2023_12"
REMOVE_SURGE = Scenario.from_data({"remove": [{"event": SURGE}]})


@pytest.fixture(scope="module")
def usbp():
    return sarimax(USBP)


@pytest.fixture(scope="module")
def venezuela():
    return sarimax(VENEZUELA)


@pytest.fixture(scope="module")
def engine(usbp):
    return CounterfactualEngine(usbp.model, usbp.y, usbp.X, usbp.catalog, USBP, horizon=24)


def _engine(fitted, **kwargs) -> CounterfactualEngine:
    return CounterfactualEngine(
        fitted.model, fitted.y, fitted.X, fitted.catalog, fitted.key, **kwargs
    )


def _next_month(fitted) -> pd.Timestamp:
    return fitted.y.index[-1] + pd.offsets.MonthBegin(1)


# -- (b) the past: a series without Mexico's December 2023 surge -------------------------------


def test_past_span_has_one_row_per_month_with_every_column(venezuela):
    result = counterfactual(
        venezuela.model,
        venezuela.y,
        venezuela.X,
        venezuela.catalog,
        VENEZUELA,
        REMOVE_SURGE,
        "2024-01",
        "2024-06",
    )
    frame = result.frame
    assert list(frame.columns) == counterfactual_columns([80, 95])
    assert list(frame[DS].dt.strftime("%Y-%m")) == [f"2024-0{m}" for m in range(1, 7)]
    assert frame["observed"].all()
    observed = venezuela.y.loc["2024-01":"2024-06"].to_numpy()
    for column in ("reference", "reference_lo_95", "reference_hi_95"):
        np.testing.assert_allclose(frame[column], observed)
    # The surge lowered encounters: without it there would have been more.
    assert (frame["effect"] < 0).all()
    assert (frame["counterfactual"] > frame["reference"]).all()
    np.testing.assert_allclose(frame["cumulative_effect"], frame["effect"].cumsum())
    for q in ("counterfactual", "effect", "cumulative_effect"):
        assert (frame[f"{q}_lo_95"] <= frame[f"{q}_lo_80"]).all()
        assert (frame[f"{q}_lo_80"] <= frame[f"{q}_hi_80"]).all()
        assert (frame[f"{q}_hi_80"] <= frame[f"{q}_hi_95"]).all()
    assert result.totals["effect"] == pytest.approx(frame["cumulative_effect"].iloc[-1])
    assert result.summary.startswith(
        f"{VENEZUELA}, January 2024 to June 2024, without {SURGE} (method regressor): the "
        "reference is 32,950 encounters (observed)"
    )


def test_past_counterfactual_is_the_observation_shifted_by_the_coefficient(usbp):
    # log1p(cf) = log1p(y) - x beta per draw, so E[cf] = (y + 1) exp(-x beta_hat + x² var / 2) - 1;
    # the surge is in force from 22 December: 10/31 of December, 1 after, and x is that share
    # read multiplicatively at the fitted effect theta: log1p(theta 10/31) / log1p(theta).
    result = _engine(usbp, n_paths=20000).run(REMOVE_SURGE, "2023-12", "2024-02")
    coef = usbp.model.results_.params[SURGE]
    var = usbp.model.results_.cov_params().loc[SURGE, SURGE]
    theta = np.expm1(coef)
    x = np.array([np.log1p(theta * 10 / 31) / np.log1p(theta), 1, 1])
    y = usbp.y.loc["2023-12":"2024-02"].to_numpy()
    expected = (y + 1) * np.exp(-x * coef + x**2 * var / 2) - 1
    np.testing.assert_allclose(result.frame["counterfactual"], expected, rtol=0.01)


# -- (c) the future: the surge continuing vs removed from a chosen month ------------------------


def test_future_removal_from_a_month_leaves_the_months_before_alone(engine, usbp):
    first = _next_month(usbp) + pd.DateOffset(months=3)
    scenario = Scenario.from_data({"remove": [{"event": SURGE, "start": f"{first:%Y-%m}"}]})
    frame = engine.run(scenario, f"{_next_month(usbp):%Y-%m}").frame
    assert not frame["observed"].any()
    before = frame[DS] < first
    assert len(frame) == 12 and before.sum() == 3
    assert (frame.loc[before, "effect"] == 0).all()
    assert (frame.loc[~before, "effect"] < 0).all()
    assert (frame["cumulative_effect"].diff().fillna(0) <= 0).all()


def test_default_span_starts_at_the_first_changed_month_and_lasts_a_year(engine, usbp):
    first = _next_month(usbp) + pd.DateOffset(months=2)
    scenario = Scenario.from_data({"remove": [{"event": SURGE, "start": f"{first:%Y-%m}"}]})
    frame = engine.run(scenario).frame
    assert frame[DS].iloc[0] == first
    assert len(frame) == 12


def test_future_reference_is_the_baseline_forecast(usbp):
    engine = _engine(usbp, n_paths=4000, horizon=12)
    frame = engine.run(Scenario(), f"{_next_month(usbp):%Y-%m}").frame
    X_future = future_regressors(usbp.model, usbp.X, 12)
    forecast = usbp.model.predict(12, X_future, level=[95])
    np.testing.assert_allclose(frame["reference"], forecast["mean"], rtol=0.05)


def test_future_reference_holds_events_in_force_whatever_end_the_catalog_knows(usbp):
    # As in served forecasts: a known end is asked as a removal, not built into the reference.
    end = _next_month(usbp) + pd.DateOffset(months=3)
    ended = Catalog(
        [
            e.model_copy(update={"end": end.date()}) if e.id == SURGE else e
            for e in usbp.catalog.events
        ],
        usbp.catalog.groups,
    )
    span = (f"{_next_month(usbp):%Y-%m}", f"{_next_month(usbp) + pd.DateOffset(months=11):%Y-%m}")
    held = _engine(usbp, horizon=12).run(Scenario(), *span).frame
    known = CounterfactualEngine(usbp.model, usbp.y, usbp.X, ended, USBP, horizon=12)
    np.testing.assert_allclose(known.run(Scenario(), *span).frame["reference"], held["reference"])
    removed = Scenario.from_data({"remove": [{"event": SURGE, "start": f"{end:%Y-%m}"}]})
    frame = known.run(removed, *span).frame
    assert (frame.loc[frame[DS] < end, "effect"] == 0).all()
    assert (frame.loc[frame[DS] >= end, "effect"] < 0).all()


def test_paths_are_paired_so_an_unchanged_design_has_no_effect_at_all(engine, usbp):
    scenario = Scenario.from_data({"scale": [{"event": SURGE, "factor": 1}]})
    end = _next_month(usbp) + pd.DateOffset(months=5)
    frame = engine.run(scenario, "2024-06", f"{end:%Y-%m}").frame
    assert frame["observed"].any() and not frame["observed"].all()
    for q in ("effect", "effect_lo_95", "effect_hi_95", "cumulative_effect_hi_95"):
        assert (frame[q] == 0).all()
    np.testing.assert_array_equal(frame["reference"], frame["counterfactual"])


def test_added_event_with_a_stated_effect_scales_every_path(engine, usbp):
    start = _next_month(usbp)
    add = {"id": "crackdown", "shape": "step", "start": f"{start:%Y-%m}", "effect_pct": -30}
    scenario = Scenario.from_data({"add": [add]})
    frame = engine.run(scenario).frame
    # cf + 1 = 0.7 (ref + 1) on every path, so means and quantiles map exactly.
    np.testing.assert_allclose(frame["counterfactual"] + 1, 0.7 * (frame["reference"] + 1))
    np.testing.assert_allclose(frame["effect_lo_95"], 0.3 * (frame["reference_lo_95"] + 1))
    assert describe_scenario(scenario) == f"with crackdown (step from {start:%Y-%m-%d}, -30 %)"


def test_added_event_like_a_catalog_event_borrows_its_effect(engine, usbp):
    start = _next_month(usbp)
    add = Scenario.from_data(
        {"add": [{"id": "repeat", "shape": "step", "start": f"{start:%Y-%m}", "like": SURGE}]}
    )
    remove = Scenario.from_data({"remove": [{"event": SURGE, "start": f"{start:%Y-%m}"}]})
    added, removed = engine.run(add).frame, engine.run(remove).frame
    # Adding a second surge lowers encounters (effect = reference - counterfactual > 0); on the
    # log scale it is the mirror of removing the first one, with the same coefficient draws.
    assert (added["effect"] > 0).all()
    mirror = np.log1p(added["counterfactual"]) + np.log1p(removed["counterfactual"])
    np.testing.assert_allclose(mirror, 2 * np.log1p(added["reference"]), rtol=0.02)


def test_scaling_by_zero_is_a_removal(engine):
    scale = Scenario.from_data({"scale": [{"event": SURGE, "factor": 0}]})
    pd.testing.assert_frame_equal(
        engine.run(scale, "2024-01", "2024-12").frame,
        engine.run(REMOVE_SURGE, "2024-01", "2024-12").frame,
    )


def test_results_do_not_depend_on_earlier_requests(usbp):
    span = ("2025-03", f"{_next_month(usbp) + pd.DateOffset(months=2):%Y-%m}")
    fresh = _engine(usbp, horizon=6).run(REMOVE_SURGE, *span).frame
    used = _engine(usbp, horizon=6)
    used.run(REMOVE_SURGE, "2024-01", "2024-03", method="regressor")
    pd.testing.assert_frame_equal(used.run(REMOVE_SURGE, *span).frame, fresh)


def test_json_has_the_documented_fields(engine):
    result = engine.run(REMOVE_SURGE, "2024-01", "2024-02")
    data = json.loads(result.to_json())
    assert set(data) == {
        "series",
        "scenario",
        "method",
        "level",
        "start",
        "end",
        "rows",
        "totals",
        "summary",
        "notes",
    }
    assert data["series"] == USBP and data["method"] == "regressor"
    assert data["scenario"]["remove"][0]["event"] == SURGE
    assert (data["start"], data["end"]) == ("2024-01", "2024-02")
    assert list(data["rows"][0]) == counterfactual_columns([80, 95])
    assert data["rows"][0]["ds"] == "2024-01-01"
    assert data["totals"]["effect"] < 0 and "effect_pct_lo_95" in data["totals"]


# -- pre_period ---------------------------------------------------------------------------------


def test_pre_period_forecasts_the_months_after_the_change_from_a_fit_before_it(venezuela):
    engine = _engine(venezuela)
    result = engine.run(REMOVE_SURGE, "2023-11", "2024-06", method="pre_period")
    frame = result.frame
    # November is before the first changed month (December): nothing to remove there.
    assert frame["effect"].iloc[0] == 0
    assert frame["cumulative_effect"].iloc[-1] < 0
    assert any("fitted on 2015-01..2023-11" in note for note in result.notes)
    assert any("securing_border_2024 (all zero over the fit window)" in n for n in result.notes)
    assert list(engine._pre) == [pd.Timestamp("2023-12-01")]
    # The months after the pre-period were observed: its fit forecasts them with the events as
    # dated, not held at their November values.
    pd.testing.assert_frame_equal(engine._pre[pd.Timestamp("2023-12-01")].X_all, engine.X_all)


def test_pre_period_rejects_what_it_cannot_answer(engine, usbp):
    add = Scenario.from_data(
        {"add": [{"id": "x", "shape": "step", "start": "2024-01", "effect_pct": -10}]}
    )
    with pytest.raises(ScenarioError, match="an added event has none"):
        engine.run(add, method="pre_period")
    future = Scenario.from_data(
        {"remove": [{"event": SURGE, "start": f"{_next_month(usbp):%Y-%m}"}]}
    )
    with pytest.raises(ScenarioError, match="needs observed months after the change"):
        engine.run(future, method="pre_period")


# -- notes and errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "span", "note"),
    [
        # The fit starts in 2015, after Mexico's 2014 programme began: it is 1 in every month.
        (
            "mx_programa_frontera_sur_2014",
            ("2024-01", "2024-02"),
            "mx_programa_frontera_sur_2014 has no fitted effect (constant at 1",
        ),
        # Venezuela's data end in 2024-11; the January 2025 orders are not in the reference.
        (
            "jan2025_orders",
            ("2025-02", "2025-03"),
            "jan2025_orders starts 2025-01, after the last observed month (2024-11)",
        ),
    ],
    ids=["constant-over-the-fit", "starts-after-the-data"],
)
def test_removing_an_event_without_a_fitted_effect_says_why_nothing_changes(
    venezuela, event, span, note
):
    result = _engine(venezuela).run(Scenario.from_data({"remove": [{"event": event}]}), *span)
    assert (result.frame["effect"] == 0).all()
    assert any(note in n for n in result.notes), result.notes


def test_an_event_the_fit_dropped_is_refitted_and_estimated_with_its_uncertainty(usbp):
    """A dropped regressor would claim an effect of exactly zero; the engine refits keeping it."""
    strict = SARIMAX(orders=usbp.model.orders, min_t=1e6).fit(usbp.y, usbp.X)
    assert SURGE in strict.dropped_regressors_
    engine = CounterfactualEngine(strict, usbp.y, usbp.X, usbp.catalog, USBP)
    result = engine.run(REMOVE_SURGE, "2024-01", "2024-03")
    assert "refitted keeping it" in result.notes[0] and SURGE in result.notes[0]
    refit = engine.kept_engine((SURGE,))
    kept = SARIMAX(orders=usbp.model.orders, min_t=1e6, keep=[SURGE]).fit(usbp.y, usbp.X)
    assert refit.model.exog_ == kept.exog_ == [SURGE]
    pd.testing.assert_series_equal(refit.model.results_.params, kept.results_.params)
    expected = refit.run(REMOVE_SURGE, "2024-01", "2024-03")
    pd.testing.assert_frame_equal(result.frame, expected.frame)
    effect = result.frame.set_index(DS)
    assert (effect["effect"] < 0).all()
    assert (effect["effect_lo_95"] < effect["effect"]).all()
    assert (effect["effect"] < effect["effect_hi_95"]).all()


def test_keep_must_name_columns():
    with pytest.raises(ValueError, match="keep must be a list of regressor column names"):
        SARIMAX(keep="mx_enforcement_2023_12").fit(pd.Series([1.0] * 40), None)


def test_borrowing_an_effect_the_model_did_not_estimate_is_an_error(engine):
    scenario = Scenario.from_data(
        {"add": [{"id": "x", "shape": "step", "start": "2026-01", "like": "chnv_2022"}]}
    )
    with pytest.raises(ScenarioError, match="has no effect for chnv_2022"):
        engine.run(scenario)


def test_bad_requests_say_what_is_accepted(engine, usbp):
    with pytest.raises(DataError, match="outside the months this counterfactual covers"):
        engine.run(REMOVE_SURGE, "2010-01", "2010-02")
    with pytest.raises(DataError, match="is before start"):
        engine.run(REMOVE_SURGE, "2024-05", "2024-01")
    with pytest.raises(ValueError, match="method must be one of"):
        engine.run(REMOVE_SURGE, method="causal")
    with pytest.raises(ValueError, match="level must hold percent integers"):
        engine.run(REMOVE_SURGE, level=[150])
    with pytest.raises(ScenarioError, match="did you mean"):
        engine.run(Scenario.from_data({"remove": [{"event": "mx_enforcement_2023_1"}]}))


def test_engine_checks_its_model_and_data(usbp):
    with pytest.raises(DataError, match="must end at the model's cutoff"):
        _engine_of(usbp, y=usbp.y.iloc[:-1])
    with pytest.raises(DataError, match="X is missing regressor columns"):
        _engine_of(usbp, X=usbp.X.drop(columns=SURGE))
    with pytest.raises(NotFittedError):
        _engine_of(usbp, model=SARIMAX())
    naive = Naive().fit(usbp.y)
    with pytest.raises(NotImplementedError, match="need the SARIMAX or UCM family"):
        _engine_of(usbp, model=naive)


def _engine_of(fitted, **replace) -> CounterfactualEngine:
    parts = {"model": fitted.model, "y": fitted.y, "X": fitted.X, **replace}
    return CounterfactualEngine(parts["model"], parts["y"], parts["X"], fitted.catalog, fitted.key)


def test_a_sarimax_with_several_orders_mixes_them_by_aic_weight(usbp):
    orders = (DEFAULT_ORDERS[0], ((1, 0, 0), (0, 1, 1, 12)))
    model = SARIMAX(orders=orders, min_t=0).fit(usbp.y, usbp.X)
    engine = CounterfactualEngine(model, usbp.y, usbp.X, usbp.catalog, USBP)
    members = engine.order_engines
    aic = np.array([model.aic_[o] for o in orders])
    expected = np.exp(-(aic - aic.min()) / 2) / np.exp(-(aic - aic.min()) / 2).sum()
    by_order = {(e.model.order_, e.model.seasonal_order_): w for w, e in members}
    np.testing.assert_allclose([by_order[o] for o in orders], expected)
    chosen = next(e for _, e in members if e.model is model)
    assert chosen is engine
    mixed = engine.run(REMOVE_SURGE, "2024-01", "2024-06")
    assert "effects averaged over SARIMA orders weighted by AIC" in mixed.notes[-2]
    assert mixed.notes[-1] == WHY_REGRESSOR
    single = CounterfactualEngine(model, usbp.y, usbp.X, usbp.catalog, USBP, average_orders=False)
    other = next(e for _, e in members if e is not engine)
    alone = [e.run(REMOVE_SURGE, "2024-01", "2024-06").totals["effect"] for e in (single, other)]
    assert alone[0] != pytest.approx(alone[1], rel=0.01)
    # The mixture's mean is its members' weighted mean, up to the sampling of which paths it takes.
    weights = [w for w, e in members if e is engine] + [w for w, e in members if e is other]
    assert mixed.totals["effect"] == pytest.approx(np.dot(weights, alone), rel=0.04)
