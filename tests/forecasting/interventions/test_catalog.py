"""The default catalog's content, user catalog files, and the errors of both."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from forecasting.data import ObservationStore
from forecasting.errors import ScenarioError
from forecasting.frame import UNIQUE_ID
from forecasting.interventions import ENV_CATALOG, HOME_CATALOG, load_catalog
from tests.conftest import SHARED
from tests.forecasting.interventions.conftest import event

REFERENCE = SHARED / "reference" / "interventions.csv"


@pytest.fixture(scope="module")
def known_series(tmp_path_factory) -> list[str]:
    """The series of the embedded snapshot."""
    store = ObservationStore(tmp_path_factory.mktemp("empty-home"))
    return store.panel()[UNIQUE_ID].unique().tolist()


@pytest.fixture(scope="module")
def reference() -> list[dict]:
    if not REFERENCE.is_file():
        pytest.skip(f"researched list {REFERENCE} not found: needs ../shared beside the project")
    with REFERENCE.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_default_catalog_keeps_all_56_events_and_declares_its_groups(catalog):
    assert len(catalog) == 57
    assert [g.id for g in catalog.groups] == [
        "jun2019_mx_enforcement",
        "mpp_2019",
        "title42_2020",
        "mx_southern_border_2021",
        "chnv_2022",
        "cbp_one_2023",
        "mx_enforcement_2023_09",
        "mx_enforcement_2023_12",
        "securing_border_2024",
        "jan2025_orders",
    ]
    members = {g.id: {e.id for e in catalog.events if e.group == g.id} for g in catalog.groups}
    assert all(len(m) >= 2 for m in members.values())
    assert members["mx_enforcement_2023_12"] >= {
        "mx_enforcement_surge_2023_12",
        "us_mx_mexico_city_meeting_2023",
        "us_mx_washington_meeting_2024",
    }
    assert members["jun2019_mx_enforcement"] == {
        "us_mx_joint_declaration_2019",
        "mx_national_guard_south_2019",
    }
    assert members["title42_2020"] == {
        "us_title42_expulsions_2020",
        "mx_accepts_t42_northern_triangle_2020",
    }
    jan2025 = {
        e.id for e in catalog.events if e.start in (dt.date(2025, 1, 20), dt.date(2025, 1, 21))
    }
    assert len(jan2025) == 3 and jan2025 <= members["jan2025_orders"]


def test_default_catalog_lists_mexican_and_bilateral_actions_first(catalog):
    actors = [e.actor for e in catalog.events]
    last_mexican = max(i for i, a in enumerate(actors) if a in ("MX", "bilateral"))
    first_us = actors.index("US")
    assert last_mexican < first_us


#: Events the project added to the researched list, each with its sources in its note.
ADDED_EVENTS = {"us_ice_family_raids_2016"}
#: Researched citizenship scopes the project widened to every series (the catalog says why).
WIDENED_SCOPES = {"mx_programa_frontera_sur_2014"}


def test_default_catalog_keeps_the_researched_facts(catalog, reference):
    """Every researched row is in the catalog with its dates, source, note and suggested shape."""
    assert {r["id"] for r in reference} | ADDED_EVENTS == {e.id for e in catalog.events}
    for row in reference:
        e = catalog.get(row["id"])
        assert (e.name, e.actor, e.kind, e.source, e.note) == (
            row["name"],
            row["actor"],
            row["kind"],
            row["source"],
            row["note"],
        ), e.id
        assert str(e.start) == row["start"] and str(e.end or "") == row["end"], e.id
        assert e.expected_sign == int(row["expected_sign"]), e.id
        assert e.shape.type == row["suggested_shape"], e.id
        if row["scope"] == "all" or e.id in WIDENED_SCOPES:
            assert e.scope.is_all, e.id
        elif ":" not in row["scope"]:
            assert len(e.scope.citizenships) == row["scope"].count(";") + 1, e.id


def test_every_default_event_is_in_scope_for_some_series_of_the_snapshot(catalog, known_series):
    assert catalog.unmatched(known_series) == []


def test_unknown_event_id_suggests_close_ids(catalog):
    with pytest.raises(
        ScenarioError,
        match="unknown event id 'mx_enforcment_surge_2023_12'; "
        "did you mean mx_enforcement_surge_2023_12",
    ):
        catalog.get("mx_enforcment_surge_2023_12")


def test_resolve_maps_events_to_their_regressor(catalog):
    assert catalog.resolve("mx_enforcement_surge_2023_12") == "mx_enforcement_2023_12"
    assert catalog.resolve("mx_enforcement_2023_12") == "mx_enforcement_2023_12"
    assert catalog.resolve("mx_visa_venezuela_2022") == "mx_visa_venezuela_2022"
    with pytest.raises(ScenarioError, match="did you mean jan2025_orders"):
        catalog.resolve("jan2025_order")


# -- user files -----------------------------------------------------------------------------------


def test_user_file_passed_as_argument_adds_its_events(write_catalog):
    path = write_catalog([event(id="mx_visa_colombia_2030", scope={"citizenships": ["colombia"]})])
    catalog = load_catalog([path])
    assert len(catalog) == 58
    assert catalog.get("mx_visa_colombia_2030").scope.citizenships == ("colombia",)
    assert catalog.sources[-1] == str(path)


def test_fingerprint_names_the_events_as_read_not_the_files_layout(write_catalog, catalog):
    assert load_catalog().fingerprint() == catalog.fingerprint()
    added = load_catalog([write_catalog([event(id="added_2030")])])
    moved = load_catalog([write_catalog([event(id="added_2030", start="2030-02-15")])])
    assert len({catalog.fingerprint(), added.fingerprint(), moved.fingerprint()}) == 3
    # The same events written in another layout (comments, key order) are the same catalog.
    path = write_catalog([event(id="added_2030")])
    path.write_text("# a comment\n" + path.read_text())
    assert load_catalog([path]).fingerprint() == added.fingerprint()


def test_user_file_from_the_environment_and_the_data_home(write_catalog, home, monkeypatch):
    monkeypatch.setenv(ENV_CATALOG, str(write_catalog([event(id="from_env")], name="env.yaml")))
    home.mkdir(parents=True)
    (home / HOME_CATALOG).write_text(write_catalog([event(id="from_home")]).read_text())
    ids = [e.id for e in load_catalog().events]
    assert ids[-2:] == ["from_home", "from_env"]


def test_the_same_user_file_named_twice_is_read_once(write_catalog, monkeypatch):
    path = write_catalog([event()])
    monkeypatch.setenv(ENV_CATALOG, str(path))
    assert len(load_catalog([path])) == 58


def test_user_file_can_declare_groups_and_join_default_ones(write_catalog):
    path = write_catalog(
        [
            event(id="a_2030", group="pair_2030"),
            event(id="b_2030", group="pair_2030"),
            event(id="c_2025", start="2025-01-22", group="jan2025_orders"),
        ],
        groups=[{"id": "pair_2030", "name": "Two 2030 events", "reason": "same week"}],
    )
    catalog = load_catalog([path])
    regressors = catalog.regressors("southwest/usbp")
    assert [e.id for e in regressors["pair_2030"]] == ["a_2030", "b_2030"]
    assert "c_2025" in [e.id for e in regressors["jan2025_orders"]]


def test_id_already_in_the_default_catalog_is_an_error_naming_both_files(write_catalog):
    path = write_catalog([event(id="mx_visa_venezuela_2022")])
    with pytest.raises(
        ScenarioError,
        match=r"user.yaml: id 'mx_visa_venezuela_2022' is already defined in the default catalog "
        r"\(default_catalog.yaml\); user files add events and groups, they cannot redefine one",
    ):
        load_catalog([path])


def test_id_repeated_across_user_files_or_within_one_is_an_error(write_catalog):
    first = write_catalog([event(id="x_2030")], name="first.yaml")
    second = write_catalog([event(id="x_2030")], name="second.yaml")
    with pytest.raises(
        ScenarioError, match=r"second.yaml: id 'x_2030' is already defined in .*first"
    ):
        load_catalog([first, second])
    twice = write_catalog([event(id="x_2030"), event(id="x_2030")], name="twice.yaml")
    with pytest.raises(ScenarioError, match="already defined earlier in this file"):
        load_catalog([twice])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"start": "2030-03-01", "end": "2030-02-01"},
            r"event #1 \('test_event_2030'\): end 2030-02-01 is before start 2030-03-01",
        ),
        ({"shape": "spike"}, "shape: unknown shape 'spike'; accepted: step"),
        ({"actor": "Mexico"}, "actor: Input should be 'US', 'MX', 'bilateral' or 'other'"),
        ({"kind": "tariff"}, "kind: Input should be 'agreement'"),
        ({"expected_sign": 2}, "expected_sign: Input should be -1, 0 or 1"),
        ({"sources": "x"}, r"unknown key\(s\) sources; accepted: id, name, start"),
        ({"id": "Bad Id"}, "id: String should match pattern"),
        (
            {"scope": {"sectors": ["rgv"]}},
            "scope.sectors: unknown sector 'rgv'; accepted: big-bend",
        ),
        ({"group": "nope_2030"}, "names group 'nope_2030', which no catalog file declares"),
    ],
)
def test_bad_user_events_say_what_is_wrong_and_what_is_accepted(write_catalog, fields, message):
    with pytest.raises(ScenarioError, match=message):
        load_catalog([write_catalog([event(**fields)])])


def test_user_scope_matching_no_known_series_is_an_error(write_catalog, known_series):
    path = write_catalog([event(scope={"citizenships": ["venezuala"]})])
    assert load_catalog([path]).get("test_event_2030")  # no series list: vocabulary only
    with pytest.raises(
        ScenarioError,
        match=r"event 'test_event_2030' has scope 'citizenships: venezuala', which matches none "
        r"of the \d+ known series; did you mean venezuela",
    ):
        load_catalog([path], known_series=known_series)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events: [", "not valid YAML"),
        ("- id: x", "must be a mapping with keys groups, events; got a list"),
        ("event: []", r"unknown top-level key\(s\) event; accepted: groups, events"),
        ("events: {id: x}", "'events' must be a list of mappings"),
        ("groups: [{id: g_2030, name: G, reason: r}]", "group.s. g_2030 have no member events"),
    ],
)
def test_malformed_user_files_are_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_catalog([path])


def test_missing_user_files_are_errors(tmp_path, monkeypatch):
    with pytest.raises(ScenarioError, match="catalog file .*nope.yaml does not exist"):
        load_catalog([tmp_path / "nope.yaml"])
    monkeypatch.setenv(ENV_CATALOG, str(tmp_path / "gone.yaml"))
    with pytest.raises(ScenarioError, match=r"\$ENCOUNTERS_CATALOG .*gone.yaml does not exist"):
        load_catalog()


def test_an_empty_user_file_adds_nothing(tmp_path):
    path = Path(tmp_path / "empty.yaml")
    path.write_text("# nothing yet\n")
    assert len(load_catalog([path])) == 57
