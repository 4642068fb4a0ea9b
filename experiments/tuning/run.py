"""Tuned constants re-derived on warm-up origins only: SARIMAX orders, the Ridge penalty, the
selection policy.

    python -m experiments.tuning.run [--config experiments/tuning/config.yaml] [--workers 1]

Backtests every variant of each constant as a candidate of its own at the warm-up origins (every
month they score is before the accuracy benchmark's first cutoff), picks each constant by the
geometric mean over (series, origin) of relMAE against seasonal naive, then judges the selection
policies with the chosen candidates, each choice and calibration nested (errors observed before
the origin only). Writes ``results.json`` and ``results.md`` beside this file; per-series
backtests are cached under ``.cache/`` so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import Ridge

from experiments import protocol_args, provenance
from experiments.accuracy import project
from forecasting.data import ObservationStore
from forecasting.data.keys import slug
from forecasting.frame import CUTOFF
from forecasting.home import encounters_home
from forecasting.interventions import load_catalog
from forecasting.metrics import geometric_mean
from forecasting.selection import rel_mae_by_origin
from pipelines.config import Experiment

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
log = logging.getLogger("tuning")
BENCH = project.BENCH


def load_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    panel = yaml.safe_load((path.parent / config["panel"]).read_text())
    config["series"] = panel["series"]
    config["panel_path"] = str(path.parent / config["panel"])
    config["origins"] = list(
        pd.date_range(
            config["first_cutoff"], config["last_cutoff"], freq=f"{config['step_months']}MS"
        )
    )
    evaluation_starts = pd.Timestamp(panel["first_cutoff"])
    last_month = config["origins"][-1] + pd.DateOffset(months=config["h"])
    if last_month > evaluation_starts:
        raise ValueError(
            f"the last warm-up origin's horizon ends {last_month:%Y-%m}, inside the evaluation "
            f"window from {evaluation_starts:%Y-%m}: end the warm-up origins earlier"
        )
    return config


def variant_specs(config: dict) -> list[tuple[str, str, dict]]:
    """(label, family, params) of every candidate: each constant's variants, then the others."""
    specs = [(name, name, {}) for name in config["others"]]
    for name, orders in config["sarimax_orders"].items():
        pairs = tuple((tuple(o), tuple(s)) for o, s in orders)
        specs.append((f"sarimax:{name}", "sarimax", {"orders": pairs}))
    for alpha in config["ridge_alpha"]:
        specs.append((f"sklearn:alpha={alpha:g}", "sklearn", {"estimator": Ridge(alpha=alpha)}))
    return specs


def _cache_key(config: dict, specs: list, origins: list, store: ObservationStore) -> str:
    """What a series' backtests depend on besides the code: candidates, origins, h, levels, data."""
    described = [[label, family, repr(params)] for label, family, params in specs]
    what = [described, [f"{o:%Y-%m}" for o in origins], config["h"], config["level"]]
    digest = hashlib.sha256(json.dumps(what).encode() + store.fingerprint().encode())
    return digest.hexdigest()[:12]


def backtests(
    config: dict, specs: list, origins: list, tag: str, workers: int
) -> dict[str, dict[str, pd.DataFrame]]:
    """Per series, each candidate of ``specs`` backtested at ``origins`` (cached per series;
    ``tag`` names the stage in the cache's file names)."""
    experiment = Experiment(
        name="tuning",
        mlflow_experiment="tuning",
        series=config["series"],
        models=[{"name": family} for family in dict.fromkeys(f for _, f, _ in specs)],
        backtest={"first_cutoff": config["first_cutoff"]},
    )
    store = ObservationStore(encounters_home())
    tasks = project.tasks_for(experiment, store, config["series"])
    CACHE.mkdir(exist_ok=True)
    key = _cache_key(config, specs, origins, store)

    def cached(task) -> Path:
        return CACHE / f"{tag}-{slug(task.key)}-{key}.pkl"

    backtests = project.cached_backtests(
        tasks, specs, origins, config["h"], config["level"], cached, workers
    )
    out = {}
    for task in tasks:
        results = backtests[task.key]
        failed = {k: v for k, v in results.items() if isinstance(v, str)}
        for label, error in failed.items():
            log.warning("%s %s failed: %s", task.key, label, error)
        out[task.key] = {k: v for k, v in results.items() if isinstance(v, pd.DataFrame)}
    return out


def skill(frames: dict[str, dict[str, pd.DataFrame]], label: str) -> tuple[float, int]:
    """Geometric mean over (series, origin) of relMAE against seasonal naive, and the pairs."""
    ratios = [
        rel_mae_by_origin(series[label], series[BENCH]).to_numpy()
        for series in frames.values()
        if label in series and BENCH in series
    ]
    ratios = np.concatenate(ratios)
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    return geometric_mean(ratios), len(ratios)


def choose_constants(frames) -> dict:
    """Each constant's variants side by side, and the best of each."""
    labels = sorted({label for series in frames.values() for label in series})
    table = {label: skill(frames, label) for label in labels}
    chosen = {
        family: min((lb for lb in labels if lb.startswith(family + ":")), key=lambda k: table[k][0])
        for family in ("sarimax", "sklearn")
    }
    return {"skill": table, "chosen": chosen}


def judge_policies(config: dict, frames, chosen: dict[str, str]) -> dict:
    """Each policy's nested forecasts at the policy origins, scored as the candidates are."""
    keep = set(config["others"]) | set(chosen.values())
    # A series with no seasonal naive backtest (too short at every warm-up origin) has no score.
    candidates = {
        key: {k: f for k, f in s.items() if k in keep} for key, s in frames.items() if BENCH in s
    }
    cutoffs = [o for o in config["origins"] if o >= pd.Timestamp(config["policy_from"])]
    out = {}
    for name, policy in config["policies"].items():
        pooled = None
        if policy["selection"] == "pooled":
            pooled = project.pooled_choices(candidates, cutoffs)
        ratios, picks = [], {}
        for key, series in candidates.items():
            evaluated = [c for c in cutoffs if (series[BENCH][CUTOFF] == c).any()]
            choice = project.nested_choices(series, evaluated, policy["top_k"], pooled)
            forecast = project.per_series_calibrated(
                series, choice, config["level"], config["calibration_window_months"]
            )
            bench = series[BENCH][series[BENCH][CUTOFF].isin(evaluated)]
            ratios.append(rel_mae_by_origin(forecast, bench).to_numpy())
            picks[key] = {f"{c:%Y-%m}": label for c, (label, _) in choice.items()}
        ratios = np.concatenate(ratios)
        ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
        out[name] = {"rel_mae": geometric_mean(ratios), "pairs": len(ratios), "choices": picks}
    return out


def markdown(config: dict, constants: dict, policies: dict) -> str:
    lines = [
        "# Constants re-derived on warm-up origins",
        "",
        f"Generated by `python -m experiments.tuning.run`: {len(config['series'])} series, origins "
        f"{config['first_cutoff']}..{config['last_cutoff']} every {config['step_months']} months, "
        f"h={config['h']}; every scored month is before the accuracy benchmark's first cutoff.",
        "relMAE: geometric mean over (series, origin) of MAE over seasonal naive's MAE.",
        "",
        "## Each variant as a candidate",
        "",
        "| candidate | relMAE | pairs |",
        "|---|---|---|",
    ]
    for label, (value, pairs) in sorted(constants["skill"].items(), key=lambda kv: kv[1][0]):
        mark = " (chosen)" if label in constants["chosen"].values() else ""
        lines.append(f"| {label}{mark} | {value:.3f} | {pairs} |")
    lines += [
        "",
        f"## Selection policies (origins from {config['policy_from']}, nested)",
        "",
        "| policy | relMAE | pairs |",
        "|---|---|---|",
    ]
    for name, row in sorted(policies.items(), key=lambda kv: kv[1]["rel_mae"]):
        lines.append(f"| {name} | {row['rel_mae']:.3f} | {row['pairs']} |")
    return "\n".join(lines) + "\n"


def what_moved(config: dict, chosen: dict[str, str], workers: int) -> tuple[str, dict]:
    """The changed constants' old and new variants on the accuracy benchmark's evaluation
    origins: the figures this study moves (read only after the choice is made)."""
    panel = yaml.safe_load((Path(config["panel_path"])).read_text())
    origins = list(
        pd.date_range(panel["first_cutoff"], panel["last_cutoff"], freq=f"{panel['step_months']}MS")
    )
    labels = {BENCH, *chosen.values(), *config["previous"].values()}
    specs = [s for s in variant_specs(config) if s[0] in labels]
    frames = backtests(config, specs, origins, "moved", workers)
    rows = {label: skill(frames, label) for label in sorted(labels)}
    lines = [
        "# What the re-derived constants move on the evaluation window",
        "",
        f"Generated by `python -m experiments.tuning.run`, after the choice: each changed "
        f"constant's previous and chosen variant as a candidate at the accuracy benchmark's "
        f"origins {panel['first_cutoff']}..{panel['last_cutoff']} (every {panel['step_months']} "
        f"months, h={config['h']}), relMAE as in `results.md`.",
        "",
        "| candidate | role | relMAE | pairs |",
        "|---|---|---|---|",
    ]
    for label, (value, pairs) in rows.items():
        role = (
            "benchmark" if label == BENCH else "chosen" if label in chosen.values() else "previous"
        )
        lines.append(f"| {label} | {role} | {value:.3f} | {pairs} |")
    return "\n".join(lines) + "\n", {k: {"rel_mae": v, "pairs": n} for k, (v, n) in rows.items()}


def main() -> None:
    args = protocol_args(__doc__, HERE)
    config = load_config(args.config)
    frames = backtests(config, variant_specs(config), config["origins"], "warmup", args.workers)
    constants = choose_constants(frames)
    policies = judge_policies(config, frames, constants["chosen"])
    best = min(policies, key=lambda k: policies[k]["rel_mae"])
    moved_md, moved = what_moved(config, constants["chosen"], args.workers)
    store = ObservationStore(encounters_home())
    results = {
        "provenance": provenance(load_catalog(), store.fingerprint()),
        "constants": {
            "skill": {k: {"rel_mae": v, "pairs": n} for k, (v, n) in constants["skill"].items()},
            "chosen": constants["chosen"],
        },
        "policies": policies,
        "chosen_policy": best,
        "moved": moved,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (HERE / "results.md").write_text(markdown(config, constants, policies))
    (HERE / "moved.md").write_text(moved_md)
    log.info(
        "wrote results.md and moved.md:\n%s\n%s", markdown(config, constants, policies), moved_md
    )
    log.info("chosen: %s, policy %s", constants["chosen"], best)


if __name__ == "__main__":
    main()
