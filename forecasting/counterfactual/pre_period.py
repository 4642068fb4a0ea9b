"""The ``pre_period`` method: the counterfactual as the forecast of the model fitted on the months
before the scenario first changes anything (CausalImpact's approach, for events too recent to have
a fitted effect)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecasting.counterfactual.result import Paths
from forecasting.errors import DataError, ScenarioError
from forecasting.interventions import Scenario

if TYPE_CHECKING:
    from forecasting.counterfactual.engine import CounterfactualEngine

#: A regressor value below this is treated as "not in force" in notes (decays never reach 0).
MATERIAL = 0.01


def months_before(
    y: pd.Series, first: pd.Timestamp, min_obs: int, method: str, family: str
) -> pd.Series:
    """``y`` before ``first``, the window a ``method`` fits on.

    Raises:
        DataError: fewer months than the model family needs.
    """
    y_pre = y.loc[: first - pd.offsets.MonthBegin(1)]
    if len(y_pre) < min_obs:
        raise DataError(
            f"{method} needs at least {min_obs} observed months before {first:%Y-%m} to fit "
            f"{family}; the series starts {y.index[0]:%Y-%m}"
        )
    return y_pre


class PrePeriod:
    """The :class:`~forecasting.counterfactual.CounterfactualEngine` methods of ``pre_period``."""

    def pre_period_engine(self, first_changed: pd.Timestamp) -> CounterfactualEngine:
        """The engine of a clone of the model fitted on the months before ``first_changed``.

        Fitted once per month and cached; its horizon reaches this engine's last month.

        Raises:
            DataError: too few months before ``first_changed`` for the model family.
        """
        if first_changed not in self._pre:
            y_pre = months_before(
                self.y, first_changed, self.model.min_obs, "pre_period", type(self.model).__name__
            )
            X_pre = self.X.loc[y_pre.index]
            model = self.model.clone().fit(y_pre, X_pre)
            horizon = len(self.months) - len(y_pre)
            self._pre[first_changed] = self._sibling(model, y_pre, X_pre, horizon)
        return self._pre[first_changed]

    def _first_change(
        self, scenario: Scenario, changed: np.ndarray, method: str
    ) -> tuple[int, pd.Timestamp]:
        """The position and month of the scenario's first change, checked for a method that
        forecasts from the months before it."""
        if scenario.add:
            raise ScenarioError(
                f"method {method} estimates an event's effect from the months after it; an "
                "added event has none. Use method regressor (with like or effect_pct)"
            )
        t0 = int(np.argmax(changed))
        first = self.months[t0]
        if t0 >= len(self.y):
            raise ScenarioError(
                f"method {method} needs observed months after the change, but the scenario "
                f"first changes {self.series_key} in {first:%Y-%m}, after the last observed "
                f"month {self.cutoff:%Y-%m}; use method regressor"
            )
        return t0, first

    def _pre_period(
        self,
        scenario: Scenario,
        delta: np.ndarray,
        changed: np.ndarray,
        rows: np.ndarray,
        notes: list[str],
    ) -> Paths:
        t0, first = self._first_change(scenario, changed, "pre_period")
        pre = self.pre_period_engine(first)
        paths = self._forecast_away(pre, delta, rows, t0)
        moved = (delta != 0).any(axis=0)
        self._pre_period_notes(first, pre, moved, rows, notes)
        return paths

    def _forecast_away(
        self,
        pre: CounterfactualEngine,
        delta: np.ndarray,
        rows: np.ndarray,
        t0: int,
    ) -> Paths:
        """Paths whose counterfactual from ``t0`` on is ``pre``'s forecast (``pre``: an engine
        fitted on the months before ``t0``) with the changed regressors removed."""
        columns = list(self.X_all.columns)
        moved = (delta != 0).any(axis=0)
        ref_x = self.X_all.to_numpy()
        # The share of each changed regressor removed per month; 1 for a removal, 1 - f for a
        # scaling, 0 where the scenario leaves the month alone.
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(ref_x[:, moved] != 0, delta[:, moved] / ref_x[:, moved], 0.0)
        pick = np.argmax(np.abs(share), axis=1)
        phi = share[np.arange(len(share)), pick] if moved.any() else np.zeros(len(share))
        # The pre-period model's paths with the changed regressors at zero from t0 on: its
        # baseline shifted by (x - 0) beta for those columns (non-zero only when they were
        # already in force before t0 and so are in that fit). Its other columns (control
        # series) stay as observed.
        removed = np.zeros_like(ref_x)
        removed[t0:, moved] = ref_x[t0:, moved]
        late = rows[rows >= t0]
        removed = pre.model.linearise(pd.DataFrame(removed[late], columns=columns))
        removed = removed.reindex(columns=list(pre.reg.columns), fill_value=0.0)
        z0 = pre.reference_log(late - t0 + len(pre.y))
        z0 -= pre.beta_draws @ removed.to_numpy().T
        reference = self.reference_log(rows)
        counterfactual = reference.copy()
        k = len(rows) - len(late)
        counterfactual[:, k:] = reference[:, k:] - phi[late] * (reference[:, k:] - z0)
        return Paths(reference, counterfactual)

    def _pre_period_notes(
        self,
        first: pd.Timestamp,
        pre: CounterfactualEngine,
        moved: np.ndarray,
        rows: np.ndarray,
        notes: list[str],
    ) -> None:
        notes.append(
            f"pre_period: the counterfactual is the forecast of {type(self.model).__name__} "
            f"fitted on {pre.y.index[0]:%Y-%m}..{pre.cutoff:%Y-%m}, the months before the "
            "scenario's first change"
        )
        missing = self._unfitted_in_span(pre, moved, rows)
        if missing:
            notes.append(
                f"regressors in force in the span without an effect in the pre-period fit: "
                f"{'; '.join(missing)}; their effects are counted in the effect"
            )
        if rows[-1] >= len(self.y):
            notes.append(
                "in future months the reference (the full model's forecast) and the "
                "counterfactual (the pre-period model's) are simulated by two models, so the "
                "effect's interval holds the noise of both"
            )

    def _unfitted_in_span(
        self, pre: CounterfactualEngine, moved: np.ndarray, rows: np.ndarray
    ) -> list[str]:
        """Regressors the scenario leaves alone, in force in ``rows``, that ``pre``'s fit has no
        effect for (not yet started before its cutoff, or dropped), with the reason."""
        span = self.X_all.iloc[rows]
        return [
            f"{c} ({pre.model.dropped_regressors_.get(c, 'not fitted')})"
            for c, is_moved in zip(self.X_all.columns, moved, strict=True)
            if not is_moved and c not in pre.reg.columns and span[c].abs().max() >= MATERIAL
        ]

    # -- output ------------------------------------------------------------------------------
