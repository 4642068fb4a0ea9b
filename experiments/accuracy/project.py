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


def nested_policy(
    frames: dict[str, pd.DataFrame],
    eval_cutoffs,
    level,
    top_k: int,
    window_months: int | None,
    pooled: dict | None = None,
):
    """The project's forecast at each evaluated origin, chosen and calibrated on the past only.

    ``pooled`` (cutoff -> label) gives the candidate pooled over the series; a series on which it
    failed, or without ``pooled``, gets its own choice (:func:`choose_at`).
    """
    rows, choices = [], {}
    for cutoff in eval_cutoffs:
        label = (pooled or {}).get(cutoff)
        if label in frames:
            weights = {label: 1.0}
        else:
            label, weights = choose_at(frames, BENCH, cutoff, top_k)
        history = observed_by(policy_frame(frames, weights), cutoff, window_months)
        now = policy_frame(frames, weights, [cutoff])
        try:
            now = Calibrator(level).fit(history).transform(now)
        except DataError:
            pass  # too few observed errors yet to calibrate: the model's own intervals stand
        rows.append(now)
        choices[cutoff] = label
    out = pd.concat(rows, ignore_index=True)
    return out[[CUTOFF, DS, Y, *forecast_columns(level)]], choices
