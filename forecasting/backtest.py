"""Rolling-origin backtests and their per-horizon scores.

At each origin (cutoff) a fresh model is fitted on the data up to and including the cutoff and
forecasts the next ``h`` months. Regressors see no hindsight:

- a regressor whose event had not started by the cutoff is removed (``event_starts``); its column is
  all zero up to the cutoff anyway, and the models drop constant columns in fit;
- future regressor values come from :func:`carry_forward`: what was in force at the cutoff stays in
  force over the horizon. An event's later end, or a new event, is not known at the cutoff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting import metrics
from forecasting.errors import DataError
from forecasting.frame import (
    CUTOFF,
    DEFAULT_LEVEL,
    DS,
    MEAN,
    STEP,
    Y,
    check_level,
    forecast_columns,
    frame_levels,
    hi_col,
    lo_col,
)
from forecasting.metrics import seasonal_scale
from forecasting.models.base import Forecaster, future_index

FutureRegressors = Callable[[pd.DataFrame, int], pd.DataFrame]


def carry_forward(X_train: pd.DataFrame, h: int) -> pd.DataFrame:
    """Future regressor values that hold each column at its value in the cutoff month.

    The rule "an event in force at the origin stays in force": a step that is on at the cutoff
    stays on; a pulse or decay is frozen at its cutoff value; an event that starts later is absent.

    Args:
        X_train: regressors up to and including the cutoff (its last row), monthly index.
        h: months ahead.

    Returns:
        Frame indexed by the ``h`` months after the cutoff with the columns of ``X_train``.
    """
    index = future_index(X_train.index[-1], h)
    last = X_train.iloc[-1].to_numpy(dtype=float)
    return pd.DataFrame(np.tile(last, (h, 1)), index=index, columns=X_train.columns)


def _as_factory(model: Callable[[], Forecaster] | Forecaster) -> Callable[[], Forecaster]:
    if isinstance(model, Forecaster):
        return model.clone
    if callable(model):
        return model
    raise ValueError(
        "model_factory must be a Forecaster or a callable returning one; "
        f"got {type(model).__name__}"
    )


def _check_origins(origins: Sequence, y: pd.Series) -> list[pd.Timestamp]:
    cutoffs = [pd.Timestamp(o) for o in origins]
    if not cutoffs:
        raise ValueError("origins must hold at least one cutoff month")
    outside = [c for c in cutoffs if c not in y.index]
    if outside:
        raise DataError(
            f"origins must be months of y ({y.index[0]:%Y-%m}..{y.index[-1]:%Y-%m}); "
            f"got {[f'{c:%Y-%m-%d}' for c in outside]}"
        )
    return sorted(set(cutoffs))


def _check_regressors(X_full: pd.DataFrame, y: pd.Series, starts: Mapping) -> None:
    missing_months = y.index.difference(X_full.index)
    if len(missing_months):
        raise DataError(
            f"X_full must cover every month of y; missing {missing_months[0]:%Y-%m} "
            f"and {len(missing_months) - 1} more"
        )
    unknown = sorted(set(starts) - set(X_full.columns))
    if unknown:
        raise DataError(
            f"event_starts names columns {unknown} that X_full lacks; "
            f"X_full has {list(X_full.columns)}"
        )


def backtest(
    model_factory: Callable[[], Forecaster] | Forecaster,
    y: pd.Series,
    X_full: pd.DataFrame | None = None,
    origins: Sequence[pd.Timestamp | str] = (),
    h: int = 12,
    level: Sequence[int] = DEFAULT_LEVEL,
    event_starts: Mapping[str, pd.Timestamp | str] | None = None,
    future_regressors: FutureRegressors = carry_forward,
) -> pd.DataFrame:
    """Refit at each origin and forecast the ``h`` months after it.

    Args:
        model_factory: a callable returning a new unfitted forecaster, or a forecaster to clone.
        y: the whole observed series, monthly index.
        X_full: regressors over at least ``y``'s months, or ``None``.
        origins: cutoff months; each fit uses ``y`` up to and including its cutoff.
        h: months ahead per origin.
        level: interval levels in percent.
        event_starts: first month of the event behind each regressor column; a column whose event
            starts after a cutoff is not given to that origin's model.
        future_regressors: builds the horizon's regressor values from the training ones;
            :func:`carry_forward` by default.

    Returns:
        Long frame, one row per (cutoff, month ahead): ``cutoff``, ``ds``, ``step`` (1..h),
        ``y`` (NaN past the end of the data), ``mean``, ``lo_<l>``, ``hi_<l>``.

    Raises:
        DataError: an origin is not a month of ``y``; ``X_full`` misses months or
            ``event_starts`` names unknown columns.
    """
    factory = _as_factory(model_factory)
    cutoffs = _check_origins(origins, y)
    levels = check_level(level)
    starts = {k: pd.Timestamp(v) for k, v in (event_starts or {}).items()}
    if X_full is not None:
        _check_regressors(X_full, y, starts)
    frames = []
    for cutoff in cutoffs:
        y_train = y.loc[:cutoff]
        model = factory()
        X_train = X_df = None
        if X_full is not None and model.supports_regressors:
            usable = [c for c in X_full.columns if starts.get(c, cutoff) <= cutoff]
            X_train = X_full.loc[y_train.index, usable]
            X_df = future_regressors(X_train, h)
        try:
            model.fit(y_train, X_train)
            forecast = model.predict(h, X_df, levels)
        except Exception as exc:
            exc.add_note(f"backtest origin {cutoff:%Y-%m} with {model!r}")
            raise
        forecast.insert(0, Y, y.reindex(forecast.index).to_numpy())
        forecast.insert(0, STEP, np.arange(1, h + 1))
        forecast.insert(0, CUTOFF, cutoff)
        frames.append(forecast.reset_index())
    columns = [CUTOFF, DS, STEP, Y, *forecast_columns(levels)]
    return pd.concat(frames, ignore_index=True)[columns]


def observed_by(
    frame: pd.DataFrame, cutoff: pd.Timestamp, window_months: int | None = None
) -> pd.DataFrame:
    """Rows of earlier origins whose month was observed at ``cutoff``: what was known then.

    With ``window_months``, only origins from ``window_months`` months before ``cutoff`` on.
    """
    known = frame[(frame[CUTOFF] < cutoff) & (frame[DS] <= cutoff)]
    if window_months:
        known = known[known[CUTOFF] >= cutoff - pd.DateOffset(months=window_months)]
    return known


MASE_SCALE = "mase_scale"
RMSSE_SCALE = "rmsse_scale"


def seasonal_scales(
    cutoffs: pd.Series, y_train: pd.Series | Mapping[pd.Timestamp, pd.Series], season: int = 12
) -> pd.DataFrame:
    """Per cutoff, the MASE and RMSSE scales of the history up to it (:func:`seasonal_scale`).

    Args:
        cutoffs: the cutoffs to scale (repeats are fine).
        y_train: the whole series (each cutoff uses its values up to the cutoff), or a mapping
            from cutoff to its training series.
        season: the seasonal lag.

    Returns:
        Frame indexed by cutoff with ``mase_scale`` and ``rmsse_scale``.
    """
    rows = {}
    for cutoff in pd.unique(cutoffs):
        history = y_train[cutoff] if isinstance(y_train, Mapping) else y_train.loc[:cutoff]
        rows[cutoff] = (
            seasonal_scale(history, season, power=1),
            seasonal_scale(history, season, power=2),
        )
    return pd.DataFrame.from_dict(rows, orient="index", columns=[MASE_SCALE, RMSSE_SCALE])


def score_terms(data: pd.DataFrame, levels: Sequence[int]) -> pd.DataFrame:
    """The per-month terms every accuracy measure averages, from :mod:`forecasting.metrics`.

    Args:
        data: rows with an actual: ``y``, ``mean``, ``lo_<l>``/``hi_<l>`` for ``levels``, and
            ``mase_scale``/``rmsse_scale`` (:func:`seasonal_scales`) when present.
        levels: the interval levels to score.

    Returns:
        Frame on ``data``'s index: ``ae`` (absolute error), ``smape``, ``abs_y``, ``mase`` and
        ``mse_scaled`` (with the scales), per level ``coverage_<l>`` (0/1), ``width_<l>``,
        ``winkler_<l>`` (the interval score) and with the scales ``msis_<l>`` (it over the MASE
        scale), and with any level ``wis`` (the weighted interval score of the mean as median
        and every level's bounds, a quantile approximation of the CRPS).
    """
    y, mean = data[Y], data[MEAN]
    terms = {"ae": metrics.absolute_errors(y, mean), "smape": metrics.smape_terms(y, mean)}
    terms["abs_y"] = np.abs(y.to_numpy(dtype=float))
    if MASE_SCALE in data.columns:
        terms["mase"] = metrics.scaled_errors(y, mean, data[MASE_SCALE])
        terms["mse_scaled"] = metrics.scaled_errors(y, mean, data[RMSSE_SCALE], power=2)
    for lv in levels:
        lo, hi = data[lo_col(lv)], data[hi_col(lv)]
        terms[f"coverage_{lv}"] = metrics.covered(y, lo, hi)
        terms[f"width_{lv}"] = (hi - lo).to_numpy(dtype=float)
        terms[f"winkler_{lv}"] = metrics.interval_scores(y, lo, hi, lv)
        if MASE_SCALE in data.columns:
            terms[f"msis_{lv}"] = terms[f"winkler_{lv}"] / data[MASE_SCALE].to_numpy(dtype=float)
    if levels:
        bounds = {lv: (data[lo_col(lv)], data[hi_col(lv)]) for lv in levels}
        terms["wis"] = metrics.weighted_interval_scores(y, mean, bounds)
    return pd.DataFrame(terms, index=data.index)


def score(
    frame: pd.DataFrame,
    y_train: pd.Series | Mapping[pd.Timestamp, pd.Series],
    by: str | None = STEP,
    benchmark: pd.DataFrame | None = None,
    season: int = 12,
) -> pd.DataFrame:
    """Accuracy of a backtest, per months-ahead step (or overall).

    Rows whose actual is missing (past the end of the data) are left out.

    Args:
        frame: output of :func:`backtest`.
        y_train: the series the backtest was run on (each cutoff's scale uses its values up to
            the cutoff), or a mapping from cutoff to its training series.
        by: ``"step"`` for one row per months-ahead, ``None`` for a single overall row.
        benchmark: another backtest frame on the same cutoffs and months (e.g. seasonal naive);
            adds ``rel_mae`` (:func:`forecasting.metrics.rel_mae` over the group's months).
        season: the seasonal lag of the MASE/RMSSE scales.

    Returns:
        Frame (indexed by ``step``, or one row ``all``) with ``n``, ``mae``, ``mase``, ``rmsse``,
        ``smape`` (percent), then per level ``coverage_<l>`` (0-1), ``width_<l>`` (mean width over
        mean actual), ``winkler_<l>`` (units of y) and ``msis_<l>`` (the interval score over
        each origin's MASE scale), and ``wis`` (units of y); plus ``rel_mae`` with a benchmark.
    """
    if by not in (STEP, None):
        raise ValueError(f"by must be 'step' or None; got {by!r}")
    data = frame.dropna(subset=[Y])
    if data.empty:
        raise DataError("frame has no rows with an actual y to score")
    levels = frame_levels(data)
    data = data.join(seasonal_scales(data[CUTOFF], y_train, season), on=CUTOFF)
    terms = score_terms(data, levels)
    if benchmark is not None:
        keys = pd.MultiIndex.from_frame(data[[CUTOFF, DS]])
        bench = benchmark.set_index([CUTOFF, DS])[MEAN].reindex(keys).to_numpy()
        if np.isnan(bench).any():
            raise DataError("benchmark lacks some (cutoff, ds) rows of frame; backtest both alike")
        terms["bench_ae"] = metrics.absolute_errors(data[Y], bench)
    groups = data[STEP] if by == STEP else pd.Series("all", index=data.index, name="scope")
    grouped = terms.groupby(groups)
    means = grouped.mean()
    out = pd.DataFrame({"n": grouped.size()})
    out["mae"] = means["ae"]
    out["mase"] = means["mase"]
    out["rmsse"] = np.sqrt(means["mse_scaled"])
    out["smape"] = means["smape"]
    for lv in levels:
        out[f"coverage_{lv}"] = means[f"coverage_{lv}"]
        out[f"width_{lv}"] = means[f"width_{lv}"] / means["abs_y"]
        out[f"winkler_{lv}"] = means[f"winkler_{lv}"]
        out[f"msis_{lv}"] = means[f"msis_{lv}"]
    if levels:
        out["wis"] = means["wis"]
    if benchmark is not None:
        # rel_mae of the group's months: MAE over the benchmark's MAE (their errors are
        # already in the terms, so the ratio of their means is forecasting.metrics.rel_mae).
        out["rel_mae"] = means["ae"] / means["bench_ae"]
    return out
