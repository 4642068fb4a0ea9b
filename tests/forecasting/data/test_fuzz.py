"""Property: a mutant of an official file is refused in one line with the store unchanged, or
accepted with exactly the figures the reference parser reads in it (short profile; the long one
is experiments/fuzz/bench.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from forecasting.data import ObservationStore
from pipelines.ingest import ingest
from tests.forecasting.data.cbp_files import state_file
from tests.forecasting.data.fuzz import (
    mutant_outcome,
    reference_ohss,
    reference_sbo,
    target,
)

SHORT = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
GOOD = {"refused", "accepted-correct"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ObservationStore:
    """A store that already holds one release, so that "unchanged" means something."""
    folder = tmp_path_factory.mktemp("fuzz")
    held = ObservationStore(folder / "home")
    ingest(held, [str(state_file(folder))])
    return held


def test_the_reference_parsers_read_the_official_files_as_the_readers_do(
    store, sbo_file, ohss_file, tmp_path
):
    for path, reference in [(sbo_file, reference_sbo), (ohss_file, reference_ohss)]:
        outcome = mutant_outcome(store, tmp_path / path.name, path.read_bytes(), reference)
        assert outcome.kind == "accepted-correct", outcome


@pytest.mark.parametrize(("official", "examples"), [("sbo_file", 40), ("ohss_file", 8)])
def test_mutants_are_refused_or_read_right(store, request, tmp_path, official, examples):
    strategy, reference, suffix = target(request.getfixturevalue(official))

    @settings(SHORT, max_examples=examples)
    @given(strategy)
    def check(mutant):
        _op, data = mutant
        outcome = mutant_outcome(store, tmp_path / f"mutant{suffix}", data, reference)
        assert outcome.kind in GOOD, outcome

    check()
