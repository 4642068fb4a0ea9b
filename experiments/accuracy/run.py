"""Accuracy benchmark: the project's choice of model vs peer libraries on one protocol.

    python -m experiments.accuracy.run [--config experiments/accuracy/config.yaml] [--rescore]

Writes ``forecasts.csv.gz``, ``results.json`` and ``results.md`` beside this file. Each engine's
forecasts (per cutoff for the peers, per series for the project) are cached under ``.cache/`` so a
rerun computes only what is missing; delete the folder to start afresh. The project's backtests are
cached under a key of what they depend on (the code a backtest runs and the catalog, the data and
the candidates), so a change to any of them recomputes them. ``--rescore`` only scores the
stored ``forecasts.csv.gz`` again (new measures on the last run's forecasts, in seconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

import forecasting
from experiments import protocol_args, provenance
from experiments.accuracy import exceedance, peers, project
from forecasting.backtest import MASE_SCALE, score_terms, seasonal_scales
from forecasting.data import ObservationStore
from forecasting.data.keys import slug
from forecasting.frame import CUTOFF, DS, UNIQUE_ID, Y, forecast_columns
from forecasting.home import encounters_home
from forecasting.interventions import load_catalog
from forecasting.metrics import geometric_mean
from pipelines.config import Experiment

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
log = logging.getLogger("accuracy")
BENCHMARK = "SeasonalNaive"
PROJECT = "project"
#: The project's forecasts calibrated on each series' own errors (the calibration before the
#: pooled one training uses), shown beside the project's row.
PER_SERIES_CALIBRATION = "project_per_series_calibration"


#: The parts of the ``forecasting`` package a backtest runs (calibration, selection and the
#: counterfactual code come after it, so changing them keeps the cache).
BACKTEST_CODE = (
    "backtest.py",
    "frame.py",
    "errors.py",
    "home.py",
    "metrics.py",
    "data",
    "interventions",
    "models",
)


def _project_key(specs: list, store: ObservationStore) -> str:
    """A digest of what the project's backtests depend on besides the origins and the series."""
    digest = hashlib.sha256(json.dumps(specs, sort_keys=True).encode())
    digest.update(store.fingerprint().encode())
    package = Path(forecasting.__file__).parent
    files = [f for part in BACKTEST_CODE for f in [package / part, *(package / part).rglob("*")]]
    for path in sorted(f for f in files if f.is_file() and f.suffix in (".py", ".yaml")):
        digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def load_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    config["cutoffs"] = list(
        pd.date_range(
            config["first_cutoff"], config["last_cutoff"], freq=f"{config['step_months']}MS"
        )
    )
    return config


def load_panel(series: list[str]) -> pd.DataFrame:
    panel = ObservationStore(encounters_home()).panel()
    panel = panel[panel[UNIQUE_ID].isin(series)][[UNIQUE_ID, DS, Y]]
    missing = sorted(set(series) - set(panel[UNIQUE_ID]))
    if missing:
        raise SystemExit(f"series not in the store: {missing}")
    return panel.sort_values([UNIQUE_ID, DS]).reset_index(drop=True)


def _cached(path: Path, compute):
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = compute()
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def run_peers(config: dict, panel: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    h, level = config["h"], config["level"]
    frames, seconds = [], {}
    engines = {"statsforecast": peers.statsforecast_peers, "prophet": peers.prophet_peer}
    for cutoff in config["cutoffs"]:
        train = panel[panel[DS] <= cutoff]
        for name, engine in engines.items():

            def compute(e=engine, t=train):
                start = time.perf_counter()
                return e(t, h, level), time.perf_counter() - start

            frame, secs = _cached(CACHE / f"{name}-{cutoff:%Y-%m}.pkl", compute)
            seconds[name] = seconds.get(name, 0.0) + secs
            frames.append(frame.assign(**{CUTOFF: cutoff}))
    return pd.concat(frames, ignore_index=True), seconds


def run_project(config: dict, panel_series: list[str], workers: int):
    """Candidate backtests per series (cached), then the nested choice at each evaluated origin."""
    spec = config["project"]
    h, level = config["h"], config["level"]
    experiment = Experiment(
        name="accuracy",
        mlflow_experiment="accuracy",
        series=panel_series,
        level=level,
        # The candidates' families: a pooled one makes the tasks carry the series' pool.
        models=[{"name": c["name"]} for c in spec["candidates"]],
        backtest={"first_cutoff": spec["warmup_first_cutoff"]},
    )
    store = ObservationStore(encounters_home())
    tasks = project.tasks_for(experiment, store, panel_series)
    origins = list(
        pd.date_range(
            spec["warmup_first_cutoff"], config["last_cutoff"], freq=f"{config['step_months']}MS"
        )
    )
    specs = project.candidate_specs(spec)
    CACHE.mkdir(exist_ok=True)
    key = _project_key(specs, store)

    def cached(task) -> Path:
        return CACHE / f"project-{slug(task.key)}-{key}.pkl"

    backtests = project.cached_backtests(tasks, specs, origins, h, level, cached, workers)
    rows, choices, failures, series_frames = [], {}, {}, {}
    for task in tasks:
        results = backtests[task.key]
        series_frames[task.key] = {k: v for k, v in results.items() if isinstance(v, pd.DataFrame)}
        failures.update({f"{task.key} {k}": v for k, v in results.items() if isinstance(v, str)})
    pooled = None
    if spec["selection"] == "pooled":
        pooled = project.pooled_choices(series_frames, config["cutoffs"])
    picks = {
        task.key: project.nested_choices(
            series_frames[task.key],
            [c for c in config["cutoffs"] if c in task.y.index],
            spec["top_k"],
            pooled,
        )
        for task in tasks
    }
    # Calibrated as training calibrates (pooled), and each series on its own errors beside it.
    calibrated = project.pooled_calibrated(
        series_frames,
        picks,
        {task.key: task.y for task in tasks},
        experiment.pooled_calibrator(),
        level,
    )
    for task in tasks:
        frames = series_frames[task.key]
        own = project.per_series_calibrated(
            frames, picks[task.key], level, spec["calibration_window_months"]
        )
        for model, chosen in [(PROJECT, calibrated[task.key]), (PER_SERIES_CALIBRATION, own)]:
            rows.append(chosen.assign(**{UNIQUE_ID: task.key, "model": model}))
        choices[task.key] = {f"{c:%Y-%m}": label for c, (label, _) in picks[task.key].items()}
        eval_cutoffs = list(picks[task.key])
        for label, frame in frames.items():
            rows.append(
                frame[frame[CUTOFF].isin(eval_cutoffs)].assign(
                    **{UNIQUE_ID: task.key, "model": f"{PROJECT}:{label}"}
                )
            )
    return pd.concat(rows, ignore_index=True), choices, failures


def _relative_columns(level: list[int]) -> list[str]:
    return [f"winkler_{lv}" for lv in level] + ["wis"]


def score(forecasts: pd.DataFrame, panel: pd.DataFrame, level: list[int]) -> pd.DataFrame:
    """Per (model, series, cutoff): MAE, relMAE vs seasonal naive, MASE, sMAPE, RMSSE, intervals.

    The terms are the backtests' own (:func:`forecasting.backtest.score_terms`), averaged over
    each pair's months; each pair's interval scores and WIS also over the benchmark's on the
    same months (``rel_winkler_<l>``, ``rel_wis``).
    """
    data = forecasts.dropna(subset=[Y])
    keys = pd.MultiIndex.from_frame(data[[UNIQUE_ID, CUTOFF, DS]])
    scales = pd.concat(
        {
            key: seasonal_scales(rows[CUTOFF], panel.loc[panel[UNIQUE_ID] == key].set_index(DS)[Y])
            for key, rows in data.groupby(UNIQUE_ID)
        },
        names=[UNIQUE_ID, CUTOFF],
    )
    data = data.join(scales, on=[UNIQUE_ID, CUTOFF])
    terms = score_terms(data, level)
    terms[MASE_SCALE] = data[MASE_SCALE]
    relative = ["ae", *_relative_columns(level)]
    # The benchmark's own terms on each row's (series, cutoff, month).
    bench = terms.loc[(data["model"] == BENCHMARK).to_numpy(), relative]
    bench.index = pd.MultiIndex.from_frame(data.loc[data["model"] == BENCHMARK, keys.names])
    for column in relative:
        terms[f"bench_{column}"] = bench[column].reindex(keys).to_numpy()
    agg = terms.groupby([data["model"], data[UNIQUE_ID], data[CUTOFF]]).mean().reset_index()
    agg["rel_mae"] = agg["ae"] / agg["bench_ae"]
    for column in _relative_columns(level):
        agg[f"rel_{column}"] = agg[column] / agg[f"bench_{column}"]
    agg = agg.rename(columns={"ae": "mae", "abs_y": "y_mean"})
    agg["rmsse"] = np.sqrt(agg["mse_scaled"])
    return agg


def _geometric(values: pd.Series) -> float:
    """Geometric mean of the finite positive ratios (a pair the benchmark forecast exactly has
    none)."""
    kept = values[np.isfinite(values) & (values > 0)]
    return geometric_mean(kept.to_numpy()) if len(kept) else float("nan")


def summarise(pairs: pd.DataFrame, level: list[int]) -> pd.DataFrame:
    def one(g: pd.DataFrame) -> pd.Series:
        out = {
            "pairs": len(g),
            "rel_mae": _geometric(g["rel_mae"]),
            "median_mase": g["mase"].median(),
            "mean_mase": g["mase"].mean(),
            "median_rmsse": g["rmsse"].median(),
            "smape": g["smape"].mean(),
        }
        for lv in level:
            out[f"coverage_{lv}"] = g[f"coverage_{lv}"].mean()
            out[f"rel_width_{lv}"] = g[f"width_{lv}"].mean() / g["y_mean"].mean()
            out[f"rel_is_{lv}"] = _geometric(g[f"rel_winkler_{lv}"])
            out[f"msis_{lv}"] = g[f"msis_{lv}"].median()
        out["rel_wis"] = _geometric(g["rel_wis"])
        return pd.Series(out)

    return pairs.groupby("model").apply(one, include_groups=False).sort_values("rel_mae")


def common_pairs(pairs: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Only (series, cutoff) pairs every listed model forecast: same pairs for everyone."""
    sub = pairs[pairs["model"].isin(models)]
    counts = sub.groupby([UNIQUE_ID, CUTOFF])["model"].nunique()
    keep = counts[counts == len(models)].index
    return sub.set_index([UNIQUE_ID, CUTOFF]).loc[keep].reset_index()


def _group(key: str) -> str:
    """The panel's series groups: the total, sectors, citizenships, family status."""
    for dimension in ("sector", "citizenship", "family"):
        if f"/{dimension}=" in key:
            return dimension
    return "total"


def regressor_effect(pairs: pd.DataFrame, families: list[str], recent_from) -> pd.DataFrame:
    """Per family with regressors, group of series and period: relMAE with them over without.

    Below 1 the regressors helped. ``series_helped`` counts the series whose own ratio (geometric
    mean over origins) is below 1.
    """
    rows = []
    for family in families:
        with_x = pairs[pairs["model"] == f"{PROJECT}:{family}"]
        without = pairs[pairs["model"] == f"{PROJECT}:{family}{project.NO_EVENTS}"]
        both = with_x.merge(without, on=[UNIQUE_ID, CUTOFF], suffixes=("", "_without"))
        both["ratio"] = both["mae"] / both["mae_without"]
        both = both[np.isfinite(both["ratio"]) & (both["ratio"] > 0)]
        both["group"] = both[UNIQUE_ID].map(_group)
        both["period"] = np.where(both[CUTOFF] >= recent_from, "recent", "earlier")
        for (group, when), g in both.groupby(["group", "period"]):
            per_series = g.groupby(UNIQUE_ID)["ratio"].apply(lambda r: geometric_mean(r.to_numpy()))
            rows.append(
                {
                    "family": family,
                    "series": group,
                    "origins": when,
                    "pairs": len(g),
                    "with_over_without": geometric_mean(g["ratio"].to_numpy()),
                    "series_helped": f"{int((per_series < 1).sum())} of {len(per_series)}",
                }
            )
    return pd.DataFrame(rows)


def table_text(frame: pd.DataFrame) -> str:
    """A Markdown table: counts as integers, other numbers to three decimals."""

    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float | np.floating) else str(value)

    rows = ["| " + " | ".join(cell(v) for v in row) + " |\n" for row in frame.itertuples(False)]
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "".join(rows)


def markdown(table: pd.DataFrame, level: list[int]) -> str:
    cols = (
        ["pairs", "rel_mae", "median_mase", "smape"]
        + [
            c
            for lv in level
            for c in (f"coverage_{lv}", f"rel_is_{lv}", f"msis_{lv}", f"rel_width_{lv}")
        ]
        + ["rel_wis"]
    )
    return table_text(table[cols].astype({"pairs": int}).rename_axis("model").reset_index())


def _steps(forecasts: pd.DataFrame) -> pd.Series:
    """Months ahead of each row's cutoff."""
    cutoff, ds = forecasts[CUTOFF].dt, forecasts[DS].dt
    return (ds.year - cutoff.year) * 12 + ds.month - cutoff.month


def slices(forecasts: pd.DataFrame, panel: pd.DataFrame, config: dict) -> dict:
    """Per slice (origins from ``slices_from``, months 1..h for each target's ``h``): every
    model's summary on the pairs all of them forecast, and the target against the best peer."""
    level, start = config["level"], pd.Timestamp(config["slices_from"])
    out = {}
    for h, share in config["slice_targets"].items():
        rows = forecasts[(forecasts[CUTOFF] >= start) & (_steps(forecasts) <= int(h))]
        pairs = score(rows, panel, level)
        table = summarise(common_pairs(pairs, sorted(pairs["model"].unique())), level)
        peers_only = table.loc[[m for m in table.index if not m.startswith(PROJECT)], "rel_mae"]
        best = peers_only.idxmin()
        target = share * peers_only.min()
        out[f"h1-{h}"] = {
            "table": table,
            "best_peer": best,
            "target": target,
            "project": table.loc[PROJECT, "rel_mae"],
            "leading": table["rel_mae"].get(f"{PROJECT}:leading", np.nan),
        }
    return out


def slice_text(found: dict, start: str, level: list[int]) -> list[str]:
    text = []
    for name, s in found.items():
        text += [
            f"## Origins from {start}, months {name.removeprefix('h')} ahead",
            "",
            f"Target: relMAE at most {s['target']:.3f} (the best peer, `{s['best_peer']}`, "
            f"{s['table'].loc[s['best_peer'], 'rel_mae']:.3f}, times the target share). "
            f"Project: {s['project']:.3f} ({'met' if s['project'] <= s['target'] else 'not met'}"
            ")"
            + (
                f"; `project:leading` alone: {s['leading']:.3f}."
                if np.isfinite(s["leading"])
                else " (this run had no `project:leading`)."
            ),
            "",
            markdown(s["table"], level),
        ]
    return text


def compute(config: dict, panel: pd.DataFrame, workers: int) -> tuple[pd.DataFrame, dict]:
    """Every model's forecasts (written to ``forecasts.csv.gz``) and the run's own facts."""
    level = config["level"]
    peer_fc, peer_seconds = run_peers(config, panel)
    project_fc, choices, failures = run_project(config, config["series"], workers)
    forecasts = pd.concat([peer_fc, project_fc], ignore_index=True).drop(
        columns=[Y], errors="ignore"
    )
    forecasts = forecasts.merge(panel, on=[UNIQUE_ID, DS], how="left")
    columns = [UNIQUE_ID, CUTOFF, DS, Y, "model", *forecast_columns(level)]
    forecasts = forecasts[columns].sort_values(["model", UNIQUE_ID, CUTOFF, DS])
    forecasts.to_csv(HERE / "forecasts.csv.gz", index=False, float_format="%.2f")
    return forecasts, {
        "choices": choices,
        "failed_candidates": failures,
        "peer_seconds": peer_seconds,
    }


def stored() -> tuple[pd.DataFrame, dict]:
    """The last run's forecasts and facts, to score again without refitting (``--rescore``)."""
    forecasts = pd.read_csv(HERE / "forecasts.csv.gz", parse_dates=[CUTOFF, DS])
    previous = json.loads((HERE / "results.json").read_text())
    facts = ("choices", "failed_candidates", "peer_seconds")
    return forecasts, {k: previous[k] for k in facts if k in previous}


def main() -> None:
    args = protocol_args(
        __doc__,
        HERE,
        options={"--rescore": "score the stored forecasts.csv.gz again instead of refitting"},
    )
    config = load_config(args.config)
    level = config["level"]
    panel = load_panel(config["series"])
    forecasts, facts = stored() if args.rescore else compute(config, panel, args.workers)
    pairs = score(forecasts, panel, level)
    # The leading-indicator family is shown beside the project's choice: the question it answers.
    models = set(forecasts["model"])
    peer_models = sorted(m for m in models if not m.startswith(PROJECT))
    ours = (PROJECT, PER_SERIES_CALIBRATION, f"{PROJECT}:leading")
    main_models = peer_models + [m for m in ours if m in models]
    everyone = common_pairs(pairs, main_models)
    recent = everyone[everyone[CUTOFF] >= pd.Timestamp(config["recent_from"])]
    tables = {
        "all": summarise(everyone, level),
        "recent": summarise(recent, level),
        "project_candidates": summarise(
            common_pairs(
                pairs, sorted(m for m in pairs["model"].unique() if m.startswith(PROJECT))
            ),
            level,
        ),
    }
    results = {name: t.round(4).to_dict(orient="index") for name, t in tables.items()}
    found = slices(forecasts, panel, config)
    results["slices"] = {
        name: {k: (v.round(4).to_dict(orient="index") if k == "table" else v) for k, v in s.items()}
        for name, s in found.items()
    }
    above = exceedance.probabilities(forecasts[forecasts["model"].isin(main_models)], panel, level)
    brier, reliable = exceedance.brier(above), exceedance.reliability(above, PROJECT)
    results["exceedance"] = {
        "brier": brier.round(4).to_dict(orient="index"),
        "project_reliability": reliable.round(4).to_dict(orient="index"),
    }
    helped = regressor_effect(
        pairs, config["project"]["without_regressors"], pd.Timestamp(config["recent_from"])
    )
    results["regressor_effect"] = helped.round(4).to_dict(orient="records")
    results.update(facts)
    store = ObservationStore(encounters_home())
    results["provenance"] = provenance(load_catalog(), store.fingerprint())
    (HERE / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = [
        "# Accuracy benchmark results",
        "",
        f"Generated by `python -m experiments.accuracy.run`; protocol in `config.yaml`. "
        f"{len(config['series'])} series, origins {config['first_cutoff']}.."
        f"{config['last_cutoff']} every {config['step_months']} months, h={config['h']}.",
        "",
        "## All origins (same series and origins for every model)",
        "",
        markdown(tables["all"], level),
        f"## Recent regime (origins from {config['recent_from']})",
        "",
        markdown(tables["recent"], level),
        "## The project's candidates (with and without intervention regressors)",
        "",
        markdown(tables["project_candidates"], level),
        *slice_text(found, config["slices_from"], level),
        "## Exceedance probabilities",
        "",
        f"P(a month's count is above T), T the origin month's count times "
        f"{', '.join(f'{m:g}' for m in exceedance.MULTIPLES)}, from each model's interval "
        "bounds as the service derives it for a family without sample paths (a lognormal "
        "through neighbouring bounds). Brier score over every (series, origin, month, "
        "threshold), lower is better (0.25: a constant 50 %); `mean_p` beside the `observed` "
        "frequency; `brier_x<m>`: per threshold.",
        "",
        table_text(brier.reset_index()),
        "The project's probabilities, binned: how often what it gave a probability in the bin "
        "happened.",
        "",
        table_text(reliable.reset_index()),
        "## Where the intervention regressors help",
        "",
        "MAE with the regressors over MAE without them, geometric mean over (series, origin) "
        "pairs; below 1 they helped. `series_helped`: series whose own ratio is below 1.",
        "",
        table_text(helped),
    ]
    (HERE / "results.md").write_text("\n".join(text))
    log.info("wrote results.md")


if __name__ == "__main__":
    main()
