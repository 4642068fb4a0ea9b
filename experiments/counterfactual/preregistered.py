"""Counterfactual validity on a pre-registered sample: onsets drawn from the calendar, not the
catalog, and the controls method beside the project's others and the CausalImpact port.

    python -m experiments.counterfactual.preregistered [--config ...config-preregistered.yaml]
                                                       [--workers 2] [--onsets N]
                                                       [--catalog-at REVISION]

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

Variants, added after the first run of the 720 and leaving them as drawn:

- ``placebo: true``: every onset once more with nothing injected (``placebo``), every method;
- ``contaminate: true``: ``controls_contaminated`` / ``causalimpact_controls_contaminated``, the
  same donors with the best-ranked one the fit kept given the injection too;
- ``--catalog-at REVISION``: everything under the default catalog as committed at REVISION
  (``fff1401``: before the study catalogued events where its injections had landed).

``--onsets N`` runs a random subset of N (series, onset) pairs, all runs of each, drawn with the
config's ``subset_seed``; without it every onset runs. Writes ``results-preregistered.json`` /
``.md`` (``-subsetN`` added for a subset, ``-catalog-REV`` for ``--catalog-at REV``); each run
is cached under ``.cache/`` so that a rerun, or the full run after a subset, computes only what
is missing.
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
    multiplier,
    study_catalog,
    study_provenance,
    summary,
)
from forecasting.counterfactual import CONTROLS, CounterfactualEngine, panel_candidates
from forecasting.counterfactual.donors import ControlQuestion
from forecasting.data import ObservationStore
from forecasting.frame import EFFECT, control_column, hi_col, lo_col, series_history
from forecasting.home import encounters_home
from forecasting.interventions import Scenario, design_matrix
from forecasting.interventions.scope import parse_series_key
from forecasting.models import make_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
log = logging.getLogger("counterfactual-preregistered")

CONTAMINATED = "controls_contaminated"
METHODS = (
    "regressor",
    "pre_period",
    "controls",
    "causalimpact_ll",
    "causalimpact_controls",
    CONTAMINATED,
    "causalimpact_controls_contaminated",
)
#: The placebo: every onset of the sample with nothing injected (``placebo`` in the config).
PLACEBO = {"name": "placebo", "shape": "step", "effect_pct": 0}
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
    catalog = study_catalog(config)
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
                "count": float(window[window.index >= onset].sum()),
            }
            todo = injections(key, onset, window, config, "prereg-")
            if config.get("placebo"):
                todo += injections(key, onset, window, {"injections": [PLACEBO]}, "prereg-")
            out += [(task, facts) for task in todo]
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
        catalog = study_catalog(config, path)
    X = design_matrix(catalog, task.key, y.index[0], y.index[-1])
    model = make_model(config["model"]["name"], **config["model"]["params"]).fit(y, X)

    def estimate(name: str, pool: dict[str, pd.Series], named: list[str] | None):
        engine = CounterfactualEngine(
            model, y, X, catalog, task.key, config["n_paths"], config["seed"], 1, candidates=pool
        )
        result = engine.run(remove, onset, end, CONTROLS, [level], named)
        row = {
            "method": name,
            "estimate": result.totals[EFFECT],
            "lo": result.totals[lo_col(level, EFFECT)],
            "hi": result.totals[hi_col(level, EFFECT)],
            "dropped": False,
            "answered": name if result.method == CONTROLS else result.method,
            "controls": keys,
        }
        return row, engine

    pre = y.loc[y.index < onset]
    keys, _ = ControlQuestion(catalog, task.key, remove, candidates(), pre, end).choose()
    clean, engine = estimate("controls", candidates(), None)
    rows = [clean]
    with_causalimpact = "causalimpact_controls" in config["methods"] and keys
    if with_causalimpact:
        rows.append(_causalimpact_with_controls(y, onset, keys, level, candidates()))
    if not (config.get("contaminate") and keys and task.effect_pct):
        return rows
    # The same donors with the best-ranked one the fit kept hit by the same injection: what a
    # wrong pool costs (a donor the fit dropped would cost nothing).
    fitted = engine.controls_engine(onset, tuple(keys), end).reg.columns
    kept = [k for k in keys if control_column(k) in fitted]
    if kept:
        pool = contaminated(candidates(), kept[0], task, onset, config["post_months"])
        row, _ = estimate(CONTAMINATED, pool, keys)
        rows.append({**row, "contaminated": kept[0]})
        if with_causalimpact:
            rows.append(_causalimpact_with_controls(y, onset, keys, level, pool, "_contaminated"))
    return rows


def contaminated(
    pool: dict[str, pd.Series], key: str, task: Task, onset: pd.Timestamp, months: int
) -> dict[str, pd.Series]:
    """``pool`` with ``task``'s injection applied to ``key`` too, over the same months."""
    counts = pool[key].copy()
    post = (counts.index >= onset) & (counts.index < onset + pd.DateOffset(months=months))
    counts[post] = np.round(counts[post] * multiplier(task.shape, task.effect_pct, post.sum()))
    return {**pool, key: counts}


def _causalimpact_with_controls(
    y: pd.Series,
    onset: pd.Timestamp,
    keys: list[str],
    level: int,
    pool: dict[str, pd.Series],
    suffix: str = "",
) -> dict:
    post = y.index >= onset
    exog = np.column_stack([np.log1p(pool[k].reindex(y.index)) for k in keys])
    # Standardised on the pre-period, as the port standardises the response.
    exog = (exog - exog[~post].mean(axis=0)) / exog[~post].std(axis=0)
    name = "causalimpact_controls"
    row = _causalimpact_estimates(y, post, level, [name], {name: {"level": "llevel"}}, exog)[0]
    return {**row, "method": name + suffix}


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


def placebo_errors(records: list[dict]) -> pd.DataFrame:
    """One row per placebo estimate: the estimated effect and the interval's width as shares of
    the window's 12-month count (the true effect is zero), and whether it excludes zero."""
    rows = []
    for rec in records:
        if rec["count"] <= 0:
            continue
        for est in rec["estimates"]:
            if "error" in est:
                continue
            rows.append(
                {
                    "method": est["method"],
                    "onset": (rec["key"], rec["onset"]),
                    "share": est["estimate"] / rec["count"],
                    "excludes_zero": est["lo"] > 0 or est["hi"] < 0,
                    "width": (est["hi"] - est["lo"]) / rec["count"],
                    "fallback": est.get("answered", est["method"]) != est["method"],
                }
            )
    return pd.DataFrame(rows)


def placebo_table(data: pd.DataFrame) -> pd.DataFrame:
    """Per method: the estimates' bias and RMSE (shares of the count), the false detections
    with a 95 % interval from resampling the onsets, the median width."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    parts = []
    for method in [m for m in METHODS if m in set(data["method"])]:
        own = data[data["method"] == method]
        hits = own["excludes_zero"].to_numpy(dtype=float)
        draws = [hits[rng.integers(len(hits), size=len(hits))].mean() for _ in range(2000)]
        parts.append(
            {
                "method": method,
                "n": len(own),
                "bias": own["share"].mean(),
                "median": own["share"].median(),
                "rmse": float(np.sqrt((own["share"] ** 2).mean())),
                "false_detections": hits.mean(),
                "lo": float(np.quantile(draws, 0.025)),
                "hi": float(np.quantile(draws, 0.975)),
                "median_width": own["width"].median(),
                "fallback": own["fallback"].mean(),
            }
        )
    return pd.DataFrame(parts)


def placebo_lines(placebos: pd.DataFrame) -> list[str]:
    lines = [
        f"## Placebos ({placebos['n'].max()} onsets, nothing injected)",
        "",
        "The same onsets with nothing injected: an injected event registered at the onset as "
        "for the injections, its effect estimated by every method. The true effect is zero; "
        "the estimate and the interval's width are shares of the window's observed 12-month "
        "count. `false detections`: the 95 % interval excludes zero (5 % for a calibrated "
        "method; the target is 3–7 %), with a 95 % interval from resampling the onsets.",
        "",
        "| method | n | bias | median | RMSE | false detections | median width | fell back |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.method} | {r.n} | {r.bias:+.1%} | {r.median:+.1%} | {r.rmse:.1%} | "
        f"{r.false_detections:.1%} ({r.lo:.1%}–{r.hi:.1%}) | {r.median_width:.2f} | "
        f"{r.fallback:.1%} |"
        for r in placebos.itertuples()
    ]
    return [*lines, ""]


def write_results(
    config: dict, records: list[dict], planned: int, subset: int | None, seconds: float
) -> None:
    placebo = [r for r in records if r["injection"] == PLACEBO["name"]]
    injected = [r for r in records if r["injection"] != PLACEBO["name"]]
    # A window without encounters after the onset has an injected effect of zero, of which an
    # error cannot be a share: such injections are counted and left out of the scores.
    empty = sum(1 for r in injected if r["truth"] == 0)
    data = errors([r for r in injected if r["truth"] != 0], ("eligible", "near_event", "level"))
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
    placebos = placebo_table(placebo_errors(placebo)) if placebo else None
    intervals = bootstrap(data)
    suffix = (f"-subset{subset}" if subset else "") + config["name"]
    failed = sum(1 for r in records for e in r["estimates"] if "error" in e)
    (HERE / f"results-preregistered{suffix}.json").write_text(
        json.dumps(
            {
                "provenance": study_provenance(),
                "experiment": config["experiment"],
                "config": {k: v for k, v in config.items() if k != "series"},
                "series": config["series"],
                "planned_injections": planned,
                "injections": len(injected),
                "placebos": len(placebo),
                "onsets": len({(r["key"], r["onset"]) for r in records}),
                "subset_onsets": subset,
                "failed_estimates": failed,
                "without_encounters": empty,
                "seconds": seconds,
                "tables": {name: t.to_dict(orient="records") for name, t in tables.items()},
                "placebo_table": None if placebos is None else placebos.to_dict(orient="records"),
                "bootstrap_95": intervals,
                "records": records,
            },
            indent=1,
        )
    )
    lines = _header(config, injected, planned, subset, seconds, failed, empty)
    for name, t in tables.items():
        count = len(subsets[name][subsets[name]["method"] == "regressor"])
        lines += [f"## {name} ({count} injections)", "", *HEADER, *_rows(t), ""]
    if placebos is not None:
        lines += placebo_lines(placebos)
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


def _header(
    config: dict,
    injected: list[dict],
    planned: int,
    subset: int | None,
    seconds: float,
    failed: int,
    empty: int,
) -> list[str]:
    command = "python -m experiments.counterfactual.preregistered" + (
        f" --onsets {subset}" if subset else ""
    )
    catalog = "catalog as shipped"
    if config.get("catalog_at"):
        command += f" --catalog-at {config['catalog_at']}"
        catalog = f"the default catalog as committed at {config['catalog_at']}"
    onsets = len({(r["key"], r["onset"]) for r in injected})
    controls = [e for r in injected for e in r["estimates"] if e["method"] == "controls"]
    n_controls = [len(e["controls"]) for e in controls if e.get("controls")]
    return [
        "# Counterfactual validity on the pre-registered sample: results",
        "",
        f"{len(injected)} injections ({onsets} onsets"
        + (f", a random subset drawn with seed {config['subset_seed']}" if subset else "")
        + f"; {planned} runs planned, placebos included) into "
        f"{len({r['key'] for r in injected})} series; onsets from "
        f"{config['first_onset']} to {config['last_onset']}, drawn without the catalog; "
        f"{catalog}; {config['level']} % intervals; written by `{command}`; the runs took "
        f"{sum(r['seconds'] for r in injected) / 60:.0f} minutes of compute (injections), this "
        f"run {seconds / 60:.0f} minutes on {config['workers']} workers. Failed estimates: "
        f"{failed}. Left out of the scores: {empty} injections into windows without encounters "
        "in the 12 months from the onset (the injected effect is zero, and no error is a share "
        "of it).",
        "",
        "Errors are of the cumulative 12-month effect as a share of the injected one; "
        "`excludes zero`: the interval lies on one side of zero (detection); `fell back`: the "
        "controls method found no qualifying control and answered with regressor. "
        f"The controls method used {np.mean(n_controls):.1f} controls on average "
        f"(fell back in {sum(not e.get('controls') for e in controls)} of {len(controls)}). "
        f"`{CONTAMINATED}`: the same donors as `controls` with the best-ranked one its fit kept "
        "given the same injection as the treated series (an action that touched a donor too); "
        "`causalimpact_controls_contaminated` the same for the port. Both run only where "
        "`controls` found donors and its fit kept one.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=HERE / "config-preregistered.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--onsets", type=int, default=None, help="a random subset of onsets")
    parser.add_argument(
        "--catalog-at",
        metavar="REVISION",
        help="run under the default catalog as committed at REVISION (fff1401: the catalog "
        "before the validity study added events where its injections had landed)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config = load_config(args.config)
    config["workers"] = args.workers
    if args.catalog_at:
        config["catalog_at"] = args.catalog_at
        config["name"] = f"-catalog-{args.catalog_at}"
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
