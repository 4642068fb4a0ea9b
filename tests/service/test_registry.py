"""The serving cache and the registry's fallbacks, without a tracking server."""

from __future__ import annotations

import datetime as dt

import pytest

from forecasting.bundle import Bundle, SeriesModel
from forecasting.data import ObservationStore
from forecasting.frame import series_history
from forecasting.interventions import load_catalog
from forecasting.models import Naive
from service.registry import CURRENT, BundleCache, LoadError, ModelRegistry
from service.served import ModelInfo
from service.settings import Settings
from tests.processes import free_port

KEY = "southwest/usbp"


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    y = series_history(ObservationStore(root).panel(), KEY, "2016-01")
    entry = SeriesModel(KEY, "naive", Naive().fit(y), None, y, y.to_frame().iloc[:, :0])
    return Bundle({KEY: entry}, load_catalog(), [80, 95], 12).save(root / "bundle.pkl")


def _info(version: str) -> ModelInfo:
    return ModelInfo(
        "border-encounters",
        version,
        "champion",
        "r1",
        "tracking",
        dt.datetime.now(dt.UTC),
        "sqlite:///x",
    )


def test_cache_keeps_the_current_version_and_one_before(tmp_path, bundle_file):
    cache = BundleCache(tmp_path / "serving")
    with pytest.raises(LoadError, match="no cached bundle"):
        cache.load()
    for version in ("1", "2", "3"):
        cache.store(bundle_file, _info(version), {"data_newest_month": "2025-08"})
    bundle, record = cache.load()
    assert record["version"] == "3" and bundle.keys == [KEY]
    assert sorted(p.name for p in cache.folder.glob("v*.pkl")) == ["v2.pkl", "v3.pkl"]
    (cache.folder / "v3.pkl").write_bytes(b"not a pickle")
    with pytest.raises(LoadError, match="does not load"):
        cache.load()
    (cache.folder / CURRENT).write_text("{}")
    with pytest.raises(LoadError, match="lacks"):
        cache.load()


def _registry(tmp_path) -> ModelRegistry:
    settings = Settings(
        home=tmp_path / "home",
        tracking_uri=f"http://127.0.0.1:{free_port()}",
        tracking_retries=0,
        tracking_timeout_seconds=2,
        poll_seconds=0,
        warm_counterfactuals=False,
    )
    return ModelRegistry(settings)


def test_unreachable_registry_serves_the_cache_and_says_so(tmp_path, bundle_file):
    registry = _registry(tmp_path)
    registry.cache.store(bundle_file, _info("4"), {})
    registry.start()
    assert registry.current is not None and registry.current.version == "4"
    assert registry.current.info.source == "cache"
    (reason,) = registry.degraded_reasons()
    assert "locally cached bundle (version 4)" in reason and "cannot resolve" in reason
    assert registry.poll_once() is False
    assert any("last poll of the registry failed" in r for r in registry.degraded_reasons())


def test_the_observed_history_is_read_at_start_not_at_the_first_request(tmp_path, bundle_file):
    registry = _registry(tmp_path)
    registry.cache.store(bundle_file, _info("4"), {})
    assert registry.history._stamp is None
    registry.start()
    # Read from the embedded snapshot (stamp 0.0) before any request asked for it.
    assert registry.history._stamp is not None
    assert KEY in registry.history._series


def test_unreachable_registry_and_a_damaged_cache_serve_nothing(tmp_path, bundle_file):
    registry = _registry(tmp_path)
    registry.cache.store(bundle_file, _info("5"), {})
    (registry.cache.folder / "v5.pkl").write_bytes(b"\x80garbage")
    registry.start()
    assert registry.current is None
    assert registry.degraded_reasons()[0].startswith("no model loaded: cannot resolve")
