"""The splits the data define among served series, and the fitted hierarchy that holds them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from forecasting.hierarchy.shares import ChildModel

OBSERVED, NOWCAST, FORECAST = "observed", "nowcast", "forecast"
KIND = "kind"
#: The value of a derived child: everything of its dimension the panel does not serve.
UNLISTED = "unlisted"
#: Breakdown dimensions (top-down) and the component parents (bottom-up) the data define.
BREAKDOWNS = ("sector", "citizenship", "family")
COMPONENT_SUMS = {"cbp": ("usbp", "ofo")}
#: Origins per step whose share errors calibrate a child's intervals (regimes change).
CALIBRATION_ORIGINS = 36


@dataclass(frozen=True)
class Split:
    """A parent and the children that add up to it.

    Attributes:
        parent: the parent key.
        children: the children's keys, the derived residual (if any) last.
        method: ``"shares"`` (top-down from the parent) or ``"sum"`` (bottom-up).
        residual: the derived child's key (parent minus the others), or ``None``.
    """

    parent: str
    children: tuple[str, ...]
    method: str
    residual: str | None = None


def find_splits(served: Sequence[str], known: Sequence[str]) -> list[Split]:
    """The splits among ``served`` keys that the data define.

    Args:
        served: the keys the experiment serves.
        known: every key the store holds (decides whether a breakdown is complete).

    Returns:
        One ``shares`` split per served parent and breakdown dimension with served children
        (a residual ``<parent>/<dimension>=unlisted`` when the store holds values the panel does
        not serve), and one ``sum`` split per component parent whose components are all served.
    """
    served_set, splits = set(served), []
    for parent in sorted(k for k in served_set if k.count("/") == 1):
        for dim in BREAKDOWNS:
            prefix = f"{parent}/{dim}="
            children = sorted(k for k in served_set if k.startswith(prefix))
            if not children:
                continue
            complete = set(children) == {k for k in known if k.startswith(prefix)}
            residual = None if complete else f"{prefix}{UNLISTED}"
            members = (*children, residual) if residual else tuple(children)
            splits.append(Split(parent, members, "shares", residual))
        region, component = parent.split("/")
        parts = tuple(f"{region}/{c}" for c in COMPONENT_SUMS.get(component, ()))
        if parts and served_set.issuperset(parts):
            splits.append(Split(parent, parts, "sum"))
    return splits


def dimension(key: str) -> str:
    """The breakdown dimension of a child key (``sector`` for ``.../sector=yuma``)."""
    return key.rsplit("/", 1)[-1].split("=", 1)[0]


@dataclass
class Hierarchy:
    """The splits of a trained panel, with each breakdown child's share model.

    Attributes:
        splits: the splits (:func:`find_splits`).
        children: per breakdown child, its :class:`ChildModel` (residuals included).
        covariates: per parent, the covariates' log shares over their observed months.
    """

    splits: list[Split]
    children: dict[str, ChildModel] = field(default_factory=dict)
    covariates: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def derived(self) -> list[str]:
        """The residual keys the hierarchy derives."""
        return [s.residual for s in self.splits if s.residual]

    @property
    def reconciled(self) -> set[str]:
        """The keys whose served means come from their splits, not their own model."""
        shares = {c for s in self.splits if s.method == "shares" for c in s.children}
        return shares | {s.parent for s in self.splits if s.method == "sum"}

    def as_of(self, key: str, last: Mapping[str, pd.Timestamp]) -> pd.Timestamp:
        """The newest month of any series connected to ``key`` through the splits."""
        tree = self._tree(key)
        return max(last[k] for k in tree if k in last)

    def _tree(self, key: str) -> set[str]:
        tree, grew = {key}, True
        while grew:
            grew = False
            for s in self.splits:
                members = {s.parent, *s.children}
                if members & tree and not members <= tree:
                    tree |= members
                    grew = True
        return tree
