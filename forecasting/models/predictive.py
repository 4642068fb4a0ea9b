"""Forecast frames from the predictive distributions the families produce: Gaussian on the count
or the ``log1p`` scale, sample paths, and coefficient effects with Wald intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.frame import EFFECT, MEAN, hi_col, lo_col


def z_value(level: int) -> float:
    """Standard normal quantile bounding a central ``level`` % interval (1.2816 for 80)."""
    return float(stats.norm.ppf(0.5 + level / 200))


def normal_frame(mean: np.ndarray, sd: np.ndarray, level: Sequence[int]) -> pd.DataFrame:
    """Forecast columns for a Gaussian predictive distribution on the count scale."""
    out = {MEAN: mean}
    for lv in level:
        out[lo_col(lv)] = mean - z_value(lv) * sd
        out[hi_col(lv)] = mean + z_value(lv) * sd
    return pd.DataFrame(out)


def lognormal_frame(mu: np.ndarray, var: np.ndarray, level: Sequence[int]) -> pd.DataFrame:
    """Forecast columns for a Gaussian predictive distribution of ``log1p(y)``.

    The mean is the mean of the back-transformed distribution, ``exp(mu + var / 2) - 1``, not
    ``expm1(mu)`` (which is its median); interval bounds are quantiles and transform directly.

    Args:
        mu: predictive mean of ``log1p(y)``, shape (h,).
        var: predictive variance of ``log1p(y)``, shape (h,).
        level: interval levels in percent.
    """
    sd = np.sqrt(var)
    out = {MEAN: np.expm1(mu + var / 2)}
    for lv in level:
        out[lo_col(lv)] = np.expm1(mu - z_value(lv) * sd)
        out[hi_col(lv)] = np.expm1(mu + z_value(lv) * sd)
    return pd.DataFrame(out)


def multiplicative_frame(
    point: np.ndarray, sd_log: np.ndarray, level: Sequence[int]
) -> pd.DataFrame:
    """Forecast columns around a point forecast on the count scale, Gaussian on ``log1p``.

    The point is the ``mean`` column as it is (a textbook point forecast such as the last value),
    and the bounds are ``expm1(log1p(point) ± z * sd_log)``.
    """
    out = {MEAN: point}
    log_point = np.log1p(point)
    for lv in level:
        out[lo_col(lv)] = np.expm1(log_point - z_value(lv) * sd_log)
        out[hi_col(lv)] = np.expm1(log_point + z_value(lv) * sd_log)
    return pd.DataFrame(out)


def sample_frame(paths: np.ndarray, level: Sequence[int]) -> pd.DataFrame:
    """Forecast columns from sample paths on the count scale, shape (n, h): mean and quantiles."""
    out = {MEAN: paths.mean(axis=0)}
    for lv in level:
        tail = (100 - lv) / 200
        out[lo_col(lv)] = np.quantile(paths, tail, axis=0)
        out[hi_col(lv)] = np.quantile(paths, 1 - tail, axis=0)
    return pd.DataFrame(out)


def effect_frame(coef: pd.Series, se: pd.Series, level: Sequence[int]) -> pd.DataFrame:
    """Percent effects ``100 * (exp(coef) - 1)`` of log-scale coefficients, with Wald intervals.

    Args:
        coef: coefficient per regressor on the ``log1p`` scale (the effect of the column going
            from 0 to 1).
        se: its standard error.
        level: interval levels in percent.
    """
    out = {EFFECT: 100 * np.expm1(coef)}
    for lv in level:
        out[lo_col(lv)] = 100 * np.expm1(coef - z_value(lv) * se)
        out[hi_col(lv)] = 100 * np.expm1(coef + z_value(lv) * se)
    return pd.DataFrame(out, index=coef.index)
