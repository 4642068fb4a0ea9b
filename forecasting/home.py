"""Where the project keeps its state: ``$ENCOUNTERS_HOME``, default ``./.encounters``."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "ENCOUNTERS_HOME"
DEFAULT_HOME = ".encounters"


def encounters_home() -> Path:
    """The data home: observation store, MLflow store, user catalog; read on each call."""
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME).expanduser().resolve()
