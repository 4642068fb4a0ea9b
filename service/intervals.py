"""Interval columns as a declared list: ``[{level, lo, hi}]`` beside the ``lo_<L>`` / ``hi_<L>``
keys (``<quantity>_lo_<L>`` in counterfactual rows), which stay for clients that read them."""

from __future__ import annotations

from collections.abc import Sequence


def intervals(row: dict, levels: Sequence[int], name: str = "") -> list[dict]:
    """``row``'s intervals of ``name`` (the row's own ``lo_<L>`` / ``hi_<L>`` when empty)."""
    prefix = f"{name}_" if name else ""
    return [
        {"level": lv, "lo": row.get(f"{prefix}lo_{lv}"), "hi": row.get(f"{prefix}hi_{lv}")}
        for lv in levels
    ]
