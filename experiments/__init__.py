"""Experiments and benchmarks: each folder holds a protocol, its script and its results."""

from __future__ import annotations

import argparse
import logging
import subprocess
from pathlib import Path

import forecasting

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def protocol_args(
    doc: str, here: Path, workers: bool = True, options: dict[str, str] | None = None
) -> argparse.Namespace:
    """Parse a protocol script's command line and turn its log on.

    ``--config`` (default: ``config.yaml`` in ``here``), for scripts that run in parallel
    ``--workers`` (default 2, the cores of the machine the results were measured on), and the
    script's own on/off ``options`` (flag -> help).
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--config", type=Path, default=here / "config.yaml")
    if workers:
        parser.add_argument("--workers", type=int, default=2)
    for flag, text in (options or {}).items():
        parser.add_argument(flag, action="store_true", help=text)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return args


def provenance(catalog=None, store_fingerprint: str | None = None) -> dict[str, object]:
    """What a study's results were measured with, written into its results file.

    The commit (and whether tracked files had uncommitted changes), the package version, and when
    given the catalog's fingerprint and size and the store's fingerprint: a figure can be traced
    to the code and catalog that produced it, and a catalog edit after a study shows as a
    different fingerprint rather than a silent change of its sample.
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
                cwd=Path(__file__).parent,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    out: dict[str, object] = {
        "commit": git("rev-parse", "HEAD") or "unknown (not a git checkout)",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "package_version": forecasting.__version__,
    }
    if catalog is not None:
        out |= {"catalog_events": len(catalog), "catalog_sha256": catalog.fingerprint()}
    if store_fingerprint is not None:
        out["store_fingerprint"] = store_fingerprint
    return out
