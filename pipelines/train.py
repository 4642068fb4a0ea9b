"""Training: backtest every (series, model) an experiment names, choose, register.

The work per series (:func:`train_series`) is a pure function of a :class:`SeriesTask`, so it runs
the same in a local process pool or on a Dask cluster; everything that talks to MLflow happens
afterwards in the calling process (:mod:`pipelines.tracking`).
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecasting.backtest import backtest, observed_by, score
from forecasting.bundle import Bundle, SeriesModel, is_regression
from forecasting.calibration import Calibrator, rolling_calibrate
from forecasting.counterfactual import upstream_candidates
from forecasting.data import ObservationStore
from forecasting.errors import DataError
from forecasting.frame import DS, STEP, UNIQUE_ID, Y, months_between, series_history
from forecasting.hierarchy import Hierarchy, find_splits, fit_hierarchy
from forecasting.interventions import Catalog, design_matrix, load_catalog
from forecasting.models import MODELS, make_model
from forecasting.models.base import Capability, Forecaster
from forecasting.models.ensemble import Ensemble
from forecasting.models.leading import IndicatorPool
from forecasting.pooled_calibration import rolling_calibrate_pooled
from forecasting.selection import choose_pooled, combine, geometric_rel_mae, skill_weights
from pipelines.config import Experiment, ModelSpec
from pipelines.executors import run_tasks

log = logging.getLogger(__name__)
#: The per-level measures of the calibrated intervals logged per candidate (and per horizon).
CALIBRATED_SCORES = ("coverage", "width", "winkler", "msis")
#: The shortest training window an origin may have: two seasons for the seasonal models' start.
MIN_TRAIN_MONTHS = 36


@dataclass(frozen=True)
class SeriesTask:
    """Everything one series' training needs; picklable, so it ships to any worker."""

    key: str
    y: pd.Series
    X: pd.DataFrame | None
    event_starts: dict[str, pd.Timestamp]
    experiment: Experiment
    #: The experiment's series and the indicators they read, for families fitted across series.
    pool: IndicatorPool | None = None
    #: Months its backtest runs ahead: as far as the experiment's stalest series is served from
    #: its own last month (``max_h`` after the panel's newest month).
    horizon: int = 0


def build_model(name: str, params: dict, task: SeriesTask) -> Forecaster:
    """A candidate's unfitted model; a pooled family also gets the task's pool and its key.

    Each fit of a pooled family cuts the pool at its own cutoff, so a backtest origin sees the
    other series and the indicators only as they were known then.
    """
    if Capability.POOLED in MODELS[name].declared:
        params = {**params, "pool": task.pool, "series": task.key}
    return make_model(name, **params)


@dataclass
class CandidateResult:
    """One (series, model): its backtest, scores and final fit, or the error that stopped it."""

    spec: ModelSpec
    status: str  # "ok" or "failed"
    seconds: float
    error: str | None = None
    backtest: pd.DataFrame | None = None
    by_step: pd.DataFrame | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model: Forecaster | None = None
    calibrator: Calibrator | None = None
    effects: pd.DataFrame | None = None


@dataclass
class SeriesResult:
    key: str
    y: pd.Series
    X: pd.DataFrame | None
    event_starts: dict[str, pd.Timestamp]
    cutoffs: list[pd.Timestamp]
    candidates: list[CandidateResult]
    chosen: CandidateResult
    fallback: str | None
    #: The "did not converge" warnings its fits raised, counted and summarised by the caller.
    convergence: list[str] = field(default_factory=list)


def _origins(task: SeriesTask) -> list[pd.Timestamp]:
    y = task.y
    earliest = y.index[0] + pd.DateOffset(months=MIN_TRAIN_MONTHS - 1)
    return [c for c in task.experiment.backtest.cutoffs(y.index[-1]) if c >= earliest]


def _metrics(bt: pd.DataFrame, bench: pd.DataFrame, y: pd.Series, exp: Experiment):
    """Point accuracy and the model's own coverage over the scored steps (1..``backtest.h``);
    the calibrated intervals' scores are added by :func:`calibrate` once every series is back."""
    bt, bench = _scored(bt, exp), _scored(bench, exp)
    by_step = score(bt, y, by="step")
    overall = score(bt, y, by=None).iloc[0]
    metrics = {f"mase_h{int(k)}": float(v) for k, v in by_step["mase"].items()}
    metrics.update({k: float(overall[k]) for k in ("mase", "rmsse", "smape", "mae")})
    metrics["rel_mae"] = geometric_rel_mae(bt, bench)
    for lv in exp.level:
        metrics[f"coverage_{lv}_model"] = float(overall[f"coverage_{lv}"])
    return metrics, by_step


def _scored(bt: pd.DataFrame, exp: Experiment) -> pd.DataFrame:
    """The rows of the months ahead accuracy is judged on; the backtest runs on to the served
    horizon so that every served step's interval is calibrated on errors measured at that step."""
    return bt[bt[STEP] <= exp.backtest.h]


def _calibrated_metrics(cand: CandidateResult, calibrated: pd.DataFrame, y, exp) -> None:
    """The calibrated intervals' scores, measured origin by origin with only the errors known at
    each cutoff (what real-time calibration would have had): coverage beside the proper scores
    (interval score, its scaled form, the weighted interval score), since coverage alone rewards
    intervals that are wide enough, however wide."""
    calibrated = _scored(calibrated, exp)
    if calibrated.dropna(subset=[Y]).empty:
        return
    cal = score(calibrated, y, by=None).iloc[0]
    cal_step = score(calibrated, y, by="step")
    names = [f"{m}_{lv}" for lv in exp.level for m in CALIBRATED_SCORES] + ["wis"]
    for name in names:
        cand.metrics[name] = float(cal[name])
        cand.by_step[f"{name}_calibrated"] = cal_step[name].reindex(cand.by_step.index)


def calibrate(exp: Experiment, results: list[SeriesResult]) -> None:
    """Give every candidate its served calibrator and its calibrated scores.

    ``pooled`` (the default): per candidate label, the series' backtests pooled
    (:class:`PooledCalibrator`), fitted at the newest month any series has; ``per_series``:
    each backtest alone (:class:`Calibrator`). A candidate without enough errors keeps its
    model's own intervals (its calibrator is ``None``).
    """
    histories = {r.key: r.y for r in results}
    config = exp.calibration
    if config.method == "per_series":
        for r in results:
            for cand in (c for c in r.candidates if c.status == "ok"):
                cand.calibrator = _own_calibrator(exp, cand.backtest, r.y.index[-1])
                try:
                    calibrated = rolling_calibrate(
                        cand.backtest, exp.level, exp.calibration_window_months
                    )
                except DataError:
                    continue
                _calibrated_metrics(cand, calibrated, r.y, exp)
        return
    pooled = exp.pooled_calibrator()
    by_label: dict[str, dict[str, CandidateResult]] = {}
    for r in results:
        for cand in (c for c in r.candidates if c.status == "ok"):
            by_label.setdefault(cand.spec.label, {})[r.key] = cand
    newest = max(r.y.index[-1] for r in results)
    for cands in by_label.values():
        backtests = {key: c.backtest for key, c in cands.items()}
        try:
            pooled.fit(backtests, histories, newest)
            calibrated = rolling_calibrate_pooled(backtests, histories, pooled)
        except DataError:
            continue
        for key, cand in cands.items():
            cand.calibrator = pooled.calibrator(histories[key])
            if key in calibrated:
                _calibrated_metrics(cand, calibrated[key], histories[key], exp)


def _error_text(exc: BaseException) -> str:
    """An exception as the one line a failed run records."""
    return "".join(traceback.format_exception_only(exc)).strip()


def _own_calibrator(exp: Experiment, bt: pd.DataFrame, cutoff: pd.Timestamp) -> Calibrator | None:
    """Conformal calibration from one backtest's recent origins, or ``None`` (the model's own
    intervals are served) when a short series' backtest has too few errors for it."""
    try:
        return Calibrator(exp.level).fit(observed_by(bt, cutoff, exp.calibration_window_months))
    except DataError:
        return None


def _fit_final(spec: ModelSpec, task: SeriesTask) -> Forecaster:
    model = build_model(spec.name, spec.params, task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(task.y, task.X)
    stalled = [str(w.message) for w in caught if "did not converge" in str(w.message)]
    if stalled:
        raise RuntimeError(stalled[0])
    return model


def _effects(model: Forecaster, level: list[int]) -> pd.DataFrame | None:
    """The fitted intervention effects, for families that can attribute change to regressors."""
    if not (model.can(Capability.EFFECTS) and model.regressors_):
        return None
    return model.effects(level)


def _run_candidate(spec, task, origins, bench) -> CandidateResult:
    exp = task.experiment
    start = time.perf_counter()
    try:
        bt = backtest(
            lambda: build_model(spec.name, spec.params, task),
            task.y,
            task.X,
            origins,
            max(exp.backtest.h, exp.max_h, task.horizon),
            exp.level,
            task.event_starts,
        )
        metrics, by_step = _metrics(bt, bench if bench is not None else bt, task.y, exp)
        model = _fit_final(spec, task)
        effects = _effects(model, exp.level)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded; the run goes on
        detail = _error_text(exc)
        return CandidateResult(spec, "failed", time.perf_counter() - start, error=detail)
    return CandidateResult(
        spec,
        "ok",
        time.perf_counter() - start,
        None,
        bt,
        by_step,
        metrics,
        model,
        None,
        effects,
    )


def _ensemble(task: SeriesTask, candidates: list[CandidateResult], bench) -> CandidateResult:
    """The best few candidates combined, weighted by backtest skill (1 / relMAE).

    Its backtest is the same combination of the members' backtests (no refit per origin); its
    final model refits the members on the whole history inside an :class:`Ensemble`.
    """
    exp = task.experiment
    start = time.perf_counter()
    ok = {c.spec.label: c for c in candidates if c.status == "ok" and c.spec != exp.baseline}
    weights = skill_weights({k: c.metrics["rel_mae"] for k, c in ok.items()}, exp.ensemble_top_k)
    members = [ok[k] for k in weights]
    spec = ModelSpec(
        name="ensemble",
        params={
            "members": [m.spec.label for m in members],
            "weights": [round(w, 4) for w in weights.values()],
        },
    )
    if len(members) < 2:
        return CandidateResult(spec, "failed", 0.0, error="fewer than two candidates to combine")
    try:
        bt = combine([m.backtest for m in members], list(weights.values()))
        metrics, by_step = _metrics(bt, bench, task.y, exp)
        model = Ensemble(
            [build_model(m.spec.name, m.spec.params, task) for m in members],
            list(weights.values()),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(task.y, task.X)
    except Exception as exc:  # noqa: BLE001 - recorded as a failed candidate
        detail = _error_text(exc)
        return CandidateResult(spec, "failed", time.perf_counter() - start, error=detail)
    seconds = time.perf_counter() - start + sum(m.seconds for m in members)
    return CandidateResult(spec, "ok", seconds, None, bt, by_step, metrics, model)


def _is_convergence(caught: warnings.WarningMessage) -> bool:
    return "did not converge" in str(caught.message)


def train_series(task: SeriesTask) -> SeriesResult:
    """Backtest and fit every candidate on one series; choose the best by the experiment's metric.

    The baseline runs first: it is the benchmark of ``rel_mae`` and what the series keeps when no
    candidate succeeds. Convergence warnings are collected on the result, not printed: a
    training of the default experiment raises dozens, one line each on the terminal.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _train_series(task)
    for w in caught:
        if _is_convergence(w):
            result.convergence.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


def _train_series(task: SeriesTask) -> SeriesResult:
    exp = task.experiment
    origins = _origins(task)
    if not origins:
        raise DataError(
            f"series '{task.key}' has {len(task.y)} months: too short for a backtest origin "
            f"with {MIN_TRAIN_MONTHS} months of training"
        )
    baseline = _run_candidate(exp.baseline, task, origins, None)
    bench = baseline.backtest
    candidates = [
        baseline if spec == exp.baseline else _run_candidate(spec, task, origins, bench)
        for spec in exp.models
    ]
    if exp.ensemble_top_k > 1:
        candidates.append(_ensemble(task, candidates, bench))
    ok = [
        c
        for c in candidates
        if c.status == "ok" and np.isfinite(c.metrics.get(exp.selection_metric, np.nan))
    ]
    fallback = None
    if ok:
        chosen = min(ok, key=lambda c: c.metrics[exp.selection_metric])
    elif baseline.status == "ok":
        chosen = baseline
        fallback = "every candidate failed; serving the baseline " + exp.baseline.label
    else:
        raise RuntimeError(f"series '{task.key}': the baseline failed too: {baseline.error}")
    return SeriesResult(
        task.key, task.y, task.X, task.event_starts, origins, candidates, chosen, fallback
    )


def _regressor_starts(catalog: Catalog, key: str, columns: list[str]) -> dict[str, pd.Timestamp]:
    starts = {}
    for column, events in catalog.regressors(key).items():
        if column in columns:
            starts[column] = (
                pd.Timestamp(min(e.start for e in events)).to_period("M").to_timestamp()
            )
    return starts


def build_tasks(
    exp: Experiment, store: ObservationStore, catalog: Catalog, series: list[str] | None = None
) -> list[SeriesTask]:
    """One task per series the experiment (or ``series``) names, from the store and catalog."""
    panel = store.panel()
    known = sorted(panel[UNIQUE_ID].unique())
    keys = (
        exp.resolve_series(known)
        if not series
        else Experiment.resolve_series(exp.model_copy(update={"series": list(series)}), known)
    )
    excluded = {catalog.resolve(name) for name in exp.exclude_events}
    newest = panel[DS].max()
    tasks = []
    for key in keys:
        y = series_history(panel, key, exp.train_start)
        if len(y) < exp.min_history_months:
            log.info("leaving out %s: %d months < min_history_months", key, len(y))
            continue
        X = None
        if exp.interventions:
            X = design_matrix(catalog, key, y.index[0], y.index[-1])
            X = X[[c for c in X.columns if c not in excluded]]
        starts = _regressor_starts(catalog, key, list(X.columns)) if X is not None else {}
        tasks.append(SeriesTask(key, y, X, starts, exp))
    # The stalest series is served furthest from its own last month; every backtest runs that
    # far, so the pooled calibration has errors measured at each step any series is served at.
    stale = max((months_between(t.y.index[-1], newest) for t in tasks), default=0)
    tasks = [replace(t, horizon=exp.max_h + stale) for t in tasks]
    if any(Capability.POOLED in MODELS[m.name].declared for m in exp.models):
        pool = IndicatorPool.from_panel(panel, {t.key: t.y for t in tasks})
        tasks = [replace(t, pool=pool) for t in tasks]
    return tasks


@dataclass
class Training:
    """What one training produced, before and after it is logged.

    ``pooled_choice`` is the candidate chosen for every series under ``selection: pooled``
    (``None`` under ``per_series``).
    """

    experiment: Experiment
    results: list[SeriesResult]
    failed_series: dict[str, str]
    catalog: Catalog
    vintage: dict[str, str]
    seconds: float
    pooled_choice: str | None = None
    hierarchy: Hierarchy | None = None
    #: The upstream indicators' counts: the bundle's ``controls`` candidates beside its series.
    upstream: dict[str, pd.Series] = field(default_factory=dict)

    @property
    def convergence(self) -> list[str]:
        """Every "did not converge" warning of the training, each prefixed with its series."""
        return [f"{r.key}: {message}" for r in self.results for message in r.convergence]

    @property
    def fell_back(self) -> list[str]:
        return [r.key for r in self.results if r.fallback]

    def bundle(self) -> Bundle:
        models = {
            r.key: SeriesModel(
                r.key,
                r.chosen.spec.name,
                r.chosen.model,
                r.chosen.calibrator,
                r.y,
                r.X if r.X is not None else pd.DataFrame(index=r.y.index),
                r.chosen.metrics,
                fallback=r.fallback,
                effect_models=_effect_models(r),
            )
            for r in self.results
        }
        exp = self.experiment
        meta = {"experiment": exp.name, **self.vintage}
        if exp.provisional:
            meta["provisional"] = " ".join(exp.description.split())
        return Bundle(
            models, self.catalog, exp.level, exp.max_h, meta, self.hierarchy, self.upstream
        )


def _effect_models(result: SeriesResult) -> dict[str, Forecaster]:
    """The fitted regression candidates of a series, most skilful first, for counterfactuals."""
    ok = [c for c in result.candidates if c.status == "ok" and is_regression(c.model)]
    ok.sort(key=lambda c: c.metrics.get("rel_mae", np.inf))
    return {c.spec.name: c.model for c in ok if c is not result.chosen}


def vintage(store: ObservationStore) -> dict[str, str]:
    """The data vintage a training saw: store fingerprint and newest month."""
    newest = store.panel()[DS].max()
    return {"data_fingerprint": store.fingerprint(), "data_newest_month": f"{newest:%Y-%m}"}


def train(
    exp: Experiment,
    store: ObservationStore,
    series: list[str] | None = None,
    executor: str = "local",
    workers: int = 2,
    catalog: Catalog | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Training:
    """Build the tasks, run them on the executor, and collect the results (nothing is logged).

    ``progress`` is told ``(series done, series total, series key)`` as each series ends.
    """
    start = time.perf_counter()
    catalog = catalog or load_catalog()
    tasks = build_tasks(exp, store, catalog, series)
    log.info("training %d series x %d models on %s", len(tasks), len(exp.models), executor)
    outcomes = run_tasks(
        train_series, tasks, executor, workers, label=lambda t: t.key, progress=progress
    )
    results, failed = [], {}
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed[task.key] = _error_text(outcome)
            log.error("series %s failed: %s", task.key, failed[task.key])
        else:
            results.append(outcome)
    if not results:
        raise RuntimeError(f"every series failed: {failed}")
    calibrate(exp, results)
    _summarise_convergence(results)
    pooled = _choose_pooled(exp, results) if exp.selection == "pooled" else None
    hierarchy = _hierarchy(exp, store, results) if exp.hierarchy.enabled else None
    return Training(
        exp,
        results,
        failed,
        catalog,
        vintage(store),
        time.perf_counter() - start,
        pooled,
        hierarchy,
        upstream_candidates(store.panel()),
    )


def _summarise_convergence(results: list[SeriesResult]) -> None:
    """One line for all the fits that did not converge; each at debug level (and in MLflow)."""
    stalled = [(r.key, message) for r in results for message in r.convergence]
    for key, message in stalled:
        log.debug("%s: %s", key, message)
    if stalled:
        log.info(
            "%d fits did not converge, in %d series (backtest origins included; a final fit "
            "that does not converge fails its candidate); the list: convergence_warnings.txt "
            "in the parent run, or -v",
            len(stalled),
            len({key for key, _ in stalled}),
        )


def _hierarchy(exp: Experiment, store: ObservationStore, results: list[SeriesResult]):
    """The splits among the trained series, with share models fitted at the data's edge."""
    known = sorted(store.panel()[UNIQUE_ID].unique())
    history = {r.key: r.y for r in results}
    splits = find_splits(list(history), known)
    if not splits:
        return None
    start = time.perf_counter()
    hierarchy = fit_hierarchy(splits, history, exp.hierarchy.share_config(), exp.level, exp.max_h)
    log.info("hierarchy: %d splits fitted in %.1fs", len(splits), time.perf_counter() - start)
    return hierarchy


def _choose_pooled(exp: Experiment, results: list[SeriesResult]) -> str:
    """Give every series the candidate with the best skill pooled over the series.

    A series on which that candidate failed keeps its own best, and the log says so.
    """
    label = choose_pooled(
        {
            r.key: {
                c.spec.label: c.metrics.get(exp.selection_metric, np.nan)
                for c in r.candidates
                if c.status == "ok"
            }
            for r in results
        }
    )
    for result in results:
        match = [c for c in result.candidates if c.spec.label == label and c.status == "ok"]
        if match:
            result.chosen = match[0]
        else:
            log.info(
                "%s: the pooled choice %s failed here; serving its own best, %s",
                result.key,
                label,
                result.chosen.spec.label,
            )
    log.info("pooled choice for all %d series: %s", len(results), label)
    return label
