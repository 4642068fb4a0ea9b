"""Experiments and benchmarks: each folder holds a protocol, its script and its results."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

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
