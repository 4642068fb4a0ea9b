"""Summaries of simulated draws: the mean and central intervals every interval of an effect,
a counterfactual or a decomposition is read from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecasting.frame import hi_col, lo_col


def summarise(draws: np.ndarray, level: Sequence[int], name: str) -> dict[str, np.ndarray]:
    """Mean and central intervals of draws along the first axis.

    Args:
        draws: array of shape (n, ...) of simulated values.
        level: interval levels in percent (checked by the caller).
        name: the column stem, e.g. ``effect`` gives ``effect``, ``effect_lo_80``, ….

    Returns:
        Column name → array of shape ``draws.shape[1:]``: the mean (the mean, not the median:
        on the count scale the two differ) and the ``(100 - l) / 2`` and ``(100 + l) / 2``
        percentiles.
    """
    return summarise_many({name: draws}, level)


def summarise_many(draws: dict[str, np.ndarray], level: Sequence[int]) -> dict[str, np.ndarray]:
    """:func:`summarise` for several arrays of draws with the same first axis, in one pass.

    One quantile computation over the arrays side by side costs about what one array does; on a
    counterfactual request that is most of the time saved.
    """
    n = next(iter(draws.values())).shape[0]
    shapes = {name: d.shape[1:] for name, d in draws.items()}
    flat = np.concatenate([d.reshape(n, -1) for d in draws.values()], axis=1)
    tails = [(100 - lv) / 200 for lv in level]
    qs = np.quantile(flat, [q for t in tails for q in (t, 1 - t)], axis=0)
    means = flat.mean(axis=0)
    out: dict[str, np.ndarray] = {}
    at = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        part = slice(at, at + size)
        out[name] = means[part].reshape(shape)
        for i, lv in enumerate(level):
            out[lo_col(lv, name)] = qs[2 * i, part].reshape(shape)
            out[hi_col(lv, name)] = qs[2 * i + 1, part].reshape(shape)
        at += size
    return out
