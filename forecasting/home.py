"""Where the project keeps its state: ``$ENCOUNTERS_HOME``, default ``./.encounters``."""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV_HOME = "ENCOUNTERS_HOME"
DEFAULT_HOME = ".encounters"


def encounters_home() -> Path:
    """The data home: observation store, MLflow store, user catalog; read on each call."""
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME).expanduser().resolve()


#: A background training's progress (``encounters up``), read by the service's ``/health``.
TRAINING_PROGRESS = "training.json"
#: Its states after which nothing more happens.
TRAINING_ENDED = ("promoted", "rejected", "up-to-date", "failed")


def read_training_progress(home: Path) -> dict | None:
    """The last background training's record in ``home``, or ``None`` (none, or unreadable)."""
    try:
        record = json.loads((home / TRAINING_PROGRESS).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
