"""Model families behind the one :class:`~forecasting.models.base.Forecaster` contract.

``MODELS`` maps a registry name (as used in experiment configs and MLflow parameters) to its class;
:func:`make_model` builds one by name.
"""

from __future__ import annotations

from typing import Any

from forecasting.models.base import Forecaster
from forecasting.models.ensemble import Ensemble
from forecasting.models.ets import ETS
from forecasting.models.leading import LeadingIndicators
from forecasting.models.naive import Naive, SeasonalNaive
from forecasting.models.prophet_model import Prophet
from forecasting.models.sarimax import SARIMAX
from forecasting.models.sklearn_model import SklearnForecaster
from forecasting.models.ucm import UCM

MODELS: dict[str, type[Forecaster]] = {
    "naive": Naive,
    "seasonal_naive": SeasonalNaive,
    "ets": ETS,
    "sarimax": SARIMAX,
    "ucm": UCM,
    "prophet": Prophet,
    "sklearn": SklearnForecaster,
    "leading": LeadingIndicators,
    "ensemble": Ensemble,
}


def make_model(name: str, **params: Any) -> Forecaster:
    """Build an unfitted forecaster by registry name.

    Args:
        name: a key of :data:`MODELS`, e.g. ``"sarimax"``.
        **params: hyperparameters of that family's constructor.

    Raises:
        ValueError: the name is not registered, or a parameter is not one the family takes.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models are {sorted(MODELS)}")
    try:
        return MODELS[name](**params)
    except TypeError as exc:
        raise ValueError(f"model {name!r} does not take parameters {sorted(params)}") from exc


__all__ = [
    "ETS",
    "MODELS",
    "SARIMAX",
    "UCM",
    "Ensemble",
    "Forecaster",
    "LeadingIndicators",
    "Naive",
    "Prophet",
    "SeasonalNaive",
    "SklearnForecaster",
    "make_model",
]
