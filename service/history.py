"""Observed history with provenance, read from the observation store and kept until it changes."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from forecasting.data import ObservationStore
from forecasting.data.store import StoreBroken
from forecasting.frame import DS, UNIQUE_ID, Y


class History:
    """The store's served panel, split by series; re-read when the store's manifest changes.

    Args:
        home: the data home (the store is ``home/store``; the embedded snapshot while empty).
    """

    def __init__(self, home: Path):
        self.store = ObservationStore(home)
        self._stamp: float | None = None
        self._series: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._checked: tuple[tuple, str | None] = ((), None)

    def _manifest_stamp(self) -> float:
        try:
            return self.store.manifest_path.stat().st_mtime
        except FileNotFoundError:
            return 0.0  # the embedded snapshot

    def _refresh(self) -> dict[str, list[dict]]:
        stamp = self._manifest_stamp()
        if stamp == self._stamp:
            return self._series
        with self._lock:
            if stamp != self._stamp:
                panel = self.store.panel()
                rows = pd.DataFrame(
                    {
                        UNIQUE_ID: panel[UNIQUE_ID],
                        DS: panel[DS].dt.strftime("%Y-%m-%d"),
                        Y: panel[Y].astype(float),
                        "source": panel["source"].astype(str),
                        "vintage": panel["vintage"].dt.strftime("%Y-%m"),
                        "filled": panel["filled"].astype(bool),
                    }
                )
                self._series = {
                    str(key): group.drop(columns=UNIQUE_ID).to_dict(orient="records")
                    for key, group in rows.groupby(UNIQUE_ID, sort=True)
                }
                self._stamp = stamp
        return self._series

    def _files_stamp(self) -> tuple:
        root = self.store.root
        files = [self.store.manifest_path, *sorted((root / "releases").glob("*.parquet"))]
        stamps = []
        for path in files:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            stamps.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def broken(self) -> str | None:
        """Why the store cannot be read (a release file missing or altered), or None; verified
        again whenever one of its files changes."""
        stamp = self._files_stamp()
        if stamp != self._checked[0]:
            try:
                self.store.verify()
                problem = None
            except StoreBroken as exc:
                problem = str(exc)
            self._checked = (stamp, problem)
        return self._checked[1]

    def keys(self) -> list[str]:
        return list(self._refresh())

    def rows(self, key: str) -> list[dict] | None:
        """The months of ``key`` (``ds``, ``y``, ``source``, ``vintage``, ``filled``), or None."""
        return self._refresh().get(key)
