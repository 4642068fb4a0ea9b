"""The experiment schema: what a training run backtests, fits, logs and registers.

An experiment is a YAML file under ``experiments/``; it validates at load time and is logged to
MLflow verbatim, so a run can always be traced to the question that produced it.
"""

from __future__ import annotations

import fnmatch
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting.errors import DataError
from forecasting.frame import check_level
from forecasting.hierarchy import ShareConfig
from forecasting.models import MODELS
from forecasting.pooled_calibration import (
    DEFAULT_HALF_LIFE_MONTHS,
    DEFAULT_POOLED_WINDOW_MONTHS,
    DEFAULT_VOLATILITY_MONTHS,
    DEFAULT_VOLATILITY_POWER,
    PooledCalibrator,
)

#: Shipped as package data of ``experiments``, so an installed (not editable) copy finds it too.
DEFAULT_EXPERIMENT = Path(str(resources.files("experiments").joinpath("default.yaml")))
#: The stand-in ``encounters up`` serves while the default experiment trains.
QUICK_EXPERIMENT = Path(str(resources.files("experiments").joinpath("quick.yaml")))
#: Retraining: a series' challenger may be this much worse (relMAE ratio - 1) than the champion.
DEFAULT_MARGIN = 0.10


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSpec(_Frozen):
    """One candidate family and its hyperparameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    #: Tells two candidates of one family apart (e.g. ``sarimax_no_events``).
    alias: str | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; registered models are {sorted(MODELS)}")
        return name

    @property
    def label(self) -> str:
        return self.alias or self.name


class BacktestConfig(_Frozen):
    """Rolling origins: the last training month of each, every ``step_months``."""

    first_cutoff: str = Field(pattern=r"^\d{4}-\d{2}$")
    last_cutoff: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    step_months: int = Field(default=3, ge=1, le=24)
    h: int = Field(default=12, ge=1, le=36)

    def cutoffs(self, newest: pd.Timestamp) -> list[pd.Timestamp]:
        """Origins up to ``last_cutoff``, or up to the newest month that still has an actual."""
        last = (
            pd.Timestamp(self.last_cutoff) if self.last_cutoff else newest - pd.DateOffset(months=1)
        )
        last = min(last, newest - pd.DateOffset(months=1))
        return list(pd.date_range(self.first_cutoff, last, freq=f"{self.step_months}MS"))


class CalibrationConfig(_Frozen):
    """How the served intervals are calibrated from the backtests (:mod:`forecasting.calibration`).

    ``pooled``: each series' log errors scaled by its recent volatility and pooled over the
    experiment's series, per months-ahead step
    (:class:`~forecasting.pooled_calibration.PooledCalibrator`);
    ``per_series``: each series' own errors only (:class:`~forecasting.calibration.Calibrator`).
    The defaults were chosen by ``experiments/intervals`` on origins before the accuracy
    benchmark's window.
    """

    method: Literal["pooled", "per_series"] = "pooled"
    #: Months of changes a series' volatility averages (``pooled``).
    volatility_months: int = Field(default=DEFAULT_VOLATILITY_MONTHS, ge=1, le=240)
    #: Errors are scaled by the volatility to this power (1: fully, 0: pooled unscaled).
    volatility_power: float = Field(default=DEFAULT_VOLATILITY_POWER, ge=0, le=1)
    #: Weight of an error halves with this many months of age; ``None``: equal weights.
    half_life_months: float | None = Field(default=DEFAULT_HALF_LIFE_MONTHS, gt=0)


class HierarchyConfig(_Frozen):
    """The panel at its newest month (:mod:`forecasting.hierarchy`): nowcasts of series whose
    data end earlier and coherent means over the splits the data define."""

    enabled: bool = True
    #: Per breakdown dimension, series of the same parent whose share changes move the
    #: children's shares (e.g. ``sector: [southwest/usbp/citizenship=mexico]``).
    covariates: dict[str, list[str]] = Field(default_factory=dict)
    ridge: float = Field(default=1.0, ge=0)
    window_months: int = Field(default=72, ge=12)
    level_months: int = Field(default=1, ge=1, le=24)

    def share_config(self) -> ShareConfig:
        return ShareConfig(self.covariates, self.ridge, self.window_months, self.level_months)


class Experiment(_Frozen):
    """An experiment definition (``experiments/<name>.yaml``)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    #: A stand-in served until a full experiment replaces it (``experiments/quick.yaml``): the
    #: service labels it so in ``/health``, ``/v1/models`` and the page.
    provisional: bool = False
    #: Each candidate's run gets a fan chart and an error-by-horizon PNG (about 0.3 s each on
    #: 2 cores); the numbers behind them (forecast.csv, by_horizon.csv) are logged either way.
    charts: bool = True
    mlflow_experiment: str
    registered_model: str = "border-encounters"
    series: list[str] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    baseline: ModelSpec = ModelSpec(name="seasonal_naive")
    interventions: bool = True
    exclude_events: list[str] = Field(default_factory=list)
    train_start: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    #: Series with fewer months (from ``train_start``) are left out of the experiment.
    min_history_months: int = Field(default=0, ge=0)
    backtest: BacktestConfig
    level: list[int] = Field(default_factory=lambda: [50, 80, 90, 95])
    max_h: int = Field(default=36, ge=1, le=36)
    selection_metric: Literal["rel_mae", "mase", "smape"] = "rel_mae"
    #: Also offer the best ``k`` candidates combined, weighted by backtest skill; 0 or 1: off.
    ensemble_top_k: int = Field(default=3, ge=0, le=10)
    #: ``pooled``: one candidate for every series, the best by skill pooled over the series
    #: (``forecasting.selection.choose_pooled``); ``per_series``: each series its own best.
    selection: Literal["pooled", "per_series"] = "pooled"
    #: Months of errors that calibrate the intervals (``pooled``: by the month each was
    #: observed; ``per_series``: by its origin, 36 before pooling); 0: the whole backtest.
    calibration_window_months: int = Field(default=DEFAULT_POOLED_WINDOW_MONTHS or 0, ge=0)
    calibration: CalibrationConfig = CalibrationConfig()
    hierarchy: HierarchyConfig = HierarchyConfig()

    @field_validator("level")
    @classmethod
    def _levels(cls, level: list[int]) -> list[int]:
        return check_level(level)

    @model_validator(mode="after")
    def _unique_models(self) -> Experiment:
        labels = [m.label for m in self.models]
        if len(set(labels)) != len(labels):
            raise ValueError(f"models repeat a name: {labels}; give each candidate once")
        return self

    def pooled_calibrator(self) -> PooledCalibrator:
        """The unfitted :class:`PooledCalibrator` this experiment's ``calibration`` describes."""
        config = self.calibration
        return PooledCalibrator(
            self.level,
            config.volatility_months,
            self.calibration_window_months or None,
            config.half_life_months,
            config.volatility_power,
        )

    def resolve_series(self, known: list[str]) -> list[str]:
        """Expand glob patterns (``southwest/usbp/sector=*``) against the store's keys."""
        out: list[str] = []
        for pattern in self.series:
            matched = sorted(fnmatch.filter(known, pattern))
            if not matched:
                raise DataError(
                    f"experiment {self.name!r}: series {pattern!r} matches no series in the store"
                )
            out += [k for k in matched if k not in out]
        return out

    @classmethod
    def load(cls, path: str | Path) -> tuple[Experiment, str]:
        """The experiment and its YAML text (logged verbatim)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise DataError(f"{path}: cannot read the experiment file: {exc}") from exc
        return cls.from_text(text, str(path)), text

    @classmethod
    def from_text(cls, text: str, origin: str) -> Experiment:
        """Validate an experiment's YAML text; ``origin`` names it in error messages."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DataError(f"{origin}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise DataError(f"{origin}: an experiment is a YAML mapping; got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
            )
            raise DataError(f"{origin}: invalid experiment: {problems}") from exc
