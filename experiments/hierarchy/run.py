"""Ragged-edge benchmark: child series nowcast and forecast from the freshest data in their tree.

    python -m experiments.hierarchy.run [--config experiments/hierarchy/config.yaml] [--workers 2]

At each origin (the as-of month of the time) the publication pattern is reproduced: the sectors and
the citizenships the CBP sbo file does not name end ``edge`` months before the total (1, 3 and 9),
the total, the family statuses and the four named citizenships at the origin. Three ways to serve
the children over the months after their data end are scored against what was published:

- ``own last value``: each series from its own last month (what the service did before): the
  naive forecast, with conformal intervals from its own past errors;
- ``last year's shares``: top-down, each child's share of the last 12 observed months times the
  total (observed up to the origin, its forecast after), with conformal intervals of those shares;
- ``project``: :mod:`forecasting.hierarchy` as served, with the settings the tuning origins chose.

The total after the origin is the naive forecast with conformal intervals (the default
experiment's pooled choice). Writes ``tuning.md``, ``results.json`` and ``results.md`` beside this
file and logs the figures to MLflow (experiment ``border-encounters-hierarchy``).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import logging
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml

from experiments import protocol_args, provenance
from forecasting.backtest import backtest, observed_by
from forecasting.calibration import Calibrator
from forecasting.data import ObservationStore
from forecasting.frame import DS, MEAN, UNIQUE_ID, Y, hi_col, lo_col, months_between, series_history
from forecasting.hierarchy import (
    KIND,
    NOWCAST,
    ShareConfig,
    dimension,
    find_splits,
    fit_hierarchy,
    reconcile,
    share_nowcast,
    with_residuals,
)
from forecasting.home import encounters_home
from forecasting.metrics import geometric_mean
from forecasting.models import Naive, SeasonalNaive
from pipelines.executors import run_tasks
from pipelines.tracking import configure, experiment_id

HERE = Path(__file__).resolve().parent
log = logging.getLogger("hierarchy")
OWN, LAST_YEAR, PROJECT = "own last value", "last year's shares", "project"
METHODS = (OWN, LAST_YEAR, PROJECT)
#: Months of past origins whose errors calibrate a naive series' intervals (as served).
CALIBRATION_MONTHS = 36


def load(config: dict) -> tuple[dict[str, pd.Series], list[str], list[str]]:
    """The parent's and the panel's histories, every key the store holds, and the panel's keys."""
    panel = ObservationStore(encounters_home()).panel()
    known = sorted(panel[UNIQUE_ID].unique())
    keys = [k for pattern in config["series"] for k in sorted(fnmatch.filter(known, pattern))]
    history = {k: series_history(panel, k) for k in [config["parent"], *keys]}
    return history, known, keys


def is_stale(config: dict, key: str) -> bool:
    return any(fnmatch.fnmatch(key, pattern) for pattern in config["stale"])


def edges(config: dict, splits, edge: int) -> dict[str, int]:
    """Months each child ends before the parent: ``edge`` for the stale ones and residuals."""
    return {
        c: edge if (is_stale(config, c) or c == s.residual) else 0
        for s in splits
        for c in s.children
    }


def origins(config: dict, which: str) -> pd.DatetimeIndex:
    return pd.date_range(
        config[f"{which}_first"], config[f"{which}_last"], freq=f"{config['step_months']}MS"
    )


def _log_error(actual, mean) -> np.ndarray:
    return np.abs(np.log1p(np.asarray(actual, float)) - np.log1p(np.asarray(mean, float)))


def settings(config: dict) -> list[tuple[str, ShareConfig]]:
    """Every combination of the grid (the ridge and window do not matter without covariates)."""
    grid, seen, out = config["grid"], set(), []
    for (name, covariates), ridge, window, level in itertools.product(
        grid["covariates"].items(), grid["ridge"], grid["window_months"], grid["level_months"]
    ):
        if not covariates:
            ridge, window = grid["ridge"][0], grid["window_months"][0]
        label = f"{name}, ridge {ridge:g}, window {window}, level {level}"
        if label not in seen:
            seen.add(label)
            out.append((label, ShareConfig(covariates, ridge, window, level)))
    return out


def tune(config: dict, history, known, keys) -> tuple[pd.DataFrame, ShareConfig]:
    """Each setting's median |log error| of the stale children's nowcasts at the longest edge,
    on the tuning origins only (their nowcast and forecast months end before the evaluation's)."""
    splits = [s for s in find_splits([config["parent"], *keys], known) if s.method == "shares"]
    full = with_residuals(splits, history)
    edge = max(config["edges"])
    rows = []
    for label, share_config in settings(config):
        errors: dict[str, list[float]] = {}
        for origin, split in itertools.product(origins(config, "tune"), splits):
            gaps = edges(config, [split], edge)
            means = share_nowcast(split, full, share_config, gaps, origin, horizon=0)
            if means is None:
                continue
            for c in split.children:
                if gaps[c] and c != split.residual:
                    months = means.index[means.index > origin - pd.DateOffset(months=gaps[c])]
                    actual = full[c].reindex(months)
                    errors.setdefault(dimension(c), []).extend(
                        _log_error(actual, means.loc[months, c])
                    )
        row = {"setting": label, **{d: float(np.nanmedian(e)) for d, e in errors.items()}}
        row["children"] = float(np.nanmedian(np.concatenate(list(errors.values()))))
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("children").reset_index(drop=True)
    best = dict(settings(config))[table.loc[0, "setting"]]
    return table, best


def naive_frame(y: pd.Series, horizon: int, levels: list[int]) -> pd.DataFrame:
    """The naive forecast from ``y``'s last month, with conformal intervals from its past errors
    (the last 36 months of monthly origins), as the default experiment serves it."""
    cut = y.index[-1]
    past = pd.date_range(cut - pd.DateOffset(months=CALIBRATION_MONTHS + horizon), cut, freq="MS")
    past = [o for o in past[:-1] if o - pd.DateOffset(months=13) >= y.index[0]]
    bt = backtest(Naive(), y, origins=past, h=horizon, level=levels)
    frame = Naive().fit(y).predict(horizon, level=levels)
    calibrated = Calibrator(levels).fit(observed_by(bt, cut, CALIBRATION_MONTHS)).transform(frame)
    return calibrated.rename_axis(DS).reset_index()


def evaluate(task: tuple) -> pd.DataFrame:
    """One origin at one edge: every method's rows for every child, with the actuals."""
    config, history, known, keys, origin, edge, project_config = task
    h, levels = config["h"], config["level"]
    parent = config["parent"]
    splits = find_splits([parent, *keys], known)
    gaps = edges(config, splits, edge)
    truncated = {
        k: y.loc[: origin - pd.DateOffset(months=gaps.get(k, 0))] for k, y in history.items()
    }
    frames = {
        k: naive_frame(y, months_between(y.index[-1], origin) + h, levels)
        for k, y in truncated.items()
    }
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = {OWN: frames}
        for method, share_config in (
            (LAST_YEAR, ShareConfig(level_months=config["last_year_shares"]["level_months"])),
            (PROJECT, project_config),
        ):
            hierarchy = fit_hierarchy(splits, truncated, share_config, levels, h)
            served[method] = reconcile(hierarchy, frames, truncated, levels, h)
    full = with_residuals(splits, history)
    for method, by_key in served.items():
        for key in keys:
            frame = by_key[key].set_index(DS)
            frame = frame[(frame.index > truncated[key].index[-1])]
            frame = frame[frame.index <= origin + pd.DateOffset(months=h)]
            kind = np.where(frame.index <= origin, "nowcast", "forecast")
            snaive = SeasonalNaive().fit(truncated[key]).predict(len(frame))[MEAN].to_numpy()
            part = pd.DataFrame(
                {
                    "method": method,
                    "key": key,
                    "dimension": dimension(key),
                    "edge": edge,
                    "origin": origin,
                    DS: frame.index,
                    KIND: kind,
                    Y: full[key].reindex(frame.index).to_numpy(),
                    MEAN: frame[MEAN].to_numpy(),
                    "snaive": snaive,
                    **{c: frame[c].to_numpy() for lv in levels for c in (lo_col(lv), hi_col(lv))},
                }
            )
            out.append(part)
    return pd.concat(out, ignore_index=True)


def summarise(rows: pd.DataFrame, levels: list[int]) -> pd.DataFrame:
    """Per method, series level, edge and row kind: median |log error|, relMAE against seasonal
    naive from the child's own last month (geometric mean over series and origins), coverage."""
    rows = rows.dropna(subset=[Y])
    rows = rows.assign(
        abs_log_error=_log_error(rows[Y], rows[MEAN]),
        ae=(rows[Y] - rows[MEAN]).abs(),
        snaive_ae=(rows[Y] - rows["snaive"]).abs(),
        **{
            f"covered_{lv}": (rows[lo_col(lv)] <= rows[Y]) & (rows[Y] <= rows[hi_col(lv)])
            for lv in levels
        },
    )
    children = rows[rows["dimension"] != "family"].assign(dimension="sector+citizenship")
    rows = pd.concat([rows, children], ignore_index=True)

    def one(g: pd.DataFrame) -> pd.Series:
        pairs = g.groupby(["key", "origin"])[["ae", "snaive_ae"]].mean()
        ratio = (pairs["ae"] / pairs["snaive_ae"]).replace([np.inf, 0], np.nan).dropna()
        out = {
            "rows": len(g),
            "median_abs_log_error": g["abs_log_error"].median(),
            "rel_mae": geometric_mean(ratio.to_numpy()) if len(ratio) else np.nan,
        }
        out.update({f"coverage_{lv}": g[f"covered_{lv}"].mean() for lv in levels})
        return pd.Series(out)

    groups = rows.groupby(["dimension", "edge", KIND, "method"], sort=False)
    table = groups.apply(one, include_groups=False).reset_index().astype({"rows": int})
    order = {m: i for i, m in enumerate(METHODS)}
    return table.sort_values(
        ["dimension", "edge", KIND, "method"],
        key=lambda c: c.map(order) if c.name == "method" else c,
    ).reset_index(drop=True)


def table_text(frame: pd.DataFrame) -> str:
    """A Markdown table: integers as they are, other numbers to three decimals."""

    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float | np.floating) else str(value)

    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "".join(
        "| " + " | ".join(cell(v) for v in row) + " |\n" for row in frame.itertuples(False)
    )


def targets(table: pd.DataFrame) -> dict[str, float]:
    """The issue's targets at the longest edge: the children's nowcast months."""
    at = table[(table["dimension"] == "sector+citizenship") & (table["edge"] == 9)]
    nowcast = at[at[KIND] == NOWCAST].set_index("method")
    project, last_year = nowcast.loc[PROJECT], nowcast.loc[LAST_YEAR]
    return {
        "median_abs_log_error": float(project["median_abs_log_error"]),
        "coverage_80": float(project["coverage_80"]),
        "reduction_vs_last_year_shares": float(
            1 - project["median_abs_log_error"] / last_year["median_abs_log_error"]
        ),
    }


def log_to_mlflow(config: dict, table: pd.DataFrame, chosen: str, files: list[Path]) -> str:
    home = encounters_home()
    client = configure(home)
    experiment = experiment_id(client, config["experiment"], home)
    with mlflow.start_run(experiment_id=experiment, run_name="ragged-edge benchmark") as run:
        mlflow.log_param("share_settings", chosen)
        mlflow.log_param("edges", config["edges"])
        for row in table.itertuples(index=False):
            for metric in ("median_abs_log_error", "rel_mae", "coverage_80", "coverage_95"):
                value = getattr(row, metric)
                if np.isfinite(value):
                    name = f"{row.dimension}.edge{row.edge}.{row.kind}.{row.method}.{metric}"
                    name = name.replace("+", "_and_").replace(" ", "_").replace("'", "")
                    mlflow.log_metric(name, float(value))
        for path in files:
            mlflow.log_artifact(str(path))
        return run.info.run_id


def main() -> None:
    args = protocol_args(__doc__, HERE)
    config = yaml.safe_load(args.config.read_text())
    history, known, keys = load(config)
    start = time.perf_counter()
    tuning, chosen = tune(config, history, known, keys)
    label = tuning.loc[0, "setting"]
    log.info("tuning: %s chosen in %.0fs", label, time.perf_counter() - start)
    (HERE / "tuning.md").write_text(
        "# Share-model settings on the tuning origins\n\n"
        f"Origins {config['tune_first']}..{config['tune_last']} every {config['step_months']} "
        f"months; the stale children's nowcasts at a {max(config['edges'])}-month edge; median "
        "|log error| per level (lower is better). The first row is what the evaluation and "
        "`experiments/default.yaml` use.\n\n" + table_text(tuning)
    )
    tasks = [
        (config, history, known, keys, origin, edge, chosen)
        for origin in origins(config, "eval")
        for edge in config["edges"]
    ]
    start = time.perf_counter()
    results = run_tasks(
        evaluate, tasks, "local", args.workers, label=lambda t: f"{t[4]:%Y-%m} edge {t[5]}"
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
    rows = pd.concat(results, ignore_index=True)
    log.info("evaluation: %d tasks in %.0fs", len(tasks), time.perf_counter() - start)
    table = summarise(rows, config["level"])
    reached = targets(table)
    store = ObservationStore(encounters_home())
    results_json = {
        "provenance": provenance(store_fingerprint=store.fingerprint()),
        "share_settings": label,
        "targets": reached,
        "table": table.round(4).to_dict(orient="records"),
        "seconds": round(time.perf_counter() - start),
    }
    (HERE / "results.json").write_text(json.dumps(results_json, indent=2, default=str) + "\n")
    text = [
        "# Ragged-edge benchmark results",
        "",
        f"Generated by `python -m experiments.hierarchy.run`; protocol in `config.yaml`. Origins "
        f"{config['eval_first']}..{config['eval_last']} every {config['step_months']} months; "
        f"the stale children end {config['edges']} months before the total; h={config['h']}. "
        f"Share settings (chosen on the tuning origins, `tuning.md`): {label}.",
        "",
        "## Targets (children at the 9-month edge, nowcast months)",
        "",
        f"- median |log error| {reached['median_abs_log_error']:.3f} (target <= 0.25)",
        f"- 80 % coverage {reached['coverage_80']:.3f} (target 0.75-0.85)",
        f"- {reached['reduction_vs_last_year_shares']:.0%} lower median |log error| than top-down "
        "with last year's shares (target >= 40 %)",
        "",
        "## Every level, edge and row kind",
        "",
        table_text(table),
    ]
    (HERE / "results.md").write_text("\n".join(text))
    run_id = log_to_mlflow(config, table, label, [HERE / "results.md", HERE / "tuning.md"])
    log.info("wrote results.md; MLflow run %s", run_id)


if __name__ == "__main__":
    main()
