"""Point and interval accuracy measures for monthly forecasts.

Every function takes plain array-likes of equal length (actuals ``y``, forecasts ``y_hat``, bounds
``lo``/``hi``) and returns a float. Scaled measures divide by the in-sample seasonal-naive error of
``y_train`` (``season=12``), so they compare across series of different size; on series whose
history barely varies (small citizenships) that scale is tiny and the scaled measure explodes, so
compare models there with :func:`rel_mae` and :func:`geometric_mean`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

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


def mae(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Mean absolute error, in the units of ``y``."""
    y, y_hat = _arrays(y, y_hat)
    return float(np.mean(np.abs(y - y_hat)))


def mase(y: ArrayLike, y_hat: ArrayLike, y_train: ArrayLike, season: int = SEASON) -> float:
    """Mean absolute scaled error: MAE over the in-sample mean ``|y_t - y_{t-season}|``.

    Returns NaN when the scale is zero (a training series that repeats exactly every season).
    """
    scale = seasonal_scale(y_train, season)
    return mae(y, y_hat) / scale if scale > 0 else float("nan")


def rmsse(y: ArrayLike, y_hat: ArrayLike, y_train: ArrayLike, season: int = SEASON) -> float:
    """Root mean squared scaled error: ``sqrt(MSE / mean((y_t - y_{t-season})**2))``.

    Returns NaN when the scale is zero.
    """
    y, y_hat = _arrays(y, y_hat)
    scale = seasonal_scale(y_train, season, power=2)
    return float(np.sqrt(np.mean((y - y_hat) ** 2) / scale)) if scale > 0 else float("nan")


def smape(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Symmetric MAPE in percent (0-200): mean of ``200 |y - y_hat| / (|y| + |y_hat|)``.

    A month where both actual and forecast are zero counts as a perfect forecast.
    """
    y, y_hat = _arrays(y, y_hat)
    denom = np.abs(y) + np.abs(y_hat)
    ratio = np.divide(np.abs(y - y_hat), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(200 * np.mean(ratio))


def coverage(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> float:
    """Share of actuals inside their interval, bounds included (0-1)."""
    y, lo, hi = _arrays(y, lo, hi)
    return float(np.mean((lo <= y) & (y <= hi)))


def relative_width(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> float:
    """Mean interval width relative to the mean actual: ``mean(hi - lo) / mean(|y|)``."""
    y, lo, hi = _arrays(y, lo, hi)
    level = np.mean(np.abs(y))
    return float(np.mean(hi - lo) / level) if level > 0 else float("nan")


def winkler(y: ArrayLike, lo: ArrayLike, hi: ArrayLike, level: int) -> float:
    """Mean Winkler (interval) score of ``level`` % intervals, in the units of ``y``.

    Per month: the width ``hi - lo``, plus ``2 / alpha`` times the distance by which the actual
    falls outside the interval (``alpha = 1 - level / 100``). Lower is better; it rewards narrow
    intervals only while they keep covering.
    """
    y, lo, hi = _arrays(y, lo, hi)
    if isinstance(level, bool) or not isinstance(level, numbers.Integral) or not 0 < level < 100:
        raise ValueError(f"level must be a percent integer in (0, 100), e.g. 95; got {level!r}")
    alpha = 1 - level / 100
    penalty = np.clip(lo - y, 0, None) + np.clip(y - hi, 0, None)
    return float(np.mean(hi - lo + 2 / alpha * penalty))


def rel_mae(y: ArrayLike, y_hat: ArrayLike, y_benchmark: ArrayLike) -> float:
    """MAE of a forecast relative to a benchmark's (seasonal naive) on the same months.

    Below 1 the forecast beats the benchmark. NaN when the benchmark is exact.
    """
    y, y_hat, y_benchmark = _arrays(y, y_hat, y_benchmark)
    bench = float(np.mean(np.abs(y - y_benchmark)))
    return float(np.mean(np.abs(y - y_hat))) / bench if bench > 0 else float("nan")


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
