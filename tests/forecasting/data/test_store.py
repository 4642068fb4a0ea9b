from __future__ import annotations

import hashlib
import multiprocessing
import time
from pathlib import Path

import pandas as pd
import pytest

from forecasting.data import ObservationStore, read_release
from forecasting.data.store import SNAPSHOT_FILES, StoreBroken, StoreBusy
from forecasting.errors import DataError, UnknownSeriesError
from pipelines.ingest import ingest
from tests.forecasting.data.cbp_files import AOR_ROWS, aor_file, revised_copy, state_file

SNAPSHOT_DIR = Path(__file__).resolve().parents[3] / "forecasting" / "data" / "snapshot"


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def value(store: ObservationStore, key: str, month: str, all_vintages=False) -> list[int]:
    rows = store.series(key, all_vintages=all_vintages)
    return rows.loc[rows["ds"] == pd.Timestamp(month), "y"].to_list()


def test_newest_vintage_wins_and_older_stays_queryable(tmp_path, ohss_file, sbo_file):
    store = ObservationStore(tmp_path)
    ingest(store, [str(ohss_file)])
    usbp = store.series("southwest/usbp")
    assert len(usbp) == 302 and usbp["ds"].max() == pd.Timestamp("2024-11-01")
    assert value(store, "southwest/usbp", "2023-12-01") == [249_740]

    ingest(store, [str(sbo_file)])
    assert value(store, "southwest/usbp", "2024-01-01") == [124_215]
    assert value(store, "southwest/usbp", "2024-01-01", all_vintages=True) == [124_220, 124_215]
    assert store.series("southwest/cbp")["ds"].max() == pd.Timestamp("2025-08-01")
    # Months only OHSS publishes keep OHSS's figure.
    sep_2021 = store.series("southwest/usbp").set_index("ds").loc["2021-09-01"]
    assert sep_2021["source"] == ohss_file.name and sep_2021["y"] % 10 == 0
    newest = store.series("southwest/usbp")
    assert newest.set_index("ds").loc["2024-01-01", "source"] == sbo_file.name


def test_reingesting_a_file_changes_nothing(tmp_path, sbo_file):
    store = ObservationStore(tmp_path)
    ingest(store, [str(sbo_file)])
    before = tree_digest(store.root)
    (result,) = ingest(store, [str(sbo_file)])
    assert result.status == "unchanged"
    assert tree_digest(store.root) == before


def test_equal_vintages_go_to_the_later_ingest(tmp_path):
    store = ObservationStore(tmp_path)
    first = aor_file(tmp_path)
    revised = [r if i else r[:-1] + ("105",) for i, r in enumerate(AOR_ROWS)]
    second = aor_file(tmp_path, revised, name="nationwide-encounters-fy24-aor-revised.csv")
    ingest(store, [str(first)])
    ingest(store, [str(second)])
    assert value(store, "southwest/usbp/sector=rio-grande-valley", "2023-10-01") == [105]
    assert value(store, "southwest/usbp/sector=rio-grande-valley", "2023-10-01", True) == [100, 105]


@pytest.mark.parametrize("tamper", ["text", "missing_column", "unknown_header"])
def test_failed_ingest_leaves_store_byte_for_byte(tmp_path, tamper):
    store = ObservationStore(tmp_path / "home")
    ingest(store, [str(state_file(tmp_path))])
    before = tree_digest(store.root)
    bad = aor_file(tmp_path)
    text = bad.read_text()
    bad.write_text(
        {
            "text": text.replace(",100\n", ",one hundred\n"),
            "missing_column": text.replace("AOR (Abbv),", ""),
            "unknown_header": "Month,Count\n2024-01,5\n",
        }[tamper]
    )
    good = aor_file(tmp_path, name="nationwide-encounters-fy24-aor-good.csv")
    with pytest.raises(DataError, match=bad.name):
        ingest(store, [str(good), str(bad)])
    assert tree_digest(store.root) == before


def test_unknown_series_suggests_close_keys(tmp_path):
    store = ObservationStore(tmp_path)
    ingest(store, [str(aor_file(tmp_path))])
    with pytest.raises(UnknownSeriesError, match="did you mean southwest/usbp/sector=tucson"):
        store.series("southwest/usbp/sector=tuscon")


def test_empty_store_serves_the_embedded_snapshot_and_seeds_from_it(tmp_path):
    store = ObservationStore(tmp_path)
    assert store.is_empty
    assert value(store, "southwest/usbp", "2024-01-01") == [124_215]
    fingerprint = store.fingerprint()
    assert store.seed() == [r["sha256"] for r in store.releases()]
    assert not store.is_empty and store.seed() == []
    assert store.fingerprint() == fingerprint
    assert value(store, "southwest/usbp", "2024-01-01", all_vintages=True) == [124_220, 124_215]


def test_snapshot_rederives_identically_from_the_official_files(
    tmp_path, ohss_file, sbo_file, indicator_files
):
    store = ObservationStore(tmp_path / "home")
    ingest(store, [str(ohss_file), str(sbo_file), *map(str, indicator_files)])
    out = tmp_path / "snapshot"
    store.export_snapshot(out)
    for name in SNAPSHOT_FILES:
        assert (out / name).read_bytes() == (SNAPSHOT_DIR / name).read_bytes(), name


def test_snapshot_provenance_names_the_official_files(ohss_file, sbo_file, indicator_files):
    releases = ObservationStore("/nonexistent-home").releases()
    digests = {r["name"]: r["sha256"] for r in releases}
    for path in (ohss_file, sbo_file, *indicator_files):
        assert digests[path.name] == read_release(path).sha256


def test_remove_takes_out_only_the_named_releases_byte_for_byte(tmp_path):
    store = ObservationStore(tmp_path)
    ingest(store, [str(state_file(tmp_path))])
    before = tree_digest(store.root)
    (added,) = ingest(store, [str(aor_file(tmp_path))])
    assert tree_digest(store.root) != before
    store.remove([added.sha256])
    assert tree_digest(store.root) == before


def test_removing_every_release_empties_the_store(tmp_path):
    store = ObservationStore(tmp_path)
    (added,) = ingest(store, [str(aor_file(tmp_path))])
    store.remove([added.sha256])
    assert store.is_empty and not list((store.root / "releases").glob("*"))


def _entry_file(store: ObservationStore, name: str) -> Path:
    (sha,) = [r["sha256"] for r in store.releases() if r["name"] == name]
    return store.root / "releases" / f"{sha}.parquet"


def test_a_missing_release_file_is_a_broken_store_naming_it(tmp_path, sbo_file):
    store = ObservationStore(tmp_path)
    ingest(store, [str(sbo_file)])
    path = _entry_file(store, sbo_file.name)
    path.unlink()
    message = f"the store is broken: .* lists release {sbo_file.name} but its file .* is missing"
    with pytest.raises(StoreBroken, match=message):
        store.verify()
    with pytest.raises(StoreBroken, match=message):
        store.series("southwest/usbp")
    # Re-ingesting the file repairs it.
    (result,) = ingest(store, [str(sbo_file)])
    assert result.status == "added" and path.is_file()
    store.verify()
    assert value(store, "southwest/usbp", "2024-01-01") == [124_215]


def test_an_altered_release_file_is_a_broken_store(tmp_path, sbo_file):
    store = ObservationStore(tmp_path)
    other = aor_file(tmp_path)
    ingest(store, [str(sbo_file), str(other)])
    # Another release's (valid) Parquet in its place: readable, but not what was written.
    path = _entry_file(store, sbo_file.name)
    path.write_bytes(_entry_file(store, other.name).read_bytes())
    with pytest.raises(StoreBroken, match="does not match the sha256 its manifest records"):
        store.panel()


def test_a_writer_waits_for_the_lock_then_says_busy(tmp_path):
    store = ObservationStore(tmp_path, lock_wait=0.3)
    release = read_release(aor_file(tmp_path))
    ctx = multiprocessing.get_context("fork")
    held, done = ctx.Event(), ctx.Event()

    def hold() -> None:
        with ObservationStore(tmp_path).writing("ingest"):
            held.set()
            done.wait(30)

    holder = ctx.Process(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        started = time.monotonic()
        with pytest.raises(StoreBusy, match=r"busy: ingest \(pid \d+\) .*; retry"):
            store.add([release])
        assert 0.3 <= time.monotonic() - started < 5
        assert store.is_empty
    finally:
        done.set()
        holder.join(30)
    assert store.add([release])[0].status == "added"


PAIRS = 15


def ingest_at_once(home: Path, sources: list[Path]) -> list[int]:
    """Each source ingested by its own process, released together; their exit codes."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(sources))

    def run(source: Path) -> None:
        barrier.wait(30)
        ingest(ObservationStore(home), [str(source)])

    procs = [ctx.Process(target=run, args=(s,)) for s in sources]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    return [proc.exitcode for proc in procs]


def test_concurrent_ingests_lose_no_release(tmp_path, sbo_file):
    revised = revised_copy(sbo_file, tmp_path / "revised")
    lost = []
    for trial in range(PAIRS):
        home = tmp_path / f"home{trial}"
        assert ingest_at_once(home, [sbo_file, revised]) == [0, 0]
        store = ObservationStore(home)
        store.verify()
        if len(store.releases()) != 2:
            lost.append(trial)
    assert lost == [], f"{len(lost)} of {PAIRS} concurrent pairs lost a release"
