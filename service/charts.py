"""Fan charts as PNG, drawn one at a time (matplotlib's font cache is shared between threads)."""

from __future__ import annotations

import threading

import pandas as pd

import forecasting.counterfactual as cf
from forecasting.frame import COUNTERFACTUAL, DS, MEAN, REFERENCE, hi_col, lo_col
from forecasting.plots import fan_chart
from service.served import Served

_DRAW = threading.Lock()


def _events(served: Served, key: str) -> list[tuple[pd.Timestamp, str]]:
    return [
        (pd.Timestamp(e.start).to_period("M").to_timestamp(), e.id)
        for e in served.bundle.catalog.in_scope(key)
    ]


def forecast_png(served: Served, key: str, h: int, level: list[int]) -> bytes:
    model = served.bundle.model_label(key)
    frame = served.forecast_frame(key, h, level)
    as_of = f"{served.bundle.as_of(key):%Y-%m}"
    title = f"{key}: {model} forecast from {as_of} (model version {served.version})"
    with _DRAW:
        return fan_chart(
            served.bundle.history(key),
            [(f"{model} forecast", frame)],
            level,
            _events(served, key),
            title=title,
        )


def _quantity(frame: pd.DataFrame, name: str, level: list[int]) -> pd.DataFrame:
    out = {DS: frame[DS], MEAN: frame[name]}
    for lv in level:
        out[lo_col(lv)] = frame[lo_col(lv, name)]
        out[hi_col(lv)] = frame[hi_col(lv, name)]
    return pd.DataFrame(out)


def counterfactual_png(served: Served, result: cf.CounterfactualResult) -> bytes:
    entry = served.entry(result.series)
    level = list(result.level)
    paths = [
        ("reference", _quantity(result.frame, REFERENCE, level)),
        (
            f"counterfactual: {cf.describe_scenario(result.scenario)}"[:90],
            _quantity(result.frame, COUNTERFACTUAL, level),
        ),
    ]
    title = f"{result.series}: counterfactual ({result.method}, model version {served.version})"
    with _DRAW:
        return fan_chart(entry.y, paths, level, _events(served, result.series), title=title)
