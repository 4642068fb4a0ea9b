"""The probability that a month's count exceeds a threshold, consistent with the served intervals.

Served intervals are conformally calibrated (:mod:`forecasting.calibration`); the models' own
predictive distributions are far narrower (on the test bundle a UCM's sample paths put 0.3 % above
the calibrated 80 % upper bound, where 10 % belongs). So probabilities come from a distribution
that reproduces the calibrated bounds:

``sample_paths`` (families that simulate: ETS, SARIMAX, UCM, Prophet, scikit-learn, ensembles)
    The model's sample paths, each month mapped onto the calibrated intervals by a monotone
    piecewise-linear map on the ``log1p`` scale around the point forecast: the model's interval
    arm at each level goes to the calibrated arm at that level (beyond the widest level the last
    ratio carries on). A path at the model's ``l`` % bound lands on the calibrated ``l`` % bound,
    so the paths keep the model's shape between the bounds and the intervals' coverage.
``lognormal`` (families that cannot simulate: naive, seasonal naive)
    ``log1p(y)`` normal between each pair of neighbouring calibrated bounds (a lognormal through
    them), so P(y > hi_<L>) is exactly ``(100 - L) / 200``; see :func:`lognormal_exceedance`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.frame import MEAN, hi_col, lo_col

SAMPLE_PATHS = "sample_paths"
LOGNORMAL = "lognormal"
#: Paths per series behind the sample-path probabilities.
N_PATHS = 2000
SEED = 20240105
_MIN_ARM = 1e-9


def _knots(model_arms: np.ndarray, calibrated_arms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotone knots (x: model arm, y: calibrated arm) through the origin, per level ascending."""
    x = np.maximum.accumulate(np.maximum(model_arms, _MIN_ARM))
    y = np.maximum.accumulate(np.maximum(calibrated_arms, _MIN_ARM))
    return np.concatenate([[0.0], x]), np.concatenate([[0.0], y])


def _map(d: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Piecewise-linear through the knots, extended beyond the last with its ratio."""
    inside = np.interp(d, x, y)
    return np.where(d > x[-1], d * (y[-1] / x[-1]), inside)


def calibrate_paths(
    paths: np.ndarray, model: pd.DataFrame, calibrated: pd.DataFrame, level: Sequence[int]
) -> np.ndarray:
    """Map sample paths (n, h) onto calibrated intervals, month by month.

    Args:
        paths: the model's simulated counts, shape (n, h).
        model: the model's own forecast frame over the same h months (``mean``, ``lo_<l>``,
            ``hi_<l>``).
        calibrated: the served (calibrated) frame over the same months, same columns.
        level: the levels both frames hold.

    Returns:
        Counts of the same shape, ``>= 0``.
    """
    levels = sorted(level)
    m = np.log1p(model[MEAN].to_numpy(dtype=float))
    z = np.log1p(np.clip(paths, 0, None))
    out = np.empty_like(z)
    for t in range(z.shape[1]):
        up_m = [np.log1p(model[hi_col(lv)].iloc[t]) - m[t] for lv in levels]
        up_c = [np.log1p(calibrated[hi_col(lv)].iloc[t]) - m[t] for lv in levels]
        down_m = [m[t] - np.log1p(model[lo_col(lv)].iloc[t]) for lv in levels]
        down_c = [m[t] - np.log1p(calibrated[lo_col(lv)].iloc[t]) for lv in levels]
        d = z[:, t] - m[t]
        xu, yu = _knots(np.array(up_m), np.array(up_c))
        xd, yd = _knots(np.array(down_m), np.array(down_c))
        out[:, t] = m[t] + np.where(d >= 0, _map(d, xu, yu), -_map(-d, xd, yd))
    return np.clip(np.expm1(out), 0, None)


def path_exceedance(paths: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Share of paths above each threshold, shape (h, len(thresholds))."""
    t = np.asarray(thresholds, dtype=float)
    return (paths[:, :, None] > t[None, None, :]).mean(axis=0)


def lognormal_exceedance(
    frame: pd.DataFrame, level: Sequence[int], thresholds: Sequence[float]
) -> np.ndarray:
    """P(y > threshold) from the calibrated bounds alone, shape (h, len(thresholds)).

    Each bound is a quantile of a normal ``log1p(y)``: ``log1p(bound) = mu + sigma * z``. Between
    two neighbouring bounds (and beyond the outermost, along the outermost pair) the normal
    score is linear in ``log1p(y)``: a lognormal through those two bounds. So the probability of
    exceeding ``hi_<L>`` is exactly ``(100 - L) / 200``, whatever the interval's skew. Bounds
    clipped at zero carry no information and are left out; with a single bound left, the point
    forecast stands in for the median.
    """
    t = np.log1p(np.asarray(thresholds, dtype=float))
    out = np.empty((len(frame), len(t)))
    for i in range(len(frame)):
        knots: dict[float, float] = {}
        for lv in level:
            z = float(stats.norm.ppf(0.5 + lv / 200))
            lo, hi = float(frame[lo_col(lv)].iloc[i]), float(frame[hi_col(lv)].iloc[i])
            if lo > 0:
                knots.setdefault(float(np.log1p(lo)), -z)
            knots.setdefault(float(np.log1p(hi)), z)
        if len(knots) < 2:
            knots.setdefault(float(np.log1p(frame[MEAN].iloc[i])), 0.0)
        x = np.array(sorted(knots))
        zs = np.maximum.accumulate(np.array([knots[k] for k in x]))
        if len(x) < 2 or x[-1] - x[0] < _MIN_ARM:
            out[i] = (t < x[0]).astype(float)
            continue
        score = np.interp(t, x, zs)
        low_slope = (zs[1] - zs[0]) / max(x[1] - x[0], _MIN_ARM)
        high_slope = (zs[-1] - zs[-2]) / max(x[-1] - x[-2], _MIN_ARM)
        score = np.where(t < x[0], zs[0] + (t - x[0]) * low_slope, score)
        score = np.where(t > x[-1], zs[-1] + (t - x[-1]) * high_slope, score)
        out[i] = stats.norm.sf(score)
    return out
