"""Leading indicators: one global model pooled across series, direct per horizon, shrunk toward
the last value.

For each months-ahead step ``k`` a ridge regression without intercept predicts the change
``z[t+k] - z[t]`` of ``z = log1p(y)`` from features that are changes too, so rows of every series
in the pool stack into one regression (a pooled, "global" model) and all-zero features forecast
the last value:

- the series' own momentum: ``z[t] - z[t-1]`` and ``z[t] - z[t-3]``;
- per indicator slot (Darién transits, Honduras's irregular entries, Mexico's presentations), with
  ``a = log1p`` of the indicator as public at ``t`` (its value ``lag`` months earlier): its
  changes ``a[t] - a[t-1]`` and ``a[t] - a[t-3]``, and the gap ``a[t] - z[t]`` less its mean over
  the twelve months before (people upstream against those arriving, compared with usual).

A slot whose indicator does not lead the series, or has no public month yet, is all zero: the
model then rests on the series' momentum and, with every feature zero, on the last value. The
forecast moves from the last value by ``shrink`` times the regression's change.

At a cutoff the pool is cut to what was known then: every series up to the cutoff, and each
indicator up to ``cutoff - lag`` (:data:`forecasting.data.indicators.PUBLICATION_LAGS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from forecasting.data.indicators import publication_lag, un_region
from forecasting.frame import DS, UNIQUE_ID, Y
from forecasting.models.base import Capability, Forecaster
from forecasting.models.predictive import multiplicative_frame

#: Indicator slots and the indicator each reads (its total, or a citizenship's breakdown).
SLOTS = {
    "darien": "panama/darien/transits",
    "honduras": "honduras/inm/irregular-entries",
    "mexico": "mexico/inm/presented",
}
#: Central Americans cross neither Darién nor (as irregular entrants) Honduras; for them the
#: Honduras slot reads the total flow through Central America instead.
CENTRAL_AMERICA = "Central America"
OWN_FEATURES = ["own_d1", "own_d3"]
SLOT_FEATURES = ["d1", "d3", "gap"]
FEATURES = OWN_FEATURES + [f"{slot}_{f}" for slot in SLOTS for f in SLOT_FEATURES]
GAP_WINDOW = 12
#: Rows whose count is under this are left out of the fit: counts rounded to tens make their
#: log changes noise.
MIN_COUNT = 100
MAX_H = 12


def leads_for(key: str, available: set[str]) -> dict[str, str]:
    """The indicator each slot reads for series ``key``, among the ``available`` keys.

    Totals, sectors and family series read each indicator's total. A citizenship reads its own
    breakdown where the indicator has one (Darién for South Americans, Caribbeans and
    extra-continentals; Honduras the same; Mexico's presentations for all but Mexicans, who
    read the total); Central Americans read no Darién and Honduras's total.
    """
    citizenship = key.split("citizenship=", 1)[1] if "citizenship=" in key else None
    central = citizenship is not None and un_region(citizenship) == CENTRAL_AMERICA
    out = {}
    for slot, total in SLOTS.items():
        own = f"{total}/citizenship={citizenship}"
        if citizenship is None:
            chosen = total
        elif slot == "darien":
            chosen = None if central else own
        elif slot == "honduras":
            chosen = total if central else own
        else:
            chosen = own if own in available else total
        if chosen in available:
            out[slot] = chosen
    return out


@dataclass(frozen=True)
class IndicatorPool:
    """The series one global model is fitted across, and the indicators each reads.

    Attributes:
        targets: series key -> monthly counts (month-start index), e.g. an experiment's series.
        indicators: indicator key -> monthly counts as published (not lagged).
        leads: series key -> slot -> indicator key (see :func:`leads_for`).
    """

    targets: Mapping[str, pd.Series]
    indicators: Mapping[str, pd.Series]
    leads: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_panel(cls, panel: pd.DataFrame, targets: Mapping[str, pd.Series]) -> IndicatorPool:
        """The pool of ``targets`` with the indicators of a long panel (``unique_id, ds, y``)."""
        from forecasting.data.indicators import is_indicator

        rows = panel[panel[UNIQUE_ID].map(is_indicator)]
        available = set(rows[UNIQUE_ID])
        leads = {key: leads_for(key, available) for key in targets}
        wanted = {k for slots in leads.values() for k in slots.values()}
        indicators = {
            key: pd.Series(g[Y].to_numpy(float), index=pd.DatetimeIndex(g[DS], name=DS)).asfreq(
                "MS"
            )
            for key, g in rows[rows[UNIQUE_ID].isin(wanted)].groupby(UNIQUE_ID)
        }
        return cls(dict(targets), indicators, leads)

    def public(self, key: str, cutoff: pd.Timestamp, index: pd.DatetimeIndex) -> pd.Series:
        """``log1p`` of an indicator as public at each month of ``index`` (NaN where none was),
        using no month after ``cutoff - lag``."""
        lag = publication_lag(key)
        known = self.indicators[key].loc[: cutoff - pd.DateOffset(months=lag)]
        shifted = np.log1p(known).shift(lag, freq="MS")
        return shifted.reindex(index)


def features(z: pd.Series, slots: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Feature rows (one per month of ``z``) from ``log1p`` counts and the slots' public
    ``log1p`` indicators on the same index; missing values are 0."""
    cols = {"own_d1": z - z.shift(1), "own_d3": z - z.shift(3)}
    for slot in SLOTS:
        a = slots.get(slot)
        if a is None:
            continue
        gap = a - z
        cols[f"{slot}_d1"] = a - a.shift(1)
        cols[f"{slot}_d3"] = a - a.shift(3)
        cols[f"{slot}_gap"] = gap - gap.rolling(GAP_WINDOW, min_periods=6).mean().shift(1)
    out = pd.DataFrame(cols, index=z.index).reindex(columns=FEATURES)
    return out.replace([np.inf, -np.inf], np.nan).fillna(0.0)


class LeadingIndicators(Forecaster):
    """A global ridge regression per months-ahead on the series' and its indicators' changes.

    Args:
        pool: the series and indicators to fit across (:class:`IndicatorPool`); ``None`` fits on
            the series alone, with no indicators (its momentum only).
        series: the key of the series this model forecasts within ``pool``.
        alpha: ridge penalty per training row (the penalty is ``alpha * rows``).
        shrink: the share of the regression's change the forecast takes, in [0, 1]; 0 is the
            last value.
        window_months: training rows are the origins of this many months before the cutoff.

    Attributes set by :meth:`fit` (besides the base ones):
        coef_: (12, n_features) ridge coefficients per months-ahead.
        sd_: (12,) residual sd of the change per months-ahead, ``log1p`` scale.
    """

    declared = frozenset({Capability.POOLED})
    min_obs: ClassVar[int] = 4

    def __init__(
        self,
        pool: IndicatorPool | None = None,
        series: str | None = None,
        alpha: float = 0.5,
        shrink: float = 1.0,
        window_months: int = 120,
    ):
        self.pool = pool
        self.series = series
        self.alpha = alpha
        self.shrink = shrink
        self.window_months = window_months

    def _check_params(self) -> None:
        if self.pool is not None and not isinstance(self.pool, IndicatorPool):
            raise ValueError(f"pool must be an IndicatorPool or None; got {type(self.pool)}")
        if not (isinstance(self.alpha, int | float) and self.alpha >= 0):
            raise ValueError(f"alpha must be a number >= 0; got {self.alpha!r}")
        if not (isinstance(self.shrink, int | float) and 0 <= self.shrink <= 1):
            raise ValueError(f"shrink must be a number in [0, 1]; got {self.shrink!r}")
        w = self.window_months
        if isinstance(w, bool) or not isinstance(w, int) or w < 12:
            raise ValueError(f"window_months must be an integer >= 12; got {w!r}")

    def _rows(self, key: str, y: pd.Series, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
        """Feature rows of one series known at ``cutoff`` and its ``log1p`` counts."""
        z = np.log1p(y.loc[:cutoff])
        pool = self.pool
        slots = {}
        if pool is not None:
            for slot, indicator in pool.leads.get(key, {}).items():
                slots[slot] = pool.public(indicator, cutoff, z.index)
        return features(z, slots), z

    def _design(self, y: pd.Series, cutoff: pd.Timestamp):
        """Stacked features, targets (rows x 12, NaN where unknown) and which rows are ours."""
        targets = {self.series: y}
        if self.pool is not None and self.series in self.pool.targets:
            targets = {**self.pool.targets, self.series: y}
        start = cutoff - pd.DateOffset(months=self.window_months)
        X, T, own = [], [], []
        for key, series in targets.items():
            F, z = self._rows(key, series, cutoff)
            ahead = np.column_stack([(z.shift(-k) - z).to_numpy() for k in range(1, MAX_H + 1)])
            keep = ((F.index >= start) & (np.expm1(z) >= MIN_COUNT)).to_numpy()
            X.append(F.to_numpy()[keep])
            T.append(ahead[keep])
            own.append(np.full(keep.sum(), key == self.series))
        return np.vstack(X), np.vstack(T), np.concatenate(own)

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        cutoff = y.index[-1]
        features_, targets, own = self._design(y, cutoff)
        p = features_.shape[1]
        self.coef_ = np.zeros((MAX_H, p))
        self.sd_ = np.zeros(MAX_H)
        fallback = float(np.sqrt(np.mean(np.diff(np.log1p(y.to_numpy())) ** 2)))
        for k in range(MAX_H):
            known = np.isfinite(targets[:, k])
            A, b = features_[known], targets[known, k]
            if len(b) > p:
                gram = A.T @ A + self.alpha * len(b) * np.eye(p)
                self.coef_[k] = np.linalg.solve(gram, A.T @ b)
            resid = b - A @ (self.shrink * self.coef_[k])
            mine = resid[own[known]]
            spread = mine if len(mine) >= 6 else resid
            self.sd_[k] = float(np.sqrt(np.mean(spread**2))) if len(spread) else fallback
        last = self._rows(self.series, y, cutoff)[0].iloc[-1].to_numpy()
        self.z_last_ = float(np.log1p(y.iloc[-1]))
        self.change_ = self.shrink * (self.coef_ @ last)

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        steps = np.minimum(np.arange(h), MAX_H - 1)
        # Beyond twelve months the twelfth month's change holds and its spread grows as sqrt(h).
        widen = np.sqrt(np.maximum(np.arange(1, h + 1) / MAX_H, 1.0))
        point = np.expm1(self.z_last_ + self.change_[steps])
        return multiplicative_frame(point, self.sd_[steps] * widen, level)
