"""How reliable the exceedance probabilities are: P(a month's count is above T).

``/v1/forecast?threshold=`` answers "how likely is a month above T"; the benchmark asks it of
every model at every (series, origin, month) with T the count of the origin's own month times
0.8, 1 and 1.25 ("still above a fifth less than now?", "higher than now?", "a quarter higher?").
Each model's probability comes
from its own interval bounds the way the service derives one for a family without sample paths:
a lognormal through neighbouring bounds (:func:`service.exceedance.lognormal_exceedance`), so the
project's probabilities come from its calibrated intervals. Scored by the Brier score (a proper
score; 0.25 is a constant 50 %), beside a reliability table of the project's probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.frame import CUTOFF, DS, UNIQUE_ID, Y, forecast_columns
from service.exceedance import lognormal_exceedance

PROBABILITY = "p_above"
ABOVE = "above"
#: The thresholds, as multiples of the origin month's count.
MULTIPLES = (0.8, 1.0, 1.25)
#: Bins of predicted probability in the reliability table.
BINS = np.linspace(0, 1, 11)


def probabilities(forecasts: pd.DataFrame, panel: pd.DataFrame, level: list[int]) -> pd.DataFrame:
    """Per forecast row with an actual: P(y > the origin month's count) and whether it was."""
    observed = panel.set_index([UNIQUE_ID, DS])[Y]
    data = forecasts.drop(columns=[Y], errors="ignore").join(observed, on=[UNIQUE_ID, DS])
    data = data.dropna(subset=[Y])
    now = observed.rename("origin_value")
    data = data.join(now, on=[UNIQUE_ID, CUTOFF]).dropna(subset=["origin_value"])
    # Gaussian intervals of peers on raw counts reach below zero, where no count lies.
    bounds = forecast_columns(level)
    data[bounds] = data[bounds].clip(lower=0)
    parts = []
    for _, rows in data.groupby(["model", UNIQUE_ID, CUTOFF], sort=False):
        thresholds = float(rows["origin_value"].iloc[0]) * np.array(MULTIPLES)
        p = lognormal_exceedance(rows.reset_index(drop=True), level, thresholds)
        above = rows[Y].to_numpy()[:, None] > thresholds[None, :]
        for j, multiple in enumerate(MULTIPLES):
            parts.append(
                rows[["model", UNIQUE_ID, CUTOFF, DS]].assign(
                    multiple=multiple, **{PROBABILITY: p[:, j], ABOVE: above[:, j].astype(float)}
                )
            )
    return pd.concat(parts, ignore_index=True)


def brier(found: pd.DataFrame) -> pd.DataFrame:
    """Per model: the Brier score over every (series, origin, month, threshold) and per
    threshold, with the mean probability beside the observed frequency."""
    found = found.assign(sq=(found[PROBABILITY] - found[ABOVE]) ** 2)
    table = found.groupby("model").agg(
        rows=("sq", "size"),
        brier=("sq", "mean"),
        mean_p=(PROBABILITY, "mean"),
        observed=(ABOVE, "mean"),
    )
    by_multiple = found.pivot_table(index="model", columns="multiple", values="sq", aggfunc="mean")
    by_multiple.columns = [f"brier_x{m:g}" for m in by_multiple.columns]
    return table.join(by_multiple).sort_values("brier")


def reliability(found: pd.DataFrame, model: str) -> pd.DataFrame:
    """``model``'s probabilities in bins of 0.1: how many, their mean, how often it happened."""
    rows = found[found["model"] == model]
    bins = pd.cut(rows[PROBABILITY], BINS, include_lowest=True)
    table = rows.groupby(bins, observed=True).agg(
        rows=(ABOVE, "size"), mean_p=(PROBABILITY, "mean"), observed=(ABOVE, "mean")
    )
    table.index = [f"{max(b.left, 0):.1f}-{b.right:.1f}" for b in table.index]
    return table.rename_axis("p_bin")
