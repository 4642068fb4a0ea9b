"""Reading the ``controls`` method's answer: the control series its weights note lists."""

from __future__ import annotations

from collections.abc import Sequence

WEIGHTS_NOTE = "controls: the counterfactual"
WEIGHTS = "weights (elasticities of log1p counts): "


def listed_controls(notes: Sequence[str]) -> list[str]:
    """The controls named in the answer's weights note, in its order."""
    note = next(n for n in notes if n.startswith(WEIGHTS_NOTE))
    return [part.split(" ")[0] for part in note.split(WEIGHTS)[1].split("; ")]
