"""Interval calibration pooled over the series of a training, each scaled by its volatility.

A :class:`~forecasting.calibration.Calibrator` fitted on one series' few errors makes a quiet
series inherit the width of its worst recent shock. The :class:`PooledCalibrator` (the training
default) pools the errors of every series of an
experiment instead, each scaled by its series' recent volatility to a power (the mean monthly
``|change|`` of ``log1p(y)`` over 60 months, square-rooted), and gives each series the pooled
quantile times its own scale. Chosen by ``experiments/intervals`` on origins 2005-11..2018-08
(before the accuracy benchmark's window) by the scaled interval score with coverage in band, over
volatility months, window, recency weighting and adaptive conformal inference; its results.md
has the measured figures beside the peers'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import pandas as pd

from forecasting.calibration import Calibrator, bands, well_formed
from forecasting.errors import DataError, NotFittedError
from forecasting.frame import (
    CUTOFF,
    DS,
    MEAN,
    STEP,
    UNIQUE_ID,
    Y,
    check_level,
    hi_col,
    interval_columns,
    lo_col,
)

#: :class:`PooledCalibrator`'s settings, chosen by ``experiments/intervals`` on origins before
#: the accuracy benchmark's window: volatility over 60 months, errors scaled by its square root,
#: every observed error (no window), equal weights.
DEFAULT_VOLATILITY_MONTHS = 60
DEFAULT_VOLATILITY_POWER = 0.5
DEFAULT_POOLED_WINDOW_MONTHS: int | None = None
DEFAULT_HALF_LIFE_MONTHS: float | None = None
#: The smallest volatility a series is scaled by: a run of identical months (zeros of a small
#: citizenship) would otherwise make its scaled errors infinite and its intervals empty.
VOLATILITY_FLOOR = 0.01


#: Columns of :meth:`PooledCalibrator.scored_rows` and :meth:`PooledCalibrator.known`.
VOLATILITY = "volatility"
SCALED = "scaled_error"
WEIGHT = "weight"


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


def step_quantiles(
    known: pd.DataFrame, steps: np.ndarray, levels: Mapping, scores: np.ndarray | None = None
) -> pd.DataFrame:
    """Per step, the weighted conformal quantile (:func:`conformal_quantile`) of the absolute
    scaled errors of ``known`` (:meth:`PooledCalibrator.known`), or of ``scores`` (one per row
    of ``known``), at each level's fraction (``levels``: column name -> fraction in (0, 1)). A
    step whose scores are too few for a level pools its neighbours ``step - b .. step + b``,
    with the smallest ``b`` that suffices.

    Raises:
        DataError: too few scores even with every step pooled.
    """
    if scores is None:
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
            outcomes[key].append(_outcomes(out, levels))
    found = {k: pd.concat(v, ignore_index=True) for k, v in issued.items() if v}
    if not found:
        raise DataError("no origin had enough earlier errors to calibrate on")
    return found


def _outcomes(issued: pd.DataFrame, levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The month each issued row is observed (NaT without an actual) and whether it missed, per
    level (rows)."""
    y = issued[Y].to_numpy(dtype=float)
    miss = np.stack(
        [(y < issued[lo_col(lv)].to_numpy()) | (y > issued[hi_col(lv)].to_numpy()) for lv in levels]
    )
    observed = np.where(np.isnan(y), np.datetime64("NaT"), issued[DS].to_numpy())
    return observed, miss


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
