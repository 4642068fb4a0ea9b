"""The pre-registered validity sample (experiments/counterfactual/preregistered.py): its draw
ignores the catalog, and the controls method's injected event acts on the treated series alone."""

from pathlib import Path

import pytest

from experiments.counterfactual import preregistered as prereg
from forecasting.counterfactual.donors import disjoint
from forecasting.interventions.scope import Scope, parse_series_key

CONFIG = Path(prereg.__file__).with_name("config-preregistered.yaml")
SERIES = [
    "southwest/usbp",
    "northern/usbp",
    "southwest/ofo",
    "southwest/usbp/sector=laredo",
    "southwest/usbp/sector=del-rio",
    "southwest/usbp/citizenship=mexico",
    "southwest/usbp/citizenship=cuba",
    "southwest/usbp/family=family-units",
]


def test_the_protocol_is_720_injections_on_20_series():
    config = prereg.load_config(CONFIG)
    assert len(config["series"]) == 20
    assert not any("family=" in key for key in config["series"])
    assert config["onsets_per_series"] * len(config["injections"]) * 20 == 720


@pytest.mark.parametrize("key", [k for k in SERIES if "family" not in k and k != "northern/usbp"])
def test_the_injected_event_acts_on_its_series_and_on_no_disjoint_one(key):
    scope = Scope.model_validate(prereg.own_scope(key))
    own = parse_series_key(key)
    assert scope.matches(own)
    for other in SERIES:
        if disjoint(own, parse_series_key(other)):
            assert not scope.matches(parse_series_key(other)), other
