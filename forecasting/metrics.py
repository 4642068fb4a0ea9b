"""Point and interval accuracy measures for monthly forecasts: the project's only formulas.

Functions take plain array-likes of equal length (actuals ``y``, forecasts ``y_hat``, bounds
``lo``/``hi``). The plural ones (:func:`absolute_errors`, :func:`scaled_errors`,
:func:`smape_terms`, :func:`covered`, :func:`interval_scores`, :func:`quantile_losses`,
:func:`weighted_interval_scores`) return one term per month, for
callers that pool months their own way (a backtest per step, a benchmark per series and origin);
the others return a float, the mean of those terms. Scaled measures divide by the in-sample
seasonal-naive error of ``y_train`` (``season=12``), so they compare across series of different
size (MSIS, the M4 competition's scaled interval score, is :func:`interval_scores` over that
scale); on series whose history barely varies (small citizenships) that scale is tiny and the scaled
measure explodes, so compare models there with :func:`rel_mae` and :func:`geometric_mean`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

SEASON = 12


def _arrays(*arrays: ArrayLike) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=float).ravel() for a in arrays]
    lengths = {len(a) for a in out}
    if len(lengths) > 1:
        raise ValueError(f"inputs must have equal lengths; got {[len(a) for a in out]}")
    if not out[0].size:
        raise ValueError("inputs must not be empty")
    return out


def seasonal_scale(y_train: ArrayLike, season: int = SEASON, power: int = 1) -> float:
    """Mean of ``|y_t - y_{t-season}| ** power`` over the training series.

    Args:
        y_train: the in-sample series, oldest first, at least ``season + 1`` values.
        season: the seasonal lag in months.
        power: 1 for the MASE scale, 2 for the RMSSE scale.

    Raises:
        ValueError: ``y_train`` is shorter than ``season + 1``.
    """
    (train,) = _arrays(y_train)
    if len(train) <= season:
        raise ValueError(
            f"y_train needs at least season + 1 = {season + 1} values; got {len(train)}"
        )
    return float(np.mean(np.abs(train[season:] - train[:-season]) ** power))


def absolute_errors(y: ArrayLike, y_hat: ArrayLike) -> np.ndarray:
    """``|y - y_hat|`` per month."""
    y, y_hat = _arrays(y, y_hat)
    return np.abs(y - y_hat)


def scaled_errors(y: ArrayLike, y_hat: ArrayLike, scale: ArrayLike, power: int = 1) -> np.ndarray:
    """``|y - y_hat| ** power / scale`` per month; ``scale`` from :func:`seasonal_scale` with the
    same ``power``, one value or one per month (each month's origin has its own history)."""
    errors = absolute_errors(y, y_hat) ** power
    (scale,) = _arrays(np.broadcast_to(np.asarray(scale, dtype=float), errors.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, errors / scale, np.nan)


def smape_terms(y: ArrayLike, y_hat: ArrayLike) -> np.ndarray:
    """``200 |y - y_hat| / (|y| + |y_hat|)`` per month; 0 where both are zero (a perfect
    forecast)."""
    y, y_hat = _arrays(y, y_hat)
    denom = np.abs(y) + np.abs(y_hat)
    return 200 * np.divide(np.abs(y - y_hat), denom, out=np.zeros_like(denom), where=denom > 0)


def covered(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
    """1.0 where the actual lies in its interval (bounds included), else 0.0."""
    y, lo, hi = _arrays(y, lo, hi)
    return ((lo <= y) & (y <= hi)).astype(float)


def interval_scores(y: ArrayLike, lo: ArrayLike, hi: ArrayLike, level: int) -> np.ndarray:
    """The interval (Winkler) score of a ``level`` % interval per month, in the units of ``y``.

    The width ``hi - lo``, plus ``2 / alpha`` times the distance by which the actual falls outside
    (``alpha = 1 - level / 100``). A proper score: lower is better, and it rewards narrow
    intervals only while they keep covering.
    """
    y, lo, hi = _arrays(y, lo, hi)
    alpha = _check_level(level)
    penalty = np.clip(lo - y, 0, None) + np.clip(y - hi, 0, None)
    return hi - lo + 2 / alpha * penalty


def _check_level(level: int) -> float:
    """``alpha = 1 - level / 100`` of a percent level."""
    if isinstance(level, bool) or not isinstance(level, numbers.Integral) or not 0 < level < 100:
        raise ValueError(f"level must be a percent integer in (0, 100), e.g. 95; got {level!r}")
    return 1 - level / 100


def quantile_losses(y: ArrayLike, q: ArrayLike, tau: float) -> np.ndarray:
    """The quantile (pinball) loss of ``q`` as the ``tau`` quantile, per month:
    ``tau * (y - q)`` when ``y >= q``, else ``(1 - tau) * (q - y)``. A proper score for
    quantiles; ``tau`` in (0, 1)."""
    if not 0 < tau < 1:
        raise ValueError(f"tau must be a probability in (0, 1), e.g. 0.975; got {tau!r}")
    y, q = _arrays(y, q)
    return np.maximum(tau * (y - q), (tau - 1) * (y - q))


def weighted_interval_scores(
    y: ArrayLike, median: ArrayLike, intervals: Mapping[int, tuple[ArrayLike, ArrayLike]]
) -> np.ndarray:
    """The weighted interval score of a median and central intervals, per month (units of y).

    ``(|y - median| / 2 + sum_l alpha_l / 2 * IS_l) / (K + 1/2)`` over the ``K`` levels
    (``alpha_l = 1 - l / 100``; Bracher et al. 2021). It is the mean pinball loss over the
    ``2K + 1`` quantiles the bounds and the median stand for, times two, and so a quantile
    approximation of the CRPS over the served levels; proper and lower is better.

    Args:
        y: the actuals.
        median: the forecast's median (the project's ``mean`` on the count scale is the
            back-transformed log-scale centre: a median).
        intervals: level in percent -> (lo, hi).
    """
    if not intervals:
        raise ValueError("intervals must hold at least one level, e.g. {80: (lo, hi)}")
    total = 0.5 * absolute_errors(y, median)
    for level, (lo, hi) in intervals.items():
        total = total + _check_level(level) / 2 * interval_scores(y, lo, hi, level)
    return total / (len(intervals) + 0.5)


def mae(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Mean absolute error, in the units of ``y``."""
    return float(np.mean(absolute_errors(y, y_hat)))


def mase(y: ArrayLike, y_hat: ArrayLike, y_train: ArrayLike, season: int = SEASON) -> float:
    """Mean absolute scaled error: MAE over the in-sample mean ``|y_t - y_{t-season}|``.

    Returns NaN when the scale is zero (a training series that repeats exactly every season).
    """
    return float(np.mean(scaled_errors(y, y_hat, seasonal_scale(y_train, season))))


def rmsse(y: ArrayLike, y_hat: ArrayLike, y_train: ArrayLike, season: int = SEASON) -> float:
    """Root mean squared scaled error: ``sqrt(MSE / mean((y_t - y_{t-season})**2))``.

    Returns NaN when the scale is zero.
    """
    scale = seasonal_scale(y_train, season, power=2)
    return float(np.sqrt(np.mean(scaled_errors(y, y_hat, scale, power=2))))


def smape(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Symmetric MAPE in percent (0-200): the mean of :func:`smape_terms`."""
    return float(np.mean(smape_terms(y, y_hat)))


def coverage(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> float:
    """Share of actuals inside their interval, bounds included (0-1)."""
    return float(np.mean(covered(y, lo, hi)))


def relative_width(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> float:
    """Mean interval width relative to the mean actual: ``mean(hi - lo) / mean(|y|)``."""
    y, lo, hi = _arrays(y, lo, hi)
    level = np.mean(np.abs(y))
    return float(np.mean(hi - lo) / level) if level > 0 else float("nan")


def winkler(y: ArrayLike, lo: ArrayLike, hi: ArrayLike, level: int) -> float:
    """Mean interval (Winkler) score of ``level`` % intervals: the mean of
    :func:`interval_scores`."""
    return float(np.mean(interval_scores(y, lo, hi, level)))


def msis(
    y: ArrayLike, lo: ArrayLike, hi: ArrayLike, level: int, y_train: ArrayLike, season: int = SEASON
) -> float:
    """Mean scaled interval score (M4): :func:`winkler` over the in-sample mean
    ``|y_t - y_{t-season}|``, so it compares across series. NaN when that scale is zero."""
    scale = seasonal_scale(y_train, season)
    return winkler(y, lo, hi, level) / scale if scale > 0 else float("nan")


def rel_mae(y: ArrayLike, y_hat: ArrayLike, y_benchmark: ArrayLike) -> float:
    """MAE of a forecast relative to a benchmark's (seasonal naive) on the same months.

    Below 1 the forecast beats the benchmark. NaN when the benchmark is exact.
    """
    bench = mae(y, y_benchmark)
    return mae(y, y_hat) / bench if bench > 0 else float("nan")


def geometric_mean(values: Sequence[float] | ArrayLike) -> float:
    """Geometric mean of positive ratios (e.g. relative MAEs across series or origins).

    Raises:
        ValueError: a value is not a positive finite number.
    """
    (x,) = _arrays(values)
    if not (np.isfinite(x) & (x > 0)).all():
        bad = x[~(np.isfinite(x) & (x > 0))]
        raise ValueError(f"geometric_mean needs positive finite values; got {bad.tolist()}")
    return float(np.exp(np.mean(np.log(x))))
