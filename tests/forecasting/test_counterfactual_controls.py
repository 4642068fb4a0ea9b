"""The ``controls`` counterfactual method on real series: which series qualify, what the method
recovers, and what it refuses or hands to ``regressor``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from forecasting.counterfactual import (
    CONTROLS,
    PRE_PERIOD,
    REGRESSOR,
    CounterfactualEngine,
    panel_candidates,
)
from forecasting.counterfactual.donors import MAX_CONTROLS, ControlQuestion, disjoint
from forecasting.data import ObservationStore
from forecasting.errors import DataError, ScenarioError
from forecasting.frame import control_column
from forecasting.interventions import Scenario, design_matrix, load_catalog
from forecasting.interventions.scope import parse_series_key
from forecasting.models import SARIMAX
from tests.controls_note import listed_controls
from tests.forecasting.fitted_series import VENEZUELA, default_catalog, sarimax

SURGE = Scenario.from_data({"remove": [{"event": "mx_enforcement_2023_12"}]})
PAROLE = Scenario.from_data({"remove": [{"event": "us_venezuela_parole_2022"}]})
DEL_RIO = "southwest/usbp/sector=del-rio"
LAREDO = "southwest/usbp/sector=laredo"


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> pd.DataFrame:
    """The embedded snapshot's panel (an empty store serves it)."""
    return ObservationStore(tmp_path_factory.mktemp("store")).panel()


@pytest.fixture(scope="module")
def candidates(panel) -> dict[str, pd.Series]:
    return panel_candidates(panel)


@pytest.fixture(scope="module")
def venezuela(candidates):
    f = sarimax(VENEZUELA)
    return CounterfactualEngine(f.model, f.y, f.X, f.catalog, VENEZUELA, candidates=candidates)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (DEL_RIO, LAREDO, True),
        (DEL_RIO, "southwest/usbp/citizenship=mexico", False),
        ("southwest/usbp", DEL_RIO, False),
        ("southwest/usbp", "southwest/ofo", True),
        ("southwest/usbp", "southwest/cbp", False),
        ("southwest/usbp", "northern/usbp", True),
        ("southwest/cbp/citizenship=mexico", "southwest/usbp/citizenship=guatemala", True),
        ("southwest/cbp/citizenship=mexico", "southwest/usbp/citizenship=mexico", False),
        ("southwest/usbp/family=family-units", "southwest/cbp/demographic=family-units", False),
        ("southwest/usbp/family=family-units", "southwest/cbp/demographic=single-adults", True),
    ],
)
def test_disjoint_series_count_no_encounter_in_common(a, b, expected):
    assert disjoint(parse_series_key(a), parse_series_key(b)) is expected
    assert disjoint(parse_series_key(b), parse_series_key(a)) is expected


def test_controls_are_disjoint_untouched_and_chosen_before_the_change(candidates):
    catalog = default_catalog()
    y_pre = candidates[VENEZUELA].loc["2014-10":"2022-09"]
    keys, excluded = ControlQuestion(
        catalog, VENEZUELA, PAROLE, candidates, y_pre, pd.Timestamp("2023-03-01")
    ).choose()
    assert 0 < len(keys) <= MAX_CONTROLS
    moved = {e.id for e in catalog.members("chnv_2022")}
    own = parse_series_key(VENEZUELA)
    for key in keys:
        assert key.startswith("southwest/usbp/citizenship=") and key != VENEZUELA
        assert disjoint(own, parse_series_key(key))
        assert not moved & {e.id for e in catalog.in_scope(key)}
    assert excluded["in the scope of an event the scenario changes"] >= 3  # cuba, haiti, ...
    assert excluded["counts encounters the series counts"] > 0
    # Months after the change rank nothing: any values in range give one choice ...
    end = pd.Timestamp("2023-03-01")
    choices = [
        ControlQuestion(
            catalog, VENEZUELA, PAROLE, _flat_after(candidates, q), y_pre, end
        ).choose()[0]
        for q in (0.1, 0.5, 0.9)
    ]
    assert choices[0] == choices[1] == choices[2]
    assert len(choices[0]) == MAX_CONTROLS
    # ... and a control that leaves its range would make the counterfactual an extrapolation.
    later = {k: v.where(v.index < "2022-10", v * 1000 + 1000) for k, v in candidates.items()}
    none, why = ControlQuestion(catalog, VENEZUELA, PAROLE, later, y_pre, end).choose()
    assert none == []
    assert why["outside its range of the months before the change"] >= len(keys)


def _flat_after(candidates, q: float) -> dict[str, pd.Series]:
    """Each candidate at its ``q`` quantile of 2014-10..2022-09 from 2022-10 on."""
    return {
        k: v.where(v.index < "2022-10", v.loc["2014-10":"2022-09"].quantile(q))
        for k, v in candidates.items()
    }


def test_a_control_leaving_its_range_is_not_chosen(candidates, tmp_path):
    """The pre-registered study's divergence: Nicaraguans from 2019-02, when Brazilians and
    Ecuadorians rose tenfold over their range of the eight years before (5.6e16 encounters)."""
    nicaragua = "southwest/usbp/citizenship=nicaragua"
    catalog = load_catalog(
        user_files=[_injected(tmp_path, "2019-02-01", {"citizenships": ["nicaragua"]})]
    )
    y_pre = candidates[nicaragua].loc["2011-02":"2019-01"]
    end = pd.Timestamp("2020-01-01")
    keys, excluded = ControlQuestion(catalog, nicaragua, INJECTED, candidates, y_pre, end).choose()
    assert "southwest/usbp/citizenship=brazil" not in keys
    assert excluded["outside its range of the months before the change"] >= 2
    for key in keys:
        pre, span = candidates[key].loc["2011-02":"2019-01"], candidates[key].loc["2019-02":end]
        assert pre.min() <= span.min() and span.max() <= pre.max()


INJECTED = Scenario.from_data({"remove": [{"event": "injected"}]})


def _injected(folder, start: str, scope: dict, actor: str = "other"):
    """A catalog file with one step event ``injected`` from ``start``."""
    event = {
        "id": "injected",
        "name": "injected step",
        "start": start,
        "actor": actor,
        "kind": "other",
        "scope": scope,
        "shape": "step",
        "expected_sign": -1,
        "source": "test",
    }
    path = folder / "injected.yaml"
    path.write_text(yaml.safe_dump({"events": [event]}))
    return path


def test_controls_recover_an_effect_that_its_controls_would_have_hidden(candidates, tmp_path):
    """A series that moves with Laredo's (real counts, its own noise), a -30 % step injected
    from 2010-06: the controls carry the real movement, so the interval holds the injected effect
    and is far narrower than pre_period's, which has only the series' own past."""
    laredo = candidates[LAREDO].loc["2002-06":"2011-05"]
    rng = np.random.default_rng(3)
    y = (laredo * 0.5 * np.exp(rng.normal(0, 0.05, len(laredo)))).round()
    onset = pd.Timestamp("2010-06-01")
    injected = y.where(y.index < onset, (y * 0.7).round())
    truth = float((injected - y).sum())
    catalog = load_catalog(user_files=[_injected(tmp_path, "2010-06-01", {"sectors": ["del-rio"]})])
    X = design_matrix(catalog, DEL_RIO, y.index[0], y.index[-1])
    model = SARIMAX().fit(injected, X)
    engine = CounterfactualEngine(model, injected, X, catalog, DEL_RIO, candidates=candidates)
    results = {
        m: engine.run(INJECTED, "2010-06", "2011-05", m, [95]) for m in (CONTROLS, PRE_PERIOD)
    }
    controls = results[CONTROLS]
    assert controls.method == CONTROLS
    error = controls.totals["effect"] / truth - 1
    assert abs(error) < 0.25
    assert controls.totals["effect_lo_95"] <= truth <= controls.totals["effect_hi_95"]
    widths = {
        m: (r.totals["effect_hi_95"] - r.totals["effect_lo_95"]) / abs(truth)
        for m, r in results.items()
    }
    assert widths[CONTROLS] < widths[PRE_PERIOD] / 2
    note = next(n for n in controls.notes if n.startswith("controls:"))
    assert LAREDO in note and "s.e." in note
    # Laredo's weight near its true elasticity of 1, with its uncertainty in the draws.
    fit = engine.controls_engine(
        onset, tuple(listed_controls(controls.notes)), pd.Timestamp("2011-05-01")
    )
    j = fit.reg.index(control_column(LAREDO))
    assert 0.6 < fit.reg.beta[j] < 1.4
    assert fit.beta_draws[:, j].std() > 0


def test_the_seeds_question_is_answered_from_flows_upstream_of_mexico(venezuela):
    """Every encounter series is in the scope of Mexico's surge; Darién's transits and Honduras's
    entries are counted before migrants reach Mexico, so they are the controls."""
    result = venezuela.run(SURGE, "2024-01", "2024-06", CONTROLS, [95])
    assert result.method == CONTROLS
    chosen = listed_controls(result.notes)
    assert chosen and all(k.startswith(("panama/darien/", "honduras/inm/")) for k in chosen)
    note = next(n for n in result.notes if n.startswith("controls:"))
    # Fitted on the months every control was observed in: Darién's monthly figures start 2020.
    fitted = note.split("fitted on ")[1][:16]
    assert fitted.endswith("..2023-11") and fitted[:7] >= "2020-01"
    assert result.totals["effect_lo_95"] < result.totals["effect"] < result.totals["effect_hi_95"]


def test_an_event_that_may_act_upstream_has_no_upstream_controls(candidates, tmp_path):
    """A pandemic or a third country's visa rule ("other") may act on Darién too: without a
    qualifying encounter series the answer is the regressor method's, and says why."""
    path = _injected(tmp_path, "2024-01-01", "all")
    catalog = load_catalog(user_files=[path])
    f = sarimax(VENEZUELA)
    X = design_matrix(catalog, VENEZUELA, f.y.index[0], f.y.index[-1])
    model = SARIMAX().fit(f.y, X)
    engine = CounterfactualEngine(model, f.y, X, catalog, VENEZUELA, candidates=candidates)
    controls = engine.run(INJECTED, "2024-01", "2024-06", CONTROLS, [95])
    regressor = engine.run(INJECTED, "2024-01", "2024-06", REGRESSOR, [95])
    assert controls.method == REGRESSOR
    assert controls.totals == regressor.totals
    note = next(n for n in controls.notes if n.startswith("controls:"))
    assert "no series qualifies as a control" in note
    assert "an upstream indicator, but the scenario changes an event that may act upstream" in note
    assert "in the scope of an event the scenario changes" in note
    assert note.endswith("answered by method regressor instead")


def test_a_qualifying_question_lists_its_controls_and_weights(venezuela):
    result = venezuela.run(PAROLE, "2022-10", "2023-03", CONTROLS, [80, 95])
    assert result.method == CONTROLS
    assert result.to_dict()["method"] == CONTROLS
    note = next(n for n in result.notes if n.startswith("controls:"))
    assert "fitted on 2015-01..2022-09" in note
    assert note.count("southwest/usbp/citizenship=") >= 1
    assert result.totals["effect_lo_95"] <= result.totals["effect_lo_80"]
    assert result.totals["effect_hi_80"] <= result.totals["effect_hi_95"]


def test_controls_answers_observed_months_and_no_additions(venezuela):
    with pytest.raises(ScenarioError, match="method controls answers months the series"):
        venezuela.run(PAROLE, "2024-06", "2025-03", CONTROLS)
    add = Scenario.from_data(
        {"add": [{"id": "again", "shape": "step", "start": "2024-03", "effect_pct": -20}]}
    )
    with pytest.raises(ScenarioError, match="method controls estimates an event's effect"):
        venezuela.run(add, "2024-03", "2024-06", CONTROLS)


def test_too_few_months_before_the_change_is_a_data_error(venezuela):
    # The fit starts 2015-01: 24 months before this event, 36 needed.
    early = Scenario.from_data({"remove": [{"event": "us_trump_effect_2017"}]})
    with pytest.raises(DataError, match="controls needs at least 36 observed months before 2017"):
        venezuela.run(early, "2017-01", "2017-06", CONTROLS)


def test_an_engine_without_candidates_answers_with_the_regressor_method():
    f = sarimax(VENEZUELA)
    engine = CounterfactualEngine(f.model, f.y, f.X, f.catalog, VENEZUELA)
    result = engine.run(PAROLE, "2022-10", "2023-03", CONTROLS)
    assert result.method == REGRESSOR
    assert any("no candidate series were given" in n for n in result.notes)
