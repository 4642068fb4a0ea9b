"""Service settings: environment variables with the prefix ``ENCOUNTERS_`` (pydantic-settings).

``ENCOUNTERS_HOME`` is the data home shared with the pipelines; ``MLFLOW_TRACKING_URI`` (MLflow's
own variable, no prefix) points at a tracking server, as it does for training.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from forecasting.home import DEFAULT_HOME

#: The registered model and alias training writes (``pipelines.tracking``); repeated here because
#: the service may not import the pipelines.
REGISTERED_MODEL = "border-encounters"
CHAMPION = "champion"


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """What the service reads from its environment; frozen once built."""

    model_config = SettingsConfigDict(env_prefix="ENCOUNTERS_", frozen=True, extra="ignore")

    home: Path = Field(
        default=Path(DEFAULT_HOME), description="Data home: store, embedded MLflow, serving cache."
    )
    model_name: str = Field(default=REGISTERED_MODEL, min_length=1)
    model_alias: str = Field(default=CHAMPION, min_length=1)
    tracking_uri: str | None = Field(
        default=None,
        description="Tracking/registry URI; default MLFLOW_TRACKING_URI, else the embedded "
        "SQLite store at $ENCOUNTERS_HOME/mlflow.db.",
    )
    poll_seconds: float = Field(
        default=60.0, ge=0, description="How often to look for a new champion; 0 turns it off."
    )
    tracking_timeout_seconds: float = Field(
        default=10.0, gt=0, description="HTTP timeout of one call to a tracking server."
    )
    tracking_retries: int = Field(
        default=1, ge=0, le=10, description="Retries of one call to a tracking server."
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Accepted X-API-Key values (ENCOUNTERS_API_KEYS, comma-separated); "
        "empty: no authentication.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS (comma-separated)."
    )
    warm_counterfactuals: bool = Field(
        default=True, description="Build the counterfactual engines when a bundle loads."
    )
    response_cache_size: int = Field(default=4096, ge=0)
    chart_cache_size: int = Field(default=256, ge=0)
    response_cache_bytes: int = Field(
        default=64 << 20, ge=0, description="Bytes of response bodies kept per served version."
    )
    chart_cache_bytes: int = Field(
        default=32 << 20, ge=0, description="Bytes of PNG charts kept per served version."
    )
    max_concurrent_fits: int = Field(
        default=1,
        ge=1,
        description="Expensive requests (refits, sensitivity, uncached counterfactuals and "
        "decompositions) run at once per worker, each in its own process.",
    )
    expensive_queue: int = Field(
        default=4,
        ge=0,
        description="Expensive requests that may wait for a slot; more are refused (429).",
    )
    expensive_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Longest an expensive request may run (then 503)."
    )
    open_metrics: bool = Field(
        default=False, description="With API keys set, serve /metrics without a key."
    )
    open_docs: bool = Field(
        default=False,
        description="With API keys set, serve /docs, /openapi.json and the page without a key.",
    )
    log_level: str = "INFO"

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("home")
    @classmethod
    def _absolute(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @property
    def serving_dir(self) -> Path:
        """Where the last loaded bundle is kept for a start without the tracking server."""
        return self.home / "serving"

    def resolved_tracking_uri(self) -> str:
        # The same rule as pipelines.tracking.tracking_uri, which the service may not import.
        return (
            self.tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{self.home / 'mlflow.db'}"
        )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
