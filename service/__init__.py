"""The FastAPI service that serves forecasts and counterfactuals from the champion model."""
