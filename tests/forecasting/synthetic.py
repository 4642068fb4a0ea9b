"""A deterministic monthly series that looks like an encounter count, with a known step effect."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.frame import DS

START = "2016-01-01"
STEP_START = "2020-06-01"


def encounter_series(
    n: int = 96, effect: float = -0.30, seed: int = 0, start: str = START
) -> tuple[pd.Series, pd.DataFrame]:
    """Counts ``y`` (~10-30 thousand a month) and regressors ``X`` on ``n`` month starts.

    ``log(y)`` is a slow trend, a yearly cycle, a random walk and AR(1) noise, plus
    ``log(1 + effect)`` from ``STEP_START`` on. ``X`` has that ``step`` column (0 before, 1 after).
    """
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n, freq="MS", name=DS)
    t = np.arange(n)
    step = (index >= STEP_START).astype(float)
    noise = np.zeros(n)
    shocks = rng.normal(0, 0.06, n)
    for i in range(1, n):
        noise[i] = 0.5 * noise[i - 1] + shocks[i]
    log_y = (
        np.log(15_000)
        + 0.004 * t
        + 0.25 * np.sin(2 * np.pi * (index.month.to_numpy() - 3) / 12)
        + np.cumsum(rng.normal(0, 0.02, n))
        + noise
        + np.log1p(effect) * step
    )
    y = pd.Series(np.round(np.exp(log_y)), index=index, name="y")
    return y, pd.DataFrame({"step": step}, index=index)


def future(X: pd.DataFrame, h: int, **values: float) -> pd.DataFrame:
    """``h`` future months of regressors: the given values, else the last row carried forward."""
    index = pd.date_range(X.index[-1] + pd.offsets.MonthBegin(1), periods=h, freq="MS", name=DS)
    out = pd.DataFrame({c: float(X[c].iloc[-1]) for c in X.columns}, index=index)
    for name, value in values.items():
        out[name] = value
    return out
