"""Ingest official files (local paths or http(s) URLs) into the observation store."""

from __future__ import annotations

import http.client
import logging
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from forecasting.data import ObservationStore, Release, read_release
from forecasting.data.limits import MAX_FILE_BYTES, check_size
from forecasting.data.store import IngestResult
from forecasting.errors import DataError

log = logging.getLogger(__name__)
DOWNLOAD_TIMEOUT_S = 120
#: Publishers release monthly; a release more than a year past the newest one held is more
#: likely a wrong date than a year of missed releases, so it needs --force.
MAX_VINTAGE_JUMP_MONTHS = 12


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https")


def _download(url: str, folder: Path) -> Path:
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    target = folder / name
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit():
                check_size(url, int(declared))
            # One byte past the limit is enough to know the file is too big.
            data = response.read(MAX_FILE_BYTES + 1)
            check_size(url, len(data))
            target.write_bytes(data)
    except DataError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise DataError(f"{url}: could not download: {exc}") from exc
    return target


def read_sources(sources: list[str], workdir: Path) -> list[Release]:
    """Read and validate every source before anything is written."""
    releases = []
    for source in sources:
        if _is_url(source):
            log.info("downloading %s", source)
            path = _download(source, workdir)
        else:
            path = Path(source)
            if not path.is_file():
                raise DataError(f"{source}: no such file; give a local path or an http(s) URL")
        releases.append(read_release(path, source=source))
        log.info("read %s: %d rows", path.name, releases[-1].rows)
    return releases


def check_vintages(store: ObservationStore, releases: list[Release]) -> None:
    """Refuse a release whose last month lies implausibly far past the newest the store holds."""
    if store.is_empty:
        return
    newest = max(pd.Timestamp(r["vintage"]) for r in store.releases())
    limit = newest + pd.DateOffset(months=MAX_VINTAGE_JUMP_MONTHS)
    for release in releases:
        if release.vintage > limit:
            raise DataError(
                f"{release.name}: its last month {release.vintage:%Y-%m} is more than "
                f"{MAX_VINTAGE_JUMP_MONTHS} months after the newest the store holds "
                f"({newest:%Y-%m}); check the file, or ingest it with --force"
            )


def ingest(store: ObservationStore, sources: list[str], force: bool = False) -> list[IngestResult]:
    """Validate all sources, then add them to the store in one atomic step.

    Args:
        force: accept releases more than :data:`MAX_VINTAGE_JUMP_MONTHS` past the store's newest.

    Raises:
        DataError: any source cannot be read or trusted; the store is left untouched.
    """
    with tempfile.TemporaryDirectory(prefix="encounters-ingest-") as tmp:
        releases = read_sources(sources, Path(tmp))
    if not force:
        check_vintages(store, releases)
    return store.add(releases)
