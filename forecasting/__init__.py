"""Forecasts and counterfactuals for U.S. border encounters.

The library layer: data readers and store, interventions, models, backtests. It knows nothing of
HTTP, schedules or MLflow servers; ``pipelines`` and ``service`` build on it.
"""

__version__ = "0.1.0"
