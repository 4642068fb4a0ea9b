"""Settings from the environment, and the `encounters serve` launcher's pieces."""

from __future__ import annotations

import pydoc
from pathlib import Path

import pytest

from pipelines.serve_cmd import APP, REQUEST_ID_FILTER, log_config, urls
from service.observability import RequestIdFilter
from service.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "ENCOUNTERS_API_KEYS",
        "ENCOUNTERS_CORS_ORIGINS",
        "MLFLOW_TRACKING_URI",
        "ENCOUNTERS_TRACKING_URI",
        "ENCOUNTERS_POLL_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENCOUNTERS_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_lists_are_comma_separated(monkeypatch):
    monkeypatch.setenv("ENCOUNTERS_API_KEYS", " alpha, beta,,")
    monkeypatch.setenv("ENCOUNTERS_CORS_ORIGINS", "http://a.test,http://b.test")
    settings = Settings()
    assert settings.api_keys == ["alpha", "beta"]
    assert settings.cors_origins == ["http://a.test", "http://b.test"]


def test_defaults_and_the_tracking_uri(monkeypatch, tmp_path):
    settings = get_settings()
    assert get_settings() is settings  # cached
    assert settings.home == (tmp_path / "home").resolve()
    assert settings.api_keys == [] and settings.poll_seconds == 60
    assert settings.resolved_tracking_uri() == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert settings.serving_dir == settings.home / "serving"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.test")
    assert Settings().resolved_tracking_uri() == "http://tracking.test"
    assert Settings(tracking_uri="http://other.test").resolved_tracking_uri() == "http://other.test"


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("ENCOUNTERS_POLL_SECONDS", "-1")
    with pytest.raises(ValueError, match="poll_seconds"):
        Settings()


def test_serve_urls_and_log_config():
    assert urls("0.0.0.0", 8000) == {
        "API": "http://127.0.0.1:8000/v1",
        "docs": "http://127.0.0.1:8000/docs",
        "chart page": "http://127.0.0.1:8000/",
    }
    assert urls("::1", 9)["API"] == "http://[::1]:9/v1"
    config = log_config("info")
    assert pydoc.locate(REQUEST_ID_FILTER) is RequestIdFilter
    assert config["filters"]["request_id"]["()"] == REQUEST_ID_FILTER
    assert all("request_id" in h["filters"] for h in config["handlers"].values())
    assert "%(request_id)s" in config["formatters"]["access"]["fmt"]
    module, factory = APP.split(":")
    assert Path(pydoc.locate(module).__file__).name == "main.py"
    assert callable(getattr(pydoc.locate(module), factory))
