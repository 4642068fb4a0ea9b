"""Peer forecasts as a typical user runs them: statsforecast on counts and log1p counts, Prophet."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from forecasting.frame import DS, UNIQUE_ID, Y, hi_col, lo_col

log = logging.getLogger(__name__)
SEASON = 12


def statsforecast_models(suffix: str) -> list:
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive

    return [
        Naive(alias=f"Naive{suffix}"),
        SeasonalNaive(season_length=SEASON, alias=f"SeasonalNaive{suffix}"),
        AutoARIMA(season_length=SEASON, alias=f"AutoARIMA{suffix}"),
        AutoETS(season_length=SEASON, alias=f"AutoETS{suffix}"),
        AutoTheta(season_length=SEASON, alias=f"AutoTheta{suffix}"),
    ]


def _long(fc: pd.DataFrame, level: list[int], back) -> pd.DataFrame:
    """statsforecast's wide output (one column block per model) → one row per model and month."""
    models = [
        c for c in fc.columns if c not in (UNIQUE_ID, DS) and "-lo-" not in c and "-hi-" not in c
    ]
    out = []
    for model in models:
        part = fc[[UNIQUE_ID, DS]].copy()
        part["model"] = model
        part["mean"] = back(fc[model])
        for lv in level:
            part[lo_col(lv)] = back(fc[f"{model}-lo-{lv}"])
            part[hi_col(lv)] = back(fc[f"{model}-hi-{lv}"])
        out.append(part)
    return pd.concat(out, ignore_index=True)


def statsforecast_peers(train: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
    """Naive, SeasonalNaive, AutoARIMA, AutoETS, AutoTheta on counts and on log1p counts."""
    from statsforecast import StatsForecast

    frames = []
    for suffix, forward, back in (("", lambda y: y, lambda y: y), ("_log", np.log1p, np.expm1)):
        df = train[[UNIQUE_ID, DS, Y]].assign(**{Y: forward(train[Y].astype(float))})
        sf = StatsForecast(models=statsforecast_models(suffix), freq="MS", n_jobs=1)
        fc = sf.forecast(df=df, h=h, level=level)
        frames.append(_long(fc.reset_index() if UNIQUE_ID not in fc.columns else fc, level, back))
    return pd.concat(frames, ignore_index=True)


def prophet_peer(train: pd.DataFrame, h: int, level: list[int], seed: int = 0) -> pd.DataFrame:
    """Prophet with defaults; both interval levels from its own predictive samples."""
    from prophet import Prophet

    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.WARNING)
    out = []
    for key, group in train.groupby(UNIQUE_ID, sort=False):
        np.random.seed(seed)
        model = Prophet().fit(group[[DS, Y]])
        future = model.make_future_dataframe(periods=h, freq="MS", include_history=False)
        mean = model.predict(future)["yhat"].to_numpy()
        samples = model.predictive_samples(future)["yhat"]
        part = pd.DataFrame({UNIQUE_ID: key, DS: future[DS], "model": "Prophet", "mean": mean})
        for lv in level:
            part[lo_col(lv)] = np.quantile(samples, (100 - lv) / 200, axis=1)
            part[hi_col(lv)] = np.quantile(samples, 1 - (100 - lv) / 200, axis=1)
        out.append(part)
    return pd.concat(out, ignore_index=True)
