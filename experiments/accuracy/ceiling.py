"""How far below the best peer can a point forecast get on the benchmark's pairs?

    python -m experiments.accuracy.ceiling

Reads ``forecasts.csv.gz`` (written by ``run.py``) and the panel, and writes ``ceiling.md`` and
``ceiling.json`` beside this file: relMAE on the same (series, origin) pairs as ``results.md``
for

- hindsight choices among the project's candidates (``project:<label>`` rows), made on the
  evaluation window itself, so no policy that looks only at the past can do better: the best
  candidate for all series, each series' best candidate, and each series' best equal-weight
  combination of up to ``MAX_COMBINED`` candidates;
- simple rules that are not candidates, each a plausible fix for what the last value misses:
  carrying the seasonal pattern (the last value moved by each calendar month's mean log change),
  smoothing the last months, following the latest trend (damped), and reverting to the last
  year's level.

The figures bound the issue's target (relMAE 10 % below the best peer's): a target no hindsight
choice reaches is out of reach of any honest choice among these candidates.
"""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pandas as pd

from experiments.accuracy.run import (
    BENCHMARK,
    HERE,
    PROJECT,
    load_config,
    load_panel,
    score,
    table_text,
)
from forecasting.frame import CUTOFF, DS, UNIQUE_ID, Y
from forecasting.metrics import geometric_mean

MAX_COMBINED = 4
#: Years of history whose calendar-month log changes give the seasonal drift.
DRIFT_YEARS = 10


def _rules(history: np.ndarray, months: np.ndarray, drift: pd.Series) -> dict[str, np.ndarray]:
    """Point forecasts of the simple rules for the future calendar ``months``."""
    logs = np.log1p(history)
    h = len(months)
    steps = np.arange(1, h + 1)
    seasonal = np.cumsum(drift.reindex(months).fillna(0).to_numpy())
    trend = (logs[-1] - logs[-4]) / 3
    level = logs[-12:].mean()
    return {
        "last value + seasonal drift": np.expm1(logs[-1] + seasonal),
        "last value + half the seasonal drift": np.expm1(logs[-1] + seasonal / 2),
        "mean of the last 2 months": np.full(h, history[-2:].mean()),
        "mean of the last 3 months": np.full(h, history[-3:].mean()),
        "last value + damped 3-month trend (0.3)": np.expm1(
            logs[-1] + trend * np.cumsum(0.3**steps)
        ),
        "reversion to the last 12 months (5 %/month)": np.expm1(
            level + (logs[-1] - level) * 0.95**steps
        ),
    }


def _drift(history: pd.Series) -> pd.Series:
    """Mean change of ``log1p`` counts into each calendar month over the last ``DRIFT_YEARS``."""
    changes = np.log1p(history).diff().dropna()
    changes = changes[changes.index > changes.index[-1] - pd.DateOffset(years=DRIFT_YEARS)]
    return changes.groupby(changes.index.month).mean()


def rule_errors(pairs: pd.DataFrame, panel: pd.DataFrame, h: int) -> pd.DataFrame:
    """MAE per (rule, series, cutoff) over the months the benchmark scored."""
    rows = []
    for (key, cutoff), actual in pairs.groupby([UNIQUE_ID, CUTOFF]):
        series = panel[panel[UNIQUE_ID] == key].set_index(DS)[Y].astype(float)
        history = series[series.index <= cutoff]
        forecasts = _rules(history.to_numpy(), actual[DS].dt.month.to_numpy()[:h], _drift(history))
        for rule, mean in forecasts.items():
            mae = np.abs(actual[Y].to_numpy() - mean).mean()
            rows.append((rule, key, cutoff, mae))
    return pd.DataFrame(rows, columns=["model", UNIQUE_ID, CUTOFF, "mae"])


def hindsight(rel: pd.DataFrame) -> dict[str, float]:
    """relMAE of single candidates chosen on the evaluation window's own errors.

    ``rel``: one row per (series, cutoff), one column per candidate: the pair's MAE over seasonal
    naive's.
    """
    logs = np.log(rel)
    per_series = logs.groupby(level=UNIQUE_ID).mean()
    n = logs.groupby(level=UNIQUE_ID).size()
    best_each = (per_series.min(axis=1) * n).sum() / n.sum()
    return {
        "best candidate for all series": float(np.exp(logs.mean().min())),
        "each series' best candidate": float(np.exp(best_each)),
    }


def combination_rel(forecasts: pd.DataFrame, labels: list[str], bench_mae: pd.Series) -> float:
    """relMAE of each series' best equal-weight mean of up to ``MAX_COMBINED`` candidates.

    ``bench_mae``: seasonal naive's MAE per (series, cutoff), the denominator.
    """
    rows = forecasts[forecasts["model"].isin(labels)]
    wide = rows.pivot_table(index=[UNIQUE_ID, CUTOFF, DS], columns="model", values="mean")
    actual = rows.groupby([UNIQUE_ID, CUTOFF, DS])[Y].first().reindex(wide.index).to_numpy()
    codes, pairs = pd.factorize(wide.index.droplevel(DS))
    months = np.bincount(codes)
    bench = bench_mae.reindex(pairs).to_numpy()
    values = wide[labels].to_numpy()
    combos = [
        combo
        for size in range(1, MAX_COMBINED + 1)
        for combo in itertools.combinations(range(len(labels)), size)
    ]
    # log relMAE per (combination, pair)
    logs = np.stack(
        [
            np.log(np.bincount(codes, np.abs(actual - values[:, c].mean(axis=1))) / months / bench)
            for c in combos
        ]
    )
    series = pairs.get_level_values(0)
    best = [logs[:, series == key] for key in series.unique()]
    best = [own[own.mean(axis=1).argmin()] for own in best]
    return float(np.exp(np.concatenate(best).mean()))


def ceiling_scores(forecasts: pd.DataFrame, panel: pd.DataFrame, config: dict, rules: bool):
    """relMAE of the best peer, the project and the hindsight choices (and the simple rules)
    on the pairs of ``forecasts``; also the number of pairs and the best peer's score."""
    labels = sorted(m for m in forecasts["model"].unique() if m.startswith(f"{PROJECT}:"))
    pairs = score(forecasts, panel, config["level"])
    rel = pairs.pivot_table(index=[UNIQUE_ID, CUTOFF], columns="model", values="rel_mae")
    bench_mae = pairs[pairs["model"] == BENCHMARK].set_index([UNIQUE_ID, CUTOFF])["mae"]
    peers = [m for m in rel.columns if m != PROJECT and not m.startswith(f"{PROJECT}:")]
    best_peer, peer_score = min(((m, geometric_mean(rel[m])) for m in peers), key=lambda t: t[1])
    scores = {f"best peer ({best_peer})": peer_score}
    scores["project (policy on past errors only)"] = geometric_mean(rel[PROJECT])
    if f"{PROJECT}:leading" in rel:
        scores["project:leading (one candidate, all series)"] = geometric_mean(
            rel[f"{PROJECT}:leading"]
        )
    scores.update({f"hindsight: {k}": v for k, v in hindsight(rel[labels]).items()})
    scores[f"hindsight: each series' best mean of up to {MAX_COMBINED} candidates"] = (
        combination_rel(forecasts, labels, bench_mae)
    )
    if rules:
        actuals = forecasts[forecasts["model"] == BENCHMARK][[UNIQUE_ID, CUTOFF, DS, Y]]
        found = rule_errors(actuals, panel, config["h"]).set_index([UNIQUE_ID, CUTOFF])
        for rule, group in found.groupby("model", sort=False):
            scores[f"rule: {rule}"] = geometric_mean(group["mae"] / bench_mae.loc[group.index])
    return scores, len(rel), peer_score


def _table(scores: dict, target: float) -> str:
    table = pd.DataFrame(
        {"forecast": list(scores), "rel_mae": [round(v, 3) for v in scores.values()]}
    )
    table["meets target"] = np.where(table["rel_mae"] <= target, "yes", "no")
    return table_text(table)


def main() -> None:
    config = load_config(HERE / "config.yaml")
    panel = load_panel(config["series"])
    forecasts = pd.read_csv(HERE / "forecasts.csv.gz", parse_dates=[CUTOFF, DS])
    forecasts = forecasts.dropna(subset=[Y])
    scores, n_pairs, peer_score = ceiling_scores(forecasts, panel, config, rules=True)
    target = 0.9 * peer_score
    text = [
        "# How far can a point forecast get on the benchmark's pairs?",
        "",
        "Generated by `python -m experiments.accuracy.ceiling` from `forecasts.csv.gz`: "
        f"relMAE on the same {n_pairs} (series, origin) pairs as `results.md`; the target is "
        f"10 % below the best peer, {target:.3f}. Hindsight rows choose on the evaluation "
        "window's own errors (see the module docstring).",
        "",
        _table(scores, target),
    ]
    out = {"pairs": n_pairs, "target": target, "rel_mae": scores, "slices": {}}
    start = pd.Timestamp(config["slices_from"])
    steps = (forecasts[DS].dt.year - forecasts[CUTOFF].dt.year) * 12 + (
        forecasts[DS].dt.month - forecasts[CUTOFF].dt.month
    )
    for h, share in config["slice_targets"].items():
        rows = forecasts[(forecasts[CUTOFF] >= start) & (steps <= int(h))]
        found, n, best = ceiling_scores(rows, panel, config, rules=False)
        out["slices"][f"h1-{h}"] = {"pairs": n, "target": share * best, "rel_mae": found}
        text += [
            "",
            f"## Origins from {config['slices_from']}, months 1-{h} ahead",
            "",
            f"{n} pairs; the target is {100 * (1 - share):.0f} % below the best peer, "
            f"{share * best:.3f}.",
            "",
            _table(found, share * best),
        ]
    (HERE / "ceiling.md").write_text("\n".join(text))
    (HERE / "ceiling.json").write_text(json.dumps(out, indent=2) + "\n")
    sys.stdout.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
