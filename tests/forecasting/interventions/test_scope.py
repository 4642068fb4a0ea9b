"""Series keys and which of them an event's scope covers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from forecasting.interventions import Scope, parse_series_key


def scope(data) -> Scope:
    return Scope.model_validate(data)


def test_parse_series_key():
    key = parse_series_key("southwest/usbp/citizenship=venezuela")
    assert (key.region, key.component, key.dims) == (
        "southwest",
        "usbp",
        {"citizenship": "venezuela"},
    )
    assert parse_series_key("southwest/usbp/family=family-units").demographic == "family-units"
    assert parse_series_key("southwest/cbp/demographic=family-units").demographic == "family-units"
    assert parse_series_key("northern/usbp").dims == {}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("southwest", "must have the form <region>/<component>"),
        ("mars/usbp", r"unknown region 'mars'; accepted: \('coastal', 'northern', 'southwest'\)"),
        ("southwest/cpb", "unknown component 'cpb'; accepted"),
        ("southwest/usbp/country=cuba", "segment 'country=cuba' must be <dimension>=<value>"),
    ],
)
def test_malformed_series_keys_say_what_is_accepted(key, message):
    with pytest.raises(ValueError, match=message):
        parse_series_key(key)


@pytest.mark.parametrize(
    ("data", "in_scope", "out_of_scope"),
    [
        (
            "all",
            ["southwest/usbp", "northern/usbp", "southwest/cbp/citizenship=mexico"],
            [],
        ),
        (
            {"citizenships": ["venezuela", "cuba"]},
            ["southwest/usbp/citizenship=venezuela", "southwest/cbp/citizenship=cuba"],
            ["southwest/usbp", "southwest/usbp/citizenship=haiti", "southwest/usbp/sector=yuma"],
        ),
        (
            {"component": "ofo"},
            ["southwest/ofo", "southwest/cbp", "southwest/cbp/citizenship=mexico"],
            ["southwest/usbp", "southwest/usbp/citizenship=mexico"],
        ),
        (
            {"component": "usbp"},
            ["southwest/usbp", "southwest/cbp", "southwest/usbp/sector=del-rio"],
            ["southwest/ofo"],
        ),
        (
            {"sectors": ["del-rio"]},
            ["southwest/usbp/sector=del-rio"],
            ["southwest/usbp", "southwest/usbp/sector=laredo"],
        ),
        (
            {"demographics": ["unaccompanied-children"]},
            [
                "southwest/usbp/family=unaccompanied-children",
                "southwest/cbp/demographic=unaccompanied-children",
            ],
            ["southwest/usbp", "southwest/usbp/family=family-units"],
        ),
        (
            {"regions": ["southwest"], "component": "usbp"},
            ["southwest/usbp", "southwest/usbp/citizenship=cuba"],
            ["northern/usbp", "southwest/ofo"],
        ),
    ],
)
def test_scope_matches_series_keys(data, in_scope, out_of_scope):
    s = scope(data)
    assert [k for k in in_scope if not s.matches(k)] == []
    assert [k for k in out_of_scope if s.matches(k)] == []


def test_scope_values_are_normalised_like_series_keys():
    s = scope({"citizenships": ["EL SALVADOR", "Dominican Republic"], "demographics": "UAC"})
    assert s.citizenships == ("el-salvador", "dominican-republic")
    assert s.demographics == ("unaccompanied-children",)
    assert scope({"sectors": ["DEL RIO"]}).sectors == ("del-rio",)


def test_scope_serialises_as_all_or_its_dimensions():
    assert scope("all").model_dump() == "all"
    assert scope({"component": "OFO"}).model_dump() == {"component": "ofo"}
    assert scope({"citizenships": ["cuba", "haiti"]}).label == "citizenships: cuba, haiti"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("sector:DEL RIO", "scope must be 'all' or a mapping with keys regions, component"),
        ({"sector": ["del-rio"]}, r"unknown key\(s\) sector; accepted: regions, component"),
        (
            {"sectors": ["del-rey"]},
            r"unknown sector 'del-rey' \(did you mean del-rio\?\); accepted",
        ),
        ({"component": "bp"}, "unknown component 'bp'.*accepted: cbp, ofo, usbp"),
        ({"demographics": ["kids"]}, "unknown demographic 'kids'; accepted: accompanied-minors"),
        ({"regions": ["south"]}, "unknown region 'south'"),
        ({"citizenships": []}, "give at least one non-empty citizenship, or use scope 'all'"),
    ],
)
def test_bad_scopes_say_what_is_accepted(data, message):
    with pytest.raises(ValidationError, match=message):
        scope(data)
