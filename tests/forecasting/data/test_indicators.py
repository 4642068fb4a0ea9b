from __future__ import annotations

import logging

import pandas as pd
import pyreadr
import pytest

from forecasting.data import ObservationStore, read_release
from forecasting.data import indicators as ind
from forecasting.data.keys import citizenship_slug
from forecasting.errors import DataError
from pipelines.ingest import ingest
from tests.forecasting.data.test_store import tree_digest


@pytest.fixture(scope="module")
def store(tmp_path_factory, indicator_files) -> ObservationStore:
    store = ObservationStore(tmp_path_factory.mktemp("home"))
    ingest(store, [str(p) for p in indicator_files])
    return store


def month(store: ObservationStore, key: str, ds: str) -> int:
    rows = store.series(key).set_index("ds")
    return int(rows.loc[pd.Timestamp(ds), "y"])


def test_indicators_ingest_under_the_documented_keys(store):
    keys = set(store.panel()["unique_id"])
    for key in (
        "mexico/inm/presented",
        "mexico/inm/presented/citizenship=venezuela",
        "mexico/inm/expelled/citizenship=cuba",
        "mexico/inm/expelled/type=deportation",
        "panama/darien/transits/citizenship=venezuela",
        "honduras/inm/irregular-entries",
        "honduras/inm/irregular-entries/citizenship=cuba",
        "guatemala/igm/returned/from=united-states",
    ):
        assert key in keys, key
    # The facts the indicators' README quotes.
    assert month(store, "panama/darien/transits/citizenship=venezuela", "2023-12-01") == 11_505
    assert month(store, "panama/darien/transits/citizenship=venezuela", "2023-08-01") == 62_700
    totals = store.series("mexico/inm/presented")
    assert (totals["ds"].min(), totals["ds"].max()) == (
        pd.Timestamp("2018-01"),
        pd.Timestamp("2025-04"),
    )
    assert not totals["filled"].any()


def test_annual_darien_figures_are_not_spread_into_months(store):
    darien = store.series("panama/darien/transits")
    assert darien["ds"].min() == pd.Timestamp("2020-01-01")
    # The months Panama did not publish are booked as 0 and flagged, not invented.
    filled = darien.loc[darien["filled"], "ds"].dt.strftime("%Y-%m").to_list()
    assert filled == ["2020-04", "2020-05", "2020-07"]
    assert (darien.loc[darien["filled"], "y"] == 0).all()


def test_rows_one_code_books_twice_are_summed(store, indicator_files):
    raw = pyreadr.read_r(str(indicator_files[0]))["irreg_mexico_nat"]
    guinea = raw[
        (raw["nat"] == "GIN") & (raw["t"] == (pd.Timestamp("2019-05-01") - pd.Timestamp(0)).days)
    ]
    assert len(guinea) == 2
    assert (
        month(store, "mexico/inm/presented/citizenship=guinea", "2019-05-01") == guinea["n"].sum()
    )


def test_every_nationality_with_an_encounter_series_maps_to_its_slug(ohss_file, indicator_files):
    """OHSS's own citizenship names, matched to ISO codes by country_converter's name patterns
    (the other direction from the reader's code → name), must give the reader's slugs."""
    import country_converter

    logging.getLogger("country_converter").setLevel(logging.ERROR)
    names = pd.read_excel(ohss_file, sheet_name="Monthly Rgn and Citp", usecols=["Citizenship"])
    names = sorted(set(names["Citizenship"].dropna().astype(str)))
    codes = set()
    for path in indicator_files:
        frame = next(iter(pyreadr.read_r(str(path)).values()))
        codes |= set(frame.get("nat", pd.Series(dtype=str)).dropna())
    iso = country_converter.CountryConverter().convert(names, to="ISO3", not_found=None)
    slugs = ind.nationality_slugs(codes)
    matched = {name: code for name, code in zip(names, iso, strict=True) if code in codes}
    assert len(matched) >= 100  # most of OHSS's ~130 citizenships are in Mexico's tables
    wrong = {
        n: (slugs[c], citizenship_slug(n))
        for n, c in matched.items()
        if slugs[c] != citizenship_slug(n)
    }
    assert wrong == {}
    assert {"venezuela", "dr-congo", "ivory-coast", "kosovo", "china"} <= set(slugs.values())


def test_publication_lags_are_declared_per_source():
    assert ind.publication_lag("mexico/inm/presented/citizenship=cuba") == 2
    assert ind.publication_lag("panama/darien/transits") == 1
    assert ind.is_indicator("honduras/inm/irregular-entries")
    assert not ind.is_indicator("southwest/usbp/citizenship=venezuela")
    with pytest.raises(KeyError, match="not an indicator series"):
        ind.publication_lag("southwest/usbp")


def write(path, frame: pd.DataFrame, name: str = "irreg_mexico_nat"):
    pyreadr.write_rdata(str(path), frame, df_name=name, compress="gzip")
    return path


def good_frame() -> pd.DataFrame:
    days = [
        (pd.Timestamp(m) - pd.Timestamp(0)).days for m in ("2018-01-01", "2018-01-01", "2018-02-01")
    ]
    return pd.DataFrame(
        {"t": [float(d) for d in days], "nat": ["VEN", "CUB", "VEN"], "n": [5.0, 3.0, 2.0]}
    )


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            "n",
            -3.0,
            r"bad.rda: row 2, column 'n': count -3.0 is not accepted; counts must be whole",
        ),
        ("n", 2.5, r"bad.rda: row 2, column 'n': count 2.5 is not accepted"),
        (
            "nat",
            "ZZZ",
            r"bad.rda: row 2, column 'nat': 'ZZZ' is not accepted; expected an ISO 3166-1",
        ),
        ("t", 17533.0, r"bad.rda: row 2, column 't': 17533.0 is not accepted; expected an R Date"),
    ],
)
def test_bad_values_are_refused_naming_file_row_and_column(tmp_path, column, value, message):
    frame = good_frame()
    frame.loc[1, column] = value
    with pytest.raises(DataError, match=message):
        read_release(write(tmp_path / "bad.rda", frame))


def test_unknown_frames_and_columns_are_refused(tmp_path):
    unknown = r"(?s)x.rda: unknown layout \(R data frames \['other'\]\).*'irreg_mexico_nat'"
    with pytest.raises(DataError, match=unknown):
        read_release(write(tmp_path / "x.rda", good_frame(), name="other"))
    with pytest.raises(
        DataError, match=r"has columns \['t', 'nat', 'count'\]; expected \['t', 'nat', 'n'\]"
    ):
        read_release(write(tmp_path / "y.rda", good_frame().rename(columns={"n": "count"})))
    (tmp_path / "z.rda").write_bytes(b"RDX3\nX\ngarbage")
    with pytest.raises(DataError, match="z.rda: not a readable R data file"):
        read_release(tmp_path / "z.rda")


def test_a_gap_in_a_complete_total_is_refused(tmp_path):
    frame = good_frame()
    frame.loc[2, "t"] = float((pd.Timestamp("2018-03-01") - pd.Timestamp(0)).days)
    with pytest.raises(DataError, match="total 'mexico/inm/presented' has no figure for 2018-02"):
        read_release(write(tmp_path / "gap.rda", frame))


def test_a_refused_file_leaves_the_store_unchanged(tmp_path, indicator_files):
    store = ObservationStore(tmp_path / "home")
    ingest(store, [str(indicator_files[3])])
    before = tree_digest(store.root)
    bad = good_frame()
    bad.loc[0, "nat"] = "ZZZ"
    with pytest.raises(DataError, match="row 1, column 'nat'"):
        ingest(store, [str(indicator_files[0]), str(write(tmp_path / "bad.rda", bad))])
    assert tree_digest(store.root) == before
