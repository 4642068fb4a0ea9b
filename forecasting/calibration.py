"""Conformal calibration of forecast intervals, per months-ahead step, from backtest errors.

Model intervals on this data are far too narrow out of sample (80 % intervals covered 31-62 % in
the library comparison). The :class:`Calibrator` replaces each interval by one from the backtest's
own errors on the ``log1p`` scale around the point forecast, one half-width per level and step:

- a backtest row's nonconformity score is its absolute log error ``|log1p(y) - log1p(mean)|``;
- the half-width for step ``k`` is the split-conformal quantile of the scores at step ``k``: the
  ``ceil((n + 1) * l / 100)``-th smallest of ``n``. When step ``k`` alone has too few scores for
  that rank to exist (19 for 95 %), the neighbouring steps ``k - b .. k + b`` are pooled, with the
  smallest ``b`` that suffices;
- a calibrated interval is ``expm1(m - w) .. expm1(m + w)`` with ``m = log1p(mean)``:
  multiplicative around the point forecast, clipped at zero;
- half-widths are made non-decreasing over the steps and strictly nested over the levels
  (:func:`well_formed`): a forecast is no surer further ahead, and a wider level never shares a
  bound with a narrower one (except at zero);
- a step beyond the backtest's last, ``K``, gets ``w_K * sqrt(k / K)``, with a warning; training
  backtests run to the served horizon so that no served step needs it.

The model's own interval does not enter: where a model (or an ensemble member) has very wide
log-scale arms, any multiple of them explodes on volatile citizenships, so the width comes from the
errors alone.

One series' own errors are few (a handful per step from a training's origins), so the 95 % half-
width is nearly their maximum, and a quiet series inherits the width of its worst recent shock:
:mod:`forecasting.pooled_calibration` pools the errors of every series of an experiment instead
(the training default) and hands each series a :class:`Calibrator`.

The guarantee is the usual split-conformal one: if future errors behave like the backtest's, the
``l`` % intervals cover at least ``l`` % of the time. On this data they do not for long: regimes
change. The :class:`Calibrator` alone uses a window of recent origins (``DEFAULT_WINDOW_MONTHS``,
36 months, chosen the same way); pooled and scaled, every observed error served best.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from forecasting.backtest import observed_by
from forecasting.errors import DataError, EncountersWarning, NotFittedError
from forecasting.frame import (
    CUTOFF,
    MEAN,
    STEP,
    Y,
    check_level,
    frame_levels,
    hi_col,
    lo_col,
)

#: Months of errors that calibrate (see the docstring and :class:`PooledCalibrator`).
DEFAULT_WINDOW_MONTHS = 36
#: The nonconformity score, stored with each fit so a calibrator of another kind is refused.
SCORE = "absolute log1p error"


def min_scores(level: int) -> int:
    """The fewest scores whose conformal ``level`` % quantile exists (4 for 80 %, 19 for 95 %)."""
    return math.ceil(level / (100 - level))


def _check_columns(frame: pd.DataFrame, level: Sequence[int] | None) -> list[int]:
    """The levels to calibrate: ``level``, or those the frame has bounds for. Fitting reads only
    ``step``, ``y`` and ``mean``; the bounds are what :meth:`Calibrator.transform` replaces."""
    levels = frame_levels(frame) if level is None else check_level(level)
    if not levels:
        raise DataError(f"frame has no lo_<l>/hi_<l> interval columns; got {list(frame.columns)}")
    missing = [c for c in (STEP, Y, MEAN) if c not in frame.columns]
    if missing:
        raise DataError(f"frame is missing columns {missing}; got {list(frame.columns)}")
    return levels


class Calibrator:
    """Per-step conformal interval half-widths on the ``log1p`` scale, fitted on a backtest frame.

    Args:
        level: the interval levels to calibrate, in percent; ``None`` for every level found in
            the frame given to :meth:`fit`.

    Attributes set by :meth:`fit`:
        factors_: frame indexed by ``step`` with one column per level: the interval's half-width
            on the ``log1p`` scale.
        bandwidth_: same shape: how many neighbouring steps on each side were pooled.
    """

    def __init__(self, level: Sequence[int] | None = None):
        self.level = level

    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn the factors from a backtest frame.

        Args:
            frame: output of :func:`forecasting.backtest.backtest` (``step``, ``y``, ``mean``,
                ``lo_<l>``, ``hi_<l>``); rows without an actual are ignored.

        Raises:
            DataError: a level's columns are missing, or there are too few scored rows for its
                conformal quantile even with every step pooled.
        """
        levels = _check_columns(frame, self.level)
        data = frame.dropna(subset=[Y])
        steps = np.sort(frame[STEP].unique())
        factors, bandwidths = {}, {}
        actual = np.log1p(data[Y].to_numpy(dtype=float))
        for lv in levels:
            needed = min_scores(lv)
            if len(data) < needed:
                raise DataError(
                    f"calibrating {lv}% intervals needs at least {needed} backtest rows with an "
                    f"actual; got {len(data)}"
                )
            scores = np.abs(actual - np.log1p(data[MEAN].to_numpy(dtype=float)))
            row_steps = data[STEP].to_numpy()
            factors[lv], bandwidths[lv] = [], []
            for step in steps:
                for b in range(len(steps) + 1):
                    pool = np.sort(scores[np.abs(row_steps - step) <= b])
                    rank = math.ceil((len(pool) + 1) * lv / 100)
                    if rank <= len(pool):
                        break
                factors[lv].append(pool[rank - 1])
                bandwidths[lv].append(b)
        index = pd.Index(steps, name=STEP)
        self.score_ = SCORE
        self.factors_ = well_formed(pd.DataFrame(factors, index=index))
        self.bandwidth_ = pd.DataFrame(bandwidths, index=index)
        return self

    @classmethod
    def from_factors(cls, factors: pd.DataFrame) -> Calibrator:
        """A fitted calibrator with given half-widths (index ``step``, a column per level), e.g.
        a series' share of a :class:`PooledCalibrator`."""
        calibrator = cls(list(factors.columns))
        calibrator.score_ = SCORE
        calibrator.factors_ = well_formed(factors)
        calibrator.bandwidth_ = pd.DataFrame(0, index=factors.index, columns=factors.columns)
        return calibrator

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Recalibrate the intervals of a forecast or backtest frame.

        Args:
            frame: a forecast frame (rows are steps 1, 2, ... in order) or a backtest frame (with
                a ``step`` column), holding ``lo_<l>``/``hi_<l>`` for the fitted levels.

        Returns:
            A copy with the fitted levels' bounds replaced, clipped at zero and nested (a wider
            level never lies inside a narrower one). Steps beyond the last fitted one, ``K``,
            get its half-width times ``sqrt(step / K)``, with a warning.

        Raises:
            NotFittedError: before :meth:`fit`.
            DataError: a fitted level's columns are missing.
        """
        if not hasattr(self, "factors_"):
            raise NotFittedError("this Calibrator is not fitted yet; call fit(backtest_frame)")
        if getattr(self, "score_", None) != SCORE:
            # A calibrator pickled by an earlier version holds multipliers of the model's arms;
            # read as half-widths they would give wrong intervals without a word.
            raise NotFittedError(
                "this Calibrator was fitted by an earlier version (its factors scale the model's "
                "own interval); retrain the model (encounters retrain) to calibrate it again"
            )
        levels = list(self.factors_.columns)
        missing = [c for lv in levels for c in (lo_col(lv), hi_col(lv)) if c not in frame.columns]
        if missing:
            raise DataError(
                f"frame is missing interval columns {missing}; got {list(frame.columns)}"
            )
        steps = frame[STEP].to_numpy() if STEP in frame.columns else np.arange(1, len(frame) + 1)
        out = frame.copy()
        bounds = bands(frame[MEAN].to_numpy(dtype=float), self.half_widths(steps))
        out[bounds.columns] = bounds.to_numpy()
        return out

    def half_widths(self, steps: np.ndarray) -> pd.DataFrame:
        """The fitted half-widths on the ``log1p`` scale at ``steps``, one column per level.

        Steps beyond the last fitted one, ``K``, get its half-width times ``sqrt(step / K)``,
        with a warning.
        """
        steps = np.asarray(steps)
        last = int(self.factors_.index.max())
        if (steps > last).any():
            warnings.warn(
                f"steps beyond {last} were not in the calibration backtest; their intervals "
                f"grow from step {last}'s as the square root of the step",
                EncountersWarning,
                stacklevel=3,
            )
        lookup = np.clip(steps, None, last)
        growth = np.sqrt(np.maximum(steps, last) / last)
        return pd.DataFrame(
            {
                lv: self.factors_[lv].reindex(lookup).ffill().bfill().to_numpy() * growth
                for lv in self.factors_.columns
            }
        )


def bands(mean: np.ndarray, half_widths: pd.DataFrame) -> pd.DataFrame:
    """Multiplicative interval bounds around ``mean``: ``expm1(log1p(mean) -/+ w)`` per level
    (a column of ``half_widths``), clipped at zero and nested (a wider level never lies inside
    a narrower one)."""
    centre = np.log1p(mean)
    out = {}
    levels = sorted(half_widths.columns)
    for lv in levels:
        width = half_widths[lv].to_numpy()
        out[lo_col(lv)] = np.clip(np.expm1(centre - width), 0, None)
        out[hi_col(lv)] = np.expm1(centre + width)
    for narrow, wide in zip(levels, levels[1:], strict=False):
        out[lo_col(wide)] = np.minimum(out[lo_col(wide)], out[lo_col(narrow)])
        out[hi_col(wide)] = np.maximum(out[hi_col(wide)], out[hi_col(narrow)])
    return pd.DataFrame(out)


def rolling_calibrate(
    frame: pd.DataFrame,
    level: Sequence[int] | None = None,
    window_months: int | None = DEFAULT_WINDOW_MONTHS,
) -> pd.DataFrame:
    """Calibrate each origin of a backtest with errors known at its cutoff only.

    The forecasts made at cutoff ``c`` are recalibrated by a :class:`Calibrator` fitted on the
    rows of earlier origins whose month was observed by ``c`` (``ds <= c``), from the last
    ``window_months`` months of origins: what a forecaster calibrating in real time would have
    had. Origins with too few such rows are left out.

    Args:
        frame: output of :func:`forecasting.backtest.backtest`.
        level: the levels to calibrate; ``None`` for all in the frame.
        window_months: months of origins before each cutoff; ``None`` for all earlier ones.

    Returns:
        The calibrated rows of the origins that could be calibrated, in the frame's layout.
    """
    levels = _check_columns(frame, level)
    parts = []
    for cutoff, rows in frame.groupby(CUTOFF, sort=True):
        known = observed_by(frame, cutoff, window_months)
        try:
            calibrator = Calibrator(levels).fit(known)
        except DataError:
            continue
        parts.append(calibrator.transform(rows))
    if not parts:
        raise DataError("no origin had enough earlier errors to calibrate on")
    return pd.concat(parts)


#: A wider level's half-width exceeds a narrower one's by at least this on the ``log1p`` scale
#: (1 %), so the bands are strictly nested wherever the count is not pinned at zero.
NEST_GAP = 0.01


def well_formed(factors: pd.DataFrame) -> pd.DataFrame:
    """Half-widths (index ``step``, a column per level) made non-decreasing over the steps (a
    forecast is no surer further ahead) and strictly nested over the levels (:data:`NEST_GAP`)."""
    out = factors.sort_index().cummax()
    levels = sorted(out.columns)
    for narrow, wide in zip(levels, levels[1:], strict=False):
        out[wide] = np.maximum(out[wide], out[narrow] + NEST_GAP)
    return out[factors.columns]
