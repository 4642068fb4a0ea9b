"""Summaries of simulated draws."""

from __future__ import annotations

import numpy as np

from forecasting.draws import summarise


def test_summarise_gives_mean_and_central_intervals():
    draws = np.arange(1, 1002, dtype=float)[:, None]
    out = summarise(draws, [80], "effect")
    assert list(out) == ["effect", "effect_lo_80", "effect_hi_80"]
    assert (out["effect"][0], out["effect_lo_80"][0], out["effect_hi_80"][0]) == (501, 101, 901)
