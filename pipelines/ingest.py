"""Ingest official files (local paths or http(s) URLs) into the observation store."""

from __future__ import annotations

import logging
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from forecasting.data import ObservationStore, Release, read_release
from forecasting.data.store import IngestResult
from forecasting.errors import DataError

log = logging.getLogger(__name__)
DOWNLOAD_TIMEOUT_S = 120


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https")


def _download(url: str, folder: Path) -> Path:
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    target = folder / name
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310
            target.write_bytes(response.read())
    except (urllib.error.URLError, OSError) as exc:
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


def ingest(store: ObservationStore, sources: list[str]) -> list[IngestResult]:
    """Validate all sources, then add them to the store in one atomic step.

    Raises:
        DataError: any source cannot be read or trusted; the store is left untouched.
    """
    with tempfile.TemporaryDirectory(prefix="encounters-ingest-") as tmp:
        releases = read_sources(sources, Path(tmp))
    return store.add(releases)
