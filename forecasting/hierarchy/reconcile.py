"""Served frames for every series of a fitted hierarchy: nowcasts, then coherent forecasts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.calibration import bands
from forecasting.errors import DataError
from forecasting.frame import DS, MEAN, hi_col, months_between
from forecasting.hierarchy.shares import _log_paths, _log_share, share_means
from forecasting.hierarchy.splits import FORECAST, KIND, NOWCAST, Hierarchy, Split, dimension


def _half_widths(frame: pd.DataFrame, levels: Sequence[int]) -> pd.DataFrame:
    """A served frame's half-widths on the ``log1p`` scale, per level (columns)."""
    centre = np.log1p(frame[MEAN].to_numpy(dtype=float))
    return pd.DataFrame(
        {lv: np.log1p(frame[hi_col(lv)].to_numpy(dtype=float)) - centre for lv in levels},
        index=frame.index,
    )


def _served(
    months: pd.DatetimeIndex, mean: np.ndarray, widths: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    kind = np.where(months <= as_of, NOWCAST, FORECAST)
    out = pd.DataFrame({DS: months, KIND: kind, MEAN: mean})
    return pd.concat([out, bands(mean, widths.reset_index(drop=True))], axis=1)


def _value(history: pd.Series, frame: pd.DataFrame) -> pd.Series:
    """Observed counts, then a served frame's means after them."""
    return pd.concat([history, frame.set_index(DS)[MEAN]])


def _zero_widths(months: pd.DatetimeIndex, levels: Sequence[int]) -> pd.DataFrame:
    return pd.DataFrame(0.0, index=months, columns=list(levels))


@dataclass
class _Panel:
    """One reconciliation's inputs and what it has settled so far."""

    history: dict[str, pd.Series]
    frames: Mapping[str, pd.DataFrame]
    last: dict[str, pd.Timestamp]
    levels: list[int]
    max_h: int
    out: dict[str, pd.DataFrame] = field(default_factory=dict)


def reconcile(
    hierarchy: Hierarchy,
    frames: Mapping[str, pd.DataFrame],
    history: Mapping[str, pd.Series],
    levels: Sequence[int],
    max_h: int,
) -> dict[str, pd.DataFrame]:
    """Every key's served frame: its nowcast months, then ``max_h`` months after its as-of month.

    Args:
        hierarchy: the fitted hierarchy.
        frames: each served key's calibrated forecast from its own last month (``ds``, ``mean``,
            ``lo_<l>``, ``hi_<l>``), reaching ``max_h`` months past its as-of month.
        history: each served key's observed counts.
        levels: the interval levels of ``frames``.
        max_h: months served after the as-of month.

    Returns:
        Per key, served and derived: ``ds``, ``kind`` (``nowcast`` up to the as-of month, then
        ``forecast``), ``mean``, ``lo_<l>``, ``hi_<l>``.
    """
    history = {**history, **{c: m.y for c, m in hierarchy.children.items()}}
    last = {k: v.index[-1] for k, v in history.items()}
    panel = _Panel(history, frames, last, list(levels), max_h)
    for key, frame in frames.items():
        if key not in hierarchy.reconciled:
            panel.out[key] = _own(hierarchy, panel, key, frame)
    pending = list(hierarchy.splits)
    while pending:
        ready = [s for s in pending if _inputs(s) <= set(panel.out)]
        if not ready:
            raise DataError(f"the splits {pending} depend on each other in a circle")
        for split in ready:
            if split.method == "shares":
                panel.out.update(_top_down(hierarchy, panel, split))
            else:
                panel.out[split.parent] = _bottom_up(hierarchy, panel, split, frames[split.parent])
            pending.remove(split)
    return panel.out


def _inputs(split: Split) -> set[str]:
    return {split.parent} if split.method == "shares" else set(split.children)


def _own(hierarchy: Hierarchy, panel: _Panel, key: str, frame: pd.DataFrame) -> pd.DataFrame:
    as_of = hierarchy.as_of(key, panel.last)
    rows = frame[frame[DS] <= as_of + pd.DateOffset(months=panel.max_h)].reset_index(drop=True)
    rows.insert(1, KIND, np.where(rows[DS] <= as_of, NOWCAST, FORECAST))
    return rows


def _top_down(hierarchy: Hierarchy, panel: _Panel, split: Split) -> dict[str, pd.DataFrame]:
    parent, children = split.parent, split.children
    as_of = hierarchy.as_of(parent, panel.last)
    start = min(panel.last[c] for c in children) + pd.offsets.MonthBegin(1)
    months = pd.date_range(start, as_of + pd.DateOffset(months=panel.max_h), freq="MS")
    parent_frame = panel.out[parent]
    value = _value(panel.history[parent], parent_frame)
    parent_widths = _half_widths(parent_frame.set_index(DS), panel.levels)
    parent_widths = parent_widths.reindex(months).fillna(0.0)
    models = {c: hierarchy.children[c].share for c in children}
    covariates = hierarchy.covariates[f"{parent}/{dimension(children[0])}"]
    logs = _log_paths(models, covariates, months)
    # A child as fresh as the parent keeps its own model's forecast as its share of the
    # parent's (forecast proportions); the others' shares come from their share models.
    fresh = [c for c in children if panel.last[c] == as_of and c in panel.frames]
    after = months > as_of
    for c in fresh:
        own = panel.frames[c].set_index(DS)[MEAN].reindex(months[after])
        logs.loc[after, c] = _log_share(own, value.reindex(months[after])).to_numpy()
    means = share_means(children, value, {c: panel.history[c] for c in children}, logs)
    out = {}
    for c in children:
        rows = means.index[means.index > panel.last[c]]
        if c in fresh:
            widths = _half_widths(panel.frames[c].set_index(DS), panel.levels).loc[rows]
        else:
            gaps = np.array([months_between(panel.last[c], t) for t in rows])
            calibrator = hierarchy.children[c].calibrator
            # A share is no surer further from its last observation: widths never shrink.
            share_widths = (
                calibrator.half_widths(gaps).set_axis(rows).cummax()
                if calibrator is not None
                else _zero_widths(rows, panel.levels)
            )
            widths = np.sqrt(parent_widths.loc[rows] ** 2 + share_widths[panel.levels] ** 2)
        out[c] = _served(rows, means.loc[rows, c].to_numpy(), widths, as_of)
    return out


def _bottom_up(
    hierarchy: Hierarchy, panel: _Panel, split: Split, own: pd.DataFrame
) -> pd.DataFrame:
    as_of = hierarchy.as_of(split.parent, panel.last)
    rows = own[own[DS] <= as_of + pd.DateOffset(months=panel.max_h)].set_index(DS)
    total = sum(_value(panel.history[c], panel.out[c]).reindex(rows.index) for c in split.children)
    widths = _half_widths(rows, panel.levels)
    return _served(rows.index, total.to_numpy(dtype=float), widths, as_of)
