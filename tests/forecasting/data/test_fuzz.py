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
    Workbook,
    ingest_outcome,
    ohss_mutants,
    reference_ohss,
    reference_sbo,
    sbo_mutants,
)
from tests.forecasting.data.hostile import sbo_lines

SHORT = settings(
    max_examples=40,
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
        outcome = ingest_outcome(store, path, reference(path.read_bytes()))
        assert outcome.kind == "accepted-correct", outcome


def test_sbo_mutants_are_refused_or_read_right(store, sbo_file, tmp_path):
    lines = sbo_lines(sbo_file)

    @SHORT
    @given(sbo_mutants(lines))
    def check(mutant):
        _op, data = mutant
        path = tmp_path / "cbp-sbo-mutant.csv"
        path.write_bytes(data)
        outcome = ingest_outcome(store, path, reference_sbo(data))
        assert outcome.kind in GOOD, outcome

    check()


def test_ohss_mutants_are_refused_or_read_right(store, ohss_file, tmp_path):
    book = Workbook.load(ohss_file)

    @settings(SHORT, max_examples=8)
    @given(ohss_mutants(book))
    def check(mutant):
        _op, data = mutant
        path = tmp_path / "ohss-mutant.xlsx"
        path.write_bytes(data)
        outcome = ingest_outcome(store, path, reference_ohss(data))
        assert outcome.kind in GOOD, outcome

    check()
