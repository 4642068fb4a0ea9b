"""Counterfactual validity on a pre-registered sample: onsets drawn from the calendar, not the
catalog, and the controls method beside the project's others and the CausalImpact port.

    python -m experiments.counterfactual.preregistered [--config ...config-preregistered.yaml]
                                                       [--workers 2] [--onsets N]

The protocol is ``config-preregistered.yaml``: 12 onsets per series drawn from 2005-01..2019-12
on 20 panel series, each with the three injections of ``config.yaml`` (720 injections), the
catalog as shipped. Per injection:

- ``regressor`` and ``pre_period``: ``run._project_estimates``, the call ``run.py`` makes (the
  injected event registered with scope ``all``, the default SARIMAX fitted on the window);
- ``controls``: the injected event registered with the treated series' own scope (its sector,
  its citizenship; for the total, southwest Border Patrol), as an analyst who knows which series
  the action touched would; the default SARIMAX fitted on the window, then
  ``CounterfactualEngine.run(..., method="controls")`` with the store's encounter series (real,
  not injected) as candidates;
- ``causalimpact_ll``: ``run._causalimpact_estimates`` (``causalimpact`` 0.2.6, local level);
- ``causalimpact_controls``: the same port and model with the controls the ``controls`` method
  chose as regressors (``log1p`` counts standardised on the pre-period).

``--onsets N`` runs a random subset of N (series, onset) pairs, all three injections each, drawn
with the config's ``subset_seed``; without it every onset runs. Writes
``results-preregistered.json`` / ``.md`` (``-subsetN`` added for a subset); each injection is
cached under ``.cache/`` so that a rerun, or the full run after a subset, computes only what is
missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from experiments import LOG_FORMAT
from experiments.counterfactual.run import (
    INJECTED_ID,
    Task,
    _causalimpact_estimates,
    _user_catalog,
    cached,
    choose,
    eligible_onsets,
    errors,
    injections,
    study_provenance,
    summary,
)
from forecasting.counterfactual import CONTROLS, CounterfactualEngine, panel_candidates
from forecasting.counterfactual.donors import choose_controls
from forecasting.data import ObservationStore
from forecasting.frame import EFFECT, hi_col, lo_col, series_history
from forecasting.home import encounters_home
from forecasting.interventions import Scenario, design_matrix, load_catalog
from forecasting.interventions.scope import parse_series_key
from forecasting.models import make_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
log = logging.getLogger("counterfactual-preregistered")

METHODS = ("regressor", "pre_period", "controls", "causalimpact_ll", "causalimpact_controls")
SHAPES = ("step_minus_30", "step_plus_40", "pulse_minus_50", "all")
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 7
#: Series under this mean monthly count in the year before the onset are reported apart.
SMALL = 500


def load_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    accuracy = yaml.safe_load((ROOT / config["series_from"]).read_text())
    config["series"] = [k for k in accuracy["series"] if k not in config["drop_series"]]
    # Task ids carry the "prereg-" prefix, so run.py's cache names need no suffix.
    config["name"] = ""
    return config


@cache
def panel() -> pd.DataFrame:
    return ObservationStore(encounters_home()).panel()


@cache
def candidates() -> dict[str, pd.Series]:
    return panel_candidates(panel())


def tasks(config: dict) -> list[tuple[Task, dict]]:
    """Every injection of the sample with what the analysis needs besides the estimates."""
    catalog = load_catalog()
    rule = config["eligibility"]
    first, last = pd.Timestamp(config["first_onset"]), pd.Timestamp(config["last_onset"])
    out = []
    for key in config["series"]:
        y = series_history(panel(), key)
        months = [m for m in y.index if first <= m <= last]
        onsets = choose(months, key, config)
        marks = [
            pd.Timestamp(d).to_period("M").to_timestamp()
            for e in catalog.in_scope(key)
            for d in (e.start, e.end)
            if d is not None
        ]
        eligible = set(eligible_onsets(y, marks, rule))
        for onset in onsets:
            pre_start = max(y.index[0], onset - pd.DateOffset(months=config["pre_months"]))
            window = y.loc[pre_start : onset + pd.DateOffset(months=config["post_months"] - 1)]
            near = any(
                onset - pd.DateOffset(months=rule["clear_months"])
                <= m
                <= onset + pd.DateOffset(months=config["post_months"] - 1)
                for m in marks
            )
            facts = {
                "eligible": onset in eligible,
                "near_event": near,
                "level": float(y.loc[: onset - pd.DateOffset(months=1)].iloc[-12:].mean()),
                "pre_months": int((window.index < onset).sum()),
            }
            out += [(task, facts) for task in injections(key, onset, window, config, "prereg-")]
    return out


def own_scope(key: str) -> dict:
    """The scope of an event that acts on ``key`` and on nothing disjoint from it."""
    parsed = parse_series_key(key)
    for dim, scope_key in (("sector", "sectors"), ("citizenship", "citizenships")):
        if dim in parsed.dims:
            return {scope_key: [parsed.dims[dim]]}
    return {"regions": [parsed.region], "component": parsed.component}


def _controls_estimates(task: Task, y: pd.Series, config: dict) -> list[dict]:
    onset = pd.Timestamp(task.onset)
    end = onset + pd.DateOffset(months=config["post_months"] - 1)
    remove = Scenario.from_data({"remove": [{"event": INJECTED_ID}]})
    level = config["level"]
    with tempfile.TemporaryDirectory() as folder:
        sign = int(np.sign(task.effect_pct))
        path = _user_catalog(Path(folder), task.onset, task.shape, sign, own_scope(task.key))
        catalog = load_catalog(user_files=[path])
    X = design_matrix(catalog, task.key, y.index[0], y.index[-1])
    model = make_model(config["model"]["name"], **config["model"]["params"]).fit(y, X)
    engine = CounterfactualEngine(
        model,
        y,
        X,
        catalog,
        task.key,
        config["n_paths"],
        config["seed"],
        horizon=1,
        candidates=candidates(),
    )
    result = engine.run(remove, onset, end, CONTROLS, [level])
    keys, _ = choose_controls(catalog, task.key, remove, candidates(), y.loc[y.index < onset], end)
    rows = [
        {
            "method": "controls",
            "estimate": result.totals[EFFECT],
            "lo": result.totals[lo_col(level, EFFECT)],
            "hi": result.totals[hi_col(level, EFFECT)],
            "dropped": False,
            "answered": result.method,
            "controls": keys,
        }
    ]
    if "causalimpact_controls" in config["methods"] and keys:
        rows.append(_causalimpact_with_controls(y, onset, keys, level))
    return rows


def _causalimpact_with_controls(
    y: pd.Series, onset: pd.Timestamp, keys: list[str], level: int
) -> dict:
    post = y.index >= onset
    exog = np.column_stack([np.log1p(candidates()[k].reindex(y.index)) for k in keys])
    # Standardised on the pre-period, as the port standardises the response.
    exog = (exog - exog[~post].mean(axis=0)) / exog[~post].std(axis=0)
    name = "causalimpact_controls"
    return _causalimpact_estimates(y, post, level, [name], {name: {"level": "llevel"}}, exog)[0]


def table(data: pd.DataFrame) -> pd.DataFrame:
    """:func:`run.summary` per method and injection, and over every injection."""
    parts = []
    for method in [m for m in METHODS if m in set(data["method"])]:
        own = data[data["method"] == method]
        for shape in SHAPES:
            group = own if shape == "all" else own[own["injection"] == shape]
            if len(group):
                parts.append(
                    {
                        "method": method,
                        "injection": shape,
                        **summary(group).to_dict(),
                        "fallback": float(group["fallback"].mean()),
                    }
                )
    return pd.DataFrame(parts)


def bootstrap(data: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """95 % intervals of each method's RMSE, bias, coverage and detection over all injections,
    resampling onsets (the three injections at an onset share its real changes)."""
    out = {}
    for method in [m for m in METHODS if m in set(data["method"])]:
        own = data[data["method"] == method]
        groups = [g for _, g in own.groupby("onset")]
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        draws = []
        for _ in range(BOOTSTRAP_DRAWS):
            picked = pd.concat([groups[i] for i in rng.integers(len(groups), size=len(groups))])
            s = summary(picked)
            draws.append({k: s[k] for k in ("bias", "rmse", "coverage", "excludes_zero")})
        frame = pd.DataFrame(draws)
        out[method] = {
            k: [float(frame[k].quantile(0.025)), float(frame[k].quantile(0.975))]
            for k in frame.columns
        }
    return out


def _rows(frame: pd.DataFrame) -> list[str]:
    return [
        f"| {r.method} | {r.injection} | {int(r.n)} | {r.bias:+.1%} | {r.median_error:+.1%} | "
        f"{r.rmse:.1%} | {r.coverage:.1%} | {r.excludes_zero:.1%} | {r.median_width:.2f} | "
        f"{r.fallback:.1%} |"
        for r in frame.itertuples()
    ]


HEADER = [
    "| method | injection | n | bias | median error | RMSE | 95 % coverage | excludes zero | "
    "median width | fell back |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def write_results(
    config: dict, records: list[dict], planned: int, subset: int | None, seconds: float
) -> None:
    # A window without encounters after the onset has an injected effect of zero, of which an
    # error cannot be a share: such injections are counted and left out of the scores.
    empty = sum(1 for r in records if r["truth"] == 0)
    data = errors([r for r in records if r["truth"] != 0], ("eligible", "near_event", "level"))
    data["small"] = data["level"] < SMALL
    subsets = {
        "all": data,
        "eligible": data[data["eligible"]],
        "not near a catalog event": data[~data["near_event"]],
        "near a catalog event": data[data["near_event"]],
        f"under {SMALL} a month": data[data["small"]],
        f"at least {SMALL} a month": data[~data["small"]],
    }
    tables = {name: table(part) for name, part in subsets.items() if len(part)}
    intervals = bootstrap(data)
    suffix = f"-subset{subset}" if subset else ""
    failed = sum(1 for r in records for e in r["estimates"] if "error" in e)
    controls = [e for r in records for e in r["estimates"] if e["method"] == "controls"]
    n_controls = [len(e["controls"]) for e in controls if e.get("controls")]
    (HERE / f"results-preregistered{suffix}.json").write_text(
        json.dumps(
            {
                "provenance": study_provenance(),
                "experiment": config["experiment"],
                "config": {k: v for k, v in config.items() if k != "series"},
                "series": config["series"],
                "planned_injections": planned,
                "injections": len(records),
                "onsets": len({(r["key"], r["onset"]) for r in records}),
                "subset_onsets": subset,
                "failed_estimates": failed,
                "without_encounters": empty,
                "seconds": seconds,
                "tables": {name: t.to_dict(orient="records") for name, t in tables.items()},
                "bootstrap_95": intervals,
                "records": records,
            },
            indent=1,
        )
    )
    command = "python -m experiments.counterfactual.preregistered" + (
        f" --onsets {subset}" if subset else ""
    )
    onsets = len({(r["key"], r["onset"]) for r in records})
    lines = [
        "# Counterfactual validity on the pre-registered sample: results",
        "",
        f"{len(records)} injections of the {planned} planned ({onsets} onsets"
        + (f", a random subset drawn with seed {config['subset_seed']}" if subset else "")
        + f") into {len({r['key'] for r in records})} series; onsets from "
        f"{config['first_onset']} to {config['last_onset']}, drawn without the catalog; catalog "
        f"as shipped; {config['level']} % intervals; written by `{command}`; the injections "
        f"took {sum(r['seconds'] for r in records) / 60:.0f} minutes of compute, this run "
        f"{seconds / 60:.0f} minutes on {config['workers']} workers. Failed estimates: {failed}. "
        f"Left out of the scores: {empty} injections into windows without encounters in the 12 "
        "months from the onset (the injected effect is zero, and no error is a share of it).",
        "",
        "Errors are of the cumulative 12-month effect as a share of the injected one; "
        "`excludes zero`: the interval lies on one side of zero (detection); `fell back`: the "
        "controls method found no qualifying control and answered with regressor. "
        f"The controls method used {np.mean(n_controls):.1f} controls on average "
        f"(fell back in {sum(not e.get('controls') for e in controls)} of {len(controls)}).",
        "",
    ]
    for name, t in tables.items():
        count = len(subsets[name][subsets[name]["method"] == "regressor"])
        lines += [f"## {name} ({count} injections)", "", *HEADER, *_rows(t), ""]
    lines += [
        "## Sampling spread (all injections)",
        "",
        f"95 % intervals from {BOOTSTRAP_DRAWS} bootstrap resamples of the onsets:",
        "",
        "| method | bias | RMSE | coverage | excludes zero |",
        "| --- | --- | --- | --- | --- |",
    ]
    for method, iv in intervals.items():
        cells = [
            f"{iv[k][0]:+.1%} to {iv[k][1]:+.1%}"
            if k == "bias"
            else f"{iv[k][0]:.1%}–{iv[k][1]:.1%}"
            for k in ("bias", "rmse", "coverage", "excludes_zero")
        ]
        lines.append(f"| {method} | {' | '.join(cells)} |")
    (HERE / f"results-preregistered{suffix}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=HERE / "config-preregistered.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--onsets", type=int, default=None, help="a random subset of onsets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config = load_config(args.config)
    config["workers"] = args.workers
    todo = tasks(config)
    planned = len(todo)
    if args.onsets:
        pairs = sorted({(t.key, t.onset) for t, _ in todo})
        rng = np.random.default_rng(config["subset_seed"])
        keep = {pairs[i] for i in rng.permutation(len(pairs))[: args.onsets]}
        todo = [(t, f) for t, f in todo if (t.key, t.onset) in keep]
    log.info("%d of %d injections", len(todo), planned)
    started = time.perf_counter()
    records = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [
            pool.submit(cached, task, config, (_controls_estimates,), facts) for task, facts in todo
        ]
        for i, future in enumerate(as_completed(futures), start=1):
            record = future.result()
            records.append(record)
            log.info("%d/%d %s (%.0fs)", i, len(todo), record["id"], record["seconds"])
    records.sort(key=lambda r: r["id"])
    write_results(config, records, planned, args.onsets, time.perf_counter() - started)


if __name__ == "__main__":
    main()
