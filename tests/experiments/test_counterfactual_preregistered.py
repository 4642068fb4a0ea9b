"""The pre-registered validity sample (experiments/counterfactual/preregistered.py): its draw
ignores the catalog, and the controls method's injected event acts on the treated series alone."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.counterfactual import preregistered as prereg
from experiments.counterfactual.run import multiplier
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


@pytest.fixture(scope="module")
def sample() -> tuple[dict, list]:
    config = prereg.load_config(CONFIG)
    return config, prereg.tasks(config)


def test_every_onset_has_a_placebo_with_nothing_injected(sample):
    config, todo = sample
    placebos = [t for t, _ in todo if t.injection == "placebo"]
    injected = [t for t, _ in todo if t.injection != "placebo"]
    assert len(injected) == 720 and len(placebos) == 240
    assert {(t.key, t.onset) for t in placebos} == {(t.key, t.onset) for t in injected}
    assert all(t.effect_pct == 0 for t in placebos)
    # Nothing injected: the series' own counts, and a true effect of zero.
    task, facts = next((t, f) for t, f in todo if t.injection == "placebo")
    onset = pd.Timestamp(task.onset)
    index = pd.date_range(task.start, periods=len(task.y), freq="MS")
    after = np.asarray(task.y)[index >= onset]
    assert np.allclose(after * multiplier(task.shape, 0, len(after)), after)
    assert facts["count"] == after.sum()


def test_contamination_hits_one_donor_over_the_effects_months(sample):
    _, todo = sample
    task = next(t for t, _ in todo if t.injection == "step_minus_30")
    onset = pd.Timestamp(task.onset)
    pool = prereg.candidates()
    donor = "northern/usbp"
    hit = prereg.contaminated(pool, donor, task, onset, 12)
    assert all(hit[k] is pool[k] for k in pool if k != donor)
    ratio = (hit[donor] / pool[donor]).dropna()
    months = (ratio.index >= onset) & (ratio.index < onset + pd.DateOffset(months=12))
    assert np.allclose(ratio[~months], 1)
    assert np.allclose(ratio[months & (pool[donor] >= 1000)], 0.7, atol=0.001)


def test_the_placebo_table_counts_false_detections():
    records = [
        {
            "key": "k",
            "onset": f"2010-{m:02d}",
            "count": 1000.0,
            "estimates": [
                {"method": "regressor", "estimate": 10.0, "lo": lo, "hi": lo + 100.0},
            ],
        }
        for m, lo in zip(range(1, 11), [-50.0] * 9 + [5.0], strict=True)
    ]
    table = prereg.placebo_table(prereg.placebo_errors(records))
    row = table.iloc[0]
    assert row["n"] == 10 and row["false_detections"] == pytest.approx(0.1)
    assert row["bias"] == pytest.approx(0.01) and row["median_width"] == pytest.approx(0.1)
    assert row["lo"] <= 0.1 <= row["hi"]
