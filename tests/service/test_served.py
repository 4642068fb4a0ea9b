"""A served bundle's derived state, on a bundle fitted here in seconds (no MLflow)."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from forecasting.bundle import Bundle, SeriesModel
from forecasting.data import ObservationStore
from forecasting.errors import UnknownSeriesError
from forecasting.frame import series_history
from forecasting.interventions import design_matrix, load_catalog
from forecasting.models import ETS, UCM, Naive
from service.served import BoundedCache, ModelInfo, Served, dumps

KEY_NAIVE, KEY_ETS = "southwest/usbp", "southwest/usbp/sector=yuma"
KEY_EFFECTS = "southwest/usbp/citizenship=mexico"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    panel = ObservationStore(tmp_path_factory.mktemp("home")).panel()  # the embedded snapshot
    catalog = load_catalog()
    models = {}
    for key, model, name in ((KEY_NAIVE, Naive(), "naive"), (KEY_ETS, ETS(), "ets")):
        y = series_history(panel, key, "2016-01")
        models[key] = SeriesModel(key, name, model.fit(y), None, y, y.to_frame().iloc[:, :0])
    # Served by a naive model, with the UCM the same training fitted kept for counterfactuals.
    y = series_history(panel, KEY_EFFECTS, "2016-01")
    X = design_matrix(catalog, KEY_EFFECTS, y.index[0], y.index[-1])
    models[KEY_EFFECTS] = SeriesModel(
        KEY_EFFECTS,
        "naive",
        Naive().fit(y),
        None,
        y,
        X,
        effect_models={"ucm": UCM(min_t=0).fit(y, X)},
    )
    bundle = Bundle(models, catalog, [80, 95], 24, {"experiment": "unit"})
    info = ModelInfo("m", "7", "champion", None, "tracking", dt.datetime.now(dt.UTC), "x")
    return Served(bundle, info, response_cache_size=2).warm()


def test_models_that_cannot_simulate_use_the_lognormal_every_time(served):
    # The second call once found an empty path array cached and divided by zero.
    for _ in range(2):
        probs, method = served.exceedance(KEY_NAIVE, 6, [0.0, 1e12])
        assert method == "lognormal" and np.isfinite(probs).all()
    probs, method = served.exceedance(KEY_ETS, 6, [0.0])
    assert method == "sample_paths" and probs.shape == (6, 1)


def test_payload_and_capabilities(served):
    payload = served.forecast_payload(KEY_NAIVE, 3, [80], [1000.0])
    assert payload["model_version"] == "7" and len(payload["rows"]) == 3
    assert set(payload["rows"][0]) == {
        "ds",
        "kind",
        "mean",
        "lo_80",
        "hi_80",
        "exceedance",
        "intervals",
    }
    assert json.loads(dumps(payload)) == json.loads(json.dumps(payload))
    capability = served.capability[KEY_NAIVE]
    assert not capability.counterfactual and "naive" in capability.reason
    with pytest.raises(UnknownSeriesError, match="did you mean southwest/usbp"):
        served.forecast_payload("southwest/usbpp", 3, [80], [])


def test_json_has_no_nan_and_caches_are_bounded():
    assert json.loads(dumps({"a": math.nan, "b": [np.float64(math.inf), 1.5]})) == {
        "a": None,
        "b": [None, 1.5],
    }
    cache = BoundedCache(2, max_bytes=1_000)
    for i in range(3):
        cache.put(i, b"x" * 10)
    assert len(cache) == 2 and cache.get(0) is None and cache.get(2) == b"x" * 10
    # Bounded in bytes too: a large answer pushes out the oldest ones, a too-large one is kept out.
    cache = BoundedCache(100, max_bytes=1_000)
    for i in range(10):
        cache.put(i, b"x" * 100)
    cache.put("big", b"y" * 950)
    assert len(cache) == 1 and cache.bytes == 950 and cache.get(9) is None
    assert cache.put("huge", b"z" * 1_001) == b"z" * 1_001 and cache.get("huge") is None
    assert cache.bytes == 950


def test_a_naive_series_with_a_trained_ucm_answers_counterfactuals(served):
    engine, capability = served.engine(KEY_EFFECTS)
    assert engine is not None and capability.counterfactual and capability.decompose
    assert served.effect_families(KEY_EFFECTS) == ["ucm"]
    assert served.series_summary(KEY_EFFECTS)["model"] == "naive"
