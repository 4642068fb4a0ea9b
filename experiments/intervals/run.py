"""Interval calibration: which calibration of the project's intervals scores best on a proper score?

    python -m experiments.intervals.run [--config experiments/intervals/config.yaml]

Computes the point forecasts once (the project's ``naive`` candidate, the accuracy benchmark's
pooled choice at every evaluated origin, backtested on the benchmark's 3-month grid from the
earliest origin with 36 months of training, 36 months ahead; a second per series), then
calibrates them many ways on the nested protocol (each origin only with the errors observed by
its cutoff):

- today's: each series' own absolute log errors from origins of the last 36 months
  (:func:`forecasting.calibration.rolling_calibrate`), steps beyond 12 grown by ``sqrt(h)``;
- pooled: log errors scaled by each series' recent volatility and pooled over the series
  (:class:`forecasting.pooled_calibration.PooledCalibrator`), over a grid of volatility months,
  window and recency half-life;
- the best pooled variant with adaptive conformal inference on top.

Constants are chosen on the tuning origins (before the benchmark's window) by the geometric mean
over (series, origin) pairs of the scaled interval score (MSIS) at both levels, among variants
whose coverage is in band. Every variant is then scored on the benchmark's 483 pairs beside the
peers' rows of ``experiments/accuracy/forecasts.csv.gz``: coverage and the interval score relative
to seasonal naive's (geometric mean over pairs), all origins and the recent regime, and on steps
13-36. Writes ``results.md`` and ``results.json`` beside this file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from experiments import protocol_args
from experiments.accuracy.run import (
    PROJECT,
    common_pairs,
    load_config,
    load_panel,
    score,
    summarise,
    table_text,
)
from experiments.intervals.alternatives import signed_pooled, statsforecast_conformal
from forecasting.backtest import backtest, observed_by, score_terms, seasonal_scales
from forecasting.calibration import Calibrator
from forecasting.data import ObservationStore
from forecasting.errors import DataError, EncountersWarning
from forecasting.frame import (
    CUTOFF,
    DS,
    STEP,
    UNIQUE_ID,
    Y,
    forecast_columns,
    hi_col,
    lo_col,
    series_history,
)
from forecasting.home import encounters_home
from forecasting.metrics import geometric_mean
from forecasting.models import make_model
from forecasting.pooled_calibration import PooledCalibrator, rolling_calibrate_pooled

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
log = logging.getLogger("intervals")
#: The months ahead the accuracy benchmark scores; the rest are reported apart.
BENCH_H = 12
#: The grid's first origin: aligned with the benchmark's 3-month grid (2018-11 - 16 years).
GRID_START = "2002-11"
MIN_TRAIN_MONTHS = 36
TODAY = "today's method: own errors, 36-month window (bands made well-formed)"
SIGNED = "signed quantiles per step (the chosen pooled scaling)"
STATSFORECAST = "statsforecast Naive (log1p) + ConformalIntervals"


def backtests(config: dict, acc: dict, panel: pd.DataFrame):
    """The candidate's backtest and history per series, cached under ``.cache/`` by the data
    and the protocol (the point forecasts are computed once; the calibrations are many)."""
    digest = hashlib.sha256(
        json.dumps([config["candidate"], config["h"], acc["series"]]).encode()
        + ObservationStore(encounters_home()).fingerprint().encode()
    ).hexdigest()[:12]
    path = HERE / ".cache" / f"backtests-{digest}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    found = _backtests(config, acc, panel)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(pickle.dumps(found))
    return found


def _backtests(config: dict, acc: dict, panel: pd.DataFrame):
    grid = pd.date_range(GRID_START, acc["last_cutoff"], freq=f"{acc['step_months']}MS")
    frames, histories = {}, {}
    for key in acc["series"]:
        y = series_history(panel, key)
        first = y.index[0] + pd.DateOffset(months=MIN_TRAIN_MONTHS - 1)
        origins = [c for c in grid if c >= first and c in y.index]
        frames[key] = backtest(
            lambda: make_model(config["candidate"]), y, None, origins, config["h"], acc["level"]
        )
        histories[key] = y
    return frames, histories


def today(frames: dict, level: list[int], window: int) -> dict[str, pd.DataFrame]:
    """Today's calibration: each series' own steps 1-12 errors from origins of the last
    ``window`` months; steps beyond 12 from step 12's half-width grown by ``sqrt(h)``."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EncountersWarning)
        for key, frame in frames.items():
            short = frame[frame[STEP] <= BENCH_H]
            parts = []
            for cutoff, rows in frame.groupby(CUTOFF):
                try:
                    fitted = Calibrator(level).fit(observed_by(short, cutoff, window))
                except DataError:
                    continue
                parts.append(fitted.transform(rows))
            if parts:
                out[key] = pd.concat(parts, ignore_index=True)
    return out


def pair_scores(frames: dict, histories: dict, level: list[int], cutoffs, steps) -> pd.DataFrame:
    """Per (series, origin) in ``cutoffs``, the mean over the months at ``steps`` of the
    backtest's score terms (coverage, interval score, MSIS, WIS)."""
    parts = []
    for key, frame in frames.items():
        rows = frame[frame[CUTOFF].isin(cutoffs) & frame[STEP].isin(steps)].dropna(subset=[Y])
        if rows.empty:
            continue
        rows = rows.join(seasonal_scales(rows[CUTOFF], histories[key]), on=CUTOFF)
        terms = score_terms(rows, level).assign(**{UNIQUE_ID: key, CUTOFF: rows[CUTOFF]})
        parts.append(terms.groupby([UNIQUE_ID, CUTOFF]).mean())
    return pd.concat(parts)


def tuning_summary(pairs: pd.DataFrame, level: list[int]) -> dict[str, float]:
    out = {"pairs": len(pairs)}
    for lv in level:
        out[f"coverage_{lv}"] = float(pairs[f"coverage_{lv}"].mean())
        msis = pairs[f"msis_{lv}"]
        out[f"msis_{lv}"] = geometric_mean(msis[np.isfinite(msis) & (msis > 0)].to_numpy())
    out["score"] = float(np.exp(np.mean([np.log(out[f"msis_{lv}"]) for lv in level])))
    return out


def in_band(row: dict, band: dict) -> bool:
    return all(lo <= row[f"coverage_{lv}"] <= hi for lv, (lo, hi) in band.items())


def malformed(frames: dict, level: list[int], cutoffs) -> dict[str, float]:
    """Shares of (series, origin) forecasts whose bands shrink with the horizon somewhere, or
    whose 80 % band touches the 95 % one at some step (a bound shared above zero)."""
    narrow, wide = min(level), max(level)
    shrink = touch = n = 0
    for frame in frames.values():
        for _, rows in frame[frame[CUTOFF].isin(cutoffs)].groupby(CUTOFF):
            rows = rows.sort_values(STEP)
            width = np.log1p(rows[hi_col(wide)]) - np.log1p(rows[lo_col(wide)])
            shrink += bool((np.diff(width.to_numpy()) < -1e-9).any())
            shared = (rows[hi_col(narrow)] >= rows[hi_col(wide)]) | (
                (rows[lo_col(narrow)] <= rows[lo_col(wide)]) & (rows[lo_col(wide)] > 0)
            )
            touch += bool(shared.any())
            n += 1
    return {"shrinking": shrink / n, "touching": touch / n}


def _since(start: float) -> float:
    return time.perf_counter() - start


def label(params: dict) -> str:
    half, window = params["half_life_months"], params["window_months"]
    power = params.get("volatility_power", 1.0)
    parts = [
        f"pooled: {params.get('volatility_statistic', 'mean')} volatility "
        f"{params['volatility_months']} m" + (f" ^ {power}" if power != 1 else ""),
        f"window {window} m" if window else "all errors",
        f"half-life {half} m" if half else "equal weights",
    ]
    if params.get("aci_gamma"):
        parts.append(f"ACI {params['aci_gamma']}")
    return ", ".join(parts)


def pooled_calibrator(level: list[int], params: dict) -> PooledCalibrator:
    return PooledCalibrator(
        level,
        params["volatility_months"],
        params["window_months"],
        params["half_life_months"],
        params.get("volatility_power", 1.0),
        params.get("volatility_statistic", "mean"),
    )


def pooled(frames, histories, level, params) -> dict[str, pd.DataFrame]:
    calibrator = pooled_calibrator(level, params)
    return rolling_calibrate_pooled(frames, histories, calibrator, params.get("aci_gamma"))


def evaluation_rows(calibrated: dict, model: str, cutoffs) -> pd.DataFrame:
    """Calibrated rows of the benchmark's origins and months, in its forecasts' layout."""
    rows = []
    for key, frame in calibrated.items():
        part = frame[frame[CUTOFF].isin(cutoffs) & (frame[STEP] <= BENCH_H)]
        rows.append(part.assign(**{UNIQUE_ID: key, "model": model}))
    return pd.concat(rows, ignore_index=True).drop(columns=[STEP])


SHOWN = ["pairs", "coverage_80", "coverage_95", "rel_is_80", "rel_is_95", "rel_wis", "rel_mae"]


def main() -> None:
    args = protocol_args(__doc__, HERE, workers=False)
    config = yaml.safe_load(args.config.read_text())
    acc = load_config(ROOT / config["accuracy_config"])
    level = acc["level"]
    band = {int(k): v for k, v in config["coverage_band"].items()}
    panel = load_panel(acc["series"])
    start = time.perf_counter()
    frames, histories = backtests(config, acc, panel)
    log.info("backtests of %d series in %.0fs", len(frames), time.perf_counter() - start)

    first = pd.Timestamp(config["tune_first_cutoff"])
    last = pd.Timestamp(config["tune_last_cutoff"])
    grid_cutoffs = pd.date_range(GRID_START, acc["last_cutoff"], freq=f"{acc['step_months']}MS")
    tune = [c for c in grid_cutoffs if first <= c <= last]
    short = range(1, BENCH_H + 1)
    variants: dict[str, tuple[dict, dict]] = {}
    calibrated = today(frames, level, config["baseline_window_months"])
    variants[TODAY] = ({}, calibrated)
    tuning = {TODAY: tuning_summary(pair_scores(calibrated, histories, level, tune, short), level)}

    def run_variant(params: dict) -> str:
        start = time.perf_counter()
        found = pooled(frames, histories, level, params)
        variants[label(params)] = (params, found)
        tuning[label(params)] = tuning_summary(
            pair_scores(found, histories, level, tune, short), level
        )
        log.info("%s: %s (%.0fs)", label(params), tuning[label(params)], _since(start))
        return label(params)

    grid = config["grid"]
    for values in itertools.product(*grid.values()):
        run_variant(dict(zip(grid, values, strict=True)))
    eligible = [k for k in tuning if k != TODAY and in_band(tuning[k], band)]
    best = min(eligible or [k for k in tuning if k != TODAY], key=lambda k: tuning[k]["score"])
    chosen = best
    for gamma in config["aci_gamma"]:
        name = run_variant({**variants[best][0], "aci_gamma": gamma})
        if in_band(tuning[name], band) and tuning[name]["score"] < tuning[chosen]["score"]:
            chosen = name

    # The alternatives (alternatives.py), scored beside; the served family stays the pooled one.
    def add(name: str, params: dict, found: dict) -> None:
        variants[name] = (params, found)
        tuning[name] = tuning_summary(pair_scores(found, histories, level, tune, short), level)
        log.info("%s: %s", name, tuning[name])

    base = {k: v for k, v in variants[chosen][0].items() if k != "aci_gamma"}
    calibrator = pooled_calibrator(level, base)
    add(SIGNED, base, signed_pooled(frames, histories, level, calibrator))
    wanted = sorted({*tune, *acc["cutoffs"]})
    for windows in config["statsforecast_n_windows"]:
        found = statsforecast_conformal(histories, wanted, level, windows)
        add(f"{STATSFORECAST}, n_windows {windows}", {"n_windows": windows}, found)

    # The benchmark's pairs: every variant beside the peers' rows, same pairs for everyone.
    peers = pd.read_csv(ROOT / "experiments/accuracy/forecasts.csv.gz", parse_dates=[CUTOFF, DS])
    peers = peers[~peers["model"].str.startswith(f"{PROJECT}:")]
    peers["model"] = peers["model"].replace({PROJECT: "project (committed run)"})
    ours = [evaluation_rows(found, name, acc["cutoffs"]) for name, (_, found) in variants.items()]
    forecasts = pd.concat([peers, *ours], ignore_index=True)
    forecasts = forecasts[[UNIQUE_ID, CUTOFF, DS, Y, "model", *forecast_columns(level)]]
    pairs = score(forecasts, panel, level)
    everyone = common_pairs(pairs, sorted(pairs["model"].unique()))
    recent = everyone[everyone[CUTOFF] >= pd.Timestamp(acc["recent_from"])]
    tables = {"all": summarise(everyone, level), "recent": summarise(recent, level)}

    long_steps = {}
    for name in (TODAY, chosen):
        found = variants[name][1]
        long_steps[name] = {
            f"{a}-{b}": tuning_summary(
                pair_scores(found, histories, level, acc["cutoffs"], range(a, b + 1)), level
            )
            for a, b in ((1, 12), (13, 24), (25, 36))
        }
    shape = {name: malformed(found, level, acc["cutoffs"]) for name, (_, found) in variants.items()}
    write(config, acc, tuning, chosen, tables, long_steps, shape, variants)


def _frame(rows: dict) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant").reset_index()


def write(config, acc, tuning, chosen, tables, long_steps, shape, variants) -> None:
    peer_rows = [m for m in tables["all"].index if m not in variants]
    order = [TODAY, chosen] + [m for m in variants if m not in (TODAY, chosen)]

    def bench_table(table: pd.DataFrame) -> str:
        shown = table.loc[[*order, *peer_rows], SHOWN].rename_axis("model").reset_index()
        shown["model"] = shown["model"].replace({chosen: f"**{chosen}** (chosen)"})
        return table_text(shown.astype({"pairs": int}))

    tune_table = _frame(tuning).sort_values("score")
    tune_table["in band"] = [
        in_band(r, {int(k): v for k, v in config["coverage_band"].items()})
        for r in tune_table.to_dict("records")
    ]
    long_table = (
        pd.concat(
            {name: _frame(rows) for name, rows in long_steps.items()}, names=["calibration", "i"]
        )
        .reset_index(level=0)
        .rename(columns={"variant": "steps"})
    )
    text = [
        "# Interval calibration results",
        "",
        "Generated by `python -m experiments.intervals.run`; protocol in `config.yaml` (the "
        f"accuracy benchmark's {len(acc['series'])} series, origins and levels). Point "
        f"forecasts: the project's `{config['candidate']}` candidate, the benchmark's pooled "
        "choice; the peers' rows are the committed `experiments/accuracy/forecasts.csv.gz`.",
        "",
        f"Chosen on the tuning origins {config['tune_first_cutoff']}..{config['tune_last_cutoff']}"
        f": **{chosen}**.",
        "",
        "## The benchmark's pairs, all origins",
        "",
        "`rel_is_<l>`: the interval score over seasonal naive's on the same (series, origin), "
        "geometric mean over the pairs; `rel_wis`: the same for the weighted interval score "
        "(median and both levels, a CRPS approximation).",
        "",
        bench_table(tables["all"]),
        f"## Recent regime (origins from {acc['recent_from']})",
        "",
        bench_table(tables["recent"]),
        "## Steps 13-36 (benchmark origins, months with an actual)",
        "",
        "Today's steps beyond 12 are step 12's half-width grown by `sqrt(h)`; the pooled "
        "calibration measures each step. `msis_<l>`: geometric mean over pairs.",
        "",
        table_text(long_table),
        "## Well-formed bands (benchmark origins)",
        "",
        "Share of (series, origin) forecasts whose 95 % band narrows from one month to the next "
        "somewhere, and whose 80 % band shares a bound with the 95 % one (above zero).",
        "",
        table_text(_frame(shape)),
        "## Tuning origins: the choice",
        "",
        "`score`: geometric mean of the two levels' MSIS (geometric mean over pairs); chosen: the "
        "lowest among variants with coverage in band.",
        "",
        table_text(tune_table),
    ]
    (HERE / "results.md").write_text("\n".join(text))
    results = {
        "chosen": chosen,
        "chosen_params": variants[chosen][0],
        "tuning": tuning,
        "benchmark": {k: t.round(4).to_dict(orient="index") for k, t in tables.items()},
        "long_steps": long_steps,
        "well_formed": shape,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    sys.stdout.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
