"""Time per counterfactual request on a pre-fitted model, as the service would answer it.

    python -m experiments.counterfactual.timing [--key southwest/usbp] [--calls 200]

Fits the default SARIMAX on the whole history once, builds a
:class:`~forecasting.counterfactual.CounterfactualEngine` (coefficient draws and baseline paths
computed once), then times requests for a few catalog scenarios. Prints a Markdown table and writes
``timing.json`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.counterfactual import CounterfactualEngine
from forecasting.data import ObservationStore
from forecasting.frame import series_history
from forecasting.home import encounters_home
from forecasting.interventions import Scenario, design_matrix, load_catalog
from forecasting.models import SARIMAX

HERE = Path(__file__).resolve().parent
log = logging.getLogger("counterfactual-timing")


def scenarios(cutoff: pd.Timestamp) -> dict[str, tuple[Scenario, str | None, str | None]]:
    nxt = cutoff + pd.offsets.MonthBegin(1)
    later = f"{nxt + pd.DateOffset(months=6):%Y-%m}"
    return {
        "remove, past span (Jan-Jun 2024)": (
            Scenario.from_data({"remove": [{"event": "mx_enforcement_2023_12"}]}),
            "2024-01",
            "2024-06",
        ),
        "remove from next month, next 12 months": (
            Scenario.from_data(
                {"remove": [{"event": "mx_enforcement_2023_12", "start": f"{nxt:%Y-%m}"}]}
            ),
            None,
            None,
        ),
        "add like a catalog event, 12 months": (
            Scenario.from_data(
                {
                    "add": [
                        {
                            "id": "repeat_surge",
                            "shape": "step",
                            "start": later,
                            "like": "mx_enforcement_2023_12",
                        }
                    ]
                }
            ),
            None,
            None,
        ),
        "remove, past and future (24 months)": (
            Scenario.from_data({"remove": [{"event": "mx_enforcement_2023_12"}]}),
            f"{cutoff - pd.DateOffset(months=11):%Y-%m}",
            f"{cutoff + pd.DateOffset(months=12):%Y-%m}",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", default="southwest/usbp")
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    catalog = load_catalog()
    y = series_history(ObservationStore(encounters_home()).panel(), args.key)
    X = design_matrix(catalog, args.key, y.index[0], y.index[-1])
    started = time.perf_counter()
    model = SARIMAX().fit(y, X)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    engine = CounterfactualEngine(model, y, X, catalog, args.key, horizon=36).warm()
    build_seconds = time.perf_counter() - started
    log.info("fit %.1fs, engine %.2fs", fit_seconds, build_seconds)
    rows = []
    for name, (scenario, start, end) in scenarios(model.cutoff_).items():
        first = time.perf_counter()
        engine.run(scenario, start, end)
        first_ms = 1000 * (time.perf_counter() - first)
        times = []
        for _ in range(args.calls):
            t = time.perf_counter()
            engine.run(scenario, start, end)
            times.append(1000 * (time.perf_counter() - t))
        rows.append(
            {
                "request": name,
                "first_ms": first_ms,
                "median_ms": float(np.median(times)),
                "p90_ms": float(np.quantile(times, 0.9)),
            }
        )
    result = {
        "series": args.key,
        "n_paths": engine.n_paths,
        "fit_seconds": fit_seconds,
        "engine_seconds": build_seconds,
        "requests": rows,
    }
    (HERE / "timing.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Model fit {fit_seconds:.1f} s; engine (draws, baseline paths) {build_seconds:.2f} s; "
        f"{engine.n_paths} paths.",
        "",
        "| request | first call (ms) | median (ms) | p90 (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['request']} | {r['first_ms']:.1f} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} |"
        for r in rows
    ]
    log.info("\n%s", "\n".join(lines))


if __name__ == "__main__":
    main()
