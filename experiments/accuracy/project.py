"""The project's side of the benchmark: candidate backtests and the nested per-series choice."""

from __future__ import annotations

import logging
import pickle
import time
import warnings
from collections.abc import Callable

import pandas as pd

from forecasting.backtest import backtest, observed_by
from forecasting.calibration import Calibrator
from forecasting.errors import DataError, EncountersWarning
from forecasting.frame import CUTOFF, DS, Y, forecast_columns
from forecasting.interventions import load_catalog
from forecasting.pooled_calibration import PooledCalibrator
from forecasting.selection import choose_at, choose_pooled, geometric_rel_mae, policy_frame
from pipelines.executors import run_tasks
from pipelines.train import build_model, build_tasks

log = logging.getLogger("accuracy")
NO_EVENTS = "_no_events"
BENCH = "seasonal_naive"


def candidate_specs(project: dict) -> list[tuple[str, str, dict]]:
    """(label, family, params) for every candidate of the config."""
    specs = [(c["name"], c["name"], c.get("params", {})) for c in project["candidates"]]
    specs += [
        (name + NO_EVENTS, name, {"use_regressors": False})
        for name in project["without_regressors"]
    ]
    return specs


def series_backtests(args: tuple) -> dict[str, pd.DataFrame | str]:
    """Every candidate's backtest of one series (an error text for a candidate that failed)."""
    task, specs, origins, h, level = args
    # Convergence notes from hundreds of refits say nothing the scores do not.
    warnings.simplefilter("ignore", EncountersWarning)
    out: dict[str, pd.DataFrame | str] = {}
    for label, family, params in specs:
        try:
            out[label] = backtest(
                lambda f=family, p=params: build_model(f, p, task),
                task.y,
                task.X,
                origins,
                h,
                level,
                task.event_starts,
            )
        except Exception as exc:  # noqa: BLE001 - a failed candidate is left out, and said so
            out[label] = f"{type(exc).__name__}: {exc}"
    return out


def cached_backtests(
    tasks, specs, origins, h: int, level, path: Callable, workers: int
) -> dict[str, dict[str, pd.DataFrame | str]]:
    """Every task's :func:`series_backtests` at ``origins``, computed once per file ``path(task)``
    (what a benchmark reruns reads back), by series key."""
    todo = [t for t in tasks if not path(t).exists()]
    start = time.perf_counter()
    fresh = run_tasks(
        series_backtests,
        [(t, specs, [o for o in origins if o in t.y.index], h, level) for t in todo],
        "local",
        workers,
        label=lambda a: a[0].key,
    )
    for task, result in zip(todo, fresh, strict=True):
        if isinstance(result, BaseException):
            raise result
        path(task).write_bytes(pickle.dumps(result))
    if todo:
        log.info("backtests of %d series in %.0fs", len(todo), time.perf_counter() - start)
    return {t.key: pickle.loads(path(t).read_bytes()) for t in tasks}


def tasks_for(experiment, store, series: list[str]):
    return build_tasks(experiment, store, load_catalog(), series)


def pooled_choices(series_frames: dict[str, dict[str, pd.DataFrame]], cutoffs) -> dict:
    """At each cutoff, the one candidate for all series by skill pooled over them (past only)."""
    choices = {}
    for cutoff in cutoffs:
        skill = {}
        for key, frames in series_frames.items():
            base = observed_by(frames[BENCH], cutoff)
            if base.empty:
                continue
            skill[key] = {
                label: geometric_rel_mae(observed_by(frame, cutoff), base)
                for label, frame in frames.items()
            }
        choices[cutoff] = choose_pooled(skill) if skill else BENCH
    return choices


def nested_choices(
    frames: dict[str, pd.DataFrame], eval_cutoffs, top_k: int, pooled: dict | None = None
) -> dict:
    """At each evaluated origin, the label chosen and the candidate weights, on the past only.

    ``pooled`` (cutoff -> label) gives the candidate pooled over the series; a series on which it
    failed, or without ``pooled``, gets its own choice (:func:`choose_at`).
    """
    out = {}
    for cutoff in eval_cutoffs:
        label = (pooled or {}).get(cutoff)
        if label in frames:
            out[cutoff] = label, {label: 1.0}
        else:
            out[cutoff] = choose_at(frames, BENCH, cutoff, top_k)
    return out


def per_series_calibrated(
    frames: dict[str, pd.DataFrame], choices: dict, level, window_months: int | None
) -> pd.DataFrame:
    """The forecast issued at each origin of ``choices`` (:func:`nested_choices`), its intervals
    calibrated on the series' own errors of the chosen candidates observed by then."""
    rows = []
    for cutoff, (_, weights) in choices.items():
        history = observed_by(policy_frame(frames, weights), cutoff, window_months)
        now = policy_frame(frames, weights, [cutoff])
        try:
            now = Calibrator(level).fit(history).transform(now)
        except DataError:
            pass  # too few observed errors yet to calibrate: the model's own intervals stand
        rows.append(now)
    return _issued(rows, level)


def pooled_calibrated(
    series_frames: dict[str, dict[str, pd.DataFrame]],
    choices: dict[str, dict],
    histories: dict[str, pd.Series],
    calibrator: PooledCalibrator,
    level,
) -> dict[str, pd.DataFrame]:
    """Per series, the forecast issued at each origin of its ``choices``, its intervals
    calibrated as training calibrates them: the chosen candidates' errors of every series,
    observed by then, scaled by each series' volatility and pooled (:class:`PooledCalibrator`)."""
    rows: dict[str, list[pd.DataFrame]] = {key: [] for key in choices}
    for cutoff in sorted({c for picks in choices.values() for c in picks}):
        issuing = {key: picks[cutoff][1] for key, picks in choices.items() if cutoff in picks}
        past = {key: policy_frame(series_frames[key], w) for key, w in issuing.items()}
        try:
            fitted = calibrator.fit(past, histories, cutoff)
        except DataError:
            fitted = None  # too few observed errors yet: the model's own intervals stand
        for key, weights in issuing.items():
            now = policy_frame(series_frames[key], weights, [cutoff])
            if fitted is not None:
                now = fitted.calibrator(histories[key].loc[:cutoff]).transform(now)
            rows[key].append(now)
    return {key: _issued(parts, level) for key, parts in rows.items() if parts}


def _issued(rows: list[pd.DataFrame], level) -> pd.DataFrame:
    return pd.concat(rows, ignore_index=True)[[CUTOFF, DS, Y, *forecast_columns(level)]]
