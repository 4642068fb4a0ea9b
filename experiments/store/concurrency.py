"""Concurrency benchmark of the observation store: lost writes with two writers at once.

    python -m experiments.store.concurrency [--pairs 100] [--retrains 20]

1. ``--pairs`` times, into a fresh data home: the official CBP file and a re-publication of it
   with one figure revised are ingested by two processes released by one barrier; a pair loses a
   write when the store does not hold both releases afterwards (or holds a broken one).
2. ``--retrains`` times, into a fresh data home seeded from the snapshot: a retrain ingests a
   small CBP release and then fails (every model of its experiment fails to fit); while it runs,
   this process ingests the revised re-publication. A run loses a write when that release is not
   in the store after the retrain's rollback; the retrain's own release must be gone.

It prints the counts. The harness is the tests' (tests/forecasting/data/test_store.py,
tests/pipelines/test_retrain.py), which run 15 pairs and one retrain in the default suite.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from forecasting.data import ObservationStore
from forecasting.data.store import StoreBroken
from tests.conftest import CBP_SBO
from tests.forecasting.data.cbp_files import revised_copy
from tests.forecasting.data.test_store import ingest_at_once
from tests.pipelines.test_retrain import ingest_during_failing_retrain


def pairs(work: Path, n: int, revised: Path) -> tuple[int, int]:
    """Lost writes and failed processes in ``n`` concurrent ingest pairs."""
    lost = failed = 0
    for trial in range(n):
        home = work / f"pair{trial}"
        failed += sum(code != 0 for code in ingest_at_once(home, [CBP_SBO, revised]))
        store = ObservationStore(home)
        try:
            store.verify()
            lost += len(store.releases()) != 2
        except StoreBroken:
            lost += 1
    return lost, failed


def retrains(work: Path, n: int, revised: Path) -> tuple[int, int]:
    """Lost writes in ``n`` ingests during a failing retrain, and how many of those ingests
    landed while the retrain still ran."""
    lost = during = 0
    for trial in range(n):
        folder = work / f"retrain{trial}"
        folder.mkdir()
        os.environ["ENCOUNTERS_HOME"] = str(folder / "home")
        landed, names = ingest_during_failing_retrain(folder / "home", folder, revised)
        during += landed
        lost += names != [revised.name]
    return lost, during


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--retrains", type=int, default=20)
    args = parser.parse_args()
    if not CBP_SBO.is_file():
        sys.exit(f"the official file {CBP_SBO} is missing: this benchmark needs ../shared/data")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    work = Path(tempfile.mkdtemp(prefix="store-concurrency-"))
    revised = revised_copy(CBP_SBO, work / "revised")
    started = time.monotonic()
    lost, failed = pairs(work, args.pairs, revised)
    pair_s = time.monotonic() - started
    started = time.monotonic()
    retrain_lost, during = retrains(work, args.retrains, revised)
    retrain_s = time.monotonic() - started
    sys.stdout.write(
        f"concurrent ingest pairs: {args.pairs}, lost writes {lost}, failed ingests {failed} "
        f"({pair_s:.0f} s)\n"
        f"ingests during a failing retrain: {args.retrains}, lost writes {retrain_lost}, "
        f"landed while the retrain ran {during} ({retrain_s:.0f} s)\n"
    )


if __name__ == "__main__":
    main()
