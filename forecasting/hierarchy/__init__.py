"""One coherent panel at the edge the data reach: nowcasts of stale children and top-down
forecasts from the freshest parent.

The agencies publish the same months in several layouts that end in different months: the
southwest Border Patrol total, its family statuses and four citizenship groupings run months past
the sector and full-citizenship workbook. A hierarchy's **as-of month** is the newest month any of
its series has; every series is served over the same months after it, and a child whose data end
earlier is **nowcast** over the months in between, from what is known:

- A *breakdown* split (``southwest/usbp`` into sectors, citizenships or family statuses, plus a
  derived ``unlisted`` residual when the panel does not serve every value) is top-down. Each child
  has a share model: its ``log`` share of the parent at its last observed month, moved by the
  change since then in the shares of *covariates* (fresh series of the same parent, e.g. Mexican
  citizenship, whose shift shows where crossings moved) through a ridge regression of past share
  changes on theirs. In a month where the parent is observed, the children not observed share
  what their observed siblings leave of it, in proportion to their share forecasts; after the
  as-of month they share the parent's forecast mean the same way, a child as fresh as the parent
  in proportion to its own model's forecast (forecast proportions). The children's means add up
  to the parent in every month.
- A *component* split (``southwest/cbp`` = ``usbp`` + ``ofo``, all observed to the as-of month) is
  bottom-up: the parent's mean is the sum of its children's.

Intervals are multiplicative on the ``log1p`` scale, like every served interval: a stale child's
half-width is the conformal quantile of its share model's errors at that many months since its
last observation (:class:`~forecasting.calibration.Calibrator` with ``step`` = months since the
last observation, fitted on a backtest with the parent known), combined with the parent's
half-width after the as-of month as ``sqrt(w_parent ** 2 + w_share ** 2)``; a fresh child and a
bottom-up parent keep their own models' half-widths around the reconciled mean.

Nixtla's ``hierarchicalforecast`` reconciles base forecasts made at one common cutoff (bottom-up,
top-down, MinT from in-sample residuals). Here the children's data end up to nine months before
the parent's, so their own forecasts answer a question the parent has already answered; the
information sits in the observed parent, which a conditional nowcast uses and a reconciliation of
stale base forecasts cannot. The top-down with forecast proportions it offers is what fresh
children get here; the share models replace base forecasts where a child is stale.
"""

from forecasting.hierarchy.reconcile import reconcile
from forecasting.hierarchy.shares import (
    ChildModel,
    ShareConfig,
    ShareModel,
    fit_hierarchy,
    share_means,
    share_nowcast,
    split_backtest,
    with_residuals,
)
from forecasting.hierarchy.splits import (
    FORECAST,
    KIND,
    NOWCAST,
    OBSERVED,
    UNLISTED,
    Hierarchy,
    Split,
    dimension,
    find_splits,
)

__all__ = [
    "FORECAST",
    "KIND",
    "NOWCAST",
    "OBSERVED",
    "UNLISTED",
    "ChildModel",
    "Hierarchy",
    "ShareConfig",
    "ShareModel",
    "Split",
    "dimension",
    "find_splits",
    "fit_hierarchy",
    "reconcile",
    "share_means",
    "share_nowcast",
    "split_backtest",
    "with_residuals",
]
