"""Counterfactual validity: recover effects injected into real series, against a CausalImpact port.

    python -m experiments.counterfactual.run [--config experiments/counterfactual/config.yaml]
                                             [--workers 2]

For each series of the accuracy panel and each onset month away from catalog events, every
configured effect is injected into the real counts; then each method estimates the cumulative
12-month effect (reference - counterfactual) with a 95 % interval:

- ``regressor``: the project's default method; the injected event is registered in a user
  catalog file with its shape (as an analyst would) and the default model is fitted on the window;
- ``regressor_wrong_shape``: the same with a step registered for the decaying pulse;
- ``pre_period``: the project's pre-period method on the same fit;
- ``causalimpact_ll`` / ``causalimpact_ll_seasonal``: ``causalimpact`` 0.2.6 through its
  ``ucm_model=`` entry point (its ``data=`` entry point fails on pandas 2.3), on the same windows,
  with the port's own local-level model and with a 12-month seasonal added.

Writes ``results.json`` and ``results.md`` beside this file; each injection's estimates are cached
under ``.cache/`` so that a rerun only computes what is missing.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from experiments import protocol_args, provenance
from forecasting.counterfactual import PRE_PERIOD, REGRESSOR, CounterfactualEngine
from forecasting.data import ObservationStore
from forecasting.frame import EFFECT, hi_col, lo_col, series_history
from forecasting.home import encounters_home
from forecasting.interventions import Catalog, Scenario, design_matrix, load_catalog
from forecasting.interventions.catalog import DEFAULT_CATALOG, _parse_file
from forecasting.models import make_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
log = logging.getLogger("counterfactual-validity")

METHODS = (
    "regressor",
    "regressor_wrong_shape",
    "pre_period",
    "causalimpact_ll",
    "causalimpact_ll_seasonal",
)
DEFAULT_METHOD = "regressor"
#: The issue's targets for the project's default method.
TARGETS = {
    "rmse": ("<=", 0.40),
    "abs_bias": ("<", 0.05),
    "coverage_low": (">=", 0.92),
    "coverage_high": ("<=", 0.98),
    "excludes_zero": (">=", 0.75),
}
#: Resamples of the onsets for the intervals of the target figures, and their seed.
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 7
INJECTED_ID = "injected_effect"
CAUSALIMPACT_MODELS = {
    "causalimpact_ll": {"level": "llevel"},
    "causalimpact_ll_seasonal": {"level": "llevel", "seasonal": 12},
}


@dataclass(frozen=True)
class Task:
    """One injection: a series, an onset month and a known effect."""

    id: str
    key: str
    onset: str
    injection: str
    shape: dict
    effect_pct: float
    y: list[float]
    start: str


def load_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    accuracy = yaml.safe_load((ROOT / config["series_from"]).read_text())
    config["series"] = accuracy["series"]
    config.setdefault("methods", list(METHODS))
    unknown = sorted(set(config["methods"]) - set(METHODS))
    if unknown or "regressor" not in config["methods"]:
        raise SystemExit(f"methods must include regressor and be among {METHODS}; got {unknown}")
    # Results of another protocol go beside this one's, named after its config file.
    config["name"] = "" if path.stem == "config" else f"-{path.stem.removeprefix('config-')}"
    config["path"] = str(path.resolve().relative_to(ROOT)) if path.is_absolute() else str(path)
    return config


def multiplier(shape: dict, effect_pct: float, months: int) -> np.ndarray:
    """The injected multiplicative effect in each month from the onset."""
    k = np.arange(months)
    profile = np.ones(months)
    if shape["type"] == "decay":
        profile = 0.5 ** (k / shape["half_life_months"])
    return 1 + effect_pct / 100 * profile


def eligible_onsets(y: pd.Series, marks: Iterable[pd.Timestamp], config: dict) -> list:
    pre, post, clear = config["pre_months"], config["post_months"], config["clear_months"]
    marks = sorted(set(marks))
    out = []
    for i in range(pre, len(y) - post + 1):
        onset = y.index[i]
        lo = onset - pd.DateOffset(months=clear)
        hi = onset + pd.DateOffset(months=post - 1)
        if any(lo <= m <= hi for m in marks):
            continue
        if y.iloc[i - 12 : i].mean() < config["min_level"]:
            continue
        out.append(onset)
    return out


def choose(onsets: list, key: str, config: dict) -> list:
    rng = np.random.default_rng([config["seed"], zlib.crc32(key.encode())])
    chosen: list = []
    for i in rng.permutation(len(onsets)):
        onset = onsets[i]
        gap = [abs((onset.year - c.year) * 12 + onset.month - c.month) for c in chosen]
        if all(g >= config["min_spacing_months"] for g in gap):
            chosen.append(onset)
        if len(chosen) == config["onsets_per_series"]:
            break
    return sorted(chosen)


def eligible(config: dict, catalog: Catalog) -> dict[str, tuple[pd.Series, list]]:
    """Per series of the study: its history and the onsets clear of ``catalog``'s events."""
    panel = ObservationStore(encounters_home()).panel()
    out = {}
    for key in config["series"]:
        y = series_history(panel, key)
        marks = [
            pd.Timestamp(d).to_period("M").to_timestamp()
            for e in catalog.in_scope(key)
            for d in (e.start, e.end)
            if d is not None
        ]
        out[key] = y, eligible_onsets(y, marks, config)
    return out


def tasks(config: dict, catalog: Catalog | None = None) -> tuple[list[Task], dict[str, str]]:
    """The study's injections, at onsets clear of ``catalog``'s events (the shipped one by
    default), and the series skipped for want of such an onset."""
    out, skipped = [], {}
    for key, (y, clear) in eligible(config, catalog or load_catalog()).items():
        onsets = choose(clear, key, config)
        if not onsets:
            skipped[key] = (
                f"no {config['pre_months'] + config['post_months']}-month window clear of "
                f"catalog events with at least {config['min_level']} encounters a month"
            )
            continue
        for onset in onsets:
            window = y.loc[
                onset - pd.DateOffset(months=config["pre_months"]) : onset
                + pd.DateOffset(months=config["post_months"] - 1)
            ]
            out += injections(key, onset, window, config)
    return out, skipped


def injections(
    key: str, onset: pd.Timestamp, window: pd.Series, config: dict, prefix: str = ""
) -> list[Task]:
    """One task per configured injection at ``onset`` into ``window`` (the series' months)."""
    out = []
    for inj in config["injections"]:
        shape = inj["shape"] if isinstance(inj["shape"], dict) else {"type": inj["shape"]}
        out.append(
            Task(
                id=f"{prefix}{key.replace('/', '_')}-{onset:%Y-%m}-{inj['name']}",
                key=key,
                onset=f"{onset:%Y-%m}",
                injection=inj["name"],
                shape=shape,
                effect_pct=float(inj["effect_pct"]),
                y=window.tolist(),
                start=f"{window.index[0]:%Y-%m}",
            )
        )
    return out


def _user_catalog(
    folder: Path, onset: str, shape: dict, sign: int, scope: str | dict = "all"
) -> Path:
    """A catalog file with the injected event (acting on ``scope``), as an analyst would add."""
    path = folder / f"injected-{shape['type']}.yaml"
    event = {
        "id": INJECTED_ID,
        "name": "Effect injected by the validity study",
        "start": f"{onset}-01",
        "actor": "other",
        "kind": "other",
        "scope": scope,
        "shape": shape,
        "expected_sign": sign,
        "source": "experiments/counterfactual",
    }
    path.write_text(yaml.safe_dump({"events": [event]}))
    return path


CATALOG_PATH = f"forecasting/interventions/{DEFAULT_CATALOG}"


@cache
def catalog_at(revision: str) -> Catalog:
    """The default catalog as committed at ``revision``."""
    text = subprocess.run(
        ["git", "show", f"{revision}:{CATALOG_PATH}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / DEFAULT_CATALOG
        path.write_text(text)
        events, groups = _parse_file(path, f"{CATALOG_PATH} at {revision}")
    return Catalog(events, groups, sources=[f"{CATALOG_PATH} at {revision}"])


def study_catalog(config: dict, user_file: Path | None = None) -> Catalog:
    """The catalog a study runs under: the shipped one, or the one committed at the config's
    ``catalog_at`` revision; with ``user_file``'s events (the injected one) added."""
    if not config.get("catalog_at"):
        return load_catalog(user_files=[user_file] if user_file else [])
    base = catalog_at(config["catalog_at"])
    if user_file is None:
        return base
    events, groups = _parse_file(user_file, str(user_file))
    return Catalog(
        [*base.events, *events], [*base.groups, *groups], [*base.sources, str(user_file)]
    )


def _project_estimates(task: Task, y: pd.Series, config: dict) -> list[dict]:
    onset = pd.Timestamp(task.onset)
    end = onset + pd.DateOffset(months=config["post_months"] - 1)
    remove = Scenario.from_data({"remove": [{"event": INJECTED_ID}]})
    level = config["level"]
    methods = config["methods"]
    shapes = [("regressor", task.shape)]
    if task.shape["type"] != "step" and "regressor_wrong_shape" in methods:
        shapes.append(("regressor_wrong_shape", {"type": "step"}))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for method, shape in shapes:
            path = _user_catalog(Path(folder), task.onset, shape, int(np.sign(task.effect_pct)))
            catalog = study_catalog(config, path)
            X = design_matrix(catalog, task.key, y.index[0], y.index[-1])
            model = make_model(config["model"]["name"], **config["model"]["params"])
            model.fit(y, X)
            engine = CounterfactualEngine(
                model, y, X, catalog, task.key, config["n_paths"], config["seed"], horizon=1
            )
            runs = [(method, REGRESSOR)]
            if method == "regressor" and "pre_period" in methods:
                runs.append(("pre_period", PRE_PERIOD))
            for name, how in runs:
                totals = engine.run(remove, onset, end, how, [level]).totals
                rows.append(
                    {
                        "method": name,
                        "estimate": totals["effect"],
                        "lo": totals[lo_col(level, EFFECT)],
                        "hi": totals[hi_col(level, EFFECT)],
                        "dropped": INJECTED_ID in model.dropped_regressors_,
                    }
                )
    return rows


def _causalimpact_estimates(
    y: pd.Series,
    post: np.ndarray,
    level: int,
    methods: list[str],
    models: dict[str, dict] = CAUSALIMPACT_MODELS,
    exog: np.ndarray | None = None,
) -> list[dict]:
    """The port's estimates with each of ``models`` (``UnobservedComponents`` arguments) named
    in ``methods``; ``exog``: control regressors, one column each over ``y``'s months."""
    from causalimpact import CausalImpact
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    pre = y[~post]
    mu, sd = pre.mean(), pre.std()
    # The port standardises the data it models itself (standardize_data=True); through
    # ucm_model= it does not, so the counts are standardised here the same way.
    z = (y - mu) / sd
    endog = z.to_numpy().copy()
    endog[post] = np.nan
    rows = []
    for name, spec in models.items():
        if name not in methods:
            continue
        impact = CausalImpact(
            ucm_model=UnobservedComponents(endog, **spec, exog=exog),
            post_period_response=z[post].to_numpy(),
            alpha=1 - level / 100,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            impact.run()
        last = impact.inferences.iloc[-1]
        # Its cum_effect_lower is the cumulative of y - (lower prediction bound): the upper end.
        bounds = sorted([last["cum_effect_lower"] * sd, last["cum_effect_upper"] * sd])
        rows.append(
            {
                "method": name,
                "estimate": float(last["cum_effect"] * sd),
                "lo": float(bounds[0]),
                "hi": float(bounds[1]),
                "dropped": False,
            }
        )
    return rows


#: A method besides the project's and the port's: (task, injected series, config) -> estimates.
Estimator = Callable[[Task, pd.Series, dict], list[dict]]


def run_task(
    task: Task, config: dict, extra: Sequence[Estimator] = (), facts: dict | None = None
) -> dict:
    """Inject the effect and estimate it with every method; one record per (task, method).

    ``extra`` estimators run between the project's methods and the CausalImpact port; ``facts``
    are copied into the record.
    """
    started = time.perf_counter()
    index = pd.date_range(task.start, periods=len(task.y), freq="MS", name="ds")
    y = pd.Series(task.y, index=index, name=task.key)
    post = index >= pd.Timestamp(task.onset)
    injected = y.copy()
    injected[post] = np.round(y[post] * multiplier(task.shape, task.effect_pct, int(post.sum())))
    truth = float((injected - y)[post].sum())
    rows = []
    for estimate in (
        lambda: _project_estimates(task, injected, config),
        *(partial(method, task, injected, config) for method in extra),
        lambda: _causalimpact_estimates(injected, post, config["level"], config["methods"]),
    ):
        try:
            rows += estimate()
        except Exception as exc:  # noqa: BLE001 - one failed fit is a result, not the end
            log.warning("%s: %s", task.id, exc)
            rows.append({"method": "failed", "error": f"{type(exc).__name__}: {exc}"})
    info = {k: v for k, v in asdict(task).items() if k != "y"}
    return {
        **info,
        **(facts or {}),
        "truth": truth,
        "seconds": time.perf_counter() - started,
        "estimates": rows,
    }


def cached(
    task: Task, config: dict, extra: Sequence[Estimator] = (), facts: dict | None = None
) -> dict:
    """:func:`run_task`, read from ``.cache/`` when it ran before."""
    path = HERE / ".cache" / f"{task.id}{config['name']}.json"
    if path.exists():
        return json.loads(path.read_text())
    record = run_task(task, config, extra, facts)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def errors(records: list[dict], facts: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (injection, method) estimate: its error as a share of the truth, and whether
    its interval covers the truth and excludes zero; ``fallback`` where another method answered
    (``answered``), and the records' ``facts``."""
    rows = []
    for rec in records:
        for est in rec["estimates"]:
            if "error" in est:
                continue
            rel = est["estimate"] / rec["truth"] - 1
            rows.append(
                {
                    "method": est["method"],
                    "onset": (rec["key"], rec["onset"]),
                    "injection": rec["injection"],
                    "rel_error": rel,
                    "covered": est["lo"] <= rec["truth"] <= est["hi"],
                    "excludes_zero": est["lo"] > 0 or est["hi"] < 0,
                    "width": (est["hi"] - est["lo"]) / abs(rec["truth"]),
                    "dropped": est["dropped"],
                    "fallback": est.get("answered", est["method"]) != est["method"],
                    **{name: rec[name] for name in facts},
                }
            )
    return pd.DataFrame(rows)


def summary(group: pd.DataFrame) -> pd.Series:
    return pd.Series(
        {
            "n": len(group),
            "bias": group["rel_error"].mean(),
            "median_error": group["rel_error"].median(),
            "rmse": np.sqrt((group["rel_error"] ** 2).mean()),
            "coverage": group["covered"].mean(),
            "excludes_zero": group["excludes_zero"].mean(),
            "median_width": group["width"].median(),
            "dropped": group["dropped"].mean(),
        }
    )


def score(data: pd.DataFrame) -> pd.DataFrame:
    """Per method and injection (and over all injections): :func:`summary` of :func:`errors`."""
    by_injection = data.groupby(["method", "injection"]).apply(summary, include_groups=False)
    overall = data.groupby("method").apply(summary, include_groups=False)
    overall.index = pd.MultiIndex.from_product([overall.index, ["all"]])
    table = pd.concat([by_injection, overall]).sort_index()
    order = [m for m in METHODS if m in table.index.get_level_values(0)]
    return table.reindex(order, level=0)


def _target_values(row: pd.Series) -> dict[str, float]:
    return {
        "rmse": row["rmse"],
        "abs_bias": abs(row["bias"]),
        "coverage_low": row["coverage"],
        "coverage_high": row["coverage"],
        "excludes_zero": row["excludes_zero"],
    }


def bootstrap_intervals(data: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """95 % intervals of the default method's target figures, resampling onsets.

    The three injections at one onset share its real changes (their errors correlate), so the
    onsets, not the injections, are the independent draws.
    """
    own = data[data["method"] == DEFAULT_METHOD]
    groups = [g for _, g in own.groupby("onset")]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = []
    for _ in range(BOOTSTRAP_DRAWS):
        picked = rng.integers(len(groups), size=len(groups))
        draws.append(_target_values(summary(pd.concat([groups[i] for i in picked]))))
    frame = pd.DataFrame(draws)
    return {
        name: (float(frame[name].quantile(0.025)), float(frame[name].quantile(0.975)))
        for name in frame.columns
    }


def check_targets(table: pd.DataFrame, data: pd.DataFrame) -> dict[str, dict]:
    values = _target_values(table.loc[(DEFAULT_METHOD, "all")])
    intervals = bootstrap_intervals(data)
    out = {}
    for name, (op, bound) in TARGETS.items():
        value = float(values[name])
        met = value <= bound if op == "<=" else value < bound if op == "<" else value >= bound
        out[name] = {
            "value": value,
            "target": f"{op} {bound:g}",
            "met": bool(met),
            "bootstrap_95": list(intervals[name]),
        }
    return out


def study_provenance() -> dict:
    """The commit, the shipped catalog's fingerprint and the store's, for the results file."""
    return provenance(load_catalog(), ObservationStore(encounters_home()).fingerprint())


def write_results(
    config: dict, records: list[dict], skipped: dict[str, str], seconds: float
) -> None:
    data = errors(records)
    table = score(data)
    targets = check_targets(table, data)
    (HERE / f"results{config['name']}.json").write_text(
        json.dumps(
            {
                "provenance": study_provenance(),
                "experiment": config["experiment"],
                "config": {k: v for k, v in config.items() if k not in ("series", "name", "path")},
                "injections": len(records),
                "series": sorted({r["key"] for r in records}),
                "skipped_series": skipped,
                "seconds": seconds,
                "table": [
                    {"method": m, "injection": i, **{k: float(v) for k, v in row.items()}}
                    for (m, i), row in table.iterrows()
                ],
                "targets": targets,
                "records": records,
            },
            indent=1,
        )
    )
    command = f" --config {config['path']}" if config["name"] else ""
    lines = [
        "# Counterfactual validity: results",
        "",
        f"{len(records)} injections into {len({r['key'] for r in records})} series "
        f"({len({(r['key'], r['onset']) for r in records})} onset months), "
        f"{config['pre_months']} months before the onset and {config['post_months']} from it; "
        f"{config['level']} % intervals; model `{config['model']['name']}` with "
        f"{config['model']['params'] or 'default parameters'}; written by "
        f"`python -m experiments.counterfactual.run{command}`; the injections took "
        f"{sum(r['seconds'] for r in records) / 60:.0f} minutes of compute (one process each, "
        f"cached per injection); this run took {seconds:.0f} s.",
        "",
        "Errors are of the cumulative 12-month effect as a share of the injected one "
        "(`estimate / truth - 1`); `coverage`: the interval holds the injected effect; "
        "`excludes_zero`: the interval lies on one side of zero; `median_width`: interval width "
        "over the injected effect; `dropped`: share of fits whose model dropped the injected "
        "regressor (|t| < 1), which the engine then refits keeping it.",
        "",
        "| method | injection | n | bias | median error | RMSE | coverage | excludes zero | "
        "median width | dropped |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (method, injection), row in table.iterrows():
        lines.append(
            f"| {method} | {injection} | {int(row['n'])} | {row['bias']:+.1%} | "
            f"{row['median_error']:+.1%} | {row['rmse']:.1%} | {row['coverage']:.1%} | "
            f"{row['excludes_zero']:.1%} | {row['median_width']:.2f} | {row['dropped']:.1%} |"
        )
    lines += [
        "",
        f"Targets for the default method (`{DEFAULT_METHOD}`), with 95 % intervals from "
        f"{BOOTSTRAP_DRAWS} bootstrap resamples of the onsets (the sampling uncertainty of each "
        "figure; whether a target is met is judged on the figure itself):",
        "",
    ]
    for name, t in targets.items():
        lo, hi = t["bootstrap_95"]
        lines.append(
            f"- {name}: {t['value']:.3f} ({lo:.3f}–{hi:.3f}; target {t['target']}): "
            f"{'met' if t['met'] else 'NOT met'}"
        )
    if skipped:
        lines += ["", "Series without an eligible window:", ""]
        lines += [f"- {key}: {why}" for key, why in skipped.items()]
    (HERE / f"results{config['name']}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    args = protocol_args(__doc__, HERE)
    config = load_config(args.config)
    todo, skipped = tasks(config)
    log.info("%d injections; skipped series: %s", len(todo), sorted(skipped))
    started = time.perf_counter()
    records = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(cached, task, config): task for task in todo}
        for i, future in enumerate(as_completed(futures), start=1):
            record = future.result()
            records.append(record)
            log.info("%d/%d %s (%.0fs)", i, len(todo), record["id"], record["seconds"])
    records.sort(key=lambda r: r["id"])
    write_results(config, records, skipped, time.perf_counter() - started)


if __name__ == "__main__":
    main()
