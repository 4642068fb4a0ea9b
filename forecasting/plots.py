"""Charts as PNG bytes: fan charts with history and event markers, and error by horizon.

Figures are built with matplotlib's object API (no pyplot state), so they are safe to draw from
worker threads of the service as well as from training.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from forecasting.frame import DS, MEAN, hi_col, lo_col
from forecasting.hierarchy import KIND, NOWCAST

HISTORY_MONTHS = 72
_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _mark_events(ax, events: Sequence[tuple[pd.Timestamp, str]], start, end) -> None:
    """A dotted line and a vertical label at each event starting between ``start`` and ``end``."""
    for when, label in events:
        if start <= when <= end:
            ax.axvline(when, color="grey", ls=":", lw=1)
            ax.annotate(
                label,
                (when, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                va="top",
                ha="right",
                color="dimgrey",
            )


def fan_chart(
    history: pd.Series,
    paths: Sequence[tuple[str, pd.DataFrame]],
    level: Sequence[int],
    events: Sequence[tuple[pd.Timestamp, str]] = (),
    title: str = "",
    history_months: int = HISTORY_MONTHS,
) -> bytes:
    """History, one or more forecast paths with interval bands, and vertical event markers.

    Args:
        history: observed counts on a month-start index.
        paths: (label, frame) pairs; each frame has ``ds``, ``mean`` and ``lo_<l>``/``hi_<l>``,
            and optionally ``kind``: its ``nowcast`` months are shaded.
        level: the interval levels to shade, widest lightest.
        events: (start month, label) of interventions to mark inside the plotted range.
        title: the chart's title.
        history_months: how much history to show.
    """
    fig = Figure(figsize=(9, 4.2))
    ax = fig.add_subplot()
    shown = history.iloc[-history_months:]
    ax.plot(shown.index, shown.to_numpy(), color="black", lw=1.4, label="observed")
    colours = ["tab:blue", "tab:red", "tab:green", "tab:purple"]
    for (label, frame), colour in zip(paths, colours, strict=False):
        for lv in sorted(level, reverse=True):
            ax.fill_between(
                frame[DS],
                frame[lo_col(lv)],
                frame[hi_col(lv)],
                color=colour,
                alpha=0.12 + 0.1 * (lv < max(level)),
                lw=0,
            )
        ax.plot(frame[DS], frame[MEAN], color=colour, lw=1.6, label=label)
    nowcast = [f.loc[f[KIND] == NOWCAST, DS] for _, f in paths if KIND in f.columns]
    nowcast = [months for months in nowcast if len(months)]
    if nowcast:
        first, last = min(m.min() for m in nowcast), max(m.max() for m in nowcast)
        ax.axvspan(first, last, color="gold", alpha=0.15, lw=0, label="nowcast months")
    end = max([shown.index[-1], *[f[DS].max() for _, f in paths]])
    _mark_events(ax, events, shown.index[0], end)
    ax.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def error_by_horizon(by_step: pd.DataFrame, metric: str = "mase", title: str = "") -> bytes:
    """A backtest metric against months ahead (``by_step`` is indexed by step)."""
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    ax.plot(by_step.index, by_step[metric], marker="o", lw=1.4)
    ax.set_xlabel("months ahead")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)
