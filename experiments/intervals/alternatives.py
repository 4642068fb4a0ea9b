"""Two calibrations beside the pooled family of ``run.py`` (issue 15's list of things to try):

- **signed quantiles per step**: the chosen pooled variant's volatility-scaled errors, but with
  the lower and upper bounds taken from the signed errors' own conformal quantiles at
  ``(1 - l) / 2`` and ``(1 + l) / 2`` instead of one quantile of the absolute errors: a quantile
  model per horizon, which lets a band lean towards the side the series has erred on (the
  collapses of 2020 and 2024 against the surges of 2021-2023);
- **statsforecast's conformal intervals** (``ConformalIntervals``, a maintained library): its
  ``Naive`` on ``log1p`` counts (the same point forecast as the project's ``naive``
  candidate), each series calibrated on its own last ``n_windows`` cross-validation windows of
  12 months at each origin, back-transformed with ``expm1``.

Both use only what is known at each origin. Their rows have the layout of ``run.py``'s
calibrated backtests, so every table of ``run.py`` scores them beside the others.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.calibration import well_formed
from forecasting.errors import DataError
from forecasting.frame import CUTOFF, DS, MEAN, STEP, UNIQUE_ID, Y, hi_col, lo_col
from forecasting.pooled_calibration import SCALED, PooledCalibrator, step_quantiles

#: The months each statsforecast cross-validation window holds: the benchmark's horizon.
CONFORMAL_H = 12


def signed_pooled(
    frames: Mapping[str, pd.DataFrame],
    histories: Mapping[str, pd.Series],
    level: Sequence[int],
    calibrator: PooledCalibrator,
) -> dict[str, pd.DataFrame]:
    """Each origin's rows with bounds from the signed scaled errors' conformal quantiles per step,
    as known at its cutoff; each side made non-decreasing over the steps and nested over the
    levels, and never on the wrong side of the mean."""
    rows = calibrator.scored_rows(frames, histories)
    steps = np.sort(rows[STEP].unique())
    scales = {k: calibrator.scale(histories[k]) for k in frames}
    issued: dict[str, list[pd.DataFrame]] = {k: [] for k in frames}
    origins = {k: dict(tuple(f.groupby(CUTOFF))) for k, f in frames.items()}
    for cutoff in sorted(set().union(*origins.values())):
        known = calibrator.known(rows, cutoff)
        try:
            up, down = _sides(known, steps, level)
        except DataError:
            continue
        for key, by_cutoff in origins.items():
            now = by_cutoff.get(cutoff)
            if now is None:
                continue
            scale = float(scales[key].loc[cutoff])
            centre = np.log1p(now[MEAN].to_numpy(dtype=float))
            out = now.copy()
            at = now[STEP].to_numpy()
            for lv in level:
                out[lo_col(lv)] = np.clip(
                    np.expm1(centre - down[lv].reindex(at).to_numpy() * scale), 0, None
                )
                out[hi_col(lv)] = np.expm1(centre + up[lv].reindex(at).to_numpy() * scale)
            issued[key].append(out)
    return {k: pd.concat(v, ignore_index=True) for k, v in issued.items() if v}


def _sides(
    known: pd.DataFrame, steps: np.ndarray, level: Sequence[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per step and level, how far above and below the mean (scaled log units, at least 0) the
    band reaches: the signed errors' conformal quantiles, pooled over neighbouring steps where
    too few, as the pooled calibration does."""
    signed = known[SCALED].to_numpy()
    fractions = {lv: (1 + lv / 100) / 2 for lv in level}
    up = step_quantiles(known, steps, fractions, signed).clip(lower=0)
    down = step_quantiles(known, steps, fractions, -signed).clip(lower=0)
    return well_formed(up), well_formed(down)


def statsforecast_conformal(
    histories: Mapping[str, pd.Series],
    cutoffs: Sequence[pd.Timestamp],
    level: Sequence[int],
    n_windows: int,
) -> dict[str, pd.DataFrame]:
    """statsforecast's ``Naive`` with ``ConformalIntervals(h=12, n_windows)`` on each series'
    ``log1p`` counts up to each cutoff, in the layout of a calibrated backtest (``cutoff``,
    ``ds``, ``step``, ``y``, ``mean``, bounds). A series with too few months at a cutoff for
    the windows is left out there."""
    from statsforecast import StatsForecast
    from statsforecast.models import Naive
    from statsforecast.utils import ConformalIntervals

    need = n_windows * CONFORMAL_H + 1
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in histories}
    for cutoff in cutoffs:
        known = {key: y.loc[:cutoff] for key, y in histories.items() if y.index[-1] >= cutoff}
        train = [
            pd.DataFrame({UNIQUE_ID: key, DS: y.index, Y: np.log1p(y)})
            for key, y in known.items()
            if len(y) >= need
        ]
        if not train:
            continue
        model = StatsForecast(models=[Naive()], freq="MS", n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = model.forecast(
                h=CONFORMAL_H,
                df=pd.concat(train, ignore_index=True),
                level=list(level),
                prediction_intervals=ConformalIntervals(h=CONFORMAL_H, n_windows=n_windows),
            )
        for key, rows in found.groupby(UNIQUE_ID):
            actual = histories[key].reindex(rows[DS]).to_numpy(dtype=float)
            frame = pd.DataFrame(
                {
                    CUTOFF: cutoff,
                    DS: rows[DS].to_numpy(),
                    STEP: np.arange(1, len(rows) + 1),
                    Y: actual,
                    MEAN: np.expm1(rows["Naive"].to_numpy()),
                }
            )
            for lv in level:
                frame[lo_col(lv)] = np.clip(np.expm1(rows[f"Naive-lo-{lv}"].to_numpy()), 0, None)
                frame[hi_col(lv)] = np.expm1(rows[f"Naive-hi-{lv}"].to_numpy())
            parts[key].append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items() if v}
