"""Training throughput: wall time, peak memory and fits per second of an experiment, per executor.

    python -m experiments.training.bench [--experiment experiments/default.yaml]

Runs the experiment's training (without MLflow logging, which is measured separately as the
difference to a full `encounters train`) on Dask LocalClusters of 1 and 2 worker processes and on
the local process pool, and writes ``results.md`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from forecasting.data import ObservationStore
from forecasting.home import encounters_home
from pipelines.config import DEFAULT_EXPERIMENT, Experiment
from pipelines.train import train

HERE = Path(__file__).resolve().parent


def fits(training) -> int:
    """Model fits a training made: one per backtest origin and one final fit, per candidate."""
    total = 0
    for result in training.results:
        for cand in result.candidates:
            if cand.status == "ok" and cand.spec.name != "ensemble":
                total += len(result.cutoffs) + 1
    return total


def measure(exp: Experiment, executor: str, workers: int, series: list[str] | None) -> dict:
    store = ObservationStore(encounters_home())
    start = time.perf_counter()
    training = train(exp, store, series, executor, workers)
    wall = time.perf_counter() - start
    n = fits(training)
    return {
        "executor": executor,
        "workers": workers,
        "series": len(training.results),
        "fits": n,
        "wall_s": round(wall, 1),
        "fits_per_s": round(n / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, default=DEFAULT_EXPERIMENT)
    parser.add_argument(
        "--series", nargs="*", help="Only these series (default: the experiment's)."
    )
    args = parser.parse_args()
    exp, _ = Experiment.load(args.experiment)
    rows = [
        measure(exp, executor, workers, args.series)
        for executor, workers in (("dask", 1), ("dask", 2), ("local", 2))
    ]
    # Peak resident memory of this process and of its (finished) children, the workers.
    peak_mb = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ) / 1024
    speedup = rows[0]["wall_s"] / rows[1]["wall_s"]
    lines = [
        "# Training throughput",
        "",
        f"Experiment `{exp.name}` ({args.experiment.name})"
        + (f", series {', '.join(args.series)}" if args.series else ", all its series")
        + "; training without MLflow logging, measured by "
        "`python -m experiments.training.bench` on this machine (2 cores).",
        "",
        "| executor | workers | series | fits | wall (s) | fits/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['executor']} | {r['workers']} | {r['series']} | {r['fits']} | {r['wall_s']} "
        f"| {r['fits_per_s']} |"
        for r in rows
    ]
    lines += [
        "",
        f"Speed-up of 2 Dask workers over 1: {speedup:.2f}x. Peak resident memory of the "
        f"driver plus its largest worker: {peak_mb:.0f} MB.",
        "",
    ]
    (HERE / "results.md").write_text("\n".join(lines))
    (HERE / "results.json").write_text(
        json.dumps({"runs": rows, "speedup_dask_2_over_1": speedup, "peak_mb": peak_mb}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
