"""The panel at its newest month: splits, share models, nowcasts and coherent means on the real
store (sectors and most citizenships end in 2024-11, the total in 2025-08)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data import ObservationStore
from forecasting.frame import DS, MEAN, series_history
from forecasting.hierarchy import (
    FORECAST,
    KIND,
    NOWCAST,
    ShareConfig,
    ShareModel,
    Split,
    find_splits,
    fit_hierarchy,
    reconcile,
    share_means,
)
from forecasting.models import Naive

TOTAL = "southwest/usbp"
TUCSON, YUMA = "southwest/usbp/sector=tucson", "southwest/usbp/sector=yuma"
MEXICO = "southwest/usbp/citizenship=mexico"
VENEZUELA = "southwest/usbp/citizenship=venezuela"
#: The citizenships the CBP sbo file names; the rest is its "Other" group.
CBP_NAMED = [MEXICO] + [
    f"southwest/usbp/citizenship={c}" for c in ("guatemala", "honduras", "el-salvador")
]
FAMILIES = [
    f"southwest/usbp/family={f}"
    for f in ("family-units", "single-adults", "unaccompanied-children")
]
SERVED = [TOTAL, "southwest/cbp", "southwest/ofo", TUCSON, YUMA, *CBP_NAMED, VENEZUELA, *FAMILIES]
LEVELS = [80, 95]
MAX_H = 6
AS_OF = pd.Timestamp("2025-08-01")


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> tuple[dict[str, pd.Series], list[str]]:
    store = ObservationStore(tmp_path_factory.mktemp("home"))
    frame = store.panel()
    return {k: series_history(frame, k) for k in SERVED}, sorted(frame["unique_id"].unique())


@pytest.fixture(scope="module")
def served(panel):
    history, known = panel
    splits = find_splits(SERVED, known)
    config = ShareConfig(covariates={"sector": [MEXICO]})
    hierarchy = fit_hierarchy(splits, history, config, LEVELS, MAX_H)
    frames = {}
    for key, y in history.items():
        h = (AS_OF.year - y.index[-1].year) * 12 + AS_OF.month - y.index[-1].month + MAX_H
        frames[key] = Naive().fit(y).predict(h, level=LEVELS).rename_axis(DS).reset_index()
    return hierarchy, reconcile(hierarchy, frames, history, LEVELS, MAX_H), history


def test_the_data_define_the_splits(panel):
    _, known = panel
    splits = {
        (s.parent, s.children[0].split("/")[-1].split("=")[0]): s
        for s in find_splits(SERVED, known)
    }
    sectors = splits[(TOTAL, "sector")]
    assert sectors.method == "shares" and sectors.residual == "southwest/usbp/sector=unlisted"
    assert sectors.children == (TUCSON, YUMA, "southwest/usbp/sector=unlisted")
    families = splits[(TOTAL, "family")]
    assert families.residual is None and families.children == tuple(FAMILIES)
    cbp = splits[("southwest/cbp", "usbp")]
    assert cbp.method == "sum" and cbp.children == (TOTAL, "southwest/ofo")
    # Without ofo served, CBP is not split: a sum needs every component's forecast.
    assert all(s.parent != "southwest/cbp" for s in find_splits([TOTAL, "southwest/cbp"], known))


def test_every_series_is_served_over_the_months_after_its_hierarchys_newest(served):
    hierarchy, out, history = served
    for key, frame in out.items():
        last = history.get(key, hierarchy.children.get(key) and hierarchy.children[key].y).index[-1]
        assert frame[DS].iloc[0] == last + pd.offsets.MonthBegin(1), key
        assert frame[DS].iloc[-1] == AS_OF + pd.DateOffset(months=MAX_H), key
        assert (frame.loc[frame[DS] <= AS_OF, KIND] == NOWCAST).all()
        assert (frame.loc[frame[DS] > AS_OF, KIND] == FORECAST).all()
    tucson = out[TUCSON]
    assert (tucson[KIND] == NOWCAST).sum() == 9  # December 2024 to August 2025
    assert (out[TOTAL][KIND] == FORECAST).all()


def _means(out, history, keys, months):
    return sum(
        out[k].set_index(DS)[MEAN].reindex(months).fillna(history[k].reindex(months)) for k in keys
    )


@pytest.mark.parametrize("dimension", ["sector", "citizenship", "family"])
def test_children_add_up_to_the_total_in_every_month(served, dimension):
    hierarchy, out, history = served
    history = {**history, **{c: m.y for c, m in hierarchy.children.items()}}
    months = out[TUCSON][DS]
    total = _means(out, history, [TOTAL], months)
    children = [k for k in out if f"/{dimension}=" in k]
    np.testing.assert_allclose(_means(out, history, children, months), total, rtol=1e-9)


def test_a_nowcast_is_the_observed_total_shared_out(served):
    """In the months only the CBP file covers, the citizenships it does not name (Venezuela and
    the unlisted rest) share its "Other" group: the total less the four it names, all observed."""
    hierarchy, out, history = served
    months = pd.date_range("2024-12-01", AS_OF, freq="MS")
    other = history[TOTAL][months] - sum(history[k][months] for k in CBP_NAMED)
    assert (other > 0).all()
    venezuela = out[VENEZUELA].set_index(DS)[MEAN][months]
    unlisted = out["southwest/usbp/citizenship=unlisted"].set_index(DS)[MEAN][months]
    np.testing.assert_allclose(venezuela + unlisted, other, rtol=1e-9)
    assert ((venezuela > 0) & (venezuela < other)).all()
    tucson = out[TUCSON].set_index(DS).loc[AS_OF, MEAN]
    assert 0 < tucson < history[TOTAL][AS_OF]


def test_bands_are_nested_and_carry_the_shares_uncertainty(served):
    _, out, _ = served
    for frame in out.values():
        assert (frame["lo_95"] <= frame["lo_80"]).all() and (frame["lo_80"] <= frame[MEAN]).all()
        assert (frame[MEAN] <= frame["hi_80"]).all() and (frame["hi_80"] <= frame["hi_95"]).all()
    nowcast = out[TUCSON][out[TUCSON][KIND] == NOWCAST]
    assert (nowcast["hi_80"] > nowcast[MEAN]).all()  # shares are uncertain, the total is not


def test_cbp_is_border_patrol_plus_field_operations(served):
    _, out, _ = served
    cbp, usbp, ofo = (out[k].set_index(DS)[MEAN] for k in ("southwest/cbp", TOTAL, "southwest/ofo"))
    np.testing.assert_allclose(cbp, usbp + ofo)


def test_share_means_known_values():
    months = pd.date_range("2025-01-01", periods=2, freq="MS")
    parent = pd.Series([100.0, 200.0], index=months)
    observed = {
        "a": pd.Series([30.0], index=months[:1]),
        "b": pd.Series(dtype=float),
        "c": pd.Series(dtype=float),
    }
    logs = pd.DataFrame({"a": np.log(0.5), "b": np.log(0.25), "c": np.log(0.25)}, index=months)
    means = share_means(["a", "b", "c"], parent, observed, logs)
    # January: a observed (30); b and c share the other 70 equally. February: all by share.
    assert means.loc[months[0]].tolist() == [30.0, 35.0, 35.0]
    assert means.loc[months[1]].tolist() == [100.0, 50.0, 50.0]


def test_share_model_recovers_a_planted_covariate_effect():
    months = pd.date_range("2015-01-01", periods=96, freq="MS")
    rng = np.random.default_rng(0)
    x = pd.Series(np.cumsum(rng.normal(0, 0.1, 96)), index=months)
    share = 0.6 * x + rng.normal(0, 0.01, 96)
    model = ShareModel.fit(share, x.to_frame("x"), max_gap=3, ridge=0.0, window_months=90)
    assert model.beta[0] == pytest.approx(0.6, abs=0.02)
    later = pd.date_range(months[-1], periods=3, freq="MS")[1:]
    moved = pd.concat([x, pd.Series([x.iloc[-1] + 1.0] * 2, index=later)]).to_frame("x")
    assert model.predict(moved, later) == pytest.approx(model.level + 0.6, abs=0.02)


def test_a_split_without_a_residual_needs_every_value(panel):
    _, known = panel
    sectors = sorted(k for k in known if k.startswith("southwest/usbp/sector="))
    (split,) = find_splits([TOTAL, *sectors], known)
    assert split == Split(TOTAL, tuple(sectors), "shares")
