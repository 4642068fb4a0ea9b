"""Long fuzz profile: ingest N mutants of each official file and print what happened to them.

    nice -n 10 .venv/bin/python -m experiments.fuzz.bench --csv 1000 --xlsx 150 --seed 18

Counts per file: mutants, refused, accepted-correct, accepted-wrong, tracebacks, store changes,
long or multi-line messages; the slowest refusal; the process's peak memory (an upper bound on
any one refusal's).
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from forecasting.data import ObservationStore
from pipelines.ingest import ingest
from tests.conftest import CBP_SBO, OHSS
from tests.forecasting.data.cbp_files import state_file
from tests.forecasting.data.fuzz import mutant_outcome, target

KINDS = [
    "refused",
    "accepted-correct",
    "accepted-wrong",
    "traceback",
    "store-changed",
    "long-message",
]


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run(official: Path, n: int, seed: int, store: ObservationStore, folder: Path) -> None:
    strategy, reference, suffix = target(official)
    tally: collections.Counter[str] = collections.Counter()
    slowest, slowest_cpu, examples = 0.0, 0.0, {}
    path = folder / f"mutant{suffix}"

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def one(mutant):
        nonlocal slowest, slowest_cpu
        op, data = mutant
        outcome = mutant_outcome(store, path, data, reference)
        tally[outcome.kind] += 1
        tally["mutants"] += 1
        if tally["mutants"] % 50 == 0:
            counts = ", ".join(f"{k} {tally[k]}" for k in KINDS if tally[k])
            sys.stderr.write(f"{official.name}: {tally['mutants']} mutants: {counts}\n")
        if outcome.kind == "refused":
            slowest = max(slowest, outcome.seconds)
            slowest_cpu = max(slowest_cpu, outcome.cpu_seconds)
        elif outcome.kind != "accepted-correct":
            examples.setdefault(outcome.kind, f"{op}: {outcome.detail[:300]}")

    start = time.perf_counter()
    one._hypothesis_internal_use_seed = seed
    one()
    say(f"{official.name}: {tally['mutants']} mutants in {time.perf_counter() - start:.0f} s")
    for kind in KINDS:
        say(f"  {kind:18s} {tally[kind]}")
    say(f"  slowest refusal    {slowest:.2f} s wall clock, {slowest_cpu:.2f} s CPU")
    for kind, detail in examples.items():
        say(f"  e.g. {kind}: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=int, default=1000, help="mutants of the CBP sbo CSV")
    parser.add_argument("--xlsx", type=int, default=150, help="mutants of the OHSS workbook")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="encounters-fuzz-") as tmp:
        folder = Path(tmp)
        store = ObservationStore(folder / "home")
        ingest(store, [str(state_file(folder))])
        for official, n in [(CBP_SBO, args.csv), (OHSS, args.xlsx)]:
            if n:
                run(official, n, args.seed, store, folder)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(f"peak memory of the whole run (bounds every refusal's): {peak:.0f} MB")


if __name__ == "__main__":
    main()
