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
width is nearly their maximum, and a quiet series inherits the width of its worst recent shock.
The :class:`PooledCalibrator` (the training default) pools the errors of every series of an
experiment instead, each scaled by its series' recent volatility to a power (the mean monthly
``|change|`` of ``log1p(y)`` over 60 months, square-rooted), and gives each series the pooled
quantile times its own scale. Chosen by ``experiments/intervals`` on origins 2005-11..2018-08
(before the accuracy benchmark's window) by the scaled interval score with coverage in band, over
volatility months, window, recency weighting and adaptive conformal inference; its results.md
has the measured figures beside the peers'.

The guarantee is the usual split-conformal one: if future errors behave like the backtest's, the
``l`` % intervals cover at least ``l`` % of the time. On this data they do not for long: regimes
change. The :class:`Calibrator` alone used a window of recent origins (``DEFAULT_WINDOW_MONTHS``,
36 months, chosen the same way); pooled and scaled, every observed error served best.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import pandas as pd

from forecasting.backtest import observed_by
from forecasting.errors import DataError, EncountersWarning, NotFittedError
from forecasting.frame import (
    CUTOFF,
    DS,
    MEAN,
    STEP,
    UNIQUE_ID,
    Y,
    check_level,
    frame_levels,
    hi_col,
    interval_columns,
    lo_col,
)

#: Months of errors that calibrate (see the docstring and :class:`PooledCalibrator`).
DEFAULT_WINDOW_MONTHS = 36
#: :class:`PooledCalibrator`'s settings, chosen by ``experiments/intervals`` on origins before
#: the accuracy benchmark's window: volatility over 60 months, errors scaled by its square root,
#: every observed error (no window), equal weights.
DEFAULT_VOLATILITY_MONTHS = 60
DEFAULT_VOLATILITY_POWER = 0.5
DEFAULT_POOLED_WINDOW_MONTHS: int | None = None
DEFAULT_HALF_LIFE_MONTHS: float | None = None
#: The nonconformity score, stored with each fit so a calibrator of another kind is refused.
SCORE = "absolute log1p error"
#: Columns of :meth:`PooledCalibrator.scored_rows` and :meth:`PooledCalibrator.known`.
VOLATILITY = "volatility"
SCALED = "scaled_error"
WEIGHT = "weight"


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
#: The smallest volatility a series is scaled by: a run of identical months (zeros of a small
#: citizenship) would otherwise make its scaled errors infinite and its intervals empty.
VOLATILITY_FLOOR = 0.01


def well_formed(factors: pd.DataFrame) -> pd.DataFrame:
    """Half-widths (index ``step``, a column per level) made non-decreasing over the steps (a
    forecast is no surer further ahead) and strictly nested over the levels (:data:`NEST_GAP`)."""
    out = factors.sort_index().cummax()
    levels = sorted(out.columns)
    for narrow, wide in zip(levels, levels[1:], strict=False):
        out[wide] = np.maximum(out[wide], out[narrow] + NEST_GAP)
    return out[factors.columns]


def log_errors(frame: pd.DataFrame) -> np.ndarray:
    """``log1p(y) - log1p(mean)`` per backtest row: above zero where the actual came in higher."""
    return np.log1p(frame[Y].to_numpy(dtype=float)) - np.log1p(frame[MEAN].to_numpy(dtype=float))


def volatility(y: pd.Series, months: int, statistic: str = "mean") -> pd.Series:
    """Each month's recent volatility: the mean (or median) ``|log1p(y_t) - log1p(y_{t-1})|``
    over the ``months`` changes up to it (fewer at the start), at least
    :data:`VOLATILITY_FLOOR`. The median is not moved by a single shock.

    Args:
        y: a monthly series, oldest first.
        months: the changes averaged.
        statistic: ``"mean"`` or ``"median"``.

    Returns:
        A series on ``y``'s index (NaN in its first month, which has no change).
    """
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median'; got {statistic!r}")
    changes = np.log1p(y.astype(float)).diff().abs()
    rolling = changes.rolling(months, min_periods=1)
    return getattr(rolling, statistic)().clip(lower=VOLATILITY_FLOOR)


def conformal_quantile(scores: np.ndarray, level: float, weights: np.ndarray | None = None):
    """The split-conformal ``level`` (0-1) quantile of ``scores``, optionally weighted.

    The smallest score whose cumulative weight, over the total plus one for the point to be
    covered, reaches ``level``; with equal weights the ``ceil((n + 1) * level)``-th smallest.
    ``inf`` when no score reaches it (too few scores for the level).
    """
    order = np.argsort(scores, kind="stable")
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=float)
    cumulative = np.cumsum(w[order]) / (w.sum() + 1)
    at = int(np.searchsorted(cumulative, level - 1e-12))
    return float(scores[order][at]) if at < len(scores) else float("inf")


class PooledCalibrator:
    """Per-step conformal quantiles of log errors scaled by each series' recent volatility,
    pooled over the series of a training.

    A backtest row's score is ``|log1p(y) - log1p(mean)| / v``, with ``v`` its series'
    :func:`volatility` at the row's cutoff. The quantile at step ``k`` pools the scores of every
    series at that step, from rows observed in the last ``window_months`` months (by the month
    they were observed, so every step has errors as recent as it can), optionally weighted by
    recency with half-life ``half_life_months``. A series' half-width at step ``k`` is that
    quantile times its own volatility now: a quiet series gets narrow bands, a volatile one wide
    ones, each from several hundred errors per step instead of a handful of its own.

    Args:
        level: the interval levels, in percent.
        volatility_months: months of changes the volatility averages.
        window_months: months of observed errors that calibrate; ``None`` for all.
        half_life_months: weight ``0.5 ** (age / half_life)`` by an error's age in months;
            ``None`` for equal weights.
        volatility_power: the scale is the volatility to this power: 1 scales errors fully,
            0 pools them unscaled, in between partly.
        volatility_statistic: ``"mean"`` or ``"median"`` (:func:`volatility`).

    Attributes set by :meth:`fit`:
        quantiles_: frame indexed by ``step`` with a column per level, non-decreasing over
            the steps.
    """

    def __init__(
        self,
        level: Sequence[int],
        volatility_months: int,
        window_months: int | None,
        half_life_months: float | None = None,
        volatility_power: float = 1.0,
        volatility_statistic: str = "mean",
    ):
        self.level = level
        self.volatility_months = volatility_months
        self.window_months = window_months
        self.half_life_months = half_life_months
        self.volatility_power = volatility_power
        self.volatility_statistic = volatility_statistic

    def scale(self, y: pd.Series) -> pd.Series:
        """Each month's scale of ``y``'s errors: its :func:`volatility` to ``volatility_power``."""
        vol = volatility(y, self.volatility_months, self.volatility_statistic)
        return vol**self.volatility_power

    def scored_rows(
        self, backtests: Mapping[str, pd.DataFrame], histories: Mapping[str, pd.Series]
    ) -> pd.DataFrame:
        """Every backtest's rows with an actual, with their series (``unique_id``), volatility
        at the cutoff (``volatility``) and signed scaled error (``scaled_error``)."""
        parts = []
        for key, frame in backtests.items():
            rows = frame.dropna(subset=[Y])
            if rows.empty:
                continue
            vol = self.scale(histories[key])
            scale = vol.reindex(rows[CUTOFF]).to_numpy()
            parts.append(
                rows[[CUTOFF, DS, STEP]].assign(
                    **{UNIQUE_ID: key, VOLATILITY: scale, SCALED: log_errors(rows) / scale}
                )
            )
        if not parts:
            raise DataError("no backtest row has an actual to calibrate on")
        return pd.concat(parts, ignore_index=True).dropna(subset=[SCALED])

    def known(self, rows: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
        """The :meth:`scored_rows` observed by ``cutoff`` (earlier origins, months up to it)
        within the window, with their recency ``weight``."""
        known = rows[(rows[CUTOFF] < cutoff) & (rows[DS] <= cutoff)]
        if self.window_months:
            known = known[known[DS] > cutoff - pd.DateOffset(months=self.window_months)]
        weight = np.ones(len(known))
        if self.half_life_months:
            age = (cutoff.year - known[DS].dt.year) * 12 + cutoff.month - known[DS].dt.month
            weight = 0.5 ** (age.to_numpy(dtype=float) / self.half_life_months)
        return known.assign(**{WEIGHT: weight})

    def fit_rows(self, rows: pd.DataFrame, cutoff: pd.Timestamp) -> Self:
        """Fit on :meth:`scored_rows` output as known at ``cutoff`` (:meth:`known`).

        Raises:
            DataError: too few scores for a level's conformal quantile, even with every step
                pooled.
        """
        levels = check_level(self.level)
        steps = np.sort(rows[STEP].unique())
        quantiles = step_quantiles(self.known(rows, cutoff), steps, {lv: lv / 100 for lv in levels})
        # Made non-decreasing over the steps; nested in half-width units by the calibrators.
        self.quantiles_ = quantiles.cummax()
        return self

    def fit(
        self,
        backtests: Mapping[str, pd.DataFrame],
        histories: Mapping[str, pd.Series],
        cutoff: pd.Timestamp,
    ) -> Self:
        """Fit on the series' backtests as known at ``cutoff`` (their histories' last month, for
        the served model).

        Args:
            backtests: series key -> output of :func:`forecasting.backtest.backtest`.
            histories: series key -> its observed series (for the volatilities).
            cutoff: the month the calibration is for.
        """
        return self.fit_rows(self.scored_rows(backtests, histories), cutoff)

    def calibrator(self, y: pd.Series) -> Calibrator:
        """A series' :class:`Calibrator`: the pooled quantiles times its scale at its last
        month."""
        if not hasattr(self, "quantiles_"):
            raise NotFittedError("this PooledCalibrator is not fitted yet; call fit(...)")
        scale = float(self.scale(y).iloc[-1])
        return Calibrator.from_factors(self.quantiles_ * scale)


def step_quantiles(known: pd.DataFrame, steps: np.ndarray, levels: Mapping) -> pd.DataFrame:
    """Per step, the weighted conformal quantile (:func:`conformal_quantile`) of the absolute
    scaled errors of ``known`` (:meth:`PooledCalibrator.known`) at each level's fraction
    (``levels``: column name -> fraction in (0, 1)). A step whose scores are too few for a
    level pools its neighbours ``step - b .. step + b``, with the smallest ``b`` that suffices.

    Raises:
        DataError: too few scores even with every step pooled.
    """
    scores = np.abs(known[SCALED].to_numpy())
    weights = known[WEIGHT].to_numpy()
    row_steps = known[STEP].to_numpy()
    out: dict = {name: [] for name in levels}
    for step in steps:
        for b in range(len(steps) + 1):
            near = np.abs(row_steps - step) <= b
            found = {
                name: conformal_quantile(scores[near], fraction, weights[near])
                for name, fraction in levels.items()
            }
            if all(np.isfinite(v) for v in found.values()):
                break
        else:
            raise DataError(
                f"calibrating {list(levels)} needs more observed errors; got {len(scores)}"
            )
        for name, value in found.items():
            out[name].append(value)
    return pd.DataFrame(out, index=pd.Index(steps, name=STEP))


def rolling_calibrate_pooled(
    backtests: Mapping[str, pd.DataFrame],
    histories: Mapping[str, pd.Series],
    calibrator: PooledCalibrator,
    aci_gamma: float | None = None,
) -> dict[str, pd.DataFrame]:
    """Calibrate each origin of several series' backtests with a :class:`PooledCalibrator` fitted
    on the errors known at its cutoff only (the nested protocol).

    With ``aci_gamma``, adaptive conformal inference (Gibbs and Candès 2021) on top: each series
    and level keeps its own miscoverage target, moved after every outcome it has seen,
    ``alpha <- alpha + gamma * (alpha_nominal - miss)`` (a miss of an interval it was actually
    given), and its quantile is taken at ``1 - alpha`` (kept within 0.5..0.999).

    Returns:
        Series key -> its calibrated rows of the origins that could be calibrated.
    """
    levels = check_level(calibrator.level)
    rows = calibrator.scored_rows(backtests, histories)
    steps = np.sort(rows[STEP].unique())
    vols = {k: calibrator.scale(histories[k]) for k in backtests}
    origins = {k: dict(tuple(f.groupby(CUTOFF))) for k, f in backtests.items()}
    issued: dict[str, list[pd.DataFrame]] = {k: [] for k in backtests}
    # Per series, the month each issued row is observed and whether it missed, per level.
    outcomes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in backtests}
    columns = interval_columns(levels)
    for cutoff in sorted(set().union(*origins.values())):
        known = calibrator.known(rows, cutoff)
        try:
            shared = step_quantiles(known, steps, {lv: lv / 100 for lv in levels})
        except DataError:
            continue
        # No fraction higher than all the known scores together can give.
        total = known[WEIGHT].sum()
        for key, by_cutoff in origins.items():
            now = by_cutoff.get(cutoff)
            if now is None:
                continue
            quantiles = shared
            if aci_gamma:
                fractions = _aci_fractions(outcomes[key], cutoff, levels, aci_gamma)
                fractions = {lv: min(f, total / (total + 1)) for lv, f in fractions.items()}
                quantiles = step_quantiles(known, steps, fractions)
            half = well_formed(quantiles * float(vols[key].loc[cutoff]))
            widths = half.reindex(now[STEP].to_numpy()).reset_index(drop=True)
            out = now.copy()
            out[columns] = bands(now[MEAN].to_numpy(dtype=float), widths)[columns].to_numpy()
            issued[key].append(out)
            y = out[Y].to_numpy(dtype=float)
            miss = np.stack(
                [
                    (y < out[lo_col(lv)].to_numpy()) | (y > out[hi_col(lv)].to_numpy())
                    for lv in levels
                ]
            )
            observed = np.where(np.isnan(y), np.datetime64("NaT"), out[DS].to_numpy())
            outcomes[key].append((observed, miss))
    found = {k: pd.concat(v, ignore_index=True) for k, v in issued.items() if v}
    if not found:
        raise DataError("no origin had enough earlier errors to calibrate on")
    return found


def _aci_fractions(
    outcomes: list[tuple[np.ndarray, np.ndarray]], cutoff, levels: list[int], gamma: float
) -> dict[int, float]:
    """Each level's quantile fraction after the outcomes (observed month, misses per level)
    seen by ``cutoff``."""
    out = {lv: lv / 100 for lv in levels}
    if not outcomes:
        return out
    months = np.concatenate([m for m, _ in outcomes])
    misses = np.concatenate([miss for _, miss in outcomes], axis=1)
    seen = months <= np.datetime64(cutoff)  # NaT (no actual yet) compares False
    for i, lv in enumerate(levels):
        alpha = 1 - lv / 100
        alpha += gamma * float(np.sum(alpha - misses[i, seen]))
        out[lv] = float(np.clip(1 - alpha, 0.5, 0.999))
    return out
