"""The vintaged observation store: every release kept, the newest vintage served.

Layout under ``<home>/store``: one Parquet file per release (``releases/<sha256>.parquet``) and
a ``manifest.json`` listing them in ingest order. A release's vintage is the last month it covers;
for a (series, month) several releases publish, the highest vintage wins (ties: the later ingest)
and the others stay queryable. The manifest is replaced atomically after the release files are in
place, so a reader sees the old store or the new one, never half of an ingest.

Writers (ingest, a retrain's ingest and its rollback, seeding) hold an exclusive lock on
``store/.lock`` from reading the manifest to replacing it, so two writers never both build on the
same manifest and one of them lose its release. Each manifest entry records its Parquet file's
sha256; reading verifies every file, so a missing or altered file is an error naming it, never a
wrong or partial panel.
"""

from __future__ import annotations

import datetime as dt
import difflib
import fcntl
import gzip
import hashlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from forecasting.data.readers import PUBLISHERS, Release
from forecasting.errors import DataError, UnknownSeriesError
from forecasting.frame import DS, FILLED, UNIQUE_ID, Y

RELEASE = "sha256"
MANIFEST_FORMAT = 1
OBSERVATION_COLUMNS = [RELEASE, UNIQUE_ID, DS, Y, FILLED]
SNAPSHOT_FILES = ("observations.csv.gz", "provenance.json")
#: The manifest field with the sha256 of the release's Parquet file (entries written before it
#: existed are checked for presence only).
FILE_DIGEST = "file_sha256"
LOCK_FILE = ".lock"
#: How long a writer waits for another to finish: ingests hold the lock for the seconds it takes
#: to write their Parquet files, never while they read and validate.
LOCK_WAIT_S = 60.0


class StoreBusy(DataError):
    """Another writer held the store's lock for longer than the wait."""


class StoreBroken(DataError):
    """The manifest lists a release whose Parquet file is missing or altered."""


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did with one file."""

    name: str
    sha256: str
    status: str  # "added" or "unchanged"
    vintage: str
    series: int
    observations: int


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; the store and the embedded snapshot are ordinary readable files.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _month(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m}"


class ObservationStore:
    """A vintaged monthly panel on disk (Parquet), or the embedded snapshot when it is empty.

    Args:
        home: the data home (``$ENCOUNTERS_HOME``); the store lives in ``home/store``.
        lock_wait: seconds a writer waits for another's lock (default :data:`LOCK_WAIT_S`).
    """

    def __init__(self, home: str | Path, lock_wait: float | None = None):
        self.root = Path(home) / "store"
        self.manifest_path = self.root / "manifest.json"
        self.lock_wait = LOCK_WAIT_S if lock_wait is None else lock_wait

    # -- the writers' lock -----------------------------------------------------------------------
    @contextmanager
    def writing(self, writer: str) -> Iterator[None]:
        """Hold the store's write lock (waiting up to ``lock_wait`` seconds); re-entrant within
        a process, so a retrain that holds it can ingest and roll back under it."""
        key = (self.root.resolve(), threading.get_ident())
        if _HELD.get(key):
            _HELD[key] += 1
            try:
                yield
            finally:
                _HELD[key] -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a+") as fh:
            deadline = time.monotonic() + self.lock_wait
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        fh.seek(0)
                        holder = fh.read().strip() or "another writer"
                        raise StoreBusy(
                            f"the store at {self.root} is busy: {holder} has been writing for "
                            f"over {self.lock_wait:.0f} s; retry when it has finished"
                        ) from None
                    time.sleep(0.05)
            fh.seek(0)
            fh.truncate()
            fh.write(f"{writer} (pid {os.getpid()})")
            fh.flush()
            _HELD[key] = 1
            try:
                yield
            finally:
                del _HELD[key]
                fh.truncate(0)
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- reading ---------------------------------------------------------------------------------
    def releases(self) -> list[dict]:
        """Manifest entries in ingest order; the embedded snapshot's when the store is empty."""
        if self.is_empty:
            return _snapshot()[0]
        return json.loads(self.manifest_path.read_text())["releases"]

    @property
    def is_empty(self) -> bool:
        return not self.manifest_path.exists()

    def observations(self) -> pd.DataFrame:
        """Every release's figures, with provenance: one row per (release, series, month).

        Columns: ``sha256``, ``unique_id``, ``ds``, ``y``, ``filled``, ``source``, ``publisher``,
        ``vintage`` (month start), ``rank`` (higher wins).
        """
        releases = self.releases()
        if self.is_empty:
            obs = _snapshot()[1]
        else:
            obs = pd.concat(
                [pd.read_parquet(io.BytesIO(self._verified(r))) for r in releases],
                ignore_index=True,
            )
        meta = pd.DataFrame(
            {
                RELEASE: [r["sha256"] for r in releases],
                "source": [r["name"] for r in releases],
                "publisher": [r["publisher"] for r in releases],
                "vintage": pd.to_datetime([r["vintage"] for r in releases]),
            }
        )
        # rank "first" numbers equal vintages in manifest order: ties go to the later ingest.
        meta["rank"] = meta["vintage"].rank(method="first").astype(int)
        return obs.merge(meta, on=RELEASE, how="left")

    def panel(self, all_vintages: bool = False) -> pd.DataFrame:
        """The served panel: for each (series, month) the figure of the newest vintage.

        Returns:
            ``unique_id``, ``ds``, ``y`` plus provenance columns (``source``, ``vintage``,
            ``filled``), sorted by series and month. With ``all_vintages`` every release's figure.
        """
        obs = self.observations().sort_values([UNIQUE_ID, DS, "rank"], kind="stable")
        if not all_vintages:
            obs = obs.drop_duplicates([UNIQUE_ID, DS], keep="last")
        return obs.reset_index(drop=True)

    def series(self, key: str, all_vintages: bool = False) -> pd.DataFrame:
        """One series' months with provenance; unknown keys raise with close matches."""
        panel = self.panel(all_vintages)
        rows = panel[panel[UNIQUE_ID] == key]
        if rows.empty:
            raise UnknownSeriesError(key, close_keys(key, panel[UNIQUE_ID].unique()))
        return rows.reset_index(drop=True)

    def verify(self) -> None:
        """Check that every manifest entry's Parquet file exists and matches its sha256.

        Raises:
            StoreBroken: naming the first release whose file is missing or altered.
        """
        if not self.is_empty:
            for entry in self.releases():
                self._verified(entry)

    def _release_path(self, sha256: str) -> Path:
        return self.root / "releases" / f"{sha256}.parquet"

    def _verified(self, entry: dict) -> bytes:
        path = self._release_path(entry["sha256"])
        fix = (
            f"re-ingest {entry['name']} (`encounters ingest`) to rewrite it, or restore "
            f"{self.root} from a backup"
        )
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreBroken(
                f"the store is broken: {self.manifest_path} lists release {entry['name']} but "
                f"its file {path} is missing; {fix}"
            ) from None
        digest = entry.get(FILE_DIGEST)
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise StoreBroken(
                f"the store is broken: {path} (release {entry['name']}) does not match the "
                f"sha256 its manifest records; {fix}"
            )
        return data

    def _intact(self, entry: dict) -> bool:
        try:
            self._verified(entry)
        except StoreBroken:
            return False
        return True

    def fingerprint(self) -> str:
        """Identifies the data vintage: a digest of the releases the store holds, in order."""
        digest = hashlib.sha256()
        for r in self.releases():
            digest.update(r["sha256"].encode())
        return digest.hexdigest()[:16]

    # -- writing ---------------------------------------------------------------------------------
    def add(self, releases: list[Release]) -> list[IngestResult]:
        """Add releases; a file already held (same sha256) changes nothing, unless its Parquet
        file is missing or altered, which rewrites it.

        Runs under the write lock. All release files are written before the manifest is
        replaced, so a failure at any point leaves the store as it was.
        """
        with self.writing("ingest"):
            manifest = [] if self.is_empty else self.releases()
            index = {r["sha256"]: i for i, r in enumerate(manifest)}
            results, new = [], []
            for release in releases:
                held = release.sha256 in index and self._intact(manifest[index[release.sha256]])
                if not held:
                    new.append(release)
                    index.setdefault(release.sha256, -1)
                results.append(
                    IngestResult(
                        release.name,
                        release.sha256,
                        "unchanged" if held else "added",
                        _month(release.vintage),
                        release.panel[UNIQUE_ID].nunique(),
                        len(release.panel),
                    )
                )
            if not new:
                return results
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            for release in new:
                table = release.panel.assign(**{RELEASE: release.sha256})[OBSERVATION_COLUMNS]
                entry = _entry(release, now, self._write_release(release.sha256, table))
                if index[release.sha256] >= 0:
                    manifest[index[release.sha256]] = entry
                else:
                    manifest.append(entry)
            _atomic_write(self.manifest_path, _manifest_bytes(manifest))
        return results

    def _write_release(self, sha256: str, table: pd.DataFrame) -> str:
        """Write one release's Parquet file; returns its sha256."""
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        data = buf.getvalue()
        _atomic_write(self._release_path(sha256), data)
        return hashlib.sha256(data).hexdigest()

    def remove(self, sha256s: Iterable[str]) -> None:
        """Take releases out again (a failed retrain's own): their manifest entries first, then
        their files; releases other writers added meanwhile stay. An empty manifest goes, so
        the store reads as empty (the embedded snapshot) again."""
        drop = set(sha256s)
        if not drop:
            return
        with self.writing("rollback"):
            if self.is_empty:
                return
            kept = [r for r in self.releases() if r["sha256"] not in drop]
            if kept:
                _atomic_write(self.manifest_path, _manifest_bytes(kept))
            else:
                self.manifest_path.unlink()
            for sha256 in drop:
                self._release_path(sha256).unlink(missing_ok=True)

    def seed(self) -> list[str]:
        """Fill an empty store from the embedded snapshot; the sha256s it added (none if the
        store was not empty)."""
        with self.writing("seed"):
            if not self.is_empty:
                return []
            entries, obs = _snapshot()
            written = []
            for entry in entries:
                table = obs[obs[RELEASE] == entry["sha256"]][OBSERVATION_COLUMNS]
                written.append({**entry, FILE_DIGEST: self._write_release(entry["sha256"], table)})
            _atomic_write(self.manifest_path, _manifest_bytes(written))
        return [e["sha256"] for e in written]

    def export_snapshot(self, out: str | Path) -> list[Path]:
        """Write the compact, byte-reproducible table the project embeds as its default data."""
        out = Path(out)
        obs = self.observations()[OBSERVATION_COLUMNS]
        order = {r["sha256"]: i for i, r in enumerate(self.releases())}
        obs = obs.assign(_order=obs[RELEASE].map(order)).sort_values(["_order", UNIQUE_ID, DS])
        obs = obs.drop(columns="_order").assign(**{DS: obs[DS].dt.strftime("%Y-%m-%d")})
        # mtime=0 so that the same data always gives the same bytes.
        table = gzip.compress(obs.to_csv(index=False, lineterminator="\n").encode(), mtime=0)
        provenance = {
            "description": "Monthly encounter figures derived by `encounters snapshot` from the "
            "official files below; every release is kept (see forecasting/data/store.py).",
            "releases": [
                {k: v for k, v in r.items() if k not in ("ingested_at", "source", FILE_DIGEST)}
                for r in self.releases()
            ],
        }
        paths = [out / SNAPSHOT_FILES[0], out / SNAPSHOT_FILES[1]]
        _atomic_write(paths[0], table)
        _atomic_write(paths[1], (json.dumps(provenance, indent=2) + "\n").encode())
        return paths


def close_keys(key: str, known: Iterable[str]) -> list[str]:
    """Up to five known keys that look like ``key``, for "did you mean" hints."""
    return difflib.get_close_matches(key, list(known), n=5, cutoff=0.6)


def _entry(release: Release, ingested_at: str, file_sha256: str) -> dict:
    panel = release.panel
    return {
        "sha256": release.sha256,
        "name": release.name,
        "source": release.source,
        "layout": release.layout,
        "publisher": release.publisher,
        "rows": release.rows,
        "series": int(panel[UNIQUE_ID].nunique()),
        "observations": len(panel),
        "filled": int(panel[FILLED].sum()),
        "first": _month(panel[DS].min()),
        "last": _month(panel[DS].max()),
        "vintage": _month(release.vintage),
        "ingested_at": ingested_at,
        FILE_DIGEST: file_sha256,
    }


def _manifest_bytes(entries: list[dict]) -> bytes:
    return (json.dumps({"format": MANIFEST_FORMAT, "releases": entries}, indent=2) + "\n").encode()


#: (store, thread) pairs holding a store's write lock, with the depth of re-entry.
_HELD: dict[tuple[Path, int], int] = {}

_SNAPSHOT_CACHE: tuple[list[dict], pd.DataFrame] | None = None


def _snapshot() -> tuple[list[dict], pd.DataFrame]:
    """The embedded default data (read once per process)."""
    global _SNAPSHOT_CACHE
    if _SNAPSHOT_CACHE is None:
        folder = resources.files("forecasting.data") / "snapshot"
        try:
            provenance = json.loads((folder / SNAPSHOT_FILES[1]).read_text())
            with (folder / SNAPSHOT_FILES[0]).open("rb") as fh:
                obs = pd.read_csv(
                    fh,
                    compression="gzip",
                    parse_dates=[DS],
                    dtype={RELEASE: str, UNIQUE_ID: str, Y: "int64", FILLED: bool},
                )
        except FileNotFoundError as exc:
            raise DataError(
                "the store is empty and the embedded snapshot is missing; run "
                "`encounters ingest FILE...`"
            ) from exc
        entries = [
            {**r, "source": r["name"], "publisher": r.get("publisher") or PUBLISHERS[r["layout"]]}
            for r in provenance["releases"]
        ]
        _SNAPSHOT_CACHE = (entries, obs)
    return _SNAPSHOT_CACHE
