"""The leading-indicator family: publication lags at every origin, pooling, fallbacks."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.backtest import backtest
from forecasting.data import ObservationStore, read_release
from forecasting.data.indicators import is_indicator, publication_lag
from forecasting.frame import DS, UNIQUE_ID, Y, series_history
from forecasting.models.leading import IndicatorPool, LeadingIndicators, leads_for

SERIES = [
    "southwest/usbp",
    "southwest/usbp/citizenship=venezuela",
    "southwest/usbp/citizenship=guatemala",
    "southwest/usbp/citizenship=mexico",
    "southwest/usbp/sector=el-paso",
]
ORIGIN = pd.Timestamp("2023-11-01")


@pytest.fixture(scope="module")
def panel(tmp_path_factory, indicator_files) -> pd.DataFrame:
    snapshot = ObservationStore(tmp_path_factory.mktemp("home")).panel()[[UNIQUE_ID, DS, Y]]
    encounters = snapshot[~snapshot[UNIQUE_ID].map(is_indicator)]
    indicators = [read_release(p).panel[[UNIQUE_ID, DS, Y]] for p in indicator_files]
    return pd.concat([encounters, *indicators], ignore_index=True)


def pool_of(panel: pd.DataFrame) -> IndicatorPool:
    targets = {key: series_history(panel, key, "2012-01") for key in SERIES}
    return IndicatorPool.from_panel(panel, targets)


def forecast(panel: pd.DataFrame, key: str, origin: pd.Timestamp = ORIGIN) -> pd.DataFrame:
    pool = pool_of(panel)
    y = pool.targets[key]
    return backtest(lambda: LeadingIndicators(pool, key), y, origins=[origin], h=12)


def test_each_series_reads_the_indicators_that_plausibly_lead_it(panel):
    leads = pool_of(panel).leads
    assert leads["southwest/usbp"] == {
        "darien": "panama/darien/transits",
        "honduras": "honduras/inm/irregular-entries",
        "mexico": "mexico/inm/presented",
    }
    assert leads["southwest/usbp/citizenship=venezuela"] == {
        "darien": "panama/darien/transits/citizenship=venezuela",
        "honduras": "honduras/inm/irregular-entries/citizenship=venezuela",
        "mexico": "mexico/inm/presented/citizenship=venezuela",
    }
    # Central Americans: no Darién, Honduras's whole flow; Mexicans: Mexico's total.
    assert leads["southwest/usbp/citizenship=guatemala"] == {
        "honduras": "honduras/inm/irregular-entries",
        "mexico": "mexico/inm/presented/citizenship=guatemala",
    }
    assert leads["southwest/usbp/citizenship=mexico"]["mexico"] == "mexico/inm/presented"
    assert leads_for("southwest/usbp", set()) == {}


def test_indicator_months_after_an_origin_s_publication_lag_change_nothing(panel):
    key = "southwest/usbp/citizenship=venezuela"
    before = forecast(panel, key)
    changed = panel.copy()
    unpublished = pd.Series(False, index=panel.index)
    is_indicator = changed[UNIQUE_ID].str.match(r"(mexico|panama|honduras|guatemala)/")
    lag = changed.loc[is_indicator, UNIQUE_ID].map(publication_lag)
    public_until = ORIGIN - lag.map(lambda m: pd.DateOffset(months=m))
    unpublished.loc[is_indicator] = changed.loc[is_indicator, DS] > public_until
    # Every later encounter figure, of this series and the others, changes too.
    unpublished |= ~is_indicator & (changed[DS] > ORIGIN)
    changed.loc[unpublished, Y] = changed.loc[unpublished, Y] * 10 + 5
    after = forecast(changed, key)
    pd.testing.assert_frame_equal(before.drop(columns=Y), after.drop(columns=Y))

    # The last month public at the origin does move it: the test can tell.
    darien = changed[UNIQUE_ID] == "panama/darien/transits/citizenship=venezuela"
    last = changed[DS] == ORIGIN - pd.DateOffset(months=publication_lag("panama/darien"))
    changed.loc[darien & last, Y] *= 4
    moved = forecast(changed, key)
    assert not moved["mean"].equals(before["mean"])


def test_another_series_moves_the_pooled_fit(panel):
    key = "southwest/usbp/sector=el-paso"
    before = forecast(panel, key)
    changed = panel.copy()
    other = (changed[UNIQUE_ID] == "southwest/usbp/citizenship=guatemala") & (changed[DS] <= ORIGIN)
    changed.loc[other, Y] = changed.loc[other, Y].to_numpy()[::-1]
    assert not forecast(changed, key)["mean"].equals(before["mean"])


def test_without_a_pool_or_an_indicator_yet_it_falls_back_cleanly(panel):
    y = pool_of(panel).targets["southwest/usbp/citizenship=venezuela"]
    alone = LeadingIndicators().fit(y.loc[:ORIGIN]).predict(12)
    assert alone["mean"].notna().all() and (alone["lo_80"] < alone["hi_80"]).all()
    # Before Darién's first public month, its slot is zero: the forecast still comes.
    early = forecast(panel, "southwest/usbp/citizenship=venezuela", pd.Timestamp("2019-11-01"))
    assert early["mean"].notna().all()
    zero = LeadingIndicators(shrink=0.0).fit(y.loc[:ORIGIN]).predict(3)
    assert zero["mean"].to_numpy() == pytest.approx(y.loc[ORIGIN])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"shrink": 1.5}, r"shrink must be a number in \[0, 1\]; got 1.5"),
        ({"alpha": -1}, "alpha must be a number >= 0; got -1"),
        ({"window_months": 6}, "window_months must be an integer >= 12; got 6"),
        ({"pool": "x"}, "pool must be an IndicatorPool or None"),
    ],
)
def test_bad_hyperparameters_are_refused(params, message, panel):
    y = pool_of(panel).targets["southwest/usbp"]
    with pytest.raises(ValueError, match=message):
        LeadingIndicators(**params).fit(y)
