"""Choosing and combining models from their backtests.

Every series gets the candidate with the best backtest skill, or a combination of the best few
(their weighted median, weights by skill): combinations are the most reliable gain in
forecasting practice, and on this data no single family wins everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting import metrics
from forecasting.backtest import observed_by
from forecasting.frame import CUTOFF, DS, MEAN, Y, forecast_columns, frame_levels

BENCH = "bench"


def rel_mae_by_origin(frame: pd.DataFrame, bench: pd.DataFrame) -> pd.Series:
    """Per cutoff, :func:`forecasting.metrics.rel_mae` of its months with an actual."""
    scored = frame.dropna(subset=[Y]).merge(
        bench[[CUTOFF, DS, MEAN]].rename(columns={MEAN: BENCH}), on=[CUTOFF, DS]
    )
    err = pd.Series(metrics.absolute_errors(scored[Y], scored[MEAN]), index=scored.index)
    base = pd.Series(metrics.absolute_errors(scored[Y], scored[BENCH]), index=scored.index)
    return err.groupby(scored[CUTOFF]).mean() / base.groupby(scored[CUTOFF]).mean()


def geometric_rel_mae(frame: pd.DataFrame, bench: pd.DataFrame) -> float:
    """The skill a candidate is chosen by: the geometric mean over origins of
    :func:`rel_mae_by_origin` (finite, positive ratios only), so no one origin's scale dominates."""
    ratios = rel_mae_by_origin(frame, bench)
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    return metrics.geometric_mean(ratios.to_numpy()) if len(ratios) else float("nan")


def skill_weights(skill: Mapping[str, float], top_k: int) -> dict[str, float]:
    """Weights ∝ 1 / relMAE over the ``top_k`` most skilful candidates (lower relMAE is better)."""
    ranked = sorted((v, k) for k, v in skill.items() if np.isfinite(v) and v > 0)[:top_k]
    if not ranked:
        return {}
    inverse = {k: 1 / v for v, k in ranked}
    total = sum(inverse.values())
    return {k: w / total for k, w in inverse.items()}


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted median over the first axis of ``values`` (members x ...), per cell.

    The smallest value whose cumulative weight passes half the total; where a value's cumulative
    weight is exactly half, the mean of it and the next (so two equal weights give the mean).
    """
    order = np.argsort(values, axis=0, kind="stable")
    ranked = np.take_along_axis(values, order, axis=0)
    w = np.asarray(weights, dtype=float)
    cumulative = np.cumsum(w[order], axis=0) / w.sum()
    first = np.argmax(cumulative >= 0.5 - 1e-12, axis=0)
    at = np.take_along_axis(ranked, first[None], axis=0)[0]
    tie = np.isclose(np.take_along_axis(cumulative, first[None], axis=0)[0], 0.5)
    nxt = np.take_along_axis(ranked, np.minimum(first + 1, len(w) - 1)[None], axis=0)[0]
    return np.where(tie, (at + nxt) / 2, at)


def combine(frames: Sequence[pd.DataFrame], weights: Sequence[float]) -> pd.DataFrame:
    """Weighted median of forecast or backtest frames with the same rows, column by column.

    The mean and each interval bound is the members' weighted median: a weighted average lets one
    member that breaks drag the combination, the median follows the majority. A bound that is
    below the mean for every member stays below it, so the intervals stay nested. The first
    frame's other columns (``cutoff``, ``ds``, ``step``, ``y``) are kept.
    """
    levels = frame_levels(frames[0])
    columns = forecast_columns(levels)
    stacked = np.stack([f[columns].to_numpy(dtype=float) for f in frames])
    out = frames[0].copy()
    out[columns] = weighted_median(stacked, np.asarray(weights, dtype=float))
    return out


def choose_at(
    frames: Mapping[str, pd.DataFrame], bench: str, cutoff: pd.Timestamp, top_k: int
) -> tuple[str, dict[str, float]]:
    """The policy's choice at ``cutoff`` from what was observed by then.

    Candidates are scored by :func:`geometric_rel_mae` on the rows of earlier origins observed at
    the cutoff; the skill-weighted combination of the ``top_k`` best is scored the same way (its
    weights from the same rows) and competes with them. The benchmark ``bench`` always competes.

    Returns:
        (label, weights): the winner (``"ensemble"`` for the combination) and its members' weights.
    """
    known = {label: observed_by(frame, cutoff) for label, frame in frames.items()}
    base = known[bench]
    if base.empty:
        return bench, {bench: 1.0}
    skill = {label: geometric_rel_mae(f, base) for label, f in known.items()}
    options = {label: (s, {label: 1.0}) for label, s in skill.items() if np.isfinite(s)}
    weights = skill_weights({k: v for k, v in skill.items() if k != bench}, top_k)
    if len(weights) > 1:
        combined = combine([known[k] for k in weights], list(weights.values()))
        options["ensemble"] = (geometric_rel_mae(combined, base), weights)
    label = min(options, key=lambda k: (options[k][0], k != bench))
    return label, options[label][1]


def choose_pooled(skill: Mapping[str, Mapping[str, float]]) -> str:
    """One candidate for every series: the best geometric mean over series of its skill.

    Per-series choice from a few dozen backtest errors is noisy: on the accuracy panel it
    picked candidates that had been lucky and lost to the last value, while skill pooled over the
    series of an experiment picks what works across them (``experiments/accuracy``).

    Args:
        skill: series -> candidate label -> relMAE (lower is better); non-finite or
            non-positive values are left out.

    Returns:
        The label with the lowest geometric mean over the series that scored it, ties to the
        label scored on more series.

    Raises:
        ValueError: no candidate has a finite positive score.
    """
    logs: dict[str, list[float]] = {}
    for scores in skill.values():
        for label, value in scores.items():
            if np.isfinite(value) and value > 0:
                logs.setdefault(label, []).append(float(np.log(value)))
    if not logs:
        raise ValueError("no candidate has a finite positive skill score to pool")
    return min(sorted(logs), key=lambda k: (np.mean(logs[k]), -len(logs[k])))


def policy_frame(
    frames: Mapping[str, pd.DataFrame], weights: Mapping[str, float], cutoffs=None
) -> pd.DataFrame:
    """The combination ``weights`` describe (one candidate or several), at ``cutoffs`` or all."""
    chosen = [
        frames[k] if cutoffs is None else frames[k][frames[k][CUTOFF].isin(cutoffs)]
        for k in weights
    ]
    return combine(chosen, list(weights.values())) if len(chosen) > 1 else chosen[0].copy()
