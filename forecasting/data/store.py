"""The vintaged observation store: every release kept, the newest vintage served.

Layout under ``<home>/store``: one Parquet file per release (``releases/<sha256>.parquet``) and
a ``manifest.json`` listing them in ingest order. A release's vintage is the last month it covers;
for a (series, month) several releases publish, the highest vintage wins (ties: the later ingest)
and the others stay queryable. The manifest is replaced atomically after the release files are in
place, so a reader sees the old store or the new one, never half of an ingest.
"""

from __future__ import annotations

import datetime as dt
import difflib
import gzip
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from forecasting.data.readers import FILLED, PUBLISHERS, Release
from forecasting.errors import DataError, UnknownSeriesError
from forecasting.frame import DS, UNIQUE_ID, Y

RELEASE = "sha256"
MANIFEST_FORMAT = 1
OBSERVATION_COLUMNS = [RELEASE, UNIQUE_ID, DS, Y, FILLED]
SNAPSHOT_FILES = ("observations.csv.gz", "provenance.json")


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
    """

    def __init__(self, home: str | Path):
        self.root = Path(home) / "store"
        self.manifest_path = self.root / "manifest.json"

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
                [
                    pd.read_parquet(self.root / "releases" / f"{r['sha256']}.parquet")
                    for r in releases
                ],
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

    def fingerprint(self) -> str:
        """Identifies the data vintage: a digest of the releases the store holds, in order."""
        digest = hashlib.sha256()
        for r in self.releases():
            digest.update(r["sha256"].encode())
        return digest.hexdigest()[:16]

    # -- writing ---------------------------------------------------------------------------------
    def add(self, releases: list[Release]) -> list[IngestResult]:
        """Add releases; a file already held (same sha256) changes nothing.

        All release files are written before the manifest is replaced, so a failure at any point
        leaves the store as it was.
        """
        manifest = [] if self.is_empty else self.releases()
        held = {r["sha256"] for r in manifest}
        results, new = [], []
        for release in releases:
            status = "unchanged" if release.sha256 in held else "added"
            if status == "added":
                held.add(release.sha256)
                new.append(release)
            results.append(
                IngestResult(
                    release.name,
                    release.sha256,
                    status,
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
            buf = io.BytesIO()
            table.to_parquet(buf, index=False)
            _atomic_write(self.root / "releases" / f"{release.sha256}.parquet", buf.getvalue())
            manifest.append(_entry(release, now))
        _atomic_write(self.manifest_path, _manifest_bytes(manifest))
        return results

    def checkpoint(self) -> bytes | None:
        """The store's state as its manifest, to :meth:`restore` if a later step fails."""
        return None if self.is_empty else self.manifest_path.read_bytes()

    def restore(self, checkpoint: bytes | None) -> None:
        """Return to a :meth:`checkpoint`: its manifest back, release files it lacks removed."""
        if checkpoint is None:
            self.manifest_path.unlink(missing_ok=True)
            held: set[str] = set()
        else:
            _atomic_write(self.manifest_path, checkpoint)
            held = {r["sha256"] for r in json.loads(checkpoint)["releases"]}
        for path in (self.root / "releases").glob("*.parquet"):
            if path.stem not in held:
                path.unlink()

    def seed(self) -> bool:
        """Fill an empty store from the embedded snapshot; True if it did."""
        if not self.is_empty:
            return False
        entries, obs = _snapshot()
        for entry in entries:
            buf = io.BytesIO()
            obs[obs[RELEASE] == entry["sha256"]][OBSERVATION_COLUMNS].to_parquet(buf, index=False)
            _atomic_write(self.root / "releases" / f"{entry['sha256']}.parquet", buf.getvalue())
        _atomic_write(self.manifest_path, _manifest_bytes(entries))
        return True

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
                {k: v for k, v in r.items() if k not in ("ingested_at", "source")}
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


def _entry(release: Release, ingested_at: str) -> dict:
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
    }


def _manifest_bytes(entries: list[dict]) -> bytes:
    return (json.dumps({"format": MANIFEST_FORMAT, "releases": entries}, indent=2) + "\n").encode()


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
